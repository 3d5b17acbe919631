"""Hostile files imported in a fresh process, as `manage.py import_corpus` runs them, with
the default limits: each is refused (or imported) with a clear message and the child's
peak RSS stays under 300 MB. The sizes are small next to the issue's (see
bench/import_bombs.py for those) but each is beyond what the old reader held or wrote.

The peak is the child's own VmHWM, read as it exits: the rusage of a child (os.wait4)
counts the memory of the parent it was forked from, the test process, before its exec.
"""

import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pytest
from django.db import connection

from corpora.models import Corpus

ROOT = Path(__file__).resolve().parents[2]
PEAK_RSS_MB = 300
MB = 1 << 20
# manage.py, then the process's peak resident set size written to stderr as it exits.
WITH_PEAK = (
    "import runpy, sys\n"
    "sys.argv = ['manage.py', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_path('manage.py', run_name='__main__')\n"
    "finally:\n"
    "    with open('/proc/self/status') as status:\n"
    "        peak = next(line for line in status if line.startswith('VmHWM:'))\n"
    "    sys.stderr.write('\\n' + peak)\n"
)
pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads the peak from /proc"
)


@pytest.fixture
def run_import(transactional_db):
    """Runs import_corpus in a child on the test database; (exit code, stderr, peak MB)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = (
            f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/"
            f"{settings['NAME']}"
        )
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(settings["NAME"])

    def run(path: Path, corpus: str, *args: str) -> tuple[int, str, float]:
        with tempfile.TemporaryFile() as err:
            code = subprocess.call(
                [sys.executable, "-c", WITH_PEAK, "import_corpus", str(path), "--corpus", corpus]
                + ["--no-progress", *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
        peak_kb = int(stderr.rsplit("VmHWM:", 1)[1].split()[0])
        return code, stderr, peak_kb / 1024

    return run


def gzip_of_repeats(path: Path, piece: bytes, megabytes: int, *, head: bytes = b"") -> Path:
    """A gzip file of `piece` repeated to `megabytes` MB, built fast: one gzip member of
    1 MB repeated (a reader reads every member in turn)."""
    one = gzip.compress(piece * (MB // len(piece)), compresslevel=9)
    with open(path, "wb") as out:
        if head:
            out.write(gzip.compress(head))
        for _ in range(megabytes):
            out.write(one)
    return path


def row(i: int, **extra) -> bytes:
    row = {"head": f"PersonX does {i}", "relation": "xNeed", "tail": f"tail {i}", **extra}
    return orjson.dumps(row) + b"\n"


def test_a_gzip_of_zeros_without_a_line_feed_is_refused_in_bounded_memory(run_import, tmp_path):
    """400 MB of zeros from 400 KB: the old reader held the whole "line"."""
    path = gzip_of_repeats(tmp_path / "zeros.jsonl.gz", b"\x00", 400)
    code, stderr, peak = run_import(path, "zeros", "--format", "jsonl", "--skip-invalid")
    assert code != 0
    assert "zeros.jsonl.gz: decompresses to more than 100 times its compressed size" in stderr
    assert peak < PEAK_RSS_MB, f"peak RSS {peak:.0f} MB"
    assert not Corpus.objects.filter(name="zeros").exists()
    assert not (tmp_path / "zeros.jsonl.gz.rejected.jsonl").exists()


def test_a_gzip_of_line_feeds_is_refused_at_once(run_import, tmp_path):
    """20 MB of line feeds between two triples: the old reader took each blank line
    through the JSON reader (146 s of CPU for 200 MB) and imported the two."""
    path = gzip_of_repeats(tmp_path / "newlines.jsonl.gz", b"\n", 20, head=row(0))
    code, stderr, peak = run_import(path, "newlines", "--format", "jsonl")
    assert code != 0
    assert "more than 100,000 blank lines in a row from line 2" in stderr
    assert peak < PEAK_RSS_MB, f"peak RSS {peak:.0f} MB"


def test_a_huge_line_is_skipped_unread_and_its_rejected_entry_is_small(run_import, tmp_path):
    """A 400 MB line among valid ones, with --skip-invalid: the old reader held it and
    wrote it whole into the rejected file."""
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as out:
        out.write(row(1))
        out.write(b'{"head": "PersonX is long", "relation": "xNeed", "tail": "')
        for _ in range(400):
            out.write(b"x" * MB)
        out.write(b'"}\n')
        out.write(row(2))
    code, stderr, peak = run_import(path, "huge", "--skip-invalid")
    assert code == 0, stderr
    assert peak < PEAK_RSS_MB, f"peak RSS {peak:.0f} MB"
    assert Corpus.objects.get(name="huge").triple_count == 2
    rejected = tmp_path / "huge.jsonl.rejected.jsonl"
    assert rejected.stat().st_size < 4000
    [entry] = [orjson.loads(line) for line in rejected.read_bytes().splitlines()]
    assert (entry["line"], entry["truncated"]) == (2, True)
    assert "longer than the limit of 1,048,576 bytes" in entry["error"]


def test_nul_lines_are_named_and_none_reaches_the_database(run_import, tmp_path):
    path = tmp_path / "nul.tsv"
    path.write_bytes(b"PersonX\x00eats\txNeed\tfo\x00od\n" * 200_000)
    code, stderr, peak = run_import(path, "nul", "--skip-invalid")
    assert code != 0
    assert "nul.tsv: no valid triples found (200000 invalid line(s) rejected)" in stderr
    assert peak < PEAK_RSS_MB, f"peak RSS {peak:.0f} MB"
    assert not (tmp_path / "nul.tsv.rejected.jsonl").exists()  # the import failed


def test_a_gzip_under_the_ratio_limit_imports_in_bounded_memory(run_import, tmp_path):
    """Valid lines of 1.6 KB that compress about 60 to 1: 64 MB decompressed."""
    path = tmp_path / "ratio.jsonl.gz"
    pad = "p" * 1500
    with gzip.open(path, "wb") as out:
        for i in range(40_000):
            out.write(row(i, pad=pad, r=(i * 2654435761) % 2**48))
    assert path.stat().st_size * 100 > 64 * MB  # under the ratio limit
    code, stderr, peak = run_import(path, "ratio")
    assert code == 0, stderr
    assert peak < PEAK_RSS_MB, f"peak RSS {peak:.0f} MB"
    assert Corpus.objects.get(name="ratio").triple_count == 40_000


def test_lines_just_under_the_length_limit_import_in_bounded_memory(run_import, tmp_path):
    """100 valid lines of a megabyte each (a kept field of 1,000,000 characters)."""
    path = tmp_path / "long.jsonl"
    note = "n" * 1_000_000
    with open(path, "wb") as out:
        for i in range(100):
            out.write(row(i, note=note))
    code, stderr, peak = run_import(path, "long")
    assert code == 0, stderr
    assert peak < PEAK_RSS_MB, f"peak RSS {peak:.0f} MB"
    assert Corpus.objects.get(name="long").triple_count == 100
