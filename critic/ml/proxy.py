"""The proxy task the critic benchmarks and tests measure quality on.

From human-written ATOMIC 2020 references (head, relation, tail): for the seven
SKD relations, every tail other than ``none`` is a positive, and for each one a
tail of another head with the same relation is a negative. Held-out examples
are whole heads, so no head is seen both in training and in evaluation.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from corpora.relations import SKD_RELATIONS


@dataclass(frozen=True)
class Example:
    head: str
    relation: str
    tail: str
    label: int


@dataclass(frozen=True)
class ProxyTask:
    train: list[Example]
    heldout: list[Example]

    def train_subset(self, size: int) -> list[Example]:
        """The first ``size`` training examples; the training list is already shuffled,
        so subsets are nested (500 ⊂ 2,000 ⊂ 8,000) like a growing label set."""
        if size > len(self.train):
            raise ValueError(f"asked for {size} training labels, the task has {len(self.train)}")
        return self.train[:size]


def read_references(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise ValueError(f"{path}, line {line_number}: expected 3 tab-separated fields")
            rows.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
    return rows


def build_proxy_task(path: Path, *, heldout_size: int = 4000, seed: int = 0) -> ProxyTask:
    rows = [
        (h, r, t)
        for h, r, t in read_references(path)
        if r in SKD_RELATIONS and t and t.lower() != "none"
    ]
    rng = random.Random(seed)
    tails_by_relation: dict[str, list[tuple[str, str]]] = defaultdict(list)
    true_tails: dict[tuple[str, str], set[str]] = defaultdict(set)
    for head, relation, tail in rows:
        tails_by_relation[relation].append((head, tail))
        true_tails[(head, relation)].add(tail.lower())

    by_head: dict[str, list[Example]] = defaultdict(list)
    for head, relation, tail in rows:
        by_head[head].append(Example(head, relation, tail, 1))
        pool = tails_by_relation[relation]
        for _attempt in range(100):
            other_head, other_tail = pool[rng.randrange(len(pool))]
            if other_head != head and other_tail.lower() not in true_tails[(head, relation)]:
                by_head[head].append(Example(head, relation, other_tail, 0))
                break

    heads = sorted(by_head)
    rng.shuffle(heads)
    heldout: list[Example] = []
    train: list[Example] = []
    for head in heads:
        (heldout if len(heldout) < heldout_size else train).extend(by_head[head])
    rng.shuffle(train)
    rng.shuffle(heldout)
    return ProxyTask(train=train, heldout=heldout)
