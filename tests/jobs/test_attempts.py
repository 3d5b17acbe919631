"""A job's message starts only the attempt it was sent for (no broker here: the worker's
side is called directly, as a worker would with the message's arguments)."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from jobs.progress import progress_write
from jobs.selectors import job_view
from jobs.services import job_cancel, job_create, job_reap_stale, job_retry, job_run

pytestmark = pytest.mark.django_db


class Body:
    """A job's work that counts its runs."""

    def __init__(self, fail: bool = False) -> None:
        self.runs: list[int] = []
        self.fail = fail

    def __call__(self, job: Job, progress) -> dict:
        self.runs.append(job.attempts)
        if self.fail:
            raise RuntimeError("the work broke")
        return {"attempt": job.attempts}


def new_job() -> Job:
    job = job_create(kind="demo", params={})
    Job.objects.filter(pk=job.pk).update(task_name="demo.task")  # so it can be retried
    job.refresh_from_db()
    return job


def fail_attempt(job: Job, attempt: int) -> None:
    with pytest.raises(RuntimeError):
        job_run(job_id=job.pk, attempt=attempt, body=Body(fail=True))


def test_a_failed_job_is_not_started_again_by_its_redelivered_message(caplog):
    job = new_job()
    fail_attempt(job, 1)
    body = Body()
    with caplog.at_level(logging.WARNING, logger="jobs.services"):
        assert job_run(job_id=job.pk, attempt=1, body=body) is None
    assert body.runs == []
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.FAILED, 1)
    assert f"job {job.pk} (demo): message for attempt 1 ignored: the job failed" in caplog.text


def test_after_a_retry_only_the_retrys_message_starts_the_job_and_only_once(caplog):
    job = new_job()
    fail_attempt(job, 1)
    job_retry(job=job)
    body = Body()
    with caplog.at_level(logging.WARNING, logger="jobs.services"):
        assert job_run(job_id=job.pk, attempt=1, body=body) is None  # the stale message
        assert job_run(job_id=job.pk, attempt=2, body=body).status == Job.Status.SUCCEEDED
        assert job_run(job_id=job.pk, attempt=2, body=body) is None  # delivered again
        assert job_run(job_id=job.pk, attempt=1, body=body) is None
    assert body.runs == [2]
    assert "message for attempt 1 ignored: the job waits for attempt 2" in caplog.text
    assert "message for attempt 1 ignored: the job succeeded (on a newer attempt" in caplog.text


def test_the_same_message_delivered_while_it_runs_does_nothing(caplog):
    job = new_job()
    inner = Body()

    def body(job: Job, progress) -> dict:
        # A second delivery of this very message, to another worker, while this one runs.
        assert job_run(job_id=job.pk, attempt=1, body=inner) is None
        return {}

    with caplog.at_level(logging.WARNING, logger="jobs.services"):
        job_run(job_id=job.pk, attempt=1, body=body)
    assert inner.runs == []
    assert "message for attempt 1 ignored: the job is running (attempt 1)" in caplog.text


def test_a_cancelled_job_is_not_started_and_starting_it_again_runs_it_once():
    job = new_job()
    assert job_cancel(job=job)
    body = Body()
    assert job_run(job_id=job.pk, attempt=1, body=body) is None
    job_retry(job=job)  # "Start again": it never ran, so it waits for attempt 1 still
    # The first message and the new one are both for attempt 1: one runs, one does nothing.
    assert job_run(job_id=job.pk, attempt=1, body=body) is not None
    assert job_run(job_id=job.pk, attempt=1, body=body) is None
    assert body.runs == [1]


def test_a_message_for_an_attempt_the_job_is_not_waiting_for_does_nothing():
    job = new_job()
    body = Body()
    assert job_run(job_id=job.pk, attempt=2, body=body) is None
    assert job_run(job_id=job.pk, attempt=0, body=body) is None
    assert job_run(job_id=job.pk + 1000, attempt=1, body=body) is None  # no such job
    assert body.runs == []
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED


def test_a_message_from_before_attempt_numbers_starts_only_a_job_that_never_ran(caplog):
    job = new_job()
    body = Body(fail=True)
    with pytest.raises(RuntimeError):
        job_run(job_id=job.pk, attempt=None, body=body)
    job_retry(job=job)
    with caplog.at_level(logging.WARNING, logger="jobs.services"):
        assert job_run(job_id=job.pk, attempt=None, body=body) is None
    assert body.runs == [1]
    assert "carries no attempt number" in caplog.text


def test_a_worker_given_up_on_cannot_overwrite_the_attempt_that_replaced_it(settings):
    """Attempt 1's worker hangs, is reaped, the job is retried and attempt 2 succeeds; when
    attempt 1's worker finally finishes (or fails), the job keeps attempt 2's outcome."""
    settings.JOB_STALE_AFTER_SECONDS = 60
    job = new_job()

    def hung_then_finishes(job: Job, progress) -> dict:
        job_reap_stale(now=timezone.now() + timedelta(minutes=5))
        job_retry(job=job)
        job_run(job_id=job.pk, attempt=2, body=lambda job, progress: {"by": "attempt 2"})
        return {"by": "attempt 1"}

    job_run(job_id=job.pk, attempt=1, body=hung_then_finishes)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.result) == (
        Job.Status.SUCCEEDED,
        2,
        {"by": "attempt 2"},
    )

    other = new_job()

    def hung_then_fails(job: Job, progress) -> dict:
        job_reap_stale(now=timezone.now() + timedelta(minutes=5))
        job_retry(job=job)
        job_run(job_id=job.pk, attempt=2, body=lambda job, progress: {"by": "attempt 2"})
        raise RuntimeError("attempt 1 broke late")

    with pytest.raises(RuntimeError):
        job_run(job_id=other.pk, attempt=1, body=hung_then_fails)
    other.refresh_from_db()
    assert (other.status, other.error, other.result) == (
        Job.Status.SUCCEEDED,
        "",
        {"by": "attempt 2"},
    )


def test_a_reaped_job_keeps_how_far_it_got(settings, researcher_client):
    settings.JOB_STALE_AFTER_SECONDS = 60
    job = new_job()

    def killed_midway(job: Job, progress) -> dict:
        progress(40, 100, "40 of 100 rows", force=True)
        # The worker dies here; the reaper runs once its heartbeat is old.
        assert job_reap_stale(now=timezone.now() + timedelta(minutes=5)) == 1
        return {}

    job_run(job_id=job.pk, attempt=1, body=killed_midway)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "heartbeat" in job.error
    assert (job.progress_done, job.progress_total, job.progress_message) == (
        40,
        100,
        "40 of 100 rows",
    )
    view = job_view(job=job)
    assert (view.percent, view.message) == (40, "40 of 100 rows")
    page = researcher_client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'aria-valuenow="40"' in page and "40 of 100 rows" in page


def test_a_failed_job_keeps_its_last_progress_line():
    job = new_job()

    def breaks_midway(job: Job, progress) -> dict:
        progress(7, 10, "7 of 10 batches", force=True)
        raise RuntimeError("batch 8 broke")

    with pytest.raises(RuntimeError):
        job_run(job_id=job.pk, attempt=1, body=breaks_midway)
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total, job.progress_message) == (
        7,
        10,
        "7 of 10 batches",
    )


def test_a_retried_job_does_not_show_the_last_attempts_live_progress():
    job = new_job()
    fail_attempt(job, 1)
    progress_write(job.pk, done=99, total=100, message="left over")
    job_retry(job=job)

    def looks(job: Job, progress) -> dict:
        assert job_view(job=Job.objects.get(pk=job.pk)).message != "left over"
        return {}

    job_run(job_id=job.pk, attempt=2, body=looks)
