"""The CLI: a teacher, a pool from references, a run with a progress bar, a resume."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from corpora.models import Triple
from generation.models import GenerationBatch, GenerationRun
from tests.generation.openai_server import OpenAIServer

pytestmark = pytest.mark.django_db


def _call(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_generate_from_the_command_line_and_resume(tmp_path, shared_data):
    heads = tmp_path / "heads.txt"
    heads.write_text("PersonX paints a fence\nPersonX buys bread\n\n", encoding="utf-8")
    with OpenAIServer() as server:
        assert "saved" in _call(
            "create_teacher", "loop", "--base-url", server.url, "--model", "m", "--check"
        )
        out = _call("import_pool", str(shared_data / "references.tsv"), "--pool", "refs")
        assert "new examples" in out
        out = _call(
            "generate",
            "--teacher",
            "loop",
            "--corpus",
            "cli-run",
            "--pool",
            "refs",
            "--relations",
            "xNeed",
            "xWant",
            "--heads-file",
            str(heads),
            "--n",
            "2",
        )
        run = GenerationRun.objects.get()
        assert "4 requests to send" in out and "8 triples" in out
        assert Triple.objects.filter(corpus=run.corpus).count() == 8
        # A resume of a finished run sends nothing and writes nothing.
        sent = server.state.requests["chat"]
        out = _call("generate", "--resume", str(run.pk))
        assert server.state.requests["chat"] == sent
        assert "0 requests to send" in out
    assert not run.batches.exclude(status=GenerationBatch.Status.DONE).exists()


def test_generate_names_what_is_missing(db):
    with pytest.raises(CommandError, match="No teacher named 'nope'"):
        call_command(
            "generate",
            "--teacher",
            "nope",
            "--corpus",
            "c",
            "--pool",
            "p",
            "--heads-file",
            "x",
            stdout=io.StringIO(),
        )
    with pytest.raises(CommandError, match="--teacher is required"):
        call_command("generate", stdout=io.StringIO())
    with pytest.raises(CommandError, match="base_url"):
        call_command(
            "create_teacher", "t", "--base-url", "x" * 400, "--model", "m", stdout=io.StringIO()
        )
