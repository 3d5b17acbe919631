"""A job's queue is chosen when it is queued and kept on the job: its message goes there,
and so does a retry's (one task per job kind, no task twins routed by name)."""

import json

import pytest
from celery import shared_task

from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_retry

pytestmark = pytest.mark.broker


@shared_task(name="tests.jobs.noop")
def noop(job_id: int, attempt: int | None = None) -> None:
    return None


def messages(client, queue: str) -> list[dict]:
    return [json.loads(m)["headers"] for m in client.lrange(queue, 0, -1)]


def test_a_job_sent_to_the_gpu_queue_goes_there_and_its_retry_too(broker):
    job = job_create(kind="tests.noop", params={})
    job_enqueue(job=job, task=noop, queue="gpu")  # outside a transaction: sent at once
    job.refresh_from_db()
    assert (job.task_name, job.queue) == ("tests.jobs.noop", "gpu")
    [sent] = messages(broker.client, "gpu")
    assert sent["task"] == "tests.jobs.noop" and json.loads(sent["argsrepr"].replace("'", '"')) == [
        job.pk,
        1,
    ]
    assert messages(broker.client, "default") == []

    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, attempts=1)
    job_retry(job=Job.objects.get(pk=job.pk))
    assert len(messages(broker.client, "gpu")) == 2 and messages(broker.client, "default") == []


def test_a_job_queued_without_a_queue_goes_to_the_default_one(broker):
    job = job_create(kind="tests.noop", params={})
    job_enqueue(job=job, task=noop)
    assert Job.objects.get(pk=job.pk).queue == "default"
    assert len(messages(broker.client, "default")) == 1 and messages(broker.client, "gpu") == []
