"""Reads for the critic's pages, API and exports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet

from annotation.models import Campaign, Item
from annotation.selectors import item_label_sql
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
    """Quality against label count, one point per version, with the samplings its labels
    came from (`by_sampling`, {sampling: labels}) and those of its labels the version
    before it did not have (`new_by_sampling`); `sampling` names the one that gave most of
    those new labels, so the curve shows what each way of sampling bought."""
    versions = list(CriticVersion.objects.filter(corpus=corpus).order_by("number"))
    history = _label_history(corpus.pk) if versions else None
    points, before = [], np.empty(0, dtype=np.int64)
    for v in versions:
        by_sampling, new_by_sampling = {}, {}
        trained = _trained_triples(str(Path(settings.ARTIFACT_ROOT) / v.labels_file))
        if trained is not None and history is not None:
            codes = history.samplings_at(trained, v.created_at)
            keys = trained * 64 + codes + 1  # (triple, sampling) pairs
            by_sampling = _count_samplings(codes)
            new_by_sampling = _count_samplings(codes[~np.isin(keys, before)])
            before = keys
        points.append(
            {
                "version": v.number,
                "tier": v.tier,
                "labels": v.label_count,
                "roc_auc": v.metrics.get("roc_auc"),
                # A stacked version's figures for each tier and the stack, on the labels
                # both tiers scored out of sample.
                "tier_roc_auc": v.metrics.get("tier_roc_auc"),
                "chosen": v.metrics.get("chosen"),
                "average_precision": v.metrics.get("average_precision"),
                "audit_roc_auc": v.audit_metrics.get("roc_auc") if v.audit_metrics else None,
                "active": v.is_active,
                "by_sampling": by_sampling,
                "new_by_sampling": new_by_sampling,
                "sampling": max(new_by_sampling, key=new_by_sampling.get, default=None),
            }
        )
    return points


@lru_cache(maxsize=32)
def _trained_triples(labels_path: str) -> np.ndarray | None:
    """The triples a version trained on (not its audit labels); None when its labels file
    cannot be read."""
    try:
        data = np.load(labels_path)
        return data["triple_ids"][~data["audit"]].astype(np.int64)
    except (OSError, KeyError, ValueError):
        return None


SAMPLING_NAMES = list(Campaign.Sampling.values)


@dataclass(frozen=True)
class _LabelHistory:
    """The learning labels of a corpus in the order `critic.labels` lets them win (an
    adjudicated one over all, else the one aggregated last), with their campaign's
    sampling (an index into SAMPLING_NAMES) and the campaign's creation."""

    triple_ids: np.ndarray
    codes: np.ndarray
    campaign_ids: np.ndarray
    created: dict[int, object]

    def samplings_at(self, triple_ids: np.ndarray, when) -> np.ndarray:
        """The sampling each of `triple_ids` was labelled through by campaigns that
        existed at `when` (-1: none)."""
        found = np.full(len(triple_ids), -1, dtype=np.int64)
        campaigns = [c for c, created in self.created.items() if created <= when]
        mask = np.isin(self.campaign_ids, campaigns)
        ids, codes = self.triple_ids[mask][::-1], self.codes[mask][::-1]
        if not ids.size:
            return found
        unique, last = np.unique(ids, return_index=True)
        at = np.minimum(np.searchsorted(unique, triple_ids), unique.size - 1)
        hit = unique[at] == triple_ids
        found[hit] = codes[last][at[hit]]
        return found


def _label_history(corpus_id: int) -> _LabelHistory:
    label = item_label_sql("i")
    sql = (
        f"SELECT i.triple_id, c.sampling, c.id FROM {Item._meta.db_table} i "
        f"JOIN {Campaign._meta.db_table} c ON c.id = i.campaign_id "
        "WHERE c.corpus_id = %s AND c.purpose <> %s AND NOT i.is_gold "
        f"AND i.triple_id IS NOT NULL AND {label} IS NOT NULL "
        "ORDER BY CASE WHEN i.adjudicated_value IS NULL THEN 0 ELSE 1 END, i.adjudicated_at, "
        "CASE WHEN c.aggregated_at IS NULL THEN 0 ELSE 1 END, c.aggregated_at, c.id, i.id"
    )
    code_of = {name: i for i, name in enumerate(SAMPLING_NAMES)}
    blocks: list[np.ndarray] = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, [corpus_id, Campaign.Purpose.AUDIT])
        while rows := cursor.fetchmany(100_000):
            blocks.append(
                np.array([(r[0], code_of.get(r[1], -1), r[2]) for r in rows], dtype=np.int64)
            )
    table = np.concatenate(blocks) if blocks else np.empty((0, 3), dtype=np.int64)
    created = dict(Campaign.objects.filter(corpus_id=corpus_id).values_list("id", "created_at"))
    return _LabelHistory(table[:, 0], table[:, 1], table[:, 2], created)


def _count_samplings(codes: np.ndarray) -> dict[str, int]:
    counts = np.bincount(codes[codes >= 0], minlength=len(SAMPLING_NAMES))
    return {SAMPLING_NAMES[i]: int(n) for i, n in enumerate(counts) if n}


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
