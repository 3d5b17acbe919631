"""Reading triples for the critic and writing their scores back, at corpus scale.

Triples are read in id order in chunks (keyset pagination), scores are written
back with COPY into a temporary table and one UPDATE per chunk on PostgreSQL,
executemany in the open transaction on SQLite.
"""

from __future__ import annotations

import struct
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


_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_PG_ROW = np.dtype(
    [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("score_len", ">i4"), ("score", ">f8")]
)


def _pg_binary_copy(ids: np.ndarray, scores: np.ndarray) -> bytes:
    """COPY's binary format built by numpy: no Python work per row."""
    rows = np.empty(len(ids), dtype=_PG_ROW)
    rows["fields"], rows["id_len"], rows["score_len"] = 2, 8, 8
    rows["id"], rows["score"] = ids, scores
    return _PG_COPY_HEADER + rows.tobytes() + struct.pack("!h", -1)


def scores_write(ids: np.ndarray, scores: np.ndarray) -> None:
    """Set Triple.score for these ids (call inside a transaction)."""
    if not len(ids):
        return
    table = Triple._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS critic_scores "
                "(id bigint, score double precision) ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE critic_scores")
            with cursor.cursor.copy(
                "COPY critic_scores (id, score) FROM STDIN (FORMAT binary)"
            ) as copy:
                copy.write(_pg_binary_copy(ids, scores.astype(np.float64)))
            cursor.execute("ANALYZE critic_scores")
            # The id range keeps the plan on the primary key (never a scan of the whole
            # table per chunk); rows that already hold the score are not rewritten.
            cursor.execute(
                f"UPDATE {table} t SET score = s.score FROM critic_scores s "
                "WHERE t.id = s.id AND t.id BETWEEN %s AND %s "
                "AND t.score IS DISTINCT FROM s.score",
                [int(ids.min()), int(ids.max())],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET score = %s WHERE id = %s",
                list(zip(scores.astype(np.float64).tolist(), ids.tolist(), strict=True)),
            )
