"""The embedding cache: float16 vectors keyed by the 64-bit hash of their text, in
append-only shards (a sorted keys .npy beside a vectors .npy, loaded with mmap)."""

from __future__ import annotations

import mmap
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xxhash


def text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.fromiter(
        (xxhash.xxh64_intdigest(t.encode("utf-8")) for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )


class EmbeddingStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: list[str] = []
        self._keys = np.empty(0, dtype=np.uint64)
        self._where = np.empty((0, 2), dtype=np.int64)  # (shard, row) per sorted key
        self._vectors: list[np.ndarray] = []
        self.refresh()

    def refresh(self) -> None:
        names = sorted(p.name[: -len(".keys.npy")] for p in self.root.glob("*.keys.npy"))
        if names == self._shards:
            return
        keys, where, vectors = [], [], []
        for index, name in enumerate(names):
            shard_keys = np.load(self.root / f"{name}.keys.npy")
            keys.append(shard_keys)
            where.append(
                np.stack([np.full(len(shard_keys), index), np.arange(len(shard_keys))], axis=1)
            )
            vectors.append(np.load(self.root / f"{name}.vectors.npy", mmap_mode="r"))
        if keys:
            all_keys = np.concatenate(keys)
            order = np.argsort(all_keys, kind="stable")
            self._keys, self._where = all_keys[order], np.concatenate(where)[order]
        self._shards, self._vectors = names, vectors

    def __len__(self) -> int:
        return len(self._keys)

    def _positions(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = np.searchsorted(self._keys, keys)
        positions = np.minimum(positions, max(len(self._keys) - 1, 0))
        found = (
            self._keys[positions] == keys if len(self._keys) else np.zeros(len(keys), dtype=bool)
        )
        return positions, found

    def missing(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.uint64)
        _, found = self._positions(keys)
        if not found.all():
            self.refresh()
            _, found = self._positions(keys)
        return ~found

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> int:
        keys = np.asarray(keys, dtype=np.uint64)
        keys, first = np.unique(keys, return_index=True)
        vectors = np.asarray(vectors, dtype=np.float16)[first]
        new = self.missing(keys)
        if not new.any():
            return 0
        name = uuid.uuid4().hex
        for suffix, array in (("vectors", vectors[new]), ("keys", keys[new])):
            # keys last: a shard is visible only once its vectors are complete.
            temporary = self.root / f".{name}.{suffix}.tmp.npy"
            np.save(temporary, array)
            os.replace(temporary, self.root / f"{name}.{suffix}.npy")
        self.refresh()
        return int(new.sum())

    def get(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.uint64)
        positions, found = self._positions(keys)
        if not found.all():
            self.refresh()
            positions, found = self._positions(keys)
        if not found.all():
            raise KeyError(f"{int((~found).sum())} of {len(keys)} texts have no cached embedding")
        where = self._where[positions]
        shards = np.unique(where[:, 0])
        if len(shards) == 1:
            return np.take(self._vectors[shards[0]], where[:, 1], axis=0)
        dim = self._vectors[0].shape[1] if self._vectors else 0
        out = np.empty((len(keys), dim), dtype=np.float16)
        for shard in shards:
            mine = where[:, 0] == shard
            out[mine] = np.take(self._vectors[shard], where[mine, 1], axis=0)
        return out

    def prefault(self) -> None:
        """Map every shard's pages now, in one call per shard, before a pass that reads
        most vectors: on a virtual machine a page fault per 4 KB page read at random cost
        ~10x more (measured: 0.32 s against 0.04 s for 100k random rows of 254 MB)."""
        populate = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux 5.14+
        for vectors in self._vectors:
            try:
                vectors._mmap.madvise(populate)
            except (AttributeError, OSError, ValueError):
                return  # another system or an older kernel: pages fault in as read

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*.npy"))
