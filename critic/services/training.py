"""Training a critic version on a corpus's labels, deciding whether it replaces the
active one, activating a version, and the training jobs (queued by hand, or by
`critic_tick` when enough new labels arrived)."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import numpy as np
from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone

from core.artifacts import artifact_checksum
from corpora.models import Corpus
from jobs.models import Job
from jobs.services import job_run

from .. import thresholds
from ..corpus_data import relation_verbalizations, triples_by_id
from ..errors import CriticError
from ..labels import LabelSet, corpus_labels
from ..models import CriticConfig, CriticVersion
from ..tiers import LearningOptions, TrainingSet, tier_get
from .config import artifact_root, critic_config_get
from .jobs import corpus_job_queue
from .loading import critic_artifact_check, critic_load
from .scoring import corpus_rescore_job_create

TRAIN_JOB = "critic.train"
MIN_LABELS = 20
# A new version is "not worse" when its held-out ROC-AUC is at most this far
# below the active version's on the same labels (noise at a few hundred labels).
ACTIVATION_TOLERANCE = 0.01


def _version_folder(artifact_key: uuid.UUID) -> Path:
    """Named by the version's own key, never by corpus id or number: those repeat across
    databases sharing one artifact store, and SQLite can hand out a deleted corpus's id."""
    return Path("critics") / str(artifact_key)


def learning_options(config: CriticConfig, tier: str | None = None) -> LearningOptions:
    """How a version of `tier` (the configured one by default) trained under this
    configuration learns (and later scores). The name swap, when the setting leaves it
    unset, is the tier's default."""
    swap = config.name_swap
    if swap is None:
        swap = tier_get(tier or config.tier).name_swap_default
    return LearningOptions(
        name_draws=config.name_draws if swap else 0,
        label_weighting=config.label_weighting,
    )


def _next_number(corpus: Corpus) -> int:
    top = CriticVersion.objects.filter(corpus=corpus).aggregate(top=Max("number"))["top"]
    return (top or 0) + 1


def critic_train(
    *, corpus: Corpus, job: Job | None = None, progress=None, queue_rescore: bool = True
) -> CriticVersion:
    """Train a new version on the corpus's labels, record it, activate it when it is
    not worse than the active one (and queue the rescoring then). A training that fails
    leaves no folder behind: its files would belong to no row."""
    artifact_key = uuid.uuid4()
    folder = _version_folder(artifact_key)
    try:
        return _critic_train(
            corpus=corpus,
            job=job,
            progress=progress,
            queue_rescore=queue_rescore,
            artifact_key=artifact_key,
            folder=folder,
        )
    except BaseException:
        try:
            orphaned = not CriticVersion.objects.filter(artifact_key=artifact_key).exists()
        except DatabaseError:  # the database cannot say: keep the files
            orphaned = False
        if orphaned:
            shutil.rmtree(artifact_root() / folder, ignore_errors=True)
        raise


def _critic_train(
    *,
    corpus: Corpus,
    job: Job | None,
    progress,
    queue_rescore: bool,
    artifact_key: uuid.UUID,
    folder: Path,
) -> CriticVersion:
    from ..ml.metrics import classification_metrics

    config = critic_config_get(corpus=corpus)
    tier = tier_get(config.tier)
    labels = corpus_labels(corpus_id=corpus.pk)
    learn, audit = labels.learning, labels.auditing
    if len(learn) < MIN_LABELS or not learn.has_both_classes:
        raise CriticError(
            f"Corpus '{corpus.name}' has {len(learn)} labels to learn from "
            f"({learn.positives} acceptable); training needs at least {MIN_LABELS}, with both "
            "acceptable and unacceptable ones. Aggregate a campaign or import SKD labels first."
        )
    started = time.perf_counter()
    verbalizations = relation_verbalizations()
    mapping = {rel_id: i for i, rel_id in enumerate(sorted(verbalizations))}
    chunk = triples_by_id(learn.triple_ids)
    number = _next_number(corpus)
    trained = tier.train(
        data=TrainingSet(
            chunk=chunk,
            labels=learn.labels.astype(np.int64),
            positives=learn.positives,
            relations=mapping,
            verbalizations=verbalizations,
            confidence=learn.certainty,
            options=learning_options(config),
            member_options={name: learning_options(config, name) for name in tier.members},
        ),
        encoder=config.encoder,
        folder=artifact_root() / folder,
        progress=progress,
    )
    heldout, metrics, encoder_key = trained.heldout, trained.metrics, trained.encoder_key
    train_seconds = time.perf_counter() - started
    evaluated = ~np.isnan(heldout)
    recall_thresholds = thresholds.recall_thresholds(learn.labels[evaluated], heldout[evaluated])
    curves = thresholds.curve_points(learn.labels[evaluated], heldout[evaluated])

    audit_scores = np.empty(0)
    audit_metrics: dict = {}
    version = CriticVersion(
        corpus=corpus,
        number=number,
        artifact_key=artifact_key,
        tier=config.tier,
        encoder=config.encoder,
        encoder_key=encoder_key,
        label_count=len(learn),
        label_events=learn.learning_events,
        positive_count=learn.positives,
        audit_label_count=len(audit),
        metrics=metrics,
        recall_thresholds=recall_thresholds,
        curves=curves,
        artifact=str(folder),
        labels_file=str(folder / "labels.npz"),
        train_seconds=round(train_seconds, 2),
        job=job,
    )
    if len(audit):
        audit_scores = _score_labels(version, audit)
        if audit.has_both_classes:
            audit_metrics = classification_metrics(
                audit.labels, audit_scores, sample_weight=audit.weights
            )
    version.audit_metrics = audit_metrics
    np.savez(
        artifact_root() / folder / "labels.npz",
        triple_ids=np.concatenate([learn.triple_ids, audit.triple_ids]),
        labels=np.concatenate([learn.labels, audit.labels]),
        weights=np.concatenate([learn.weights, audit.weights]),
        audit=np.concatenate([np.zeros(len(learn), bool), np.ones(len(audit), bool)]),
        relation_ids=np.concatenate(
            [chunk.relation_ids, triples_by_id(audit.triple_ids).relation_ids]
            if len(audit)
            else [chunk.relation_ids]
        ),
        scores=np.concatenate([heldout, audit_scores]),
    )
    version.checksum = artifact_checksum(artifact_root() / folder)
    with transaction.atomic():
        # The config row is the per-corpus lock: versions are numbered and
        # activated one at a time, whatever the number of workers.
        CriticConfig.objects.select_for_update().get(pk=config.pk)
        version.number = _next_number(corpus)
        version.save()
        active = CriticVersion.objects.filter(corpus=corpus, is_active=True).first()
        activate, version.decision = _decide(version, active, learn, heldout, audit, audit_scores)
        version.save(update_fields=["decision"])
        if activate:
            critic_activate(version=version, queue_rescore=queue_rescore)
    return version


def _score_labels(version: CriticVersion, labels: LabelSet) -> np.ndarray:
    chunk = triples_by_id(labels.triple_ids)
    return np.asarray(critic_load(version).score(chunk, relation_verbalizations()), np.float64)


def _auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(labels) < MIN_LABELS or labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, scores, sample_weight=weights))


def _decide(
    version: CriticVersion,
    active: CriticVersion | None,
    learn: LabelSet,
    heldout: np.ndarray,
    audit: LabelSet,
    audit_scores: np.ndarray,
) -> tuple[bool, str]:
    """Activate unless the new version is worse than the active one on labels that are
    held out for both: the audit sample when there is one, else the labels that arrived
    after the active version was trained (new version: out-of-fold scores)."""
    if active is None:
        return True, "First version of this corpus's critic: activated."
    new_auc = old_auc = None
    basis = ""
    if audit.has_both_classes and len(audit) >= MIN_LABELS:
        new_auc = _auc(audit.labels, audit_scores, audit.weights)
        old_auc = _auc(audit.labels, _score_labels(active, audit), audit.weights)
        basis = f"{len(audit)} audit labels"
    else:
        critic_artifact_check(active)
        seen = np.load(artifact_root() / active.labels_file)["triple_ids"]
        fresh = ~np.isin(learn.triple_ids, seen) & ~np.isnan(heldout)
        new_labels = learn.subset(fresh)
        if new_labels.has_both_classes and len(new_labels) >= MIN_LABELS:
            new_auc = _auc(new_labels.labels, heldout[fresh])
            old_auc = _auc(new_labels.labels, _score_labels(active, new_labels))
            basis = f"{len(new_labels)} labels that arrived after {active.label}"
        else:
            new_auc = version.metrics.get("roc_auc")
            old_auc = active.metrics.get("roc_auc")
            basis = "each version's own held-out labels"
    if new_auc is None or old_auc is None:
        return True, f"Activated: no comparable held-out labels ({basis or 'none'})."
    verdict = new_auc >= old_auc - ACTIVATION_TOLERANCE
    return verdict, (
        f"{'Activated' if verdict else 'Not activated'}: ROC-AUC {new_auc:.3f} against "
        f"{old_auc:.3f} for {active.label} on {basis}."
    )


def critic_activate(*, version: CriticVersion, queue_rescore: bool = True) -> CriticVersion:
    """Make the version the corpus's active critic and queue the rescoring."""
    if version.status != CriticVersion.Status.READY:
        raise CriticError(
            f"{version.label} is {version.status}; only a ready version is activated."
        )
    with transaction.atomic():
        config = critic_config_get(corpus=version.corpus)
        CriticConfig.objects.select_for_update().get(pk=config.pk)
        CriticVersion.objects.filter(corpus=version.corpus, is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False)
        version.is_active = True
        version.activated_at = timezone.now()
        version.save(update_fields=["is_active", "activated_at"])
        if queue_rescore:
            corpus_rescore_job_create(corpus=version.corpus)
    return version


def critic_train_job_create(*, corpus: Corpus, created_by=None, labels: int | None = None) -> Job:
    from ..tasks import run_train_job

    config = critic_config_get(corpus=corpus)
    queue = tier_get(config.tier).queue
    return corpus_job_queue(
        TRAIN_JOB, corpus, run_train_job, created_by, queue=queue, labels=labels
    )


def critic_train_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        corpus = Corpus.objects.get(pk=job.params["corpus_id"])
        progress(0, None, "training", force=True)
        version = critic_train(corpus=corpus, job=job, progress=progress)
        return {
            "version": version.number,
            "labels": version.label_count,
            "roc_auc": version.metrics.get("roc_auc"),
            "active": version.is_active,
            "decision": version.decision,
        }

    return job_run(job_id=job_id, attempt=attempt, body=body)


def critic_retrain_if_due(*, corpus: Corpus) -> Job | None:
    """Queue a training when `retrain_every` new labels arrived since the newest version,
    or the first one as soon as there are enough labels. Debounced: nothing while a
    training of this corpus waits or runs, and a failed training is not retried for
    the same label count."""
    config = critic_config_get(corpus=corpus)
    if not config.auto_retrain:
        return None
    trainings = Job.objects.filter(kind=TRAIN_JOB, params__corpus_id=corpus.pk).order_by("-pk")
    last = trainings.first()
    if last and last.is_active:
        return None
    learn = corpus_labels(corpus_id=corpus.pk).learning
    if len(learn) < MIN_LABELS or not learn.has_both_classes:
        return None
    if last and last.params.get("labels") == learn.learning_events:
        return None
    newest = CriticVersion.objects.filter(corpus=corpus).order_by("-number").first()
    if newest and learn.learning_events - newest.label_events < config.retrain_every:
        return None
    return critic_train_job_create(corpus=corpus, labels=learn.learning_events)


def critic_tick() -> dict:
    """Periodic: aggregate campaigns that have new judgments, then retrain critics whose
    corpus has gathered enough new labels. Cheap when nothing changed."""
    from annotation.models import Campaign
    from annotation.selectors import campaign_stats_stale
    from annotation.services.aggregation import campaign_aggregate_job_create

    aggregating = 0
    for campaign in Campaign.objects.filter(status=Campaign.Status.OPEN):
        if campaign_stats_stale(campaign=campaign):
            campaign_aggregate_job_create(campaign=campaign)
            aggregating += 1
    queued = 0
    corpus_ids = set(
        Campaign.objects.filter(aggregated_at__isnull=False).values_list("corpus_id", flat=True)
    )
    for corpus in Corpus.objects.filter(pk__in=corpus_ids):
        if critic_retrain_if_due(corpus=corpus):
            queued += 1
    return {"aggregations": aggregating, "trainings": queued}
