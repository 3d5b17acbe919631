"""The PostgreSQL loader for a corpus that has rows: each block COPYed into a temporary
stage and merged, everything inside the caller's transaction. `_pg_event_ids` finds or
creates head events (PartitionLoader uses it too).
"""

from __future__ import annotations

from django.db import connection

from ..partitions import triple_partition_ensure
from .base import (
    ANALYZE_AFTER_ROWS,
    STAGE,
    STAGE_COLUMNS,
    _event_table,
    _Loader,
    _merge_sql,
    _triple_table,
)

_STAGE_TYPES = ["int4", "int8", "int8", "text", "int8", "text", "text", "int4"]


def _pg_event_ids(cursor, heads: list[str]) -> dict[str, int]:
    """Find or create the events of these distinct heads (PostgreSQL)."""
    event = _event_table()
    # Heads are whitespace-collapsed text, so they travel as one newline-joined value:
    # quoting each as an array element cost more than the queries.
    joined = "\n".join(heads)
    if joined.count("\n") == len(heads) - 1:
        param, texts = joined, "string_to_table(%s, E'\\n')"
    else:
        param, texts = heads, "unnest(%s::text[])"
    # Sorted, so concurrent imports meeting the same new heads take their
    # locks in one order and cannot deadlock each other.
    cursor.execute(
        f"INSERT INTO {event} (text)"
        f' SELECT h FROM {texts} AS u(h) ORDER BY h COLLATE "C"'
        " ON CONFLICT (text) DO NOTHING",
        (param,),
    )
    # A join probes the unique index once per head.
    cursor.execute(
        f"SELECT e.text, e.id FROM {texts} AS u(h) JOIN {event} e ON e.text = u.h", (param,)
    )
    return dict(cursor.fetchall())


class PostgresLoader(_Loader):
    """Used inside `transaction.atomic()`; the stage table is dropped at commit."""

    rows_added = 0

    def open(self) -> None:
        triple_partition_ensure(self.params[0])
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{STAGE}")
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} (seq int, head_id bigint, relation_id bigint,"
                " tail text, tail_key bigint, split text, source_fields text, n int)"
                " ON COMMIT DROP"
            )

    _event_ids = staticmethod(_pg_event_ids)

    def add(self, block) -> None:
        with connection.cursor() as cursor:
            rows = self._stage_rows(cursor, block)  # looks heads up before the COPY
            cursor.execute(f"TRUNCATE {STAGE}")
            with cursor.cursor.copy(
                f"COPY {STAGE} ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(_STAGE_TYPES)
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_merge_sql(), self.params)
        self.rows_added += len(block.heads)

    def finish(self) -> None:
        """Everything is merged already; refresh planner statistics after a large load."""
        if self.rows_added >= ANALYZE_AFTER_ROWS:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {_triple_table()}, {_event_table()}")

    def close(self) -> None:
        """Nothing to do: the stage is dropped at commit."""
