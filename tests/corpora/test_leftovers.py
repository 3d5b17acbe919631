"""What a killed job leaves behind, and the periodic task that removes it (issue 15,
item 7): only what no queued or running job can still use.

Most tests leave the state a killed job leaves (its row failed, as the reaper marks it,
and its files or tables in place); the last kills a real import with SIGKILL."""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from corpora.importing import IMPORTING_JOB
from corpora.leftovers import leftovers_remove
from corpora.models import Corpus, Triple
from corpora.services import EXPORT_JOB, IMPORT_JOB, corpus_create, corpus_import, upload_save
from jobs.models import Job
from jobs.services import job_reap_stale

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="load tables and advisory locks are PostgreSQL's"
)


class Upload:
    """What upload_save is handed: a name and chunks."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data = name, data

    def chunks(self):
        yield self.data


def an_upload(data: bytes = b"PersonX eats\txNeed\ta fork\n") -> Path:
    return upload_save(uploaded=Upload("c.tsv", data))


def an_import_job(path: Path, status: str, *, finished: timedelta | None = None, **params) -> Job:
    now = timezone.now()
    return Job.objects.create(
        kind=IMPORT_JOB,
        status=status,
        params={"path": str(path), "corpus": "c", "format": "auto", **params},
        finished_at=now - finished if finished is not None else None,
    )


def later(days: float) -> timezone.datetime:
    return timezone.now() + timedelta(days=days)


# --- Uploads -----------------------------------------------------------------------


def test_a_succeeded_imports_upload_left_by_a_dead_worker_is_removed():
    path = an_upload()
    an_import_job(path, Job.Status.SUCCEEDED, finished=timedelta(0))
    removed = leftovers_remove()
    assert removed.uploads == 1
    assert not path.exists() and not path.parent.exists()


def test_a_failed_imports_upload_is_kept_for_the_retention_period_then_removed(settings):
    settings.IMPORT_UPLOAD_RETENTION_DAYS = 7
    path = an_upload()
    an_import_job(path, Job.Status.FAILED, finished=timedelta(0))
    assert leftovers_remove(now=later(6)).uploads == 0
    assert path.exists()
    assert leftovers_remove(now=later(8)).uploads == 1
    assert not path.exists()


def test_an_upload_a_live_job_uses_is_never_removed(settings):
    path = an_upload()
    an_import_job(path, Job.Status.SUCCEEDED, finished=timedelta(days=30))
    an_import_job(path, Job.Status.QUEUED, skip_invalid=True)
    assert leftovers_remove(now=later(30)).uploads == 0
    assert path.exists()


def test_an_upload_no_job_refers_to_is_kept_while_recent(settings):
    """It may be one being received right now, before its job exists."""
    path = an_upload()
    assert leftovers_remove().uploads == 0
    old = time.time() - 8 * 86400
    os.utime(path, (old, old))
    assert leftovers_remove().uploads == 1


def test_rejected_lines_stay_with_a_succeeded_import_and_go_with_a_dead_one():
    kept = an_upload()
    kept_rejected = kept.with_name(kept.name + ".rejected.jsonl")
    kept_rejected.write_text("{}\n")
    job = an_import_job(kept, Job.Status.SUCCEEDED, finished=timedelta(0))
    job.result = {"rejected_path": str(kept_rejected)}
    job.save()
    dead = an_upload()
    dead_rejected = dead.with_name(dead.name + ".rejected.jsonl")
    dead_rejected.write_text("{}\n")
    an_import_job(dead, Job.Status.FAILED, finished=timedelta(0), skip_invalid=True)

    removed = leftovers_remove()
    assert (removed.uploads, removed.rejected_files) == (1, 1)
    assert kept_rejected.exists() and not kept.exists()
    assert not dead_rejected.exists() and dead.exists()
    assert leftovers_remove(now=later(8)).as_dict() == {
        "uploads": 1,
        "rejected_files": 1,
        "partial_exports": 0,
        "load_tables": 0,
        "empty_corpora": 0,
    }


def test_files_outside_the_uploads_folder_are_never_touched(tmp_path):
    mine = tmp_path / "mine.tsv"
    mine.write_text("PersonX eats\txNeed\ta fork\n")
    an_import_job(mine, Job.Status.SUCCEEDED, finished=timedelta(days=30))
    leftovers_remove(now=later(30))
    assert mine.exists()


# --- Exports -----------------------------------------------------------------------


def an_export_partial(status: str) -> Path:
    out = Path(django_settings.MEDIA_ROOT) / "exports" / uuid.uuid4().hex / "c.jsonl"
    out.parent.mkdir(parents=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text("half a file")
    Job.objects.create(kind=EXPORT_JOB, status=status, params={"path": str(out)})
    return partial


def test_a_dead_exports_partial_file_is_removed_and_a_running_ones_kept():
    dead = an_export_partial(Job.Status.FAILED)
    running = an_export_partial(Job.Status.RUNNING)
    assert leftovers_remove().partial_exports == 1
    assert not dead.exists() and not dead.parent.exists()
    assert running.exists()


# --- Corpora and load tables -------------------------------------------------------


def an_orphan_corpus(job_status: str, name: str = "orphan") -> Corpus:
    """A corpus as a first import leaves it when killed before its first triple."""
    job = an_import_job(Path("/nowhere"), job_status, finished=timedelta(0))
    job.params["corpus"] = name
    job.save()
    return Corpus.objects.create(name=name, stats={IMPORTING_JOB: job.pk})


def test_an_empty_corpus_left_by_a_dead_first_import_is_removed():
    an_orphan_corpus(Job.Status.FAILED)
    assert leftovers_remove().empty_corpora == 1
    assert not Corpus.objects.filter(name="orphan").exists()


def test_a_corpus_whose_import_still_runs_or_waits_is_kept():
    an_orphan_corpus(Job.Status.RUNNING, name="running")
    an_orphan_corpus(Job.Status.FAILED, name="retried")
    Job.objects.create(kind=IMPORT_JOB, status=Job.Status.QUEUED, params={"corpus": "retried"})
    assert leftovers_remove().empty_corpora == 0
    assert Corpus.objects.filter(name__in=["running", "retried"]).count() == 2


def test_an_empty_corpus_made_on_purpose_is_kept(tmp_path):
    corpus_create(name="made empty")
    path = tmp_path / "c.tsv"
    path.write_text("PersonX eats\txNeed\ta fork\n")
    corpus_import(path=path, corpus_name="filled", job_id=None)
    assert leftovers_remove().empty_corpora == 0
    assert Corpus.objects.filter(name__in=["made empty", "filled"]).count() == 2


def test_an_import_job_that_succeeds_leaves_no_mark_on_its_corpus(tmp_path):
    path = an_upload()
    job = an_import_job(path, Job.Status.RUNNING, corpus="marked")
    corpus_import(path=path, corpus_name="marked", job_id=job.pk)
    assert IMPORTING_JOB not in Corpus.objects.get(name="marked").stats
    job.status = Job.Status.FAILED  # even were its row failed later
    job.save()
    assert leftovers_remove().empty_corpora == 0


def load_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid"
            " WHERE c.relname LIKE 'generation_triple_%%_load_%%' AND i.inhrelid IS NULL"
        )
        return sorted(name for (name,) in cursor.fetchall())


@on_postgresql
def test_an_unattached_load_table_is_dropped_unless_an_import_holds_its_corpus(
    transactional_db,
):
    from corpora.bulk import PartitionLoader
    from corpora.importing.turns import _IMPORT_LOCK

    dead = Corpus.objects.create(name="dead")
    live = Corpus.objects.create(name="live")
    for corpus in (dead, live):
        PartitionLoader(corpus_id=corpus.pk, origin="import", job_id=None).open()
    assert len(load_tables()) == 2
    # A live import holds its corpus's import lock, from another connection.
    import psycopg

    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [_IMPORT_LOCK, live.pk])
        assert leftovers_remove().load_tables == 1
        [kept] = load_tables()
        assert kept.startswith(f"generation_triple_{live.pk}_load_")
    assert leftovers_remove().load_tables == 1
    assert load_tables() == []


# --- A real kill -9 ----------------------------------------------------------------


def _child_env() -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        params = connection.settings_dict
        env["DATABASE_URL"] = (
            f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{name}"
        )
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(name)
    return env


def _loading(corpus_name: str) -> bool:
    corpus = Corpus.objects.filter(name=corpus_name).first()
    if corpus is None:
        return False
    if connection.vendor == "postgresql":
        return any(t.startswith(f"generation_triple_{corpus.pk}_load_") for t in load_tables())
    from corpora.models import Event

    return Event.objects.filter(text__startswith="PersonX kill ").exists()


def test_an_import_killed_with_sigkill_leaves_nothing_once_its_job_is_reaped(
    transactional_db, settings
):
    rows = "".join(f"PersonX kill {i}\txNeed\ttail {i}\n" for i in range(400_000))
    path = an_upload(rows.encode())
    job = Job.objects.create(
        kind=IMPORT_JOB,
        params={"path": str(path), "corpus": "killed", "format": "atomic-tsv"},
        task_name="corpora.run_import_job",
    )
    code = (
        "import django; django.setup()\n"
        "from corpora.services import corpus_import_job_run\n"
        f"corpus_import_job_run(job_id={job.pk})\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**_child_env(), "DJANGO_SETTINGS_MODULE": "config.settings"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not _loading("killed"):
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the import never started loading"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    corpus = Corpus.objects.get(name="killed")
    assert corpus.triple_count == 0 and IMPORTING_JOB in corpus.stats
    assert job_reap_stale(now=timezone.now() + timedelta(hours=1)) == 1

    # The dead backend's lock is gone once PostgreSQL notices the closed connection.
    deadline = time.monotonic() + 30
    removed = leftovers_remove()
    while connection.vendor == "postgresql" and load_tables() and time.monotonic() < deadline:
        time.sleep(0.2)
        more = leftovers_remove()
        removed.load_tables += more.load_tables
        removed.empty_corpora += more.empty_corpora
    assert removed.empty_corpora == 1
    assert not Corpus.objects.filter(name="killed").exists()
    assert not Triple.objects.filter(corpus_id=corpus.pk).exists()
    if connection.vendor == "postgresql":
        assert removed.load_tables == 1 and load_tables() == []
    assert path.exists()  # a failed import's upload waits for "Import the valid lines"
    assert leftovers_remove(now=later(settings.IMPORT_UPLOAD_RETENTION_DAYS + 1)).uploads == 1
