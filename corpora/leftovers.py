"""What dead jobs leave behind, and its removal: the periodic task
corpora.remove_leftovers runs `leftovers_remove`.

A worker killed mid-job (kill -9, a lost machine) runs no cleanup of its own; the reaper
marks its job failed, and this removes what it left, never anything a queued or running
job may still use:

- uploads: an import that succeeded deletes its upload itself (this catches a worker
  that died just after); one whose imports all failed or were cancelled is kept
  IMPORT_UPLOAD_RETENTION_DAYS after the last of them finished, for "Import the valid
  lines", and so is an upload no job refers to (counted from when it was written);
- rejected-line files: a succeeded import's is kept as long (the job page links to it),
  any other goes (a failed import removes its own; a killed one cannot);
- an export's `.partial` file;
- PostgreSQL: an import's unattached `<partition>_load_<token>` table, once no import
  holds its corpus's import lock;
- a corpus that an import job created and that has no triple, once that job is over
  and no other import job waits to fill it.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from jobs.models import Job

logger = logging.getLogger(__name__)

REJECTED_SUFFIX = ".rejected.jsonl"
PARTIAL_SUFFIX = ".partial"


@dataclass
class LeftoversRemoved:
    uploads: int = 0
    rejected_files: int = 0
    partial_exports: int = 0
    load_tables: int = 0
    empty_corpora: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def leftovers_remove(*, now: datetime | None = None) -> LeftoversRemoved:
    """Remove what dead jobs left (see the module's docstring); counts what went."""
    now = now or timezone.now()
    removed = LeftoversRemoved()
    _remove_uploads(now, removed)
    _remove_partial_exports(removed)
    _remove_empty_corpora(removed)
    _remove_load_tables(removed)
    if any(removed.as_dict().values()):
        logger.info("leftovers of dead jobs removed: %s", removed.as_dict())
    return removed


def _finished(job: dict) -> datetime:
    return job["finished_at"] or job["created_at"]


def _remove_uploads(now: datetime, removed: LeftoversRemoved) -> None:
    from .services import IMPORT_JOB, uploads_root

    root = uploads_root()
    if not root.is_dir():
        return
    kept_until = now - timedelta(days=settings.IMPORT_UPLOAD_RETENTION_DAYS)
    by_path: dict[str, list[dict]] = defaultdict(list)
    kept_rejected: set[str] = set()
    for job in Job.objects.filter(kind=IMPORT_JOB, params__path__startswith=str(root)).values(
        "status", "params", "result", "finished_at", "created_at"
    ):
        by_path[job["params"].get("path", "")].append(job)
        if job["status"] == Job.Status.SUCCEEDED and _finished(job) >= kept_until:
            kept_rejected.add(str(job["result"].get("rejected_path")))
    for folder in (p for p in root.iterdir() if p.is_dir()):
        for path in [p for p in folder.iterdir() if p.is_file()]:
            rejected = path.name.endswith(REJECTED_SUFFIX)
            upload = path.with_name(path.name[: -len(REJECTED_SUFFIX)]) if rejected else path
            jobs = by_path.get(str(upload), [])
            if any(job["status"] in Job.ACTIVE_STATUSES for job in jobs):
                continue
            if rejected:
                if str(path) in kept_rejected:
                    continue
                removed.rejected_files += 1
            else:
                succeeded = any(job["status"] == Job.Status.SUCCEEDED for job in jobs)
                last = (
                    max(map(_finished, jobs))
                    if jobs
                    else timezone.make_aware(datetime.fromtimestamp(path.stat().st_mtime))
                )
                if not succeeded and last >= kept_until:
                    continue
                removed.uploads += 1
            path.unlink(missing_ok=True)
        _remove_if_empty(folder)


def _remove_partial_exports(removed: LeftoversRemoved) -> None:
    """A `.partial` file is written only while its export job runs."""
    from .services import EXPORT_JOB

    root = Path(settings.MEDIA_ROOT) / "exports"
    if not root.is_dir():
        return
    writing = {
        job.params.get("path")
        for job in Job.objects.filter(kind=EXPORT_JOB, status__in=Job.ACTIVE_STATUSES)
    }
    for partial in root.glob(f"*/*{PARTIAL_SUFFIX}"):
        if str(partial.with_name(partial.name[: -len(PARTIAL_SUFFIX)])) in writing:
            continue
        partial.unlink(missing_ok=True)
        removed.partial_exports += 1
        _remove_if_empty(partial.parent)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (or already gone)


def _remove_empty_corpora(removed: LeftoversRemoved) -> None:
    from .importing import IMPORTING_JOB, import_turn_try
    from .importing.empty_corpus import _forget_empty_corpus
    from .models import Corpus

    for corpus in Corpus.objects.filter(triple_count=0, stats__has_key=IMPORTING_JOB):
        job_id = corpus.stats.get(IMPORTING_JOB)
        job = Job.objects.filter(pk=job_id).first()
        if job is not None and job.is_active:
            continue
        with import_turn_try(corpus.pk) as free:
            if free and _forget_empty_corpus(corpus.pk, job_id):
                removed.empty_corpora += 1


def _remove_load_tables(removed: LeftoversRemoved) -> None:
    """Unattached tables an import into an empty corpus filled (bulk.PartitionLoader); a
    live import holds its corpus's import lock from before the table is made until it
    is attached or dropped."""
    if connection.vendor != "postgresql":
        return
    from .importing import import_turn_try
    from .models import Triple

    parent = Triple._meta.db_table
    name_re = re.compile(rf"{re.escape(parent)}_(\d+)_load_[0-9a-f]+")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid"
            " WHERE c.relname LIKE %s AND c.relkind = 'r' AND i.inhrelid IS NULL"
            " AND c.relnamespace = current_schema()::regnamespace",
            [f"{parent}%load%"],
        )
        tables = [name for (name,) in cursor.fetchall() if name_re.fullmatch(name)]
    for table in tables:
        corpus_id = int(name_re.fullmatch(table).group(1))
        with import_turn_try(corpus_id) as free:
            if not free:
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            removed.load_tables += 1
