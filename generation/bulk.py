"""Fast bulk loading of parsed triples, the best route each database has.

Rows arrive in blocks of columns (importing.StageBlock), already folded so
that a block holds each (head, relation, tail key) once with its count.
For each block the loader finds or creates the head events with two
set-based queries, puts the rows (now carrying head_id) in a temporary
stage table and merges them into the corpus with INSERT ... ON CONFLICT:
rows the corpus already has only add to `occurrences`.

PostgreSQL: COPY into the stage; everything inside the caller's transaction.
Into a corpus that was empty when the import began (the caller holds the
corpus row's lock), rows go straight into the triple table with COPY; only
rows that may repeat an earlier block's (a Bloom filter says so) take the
stage and ON CONFLICT. Index upkeep is then the database's main cost.
SQLite: the rows are staged first (a temp table does not take the main
database's write lock) and merged in one short write transaction, so
other writers wait only for the merge, not for the parsing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.db import connection, transaction

STAGE = "skd_import_stage"
# Without fresh statistics after a bulk load the planner takes a big corpus
# for a tiny one (nested loops, sorts on disk).
ANALYZE_AFTER_ROWS = 10_000
STAGE_COLUMNS = "seq, head_id, relation_id, tail, tail_key, split, source_fields, n"


def _triple_table() -> str:
    from .models import Triple

    return Triple._meta.db_table


def _event_table() -> str:
    from .models import Event

    return Event._meta.db_table


def _merge_sql(where: str = "") -> str:
    triple = _triple_table()
    return f"""
        INSERT INTO {triple} (corpus_id, head_id, relation_id, tail, tail_key, split, origin,
                              import_job_id, occurrences, source_fields)
        SELECT %s, head_id, relation_id, tail, tail_key, split, %s, %s, n, source_fields
        FROM {STAGE} {where}
        ORDER BY seq
        ON CONFLICT (corpus_id, head_id, relation_id, tail_key)
        DO UPDATE SET occurrences = {triple}.occurrences + excluded.occurrences
    """


class _Loader:
    # Head ids already looked up, so that blocks repeating heads (a head has rows under
    # many relations) skip the round trip; bounded to keep memory flat.
    HEAD_CACHE_SIZE = 200_000

    def __init__(self, *, corpus_id: int, origin: str, job_id: int | None) -> None:
        self.params = (corpus_id, origin, job_id)
        self._head_ids: dict[str, int] = {}

    def _event_ids(self, cursor, heads: list[str]) -> dict[str, int]:
        """Find or create the events of these distinct heads; their ids by text."""
        raise NotImplementedError

    def _head_id_list(self, cursor, heads: list[str]) -> list[int]:
        cache = self._head_ids
        distinct = dict.fromkeys(heads)  # first-seen order
        missing = [h for h in distinct if h not in cache]
        if missing:
            if len(cache) + len(missing) > self.HEAD_CACHE_SIZE:
                cache.clear()
                missing = list(distinct)
            cache.update(self._event_ids(cursor, missing))
        return [cache[h] for h in heads]

    def _stage_rows(self, cursor, block, head_ids: list[int] | None = None) -> Iterable[tuple]:
        """The block's rows in the stage's column order, heads replaced by event ids."""
        if head_ids is None:
            head_ids = self._head_id_list(cursor, block.heads)
        return zip(
            block.seqs,
            head_ids,
            block.relation_ids,
            block.tails,
            block.keys,
            block.splits,
            block.fields,
            block.counts,
            strict=True,
        )


class _MaybeSeen:
    """An approximate set of (head id, relation id, tail key) in 16 MB: a Bloom filter.

    `check_and_add` answers for each row whether it may have been added before. A false
    "maybe" (about 0.3% of rows at 6.5M rows) only sends a row down the slower, exact
    path; a row added before is never missed."""

    BITS = 1 << 27
    _MASK = np.uint64(BITS - 1)

    def __init__(self) -> None:
        self.bits = np.zeros(self.BITS // 8, dtype=np.uint8)

    @staticmethod
    def _mix(x: np.ndarray) -> np.ndarray:
        # splitmix64's finalizer; uint64 arithmetic wraps, as it should here.
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    def check_and_add(self, head_ids: list[int], relation_ids: list[int], keys: list[int]):
        h = np.array(keys, dtype=np.int64).view(np.uint64)
        pair = np.array(head_ids, dtype=np.uint64) * np.uint64(1 << 16) + np.array(
            relation_ids, dtype=np.uint64
        )
        h = self._mix(h ^ self._mix(pair))
        g = self._mix(h)
        positions = (h & self._MASK, (h >> np.uint64(32)) & self._MASK, g & self._MASK)
        maybe = np.ones(len(keys), dtype=bool)
        for position in positions:
            byte, bit = position >> np.uint64(3), (position & np.uint64(7)).astype(np.uint8)
            maybe &= (self.bits[byte] >> bit) & np.uint8(1) == 1
        for position in positions:
            byte, bit = position >> np.uint64(3), (position & np.uint64(7)).astype(np.uint8)
            np.bitwise_or.at(self.bits, byte, np.left_shift(np.uint8(1), bit))
        return maybe


_STAGE_TYPES = ["int4", "int8", "int8", "text", "int8", "text", "text", "int4"]
_DIRECT_COLUMNS = (
    "corpus_id, head_id, relation_id, tail, tail_key, split, origin, import_job_id,"
    " occurrences, source_fields"
)
_DIRECT_TYPES = ["int8", "int8", "int8", "text", "int8", "text", "text", "int8", "int4", "text"]


class PostgresLoader(_Loader):
    """Used inside `transaction.atomic()`; the stage table is dropped at commit.

    `into_empty_corpus`: the caller holds the corpus row's lock and found the corpus
    empty, so a row no earlier block had cannot conflict and is copied straight in."""

    rows_added = 0

    def __init__(self, *, into_empty_corpus: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seen = _MaybeSeen() if into_empty_corpus else None

    def open(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (seq int, head_id bigint, relation_id bigint,"
                " tail text, tail_key bigint, split text, source_fields text, n int)"
                " ON COMMIT DROP"
            )

    def _event_ids(self, cursor, heads: list[str]) -> dict[str, int]:
        event = _event_table()
        # Sorted, so concurrent imports meeting the same new heads take their
        # locks in one order and cannot deadlock each other.
        cursor.execute(
            f"INSERT INTO {event} (text)"
            ' SELECT h FROM unnest(%s::text[]) AS u(h) ORDER BY h COLLATE "C"'
            " ON CONFLICT (text) DO NOTHING",
            (heads,),
        )
        # A join on unnest() probes the unique index once per head.
        cursor.execute(
            f"SELECT e.text, e.id FROM unnest(%s::text[]) AS u(h) JOIN {event} e ON e.text = u.h",
            (heads,),
        )
        return dict(cursor.fetchall())

    def add(self, block) -> None:
        with connection.cursor() as cursor:
            head_ids = self._head_id_list(cursor, block.heads)
            if self.seen is None:
                self._merge(cursor, self._stage_rows(cursor, block, head_ids))
            else:
                maybe = self.seen.check_and_add(head_ids, block.relation_ids, block.keys)
                rows = self._stage_rows(cursor, block, head_ids)
                if not maybe.any():
                    self._copy_in(cursor, rows)
                else:
                    rows, flags = list(rows), maybe.tolist()
                    self._copy_in(cursor, (r for r, m in zip(rows, flags, strict=True) if not m))
                    self._merge(cursor, (r for r, m in zip(rows, flags, strict=True) if m))
        self.rows_added += len(block.heads)

    def _merge(self, cursor, staged: Iterable[tuple]) -> None:
        cursor.execute(f"TRUNCATE {STAGE}")
        with cursor.cursor.copy(
            f"COPY {STAGE} ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(_STAGE_TYPES)
            for row in staged:
                copy.write_row(row)
        cursor.execute(_merge_sql(), self.params)

    def _copy_in(self, cursor, staged: Iterable[tuple]) -> None:
        corpus_id, origin, job_id = self.params
        with cursor.cursor.copy(
            f"COPY {_triple_table()} ({_DIRECT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(_DIRECT_TYPES)
            for _seq, head_id, relation_id, tail, key, split, fields, n in staged:
                copy.write_row(
                    (corpus_id, head_id, relation_id, tail, key, split, origin, job_id, n, fields)
                )

    def finish(self) -> None:
        """Everything is merged already; refresh planner statistics after a large load."""
        if self.rows_added >= ANALYZE_AFTER_ROWS:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {_triple_table()}, {_event_table()}")

    def close(self) -> None:
        """Nothing to do: the stage is dropped at commit."""


class SqliteLoader(_Loader):
    """Stages outside any transaction of the caller, then merges in `finish()`."""

    LOOKUP_BATCH = 5_000  # under SQLite's limit on bound variables

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chunks: list[tuple[int, int]] = []
        self.staged = 0

    def open(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (seq INTEGER, head_id INTEGER, relation_id INTEGER,"
                " tail TEXT, tail_key INTEGER, split TEXT, source_fields TEXT, n INTEGER)"
            )

    def _event_ids(self, cursor, heads: list[str]) -> dict[str, int]:
        # New events are written in their own short transaction; an import
        # that fails later leaves them behind, unused and harmless.
        event = _event_table()
        ids: dict[str, int] = {}
        with transaction.atomic():
            cursor.executemany(
                f"INSERT OR IGNORE INTO {event} (text) VALUES (%s)", [(h,) for h in heads]
            )
            for start in range(0, len(heads), self.LOOKUP_BATCH):
                batch = heads[start : start + self.LOOKUP_BATCH]
                marks = ", ".join(["%s"] * len(batch))
                cursor.execute(f"SELECT text, id FROM {event} WHERE text IN ({marks})", batch)
                ids.update(cursor.fetchall())
        return ids

    def add(self, block) -> None:
        with connection.cursor() as cursor:
            staged = self._stage_rows(cursor, block)
            insert = f"INSERT INTO temp.{STAGE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            if connection.in_atomic_block:  # the caller's transaction already holds the lock
                cursor.executemany(insert, staged)
            else:
                # A deferred transaction writing only the temp schema takes no
                # lock on the main database.
                cursor.execute("BEGIN DEFERRED")
                try:
                    cursor.executemany(insert, staged)
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
        self.chunks.append((self.staged + 1, self.staged + len(block.heads)))
        self.staged += len(block.heads)

    def finish(self) -> None:
        """Merge the stage into the corpus; call inside `transaction.atomic()`.

        One statement per staged block, whose rows are distinct, so ON CONFLICT never
        meets the same row twice in one statement."""
        sql = _merge_sql(where="WHERE rowid BETWEEN %s AND %s")
        with connection.cursor() as cursor:
            for start, end in self.chunks:
                cursor.execute(sql, (*self.params, start, end))

    def close(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")


def make_loader(
    *, corpus_id: int, origin: str, job_id: int | None, into_empty_corpus: bool = False
):
    """`into_empty_corpus`: see PostgresLoader (other databases ignore it)."""
    if connection.vendor == "postgresql":
        return PostgresLoader(
            corpus_id=corpus_id,
            origin=origin,
            job_id=job_id,
            into_empty_corpus=into_empty_corpus,
        )
    if connection.vendor == "sqlite":
        return SqliteLoader(corpus_id=corpus_id, origin=origin, job_id=job_id)
    raise NotImplementedError(f"bulk import is not supported on {connection.vendor}")


def corpus_counts(corpus_id: int) -> list[tuple[int, str, int, int]]:
    """(relation_id, split, triples, occurrences) for one corpus."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT relation_id, split, count(*), sum(occurrences) FROM {_triple_table()}"
            " WHERE corpus_id = %s GROUP BY relation_id, split",
            (corpus_id,),
        )
        return [(r, s, int(n), int(o)) for r, s, n, o in cursor.fetchall()]


def corpus_delete_triples(corpus_id: int) -> None:
    """Delete a corpus's triples with one statement (the ORM would load them all)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_triple_table()} WHERE corpus_id = %s", (corpus_id,))
