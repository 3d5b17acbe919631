"""A queued job's page says whether a worker runs: waiting behind N jobs, or no worker
seen (for how long), with the command that starts one."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Job
from jobs.selectors import job_queue_wait, workers_recent
from jobs.workers import worker_heartbeat_write
from tests.jobs.conftest import worker

pytestmark = pytest.mark.django_db

DEFAULT, GPU = "default", "gpu"


def queued(queue: str = DEFAULT, status: str = Job.Status.QUEUED) -> Job:
    return Job.objects.create(kind="demo", task_name="demo.task", queue=queue, status=status)


def beat(hostname: str, queues: list[str], seconds_ago: float = 0, stopped=False) -> None:
    worker_heartbeat_write(
        hostname=hostname, queues=queues, stopped=stopped, now=time.time() - seconds_ago
    )


def detail(client, job: Job) -> str:
    return " ".join(client.get(reverse("jobs:job_detail", args=[job.pk])).text.split())


def test_with_no_worker_ever_seen_the_page_says_to_start_one(researcher_client):
    job = queued()
    wait = job_queue_wait(job=job)
    assert (wait.queue, wait.workers, wait.last_seen) == ("default", 0, None)
    assert (
        "No worker serving the <code>default</code> queue has been seen: start one with "
        "<code>make worker</code>." in detail(researcher_client, job)
    )


def test_with_a_worker_alive_the_page_counts_the_jobs_ahead(researcher_client):
    running = queued(status=Job.Status.RUNNING)
    earlier = queued()
    job = queued()
    queued()  # queued after it: not ahead
    queued(GPU)  # another queue
    queued(status=Job.Status.FAILED)
    beat("w1@host", ["default"], seconds_ago=5)
    wait = job_queue_wait(job=job)
    assert (wait.ahead, wait.workers) == (2, 1)
    assert (
        "Waiting for a worker: 2 jobs ahead of it on the <code>default</code> queue (1 worker"
        in (detail(researcher_client, job))
    )
    running.delete()
    earlier.delete()
    assert "next in line on the <code>default</code> queue" in detail(researcher_client, job)


def test_a_worker_gone_quiet_or_stopped_is_not_waited_for(researcher_client, settings):
    settings.WORKER_HEARTBEAT_SECONDS = 10
    job = queued()
    beat("w1@host", ["default"], seconds_ago=300)
    wait = job_queue_wait(job=job)
    assert (wait.workers, wait.silent_for) == (0, "5 min")
    assert (
        "No worker serving the <code>default</code> queue has been seen for 5 min: start one "
        "with <code>make worker</code>." in detail(researcher_client, job)
    )
    beat("w1@host", ["default"], stopped=True)
    assert job_queue_wait(job=job).workers == 0
    beat("w1@host", ["default"])
    assert job_queue_wait(job=job).workers == 1


def test_a_gpu_job_needs_a_worker_serving_the_gpu_queue(researcher_client):
    job = queued(GPU)
    beat("cpu@host", ["default"])
    wait = job_queue_wait(job=job)
    assert (wait.queue, wait.workers, wait.last_seen) == ("gpu", 0, None)
    assert "start one with <code>.venv/bin/celery -A config worker -Q gpu</code>" in detail(
        researcher_client, job
    )
    beat("gpu@host", ["default", "gpu"])
    assert job_queue_wait(job=job).workers == 1


def test_the_job_list_names_the_workers(researcher_client):
    page = " ".join(researcher_client.get(reverse("jobs:job_list")).text.split())
    assert "No worker has been seen: start one with <code>make worker</code>." in page
    beat("w1@host", ["default", "gpu"])
    beat("w2@host", ["default"], seconds_ago=600, stopped=True)
    page = " ".join(researcher_client.get(reverse("jobs:job_list")).text.split())
    assert "<code>w1@host</code> (default, gpu): alive" in page
    assert "<code>w2@host</code> (default): stopped 10 min ago" in page


@pytest.mark.broker
def test_a_real_worker_beats_while_it_runs_and_says_when_it_stopped(broker):
    def serving_default():
        return [s for s in workers_recent() if "default" in s.worker.queues]

    assert serving_default() == []
    with worker():
        deadline = time.monotonic() + 10
        while not serving_default() and time.monotonic() < deadline:
            time.sleep(0.05)
        [status] = serving_default()
        assert status.alive and not status.worker.stopped
        assert timezone.now() - status.worker.last_seen < timedelta(seconds=30)
        assert job_queue_wait(job=queued()).workers == 1
    [status] = serving_default()
    assert status.worker.stopped and not status.alive
