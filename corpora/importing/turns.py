"""Imports into one corpus take turns (PostgreSQL): an advisory lock per corpus, held for
the import (`_import_turn`) or tried without waiting (`import_turn_try`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

_IMPORT_LOCK = 0x534B44  # advisory lock class of corpus imports


@contextmanager
def _import_turn(corpus_id: int) -> Iterator[None]:
    """Imports into one corpus take turns (PostgreSQL): an advisory lock held for the
    import, or until the caller's transaction ends when inside one."""
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_IMPORT_LOCK, corpus_id])
            yield
            return
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_IMPORT_LOCK, corpus_id])
        try:
            yield
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_IMPORT_LOCK, corpus_id])


@contextmanager
def import_turn_try(corpus_id: int) -> Iterator[bool]:
    """Takes the corpus's import turn if no import holds it (PostgreSQL; elsewhere there
    is none to take) and gives it back after: yields whether it was free."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_IMPORT_LOCK, corpus_id])
        (free,) = cursor.fetchone()
    try:
        yield free
    finally:
        if free:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_IMPORT_LOCK, corpus_id])
