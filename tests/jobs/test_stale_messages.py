"""A message the broker delivers again (a dead worker's, with acks_late) starts nothing it
was not sent for: a real Redis broker and a real worker, the message's own bytes put back
in the queue, as Redis does for an unacknowledged message."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from corpora.models import Corpus, Triple
from corpora.services import corpus_import_job_create
from jobs.models import Job
from jobs.services import job_reap_stale, job_retry
from tests.jobs.conftest import worker

pytestmark = pytest.mark.broker

A_ROWS = "PersonX reads\txNeed\ta book\nPersonX reads\txWant\tto learn\n"
B_ROWS = "PersonX swims\txNeed\twater\nPersonX swims\txWant\tto rest\nPersonX swims\txIntent\tfun\n"


def finished(job: Job, timeout: float = 60) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if not job.is_active:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job.pk} still {job.status} after {timeout} s")


def import_job(tmp_path: Path, name: str, rows: str, corpus: str, user) -> Job:
    path = tmp_path / name
    path.write_text(rows)
    return corpus_import_job_create(path=path, corpus_name=corpus, created_by=user)


def drained(tmp_path: Path, user) -> None:
    """A job queued behind everything else has run: the worker took every message before."""
    sentinel = finished(import_job(tmp_path, "sentinel.tsv", A_ROWS, "sentinel", user))
    assert sentinel.status == Job.Status.SUCCEEDED, sentinel.error


def killed_and_reaped(job: Job, attempt: int) -> None:
    """The worker running `attempt` died mid-import (its transaction rolled back); the
    reaper then failed the job."""
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, attempts=attempt, started_at=long_ago, heartbeat_at=long_ago
    )
    assert job_reap_stale() == 1


def heads(corpus: str) -> set[str]:
    return set(Triple.objects.filter(corpus__name=corpus).values_list("head__text", flat=True))


def test_a_failed_jobs_message_delivered_again_imports_nothing(broker, tmp_path, researcher):
    """The issue's case: the import is killed and reaped, another file goes into the same
    corpus, then the dead worker's message comes back."""
    job = import_job(tmp_path, "a.tsv", A_ROWS, "shared", researcher)
    message = broker.take()
    killed_and_reaped(job, attempt=1)
    with worker():
        other = finished(import_job(tmp_path, "b.tsv", B_ROWS, "shared", researcher))
        assert other.status == Job.Status.SUCCEEDED, other.error
        broker.redeliver(message)
        drained(tmp_path, researcher)
    assert heads("shared") == {"PersonX swims"}  # b.tsv's rows only
    assert Corpus.objects.get(name="shared").triple_count == 3
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.FAILED, 1)


def test_after_a_retry_stale_and_repeated_messages_run_nothing_twice(broker, tmp_path, researcher):
    job = import_job(tmp_path, "a.tsv", A_ROWS, "retried", researcher)
    first = broker.take()
    killed_and_reaped(job, attempt=1)
    job_retry(job=job)
    [retry] = broker.peek()
    # The dead worker's message comes back before the retry's, and the retry's twice.
    broker.redeliver(first, first=True)
    broker.redeliver(retry)
    assert broker.peek() == [first, retry, retry]
    with worker():
        drained(tmp_path, researcher)
        broker.redeliver(first)  # and once more after the retry finished
        drained(tmp_path, researcher)
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2), job.error
    assert job.result["imported"] == 2
    assert Corpus.objects.get(name="retried").triple_count == 2


def test_a_stale_message_does_not_run_beside_the_retry(broker, tmp_path, researcher):
    """While another worker runs the retry, the dead worker's message and a second delivery
    of the retry's message both reach this worker: neither starts the import."""
    job = import_job(tmp_path, "a.tsv", A_ROWS, "beside", researcher)
    first = broker.take()
    killed_and_reaped(job, attempt=1)
    job_retry(job=job)
    retry = broker.take()  # another worker took the retry's message and runs attempt 2
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, attempts=2, heartbeat_at=timezone.now()
    )
    broker.redeliver(first)
    broker.redeliver(retry)
    with worker():
        drained(tmp_path, researcher)
    assert not Triple.objects.filter(corpus__name="beside").exists()
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.RUNNING, 2)
