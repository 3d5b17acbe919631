"""Hot statements as server-side prepared statements on PostgreSQL.

Django binds parameters on the client (each statement travels as text and is parsed and
planned by the server every time) and keeps psycopg's prepared statements off. The few
statements every judgment runs are long CTEs whose planning cost more server CPU than
their execution: `fetchone` runs such a statement through a server-side cursor on the
same connection (same transaction), prepared on first use and planned once per
connection. Errors come out as Django's (IntegrityError, OperationalError, ...); with DEBUG (or in a
test counting statements) they are logged in connection.queries like any other. Elsewhere
(SQLite), or with SKD_DB_PREPARED_STATEMENTS=0 (a pooler that cannot keep named prepared
statements: PgBouncer in transaction mode before 1.21, or without max_prepared_statements),
it is a plain cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from time import perf_counter

from django.conf import settings
from django.db import connection


def fetchone(sql: str, params: Sequence | Mapping) -> tuple | None:
    """The first row of a statement that returns rows (None if none), prepared on
    PostgreSQL."""
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    import psycopg

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    started = perf_counter()
    try:
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchone()
    finally:
        if connection.queries_logged:  # DEBUG, or a test counting statements
            connection.queries_log.append(
                {"sql": f"{sql} -- {params!r}", "time": f"{perf_counter() - started:.3f}"}
            )
