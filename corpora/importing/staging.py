"""Staging: a file's blocks of rows made ready for a loader. Relations resolved by name,
tails hashed (`tail_key`), "none" tails dropped when asked, and repeats within a block
folded into their first row with a count; invalid rows go to the import's reject sink.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import compress
from operator import methodcaller

import numpy as np
import xxhash

from ..formats import TAIL_END_CHARS, Block, RowError, normalize_tail
from .rejects import _RejectSink

try:
    from skd_native import tail_keys as native_tail_keys
except ImportError:  # an optional speed-up in C (see native/), there when xxhash.h was
    native_tail_keys = None


_SIGN = 1 << 63


def tail_key(tail: str) -> int:
    """Signed 64-bit hash of the normalized tail (fits a BIGINT column)."""
    return xxhash.xxh3_64_intdigest(normalize_tail(tail).encode()) - _SIGN


# ATOMIC writes "none" where a relation has no inference for a head; such rows are not
# triples. Their tail key, for dropping them at import and leaving them out of campaigns.
NONE_TAIL = "none"
NONE_TAIL_KEY = tail_key(NONE_TAIL)


@dataclass
class StageBlock:
    """Distinct rows ready for a loader, as columns; `counts[i]` copies of row i were read."""

    seqs: range
    heads: list[str]
    relation_ids: list[int]
    tails: list[str]
    keys: list[int]
    splits: list[str]
    fields: list[str]
    counts: list[int]

    @property
    def rows_read(self) -> int:
        return sum(self.counts)


def _pick(column: list, keep: bytearray) -> list:
    """The values whose `keep` byte is not zero."""
    return list(compress(column, keep))


@dataclass
class _Dropped:
    """Valid rows left out on purpose."""

    none_tails: int = 0


def _stage_blocks(
    blocks: Iterator[Block],
    relation_ids: dict[str, int],
    sink: _RejectSink,
    *,
    fold: bool,
    drop_none: bool = False,
    dropped: _Dropped | None = None,
) -> Iterator[StageBlock]:
    """Resolve relations (case-insensitively), hash tails, drop "none" tails when asked
    (counted in `dropped`), and, when asked, fold repeats within a block; invalid rows
    go to the sink."""
    known = ", ".join(sorted(name for name in relation_ids if not name.startswith("\0")))
    seq = 0  # row ordinal: keeps file order even where one line gives several rows
    for block in blocks:
        heads, tails, splits, fields = block.heads, block.tails, block.splits, block.fields
        rel_ids = list(map(relation_ids.get, block.relations))
        errors = list(block.errors)
        if None in rel_ids:
            keep = bytearray(len(rel_ids))
            for i, relation in enumerate(block.relations):
                if rel_ids[i] is None:
                    rel_ids[i] = relation_ids.get("\0" + relation.strip().lower())
                if rel_ids[i] is None:
                    errors.append(
                        RowError(
                            block.lines[i],
                            "relation",
                            f"unknown relation {relation!r} (known: {known}; add new relations "
                            "on the relations page or through the API)",
                            "\t".join((heads[i], relation, tails[i])),
                        )
                    )
                else:
                    keep[i] = 1
            heads, tails = _pick(heads, keep), _pick(tails, keep)
            splits, fields = _pick(splits, keep), _pick(fields, keep)
            rel_ids = _pick(rel_ids, keep)
        for error in sorted(errors, key=lambda e: e.line):
            sink.add(error)
            if sink.full:
                return
        if not heads or (sink.count and not sink.skip_invalid):
            continue  # nothing left, or the import is failing: only count errors now
        keys = _tail_keys(tails)
        if drop_none and NONE_TAIL_KEY in keys:
            keep = bytearray(b"\x01") * len(keys)
            for i, key in enumerate(keys):
                if key == NONE_TAIL_KEY and normalize_tail(tails[i]) == NONE_TAIL:
                    keep[i] = 0
            if dropped is not None:
                dropped.none_tails += len(keep) - sum(keep)
            heads, tails, keys = _pick(heads, keep), _pick(tails, keep), _pick(keys, keep)
            splits, fields, rel_ids = _pick(splits, keep), _pick(fields, keep), _pick(rel_ids, keep)
            if not heads:
                continue
        counts = [1] * len(heads)
        suspects = _rows_that_may_repeat(heads, rel_ids, keys) if fold else None
        if suspects:
            # Exact comparison among the few rows whose hash repeats.
            first: dict[tuple, int] = {}
            dropped = []
            for i in suspects:
                j = first.setdefault((heads[i], rel_ids[i], keys[i]), i)
                if j != i:
                    counts[j] += 1
                    dropped.append(i)
            if dropped:
                keep = bytearray(b"\x01") * len(heads)
                for i in dropped:
                    keep[i] = 0
                heads, tails, keys = _pick(heads, keep), _pick(tails, keep), _pick(keys, keep)
                splits, fields = _pick(splits, keep), _pick(fields, keep)
                rel_ids, counts = _pick(rel_ids, keep), _pick(counts, keep)
        yield StageBlock(
            range(seq + 1, seq + 1 + len(heads)),
            heads,
            rel_ids,
            tails,
            keys,
            splits,
            fields,
            counts,
        )
        seq += len(heads)


def _tail_keys(tails: list[str]) -> list[int]:
    """tail_key of each tail, which arrives whitespace-collapsed (so without newlines):
    in C where the native module has xxh3, else lower-cased all at once and hashed in
    C-level loops, not a Python loop per row."""
    if native_tail_keys is not None:
        return native_tail_keys(tails, tail_key)
    joined = "\n".join(tails)
    if joined.count("\n") != len(tails) - 1:
        return [tail_key(t) for t in tails]
    trimmed = map(methodcaller("rstrip", TAIL_END_CHARS), joined.lower().split("\n"))
    hashes = np.fromiter(
        map(xxhash.xxh3_64_intdigest, map(str.encode, trimmed)), dtype=np.uint64, count=len(tails)
    )
    return (hashes ^ np.uint64(_SIGN)).view(np.int64).tolist()


def _rows_that_may_repeat(heads: list[str], relation_ids: list[int], keys: list[int]) -> list[int]:
    """Rows (in order) whose (head, relation, tail key) may occur twice in the block: one
    64-bit hash per row is compared, so a rare collision only adds a suspect."""
    h = np.fromiter(map(hash, heads), dtype=np.int64, count=len(heads)).view(np.uint64)
    h = (h * np.uint64(0x9E3779B97F4A7C15)) ^ np.array(relation_ids, dtype=np.uint64)
    h = (h * np.uint64(0xBF58476D1CE4E5B9)) ^ np.array(keys, dtype=np.int64).view(np.uint64)
    _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] > 1).tolist()


def _relation_ids() -> dict[str, int]:
    from ..models import Relation

    # Exact names, plus lower-cased ones behind a NUL prefix that no name can have.
    ids: dict[str, int] = {}
    for relation_id, name in Relation.objects.values_list("id", "name"):
        ids[name] = relation_id
        ids["\0" + name.lower()] = relation_id
    return ids
