"""Writing the critic's scores of a corpus as score sets (see models.TripleScore).

A rescoring writes a whole new set beside the one in force and swaps the corpus over
in one short transaction; the older sets are dropped after. On PostgreSQL a set is its
own partition: loaded by binary COPY into a bare table, indexed once it is full, then
attached, which costs a fraction of updating millions of wide triple rows in place.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
from django.db import connection, transaction

from .models import Corpus, ScoreSet, TripleScore
from .partitions import bare_partition_create, indexes_build, partition_drop

TABLE = TripleScore._meta.db_table

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("set_len", ">i4"),
        ("set", ">i8"),
        ("triple_len", ">i4"),
        ("triple", ">i8"),
        ("score_len", ">i4"),
        ("score", ">f8"),
    ]
)


def _copy_payload(score_set_id: int, ids: np.ndarray, scores: np.ndarray) -> bytes:
    """COPY's binary format built by numpy: no Python work per row."""
    rows = np.empty(len(ids), dtype=_COPY_ROW)
    rows["fields"], rows["set_len"], rows["triple_len"], rows["score_len"] = 3, 8, 8, 8
    rows["set"], rows["triple"], rows["score"] = score_set_id, ids, scores
    return _COPY_HEADER + rows.tobytes() + struct.pack("!h", -1)


def score_join(corpus_id: int, triple_alias: str = "t") -> str:
    """SQL joining each triple to its score in the corpus's set in force, as `s.score`
    (NULL when unscored). The set's id is written into the SQL so that PostgreSQL reads
    only that set's partition."""
    return (
        f" LEFT JOIN {TABLE} s ON s.triple_id = {triple_alias}.id"
        f" AND s.score_set_id = {int(Corpus.score_set_in_force(corpus_id) or 0)}"
    )


def _partition(score_set_id: int) -> str:
    return f"{TABLE}_{int(score_set_id)}"


class ScoreSetWriter:
    """Writes one new score set of a corpus: `write` chunk by chunk (from any one
    thread at a time), then `commit` to put it in force, or `discard`.

    `ScoreSetWriter.of(set_id)` writes into a set another process began: a set that
    workers on several machines fill part by part."""

    def __init__(self, corpus_id: int, score_set: ScoreSet | None = None) -> None:
        self.corpus_id = corpus_id
        self.postgresql = connection.vendor == "postgresql"
        if score_set is not None:
            self.score_set = score_set
            return
        self.score_set = ScoreSet.objects.create(corpus_id=corpus_id)
        if self.postgresql:
            bare_partition_create(TABLE, self.table, column="score_set_id", value=self.score_set.pk)

    @classmethod
    def of(cls, score_set_id: int) -> ScoreSetWriter:
        """A writer of the set that was begun elsewhere (ScoreSet.DoesNotExist when it is
        gone: discarded, or dropped once a newer set was put in force)."""
        score_set = ScoreSet.objects.get(pk=score_set_id)
        return cls(score_set.corpus_id, score_set)

    @property
    def table(self) -> str:
        return _partition(self.score_set.pk)

    def write(self, ids: np.ndarray, scores: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        with connection.cursor() as cursor:
            if self.postgresql:
                with cursor.cursor.copy(f"COPY {self.table} FROM STDIN (FORMAT binary)") as copy:
                    copy.write(_copy_payload(self.score_set.pk, ids, scores))
            else:
                key = self.score_set.pk
                cursor.executemany(
                    f"INSERT INTO {TABLE} (score_set_id, triple_id, score) VALUES (%s, %s, %s)",
                    [(key, i, s) for i, s in zip(ids.tolist(), scores.tolist(), strict=True)],
                )

    def commit(self, before_swap: Callable[[], bool] = lambda: True) -> ScoreSet | None:
        """Put the set in force and drop the older sets. `before_swap` runs inside the
        swapping transaction (it may lock, check and record); False cancels the swap."""
        if self.postgresql:
            self._index()
        with transaction.atomic():
            swapped = before_swap()
            if swapped and self.postgresql:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"ALTER TABLE {TABLE} ATTACH PARTITION {self.table} "
                        f"FOR VALUES IN ({self.score_set.pk})"
                    )
            if swapped:
                Corpus.objects.filter(pk=self.corpus_id).update(score_set=self.score_set)
        if not swapped:
            self.discard()
            return None
        score_sets_drop(self.corpus_id, older_than=self.score_set.pk)
        return self.score_set

    def _index(self) -> None:
        """The set's indexes (matching the partitioned table's, so ATTACH adopts them)
        and statistics."""
        table = self.table
        indexes_build(
            [
                f"CREATE UNIQUE INDEX {table}_pkey ON {table} (score_set_id, triple_id)",
                f"CREATE INDEX ON {table} (score)",
            ]
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey "
                f"PRIMARY KEY USING INDEX {table}_pkey"
            )
            cursor.execute(f"ANALYZE {table}")

    def discard(self) -> None:
        if self.postgresql:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
        else:
            TripleScore.objects.filter(score_set=self.score_set).delete()
        ScoreSet.objects.filter(pk=self.score_set.pk).delete()


def score_set_write(*, corpus: Corpus, scores: dict[int, float]) -> ScoreSet:
    """Put a whole set of scores (triple id -> score) in force for the corpus."""
    writer = ScoreSetWriter(corpus.pk)
    writer.write(np.fromiter(scores, np.int64), np.fromiter(scores.values(), np.float64))
    score_set = writer.commit()
    corpus.score_set = score_set
    return score_set


def score_sets_drop(corpus_id: int, *, older_than: int | None = None) -> None:
    """Drop the corpus's score sets below `older_than` (every set when None). A set that
    is newer than the one in force may still be being written, so it is left alone."""
    sets = ScoreSet.objects.filter(corpus_id=corpus_id)
    if older_than is not None:
        sets = sets.filter(pk__lt=older_than)
    for score_set_id in sets.values_list("pk", flat=True):
        if connection.vendor == "postgresql":
            partition_drop(TABLE, _partition(score_set_id))
        else:
            TripleScore.objects.filter(score_set_id=score_set_id).delete()
        ScoreSet.objects.filter(pk=score_set_id).delete()
