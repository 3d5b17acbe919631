"""Reads for the critic's pages, API and exports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Count, Q, QuerySet

from corpora.models import Corpus, Relation, Triple, TripleScore

from . import thresholds
from .models import CorpusScoring, CriticVersion, FilterPreset

# Audit labels are used for the estimates once there are this many (both classes).
MIN_AUDIT_LABELS = 30


def critic_versions(*, corpus: Corpus) -> QuerySet[CriticVersion]:
    return CriticVersion.objects.filter(corpus=corpus).order_by("-number")


def active_version(*, corpus: Corpus) -> CriticVersion | None:
    return CriticVersion.objects.filter(corpus=corpus, is_active=True).first()


def corpus_scoring(*, corpus: Corpus) -> CorpusScoring | None:
    return CorpusScoring.objects.filter(corpus=corpus).select_related("version").first()


def presets(*, corpus: Corpus) -> QuerySet[FilterPreset]:
    return FilterPreset.objects.filter(corpus=corpus).select_related("version")


def preset_kept_counts(*, preset: FilterPreset) -> dict[str, dict[str, int]]:
    """The triples the preset keeps, counted by relation and split ({relation: {split: n}}):
    one grouped pass over the corpus's scores, for the dataset card of its export."""
    keep = Q(score__gte=preset.threshold)
    if preset.relation_thresholds:
        keep &= ~Q(relation__name__in=list(preset.relation_thresholds))
        for name, threshold in preset.relation_thresholds.items():
            keep |= Q(relation__name=name, score__gte=threshold)
    rows = (
        Triple.objects.filter(corpus=preset.corpus)
        .with_score(preset.corpus)
        .filter(keep)
        .values_list("relation__name", "split")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[str, dict[str, int]] = {}
    for relation, split, n in rows:
        counts.setdefault(relation, {})[split] = n
    return counts


def learning_curve(*, corpus: Corpus) -> list[dict]:
    """Quality against label count, one point per version."""
    return [
        {
            "version": v.number,
            "tier": v.tier,
            "labels": v.label_count,
            "roc_auc": v.metrics.get("roc_auc"),
            "average_precision": v.metrics.get("average_precision"),
            "audit_roc_auc": v.audit_metrics.get("roc_auc") if v.audit_metrics else None,
            "active": v.is_active,
        }
        for v in CriticVersion.objects.filter(corpus=corpus).order_by("number")
    ]


@dataclass(frozen=True)
class EvaluationLabels:
    """The labels a version's estimates rest on, with that version's honest scores."""

    labels: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    relations: np.ndarray  # relation names (object array)
    basis: str  # "audit" or "out-of-fold"
    description: str


@lru_cache(maxsize=8)
def _evaluation_labels(labels_path: str) -> EvaluationLabels:
    data = np.load(labels_path)
    names = dict(Relation.objects.values_list("id", "name"))
    relations = np.array([names.get(int(r), str(r)) for r in data["relation_ids"]], dtype=object)
    audit = data["audit"]
    labels, scores, weights = data["labels"].astype(np.int64), data["scores"], data["weights"]
    audit_labels = labels[audit]
    if len(audit_labels) >= MIN_AUDIT_LABELS and 0 < audit_labels.sum() < len(audit_labels):
        keep = audit
        basis = "audit"
        description = (
            f"{int(audit.sum()):,} audit labels, weighted by their sampling design "
            "(never trained on): unbiased for the corpus."
        )
    else:
        keep = ~audit & ~np.isnan(scores)
        basis = "out-of-fold"
        description = (
            f"{int(keep.sum()):,} training labels scored by a model that did not train on "
            "them (out-of-fold, or the cross-encoder's held-out share). "
            "They follow the campaigns' sampling, so the estimates are biased when that was "
            "not uniform; an audit campaign gives unbiased ones."
        )
        weights = np.ones(len(labels))
    return EvaluationLabels(
        labels[keep], scores[keep], weights[keep], relations[keep], basis, description
    )


def evaluation_labels(version: CriticVersion) -> EvaluationLabels:
    # Keyed by the file's full path: a version's labels never change once written.
    return _evaluation_labels(str(Path(settings.ARTIFACT_ROOT) / version.labels_file))


@lru_cache(maxsize=8)
def _histograms(scoring_id: int, scored_at: str) -> dict[str, np.ndarray]:
    scoring = CorpusScoring.objects.get(pk=scoring_id)
    return {name: np.asarray(counts, dtype=np.int64) for name, counts in scoring.histogram.items()}


def histograms(scoring: CorpusScoring) -> dict[str, np.ndarray]:
    return _histograms(scoring.pk, scoring.scored_at.isoformat())


@dataclass
class RelationRow:
    relation: str
    threshold: float
    total: int | None
    kept: int | None
    labels: int
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    recall: float | None

    @property
    def kept_share(self) -> float | None:
        return self.kept / self.total if self.total else None


@dataclass
class ThresholdReport:
    version: int
    threshold: float
    relation_thresholds: dict[str, float]
    scored: bool  # corpus counts come from this version's scores
    total: int | None
    kept: int | None
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    recall: float | None
    f1: float | None
    labels: int
    basis: str
    basis_description: str
    relations: list[RelationRow] = field(default_factory=list)

    @property
    def kept_share(self) -> float | None:
        return self.kept / self.total if self.total else None

    def as_card(self) -> dict:
        data = asdict(self)
        data["kept_share"] = self.kept_share
        return data


def threshold_report(
    *,
    corpus: Corpus,
    version: CriticVersion,
    threshold: float,
    relation_thresholds: dict[str, float] | None = None,
) -> ThresholdReport:
    """What a cut keeps and how good it is: counts from the score histograms (no scan),
    precision/recall/acceptance from the version's evaluation labels."""
    threshold = thresholds.snap(threshold)
    relation_thresholds = {
        name: thresholds.snap(value) for name, value in (relation_thresholds or {}).items()
    }
    scoring = corpus_scoring(corpus=corpus)
    scored = scoring is not None and scoring.version_id == version.pk
    hist = histograms(scoring) if scored else {}
    evaluation = evaluation_labels(version)
    cut = np.array(
        [relation_thresholds.get(r, threshold) for r in evaluation.relations], dtype=np.float64
    )
    overall = thresholds.estimate(evaluation.labels, evaluation.scores, evaluation.weights, cut)
    rows = []
    for name in sorted(set(hist) | set(evaluation.relations.tolist())):
        t = relation_thresholds.get(name, threshold)
        mine = evaluation.relations == name
        est = thresholds.estimate(
            evaluation.labels[mine], evaluation.scores[mine], evaluation.weights[mine], cut[mine]
        )
        counts = hist.get(name)
        rows.append(
            RelationRow(
                relation=name,
                threshold=t,
                total=int(counts.sum()) if counts is not None else None,
                kept=thresholds.kept_from_histogram(counts, t) if counts is not None else None,
                labels=int(mine.sum()),
                precision=est.precision,
                precision_low=est.precision_low,
                precision_high=est.precision_high,
                recall=est.recall,
            )
        )
    kept = sum(r.kept for r in rows if r.kept is not None) if scored else None
    total = sum(r.total for r in rows if r.total is not None) if scored else None
    return ThresholdReport(
        version=version.number,
        threshold=threshold,
        relation_thresholds=relation_thresholds,
        scored=scored,
        total=total,
        kept=kept,
        precision=overall.precision,
        precision_low=overall.precision_low,
        precision_high=overall.precision_high,
        recall=overall.recall,
        f1=overall.f1,
        labels=len(evaluation.labels),
        basis=evaluation.basis,
        basis_description=evaluation.description,
        relations=rows,
    )


def threshold_for_precision(
    *, version: CriticVersion, target: float, per_relation: bool = False, min_labels: int = 20
) -> tuple[float | None, dict[str, float]]:
    """The threshold reaching a target precision on the evaluation labels; per relation
    too (for relations with at least `min_labels` labels; others use the global one)."""
    evaluation = evaluation_labels(version)
    overall = thresholds.threshold_for_precision(
        evaluation.labels, evaluation.scores, evaluation.weights, target
    )
    by_relation: dict[str, float] = {}
    if per_relation:
        for name in sorted(set(evaluation.relations.tolist())):
            mine = evaluation.relations == name
            if mine.sum() < min_labels:
                continue
            found = thresholds.threshold_for_precision(
                evaluation.labels[mine], evaluation.scores[mine], evaluation.weights[mine], target
            )
            if found is not None:
                by_relation[name] = found
    return overall, by_relation


@dataclass(frozen=True)
class NearTriple:
    head: str
    relation: str
    tail: str
    score: float


def triples_near_threshold(
    *, corpus: Corpus, threshold: float, count: int = 5
) -> tuple[list, list]:
    """The triples just above and just below the cut (two index range scans)."""
    base = TripleScore.objects.filter(score_set=Corpus.score_set_in_force(corpus.pk)).values_list(
        "triple__head__text", "triple__relation__name", "triple__tail", "score"
    )
    above = base.filter(score__gte=threshold).order_by("score")[:count]
    below = base.filter(score__lt=threshold).order_by("-score")[:count]

    def near(rows):
        return [NearTriple(*row) for row in rows]

    return near(above), near(below)
