from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .models import Job
from .progress import progress_read


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
