"""A rescoring shared by many workers: the corpus split into ranges of triple ids, one task
each on the version's queue (gpu for the cross-encoder), so any number of workers on any
number of machines take them; every range is written into one new score set, which is put
in force once the last range is done, exactly once.

How it stays exact when workers die and brokers redeliver:

- A range is a lease (`ScoringRange`): a worker claims it for an attempt (the number its
  message carries, as jobs do), then beats on its row from a thread while it scores.
- Its scores are written into the set in the same transaction that marks it done, under
  the rescoring's row lock, and only by the attempt that still holds it: a range's rows
  exist exactly when it is done, and no range is written twice (a dead worker's
  transaction never committed; a late one finds its attempt taken over and writes nothing).
- A range whose worker went silent (SIGKILL, a lost machine) is queued again for the next
  attempt by the beat (`scoring_ranges_requeue_stale`); the dead worker's message, should
  the broker deliver it again, is for an attempt that is over and starts nothing.
- The set is put in force by whichever worker writes the last range, in one transaction
  holding the rescoring's row: a second finisher (the beat, should that worker die while
  it swaps) waits for it and then finds the rescoring done.

Ranges are planned by keyset over the (corpus, id) index, a range at a time, and each
worker holds one range's scores: memory stays bounded at ATOMIC-10X scale.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Max, Q
from django.db.models.functions import Now
from django.utils import timezone
from threadpoolctl import threadpool_limits

from corpora.models import Corpus, ScoreSet
from corpora.scores import ScoreSetWriter
from jobs.models import Job
from jobs.progress import progress_write
from jobs.services import job_beat, job_finish

from .. import thresholds
from ..corpus_data import corpus_chunks, id_ranges, read_ahead, relation_verbalizations
from ..errors import CriticError
from ..models import CorpusScoring, CriticVersion, Rescoring, ScoringRange
from ..tiers import tier_get
from .loading import critic_load

logger = logging.getLogger(__name__)

RANGE_TASK = "critic.run_scoring_range"
FINISH_TASK = "critic.finish_rescoring"
RANGE_CHUNK = 5_000  # triples scored at a time within a range


def _send(task_name: str, args: list, queue: str) -> None:
    from config.celery import app

    transaction.on_commit(lambda: app.send_task(task_name, args=args, queue=queue))


def rescoring_start(
    *, corpus: Corpus, job: Job | None = None, range_size: int | None = None
) -> Rescoring:
    """Begin a new score set for the active version and queue its ranges; or, when a
    rescoring by that version is under way (the job is retried), queue again the ranges
    that wait, and go on with it."""
    version = CriticVersion.objects.filter(corpus=corpus, is_active=True).first()
    if version is None:
        raise CriticError(f"Corpus '{corpus.name}' has no active critic version to score with.")
    size = range_size or settings.CRITIC_RESCORE_RANGE
    queue = tier_get(version.tier).queue
    with transaction.atomic():
        Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
        rescoring = Rescoring.objects.filter(
            corpus=corpus, version=version, status=Rescoring.Status.SCORING
        ).first()
        if rescoring is not None:
            if job is not None:
                Rescoring.objects.filter(pk=rescoring.pk).update(job=job)
                rescoring.job = job
            for pk, attempt in rescoring.ranges.filter(
                status=ScoringRange.Status.QUEUED
            ).values_list("pk", "attempt"):
                _send(RANGE_TASK, [pk, attempt + 1], rescoring.queue)
            return rescoring
        writer = ScoreSetWriter(corpus.pk)
        rescoring = Rescoring.objects.create(
            corpus=corpus, version=version, job=job, score_set_id=writer.score_set.pk, queue=queue
        )
        count = triples = 0
        batch: list[ScoringRange] = []
        for first_id, last_id, n in id_ranges(corpus_id=corpus.pk, size=size):
            batch.append(
                ScoringRange(rescoring=rescoring, first_id=first_id, last_id=last_id, triples=n)
            )
            count, triples = count + 1, triples + n
            if len(batch) >= 1000:
                ScoringRange.objects.bulk_create(batch)
                batch = []
        ScoringRange.objects.bulk_create(batch)
        Rescoring.objects.filter(pk=rescoring.pk).update(range_count=count, triples=triples)
        rescoring.range_count, rescoring.triples = count, triples
        for pk in rescoring.ranges.values_list("pk", flat=True):
            _send(RANGE_TASK, [pk, 1], queue)
    if count == 0:
        rescoring_finish(rescoring_id=rescoring.pk)
    return rescoring


# --- a range ------------------------------------------------------------------------------


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _refusal(scoring_range: ScoringRange, attempt: int | None) -> str | None:
    waits_for = scoring_range.attempt + 1
    if scoring_range.status == ScoringRange.Status.QUEUED:
        return None if attempt == waits_for else f"the range waits for attempt {waits_for}"
    return f"the range is {scoring_range.status} (attempt {scoring_range.attempt})"


def _claim(range_id: int, attempt: int | None) -> ScoringRange | None:
    found = ScoringRange.objects.select_related("rescoring").filter(pk=range_id).first()
    if found is None:
        logger.warning("scoring range %s: message ignored: there is no such range", range_id)
        return None
    rescoring = found.rescoring
    if rescoring.status != Rescoring.Status.SCORING:
        logger.warning("%s: message ignored: the rescoring is %s", found, rescoring.status)
        return None
    if not CriticVersion.objects.filter(pk=rescoring.version_id, is_active=True).exists():
        rescoring_supersede(rescoring_id=rescoring.pk)
        return None
    with transaction.atomic():
        scoring_range = ScoringRange.objects.select_for_update().get(pk=range_id)
        refusal = _refusal(scoring_range, attempt)
        if refusal:
            logger.warning("%s: message for attempt %s ignored: %s", found, attempt, refusal)
            return None
        scoring_range.status = ScoringRange.Status.RUNNING
        scoring_range.attempt += 1
        scoring_range.owner = _owner()
        scoring_range.heartbeat_at = Now()  # the database's clock, as every beat
        scoring_range.scored = 0
        scoring_range.save(update_fields=["status", "attempt", "owner", "heartbeat_at", "scored"])
    scoring_range.rescoring = rescoring
    return scoring_range


class _Lease:
    """Beats on the range's row (and the job's) from a thread while the range is scored;
    `lost` is set once the range is no longer this attempt's."""

    def __init__(self, scoring_range: ScoringRange, job_id: int | None) -> None:
        self.range_id, self.attempt, self.job_id = (
            scoring_range.pk,
            scoring_range.attempt,
            job_id,
        )
        self.done = 0
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="range-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.CRITIC_RANGE_HEARTBEAT_SECONDS):
                try:
                    held = ScoringRange.objects.filter(
                        pk=self.range_id, attempt=self.attempt, status=ScoringRange.Status.RUNNING
                    ).update(heartbeat_at=Now(), scored=self.done)
                    if not held:
                        self.lost.set()
                        return
                    if self.job_id:
                        job_beat(job_id=self.job_id)
                except Exception:  # noqa: BLE001 - a missed beat must not stop the scoring
                    logger.warning("range %s: heartbeat not written", self.range_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _range_chunks(scoring_range: ScoringRange, chunk_size: int) -> Iterator:
    for chunk in corpus_chunks(
        corpus_id=scoring_range.rescoring.corpus_id,
        chunk_size=chunk_size,
        after=scoring_range.first_id - 1,
    ):
        last = int(chunk.ids.max()) >= scoring_range.last_id
        if last:
            chunk = chunk.until(scoring_range.last_id)
        if len(chunk):
            yield chunk
        if last:
            return


def _score(
    scoring_range: ScoringRange, lease: _Lease, chunk_size: int
) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """The range's ids, scores and histogram; None when the lease was lost meanwhile."""
    version = CriticVersion.objects.get(pk=scoring_range.rescoring.version_id)
    critic = critic_load(version)
    critic.prepare_for_corpus()
    verbalizations = relation_verbalizations()
    blas_threads = tier_get(critic.tier).blas_threads
    limits = threadpool_limits(limits=blas_threads) if blas_threads else None
    all_ids, all_scores, histogram = [], [], {}
    try:
        chunks = (
            (chunk, critic.inputs(chunk, verbalizations))
            for chunk in _range_chunks(scoring_range, chunk_size)
        )
        for chunk, inputs in read_ahead(chunks):
            if lease.lost.is_set():
                return None
            scores = np.asarray(critic.score_inputs(inputs), dtype=np.float64)
            all_ids.append(chunk.ids)
            all_scores.append(scores)
            positions = thresholds.bin_of(scores)
            for rel_id in np.unique(chunk.relation_ids).tolist():
                counts = np.bincount(
                    positions[chunk.relation_ids == rel_id], minlength=thresholds.HISTOGRAM_BINS
                )
                histogram[rel_id] = histogram.get(rel_id, 0) + counts
            lease.done += len(chunk)
    finally:
        if limits is not None:
            limits.restore_original_limits()
    ids = np.concatenate(all_ids) if all_ids else np.empty(0, np.int64)
    scores = np.concatenate(all_scores) if all_scores else np.empty(0, np.float64)
    sparse = {
        str(rel): [[int(b), int(counts[b])] for b in np.flatnonzero(counts)]
        for rel, counts in histogram.items()
    }
    return ids, scores, sparse


def scoring_range_run(
    *, range_id: int, attempt: int | None, chunk_size: int | None = None
) -> ScoringRange | None:
    """Score one range as `attempt` (the number its message carries) into the rescoring's
    set, and put the set in force when it was the last. Any other message (the range is
    done, taken, or waits for another attempt; the rescoring is over) does nothing and
    returns None, as does an attempt that lost its range meanwhile."""
    scoring_range = _claim(range_id, attempt)
    if scoring_range is None:
        return None
    rescoring = scoring_range.rescoring
    started = time.perf_counter()
    lease = _Lease(scoring_range, rescoring.job_id)
    try:
        scored = _score(scoring_range, lease, chunk_size or RANGE_CHUNK)
    except Exception as exc:
        lease.stop()
        _range_failed(scoring_range, str(exc) or exc.__class__.__name__)
        raise
    lease.stop()
    if scored is None:
        logger.warning("%s: attempt %s lost its lease", scoring_range, scoring_range.attempt)
        return None
    ids, scores, histogram = scored
    with _jobs_ended() as ended, transaction.atomic():
        locked = Rescoring.objects.select_for_update().get(pk=rescoring.pk)
        current = ScoringRange.objects.select_for_update().get(pk=scoring_range.pk)
        if (
            locked.status != Rescoring.Status.SCORING
            or current.status != ScoringRange.Status.RUNNING
            or current.attempt != scoring_range.attempt
        ):
            logger.warning(
                "%s: attempt %s wrote nothing: the range is %s (attempt %s), the rescoring %s",
                scoring_range,
                scoring_range.attempt,
                current.status,
                current.attempt,
                locked.status,
            )
            return None
        try:
            writer = ScoreSetWriter.of(locked.score_set_id)
        except ScoreSet.DoesNotExist:  # a newer set was put in force (score_corpus) meanwhile
            _supersede(locked, ended)
            return None
        writer.write(ids, scores)
        current.status = ScoringRange.Status.DONE
        current.scored = len(ids)
        current.histogram = histogram
        current.seconds = round(time.perf_counter() - started, 2)
        current.done_at = Now()
        current.error = ""
        current.save(update_fields=["status", "scored", "histogram", "seconds", "done_at", "error"])
        current.refresh_from_db(fields=["done_at"])
        remaining = locked.ranges.exclude(status=ScoringRange.Status.DONE).count()
    if locked.job_id:
        done = ScoringRange.objects.filter(
            rescoring=locked, status=ScoringRange.Status.DONE
        ).values_list("scored", flat=True)
        progress_write(
            locked.job_id,
            done=sum(done),
            total=locked.triples,
            message=f"{locked.range_count - remaining} of {locked.range_count} ranges scored",
        )
    if remaining == 0:
        rescoring_finish(rescoring_id=locked.pk)
    return current


def _range_failed(scoring_range: ScoringRange, error: str) -> None:
    """An attempt that raised: the range goes back to the queue for another, or, after
    CRITIC_RANGE_MAX_ATTEMPTS, the rescoring fails."""
    with _jobs_ended() as ended, transaction.atomic():
        rescoring = Rescoring.objects.select_for_update().get(pk=scoring_range.rescoring_id)
        updated = ScoringRange.objects.filter(
            pk=scoring_range.pk, attempt=scoring_range.attempt, status=ScoringRange.Status.RUNNING
        )
        if rescoring.status != Rescoring.Status.SCORING or not updated.exists():
            return
        if scoring_range.attempt >= settings.CRITIC_RANGE_MAX_ATTEMPTS:
            updated.update(status=ScoringRange.Status.QUEUED, owner="", error=error)
            _fail(
                rescoring, f"{scoring_range} failed {scoring_range.attempt} times: {error}", ended
            )
            return
        updated.update(status=ScoringRange.Status.QUEUED, owner="", error=error)
        _send(RANGE_TASK, [scoring_range.pk, scoring_range.attempt + 1], rescoring.queue)


# --- the whole rescoring ------------------------------------------------------------------


def _merged_histogram(rescoring: Rescoring) -> dict[str, list[int]]:
    names = {rel_id: name for rel_id, (name, _) in relation_verbalizations().items()}
    merged: dict[int, np.ndarray] = {}
    for part in rescoring.ranges.values_list("histogram", flat=True).iterator():
        for rel, pairs in part.items():
            counts = merged.setdefault(int(rel), np.zeros(thresholds.HISTOGRAM_BINS, np.int64))
            for position, count in pairs:
                counts[position] += count
    return {names.get(r, str(r)): h.tolist() for r, h in merged.items()}


def rescoring_finish(*, rescoring_id: int) -> CorpusScoring | None:
    """Put the rescoring's set in force once every range is done, with the histogram the
    dashboard counts from; exactly once, however many callers (its last range's worker,
    the beat) and whichever dies. None when there is nothing (more) to do, or when the
    rescoring was overtaken (another version active, or a newer set in force)."""
    with _jobs_ended() as ended, transaction.atomic():
        rescoring = Rescoring.objects.select_for_update().filter(pk=rescoring_id).first()
        if rescoring is None or rescoring.status != Rescoring.Status.SCORING:
            return None
        if rescoring.ranges.exclude(status=ScoringRange.Status.DONE).exists():
            return None
        # Older rescorings of the corpus still under way lose: their sets are dropped below.
        older = list(
            Rescoring.objects.select_for_update()
            .filter(
                corpus_id=rescoring.corpus_id, status=Rescoring.Status.SCORING, pk__lt=rescoring.pk
            )
            .values_list("pk", "job_id")
        )
        active = (
            CriticVersion.objects.select_for_update()
            .filter(pk=rescoring.version_id, is_active=True)
            .exists()
        )
        corpus = Corpus.objects.select_for_update().get(pk=rescoring.corpus_id)
        gone = not ScoreSet.objects.filter(pk=rescoring.score_set_id).exists()
        if not active or gone or (corpus.score_set_id or 0) > rescoring.score_set_id:
            _supersede(rescoring, ended)
            return None
        Rescoring.objects.filter(pk__in=[pk for pk, _ in older]).update(
            status=Rescoring.Status.SUPERSEDED, finished_at=timezone.now()
        )
        for _, job_id in older:
            if job_id:
                ended.append((job_id, {"superseded": True}, ""))
        scored = sum(rescoring.ranges.values_list("scored", flat=True))
        seconds = round((timezone.now() - rescoring.created_at).total_seconds(), 2)
        scoring = None

        def record() -> bool:
            nonlocal scoring
            scoring, _ = CorpusScoring.objects.update_or_create(
                corpus_id=rescoring.corpus_id,
                defaults={
                    "version_id": rescoring.version_id,
                    "scored_count": scored,
                    "histogram": _merged_histogram(rescoring),
                    "seconds": seconds,
                },
            )
            return True

        ScoreSetWriter.of(rescoring.score_set_id).commit(record)
        rescoring.status, rescoring.finished_at = Rescoring.Status.DONE, timezone.now()
        rescoring.save(update_fields=["status", "finished_at"])
        if rescoring.job_id:
            workers = rescoring.ranges.values("owner").distinct().count()
            version = CriticVersion.objects.get(pk=rescoring.version_id)
            result = {
                "version": version.number,
                "triples": scored,
                "seconds": seconds,
                "ranges": rescoring.range_count,
                "workers": workers,
            }
            ended.append((rescoring.job_id, result, ""))
    logger.info("%s put in force (%s triples)", rescoring, scored)
    return scoring


@contextmanager
def _jobs_ended() -> Iterator[list[tuple[int, dict, str]]]:
    """Collects (job id, result, error) of the jobs a transaction ends, and ends them once
    it committed (outside it, so a test's enclosing transaction sees them too)."""
    ended: list[tuple[int, dict, str]] = []
    yield ended
    for job_id, result, error in ended:
        job_finish(job_id=job_id, result=result, error=error)


def _discard(rescoring: Rescoring) -> None:
    try:
        ScoreSetWriter.of(rescoring.score_set_id).discard()
    except ScoreSet.DoesNotExist:
        pass


def _supersede(rescoring: Rescoring, ended: list) -> None:
    """Inside a transaction holding the rescoring's row."""
    rescoring.status, rescoring.finished_at = Rescoring.Status.SUPERSEDED, timezone.now()
    rescoring.save(update_fields=["status", "finished_at"])
    _discard(rescoring)
    logger.info("%s superseded", rescoring)
    if rescoring.job_id:
        ended.append((rescoring.job_id, {"superseded": True}, ""))


def _fail(rescoring: Rescoring, error: str, ended: list) -> None:
    """Inside a transaction holding the rescoring's row."""
    rescoring.status, rescoring.finished_at = Rescoring.Status.FAILED, timezone.now()
    rescoring.save(update_fields=["status", "finished_at"])
    _discard(rescoring)
    logger.error("%s failed: %s", rescoring, error)
    if rescoring.job_id:
        ended.append((rescoring.job_id, {}, error))


def rescoring_supersede(*, rescoring_id: int) -> bool:
    """Give up a rescoring whose version is no longer active, leaving nothing behind."""
    with _jobs_ended() as ended, transaction.atomic():
        rescoring = Rescoring.objects.select_for_update().filter(pk=rescoring_id).first()
        if rescoring is None or rescoring.status != Rescoring.Status.SCORING:
            return False
        _supersede(rescoring, ended)
    return True


def scoring_ranges_requeue_stale(*, stale_after: float | None = None) -> int:
    """Queue again, for their next attempt, the ranges whose worker went silent for
    `stale_after` seconds (CRITIC_RANGE_STALE_AFTER_SECONDS); fail a rescoring whose range
    used up its attempts; finish a rescoring whose ranges are all done but whose set was
    not put in force (its last worker died). Returns how many ranges were queued again.
    Heartbeats and this comparison use the database's clock, not the workers'."""
    stale_after = settings.CRITIC_RANGE_STALE_AFTER_SECONDS if stale_after is None else stale_after
    since = ExpressionWrapper(Now() - timedelta(seconds=stale_after), output_field=DateTimeField())
    stale = Q(status=ScoringRange.Status.RUNNING, heartbeat_at__lt=since)
    requeued = 0
    candidates = ScoringRange.objects.filter(stale, rescoring__status=Rescoring.Status.SCORING)
    for range_id, rescoring_id in candidates.values_list("pk", "rescoring_id"):
        with _jobs_ended() as ended, transaction.atomic():
            rescoring = Rescoring.objects.select_for_update().get(pk=rescoring_id)
            scoring_range = ScoringRange.objects.select_for_update().filter(stale, pk=range_id)
            scoring_range = scoring_range.first()
            if scoring_range is None or rescoring.status != Rescoring.Status.SCORING:
                continue
            error = f"no heartbeat for over {stale_after:g} s from {scoring_range.owner}"
            scoring_range.status, scoring_range.owner = ScoringRange.Status.QUEUED, ""
            scoring_range.error = error
            scoring_range.save(update_fields=["status", "owner", "error"])
            if scoring_range.attempt >= settings.CRITIC_RANGE_MAX_ATTEMPTS:
                _fail(rescoring, f"{scoring_range}: {error}, {scoring_range.attempt} times", ended)
                continue
            _send(RANGE_TASK, [scoring_range.pk, scoring_range.attempt + 1], rescoring.queue)
            logger.warning("%s queued again (attempt %s)", scoring_range, scoring_range.attempt + 1)
            requeued += 1
    unfinished = (
        Rescoring.objects.filter(status=Rescoring.Status.SCORING, range_count__gt=0)
        .exclude(ranges__status__in=[ScoringRange.Status.QUEUED, ScoringRange.Status.RUNNING])
        .annotate(last_done=Max("ranges__done_at"))
        .filter(last_done__lt=since)
    )
    for pk, queue in unfinished.values_list("pk", "queue"):
        with transaction.atomic():
            _send(FINISH_TASK, [pk], queue)
    return requeued
