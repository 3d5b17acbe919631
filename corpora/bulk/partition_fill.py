"""Filling a corpus that is empty when its import begins (PostgreSQL): COPY into a bare
table of its own, indexed once full and attached as the corpus's partition, so no index
is kept up to date row by row. Rows that may repeat an earlier one (`_MaybeSeen`, a Bloom
filter) are held back and merged once the table is indexed; ids come from the sequence
a range at a time (`_ReservedIds`).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import compress
from typing import TypeVar

import numpy as np
import psycopg
from django.db import DatabaseError, OperationalError, connection, transaction
from psycopg.copy import QueuedLibpqWriter

try:
    from skd_native import bloom_check_and_add, copy_binary, count_pairs
except ImportError:  # optional speed-ups in C (see native/)
    bloom_check_and_add = copy_binary = count_pairs = None

from ..partitions import (
    bare_partition_create,
    indexes_build,
    partition_attached,
    partition_detach,
    triple_partition,
)
from .base import _Loader, _triple_table
from .postgres import _pg_event_ids

T = TypeVar("T")

# How long an import waits to swap out a corpus's empty partition (see swap_in).
SWAP_LOCK_TIMEOUT = "5s"


class _MaybeSeen:
    """An approximate set of (head id, relation id, tail key) in 16 MB: a Bloom filter.

    `check_and_add` answers for each row whether it may have been added before: by an
    earlier call, or by an earlier row of the same call. A false "maybe" (about 0.3% of
    rows at 6.5M rows) only sends a row down the slower, exact path; a row added before
    is never missed. Each row's three bits lie in one 64-byte line (one cache miss a
    row). The same in C where the native module is installed."""

    BITS = 1 << 27
    _LINES = np.uint64(BITS // 512 - 1)

    def __init__(self) -> None:
        self.bits = np.zeros(self.BITS // 8, dtype=np.uint8)

    @staticmethod
    def _mix(x: np.ndarray) -> np.ndarray:
        # splitmix64's finalizer; uint64 arithmetic wraps, as it should here.
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    def check_and_add(self, head_ids: list[int], relation_ids: list[int], keys: list[int]):
        if bloom_check_and_add is not None:
            maybe = bloom_check_and_add(self.bits, head_ids, relation_ids, keys)
            return np.frombuffer(maybe, dtype=bool)
        h = np.array(keys, dtype=np.int64).view(np.uint64)
        pair = np.array(head_ids, dtype=np.uint64) * np.uint64(1 << 16) + np.array(
            relation_ids, dtype=np.uint64
        )
        h = self._mix(h ^ self._mix(pair))
        g = self._mix(h)
        line = (h & self._LINES) * np.uint64(512)
        positions = [line + ((g >> np.uint64(shift)) & np.uint64(511)) for shift in (0, 9, 18)]
        maybe = np.ones(len(keys), dtype=bool)
        for position in positions:
            byte, bit = position >> np.uint64(3), (position & np.uint64(7)).astype(np.uint8)
            maybe &= (self.bits[byte] >> bit) & np.uint8(1) == 1
        _, first = np.unique(h, return_index=True)
        repeat = np.ones(len(keys), dtype=bool)
        repeat[first] = False
        maybe |= repeat
        for position in positions:
            byte, bit = position >> np.uint64(3), (position & np.uint64(7)).astype(np.uint8)
            np.bitwise_or.at(self.bits, byte, np.left_shift(np.uint8(1), bit))
        return maybe


_COPY_COLUMNS = "id, head_id, relation_id, tail, tail_key, split, occurrences, source_fields"


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escaped(values: list[str]) -> list[str] | Iterator[str]:
    """Values as COPY's text format writes them. Imported tails are whitespace-collapsed
    and source fields are JSON, so mostly nothing needs escaping; one look at the whole
    column says so."""
    joined = "".join(values)
    if not any(char in joined for char in "\\\t\n\r"):
        return values
    return (value.translate(_COPY_ESCAPES) for value in values)


# Binary COPY where the native module writes it: PostgreSQL reads it with a fifth less
# work than text. Around the tuples, a COPY's binary data has a header and a trailer.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"


def _copy_framing() -> tuple[str, bytes, bytes]:
    """The COPY statement's options, and what comes before and after the rows that
    _copy_rows makes."""
    if copy_binary is None:
        return "", b"", b""
    return " (FORMAT BINARY)", _BINARY_HEADER, _BINARY_TRAILER


def _copy_rows(
    ids: list[int], head_ids: list[int], block, held: np.ndarray | None = None, want: bool = False
) -> str | bytes:
    """The block's rows (_COPY_COLUMNS) for COPY, only those whose `held` flag is `want`
    when flags are given: binary tuples built in C where the native module is installed,
    else text built in C-level loops of Python's."""
    columns = [ids, head_ids, block.relation_ids, block.tails, block.keys, block.splits]
    columns += [block.counts, block.fields]
    kinds = "qqqtqtlt"
    if copy_binary is not None:
        return copy_binary(tuple(columns), kinds, held, want)
    if held is not None:
        chosen = (held == want).tobytes()
        columns = [list(compress(column, chosen)) for column in columns]
    texts = [
        _escaped(column) if kind == "t" else map(str, column)
        for column, kind in zip(columns, kinds, strict=True)
    ]
    return "".join(line + "\n" for line in map("\t".join, zip(*texts, strict=True)))


class _ReservedIds:
    """Ids taken from a sequence in order, a range at a time, each range in one short
    transaction of its own: ALTER SEQUENCE holds up other sessions' nextval() until the
    range is set aside, then they carry on past it. Ids left over at the end are never
    used. Inside a transaction, one nextval() per id."""

    RANGE = 100_000

    def __init__(self, sequence: str) -> None:
        self.sequence = sequence
        self.left: Sequence[int] = range(0)

    def take(self, count: int) -> list[int]:
        if len(self.left) < count:
            in_range = count if connection.in_atomic_block else max(count, self.RANGE)
            self.left = self._reserve(in_range)
        ids, self.left = self.left[:count], self.left[count:]
        return list(ids)

    def _reserve(self, count: int) -> Sequence[int]:
        if connection.in_atomic_block:
            # Locking the sequence would stall every other writer until the caller's
            # transaction ends: one nextval() per id instead.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(%s) FROM generate_series(1, %s)", [self.sequence, count]
                )
                return [value for (value,) in cursor.fetchall()]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT seqincrement FROM pg_sequence WHERE seqrelid = %s::regclass",
                [self.sequence],
            )
            (step,) = cursor.fetchone()
            # Changes nothing, but takes the lock that keeps nextval() out meanwhile.
            cursor.execute(f"ALTER SEQUENCE {self.sequence} INCREMENT BY {int(step)}")
            cursor.execute(f"SELECT last_value, is_called FROM {self.sequence}")
            last, called = cursor.fetchone()
            ids = range(last + step if called else last, last + step * (count + called), step)
            cursor.execute("SELECT setval(%s, %s)", [self.sequence, ids[-1]])
            return ids


class CorpusNotEmpty(Exception):
    """Another writer added rows to the corpus that PartitionLoader was filling."""


class PartitionLoader(_Loader):
    """Fills a corpus that is empty (PostgreSQL): `open`, `add` blocks, `finish`, then
    `swap_in` (or `discard` on failure).

    Rows go by COPY into a bare table, unseen by readers, except those that may repeat
    an earlier row, in their block or before (a Bloom filter names them): these are
    held back, in memory and then a temporary table. `finish` builds the indexes, then
    merges the held rows in, so that the first row of each (head, relation, tail key)
    in file order keeps its repeats' occurrences, then takes statistics; `swap_in`
    attaches the table as the corpus's partition. Outside a transaction each step
    commits on its own, the indexes are built side by side, and only the swap holds
    locks; inside one, everything is part of the caller's transaction.
    """

    HELD_BYTES = 16 << 20  # held rows kept in memory before they are written out

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        corpus_id = self.params[0]
        self.partition = triple_partition(corpus_id)
        token = secrets.token_hex(4)
        self.table = f"{self.partition}_load_{token}"
        self.held_table = f"skd_held_{token}"
        self.seen = _MaybeSeen()
        self.rows_added = 0
        self.counts: list[tuple[int, str, int, int]] = []
        # Triples and occurrences by (relation id, split) of the rows copied so far.
        self._triples: Counter[tuple[int, str]] = Counter()
        self._occurrences: Counter[tuple[int, str]] = Counter()
        self._held: list[bytes | str] = []
        self._held_bytes = 0
        self._held_written = False
        self._side = self._copying = self._copy = None
        self._ids: _ReservedIds | None = None
        self._framing = _copy_framing()

    _event_ids = staticmethod(_pg_event_ids)

    def open(self) -> None:
        parent = _triple_table()
        corpus_id, origin, job_id = self.params
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [parent])
            self._ids = _ReservedIds(cursor.fetchone()[0])
            # Tables left by an import of this corpus that died midway.
            cursor.execute(
                "SELECT c.relname FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid"
                " WHERE c.relname LIKE %s AND c.relkind = 'r' AND i.inhrelid IS NULL",
                [f"{self.partition}_load_%"],
            )
            for (stale,) in cursor.fetchall():
                cursor.execute(f"DROP TABLE IF EXISTS {stale}")
            bare_partition_create(parent, self.table, column="corpus_id", value=corpus_id)
            # What every row shares comes from defaults, so COPY carries less.
            cursor.execute(
                f"ALTER TABLE {self.table} ALTER COLUMN corpus_id SET DEFAULT {int(corpus_id)},"
                " ALTER COLUMN origin SET DEFAULT %s,"
                f" ALTER COLUMN import_job_id SET DEFAULT {int(job_id) if job_id else 'NULL'}",
                [origin],
            )

    def add(self, block) -> None:
        with connection.cursor() as cursor:
            head_ids = self._head_id_list(cursor, block.heads)
        # Ids in file order, held rows' too.
        ids = self._ids.take(len(block.heads))
        held = self.seen.check_and_add(head_ids, block.relation_ids, block.keys)
        if held.any():
            self._hold(_copy_rows(ids, head_ids, block, held, want=True))
        else:
            held = None
        with self._stream() as copy:
            copy.write(_copy_rows(ids, head_ids, block, held, want=False))
        self._count(block, held)
        self.rows_added += len(block.heads)

    def _count(self, block, held: np.ndarray | None) -> None:
        """Count the block's copied rows (those not held) by relation and split."""
        if count_pairs is not None:
            pairs = count_pairs(block.relation_ids, block.splits, block.counts, held, False)
        else:
            rows = zip(block.relation_ids, block.splits, block.counts, strict=True)
            if held is not None:
                rows = compress(rows, (~held).tobytes())
            totals: dict[tuple[int, str], list[int]] = {}
            for relation_id, split, count in rows:
                total = totals.setdefault((relation_id, split), [0, 0])
                total[0] += 1
                total[1] += count
            pairs = [(r, s, n, o) for (r, s), (n, o) in totals.items()]
        for relation_id, split, rows_copied, occurrences in pairs:
            self._triples[relation_id, split] += rows_copied
            self._occurrences[relation_id, split] += occurrences

    def _hold(self, text: bytes | str) -> None:
        self._held.append(text)
        self._held_bytes += len(text)
        if self._held_bytes > self.HELD_BYTES:
            self._write_held()

    def _write_held(self) -> None:
        with connection.cursor() as cursor:
            if not self._held_written:
                cursor.execute(
                    f"CREATE TEMP TABLE {self.held_table} (id bigint, head_id bigint,"
                    " relation_id bigint, tail text, tail_key bigint, split varchar(16),"
                    " occurrences int, source_fields text)"
                )
                self._held_written = True
            options, header, trailer = self._framing
            with cursor.cursor.copy(f"COPY {self.held_table} FROM STDIN{options}") as copy:
                copy.write(header)
                for rows in self._held:
                    copy.write(rows)
                copy.write(trailer)
        self._held, self._held_bytes = [], 0

    @contextmanager
    def _stream(self) -> Iterator:
        """A COPY into the table. Outside a transaction, one COPY on a connection of its
        own stays open across blocks and sends from a thread, so that this one never
        waits for PostgreSQL between blocks; inside one, a COPY per block."""
        options, header, trailer = self._framing
        sql = f"COPY {self.table} ({_COPY_COLUMNS}) FROM STDIN{options}"
        if connection.in_atomic_block:
            with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                copy.write(header)
                yield copy
                copy.write(trailer)
            return
        if self._copy is None:
            self._side = connection.get_new_connection(connection.get_connection_params())
            cursor = self._side.cursor()
            self._copying = cursor.copy(sql, writer=QueuedLibpqWriter(cursor))
            self._copy = self._copying.__enter__()
            self._copy.write(header)
        yield self._copy

    def _stream_end(self, error: BaseException | None = None) -> None:
        if self._copy is None:
            return
        try:
            if error is None:
                self._copy.write(self._framing[2])
                self._copying.__exit__(None, None, None)
                self._side.commit()
            else:
                self._copying.__exit__(type(error), error, error.__traceback__)
        finally:
            self._copy = self._copying = None
            self._side.close()

    def finish(self) -> None:
        """Index the table, merge the held rows in, take statistics and counts."""
        self._stream_end()
        if self._held:
            self._write_held()
        table = self.table
        indexes_build(
            [
                f"CREATE UNIQUE INDEX {table}_pkey ON {table} (id, corpus_id)",
                f"CREATE UNIQUE INDEX {table}_unique ON {table}"
                " (head_id, relation_id, tail_key, corpus_id)",  # as the model's constraint
            ]
        )
        merged = self._merge_held() if self._held_written else []
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {table} ALTER COLUMN corpus_id DROP DEFAULT,"
                " ALTER COLUMN origin DROP DEFAULT, ALTER COLUMN import_job_id DROP DEFAULT"
            )
            # As constraints, so that ATTACH adopts them for the parent's.
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY USING INDEX"
                f" {table}_pkey, ADD CONSTRAINT {table}_unique UNIQUE USING INDEX {table}_unique"
            )
            cursor.execute(f"ANALYZE {table}")
        triples, occurrences = self._triples, self._occurrences
        for relation_id, split, new, added in merged:
            triples[relation_id, split] += new
            occurrences[relation_id, split] += added
        self.counts = [(r, s, n, occurrences[r, s]) for (r, s), n in triples.items() if n]

    def _merge_held(self) -> list[tuple[int, str, int, int]]:
        """Merge the held rows into the indexed table: those repeating a row there add
        to its occurrences, the others come in, each repeat group as its first row in
        file order. Returns what that adds to the counts: (relation id, split, new
        triples, occurrences)."""
        table, held = self.table, self.held_table
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH grouped AS (
                    SELECT DISTINCT ON (head_id, relation_id, tail_key) id, head_id,
                        relation_id, tail, tail_key, split, source_fields,
                        sum(occurrences) OVER (PARTITION BY head_id, relation_id, tail_key)
                            AS total
                    FROM {held} ORDER BY head_id, relation_id, tail_key, id
                ), merged AS (
                    INSERT INTO {table} AS t ({_COPY_COLUMNS})
                    SELECT id, head_id, relation_id, tail, tail_key, split, total, source_fields
                    FROM grouped
                    ON CONFLICT (corpus_id, head_id, relation_id, tail_key)
                    DO UPDATE SET occurrences = t.occurrences + excluded.occurrences
                    RETURNING t.id, t.head_id, t.relation_id, t.tail_key, t.split
                )
                SELECT m.relation_id, m.split, count(*) FILTER (WHERE m.id = g.id), sum(g.total)
                FROM merged m JOIN grouped g USING (head_id, relation_id, tail_key)
                GROUP BY m.relation_id, m.split
                """
            )
            merged = [(r, s, int(n), int(o)) for r, s, n, o in cursor.fetchall()]
            cursor.execute(f"DROP TABLE {held}")
        self._held_written = False
        return merged

    def swap_in(self, in_swap: Callable[[], T]) -> T:
        """Attach the table as the corpus's partition and return `in_swap()`, run in the
        same transaction. A corpus that an import creates has no partition until then
        (see `deferred_partition`). One made beforehand has an empty one, which is
        detached and dropped in the same transaction: that waits for the queries on the
        triple table to finish and holds up new ones meanwhile, so it gives up after
        SWAP_LOCK_TIMEOUT. Raises CorpusNotEmpty, having changed nothing, when the corpus
        got rows meanwhile or the lock could not be had."""
        parent, corpus_id, old = _triple_table(), self.params[0], self.partition
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                attached = partition_attached(old)
                if attached:
                    # Detached first, then looked at: once detached nothing can be
                    # written into it, and a refusal rolls the detach back.
                    cursor.execute("SELECT current_setting('lock_timeout')")
                    (lock_timeout,) = cursor.fetchone()
                    cursor.execute(
                        "SELECT set_config('lock_timeout', %s, true)", [SWAP_LOCK_TIMEOUT]
                    )
                    partition_detach(parent, old)
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
                    if self._has_rows(old):
                        raise CorpusNotEmpty(corpus_id)
                if attached is not None:
                    cursor.execute(f"DROP TABLE {old}")
                cursor.execute(f"ALTER TABLE {self.table} RENAME TO {old}")
                cursor.execute(
                    f"ALTER TABLE {parent} ATTACH PARTITION {old} FOR VALUES IN ({int(corpus_id)})"
                )
                return in_swap()
        except OperationalError as exc:
            if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
                raise CorpusNotEmpty(corpus_id) from exc
            raise

    @staticmethod
    def _has_rows(table: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
            return cursor.fetchone()[0]

    def discard(self) -> None:
        try:
            self._stream_end(error=RuntimeError("import abandoned"))
        except psycopg.Error:
            pass  # the COPY is abandoned either way
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}, pg_temp.{self.held_table}")
        except DatabaseError:
            pass  # the caller's transaction failed: its rollback removes the table
