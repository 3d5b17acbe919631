"""Hostile corpus files: each is refused (or imported) within bounded memory and time.

    python bench/import_bombs.py                   # the sizes of issue 15, on SQLite
    python bench/import_bombs.py --scale 0.1       # a tenth of each
    python bench/import_bombs.py --db postgresql --pg postgres://postgres@127.0.0.1/skd_bombs
    python bench/import_bombs.py --only zeros,newlines
    python bench/import_bombs.py --as-worker         # peaks as in a Celery worker

Builds each bomb in a temporary folder, then imports it in a fresh process with
`manage.py import_corpus` (the CLI door of the same service the pages and the API
call) and prints, per bomb, the outcome (the summary or the error, shortened), wall
seconds, CPU seconds (user + system, from os.wait4) and the child's peak RSS (its own
VmHWM, read as it exits: a child's rusage also counts the parent it was forked from).
The limits are the settings' defaults (IMPORT_MAX_*) unless the environment sets them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchdb import migrated_env

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20
CHUNK = 8 * MB


def _valid(i: int, **extra) -> bytes:
    row = {"head": f"PersonX does thing {i}", "relation": "xNeed", "tail": f"tail {i}", **extra}
    return json.dumps(row).encode() + b"\n"


def _repeat(out, piece: bytes, total: int) -> None:
    """Write `piece` over and over until `total` bytes are written."""
    block = piece * max(1, CHUNK // len(piece))
    written = 0
    while written < total:
        part = block[: total - written]
        out.write(part)
        written += len(part)


def zeros(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """A gzip of zeros with no line feed: 2 GB once decompressed (9 MB compressed)."""
    path = folder / "zeros.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:
        _repeat(out, b"\x00", int(2048 * MB * scale))
    return path, ["--format", "jsonl", "--skip-invalid"]


def newlines(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """A gzip of line feeds only: 200 MB once decompressed (200 KB compressed)."""
    path = folder / "newlines.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(_valid(0))
        _repeat(out, b"\n", int(200 * MB * scale))
        out.write(_valid(1))
    return path, ["--format", "jsonl"]


def huge_line(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """Valid lines around one line of 1.26 GB, imported with --skip-invalid."""
    path = folder / "huge_line.jsonl"
    with open(path, "wb") as out:
        for i in range(3):
            out.write(_valid(i))
        out.write(b'{"head": "PersonX is long", "relation": "xNeed", "tail": "')
        _repeat(out, b"x", int(1290 * MB * scale))
        out.write(b'"}\n')
        for i in range(3, 6):
            out.write(_valid(i))
    return path, ["--skip-invalid"]


def nul_lines(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """ATOMIC TSV whose every line holds NUL bytes (100 MB)."""
    path = folder / "nul_lines.tsv"
    with open(path, "wb") as out:
        _repeat(out, b"PersonX\x00eats\txNeed\tfo\x00od\n", int(100 * MB * scale))
    return path, []


def nul_escaped(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """JSON lines, one in ten with an escaped NUL (\\u0000) in a field kept as is; the
    others valid. Imported with --skip-invalid."""
    path = folder / "nul_escaped.jsonl"
    rows = int(200_000 * scale)
    with open(path, "wb") as out:
        for i in range(rows):
            out.write(_valid(i, note="a\u0000b") if i % 10 == 0 else _valid(i))
    return path, ["--skip-invalid"]


def high_ratio(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """Valid lines that compress about 60 to 1 (under the ratio limit): 400 MB once
    decompressed."""
    path = folder / "high_ratio.jsonl.gz"
    rng = random.Random(15)
    pad = "p" * 1500
    total, i = int(400 * MB * scale), 0
    with gzip.open(path, "wb", compresslevel=6) as out:
        written = 0
        while written < total:
            line = _valid(i, pad=pad, r=rng.getrandbits(48))
            out.write(line)
            written += len(line)
            i += 1
    return path, []


def long_valid_lines(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """Valid lines just under the 1 MiB line limit (a field of 1,000,000 characters
    kept as source_fields): 300 MB."""
    path = folder / "long_valid_lines.jsonl"
    note = "n" * 1_000_000
    with open(path, "wb") as out:
        for i in range(int(300 * scale) or 1):
            out.write(_valid(i, note=note))
    return path, []


def blank_runs(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """Runs of 99,999 blank lines (just under the limit) between bad lines, 200 MB,
    imported with --skip-invalid: every run is read, none is refused."""
    path = folder / "blank_runs.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(_valid(0))
        _repeat(out, b"{bad\n" + b"\n" * 99_999, int(200 * MB * scale))
    return path, ["--format", "jsonl", "--skip-invalid"]


def long_heads(folder: Path, scale: float) -> tuple[Path, list[str]]:
    """ATOMIC TSV of distinct heads of 500 four-byte characters (2 KB each): 250,000
    rows, 500 MB."""
    path = folder / "long_heads.tsv"
    body = "\U0001f600" * 490
    with open(path, "wb") as out:
        for i in range(int(250_000 * scale)):
            out.write(f"{body} {i:08d}\txNeed\tsomething\n".encode())
    return path, []


# manage.py, then the process's peak resident set size written to stderr as it exits.
# With BOMBS_AS_WORKER set, the process first loads what a Celery worker holds (every
# task module), so the peak is the one a worker's import would reach.
WITH_PEAK = (
    "import os, runpy, sys\n"
    "sys.argv = ['manage.py', *sys.argv[1:]]\n"
    "if os.environ.get('BOMBS_AS_WORKER'):\n"
    "    import django\n"
    "    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
    "    django.setup()\n"
    "    from config.celery import app\n"
    "    app.loader.import_default_modules()\n"
    "try:\n"
    "    runpy.run_path('manage.py', run_name='__main__')\n"
    "finally:\n"
    "    with open('/proc/self/status') as status:\n"
    "        peak = next(line for line in status if line.startswith('VmHWM:'))\n"
    "    sys.stderr.write('\\n' + peak)\n"
)

BOMBS: dict[str, Callable[[Path, float], tuple[Path, list[str]]]] = {
    "zeros": zeros,
    "newlines": newlines,
    "huge_line": huge_line,
    "nul_lines": nul_lines,
    "nul_escaped": nul_escaped,
    "high_ratio": high_ratio,
    "long_valid_lines": long_valid_lines,
    "blank_runs": blank_runs,
    "long_heads": long_heads,
}


def run_import(env: dict, path: Path, corpus: str, args: list[str]) -> dict:
    """Import in a fresh process; its outcome, wall and CPU seconds and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", WITH_PEAK, "import_corpus", str(path), "--corpus", corpus]
            + ["--no-progress", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace").strip()
        stderr = err.read().decode("utf-8", "replace").strip()
    stderr, _, peak = stderr.rpartition("VmHWM:")
    peak_mb = int(peak.split()[0]) / 1024 if peak else float("nan")
    if child.returncode == 0:
        outcome = "imported: " + stdout.splitlines()[-1].split(": ", 1)[-1]
    else:
        lines = [line for line in stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("CommandError")]
        outcome = "refused: " + (errors[0] if errors else (lines[-1] if lines else "?"))
        outcome = outcome.replace("CommandError: ", "")
    return {
        "outcome": outcome,
        "exit": child.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": peak_mb,
        "stdout": stdout,
        "stderr": stderr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="size of each bomb (1: full)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/skd_bombs"
        ),
    )
    parser.add_argument("--only", help="comma-separated bomb names: " + ", ".join(BOMBS))
    parser.add_argument(
        "--existing",
        action="store_true",
        help="import into corpora that already hold a triple (the merging path)",
    )
    parser.add_argument(
        "--as-worker",
        action="store_true",
        help="load every task module first, as a Celery worker does, so the peak is a worker's",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per bomb")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BOMBS)
    unknown = sorted(set(names) - set(BOMBS))
    if unknown:
        parser.error(f"unknown bomb(s): {', '.join(unknown)}")
    work = Path(tempfile.mkdtemp(prefix="skd-bombs-"))
    try:
        env = migrated_env(db=args.db, pg_url=args.pg, work=work, sqlite_name="bombs.sqlite3")
        if args.as_worker:
            env["BOMBS_AS_WORKER"] = "1"
        into = "corpora holding a triple" if args.existing else "new corpora"
        process = "a worker's modules loaded" if args.as_worker else "import_corpus alone"
        print(
            f"database: {args.db}; scale {args.scale}; into {into}; {process}; "
            f"machine: {os.cpu_count()} cores"
        )
        print(f"{'bomb':<18} {'file MB':>9} {'wall s':>7} {'CPU s':>7} {'peak MB':>8}  outcome")
        for name in names:
            path, import_args = BOMBS[name](work, args.scale)
            size = path.stat().st_size / MB
            if args.existing:
                seed = work / "seed.jsonl"
                seed.write_bytes(_valid(-1))
                run_import(env, seed, name, [])
            result = run_import(env, path, name, import_args)
            path.unlink()
            for leftover in work.glob(f"{path.name}.rejected.jsonl"):
                result["rejected_file_mb"] = leftover.stat().st_size / MB
                leftover.unlink()
            if args.json:
                print(json.dumps({"bomb": name, "file_mb": size, **result}))
                continue
            outcome = " ".join(result["outcome"].split())[:130]
            if "rejected_file_mb" in result:
                outcome += f" [rejected file {result['rejected_file_mb'] * 1024:,.1f} KB]"
            print(
                f"{name:<18} {size:>9.1f} {result['wall_s']:>7.1f} {result['cpu_s']:>7.1f} "
                f"{result['peak_rss_mb']:>8.0f}  {outcome}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
