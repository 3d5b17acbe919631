"""One executor per run: a lease with a heartbeat, so that two starts of one run never send
its requests twice; and totals that are added to, never written from a copy."""

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from corpora.models import Triple
from generation.errors import RunBusy
from generation.models import FewShotPool, GenerationBatch, GenerationRun
from generation.services.execution import run_execute
from generation.services.leases import LEASE_STALE_AFTER, run_lease_take
from generation.services.pools import pool_import_tsv
from generation.services.runs import run_create, run_start_refusal
from generation.services.teachers import teacher_create
from tests.generation.openai_server import OpenAIServer, ServerState

ROOT = Path(__file__).resolve().parents[2]
HEADS = [f"PersonX does thing {i}" for i in range(12)]
CHECK_PROMPT = "Say OK."


def subprocess_env() -> dict[str, str]:
    """The environment in which a manage.py subprocess sees this test's database."""
    settings = connection.settings_dict
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if connection.vendor == "sqlite":
        env["SQLITE_PATH"] = str(settings["NAME"])
        env.pop("DATABASE_URL", None)
    else:
        password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
        env["DATABASE_URL"] = (
            f"postgres://{settings['USER']}{password}@{settings['HOST'] or '127.0.0.1'}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    return env


@pytest.fixture
def pool(tmp_path) -> FewShotPool:
    path = tmp_path / "pool.tsv"
    path.write_text(
        "PersonX goes fishing\txNeed\ta fishing rod\nPersonX goes fishing\txWant\tto eat\n",
        encoding="utf-8",
    )
    pool = FewShotPool.objects.create(name="refs")
    pool_import_tsv(pool=pool, path=path)
    return pool


def _run(url: str, pool: FewShotPool, **teacher) -> GenerationRun:
    return run_create(
        teacher=teacher_create(name="loopback", base_url=url, model="m", **teacher),
        pool=pool,
        corpus_name="leased",
        relations=["xNeed", "xWant"],
        heads=HEADS,
        n_per_pair=2,
        k_examples=1,
    )


def _generate(run_id: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "generate", "--resume", str(run_id)],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_generate_resume_of_one_run_send_each_request_once(transactional_db, pool):
    """The first process holds the run's requests at the server (a gate) while a second
    `generate --resume` of the same run starts: the second is refused, naming the first,
    and sends nothing; once the gate opens the first finishes. Every prompt arrives once."""
    state = ServerState(gate=threading.Event())
    with OpenAIServer(state) as server:
        # Requests wait at the gate far longer than the client's default timeout would allow.
        run = _run(server.url, pool, concurrency=2, timeout=600)
        first = _generate(run.pk)
        try:
            deadline = time.monotonic() + 120
            while sum(state.prompts.values()) - state.prompts[CHECK_PROMPT] < 1:
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first process sent nothing"
                time.sleep(0.05)
            second = _generate(run.pk)
            out, err = second.communicate(timeout=120)
            state.gate.set()
            first_out, first_err = first.communicate(timeout=120)
        finally:
            state.gate.set()
            if first.poll() is None:
                first.kill()
    assert second.returncode == 1, out + err
    assert f"is being executed by process {first.pid} on {socket.gethostname()}" in err
    assert first.returncode == 0, first_out + first_err
    sent = {prompt: n for prompt, n in state.prompts.items() if prompt != CHECK_PROMPT}
    assert len(sent) == 24 and set(sent.values()) == {1}, sent
    run.refresh_from_db()
    assert run.requests_done == 24 and run.triples_written == 48
    assert Triple.objects.filter(corpus=run.corpus).count() == 48
    assert not Triple.objects.filter(corpus=run.corpus, occurrences__gt=1).exists()
    assert run.lease_owner == ""  # let go at the end


def test_two_threads_taking_one_lease_at_once_get_it_once(transactional_db, pool):
    run = _run("http://127.0.0.1:9/v1", pool)
    barrier = threading.Barrier(2)
    outcome: list[str] = []

    def take() -> None:
        barrier.wait()
        try:
            outcome.append(run_lease_take(run=run))
        except RunBusy:
            outcome.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcome) == 2 and outcome.count("refused") == 1
    held = GenerationRun.objects.get(pk=run.pk).lease_owner
    assert held in outcome and held.startswith(f"{socket.gethostname()}:{os.getpid()}:")


@pytest.mark.django_db
def test_a_live_holder_refuses_a_start_and_a_dead_or_stale_one_is_taken_over(pool):
    run = _run("http://127.0.0.1:9/v1", pool)
    now = timezone.now()
    host = socket.gethostname()
    # A live process of this host (this one) holds it: refused, with who and since when.
    GenerationRun.objects.filter(pk=run.pk).update(
        lease_owner=f"{host}:{os.getpid()}:abc", lease_taken_at=now, lease_heartbeat_at=now
    )
    with pytest.raises(RunBusy, match=f"being executed by process {os.getpid()} on {host} since"):
        run_lease_take(run=run)
    assert "being executed by process" in run_start_refusal(run)
    with pytest.raises(RunBusy):
        run_execute(run=run)  # refused before anything is sent or checked
    # A process of this host that is gone: taken over at once.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    GenerationRun.objects.filter(pk=run.pk).update(lease_owner=f"{host}:{gone.stdout.strip()}:x")
    owner = run_lease_take(run=run)
    assert GenerationRun.objects.get(pk=run.pk).lease_owner == owner
    # Another host's process whose heartbeat is older than the limit: taken over.
    stale = now - timedelta(seconds=LEASE_STALE_AFTER + 5)
    GenerationRun.objects.filter(pk=run.pk).update(
        lease_owner="elsewhere:123:y", lease_taken_at=stale, lease_heartbeat_at=stale
    )
    assert run_start_refusal(run) is None
    run_lease_take(run=run)
    # ... and a fresh heartbeat of another host is respected.
    GenerationRun.objects.filter(pk=run.pk).update(
        lease_owner="elsewhere:123:y", lease_heartbeat_at=now
    )
    with pytest.raises(RunBusy, match="process 123 on elsewhere"):
        run_lease_take(run=run)


@pytest.mark.django_db
def test_dropped_counts_are_added_to_the_row_not_written_from_a_copy(pool):
    """Another writer's count that lands while the run executes is kept."""
    with OpenAIServer(ServerState(reply=lambda prompt, i: "none" if i else " to rest")) as server:
        run = _run(server.url, pool)

        def meanwhile(done, total, message):
            if done == 5:
                row = GenerationRun.objects.get(pk=run.pk)
                row.dropped = {**row.dropped, "counted elsewhere": 7}
                row.save(update_fields=["dropped"])

        run = run_execute(run=run, progress=meanwhile, check_every=0)
    assert run.dropped == {"counted elsewhere": 7, "none": 24}
    assert set(run.batches.values_list("status", flat=True)) == {GenerationBatch.Status.DONE}
