"""Rescoring a corpus with its active critic version into a new score set, the jobs
that do it, and the score writer that puts the set in force."""

from __future__ import annotations

import logging
import time

import numpy as np
from django.db import transaction
from threadpoolctl import threadpool_limits

from corpora.models import Corpus
from corpora.scores import ScoreSetWriter
from jobs.models import Job
from jobs.services import JobContinues, job_run

from .. import thresholds
from ..corpus_data import corpus_chunks, read_ahead, relation_verbalizations
from ..errors import CriticError
from ..models import CorpusScoring, CriticVersion
from ..tiers import tier_get
from .jobs import corpus_job_queue
from .loading import critic_load

logger = logging.getLogger(__name__)

RESCORE_JOB = "critic.rescore"


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
    # A tier may cap BLAS/OpenMP threads while it scores: the pipeline below already keeps
    # the cores busy (the fast head runs on one; see critic.tiers.fast).
    blas_threads = tier_get(critic.tier).blas_threads
    limits = threadpool_limits(limits=blas_threads) if blas_threads else None
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
    from ..tasks import run_rescore_job

    version = CriticVersion.objects.filter(corpus=corpus, is_active=True).first()
    queue = tier_get(version.tier).queue if version is not None else None
    return corpus_job_queue(RESCORE_JOB, corpus, run_rescore_job, created_by, queue=queue)


def corpus_rescore_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    """Rescore the corpus: in this task, or, for a tier whose rescoring is shared by many
    workers (`CriticTier.shared_rescoring`), as ranges the workers serving its queue take;
    the job then stays running until the last range puts the set in force."""
    from .ranges import rescoring_start

    def body(job: Job, progress) -> dict | JobContinues:
        corpus = Corpus.objects.get(pk=job.params["corpus_id"])
        version = CriticVersion.objects.filter(corpus=corpus, is_active=True).first()
        if version is not None and tier_get(version.tier).shared_rescoring:
            rescoring = rescoring_start(corpus=corpus, job=job)
            progress(0, rescoring.triples, f"{rescoring.range_count} ranges queued", force=True)
            if rescoring.status != rescoring.Status.SCORING:  # an empty corpus: done at once
                return {"version": version.number, "triples": 0, "ranges": 0}
            return JobContinues({"rescoring": rescoring.pk, "ranges": rescoring.range_count})
        scoring = corpus_rescore(corpus=corpus, progress=progress)
        if scoring is None:
            return {"superseded": True}
        return {
            "version": scoring.version.number,
            "triples": scoring.scored_count,
            "seconds": scoring.seconds,
        }

    return job_run(job_id=job_id, attempt=attempt, body=body)
