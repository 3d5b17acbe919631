"""PostgreSQL partitions: the triple table has one per corpus, the score table one per
score set. Both are filled the same way when a whole partition is new: rows are copied
into a bare table, indexed once it is full and attached (see bulk.PartitionLoader and
scores.ScoreSetWriter), which costs a fraction of keeping indexes up to date row by row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def triple_partition(corpus_id: int) -> str:
    """The name of a corpus's partition of the triple table (migration 0006 creates it
    with the corpus, by trigger)."""
    from .models import Triple

    return f"{Triple._meta.db_table}_{int(corpus_id)}"


def bare_partition_create(parent: str, table: str, *, column: str, value: int) -> None:
    """A table shaped like `parent`, with no index, to be filled and then attached as the
    partition for `column = value`; its CHECK lets ATTACH skip scanning the rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
            f" CONSTRAINT {table}_{column} CHECK ({column} = {int(value)}))"
        )


def indexes_build(statements: list[str]) -> None:
    """Run CREATE INDEX statements on one unattached table. Outside a transaction they
    run at once, each on its own connection (they take only a SHARE lock); inside one,
    where the table may not be visible to other connections, one after another."""
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
        return
    sides = [_Statement(sql) for sql in statements[1:]]
    try:
        with connection.cursor() as cursor:
            cursor.execute(statements[0])
    finally:
        for side in sides:
            side.wait()


class _Statement:
    """One SQL statement run on its own connection in a thread."""

    def __init__(self, sql: str) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(sql,), daemon=True)
        self.thread.start()

    def _run(self, sql: str) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
        except BaseException as exc:  # handed to the caller
            self.error = exc
        finally:
            connection.close()

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def partition_attached(table: str) -> bool | None:
    """True when attached, False when only a table of that name exists, None when none."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.oid, i.inhrelid IS NOT NULL FROM pg_class c "
            "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [table],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[1])


def partition_detach(parent: str, table: str) -> None:
    """Detach `table` from `parent` if it is attached. Outside a transaction this does
    not block readers (CONCURRENTLY: it waits for the queries already running instead);
    inside one it locks the parent until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [table],
        )
        attached = cursor.fetchone()
        if attached is None:
            return
        if attached[0]:
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {table} FINALIZE")
        elif connection.in_atomic_block:
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {table}")
        else:
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {table} CONCURRENTLY")


def partition_drop(parent: str, table: str) -> None:
    """Detach (see partition_detach) and drop."""
    partition_detach(parent, table)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


@contextmanager
def deferred_partition() -> Iterator[None]:
    """Corpora created inside this block get no partition of the triple table yet: the
    import that creates one attaches its loaded table instead (PartitionLoader). Use
    inside `transaction.atomic()`; outside PostgreSQL it does nothing."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL skd.defer_triple_partition = 'on'")
        try:
            yield
        finally:
            cursor.execute("SET LOCAL skd.defer_triple_partition = 'off'")


def triple_partition_ensure(corpus_id: int) -> None:
    """Give the corpus its partition if it has none (PostgreSQL): one whose import was cut
    short before attaching its table."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT generation_triple_partition_create(%s)", [corpus_id])
