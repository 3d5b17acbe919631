"""Writes of the critic: embeddings, training, activation, rescoring, presets."""

from __future__ import annotations

import logging
import pickle
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from threadpoolctl import threadpool_limits

from core.errors import AppError
from corpora.models import Corpus, Relation
from corpora.scores import ScoreSetWriter
from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_run

from . import thresholds
from .corpus_data import (
    TripleChunk,
    chunk_texts,
    corpus_chunks,
    read_ahead,
    relation_verbalizations,
    triples_by_id,
)
from .labels import LabelSet, corpus_labels
from .ml.texts import head_text, tail_text
from .models import CorpusScoring, CriticConfig, CriticVersion, FilterPreset

logger = logging.getLogger(__name__)

TRAIN_JOB = "critic.train"
RESCORE_JOB = "critic.rescore"
EMBED_JOB = "critic.embed"
MIN_LABELS = 20
# A new version is "not worse" when its held-out ROC-AUC is at most this far
# below the active version's on the same labels (noise at a few hundred labels).
ACTIVATION_TOLERANCE = 0.01
EMBED_CHUNK = 200_000


class CriticError(AppError):
    pass


# --- Configuration ---------------------------------------------------------------


def critic_config_get(*, corpus: Corpus) -> CriticConfig:
    config, _ = CriticConfig.objects.get_or_create(corpus=corpus)
    return config


def critic_config_update(*, corpus: Corpus, **fields) -> CriticConfig:
    config = critic_config_get(corpus=corpus)
    for name, value in fields.items():
        setattr(config, name, value)
    config.full_clean()
    config.save()
    return config


# --- Embeddings ------------------------------------------------------------------


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


@lru_cache(maxsize=2)
def _encoder(name: str):
    import torch

    from .ml.encoder import Encoder

    try:
        return Encoder(name, device="cuda" if torch.cuda.is_available() else "cpu")
    except (OSError, ValueError) as exc:
        raise CriticError(f"Encoder {name!r} could not be loaded: {exc}") from exc


def _store(encoder):
    return _store_at(str(artifact_root() / "embeddings" / encoder.key))


@lru_cache(maxsize=4)
def _store_at(root: str):
    """One store per folder and process: its key index is built once, and it reads
    shards other processes add when a key is missing."""
    from .ml.store import EmbeddingStore

    return EmbeddingStore(Path(root))


def _embed(encoder, store, texts: list[str], keys: np.ndarray | None = None) -> np.ndarray:
    """Embeddings of the texts (whose keys may be given), encoding only the ones the
    store lacks."""
    from .ml.store import text_keys

    keys = text_keys(texts) if keys is None else keys
    unique_keys, first = np.unique(keys, return_index=True)
    missing = store.missing(unique_keys)
    if missing.any():
        new_texts = [texts[i] for i in first[missing]]
        store.add(unique_keys[missing], encoder.encode(new_texts))
    return store.get(keys)


@dataclass
class ChunkEmbeddings:
    """A chunk's embeddings, each distinct text once: `firsts` (head+relation) and
    `seconds` (tail) as float16 rows, and for every triple the row of each."""

    firsts: np.ndarray
    first_of_row: np.ndarray
    seconds: np.ndarray
    second_of_row: np.ndarray

    def per_row(self) -> tuple[np.ndarray, np.ndarray]:
        return self.firsts[self.first_of_row], self.seconds[self.second_of_row]


def chunk_embeddings(encoder, store, chunk: TripleChunk, verbalizations: dict) -> ChunkEmbeddings:
    """Embeddings of a chunk's triples, encoding only texts the store lacks."""
    from .ml.store import text_keys

    # A head has triples under many relations and many tails: its head+relation text
    # is built, hashed and looked up once per chunk.
    pairs: dict[tuple[str, int], int] = {}
    first_of_row = np.fromiter(
        (
            pairs.setdefault(pair, len(pairs))
            for pair in zip(chunk.heads, chunk.relation_ids.tolist(), strict=True)
        ),
        dtype=np.int64,
        count=len(chunk),
    )
    firsts = [head_text(head, verbalizations[rel][1]) for head, rel in pairs]
    seconds = [tail_text(tail) for tail in chunk.tails]
    keys, first_seen, second_of_row = np.unique(
        text_keys(seconds), return_index=True, return_inverse=True
    )
    return ChunkEmbeddings(
        _embed(encoder, store, firsts),
        first_of_row,
        _embed(encoder, store, [seconds[i] for i in first_seen], keys),
        second_of_row,
    )


def corpus_embed(
    *, corpus: Corpus, first_id: int = 0, last_id: int | None = None, progress=None
) -> int:
    """Cache the embeddings of a corpus's triples (ids in [first_id, last_id]); returns
    how many triples were looked at. Texts already cached are not encoded again."""
    config = critic_config_get(corpus=corpus)
    encoder = _encoder(config.encoder)
    store = _store(encoder)
    verbalizations = relation_verbalizations()
    done = 0
    for chunk in corpus_chunks(corpus_id=corpus.pk, chunk_size=20_000, after=first_id - 1):
        last = last_id is not None and int(chunk.ids.max()) >= last_id
        if last:
            chunk = chunk.until(last_id)
        if len(chunk):
            chunk_embeddings(encoder, store, chunk, verbalizations)
            done += len(chunk)
            if progress:
                progress(done, None)
        if last:
            break
    return done


def corpus_embed_jobs_create(*, corpus: Corpus, created_by=None) -> list[Job]:
    """Split the corpus into id ranges, one job each, so several workers share it."""
    from .tasks import run_embed_job

    ranges = _id_ranges(corpus_id=corpus.pk, size=EMBED_CHUNK)
    jobs = []
    with transaction.atomic():
        for first_id, last_id, count in ranges:
            job = job_create(
                kind=EMBED_JOB,
                params={
                    "corpus_id": corpus.pk,
                    "first_id": first_id,
                    "last_id": last_id,
                    "triples": count,
                },
                created_by=created_by,
            )
            job_enqueue(job=job, task=run_embed_job)
            jobs.append(job)
    return jobs


def _id_ranges(*, corpus_id: int, size: int) -> list[tuple[int, int, int]]:
    from django.db import connection

    from corpora.models import Triple

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Triple._meta.db_table} WHERE corpus_id = %s ORDER BY id",
            [corpus_id],
        )
        ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
    return [
        (int(ids[start]), int(ids[min(start + size, len(ids)) - 1]), min(size, len(ids) - start))
        for start in range(0, len(ids), size)
    ]


def corpus_embed_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        params = job.params
        corpus = Corpus.objects.get(pk=params["corpus_id"])
        total = params.get("triples")
        started = time.perf_counter()
        done = corpus_embed(
            corpus=corpus,
            first_id=params["first_id"],
            last_id=params["last_id"],
            progress=lambda n, _t: progress(n, total, "embedding"),
        )
        seconds = time.perf_counter() - started
        return {"triples": done, "seconds": round(seconds, 1)}

    return job_run(job_id=job_id, attempt=attempt, body=body)


# --- Training --------------------------------------------------------------------


def _relation_index(relation_ids: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    unknown = len(mapping)
    return np.array([mapping.get(int(r), unknown) for r in relation_ids], dtype=np.int64)


def _version_folder(corpus: Corpus, number: int) -> Path:
    return Path("critics") / f"corpus-{corpus.pk}" / f"v{number}"


def _next_number(corpus: Corpus) -> int:
    top = CriticVersion.objects.filter(corpus=corpus).aggregate(top=Max("number"))["top"]
    return (top or 0) + 1


@dataclass
class LoadedCritic:
    """A version ready to score: the fast head with its encoder, or a cross-encoder."""

    version_id: int
    tier: str
    relations: dict[int, int]
    fast: object | None = None
    encoder_name: str = ""
    cross_dir: Path | None = None

    def prepare_for_corpus(self) -> None:
        """Before scoring a whole corpus: map the embedding cache up front."""
        if self.tier == CriticConfig.Tier.FAST:
            _store(_encoder(self.encoder_name)).prefault()

    def inputs(self, chunk: TripleChunk, verbalizations: dict):
        """What `score_inputs` reads: embeddings (fast) or texts (cross-encoder)."""
        if self.tier == CriticConfig.Tier.FAST:
            encoder = _encoder(self.encoder_name)
            found = chunk_embeddings(encoder, _store(encoder), chunk, verbalizations)
            return found, _relation_index(chunk.relation_ids, self.relations)
        return chunk_texts(chunk, verbalizations)

    def score_inputs(self, inputs) -> np.ndarray:
        if self.tier == CriticConfig.Tier.FAST:
            found, relation_index = inputs
            return self.fast.predict_indexed(
                found.firsts,
                found.first_of_row,
                found.seconds,
                found.second_of_row,
                relation_index,
            )
        firsts, seconds = inputs
        return _cross_scorer(str(self.cross_dir)).score(firsts, seconds)

    def score(self, chunk: TripleChunk, verbalizations: dict) -> np.ndarray:
        return self.score_inputs(self.inputs(chunk, verbalizations))


@lru_cache(maxsize=1)
def _cross_scorer(model_dir: str):
    from .ml.cross import CrossEncoderScorer

    return CrossEncoderScorer(model_dir)


@lru_cache(maxsize=4)
def _load_critic_cached(version_id: int, artifact: str, tier: str, encoder: str) -> LoadedCritic:
    path = Path(artifact)
    if tier == CriticConfig.Tier.FAST:
        from .ml.fast import FastCritic

        saved = pickle.loads((path / "fast.pkl").read_bytes())
        return LoadedCritic(
            version_id=version_id,
            tier=tier,
            relations=saved["relations"],
            fast=FastCritic.from_bytes(saved["critic"]),
            encoder_name=encoder,
        )
    saved = pickle.loads((path / "relations.pkl").read_bytes())
    return LoadedCritic(version_id=version_id, tier=tier, relations=saved, cross_dir=path / "model")


def critic_load(version: CriticVersion) -> LoadedCritic:
    path = str(artifact_root() / version.artifact)
    return _load_critic_cached(version.pk, path, version.tier, version.encoder)


def _train_fast(
    *, config: CriticConfig, learn: LabelSet, chunk: TripleChunk, mapping: dict, folder: Path
) -> tuple[np.ndarray, dict, str]:
    from .ml.fast import train_fast_critic

    encoder = _encoder(config.encoder)
    u, v = chunk_embeddings(encoder, _store(encoder), chunk, relation_verbalizations()).per_row()
    result = train_fast_critic(
        u,
        v,
        _relation_index(chunk.relation_ids, mapping),
        len(mapping) + 1,
        learn.labels.astype(np.int64),
        folds=min(5, max(2, min(learn.positives, len(learn) - learn.positives))),
    )
    (artifact_root() / folder).mkdir(parents=True, exist_ok=True)
    (artifact_root() / folder / "fast.pkl").write_bytes(
        pickle.dumps({"critic": result.critic.to_bytes(), "relations": mapping})
    )
    return result.heldout_scores, result.metrics, encoder.key


def _train_cross(
    *,
    config: CriticConfig,
    learn: LabelSet,
    chunk: TripleChunk,
    mapping: dict,
    folder: Path,
    progress=None,
) -> tuple[np.ndarray, dict, str]:
    from .ml.cross import train_cross_encoder

    firsts, seconds = chunk_texts(chunk, relation_verbalizations())
    result = train_cross_encoder(
        firsts,
        seconds,
        learn.labels.astype(np.int64),
        base_model=config.encoder,
        output_dir=artifact_root() / folder,
        heldout_share=0.2,
        progress=(lambda step, total: progress(step, total, "fine-tuning")) if progress else None,
    )
    (artifact_root() / folder / "relations.pkl").write_bytes(pickle.dumps(mapping))
    # Only the held-out share has honest scores; the rest are marked NaN.
    heldout = np.full(len(learn), np.nan)
    heldout[result.heldout_index] = result.heldout_scores
    return heldout, result.metrics, config.encoder


def critic_train(
    *, corpus: Corpus, job: Job | None = None, progress=None, queue_rescore: bool = True
) -> CriticVersion:
    """Train a new version on the corpus's labels, record it, activate it when it is
    not worse than the active one (and queue the rescoring then)."""
    from .ml.metrics import classification_metrics

    config = critic_config_get(corpus=corpus)
    labels = corpus_labels(corpus_id=corpus.pk)
    learn, audit = labels.learning, labels.auditing
    if len(learn) < MIN_LABELS or not learn.has_both_classes:
        raise CriticError(
            f"Corpus '{corpus.name}' has {len(learn)} labels to learn from "
            f"({learn.positives} acceptable); training needs at least {MIN_LABELS}, with both "
            "acceptable and unacceptable ones. Aggregate a campaign or import SKD labels first."
        )
    started = time.perf_counter()
    mapping = {rel_id: i for i, rel_id in enumerate(sorted(relation_verbalizations()))}
    chunk = triples_by_id(learn.triple_ids)
    number = _next_number(corpus)
    folder = _version_folder(corpus, number)
    if config.tier == CriticConfig.Tier.FAST:
        heldout, metrics, encoder_key = _train_fast(
            config=config, learn=learn, chunk=chunk, mapping=mapping, folder=folder
        )
    else:
        heldout, metrics, encoder_key = _train_cross(
            config=config,
            learn=learn,
            chunk=chunk,
            mapping=mapping,
            folder=folder,
            progress=progress,
        )
    train_seconds = time.perf_counter() - started
    evaluated = ~np.isnan(heldout)
    recall_thresholds = thresholds.recall_thresholds(learn.labels[evaluated], heldout[evaluated])
    curves = thresholds.curve_points(learn.labels[evaluated], heldout[evaluated])

    audit_scores = np.empty(0)
    audit_metrics: dict = {}
    version = CriticVersion(
        corpus=corpus,
        number=number,
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
    with transaction.atomic():
        # The config row is the per-corpus lock: versions are numbered and
        # activated one at a time, whatever the number of workers.
        CriticConfig.objects.select_for_update().get(pk=config.pk)
        version.number = _next_number(corpus)
        if version.number != number:
            new_folder = _version_folder(corpus, version.number)
            shutil.move(artifact_root() / folder, artifact_root() / new_folder)
            version.artifact = str(new_folder)
            version.labels_file = str(new_folder / "labels.npz")
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


# --- Jobs: training, debounced ---------------------------------------------------


def _queue(task_kind: str, corpus: Corpus, task, created_by=None, **params) -> Job:
    """One waiting job of a kind per corpus: a second request joins the waiting one."""
    with transaction.atomic():
        Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
        pending = Job.objects.filter(
            kind=task_kind, status=Job.Status.QUEUED, params__corpus_id=corpus.pk
        ).first()
        if pending:
            return pending
        job = job_create(
            kind=task_kind, params={"corpus_id": corpus.pk, **params}, created_by=created_by
        )
        job_enqueue(job=job, task=task)
    return job


def critic_train_job_create(*, corpus: Corpus, created_by=None, labels: int | None = None) -> Job:
    from .tasks import run_train_job, run_train_job_gpu

    config = critic_config_get(corpus=corpus)
    task = run_train_job if config.tier == CriticConfig.Tier.FAST else run_train_job_gpu
    return _queue(TRAIN_JOB, corpus, task, created_by, labels=labels)


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


# --- Rescoring --------------------------------------------------------------------


class _ScoreWriter:
    """Writes each chunk's scores into a new score set, checking first that the version
    is still the active one; `commit` puts the set in force.

    On PostgreSQL, outside a transaction (a worker's job), it writes on its own connection
    in a thread, so the database's COPY of one chunk overlaps Python reading and scoring
    the next; elsewhere it writes inline.
    """

    def __init__(self, corpus_id: int, version_id: int) -> None:
        from django.db import connection

        self.version_id = version_id
        self.superseded = False
        self.error: BaseException | None = None
        self.sink = ScoreSetWriter(corpus_id)
        self.threaded = connection.vendor == "postgresql" and not connection.in_atomic_block
        if self.threaded:
            import queue
            import threading

            self.queue: queue.Queue = queue.Queue(maxsize=1)
            self.thread = threading.Thread(target=self._consume, name="score-writer", daemon=True)
            self.thread.start()

    def _active(self, lock: bool = False) -> bool:
        versions = CriticVersion.objects.filter(pk=self.version_id, is_active=True)
        return (versions.select_for_update() if lock else versions).exists()

    def _write(self, ids: np.ndarray, scores: np.ndarray) -> bool:
        if not self._active():
            return False
        with transaction.atomic():
            self.sink.write(ids, scores)
        return True

    def _consume(self) -> None:
        from django.db import connection

        try:
            while (item := self.queue.get()) is not None:
                if self.superseded or self.error is not None:
                    continue  # drain, so the producer never blocks
                try:
                    self.superseded = not self._write(*item)
                except BaseException as exc:  # handed to the producer
                    self.error = exc
        finally:
            connection.close()

    def put(self, ids: np.ndarray, scores: np.ndarray) -> bool:
        """Queue (or write) one chunk; False once the version has been superseded."""
        if not self.threaded:
            self.superseded = self.superseded or not self._write(ids, scores)
            return not self.superseded
        if self.error is not None:
            self.close()
        self.queue.put((ids, scores))
        return not self.superseded

    def close(self) -> bool:
        """Wait for the writes; True when every chunk was written."""
        if self.threaded and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:
            self.sink.discard()
            raise self.error
        if self.superseded:
            self.sink.discard()
        return not self.superseded

    def abandon(self) -> None:
        """After a failure: stop the writer and remove the unfinished set."""
        self.superseded = True
        if self.threaded and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self.sink.discard()

    def commit(self, record) -> bool:
        """Put the set in force, with `record()` in the same transaction, if the version
        is still the active one (its row locked meanwhile, so no activation slips in)."""

        def before_swap() -> bool:
            if not self._active(lock=True):
                return False
            record()
            return True

        return self.sink.commit(before_swap) is not None


def corpus_rescore(
    *, corpus: Corpus, progress=None, chunk_size: int = 25_000
) -> CorpusScoring | None:
    """Score every triple with the active version into a new score set and put it in
    force, with the per-relation histogram the dashboard counts from. Returns None when
    another version was activated meanwhile (its own rescoring follows)."""
    version = CriticVersion.objects.filter(corpus=corpus, is_active=True).first()
    if version is None:
        raise CriticError(f"Corpus '{corpus.name}' has no active critic version to score with.")
    critic = critic_load(version)
    critic.prepare_for_corpus()
    verbalizations = relation_verbalizations()
    names = {rel_id: name for rel_id, (name, _) in verbalizations.items()}
    bins = thresholds.HISTOGRAM_BINS
    histogram: dict[int, np.ndarray] = {}
    started = time.perf_counter()
    total = corpus.triple_count
    done = 0
    writer = _ScoreWriter(corpus.pk, version.pk)
    # The fast head on one BLAS/OpenMP thread: the pipeline below already keeps the cores
    # busy, and idle BLAS threads spinning between small products took half the CPU
    # (7.5 s against 5.8 s wall for 1M triples here). A cross-encoder keeps its threads.
    fast = critic.tier == CriticConfig.Tier.FAST
    limits = threadpool_limits(limits=1) if fast else None
    try:
        # Reading the next chunk and looking up its embeddings (mostly Python) overlaps
        # scoring this one (mostly numpy, which lets other threads run).
        chunks = (
            (chunk, critic.inputs(chunk, verbalizations))
            for chunk in corpus_chunks(corpus_id=corpus.pk, chunk_size=chunk_size)
        )
        for chunk, inputs in read_ahead(chunks):
            scores = np.asarray(critic.score_inputs(inputs), dtype=np.float64)
            if not writer.put(chunk.ids, scores):
                break
            positions = thresholds.bin_of(scores)
            for rel_id in np.unique(chunk.relation_ids).tolist():
                counts = np.bincount(positions[chunk.relation_ids == rel_id], minlength=bins)
                histogram[rel_id] = histogram.get(rel_id, 0) + counts
            done += len(chunk)
            if progress:
                progress(done, total, f"scoring with {version.label}")
        complete = writer.close()
    except BaseException:
        writer.abandon()
        raise
    finally:
        if limits is not None:
            limits.restore_original_limits()
    scoring = None

    def record() -> None:
        nonlocal scoring
        scoring, _ = CorpusScoring.objects.update_or_create(
            corpus=corpus,
            defaults={
                "version": version,
                "scored_count": done,
                "histogram": {names.get(r, str(r)): h.tolist() for r, h in histogram.items()},
                "seconds": round(time.perf_counter() - started, 2),
            },
        )

    if not complete or not writer.commit(record):
        logger.info("rescoring of %s with %s superseded", corpus, version.label)
        return None
    return scoring


def corpus_rescore_job_create(*, corpus: Corpus, created_by=None) -> Job:
    from .tasks import run_rescore_job, run_rescore_job_gpu

    version = CriticVersion.objects.filter(corpus=corpus, is_active=True).first()
    fast = version is None or version.tier == CriticConfig.Tier.FAST
    return _queue(RESCORE_JOB, corpus, run_rescore_job if fast else run_rescore_job_gpu, created_by)


def corpus_rescore_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        corpus = Corpus.objects.get(pk=job.params["corpus_id"])
        scoring = corpus_rescore(corpus=corpus, progress=progress)
        if scoring is None:
            return {"superseded": True}
        return {
            "version": scoring.version.number,
            "triples": scoring.scored_count,
            "seconds": scoring.seconds,
        }

    return job_run(job_id=job_id, attempt=attempt, body=body)


# --- Presets --------------------------------------------------------------------


def preset_save(
    *,
    corpus: Corpus,
    name: str,
    version: CriticVersion,
    threshold: float,
    relation_thresholds: dict[str, float] | None = None,
    target_precision: float | None = None,
    description: str = "",
    created_by=None,
) -> FilterPreset:
    """Create or replace the named preset, with the dashboard's estimates at its cut."""
    from . import selectors

    if version.corpus_id != corpus.pk:
        raise CriticError(f"{version.label} is a critic of another corpus.")
    if not 0.0 <= threshold <= 1.0:
        raise CriticError(f"Threshold {threshold} is outside [0, 1].")
    relation_thresholds = {k: float(v) for k, v in (relation_thresholds or {}).items()}
    known = set(
        Relation.objects.filter(name__in=relation_thresholds).values_list("name", flat=True)
    )
    unknown = sorted(set(relation_thresholds) - known)
    if unknown:
        raise CriticError(f"Unknown relation(s) in the thresholds: {', '.join(unknown)}.")
    for relation, value in relation_thresholds.items():
        if not 0.0 <= value <= 1.0:
            raise CriticError(f"Threshold {value} for {relation} is outside [0, 1].")
    report = selectors.threshold_report(
        corpus=corpus, version=version, threshold=threshold, relation_thresholds=relation_thresholds
    )
    preset, _ = FilterPreset.objects.update_or_create(
        corpus=corpus,
        name=name,
        defaults={
            "version": version,
            "threshold": threshold,
            "relation_thresholds": relation_thresholds,
            "target_precision": target_precision,
            "description": description,
            "estimates": report.as_card(),
            "created_by": created_by,
        },
    )
    return preset


def preset_delete(*, preset: FilterPreset) -> None:
    preset.delete()


# --- Filtered export with a dataset card ----------------------------------------


def preset_filter(*, preset: FilterPreset):
    """The export filter of a preset, refusing scores from another version."""
    from corpora.exporting import ExportFilter

    scoring = CorpusScoring.objects.filter(corpus=preset.corpus).first()
    if scoring is None or scoring.version_id != preset.version_id:
        in_corpus = f"v{scoring.version.number}" if scoring else "no critic"
        raise CriticError(
            f"Preset '{preset.name}' cuts scores of {preset.version.label}, but the corpus holds "
            f"scores of {in_corpus}. Save the preset again on the dashboard for the active "
            "version (or activate and rescore with its version)."
        )
    flags = tuple(sorted(preset.version.recall_thresholds.items()))
    return ExportFilter(
        min_score=preset.threshold,
        relation_min_scores=tuple(sorted(preset.relation_thresholds.items())),
        critic_flags=flags,
    )


def preset_export_job_create(*, preset: FilterPreset, fmt: str, created_by=None) -> Job:
    """Queue the preset's filtered export (with its card); CriticError when the corpus holds
    another version's scores."""
    from corpora.exporting import ExportFilter
    from corpora.services import corpus_export_job_create, export_path_for

    preset_filter(preset=preset)
    return corpus_export_job_create(
        corpus=preset.corpus,
        fmt=fmt,
        out_path=export_path_for(corpus=preset.corpus, fmt=fmt),
        flt=ExportFilter(),
        created_by=created_by,
        preset_id=preset.pk,
    )


def preset_export(*, preset: FilterPreset, fmt: str, out_path, progress=None):
    """Export the part of the corpus the preset keeps, and its dataset card beside it."""
    from corpora.services import corpus_export_preset

    return corpus_export_preset(
        corpus=preset.corpus, preset=preset.pk, fmt=fmt, out_path=out_path, progress=progress
    )
