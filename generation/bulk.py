"""Fast bulk loading of parsed triples, the best route each database has.

Rows arrive in chunks of stage tuples
    (seq, head, relation_id, tail, tail_key, split, source_fields).
Each chunk is put in a temporary stage table and merged into the corpus:
events are created as needed, rows repeated inside the chunk are folded
into one, and rows the corpus already has only add to `occurrences`.

PostgreSQL: COPY into the stage, merge with INSERT ... ON CONFLICT, all
inside the caller's transaction.
SQLite: everything is staged first (a temp table does not take the main
database's write lock), then merged in one short write transaction, so
other writers wait only for the merge, not for the parsing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, transaction

StageRow = tuple[int, str, int, str, int, str, str]  # seq is the row's ordinal in the file

STAGE = "skd_import_stage"


def _triple_table() -> str:
    from .models import Triple

    return Triple._meta.db_table


def _event_table() -> str:
    from .models import Event

    return Event._meta.db_table


class PostgresLoader:
    """Used inside `transaction.atomic()`; the stage table is dropped at commit."""

    def __init__(self, *, corpus_id: int, origin: str, job_id: int | None) -> None:
        self.params = {"corpus": corpus_id, "origin": origin, "job": job_id}
        self.inserted = 0

    def open(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (seq int, head text, relation_id bigint, tail text,"
                " tail_key bigint, split text, source_fields text) ON COMMIT DROP"
            )
            cursor.execute("SET LOCAL work_mem = '64MB'")

    def add(self, rows: Sequence[StageRow]) -> None:
        triple, event = _triple_table(), _event_table()
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {STAGE}")
            with cursor.cursor.copy(
                f"COPY {STAGE} (seq, head, relation_id, tail, tail_key, split, source_fields)"
                " FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {event} (text) SELECT head FROM {STAGE} GROUP BY head"
                " ORDER BY min(seq) ON CONFLICT (text) DO NOTHING"
            )
            cursor.execute(
                f"""
                WITH firsts AS (
                    SELECT DISTINCT ON (s.head, s.relation_id, s.tail_key)
                           s.seq, s.head, s.relation_id, s.tail, s.tail_key, s.split,
                           s.source_fields,
                           count(*) OVER (PARTITION BY s.head, s.relation_id, s.tail_key) AS n
                    FROM {STAGE} s
                    ORDER BY s.head, s.relation_id, s.tail_key, s.seq
                ), merged AS (
                    INSERT INTO {triple} (corpus_id, head_id, relation_id, tail, tail_key, split,
                                          origin, import_job_id, occurrences, score, source_fields)
                    SELECT %(corpus)s, e.id, f.relation_id, f.tail, f.tail_key, f.split,
                           %(origin)s, %(job)s, f.n, NULL, f.source_fields
                    FROM firsts f JOIN {event} e ON e.text = f.head
                    ORDER BY f.seq
                    ON CONFLICT (corpus_id, head_id, relation_id, tail_key)
                    DO UPDATE SET occurrences = {triple}.occurrences + EXCLUDED.occurrences
                    RETURNING (xmax = 0) AS inserted
                )
                SELECT count(*) FILTER (WHERE inserted) FROM merged
                """,
                self.params,
            )
            self.inserted += cursor.fetchone()[0]

    def close(self) -> None:
        """Nothing to do: ON COMMIT DROP removes the stage."""


class SqliteLoader:
    """Stages outside any transaction of the caller, then merges in `merge()`."""

    MERGE_CHUNK = 50_000

    def __init__(self, *, corpus_id: int, origin: str, job_id: int | None) -> None:
        self.params = (corpus_id, origin, job_id)
        self.staged = 0

    def open(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (seq INTEGER, head TEXT, relation_id INTEGER,"
                " tail TEXT, tail_key INTEGER, split TEXT, source_fields TEXT)"
            )

    def add(self, rows: Sequence[StageRow]) -> None:
        with connection.cursor() as cursor:
            if connection.in_atomic_block:  # the caller's transaction already holds the lock
                cursor.executemany(f"INSERT INTO temp.{STAGE} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self.staged += len(rows)
                return
            # A deferred transaction that writes only the temp schema never
            # takes the main database's write lock.
            cursor.execute("BEGIN DEFERRED")
            try:
                cursor.executemany(f"INSERT INTO temp.{STAGE} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        self.staged += len(rows)

    def merge(self) -> None:
        """Call inside `transaction.atomic()`."""
        triple, event = _triple_table(), _event_table()
        with connection.cursor() as cursor:
            for start in range(1, self.staged + 1, self.MERGE_CHUNK):
                end = start + self.MERGE_CHUNK - 1
                cursor.execute(
                    f"INSERT OR IGNORE INTO {event} (text) SELECT head FROM temp.{STAGE}"
                    " WHERE rowid BETWEEN %s AND %s ORDER BY rowid",
                    (start, end),
                )
                cursor.execute(
                    f"""
                    INSERT INTO {triple} (corpus_id, head_id, relation_id, tail, tail_key, split,
                                          origin, import_job_id, occurrences, score, source_fields)
                    SELECT %s, e.id, s.relation_id, s.tail, s.tail_key, s.split, %s, %s, s.n,
                           NULL, s.source_fields
                    FROM (
                        SELECT seq, head, relation_id, tail, tail_key, split, source_fields,
                               count(*) OVER w AS n,
                               row_number() OVER (w ORDER BY seq) AS rn
                        FROM temp.{STAGE} WHERE rowid BETWEEN %s AND %s
                        WINDOW w AS (PARTITION BY head, relation_id, tail_key)
                    ) AS s JOIN {event} e ON e.text = s.head
                    WHERE s.rn = 1
                    ORDER BY s.seq
                    ON CONFLICT (corpus_id, head_id, relation_id, tail_key)
                    DO UPDATE SET occurrences = occurrences + excluded.occurrences
                    """,
                    (*self.params, start, end),
                )

    def close(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")


def make_loader(*, corpus_id: int, origin: str, job_id: int | None):
    if connection.vendor == "postgresql":
        return PostgresLoader(corpus_id=corpus_id, origin=origin, job_id=job_id)
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


def iter_chunks(rows: Iterable[StageRow], size: int) -> Iterable[list[StageRow]]:
    chunk: list[StageRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
