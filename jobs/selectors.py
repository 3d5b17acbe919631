from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import Job
from .progress import progress_read
from .workers import WorkerSeen, workers_seen


@dataclass(frozen=True)
class JobView:
    job: Job
    done: int
    total: int | None
    message: str

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(100, int(100 * self.done / self.total))


def job_view(*, job: Job) -> JobView:
    live = progress_read(job.pk) if job.status == Job.Status.RUNNING else None
    if live:
        return JobView(job=job, done=live.done, total=live.total, message=live.message)
    return JobView(
        job=job, done=job.progress_done, total=job.progress_total, message=job.progress_message
    )


@dataclass(frozen=True)
class QueueWait:
    """Where a queued job stands: its queue, the jobs ahead of it there, and the workers."""

    queue: str
    ahead: int
    workers: int  # serving this queue and alive
    last_seen: datetime | None  # the latest beat of any worker serving this queue
    silent_for: str  # how long ago that was, for people ("45 s", "3 min", "2 h")
    command: str  # how to start a worker for this queue


def job_queue_wait(*, job: Job, now: datetime | None = None) -> QueueWait:
    """For a queued job: how many jobs are ahead of it on its queue (those running there,
    and those queued before it) and whether a worker serving that queue is alive."""
    now = now or timezone.now()
    queue = job.queue
    active = Job.objects.filter(status__in=Job.ACTIVE_STATUSES, queue=queue).exclude(pk=job.pk)
    ahead = active.filter(Q(status=Job.Status.RUNNING) | Q(pk__lt=job.pk)).count()
    serving = [worker for worker in workers_seen() if queue in worker.queues]
    default = queue == settings.CELERY_TASK_DEFAULT_QUEUE
    last_seen = max((worker.last_seen for worker in serving), default=None)
    return QueueWait(
        queue=queue,
        ahead=ahead,
        workers=sum(worker.is_alive(now) for worker in serving),
        last_seen=last_seen,
        silent_for=age((now - last_seen).total_seconds()) if last_seen else "",
        command="make worker" if default else f".venv/bin/celery -A config worker -Q {queue}",
    )


def age(seconds: float) -> str:
    """A duration for people: 45 s, 3 min, 2 h, 3 days."""
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


@dataclass(frozen=True)
class WorkerStatus:
    worker: WorkerSeen
    alive: bool
    silent_for: str


def workers_recent(*, now: datetime | None = None) -> list[WorkerStatus]:
    """Workers heard from in the last day, each with whether it is alive now."""
    now = now or timezone.now()
    return [
        WorkerStatus(
            worker=worker,
            alive=worker.is_alive(now),
            silent_for=age((now - worker.last_seen).total_seconds()),
        )
        for worker in workers_seen()
    ]


# Result keys that are not for people: a failed job's traceback (shown apart), file paths.
HIDDEN_RESULT_KEYS = ("traceback", "path", "rejected_path")


@dataclass(frozen=True)
class DisplayRow:
    """One entry of a job's parameters or result, as people read it; a dict value becomes
    rows of its own."""

    key: str
    text: str = ""
    rows: tuple[DisplayRow, ...] = ()


def display_value(value: Any) -> str:
    """A JSON value as text for people: no Python reprs (None, True, {...}, [...])."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(display_value(item) for item in value) or "–"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {display_value(item)}" for key, item in value.items()) or "–"
    return str(value)


def display_rows(data: dict[str, Any], *, hidden: tuple[str, ...] = ()) -> list[DisplayRow]:
    rows = []
    for key, value in data.items():
        if key in hidden:
            continue
        label = str(key).replace("_", " ")
        if isinstance(value, dict) and value:
            nested = tuple(
                DisplayRow(key=str(k).replace("_", " "), text=display_value(v))
                for k, v in value.items()
            )
            rows.append(DisplayRow(key=label, rows=nested))
        else:
            rows.append(DisplayRow(key=label, text=display_value(value)))
    return rows


def jobs_recent(*, limit: int = 50) -> list[Job]:
    return list(Job.objects.select_related("created_by").order_by("-id")[:limit])


def job_file(*, job: Job, key: str = "path") -> Path | None:
    """The file a job recorded in its result under `key`, if it exists inside MEDIA_ROOT."""
    value = job.result.get(key)
    if not value:
        return None
    path = Path(value).resolve()
    if not path.is_relative_to(Path(settings.MEDIA_ROOT).resolve()) or not path.is_file():
        return None
    return path
