"""Near-the-line and disagreement sampling at ATOMIC-10X scale, on numpy columns alone
(the candidates as `corpus_candidates` returns them, synthetic: 6.5M triples, 23
relations, scores uniform on 0..1, a crowd label on 200,000 of them).

    python bench/learn_sampling.py                 # 6.5M triples, a 10,000-item campaign
    python bench/learn_sampling.py --triples 1000000 --size 2000

Prints, for each strategy, the seconds of the pick and of the design weights and the peak
of memory numpy allocated beyond the candidates (tracemalloc). Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triples", type=int, default=6_500_000)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--labels", type=int, default=200_000)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import numpy as np

    from annotation.sampling import Candidates, Disagreement, NearTheLine, choose, design_weights

    rng = np.random.default_rng(0)
    n = args.triples
    candidates = Candidates(
        np.arange(1, n + 1, dtype=np.int64), rng.integers(1, 24, n), rng.random(n)
    )
    labelled = np.sort(rng.choice(candidates.ids, args.labels, replace=False))
    strategies = {
        "near_line": NearTheLine(
            threshold=0.6, relation_thresholds=tuple((r, 0.3 + 0.02 * r) for r in range(1, 24))
        ),
        "disagreement": Disagreement(
            labelled_ids=labelled, labels=rng.integers(0, 2, labelled.size).astype(np.int8)
        ),
    }
    print(f"{n:,} candidates, campaign of {args.size:,}")
    print(f"{'strategy':<14}{'pick s':>9}{'weights s':>11}{'peak MB':>10}")
    for name, strategy in strategies.items():
        tracemalloc.start()
        started = time.perf_counter()
        picked = choose(candidates=candidates, size=args.size, sampling=strategy, seed=1)
        picked_at = time.perf_counter()
        design_weights(candidates=candidates, picked=picked, sampling=strategy)
        done = time.perf_counter()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{name:<14}{picked_at - started:>9.2f}{done - picked_at:>11.2f}{peak / 2**20:>10.0f}"
        )


if __name__ == "__main__":
    main()
