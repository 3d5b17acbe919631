"""Reads for the distillation pages and API: runs, lineage, the comparison table."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import orjson
from django.db.models import QuerySet

from annotation.ml.agreement import wilson_interval
from annotation.models import Campaign, Item, JudgmentValue
from annotation.selectors import campaign_stats_stale
from annotation.sources import STUDENT, TEACHER, counts_for
from corpora.models import Corpus, Triple
from critic.models import CorpusScoring, CriticVersion, FilterPreset
from generation.models import GenerationRun
from generation.selectors import corpus_sources

from .models import StudentEvaluation, StudentRun

# Tails drawn from every corpus of the comparison for its diversity measures: distinct-n
# grows smaller as a sample grows, so every row is measured on samples of the same size.
DIVERSITY_SAMPLE = 2000
MIN_AUDIT_LABELS = 30
# A blind cell whose 95% interval is wider than this either side says "too few labels".
MAX_HALF_WIDTH = 0.10


def runs_listed() -> QuerySet[StudentRun]:
    return StudentRun.objects.select_related("corpus", "preset", "critic_version", "job")


def evaluations_of(*, run: StudentRun) -> QuerySet[StudentEvaluation]:
    return run.evaluations.select_related("corpus", "campaign", "job")


def run_eval_history(*, run: StudentRun) -> list[list[float]]:
    """[[step, validation loss], ...] so far: training writes it beside its checkpoints in
    the run's folder as it evaluates (about 20 points a run), and the whole validation
    set's loss at the last step."""
    from .folders import run_folder
    from .ml.training import EVAL_HISTORY_FILE

    if not run.folder:
        return []
    try:
        points = orjson.loads((run_folder(run) / EVAL_HISTORY_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    return [[p[0], p[1]] for p in points if isinstance(p, list) and len(p) == 2]


# --- Lineage ---------------------------------------------------------------------


def _label_campaigns(version: CriticVersion) -> list[dict]:
    """The campaigns whose aggregated labels the version could learn from (or be measured
    on): those of its corpus aggregated before it was trained."""
    return [
        {"id": c.pk, "name": c.name, "purpose": c.purpose, "items": c.item_count}
        for c in Campaign.objects.filter(
            corpus_id=version.corpus_id, aggregated_at__lte=version.created_at
        ).order_by("pk")
    ]


def run_lineage(*, run: StudentRun) -> dict:
    """From a student back to its data: the corpus and how it was made (teacher runs with
    their pools, imports), the cut (preset, critic version, threshold) and the labels."""
    cut = None
    if run.critic_version_id is not None:
        version = run.critic_version
        cut = {
            "preset": run.preset.name if run.preset else None,
            "preset_id": run.preset_id,
            "threshold": run.threshold,
            "relation_thresholds": run.relation_thresholds,
            "critic_version": version.number,
            "critic_version_id": version.pk,
            "critic_tier": version.tier,
            "critic_labels": version.label_count,
            "critic_audit_labels": version.audit_label_count,
            "labels_file": version.labels_file,
            "campaigns": _label_campaigns(version),
        }
    return {
        "run": {"id": run.pk, "name": run.name, "base_model": run.base_model},
        "corpus": {"id": run.corpus_id, "name": run.corpus.name},
        "train_split": run.train_split,
        "cut": cut,
        **corpus_sources(corpus=run.corpus),
    }


def triple_lineage(*, triple: Triple) -> dict:
    """Where one triple came from: the student evaluation or teacher run (prompt, pool)
    that wrote it, the critic's score of it, and the labels people gave it."""
    fields = triple.source_fields_dict
    score = (
        Triple.objects.filter(pk=triple.pk)
        .with_score(triple.corpus_id)
        .values_list("score", flat=True)
        .first()
    )
    out: dict = {
        "triple": {
            "id": triple.pk,
            "head": triple.head.text,
            "relation": triple.relation.name,
            "tail": triple.tail,
            "origin": triple.origin,
            "score": score,
        },
        "corpus": {"id": triple.corpus_id, "name": triple.corpus.name},
    }
    if triple.origin == Triple.Origin.STUDENT and "evaluation" in fields:
        evaluation = (
            StudentEvaluation.objects.filter(pk=fields["evaluation"]).select_related("run").first()
        )
        if evaluation is not None:
            out["student"] = {
                "evaluation": evaluation.pk,
                "decoding": evaluation.decoding,
                "lineage": run_lineage(run=evaluation.run),
            }
    if triple.origin == Triple.Origin.TEACHER and "run" in fields:
        run = (
            GenerationRun.objects.filter(pk=fields["run"]).select_related("teacher", "pool").first()
        )
        out["teacher"] = {
            "run": fields["run"],
            "teacher": fields.get("teacher"),
            "prompt_hash": fields.get("prompt"),
            "logprob": fields.get("logprob"),
            "pool": run.pool.name if run else None,
            "pool_id": run.pool_id if run else None,
            "model": run.teacher.model if run else None,
        }
    scoring = CorpusScoring.objects.filter(corpus_id=triple.corpus_id).select_related("version")
    scoring = scoring.first()
    if scoring is not None and score is not None:
        out["critic"] = {
            "version": scoring.version.number,
            "version_id": scoring.version_id,
            "corpus_id": triple.corpus_id,
            "corpus": triple.corpus.name,
        }
    elif score is not None and "student" in out:
        # Scored by the run corpus's critic when the evaluation measured the outputs.
        run = evaluation.run
        out["critic"] = {
            "version": ((evaluation.metrics or {}).get("critic") or {}).get("version"),
            "corpus_id": run.corpus_id,
            "corpus": run.corpus.name,
            "evaluation": evaluation.pk,
        }
    out["labels"] = [
        {
            "campaign": campaign_name,
            "judgments": judgments,
            "majority": majority,
            "dawid_skene": ds,
        }
        for campaign_name, judgments, majority, ds in Item.objects.filter(
            triple_id=triple.pk, is_gold=False
        ).values_list("campaign__name", "judgment_count", "majority", "ds_label")
    ]
    return out


# --- Comparison --------------------------------------------------------------------


@dataclass
class Acceptance:
    rate: float | None
    low: float | None = None
    high: float | None = None
    basis: str = ""  # "human" or "critic"
    n: int = 0


@dataclass
class ComparisonRow:
    kind: str  # teacher | filtered | student
    name: str
    size: int | None
    acceptance: Acceptance
    relations: dict[str, Acceptance] = field(default_factory=dict)
    distinct_1: float | None = None
    distinct_2: float | None = None
    link: dict = field(default_factory=dict)
    # Tails drawn for the diversity measures (the same number for every row).
    sample: list[str] = field(default_factory=list, repr=False)
    diversity_n: int = 0
    # A student's blind campaign: its labels per source (student, teacher).
    blind: BlindComparison | None = None


# --- Blind evaluation --------------------------------------------------------------


@dataclass
class BlindCell:
    """People's acceptance of one source's items in one relation (or all): the share of
    judged items labelled acceptable with its 95% Wilson interval."""

    items: int = 0
    judged: int = 0
    accepted: int = 0
    rate: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2

    @property
    def too_few(self) -> bool:
        """No label yet, or an interval wider than ±10 points."""
        return self.half_width is None or self.half_width > MAX_HALF_WIDTH


@dataclass
class BlindRow:
    relation: str  # "" for all relations
    student: BlindCell
    teacher: BlindCell

    @property
    def cells(self) -> list[tuple[str, BlindCell]]:
        return [(STUDENT, self.student), (TEACHER, self.teacher)]


@dataclass
class BlindComparison:
    campaign_id: int
    campaign_name: str
    overall: BlindRow
    relations: list[BlindRow]
    both: int  # items the student and the teacher both wrote, counted for each
    aggregated_at: object = None
    stale: bool = False


def _item_label(adjudicated: int | None, ds_label: bool | None, majority: bool | None):
    """An item's label: a researcher's final value first ("can't judge" there means no
    label), then Dawid-Skene, then the majority; None while it has none."""
    if adjudicated is not None:
        return None if adjudicated == JudgmentValue.CANT_JUDGE else adjudicated > 0
    return ds_label if ds_label is not None else majority


def _cell(labels: list[bool | None]) -> BlindCell:
    judged = [label for label in labels if label is not None]
    accepted = sum(judged)
    rate, low, high = wilson_interval(accepted, len(judged))
    return BlindCell(len(labels), len(judged), accepted, rate, low, high)


def blind_comparison(*, evaluation: StudentEvaluation) -> BlindComparison | None:
    """People's labels of the evaluation's blind campaign, per source and relation: the
    items of each, how many are judged (labelled by the last aggregation or a researcher),
    and the acceptance with its Wilson interval. An item both wrote counts for both. None
    when the evaluation has no campaign with sourced items."""
    if evaluation.campaign_id is None:
        return None
    campaign = Campaign.objects.filter(pk=evaluation.campaign_id).first()
    if campaign is None:
        return None
    rows = (
        Item.objects.filter(campaign=campaign, is_gold=False)
        .exclude(source="")
        .values_list("relation__name", "source", "adjudicated_value", "ds_label", "majority")
    )
    labels: dict[tuple[str, str], list[bool | None]] = {}
    both = 0
    for relation, source, adjudicated, ds_label, majority in rows.iterator(chunk_size=5000):
        label = _item_label(adjudicated, ds_label, majority)
        sides = counts_for(source)
        both += len(sides) > 1
        for side in sides:
            labels.setdefault((relation, side), []).append(label)
            labels.setdefault(("", side), []).append(label)
    if not labels:
        return None

    def row(relation: str) -> BlindRow:
        return BlindRow(
            relation,
            _cell(labels.get((relation, STUDENT), [])),
            _cell(labels.get((relation, TEACHER), [])),
        )

    names = sorted({relation for relation, _ in labels if relation})
    return BlindComparison(
        campaign_id=campaign.pk,
        campaign_name=campaign.name,
        overall=row(""),
        relations=[row(name) for name in names],
        both=both,
        aggregated_at=campaign.aggregated_at,
        stale=campaign_stats_stale(campaign=campaign),
    )


def _human_acceptance(corpus_id: int) -> tuple[Acceptance | None, dict[str, Acceptance]]:
    """Acceptance from people's aggregated labels of the corpus: the audit sample (weighted
    by its design) when it has enough labels, otherwise every label, unweighted."""
    from critic.labels import corpus_labels

    labels = corpus_labels(corpus_id=corpus_id)
    if len(labels) == 0:
        return None, {}
    audit = labels.auditing
    chosen = audit if len(audit) >= MIN_AUDIT_LABELS else labels
    relation_of = dict(
        Triple.objects.filter(pk__in=chosen.triple_ids.tolist()).values_list("pk", "relation__name")
    )
    relations = np.array([relation_of.get(int(t), "") for t in chosen.triple_ids])

    def estimate(mask: np.ndarray) -> Acceptance:
        weights = chosen.weights[mask]
        accepted = chosen.labels[mask].astype(np.float64)
        n = int(mask.sum())
        if chosen is audit and n:
            # Weighted share with Kish's effective sample size for the interval.
            rate = float((weights * accepted).sum() / weights.sum())
            n_eff = max(1, round(weights.sum() ** 2 / (weights**2).sum()))
            _, low, high = wilson_interval(round(rate * n_eff), n_eff)
            return Acceptance(rate, low, high, "human", n)
        rate, low, high = wilson_interval(int(accepted.sum()), n)
        return Acceptance(rate, low, high, "human", n)

    overall = estimate(np.ones(len(chosen), dtype=bool))
    return overall, {name: estimate(relations == name) for name in sorted(set(relations)) if name}


def _histogram_acceptance(counts: np.ndarray) -> Acceptance:
    """The critic's expected acceptance of a scored corpus: the mean calibrated score,
    from the score histogram (bin centres), without a scan."""
    total = int(counts.sum())
    if total == 0:
        return Acceptance(None, basis="critic")
    centres = (np.arange(len(counts)) + 0.5) / len(counts)
    mean = float((counts * centres).sum() / total)
    sd = float(np.sqrt((counts * (centres - mean) ** 2).sum() / total))
    half = 1.96 * sd / np.sqrt(total)
    return Acceptance(mean, max(0.0, mean - half), min(1.0, mean + half), "critic", total)


def _sample_tails(corpus_id: int, size: int, min_scores: dict[str, float] | None = None) -> list:
    """Up to `size` distinct triples' tails drawn at random (seeded by the corpus) by id,
    without sorting the corpus; with `min_scores` (relation -> cut, '' for the rest) only
    tails of triples kept by it."""
    triples = Triple.objects.filter(corpus_id=corpus_id)
    bounds = triples.order_by("pk").values_list("pk", flat=True)
    first, last = bounds.first(), bounds.last()
    if first is None:
        return []
    rng = random.Random(corpus_id)
    span = range(first, last + 1)
    candidates = rng.sample(span, min(len(span), 16 * size))  # no list of the whole span
    picked: list[str] = []
    # Ids are dense within a corpus (bulk loads), so a few rounds of 4x oversampling fill
    # the sample; a corpus with gaps or a strict cut gives a smaller one.
    for start in range(0, len(candidates), 4 * size):
        ids = candidates[start : start + 4 * size]
        rows = (
            triples.filter(pk__in=ids)
            .with_score(corpus_id)
            .values_list("tail", "relation__name", "score")
        )
        for tail, relation, score in rows:
            if min_scores is not None:
                cut = min_scores.get(relation, min_scores[""])
                if score is None or score < cut:
                    continue
            picked.append(tail)
        if len(picked) >= size:
            break
    return picked[:size]


def _diversity(tails: list[str]) -> tuple[float | None, float | None]:
    from .ml.measures import distinct_n

    if not tails:
        return None, None
    return distinct_n(tails, 1), distinct_n(tails, 2)


def _student_row(evaluation: StudentEvaluation, sample: int) -> ComparisonRow:
    human, human_by_relation = _human_acceptance(evaluation.corpus_id)
    critic = evaluation.metrics.get("critic") or {}

    def from_critic(entry: dict | None) -> Acceptance:
        if not entry:
            return Acceptance(None)
        return Acceptance(
            entry["acceptance"], entry.get("low"), entry.get("high"), "critic", entry["n"]
        )

    relations = {name: from_critic(e) for name, e in (critic.get("relations") or {}).items()}
    relations.update(human_by_relation)
    tails = _sample_tails(evaluation.corpus_id, sample)
    return ComparisonRow(
        kind="student",
        name=f"{evaluation.run.name} ({evaluation.decoding})",
        size=evaluation.corpus.triple_count,
        acceptance=human or from_critic(critic.get("overall")),
        relations=relations,
        sample=tails,
        blind=blind_comparison(evaluation=evaluation),
        link={
            "run": evaluation.run_id,
            "evaluation": evaluation.pk,
            "corpus": evaluation.corpus_id,
        },
    )


def comparison(*, corpus: Corpus, sample: int = DIVERSITY_SAMPLE) -> list[ComparisonRow]:
    """The paper's main table for our own data: the teacher corpus, each cut of it a
    student trained on, and each evaluated student, with size, acceptance by relation
    (people's where judged, the critic's estimate otherwise) and diversity."""
    from critic.selectors import histograms, threshold_report

    rows: list[ComparisonRow] = []
    scoring = CorpusScoring.objects.filter(corpus=corpus).select_related("version").first()
    hist = histograms(scoring) if scoring else {}
    human, human_by_relation = _human_acceptance(corpus.pk)
    critic_by_relation = {name: _histogram_acceptance(np.asarray(c)) for name, c in hist.items()}
    critic_overall = (
        _histogram_acceptance(np.sum([np.asarray(c) for c in hist.values()], axis=0))
        if hist
        else Acceptance(None)
    )
    rows.append(
        ComparisonRow(
            kind="teacher",
            name=corpus.name,
            size=corpus.triple_count,
            acceptance=human or critic_overall,
            relations={**critic_by_relation, **human_by_relation},
            link={"corpus": corpus.pk},
            sample=_sample_tails(corpus.pk, sample),
        )
    )
    preset_ids = set(
        StudentRun.objects.filter(corpus=corpus, preset__isnull=False).values_list(
            "preset_id", flat=True
        )
    )
    for preset in FilterPreset.objects.filter(pk__in=preset_ids).select_related("version"):
        report = threshold_report(
            corpus=corpus,
            version=preset.version,
            threshold=preset.threshold,
            relation_thresholds=preset.relation_thresholds,
        )
        cuts = {"": preset.threshold, **preset.relation_thresholds}
        rows.append(
            ComparisonRow(
                kind="filtered",
                name=f"{corpus.name} · {preset.name}",
                size=report.kept,
                acceptance=Acceptance(
                    report.precision,
                    report.precision_low,
                    report.precision_high,
                    "human",
                    report.labels,
                ),
                relations={
                    r.relation: Acceptance(
                        r.precision, r.precision_low, r.precision_high, "human", r.labels
                    )
                    for r in report.relations
                },
                link={"preset": preset.pk, "corpus": corpus.pk},
                sample=_sample_tails(corpus.pk, sample, cuts),
            )
        )
    evaluations = StudentEvaluation.objects.filter(run__corpus=corpus).select_related(
        "run", "corpus"
    )
    for evaluation in evaluations.order_by("run_id", "pk"):
        if evaluation.metrics:
            rows.append(_student_row(evaluation, sample))
    # Distinct-n falls as a sample grows: every row is measured on as many tails as the
    # smallest sample holds.
    common = min((len(row.sample) for row in rows if row.sample), default=0)
    for row in rows:
        if row.sample and common:
            row.diversity_n = common
            row.distinct_1, row.distinct_2 = _diversity(row.sample[:common])
    return rows


def comparison_relations(rows: list[ComparisonRow]) -> list[str]:
    return sorted({name for row in rows for name in row.relations})
