from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Job
from .progress import ProgressReporter, progress_clear, progress_read

logger = logging.getLogger(__name__)


def job_create(*, kind: str, params: dict[str, Any], created_by=None) -> Job:
    return Job.objects.create(kind=kind, params=params, created_by=created_by)


def job_enqueue(*, job: Job, task) -> None:
    """Send the job's task once the transaction that created the job commits."""
    if job.task_name != task.name:
        job.task_name = task.name
        job.save(update_fields=["task_name"])
    transaction.on_commit(lambda: task.delay(job.pk))


class JobAlreadyFinished(Exception):
    pass


def _claim(job_id: int) -> Job | None:
    """Mark a queued (or retried) job running; None when there is nothing to do."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status in (Job.Status.SUCCEEDED, Job.Status.CANCELLED):
            return None
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.error = ""
        job.started_at = job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "attempts", "error", "started_at", "heartbeat_at"])
        return job


def job_run(*, job_id: int, body: Callable[[Job, ProgressReporter], dict[str, Any]]) -> Job | None:
    """Run `body` for a job: idempotent (a finished job is left alone), records the outcome.

    `body` does the work and returns the result dict; it raises to fail the job.
    """
    job = _claim(job_id)
    if job is None:
        logger.info("job %s already finished; nothing to do", job_id)
        return None
    reporter = ProgressReporter(job.pk)
    try:
        result = body(job, reporter)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the job row
        logger.exception("job %s failed", job.pk)
        live = progress_read(job.pk)
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED,
            error=str(exc) or exc.__class__.__name__,
            result={"traceback": traceback.format_exc(limit=5)},
            finished_at=timezone.now(),
            progress_done=live.done if live else job.progress_done,
        )
        progress_clear(job.pk)
        raise
    live = progress_read(job.pk)
    # A job cancelled while it ran stays cancelled, with what it did as its result.
    finished = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=Job.Status.SUCCEEDED,
        result=result,
        finished_at=timezone.now(),
        progress_done=live.total or live.done if live else job.progress_done,
        progress_total=live.total if live else job.progress_total,
    )
    if not finished:
        Job.objects.filter(pk=job.pk).update(result=result)
    progress_clear(job.pk)
    job.refresh_from_db()
    return job


def job_reap_stale(*, now=None) -> int:
    """Fail running jobs whose heartbeat went quiet, so they can be retried."""
    now = now or timezone.now()
    stale_after = timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    reaped = 0
    for job in Job.objects.filter(status=Job.Status.RUNNING):
        live = progress_read(job.pk)
        last_beat = (
            datetime.fromtimestamp(live.heartbeat, tz=UTC)
            if live
            else job.heartbeat_at or job.started_at
        )
        if last_beat is None or now - last_beat > stale_after:
            updated = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.FAILED,
                error=f"No heartbeat for over {settings.JOB_STALE_AFTER_SECONDS} s: "
                "the worker died or was stopped. Retry the job.",
                finished_at=now,
            )
            reaped += updated
    return reaped


def job_cancel(*, job: Job) -> bool:
    """Cancel a job that has not started, or a running one whose work checks for it (its
    params say ``cancellable``); True when it was cancelled."""
    statuses = [Job.Status.QUEUED]
    if job.params.get("cancellable"):
        statuses.append(Job.Status.RUNNING)
    return bool(
        Job.objects.filter(pk=job.pk, status__in=statuses).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now()
        )
    )


def job_retry(*, job: Job) -> Job:
    """Queue a failed (or cancelled) job again; its task starts over (imports are
    all-or-nothing; generation runs continue where they stopped)."""
    from config.celery import app

    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)  # two clicks, one retry
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED) or not job.task_name:
            raise ValueError(
                f"Only a failed or cancelled job can be retried; job {job.pk} is {job.status}."
            )
        job.status, job.error, job.finished_at = Job.Status.QUEUED, "", None
        job.save(update_fields=["status", "error", "finished_at"])
        transaction.on_commit(lambda: app.send_task(job.task_name, args=[job.pk]))
    return job
