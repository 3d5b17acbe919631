"""Reading triples for the critic at corpus scale: in id order, chunk by chunk (keyset
pagination). Scores go back as score sets (generation.scores)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.db import connection

from corpora.models import Event, Relation, Triple

from .ml.texts import pair_texts


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
        keep = self.ids <= last_id
        return TripleChunk(
            self.ids[keep],
            self.relation_ids[keep],
            [h for h, k in zip(self.heads, keep.tolist(), strict=True) if k],
            [t for t, k in zip(self.tails, keep.tolist(), strict=True) if k],
        )


def id_ranges(*, corpus_id: int, size: int) -> Iterator[tuple[int, int, int]]:
    """(first id, last id, triples) of consecutive ranges of `size` triples, read a range
    at a time (never every id at once)."""
    table = Triple._meta.db_table
    after = -1
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT min(id), max(id), count(*) FROM (SELECT id FROM {table} "
                "WHERE corpus_id = %s AND id > %s ORDER BY id LIMIT %s) r",
                [corpus_id, after, size],
            )
            first, last, count = cursor.fetchone()
        if not count:
            return
        yield int(first), int(last), int(count)
        after = int(last)


def relation_verbalizations() -> dict[int, tuple[str, str]]:
    """relation id -> (name, verbalization)."""
    return {r.pk: (r.name, r.verbalization or r.name) for r in Relation.objects.all()}


def chunk_texts(
    chunk: TripleChunk, verbalizations: dict[int, tuple[str, str]], *, draw: int | None = None
) -> tuple[list[str], list[str]]:
    """The (head + relation, tail) texts of the chunk's triples; with `draw`, that draw
    of the name swap (`ml.texts`)."""
    pairs = [
        pair_texts(head, verbalizations[rel][1], tail, draw=draw)
        for head, rel, tail in zip(
            chunk.heads, chunk.relation_ids.tolist(), chunk.tails, strict=True
        )
    ]
    return [first for first, _ in pairs], [second for _, second in pairs]


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


def _event_texts(event_ids: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(event_ids), 5000):
        part = event_ids[start : start + 5000]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, text FROM {Event._meta.db_table} "
                f"WHERE id IN ({', '.join(['%s'] * len(part))})",
                part,
            )
            found.update(cursor.fetchall())
    return found


# Head texts remembered across chunks (a head has rows under many relations), bounded.
HEAD_CACHE_SIZE = 200_000


def _rows_postgresql(corpus_id: int, after: int, size: int):
    """One chunk as three packed arrays of big-endian integers and one text of tails,
    which numpy and str.split take apart, instead of a Python tuple per row (half the
    client's time). Each aggregate sees the rows in the same order, so the columns line
    up. None when a tail holds a newline (never, after an import's whitespace folding),
    so that the caller reads row by row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), string_agg(int8send(id), ''), "
            "string_agg(int8send(relation_id), ''), string_agg(int8send(head_id), ''), "
            "string_agg(tail, E'\\n') FROM ("
            f"SELECT id, relation_id, head_id, tail FROM {Triple._meta.db_table} "
            "WHERE corpus_id = %s AND id > %s ORDER BY id LIMIT %s) chunk",
            [corpus_id, after, size],
        )
        count, ids, relation_ids, head_ids, tails = cursor.fetchone()
    if not count:
        return np.empty(0, np.int64), np.empty(0, np.int64), [], []
    tails = tails.split("\n")
    if len(tails) != count:
        return None
    return (
        np.frombuffer(ids, dtype=">i8").astype(np.int64),
        np.frombuffer(relation_ids, dtype=">i8").astype(np.int64),
        np.frombuffer(head_ids, dtype=">i8").astype(np.int64).tolist(),
        tails,
    )


def _rows(corpus_id: int, after: int, size: int):
    if connection.vendor == "postgresql":
        found = _rows_postgresql(corpus_id, after, size)
        if found is not None:
            return found
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, relation_id, head_id, tail FROM {Triple._meta.db_table} "
            "WHERE corpus_id = %s AND id > %s ORDER BY id LIMIT %s",
            [corpus_id, after, size],
        )
        rows = cursor.fetchall()
    return (
        np.fromiter((row[0] for row in rows), np.int64, len(rows)),
        np.fromiter((row[1] for row in rows), np.int64, len(rows)),
        [row[2] for row in rows],
        [row[3] for row in rows],
    )


def corpus_chunks(
    *, corpus_id: int, chunk_size: int = 25_000, after: int = 0
) -> Iterator[TripleChunk]:
    """The corpus's triples with ids above `after`, chunk by chunk (keyset, in id order
    from chunk to chunk). Head texts are looked up once per head, not joined into every
    row."""
    head_texts: dict[int, str] = {}
    while True:
        ids, relation_ids, head_ids, tails = _rows(corpus_id, after, chunk_size)
        if not len(ids):
            return
        if len(head_texts) > HEAD_CACHE_SIZE:
            head_texts.clear()
        head_texts.update(_event_texts(list(set(head_ids).difference(head_texts))))
        yield TripleChunk(ids, relation_ids, [head_texts[h] for h in head_ids], tails)
        after = int(ids.max())


def read_ahead(items: Iterator) -> Iterator:
    """The items, each produced in a thread (on its own database connection) while the
    caller works on the one before. Only on PostgreSQL outside a transaction: elsewhere
    another connection would not see what this one has written, so items come inline."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield from items
        return
    done = object()
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                ahead.put(item)
            ahead.put(done)
        except BaseException as exc:  # handed to the consumer
            ahead.put(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to put
            try:
                ahead.get(timeout=0.1)
            except queue.Empty:
                pass


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
