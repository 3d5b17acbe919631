"""Corpus import/export throughput and memory, on SQLite and PostgreSQL.

    python bench/corpus_io.py               # 1M triples
    python bench/corpus_io.py --full        # 6.5M triples (ATOMIC-10X size)
    python bench/corpus_io.py -n 200000 --db sqlite

Builds a synthetic SKD-release JSONL corpus (heads × 7 relations, ~1% repeats),
then for each database: a fresh schema, an import, a JSONL export. Each step
runs in its own process so its peak RSS is its own. Prints rows/s and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdb import migrated_env

ROOT = Path(__file__).resolve().parents[1]
RELATIONS = ["xAttr", "xEffect", "xIntent", "xNeed", "xReact", "xWant", "HinderedBy"]
VERBS = [
    "eats",
    "reads",
    "buys",
    "fixes",
    "paints",
    "sells",
    "finds",
    "loses",
    "bakes",
    "drives",
    "cleans",
    "visits",
    "calls",
]
NOUNS = [
    "a cake",
    "the car",
    "a book",
    "the house",
    "a bike",
    "the garden",
    "a letter",
    "the dog",
    "a song",
    "the door",
    "a shirt",
    "the phone",
    "a map",
    "the window",
    "a ticket",
    "the fence",
]
TAIL_WORDS = [
    "to be happy",
    "tired",
    "a tool",
    "to rest",
    "gets paid",
    "proud",
    "to leave",
    "money",
    "careful",
    "to eat",
    "scared",
    "a friend",
    "help",
    "to go home",
    "bored",
    "skilled",
    "time",
    "to sleep",
]


def build_corpus(path: Path, n: int, seed: int = 13) -> None:
    rng = random.Random(seed)
    n_heads = max(1, n // 40)
    heads = [f"PersonX {rng.choice(VERBS)} {rng.choice(NOUNS)} number {i}" for i in range(n_heads)]
    with open(path, "w", encoding="utf-8") as out:
        written = 0
        i = 0
        while written < n:
            head = heads[i % n_heads]
            relation = RELATIONS[(i // n_heads) % len(RELATIONS)]
            i += 1
            for _ in range(min(6, n - written)):
                if rng.random() < 0.01 and written:
                    tail = "to be happy"  # a repeat to fold
                else:
                    tail = " ".join(rng.sample(TAIL_WORDS, 2)) + f" {rng.randrange(10**6)}"
                p = round(rng.random(), 3)
                out.write(
                    json.dumps(
                        {
                            "head": head,
                            "relation": relation,
                            "tail": tail,
                            "split": "train" if rng.random() < 0.9 else "test",
                            "p_valid_model": p,
                            "rec_0.5": p > 0.5,
                            "rec_0.9": p > 0.8,
                            "valid": rng.choice((2, 1, -1, -2)),
                        }
                    )
                    + "\n"
                )
                written += 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(args: argparse.Namespace) -> None:
    """Runs inside a child process with DATABASE_URL/SQLITE_PATH set by the parent."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from corpora.models import Corpus
    from corpora.services import corpus_export, corpus_import

    if args.phase == "import":
        summary = corpus_import(path=args.file, corpus_name="bench")
        result = {
            "rows": summary.rows_read,
            "seconds": summary.seconds,
            "imported": summary.imported,
        }
    else:
        summary = corpus_export(
            corpus=Corpus.objects.get(name="bench"), fmt="jsonl", out_path=args.file
        )
        result = {"rows": summary.rows, "seconds": summary.seconds}
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def run_child(env: dict, *argv: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *argv],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--full", action="store_true", help="6.5M triples")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/skd_bench"
        ),
    )
    parser.add_argument("--phase", choices=("import", "export"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase(args)
        return
    n = 6_500_000 if args.full else args.n
    work = Path(tempfile.mkdtemp(prefix="skd-bench-"))
    corpus = work / "corpus.jsonl"
    started = time.perf_counter()
    build_corpus(corpus, n)
    print(
        f"synthetic SKD JSONL corpus: {n:,} triples, {corpus.stat().st_size / 1e6:,.0f} MB "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for db in databases:
        env = migrated_env(db=db, pg_url=args.pg, work=work, sqlite_name="bench.sqlite3")
        imp = run_child(env, "--phase", "import", "--file", str(corpus))
        exp = run_child(env, "--phase", "export", "--file", str(work / f"export-{db}.jsonl"))
        print(
            f"{db:>10} import: {imp['rows'] / imp['seconds']:>9,.0f} triples/s "
            f"({imp['rows']:,} rows, {imp['imported']:,} new, {imp['seconds']:.1f} s), "
            f"peak RSS {imp['peak_rss_mb']:.0f} MB"
        )
        print(
            f"{db:>10} export: {exp['rows'] / exp['seconds']:>9,.0f} triples/s "
            f"({exp['rows']:,} rows, {exp['seconds']:.1f} s), peak RSS {exp['peak_rss_mb']:.0f} MB"
        )
    for f in work.glob("*.jsonl"):
        f.unlink()


if __name__ == "__main__":
    main()
