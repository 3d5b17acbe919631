"""A student run through the services at corpus scale, on PostgreSQL: what a researcher waits
for before the first training step and around an evaluation of a big corpus.

    python bench/student_scale.py                # 1M triples
    python bench/student_scale.py --full         # 6.5M triples (ATOMIC-10X size)

Imports a synthetic SKD corpus (bench/corpus_io.py's generator: ~90% train, ~10% test),
then with the demo's tiny GPT-2 (4 layers x 128, random weights): a whole-corpus run
(student_run_create, the Parquet snapshot of the train split, the first steps), and an
evaluation of 200 test heads (pair selection, generation, writing the outputs corpus,
the measures). Prints seconds, rows/s and peak RSS. Leaves an empty database behind.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus_io import build_corpus  # noqa: E402
from critic_speed import _fresh_database, _setup_django  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="triples")
    parser.add_argument("--full", action="store_true", help="6.5M triples")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--database", default="skd_bench_student")
    args = parser.parse_args()
    n = 6_500_000 if args.full else args.n

    with tempfile.TemporaryDirectory() as workdir:
        _setup_django(_fresh_database(args.database), Path(workdir) / "artifacts")
        try:
            run_bench(n, args.steps, Path(workdir))
        finally:
            from django.db import connections

            connections.close_all()
            _fresh_database(args.database)


def run_bench(n: int, steps: int, workdir: Path) -> None:
    import torch

    from corpora.models import Corpus, Triple
    from corpora.services import corpus_import
    from distillation.demo import demo_base_model_ensure
    from distillation.folders import run_folder
    from distillation.services.evaluations import _pairs, evaluation_create, evaluation_execute
    from distillation.services.runs import student_run_create
    from distillation.services.training import student_train

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    path = workdir / "corpus.jsonl"
    build_corpus(path, n)
    started = time.perf_counter()
    corpus_import(path=path, corpus_name="bench", fmt="skd")
    corpus = Corpus.objects.get(name="bench")
    print(
        f"student at scale (PostgreSQL): imported {corpus.triple_count:,} triples in "
        f"{time.perf_counter() - started:.1f} s"
    )
    path.unlink()
    base = demo_base_model_ensure(workdir / "tiny-gpt2")

    started = time.perf_counter()
    run = student_run_create(
        name="bench",
        corpus=corpus,
        base_model=str(base),
        max_steps=steps,
        batch_size=32,
        save_every=10_000,
        device="cpu",
    )
    print(f"  student_run_create (checks, model config): {time.perf_counter() - started:.2f} s")

    marks: dict[str, float] = {}
    started = time.perf_counter()

    def progress(done, total, message="", force=False):
        if message.startswith("step") and "first" not in marks:
            marks["first"] = time.perf_counter() - started

    student_train(run=run, progress=progress)
    total = time.perf_counter() - started
    run.refresh_from_db()
    snapshot = (run_folder(run) / "train.parquet").stat().st_size / 2**20
    print(
        f"  training data snapshot + first step: {marks.get('first', float('nan')):.1f} s for "
        f"{run.train_examples:,} train triples (Parquet {snapshot:,.0f} MB)"
    )
    print(
        f"  {run.steps} steps at batch 32: {run.tokens_per_second or 0:,.0f} tokens/s; whole "
        f"student_train {total:.1f} s (model saved, card written)"
    )
    print(f"  peak RSS so far {peak_rss_mb():,.0f} MB")

    started = time.perf_counter()
    evaluation = evaluation_create(run=run, heads_split="test", max_heads=200)
    pairs, references = _pairs(evaluation)
    picked = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = evaluation_execute(evaluation=evaluation)
    seconds = time.perf_counter() - started
    written = Triple.objects.filter(corpus=evaluation.corpus).count()
    metrics = evaluation.metrics
    print(
        f"  evaluation of 200 test heads: pairs chosen from the split in {picked:.1f} s "
        f"({len(pairs):,} pairs, {sum(map(len, references.values())):,} references); "
        f"generate + write + measure {seconds:.1f} s ({metrics['seconds']:.1f} s generating, "
        f"{metrics['tokens_per_second'] or 0:,.0f} new tokens/s), {written:,} outputs"
    )
    print(f"  peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
