"""Statements over all of a corpus's triples at once: counts, delete, drop."""

from __future__ import annotations

from django.db import connection, transaction

from ..partitions import partition_drop, triple_partition
from .base import _triple_table


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


def corpus_drop_triples(corpus_id: int) -> None:
    """Remove a corpus's triples for good, as the corpus is deleted: on PostgreSQL its
    partition is dropped (see partition_detach for the locks)."""
    if connection.vendor == "postgresql":
        partition_drop(_triple_table(), triple_partition(corpus_id))
    else:
        corpus_delete_triples(corpus_id)
