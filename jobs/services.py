from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import Conflict

from .models import Job
from .progress import LiveProgress, ProgressReporter, progress_clear, progress_read

logger = logging.getLogger(__name__)


def job_create(
    *,
    kind: str,
    params: dict[str, Any],
    created_by=None,
    title: str = "",
    subject_url: str = "",
    subject_label: str = "",
) -> Job:
    return Job.objects.create(
        kind=kind,
        params=params,
        created_by=created_by,
        title=title[:200],
        subject_url=subject_url,
        subject_label=subject_label[:200],
    )


def job_subject_set(*, job: Job, url: str, label: str) -> None:
    """Link the job to what it is about once that exists (an import's new corpus)."""
    Job.objects.filter(pk=job.pk).update(subject_url=url, subject_label=label[:200])
    job.subject_url, job.subject_label = url, label[:200]


def job_send(*, job: Job) -> None:
    """Send the job's task for its next attempt once the current transaction commits.

    The message carries the attempt it is for, so a message the broker delivers again
    later (a dead worker's, with ``acks_late``) cannot start the job a second time."""
    from config.celery import app

    task_name, args, queue = job.task_name, [job.pk, job.attempts + 1], job.queue
    transaction.on_commit(lambda: app.send_task(task_name, args=args, queue=queue))


def job_enqueue(*, job: Job, task, queue: str | None = None) -> None:
    """Send the job's task to `queue` (the default queue unless told) once the transaction
    that created the job commits. Task and queue are kept on the job, for retries."""
    queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
    if (job.task_name, job.queue) != (task.name, queue):
        job.task_name, job.queue = task.name, queue
        job.save(update_fields=["task_name", "queue"])
    job_send(job=job)


class JobRefused(Conflict):
    code = "job_refused"


class JobAlreadyFinished(Exception):
    pass


def _refusal(job: Job, attempt: int | None) -> str | None:
    """Why a message sent for `attempt` must not start `job`; None when it may.

    A job starts only when it is queued and waits for exactly that attempt (the one after
    its last). A message without a number was sent before messages carried one: it may
    start a queued job that never ran, and nothing else."""
    waits_for = job.attempts + 1
    if job.status == Job.Status.QUEUED:
        if attempt == waits_for or (attempt is None and job.attempts == 0):
            return None
        if attempt is None:
            return (
                f"the message carries no attempt number (sent before the upgrade) and the "
                f"job has run before; it waits for attempt {waits_for}"
            )
        return f"the job waits for attempt {waits_for}"
    state = {
        Job.Status.RUNNING: "the job is running",
        Job.Status.SUCCEEDED: "the job succeeded",
        Job.Status.FAILED: "the job failed",
        Job.Status.CANCELLED: "the job was cancelled",
    }[job.status]
    newer = attempt is not None and attempt < job.attempts
    return f"{state} ({'on a newer attempt, ' if newer else ''}attempt {job.attempts})"


def _claim(job_id: int, attempt: int | None) -> Job | None:
    """Mark the job running as `attempt`; None (and a log line saying why) when the message
    is not the one the job waits for."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s: message ignored: there is no such job", job_id)
            return None
        refusal = _refusal(job, attempt)
        if refusal:
            logger.warning(
                "job %s (%s): message for attempt %s ignored: %s",
                job.pk,
                job.kind,
                "?" if attempt is None else attempt,
                refusal,
            )
            return None
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.error = ""
        job.started_at = job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "attempts", "error", "started_at", "heartbeat_at"])
    progress_clear(job.pk)  # the last attempt's live progress is not this one's
    return job


@dataclass
class JobContinues:
    """What a job's body returns when it handed its work to other tasks (ranges that many
    workers share): the job stays running, those tasks keep its heartbeat (`job_beat`),
    and the last of them ends it (`job_finish`)."""

    result: dict[str, Any] = field(default_factory=dict)


def job_run(
    *,
    job_id: int,
    attempt: int | None,
    body: Callable[[Job, ProgressReporter], dict[str, Any] | JobContinues],
) -> Job | None:
    """Run `body` as the job's `attempt` (the number its message carries; None for a message
    sent before messages carried one) and record the outcome. Any other message (the job
    finished, failed, was cancelled, is running, or waits for another attempt) does
    nothing and returns None.

    `body` does the work and returns the result dict; it raises to fail the job. It returns
    `JobContinues` when other tasks finish the work: the job then stays running.
    """
    job = _claim(job_id, attempt)
    if job is None:
        return None
    # Every write below is for this attempt only: a worker that was given up on (reaped,
    # then retried) must not overwrite the outcome of the attempt that replaced it.
    this_attempt = Job.objects.filter(pk=job.pk, attempts=job.attempts)
    reporter = ProgressReporter(job.pk)
    try:
        result = body(job, reporter)
    except Exception as exc:  # noqa: BLE001 - every failure must reach the job row
        logger.exception("job %s failed", job.pk)
        live = progress_read(job.pk)
        this_attempt.update(
            status=Job.Status.FAILED,
            error=str(exc) or exc.__class__.__name__,
            result={"traceback": traceback.format_exc(limit=5)},
            finished_at=timezone.now(),
            **_progress_fields(job, live),
        )
        progress_clear(job.pk)
        raise
    if isinstance(result, JobContinues):
        # The tasks it handed work to may have ended it already (job_finish): keep theirs.
        this_attempt.filter(status=Job.Status.RUNNING).update(
            result=result.result, heartbeat_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    live = progress_read(job.pk)
    # A job cancelled while it ran stays cancelled, with what it did as its result.
    finished = this_attempt.filter(status=Job.Status.RUNNING).update(
        status=Job.Status.SUCCEEDED,
        result=result,
        finished_at=timezone.now(),
        progress_done=live.total or live.done if live else job.progress_done,
        progress_total=live.total if live else job.progress_total,
        progress_message=live.message if live else job.progress_message,
    )
    if not finished:
        this_attempt.update(result=result, **_progress_fields(job, live))
    progress_clear(job.pk)
    job.refresh_from_db()
    return job


def job_beat(*, job_id: int) -> None:
    """A running job's heartbeat on its row, from any machine (the tasks a `JobContinues`
    job handed its work to beat for it)."""
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())


def job_finish(*, job_id: int, result: dict[str, Any], error: str = "") -> bool:
    """End a job that its body left running (`JobContinues`): succeeded with `result`, or
    failed with `error`. A job that is no longer running (cancelled, reaped and retried
    since) is left as it is; True when this call ended it."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return False
    live = progress_read(job_id)
    fields = _progress_fields(job, live)
    if not error and live is not None:
        fields["progress_done"] = live.total or live.done
    ended = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
        status=Job.Status.FAILED if error else Job.Status.SUCCEEDED,
        result={**job.result, **result},
        error=error,
        finished_at=timezone.now(),
        **fields,
    )
    if ended:
        progress_clear(job_id)
    return bool(ended)


def _progress_fields(job: Job, live: LiveProgress | None) -> dict[str, Any]:
    """The live progress, kept on the row so a stopped job's page shows how far it got."""
    if live is None:
        return {}
    return {
        "progress_done": live.done,
        "progress_total": live.total,
        "progress_message": live.message,
    }


def job_reap_stale(*, now=None) -> int:
    """Fail running jobs whose heartbeat went quiet, so they can be retried; each keeps the
    progress it had."""
    now = now or timezone.now()
    stale_after = timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    reaped = 0
    for job in Job.objects.filter(status=Job.Status.RUNNING):
        live = progress_read(job.pk)
        # The newer of the live heartbeat (cache) and the row's (`job_beat`: work shared by
        # workers on machines that may not share the cache).
        beats = [
            datetime.fromtimestamp(live.heartbeat, tz=UTC) if live else None,
            job.heartbeat_at or job.started_at,
        ]
        last_beat = max((beat for beat in beats if beat is not None), default=None)
        if last_beat is None or now - last_beat > stale_after:
            updated = Job.objects.filter(
                pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts
            ).update(
                status=Job.Status.FAILED,
                error=f"No heartbeat for over {settings.JOB_STALE_AFTER_SECONDS} s: "
                "the worker died or was stopped. Retry the job.",
                finished_at=now,
                **_progress_fields(job, live),
            )
            if updated:
                progress_clear(job.pk)
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
    all-or-nothing; generation runs continue where they stopped). Its message is for the
    next attempt, so a message of an earlier attempt still in the broker starts nothing."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)  # two clicks, one retry
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED) or not job.task_name:
            raise JobRefused(
                f"Only a failed or cancelled job can be retried; job {job.pk} is {job.status}."
            )
        job.status, job.error, job.finished_at = Job.Status.QUEUED, "", None
        job.save(update_fields=["status", "error", "finished_at"])
        job_send(job=job)
    return job
