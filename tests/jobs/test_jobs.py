import time
from datetime import timedelta

import pytest
from django.utils import timezone

from corpora.models import Corpus
from corpora.services import corpus_import_job_create, corpus_import_job_run
from jobs.models import Job
from jobs.progress import progress_write
from jobs.services import JobRefused, job_create, job_reap_stale, job_retry, job_run

pytestmark = pytest.mark.django_db


def test_a_job_records_its_result_and_a_rerun_does_nothing():
    job = job_create(kind="demo", params={})
    calls = []

    def body(job, progress):
        calls.append(job.pk)
        progress(5, 10, force=True)
        return {"answer": 42}

    job_run(job_id=job.pk, attempt=1, body=body)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.result == {"answer": 42}
    assert job.attempts == 1
    assert job_run(job_id=job.pk, attempt=1, body=body) is None  # a redelivery is a no-op
    assert calls == [job.pk]


def test_a_failing_job_keeps_the_error_and_can_run_again():
    job = job_create(kind="demo", params={})

    def broken(job, progress):
        raise ValueError("input.tsv, line 3, field 'tail': empty")

    with pytest.raises(ValueError):
        job_run(job_id=job.pk, attempt=1, body=broken)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "line 3" in job.error
    Job.objects.filter(pk=job.pk).update(task_name="demo.task")
    job_retry(job=job)
    job_run(job_id=job.pk, attempt=2, body=lambda job, progress: {"ok": True})
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.SUCCEEDED, 2)


def test_stale_running_jobs_are_failed_and_live_ones_left_alone(settings):
    settings.JOB_STALE_AFTER_SECONDS = 60
    old = timezone.now() - timedelta(minutes=10)
    stale = Job.objects.create(
        kind="demo", status=Job.Status.RUNNING, started_at=old, heartbeat_at=old
    )
    alive = Job.objects.create(
        kind="demo", status=Job.Status.RUNNING, started_at=old, heartbeat_at=old
    )
    progress_write(alive.pk, done=1, total=2)  # a fresh heartbeat in the cache
    assert job_reap_stale() == 1
    stale.refresh_from_db()
    alive.refresh_from_db()
    assert stale.status == Job.Status.FAILED
    assert "heartbeat" in stale.error
    assert alive.status == Job.Status.RUNNING


def test_import_job_of_a_bad_file_fails_with_the_line_and_imports_nothing(tmp_path, researcher):
    path = tmp_path / "bad.tsv"
    path.write_text("PersonX runs\txNeed\tshoes\nPersonX runs\txNeed\n")
    job = corpus_import_job_create(path=path, corpus_name="bad", created_by=researcher)
    with pytest.raises(Exception, match="line 2"):
        corpus_import_job_run(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "bad.tsv, line 2" in job.error
    assert not Corpus.objects.filter(name="bad").exists()


@pytest.mark.broker
def test_import_job_runs_on_a_worker_through_redis(redis_celery_worker, tmp_path, researcher):
    path = tmp_path / "w.tsv"
    path.write_text("PersonX runs\txNeed\tshoes\nPersonX runs\txWant\trest\n")
    job = corpus_import_job_create(path=path, corpus_name="via-worker", created_by=researcher)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if not job.is_active:
            break
        time.sleep(0.2)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["imported"] == 2
    assert Corpus.objects.get(name="via-worker").triple_count == 2


def test_a_failed_import_can_be_retried_after_the_file_is_fixed(
    tmp_path, researcher, django_capture_on_commit_callbacks
):
    path = tmp_path / "fixable.tsv"
    path.write_text("PersonX runs\txNeed\n")
    job = corpus_import_job_create(path=path, corpus_name="fixable", created_by=researcher)
    assert job.task_name == "corpora.run_import_job"
    with pytest.raises(Exception, match="line 1"):
        corpus_import_job_run(job_id=job.pk, attempt=1)
    path.write_text("PersonX runs\txNeed\tshoes\n")
    with django_capture_on_commit_callbacks() as callbacks:
        job = job_retry(job=job)
    assert job.status == Job.Status.QUEUED
    assert len(callbacks) == 1  # the task is sent again once the retry commits
    corpus_import_job_run(job_id=job.pk, attempt=2)  # what the worker then does
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == (Job.Status.SUCCEEDED, 2, "")
    assert Corpus.objects.get(name="fixable").triple_count == 1


def test_only_failed_or_cancelled_jobs_can_be_retried():
    job = Job.objects.create(kind="demo", status=Job.Status.SUCCEEDED, task_name="x")
    with pytest.raises(JobRefused, match="Only a failed or cancelled job"):
        job_retry(job=job)


def test_cancel_takes_queued_jobs_and_only_cancellable_running_ones():
    from jobs.services import job_cancel

    queued = Job.objects.create(kind="demo", status=Job.Status.QUEUED)
    running = Job.objects.create(kind="demo", status=Job.Status.RUNNING)
    cancellable = Job.objects.create(
        kind="demo", status=Job.Status.RUNNING, params={"cancellable": True}
    )
    assert job_cancel(job=queued) and job_cancel(job=cancellable)
    assert not job_cancel(job=running)
    assert set(Job.objects.values_list("status", flat=True)) == {"cancelled", "running"}


def test_retry_button_and_api(researcher_client, tmp_path, researcher):
    path = tmp_path / "bad.tsv"
    path.write_text("broken\n")
    job = corpus_import_job_create(path=path, corpus_name="b", created_by=researcher)
    with pytest.raises(Exception, match="line 1"):
        corpus_import_job_run(job_id=job.pk, attempt=1)
    page = researcher_client.get(f"/jobs/{job.pk}/")
    assert b"Retry" in page.content
    response = researcher_client.post(f"/jobs/{job.pk}/retry/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    conflict = researcher_client.post(f"/api/jobs/{job.pk}/retry/")
    assert conflict.status_code == 409
