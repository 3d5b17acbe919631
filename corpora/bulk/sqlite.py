"""The SQLite loader: rows staged first in a temp table (which does not take the main
database's write lock), then merged in one short write transaction, so other writers
wait only for the merge, not for the parsing.
"""

from __future__ import annotations

from django.db import connection, transaction

from .base import STAGE, _event_table, _Loader, _merge_sql


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
