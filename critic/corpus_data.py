"""Reading triples for the critic at corpus scale: in id order, chunk by chunk (keyset
pagination). Scores go back as score sets (generation.scores)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.db import connection

from generation.models import Event, Relation, Triple

from .ml.texts import head_text, tail_text


@dataclass
class TripleChunk:
    ids: np.ndarray  # int64
    relation_ids: np.ndarray  # int64
    heads: list[str]
    tails: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def until(self, last_id: int) -> TripleChunk:
        """The part of the chunk with ids up to last_id."""
        keep = int(np.searchsorted(self.ids, last_id, side="right"))
        return TripleChunk(
            self.ids[:keep], self.relation_ids[:keep], self.heads[:keep], self.tails[:keep]
        )


def relation_verbalizations() -> dict[int, tuple[str, str]]:
    """relation id -> (name, verbalization)."""
    return {r.pk: (r.name, r.verbalization or r.name) for r in Relation.objects.all()}


def chunk_texts(
    chunk: TripleChunk, verbalizations: dict[int, tuple[str, str]]
) -> tuple[list[str], list[str]]:
    firsts = [
        head_text(head, verbalizations[rel][1])
        for head, rel in zip(chunk.heads, chunk.relation_ids.tolist(), strict=True)
    ]
    return firsts, [tail_text(tail) for tail in chunk.tails]


_SELECT = (
    f"SELECT t.id, t.relation_id, e.text, t.tail FROM {Triple._meta.db_table} t "
    f"JOIN {Event._meta.db_table} e ON e.id = t.head_id "
)


def _chunk(rows) -> TripleChunk:
    if not rows:
        return TripleChunk(np.empty(0, np.int64), np.empty(0, np.int64), [], [])
    return TripleChunk(
        np.fromiter((row[0] for row in rows), np.int64, len(rows)),
        np.fromiter((row[1] for row in rows), np.int64, len(rows)),
        [row[2] for row in rows],
        [row[3] for row in rows],
    )


def corpus_chunks(
    *, corpus_id: int, chunk_size: int = 100_000, after: int = 0
) -> Iterator[TripleChunk]:
    """The corpus's triples with ids above `after`, in id order, chunk by chunk (keyset)."""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                _SELECT + "WHERE t.corpus_id = %s AND t.id > %s ORDER BY t.id LIMIT %s",
                [corpus_id, after, chunk_size],
            )
            chunk = _chunk(cursor.fetchall())
        if not len(chunk):
            return
        yield chunk
        after = int(chunk.ids[-1])


def triples_by_id(triple_ids: np.ndarray) -> TripleChunk:
    """The given triples, in the given order."""
    found: dict[int, tuple] = {}
    ids = [int(i) for i in triple_ids]
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        with connection.cursor() as cursor:
            cursor.execute(_SELECT + f"WHERE t.id IN ({', '.join(['%s'] * len(part))})", part)
            for row in cursor.fetchall():
                found[row[0]] = row
    missing = [i for i in ids if i not in found]
    if missing:
        raise LookupError(f"{len(missing)} labelled triples no longer exist (e.g. id {missing[0]})")
    return _chunk([found[i] for i in ids])
