"""A job whose body hands its work to other tasks (a rescoring's ranges, shared by many
workers) stays running while they beat for it, and the last of them ends it."""

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from jobs.models import Job
from jobs.progress import progress_write
from jobs.services import JobContinues, job_beat, job_create, job_finish, job_reap_stale, job_run

pytestmark = pytest.mark.django_db


def test_a_continued_job_stays_running_beats_through_its_row_and_is_ended_once(settings):
    settings.JOB_STALE_AFTER_SECONDS = 60
    job = job_create(kind="demo", params={})
    job_run(job_id=job.pk, attempt=1, body=lambda job, progress: JobContinues({"parts": 3}))
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.result == {"parts": 3}

    # The parts' workers, on machines that may not share the cache, beat on the row: an
    # old live heartbeat in this cache does not make the job stale.
    long_ago = timezone.now() - timedelta(minutes=10)
    Job.objects.filter(pk=job.pk).update(started_at=long_ago, heartbeat_at=long_ago)
    progress_write(job.pk, done=1, total=3)
    live = cache.get(f"job-progress:{job.pk}")
    cache.set(f"job-progress:{job.pk}", {**live, "heartbeat": time.time() - 600})
    assert job_reap_stale() == 1  # silent everywhere: reaped
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    cache.set(f"job-progress:{job.pk}", {**live, "heartbeat": time.time() - 600})
    job_beat(job_id=job.pk)
    assert job_reap_stale() == 0  # its row's heartbeat is fresh

    assert job_finish(job_id=job.pk, result={"triples": 347})
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.result == {"parts": 3, "triples": 347}
    assert not job_finish(job_id=job.pk, result={"triples": 0}, error="late")  # once only
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.result["triples"] == 347


def test_a_continued_job_can_be_ended_as_failed():
    job = job_create(kind="demo", params={})
    job_run(job_id=job.pk, attempt=1, body=lambda job, progress: JobContinues())
    assert job_finish(job_id=job.pk, result={}, error="range 7 failed 5 times")
    job.refresh_from_db()
    assert (job.status, job.error) == (Job.Status.FAILED, "range 7 failed 5 times")
