"""Whole teacher runs against a loopback server that misbehaves in ways that used to end or
swell a run: an odd field in an answer, 50 MB answers, constant 429s; and the checks that
keep a teacher that cannot answer from starting anything."""

import io
import json
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from corpora.models import Corpus, Triple
from generation.models import FewShotPool, GenerationBatch, GenerationRun, Teacher
from generation.services.execution import run_execute
from generation.services.pools import pool_import_tsv
from generation.services.runs import run_create
from generation.services.teachers import teacher_create
from tests.generation.openai_server import Faults, OpenAIServer, ServerState
from tests.generation.test_run_lease import ROOT, subprocess_env

HEADS = [f"PersonX does thing {i}" for i in range(120)]


@pytest.fixture
def pool(tmp_path) -> FewShotPool:
    path = tmp_path / "pool.tsv"
    path.write_text("PersonX goes fishing\txNeed\ta fishing rod\n", encoding="utf-8")
    pool = FewShotPool.objects.create(name="refs")
    pool_import_tsv(pool=pool, path=path)
    return pool


@pytest.fixture
def quick_retries(monkeypatch):
    """Retries without the production backoff (seconds), so that tests stay short."""
    import generation.ml.http_teacher as http

    original = http.OpenAICompatibleTeacher.__init__

    def quick(self, **kwargs):
        original(self, **{**kwargs, "max_retries": 2, "backoff": 0.001})

    monkeypatch.setattr(http.OpenAICompatibleTeacher, "__init__", quick)


def _run(url: str, pool: FewShotPool, heads=HEADS, name="loopback", **teacher) -> GenerationRun:
    return run_create(
        teacher=teacher_create(name=name, base_url=url, model="m", concurrency=4, **teacher),
        pool=pool,
        corpus_name="faulty",
        relations=["xNeed"],
        heads=heads,
        n_per_pair=2,
        k_examples=1,
    )


def _generate(*args: str) -> str:
    out = io.StringIO()
    call_command("generate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- An odd field --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["odd-usage", "null-logprob"])
def test_answers_with_an_odd_field_never_end_the_run(pool, kind, quick_retries):
    """Odd answers come first (retried, or kept with an unknown log-probability), then a
    server that always sends them: its batches fail with the reason, the run ends normally
    and a later start (the server mended) finishes it."""
    state = ServerState(faults=Faults(skip_first=1, first_n=4, kind=kind))
    with OpenAIServer(state) as server:
        run = _run(server.url, pool, heads=HEADS[:8])
        run = run_execute(run=run)
        assert set(run.batches.values_list("status", flat=True)) == {"done"}
        assert run.triples_written == 16 and run.errors == 0
        if kind == "null-logprob":
            logprobs = [t.source_fields_dict["logprob"] for t in Triple.objects.all()]
            assert logprobs.count(None) == 8 and logprobs.count(-0.75) == 8

        odd = _run(server.url, pool, heads=["PersonX waits"], name="odd")
        state.faults.share = 1.0
        odd = run_execute(run=odd, check=False)  # the check would meet the odd field too
        if kind == "odd-usage":
            batch = odd.batches.get()
            assert batch.status == GenerationBatch.Status.FAILED
            assert "usage.prompt_tokens is 'n/a', not a number of tokens" in batch.error
            state.faults.share = 0.0
            odd = run_execute(run=odd)
        assert odd.batches.get().status == GenerationBatch.Status.DONE


# --- 50 MB answers -------------------------------------------------------------------------


@pytest.mark.django_db
def test_fifty_megabyte_answers_fail_their_batches_with_the_reason(pool, quick_retries):
    state = ServerState(faults=Faults(skip_first=1, share=1.0, kind="huge"))
    with OpenAIServer(state) as server:
        run = _run(server.url, pool, heads=HEADS[:6], max_answer_mb=1, give_up_after=0)
        started = time.monotonic()
        run = run_execute(run=run)
        seconds = time.monotonic() - started
    assert run.errors == 6 and run.triples_written == 0
    errors = set(run.batches.values_list("error", flat=True))
    assert all("answer larger than 1 MB" in error for error in errors), errors
    # 6 batches, 3 attempts each: every 50 MB answer was cut off early.
    assert len(state.huge_sent) == 18 and max(state.huge_sent) < 20 * 2**20
    assert seconds < 60


RUN_PEAK = """
import json, os, resource
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.core.management import call_command
from django.core.management.base import CommandError
import generation.ml.http_teacher as http
original = http.OpenAICompatibleTeacher.__init__
http.OpenAICompatibleTeacher.__init__ = lambda self, **kw: original(
    self, **{{**kw, "max_retries": 1, "backoff": 0.001}}
)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    call_command("generate", "--resume", "{run_id}")
    error = ""
except CommandError as exc:
    error = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"growth_mb": (after - before) / 1024, "error": error}}))
"""


def test_a_run_through_fifty_megabyte_answers_stays_in_bounded_memory(transactional_db, pool):
    """`generate` in a process of its own, 4 requests in flight, 12 batches of 50 MB
    answers (24 of them, with one retry): its peak memory grows by a few MB, not by the
    hundreds a whole-body read takes."""
    state = ServerState(faults=Faults(skip_first=1, share=1.0, kind="huge"))
    with OpenAIServer(state) as server:
        run = _run(server.url, pool, heads=HEADS[:12], give_up_after=0)
        done = subprocess.run(
            [sys.executable, "-c", RUN_PEAK.format(run_id=run.pk)],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    peak = json.loads(done.stdout.strip().splitlines()[-1])
    assert "12 batches failed" in peak["error"]
    assert peak["growth_mb"] < 100, peak
    assert GenerationRun.objects.get(pk=run.pk).errors == 12
    assert len(state.huge_sent) == 24 and max(state.huge_sent) < 20 * 2**20


# --- Constant 429s, 401s ---------------------------------------------------------------------


@pytest.mark.django_db
def test_constant_429s_stop_the_run_with_one_message_and_a_failing_exit(pool):
    state = ServerState(faults=Faults(skip_first=1, share=1.0, kind="429"))
    with OpenAIServer(state) as server:
        run = _run(server.url, pool, give_up_after=5)  # 120 batches
        started = time.monotonic()
        with pytest.raises(CommandError) as raised:
            _generate("--resume", str(run.pk))
        seconds = time.monotonic() - started
    message = str(raised.value)
    assert f"Run {run.pk} stopped: 5 batches in a row failed" in message
    assert "HTTP 429" in message and f"--resume {run.pk} continues it" in message
    sent = {prompt for prompt in state.prompts if prompt != "Say OK."}
    assert len(sent) < 40, len(sent)  # of 120: the run stopped soon after the fifth
    run.refresh_from_db()
    assert run.errors >= 5 and run.lease_owner == ""
    assert run.batches.filter(status=GenerationBatch.Status.PENDING).count() > 80
    assert seconds < 120


@pytest.mark.django_db
def test_generate_exits_non_zero_when_batches_failed(pool):
    """A 401 is not retried; two batches fail, the others are written, the exit says so."""
    state = ServerState(faults=Faults(skip_first=1, first_n=2, kind="401"))
    with OpenAIServer(state) as server:
        run = _run(server.url, pool, heads=HEADS[:6])
        with pytest.raises(CommandError, match=f"2 batches failed .*--resume {run.pk}"):
            _generate("--resume", str(run.pk))
    run.refresh_from_db()
    assert run.errors == 2 and run.triples_written == 8
    assert "refused the API key (HTTP 401)" in run.batches.filter(status="failed").first().error


@pytest.mark.django_db
def test_the_teacher_timeout_is_a_setting(pool):
    state = ServerState(faults=Faults(skip_first=1, first_n=1, kind="hang", hang_seconds=3))
    with OpenAIServer(state) as server:
        run = _run(server.url, pool, heads=HEADS[:2], timeout=0.5)
        run = run_execute(run=run)
    assert run.triples_written == 4
    attempts = sorted(run.batches.values_list("attempts", flat=True))
    assert attempts == [1, 2]


# --- Checks before anything exists ---------------------------------------------------------


@pytest.mark.django_db
def test_generate_checks_the_teacher_before_creating_the_run_or_its_corpus(pool, tmp_path):
    heads = tmp_path / "heads.txt"
    heads.write_text("PersonX waits\n", encoding="utf-8")
    teacher_create(name="down", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(CommandError, match="cannot reach the teacher at http://127.0.0.1:9/v1"):
        _generate(
            "--teacher", "down", "--corpus", "new", "--pool", "refs", "--heads-file", str(heads)
        )
    assert not GenerationRun.objects.exists() and not Corpus.objects.filter(name="new").exists()

    with OpenAIServer(ServerState(faults=Faults(share=1.0, kind="404"))) as server:
        teacher_create(name="wrong", base_url=server.url, model="m")
        with pytest.raises(CommandError, match="answered HTTP 404"):
            _generate(
                "--teacher",
                "wrong",
                "--corpus",
                "new",
                "--pool",
                "refs",
                "--heads-file",
                str(heads),
            )
    assert not GenerationRun.objects.exists() and not Corpus.objects.filter(name="new").exists()


@pytest.mark.django_db
def test_create_teacher_check_saves_only_a_teacher_that_answers():
    def create(*args):
        out = io.StringIO()
        call_command("create_teacher", *args, stdout=out, stderr=io.StringIO())
        return out.getvalue()

    with pytest.raises(CommandError, match="cannot reach the teacher.*Not saved"):
        create("down", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--check")
    assert not Teacher.objects.exists()
    with OpenAIServer() as server:
        with pytest.raises(CommandError, match="answered HTTP 404"):
            create("no-v1", "--base-url", server.url.removesuffix("/v1"), "--model", "m", "--check")
        assert not Teacher.objects.exists()
        out = create(
            "up", "--base-url", server.url, "--model", "m", "--check", "--timeout", "5",
            "--max-answer-mb", "2", "--give-up-after", "7",
        )  # fmt: skip
    assert "Checked: it answers." in out and "Teacher 'up' saved" in out
    teacher = Teacher.objects.get()
    assert (teacher.timeout, teacher.max_answer_mb, teacher.give_up_after) == (5, 2, 7)
