"""Workers make themselves visible: each writes a heartbeat into the cache every few
seconds (a thread started by a bootstep of the worker's consumer, so it beats while a task
runs, whatever the pool and the broker), and a queued job's page can tell "waiting behind
other jobs" from "no worker is running"."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from celery import bootsteps
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_KEY = "worker-heartbeats"
# A worker not heard from for a day is forgotten.
FORGET_AFTER_SECONDS = 24 * 3600


@dataclass(frozen=True)
class WorkerSeen:
    hostname: str
    queues: tuple[str, ...]
    last_seen: datetime
    stopped: bool

    def is_alive(self, now: datetime) -> bool:
        """Beating lately and not stopped: a few beats may be missed (a busy machine, two
        workers writing the cache at once) before it counts as gone."""
        within = max(30.0, 3 * settings.WORKER_HEARTBEAT_SECONDS)
        return not self.stopped and (now - self.last_seen).total_seconds() <= within


def worker_heartbeat_write(
    *, hostname: str, queues: list[str], stopped: bool = False, now: float | None = None
) -> None:
    """Record that `hostname`, consuming `queues`, is alive (or has just stopped).

    All workers share one cache entry (a file-based cache cannot list keys); two writing at
    once may drop one's newest beat, which its next beat puts back."""
    now = time.time() if now is None else now
    beats = cache.get(_KEY) or {}
    beats = {name: beat for name, beat in beats.items() if now - beat["at"] < FORGET_AFTER_SECONDS}
    beats[hostname] = {"at": now, "queues": sorted(queues), "stopped": stopped}
    cache.set(_KEY, beats, FORGET_AFTER_SECONDS)


def workers_seen() -> list[WorkerSeen]:
    """Every worker heard from in the last day, the most recent first."""
    seen = [
        WorkerSeen(
            hostname=name,
            queues=tuple(beat["queues"]),
            last_seen=datetime.fromtimestamp(beat["at"], tz=UTC),
            stopped=beat.get("stopped", False),
        )
        for name, beat in (cache.get(_KEY) or {}).items()
    ]
    return sorted(seen, key=lambda worker: worker.last_seen, reverse=True)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A consumer bootstep: beats from the moment the worker consumes until it stops."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hostname = ""
        self._queues: list[str] = []

    def start(self, parent) -> None:
        self._hostname = parent.hostname
        self._queues = [queue.name for queue in parent.task_consumer.queues]
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="skd-worker-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while True:
            try:
                worker_heartbeat_write(hostname=self._hostname, queues=self._queues)
            except Exception:  # noqa: BLE001 - a missed beat must not stop the worker
                logger.warning("worker heartbeat not written", exc_info=True)
            if self._stop.wait(settings.WORKER_HEARTBEAT_SECONDS):
                return

    def stop(self, parent) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        try:
            worker_heartbeat_write(hostname=self._hostname, queues=self._queues, stopped=True)
        except Exception:  # noqa: BLE001
            logger.warning("worker heartbeat not written", exc_info=True)

    shutdown = stop
