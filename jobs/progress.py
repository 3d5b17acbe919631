"""Live job progress in the cache, shared by the worker and the web processes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

PROGRESS_TTL_SECONDS = 24 * 3600


def _key(job_id: int) -> str:
    return f"job-progress:{job_id}"


@dataclass(frozen=True)
class LiveProgress:
    done: int
    total: int | None
    heartbeat: float
    message: str = ""


def progress_write(job_id: int, *, done: int, total: int | None, message: str = "") -> None:
    cache.set(
        _key(job_id),
        {"done": done, "total": total, "heartbeat": time.time(), "message": message},
        PROGRESS_TTL_SECONDS,
    )


def progress_read(job_id: int) -> LiveProgress | None:
    value = cache.get(_key(job_id))
    if not value:
        return None
    return LiveProgress(**value)


def progress_clear(job_id: int) -> None:
    cache.delete(_key(job_id))


class ProgressReporter:
    """Callable handed to long services; writes at most once per `interval` seconds."""

    def __init__(self, job_id: int, *, interval: float = 0.5) -> None:
        self.job_id = job_id
        self.interval = interval
        self._last = 0.0

    def __call__(
        self, done: int, total: int | None, message: str = "", force: bool = False
    ) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            progress_write(self.job_id, done=done, total=total, message=message)
