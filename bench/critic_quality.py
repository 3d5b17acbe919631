"""Critic quality on proxy labels: held-out ROC-AUC against the number of training labels.

    python bench/critic_quality.py                       # fast tier, 500/2,000/8,000 labels
    python bench/critic_quality.py --tier cross --sizes 8000 --epochs 3
    python bench/critic_quality.py --tier stacked --sizes 500,2000,5000,8000
    python bench/critic_quality.py --precision int8      # fast tier on int8-encoded vectors
    python bench/critic_quality.py --name-draws 0,5      # without and with the name swap
    python bench/critic_quality.py --crowd 3 --labels hard,weighted,soft

The proxy task (critic/ml/proxy.py) comes from ../shared/data/atomic2020/references.tsv:
the seven SKD relations, every tail other than `none` a positive, for each one a tail of
another head with the same relation as a negative; 4,000 examples held out, whole heads at
a time; nested training subsets. The fast tier is the one the app trains (critic/ml/fast.py)
on the same texts the app builds (critic/ml/texts.py); the cross tier fine-tunes the
packaged MiniLM as a cross-encoder (critic/ml/cross.py) with no held-out share of its own
(the 4,000 proxy examples are the held-out set).

--name-draws: the paper's name swap (critic/ml/texts.py), 0 for names as written; with n,
every training label is learned in n draws and a held-out score is the mean over n draws.
--crowd k: instead of the proxy's certain labels, each training label is judged by k of
30 simulated annotators (accuracies spread over 0.55-0.95, a third of them leaning to
"acceptable") and aggregated with Dawid-Skene as the app does (annotation/ml/aggregation.py);
--labels then compares learning the hard Dawid-Skene label, weighting it by its posterior,
and the posterior as a soft target. Held-out labels stay the proxy's true ones.
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


def texts_of(examples, verbalization: dict, draws=(None,)) -> tuple[list[str], list[str]]:
    """The examples' texts in each name-swap draw, draw after draw (copy-major)."""
    from critic.ml.texts import pair_texts

    pairs = [
        pair_texts(e.head, verbalization[e.relation], e.tail, draw=draw)
        for draw in draws
        for e in examples
    ]
    return [first for first, _ in pairs], [second for _, second in pairs]


def draws_of(count: int) -> list[int | None]:
    return list(range(count)) if count else [None]


def crowd_labels(examples, k: int, seed: int = 0):
    """Simulated crowd labels of the examples, aggregated by Dawid-Skene: (labels,
    confidence of each label, kept mask: ties dropped), as the app stores them."""
    from annotation.ml.aggregation import aggregate

    rng = np.random.default_rng(seed)
    annotators = 30
    accuracy = rng.uniform(0.55, 0.95, annotators)
    # A third of them say "acceptable" more readily than they should.
    lenient = rng.random(annotators) < 1 / 3
    judgments = []
    for item, example in enumerate(examples):
        for who in rng.choice(annotators, size=k, replace=False):
            shortfall = 0.15 if lenient[who] and not example.label else 0.0
            right = rng.random() < accuracy[who] - shortfall
            says = example.label if right else 1 - example.label
            judgments.append((item, int(who), 2 if says else -2))
    found = aggregate(judgments)
    labels = np.array(
        [found[i].ds if found[i].ds is not None else -1 for i in range(len(examples))]
    )
    confidence = np.array([found[i].ds_confidence for i in range(len(examples))])
    return labels.clip(0).astype(int), confidence, labels >= 0


def embed_all(encoder, texts: list[str]) -> dict[str, np.ndarray]:
    unique = sorted(set(texts))
    return dict(zip(unique, encoder.encode(unique), strict=True))


def training_labels(examples, args):
    """(labels, targets, sample weights, kept rows) per --labels mode, for the examples."""
    truth = np.array([e.label for e in examples])
    if not args.crowd:
        yield "proxy", truth, None, None, np.ones(len(truth), bool)
        return
    labels, confidence, kept = crowd_labels(examples, args.crowd)
    agreement = (labels[kept] == truth[kept]).mean()
    print(f"    crowd of {args.crowd}: Dawid-Skene label right on {agreement:.3f} of the items")
    for mode in args.labels.split(","):
        soft = np.where(labels > 0, confidence, 1 - confidence)
        yield (
            mode,
            labels,
            soft if mode == "soft" else None,
            confidence / confidence[kept].mean() if mode == "weighted" else None,
            kept,
        )


def fast_tier(task, sizes, verbalization, relations, precision: str, args) -> None:
    from critic.ml.encoder import Encoder
    from critic.ml.fast import train_fast_critic
    from critic.ml.metrics import classification_metrics

    encoder = Encoder(precision=precision)
    settings = [int(d) for d in args.name_draws.split(",")]
    all_draws = sorted(
        {d for n in settings for d in draws_of(n)}, key=lambda d: -1 if d is None else d
    )
    train_examples = task.train_subset(max(sizes))
    texts: dict = {}
    for draw in all_draws:
        texts[draw] = (
            texts_of(train_examples, verbalization, [draw]),
            texts_of(task.heldout, verbalization, [draw]),
        )
    started = time.perf_counter()
    vectors = embed_all(
        encoder,
        [t for (a, b), (c, d) in texts.values() for part in (a, b, c, d) for t in part],
    )
    print(
        f"encoded {len(vectors):,} distinct texts ({encoder.precision}) in "
        f"{time.perf_counter() - started:.1f} s"
    )

    def arrays(draws, which, examples, size=None):
        u, v = [], []
        for draw in draws:
            first, second = texts[draw][which]
            u.append(np.stack([vectors[t] for t in first[:size]]))
            v.append(np.stack([vectors[t] for t in second[:size]]))
        r = np.array([relations.index(e.relation) for e in examples])
        return np.concatenate(u), np.concatenate(v), np.tile(r, len(draws))

    hy = np.array([e.label for e in task.heldout])
    for draws_count in settings:
        draws = draws_of(draws_count)
        hu, hv, hr = arrays(draws, 1, task.heldout)
        for size in sizes:
            examples = task.train_subset(size)
            u, v, r = arrays(draws, 0, examples, size)
            for mode, y, targets, weights, kept in training_labels(examples, args):
                rows = np.tile(kept, len(draws))
                started = time.perf_counter()
                result = train_fast_critic(
                    u[rows],
                    v[rows],
                    r[rows],
                    len(relations),
                    y[kept],
                    targets=None if targets is None else targets[kept],
                    sample_weight=None if weights is None else weights[kept],
                    copies=len(draws),
                )
                seconds = time.perf_counter() - started
                scores = result.critic.predict(hu, hv, hr).reshape(len(draws), -1).mean(axis=0)
                metrics = classification_metrics(hy, scores)
                print(
                    f"  fast, {size:>6,} labels, {draws_count} name draws, {mode} labels: "
                    f"held-out ROC-AUC {metrics['roc_auc']:.3f}, "
                    f"AP {metrics['average_precision']:.3f}, Brier {metrics['brier']:.3f}; "
                    f"own 5-fold AUC {result.metrics['roc_auc']:.3f}; trained in {seconds:.1f} s",
                    flush=True,
                )


def train_bench_cross_encoder(first, second, labels, folder, args, **options):
    """The packaged MiniLM fine-tuned as a cross-encoder with the command line's epochs,
    learning rate and batch size."""
    from critic.ml.cross import train_cross_encoder

    return train_cross_encoder(
        first,
        second,
        labels,
        base_model="all-MiniLM-L6-v2",
        output_dir=folder,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        **options,
    )


def cross_tier(task, sizes, verbalization, args) -> None:
    from critic.ml.cross import CrossEncoderScorer
    from critic.ml.metrics import classification_metrics

    hy = np.array([e.label for e in task.heldout])
    for draws_count in [int(d) for d in args.name_draws.split(",")]:
        draws = draws_of(draws_count)
        held_first, held_second = texts_of(task.heldout, verbalization, draws)
        for size in sizes:
            examples = task.train_subset(size)
            first, second = texts_of(examples, verbalization, draws)
            for mode, y, targets, weights, kept in training_labels(examples, args):
                rows = np.tile(kept, len(draws))
                with tempfile.TemporaryDirectory() as folder:
                    result = train_bench_cross_encoder(
                        [t for t, k in zip(first, rows, strict=True) if k],
                        [t for t, k in zip(second, rows, strict=True) if k],
                        y[kept],
                        folder,
                        args,
                        heldout_share=0.0,
                        targets=None if targets is None else targets[kept],
                        sample_weight=None if weights is None else weights[kept],
                        copies=len(draws),
                    )
                    started = time.perf_counter()
                    scores = CrossEncoderScorer(result.model_dir).score(held_first, held_second)
                    scoring = time.perf_counter() - started
                scores = scores.reshape(len(draws), -1).mean(axis=0)
                metrics = classification_metrics(hy, scores)
                print(
                    f"  cross-encoder, {size:>6,} labels, {draws_count} name draws, {mode} "
                    f"labels, {args.epochs:g} epochs, lr {args.learning_rate:g}: held-out "
                    f"ROC-AUC {metrics['roc_auc']:.3f}, AP {metrics['average_precision']:.3f}, "
                    f"Brier {metrics['brier']:.3f}; trained in {result.train_seconds:.0f} s "
                    f"({result.steps} steps), scored {len(held_first) / scoring:,.0f} pairs/s",
                    flush=True,
                )


def stacked_tier(task, sizes, verbalization, relations, args) -> None:
    """Both tiers and their stack, as the app's `stacked` tier trains them: the fast head
    out of fold on every label, the cross-encoder on 80% with 20% held out, the stacker
    fitted on that 20% and chosen only when it beats both there. Held-out figures are on
    the proxy's 4,000."""
    from critic.ml.cross import CrossEncoderScorer
    from critic.ml.encoder import Encoder
    from critic.ml.fast import train_fast_critic
    from critic.ml.metrics import classification_metrics
    from critic.ml.stacking import stack_tiers

    encoder = Encoder(precision=args.precision)
    hy = np.array([e.label for e in task.heldout])
    train_examples = task.train_subset(max(sizes))
    (tf, ts), (hf, hs) = (
        texts_of(train_examples, verbalization),
        texts_of(task.heldout, verbalization),
    )
    vectors = embed_all(encoder, tf + ts + hf + hs)
    hu, hv = np.stack([vectors[t] for t in hf]), np.stack([vectors[t] for t in hs])
    hr = np.array([relations.index(e.relation) for e in task.heldout])
    for size in sizes:
        examples = task.train_subset(size)
        y = np.array([e.label for e in examples])
        u = np.stack([vectors[t] for t in tf[:size]])
        v = np.stack([vectors[t] for t in ts[:size]])
        r = np.array([relations.index(e.relation) for e in examples])
        fast = train_fast_critic(u, v, r, len(relations), y)
        fast_held = fast.critic.predict(hu, hv, hr)
        with tempfile.TemporaryDirectory() as folder:
            cross = train_bench_cross_encoder(
                tf[:size], ts[:size], y, folder, args, heldout_share=0.2
            )
            cross_held = CrossEncoderScorer(cross.model_dir).score(hf, hs)
        stack = stack_tiers(
            fast.heldout_scores[cross.heldout_index], cross.heldout_scores, y[cross.heldout_index]
        )
        figures = {"fast": fast_held, "cross-encoder": cross_held}
        if stack.stacker is not None:
            figures["stacked"] = stack.stacker.predict(fast_held, cross_held)
        else:
            figures["stacked"] = figures[stack.chosen]
        inner = ", ".join(
            f"{name} {value:.3f}" for name, value in stack.roc_auc.items() if value is not None
        )
        print(
            f"  {size:>6,} labels: held-out ROC-AUC "
            + ", ".join(
                f"{name} {classification_metrics(hy, s)['roc_auc']:.3f}"
                for name, s in figures.items()
            )
            + f"; chose {stack.chosen} on its {stack.labels:,} own held-out labels ({inner})"
            + (f", weights {stack.stacker.as_dict()}" if stack.stacker else "")
            + f"; cross-encoder trained in {cross.train_seconds:.0f} s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--references", default=str(REFERENCES))
    parser.add_argument("--tier", choices=["fast", "cross", "stacked"], default="fast")
    parser.add_argument("--sizes", default="500,2000,8000")
    parser.add_argument("--precision", default="auto", help="encoder: auto, fp32, bf16, int8")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--name-draws", default="0", help="name-swap draws, comma-separated settings (0: off)"
    )
    parser.add_argument(
        "--crowd", type=int, default=0, help="simulated annotators per training label (0: off)"
    )
    parser.add_argument(
        "--labels", default="hard,weighted,soft", help="with --crowd: hard, weighted, soft"
    )
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
        fast_tier(task, sizes, verbalization, list(SKD_RELATIONS), args.precision, args)
    elif args.tier == "stacked":
        stacked_tier(task, sizes, verbalization, list(SKD_RELATIONS), args)
    else:
        cross_tier(task, sizes, verbalization, args)


if __name__ == "__main__":
    main()
