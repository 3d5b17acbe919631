"""Critic quality on proxy labels: held-out ROC-AUC against the number of training labels.

    python bench/critic_quality.py                       # fast tier, 500/2,000/8,000 labels
    python bench/critic_quality.py --tier cross --sizes 8000 --epochs 3
    python bench/critic_quality.py --precision int8      # fast tier on int8-encoded vectors

The proxy task (critic/ml/proxy.py) comes from ../shared/data/atomic2020/references.tsv:
the seven SKD relations, every tail other than `none` a positive, for each one a tail of
another head with the same relation as a negative; 4,000 examples held out, whole heads at
a time; nested training subsets. The fast tier is the one the app trains (critic/ml/fast.py)
on the same texts the app builds (critic/ml/texts.py); the cross tier fine-tunes the
packaged MiniLM as a cross-encoder (critic/ml/cross.py) with no held-out share of its own
(the 4,000 proxy examples are the held-out set).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REFERENCES = ROOT.parent / "shared" / "data" / "atomic2020" / "references.tsv"


def texts_of(examples, verbalization: dict) -> tuple[list[str], list[str]]:
    from critic.ml.texts import head_text, tail_text

    return (
        [head_text(e.head, verbalization[e.relation]) for e in examples],
        [tail_text(e.tail) for e in examples],
    )


def embed_all(encoder, texts: list[str]) -> dict[str, np.ndarray]:
    unique = sorted(set(texts))
    return dict(zip(unique, encoder.encode(unique), strict=True))


def fast_tier(task, sizes, verbalization, relations, precision: str) -> None:
    from critic.ml.encoder import Encoder
    from critic.ml.fast import train_fast_critic
    from critic.ml.metrics import classification_metrics

    encoder = Encoder(precision=precision)
    train_first, train_second = texts_of(task.train_subset(max(sizes)), verbalization)
    held_first, held_second = texts_of(task.heldout, verbalization)
    started = time.perf_counter()
    vectors = embed_all(encoder, train_first + train_second + held_first + held_second)
    print(
        f"encoded {len(vectors):,} distinct texts ({encoder.precision}) in "
        f"{time.perf_counter() - started:.1f} s"
    )

    def arrays(first, second, examples):
        u = np.stack([vectors[t] for t in first])
        v = np.stack([vectors[t] for t in second])
        r = np.array([relations.index(e.relation) for e in examples])
        return u, v, r

    hu, hv, hr = arrays(held_first, held_second, task.heldout)
    hy = np.array([e.label for e in task.heldout])
    for size in sizes:
        examples = task.train_subset(size)
        u, v, r = arrays(train_first[:size], train_second[:size], examples)
        y = np.array([e.label for e in examples])
        started = time.perf_counter()
        result = train_fast_critic(u, v, r, len(relations), y)
        seconds = time.perf_counter() - started
        metrics = classification_metrics(hy, result.critic.predict(hu, hv, hr))
        print(
            f"  fast, {size:>6,} labels: held-out ROC-AUC {metrics['roc_auc']:.3f}, "
            f"AP {metrics['average_precision']:.3f}, Brier {metrics['brier']:.3f}; "
            f"own 5-fold AUC {result.metrics['roc_auc']:.3f}; trained in {seconds:.1f} s"
        )


def cross_tier(task, sizes, verbalization, args) -> None:
    from critic.ml.cross import CrossEncoderScorer, train_cross_encoder
    from critic.ml.metrics import classification_metrics

    held_first, held_second = texts_of(task.heldout, verbalization)
    hy = np.array([e.label for e in task.heldout])
    for size in sizes:
        examples = task.train_subset(size)
        first, second = texts_of(examples, verbalization)
        with tempfile.TemporaryDirectory() as folder:
            result = train_cross_encoder(
                first,
                second,
                [e.label for e in examples],
                base_model="all-MiniLM-L6-v2",
                output_dir=folder,
                epochs=args.epochs,
                learning_rate=args.learning_rate,
                batch_size=args.batch_size,
                heldout_share=0.0,
            )
            started = time.perf_counter()
            scores = CrossEncoderScorer(result.model_dir).score(held_first, held_second)
            scoring = time.perf_counter() - started
        metrics = classification_metrics(hy, scores)
        print(
            f"  cross-encoder, {size:>6,} labels, {args.epochs:g} epochs, "
            f"lr {args.learning_rate:g}: held-out ROC-AUC {metrics['roc_auc']:.3f}, "
            f"AP {metrics['average_precision']:.3f}, "
            f"Brier {metrics['brier']:.3f}; trained in {result.train_seconds:.0f} s "
            f"({result.steps} steps), scored {len(hy) / scoring:,.0f} pairs/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--references", default=str(REFERENCES))
    parser.add_argument("--tier", choices=["fast", "cross"], default="fast")
    parser.add_argument("--sizes", default="500,2000,8000")
    parser.add_argument("--precision", default="auto", help="encoder: auto, fp32, bf16, int8")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from corpora.relations import ATOMIC_2020_RELATIONS
    from critic.ml.encoder import set_cpu_threads
    from critic.ml.proxy import SKD_RELATIONS, build_proxy_task

    threads = set_cpu_threads()
    verbalization = {r["name"]: r["verbalization"] for r in ATOMIC_2020_RELATIONS}
    task = build_proxy_task(Path(args.references))
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"proxy task: {len(task.train):,} training examples, {len(task.heldout):,} held out "
        f"({sum(e.label for e in task.heldout):,} positive); {threads} torch threads"
    )
    if args.tier == "fast":
        fast_tier(task, sizes, verbalization, list(SKD_RELATIONS), args.precision)
    else:
        cross_tier(task, sizes, verbalization, args)


if __name__ == "__main__":
    main()
