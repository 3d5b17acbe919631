"""The lease of a run: one executor at a time (owner host:pid:uuid, taken with a conditional
UPDATE, kept alive by a heartbeat, taken over when stale or its process is gone)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

from django.utils import timezone

from ..errors import RunBusy
from ..models import GenerationRun

LEASE_BEAT_EVERY = 5.0  # seconds between heartbeats of a run's lease
# A lease whose heartbeat is older than this is taken over (its holder died without letting
# go); one held by a process of this host that is gone is taken over at once.
LEASE_STALE_AFTER = 120.0

logger = logging.getLogger(__name__)


def _lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lease_gone(owner: str, heartbeat_at, now) -> bool:
    """Whether a lease's holder is dead: no heartbeat for LEASE_STALE_AFTER, or a process
    of this host that no longer exists."""
    if heartbeat_at is None or now - heartbeat_at > timedelta(seconds=LEASE_STALE_AFTER):
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _lease_words(run_id: int, owner: str, taken_at, heartbeat_at, now) -> str:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    since = timezone.localtime(taken_at).strftime("%Y-%m-%d %H:%M:%S %Z") if taken_at else "?"
    beat = f"{(now - heartbeat_at).total_seconds():.0f} s ago" if heartbeat_at else "never"
    return (
        f"Run {run_id} is being executed by process {pid} on {host} since {since} (last "
        f"heartbeat {beat}). It can be started again once that process ends; a run whose "
        f"heartbeat is older than {LEASE_STALE_AFTER:g} s is taken over."
    )


def run_lease_holder(run: GenerationRun) -> str | None:
    """Who executes the run now, in words; None when nobody (or a dead process) does."""
    row = (
        GenerationRun.objects.filter(pk=run.pk)
        .values("lease_owner", "lease_taken_at", "lease_heartbeat_at")
        .first()
    )
    now = timezone.now()
    if not row or not row["lease_owner"]:
        return None
    if _lease_gone(row["lease_owner"], row["lease_heartbeat_at"], now):
        return None
    return _lease_words(
        run.pk, row["lease_owner"], row["lease_taken_at"], row["lease_heartbeat_at"], now
    )


def run_lease_take(*, run: GenerationRun) -> str:
    """Claim the run for this process with a conditional UPDATE (free, or its holder dead);
    the owner id to beat and release it with. RunBusy names the live holder."""
    owner = _lease_owner()
    runs = GenerationRun.objects.filter(pk=run.pk)
    for _ in range(3):  # the holder may let go or be taken over between the two reads
        now = timezone.now()
        taken = {"lease_owner": owner, "lease_taken_at": now, "lease_heartbeat_at": now}
        if runs.filter(lease_owner="").update(**taken):
            return owner
        row = runs.values("lease_owner", "lease_taken_at", "lease_heartbeat_at").first()
        if row is None:
            raise GenerationRun.DoesNotExist(f"no generation run {run.pk}")
        holder = row["lease_owner"]
        if not holder:
            continue
        if _lease_gone(holder, row["lease_heartbeat_at"], now):
            if runs.filter(lease_owner=holder).update(**taken):
                logger.warning("run %s: took over the lease of %s, gone", run.pk, holder)
                return owner
            continue
        raise RunBusy(
            _lease_words(run.pk, holder, row["lease_taken_at"], row["lease_heartbeat_at"], now)
        )
    raise RunBusy(f"Run {run.pk}: its lease changed hands while this process tried to take it.")


def run_lease_beat(run_id: int, owner: str) -> None:
    """Heartbeat; RunBusy when the lease was taken over (this process must stop writing)."""
    beaten = GenerationRun.objects.filter(pk=run_id, lease_owner=owner).update(
        lease_heartbeat_at=timezone.now()
    )
    if not beaten:
        raise RunBusy(
            f"Run {run_id}: this process ({owner}) lost its lease, taken over by another after "
            "its heartbeat went quiet; it stops without writing more."
        )


def run_lease_release(run_id: int, owner: str) -> None:
    GenerationRun.objects.filter(pk=run_id, lease_owner=owner).update(
        lease_owner="", lease_taken_at=None, lease_heartbeat_at=None
    )
