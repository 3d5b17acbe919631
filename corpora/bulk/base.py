"""What every loader shares: the stage table's columns, the merge from the stage into the
corpus (INSERT ... ON CONFLICT adding to `occurrences`), and `_Loader`, which finds or
creates head events a block at a time, with a bounded cache of the ids already seen.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

STAGE = "skd_import_stage"
# Without fresh statistics after a bulk load the planner takes a big corpus
# for a tiny one (nested loops, sorts on disk).
ANALYZE_AFTER_ROWS = 10_000
STAGE_COLUMNS = "seq, head_id, relation_id, tail, tail_key, split, source_fields, n"


def _triple_table() -> str:
    from ..models import Triple

    return Triple._meta.db_table


def _event_table() -> str:
    from ..models import Event

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
    # many relations) skip the round trip; bounded to keep memory flat, in heads and in
    # the bytes their texts take (200,000 heads of 500 four-byte characters: 400 MB).
    HEAD_CACHE_SIZE = 200_000
    HEAD_CACHE_BYTES = 16 << 20

    def __init__(self, *, corpus_id: int, origin: str, job_id: int | None) -> None:
        self.params = (corpus_id, origin, job_id)
        self._head_ids: dict[str, int] = {}
        self._head_bytes = 0

    def _event_ids(self, cursor, heads: list[str]) -> dict[str, int]:
        """Find or create the events of these distinct heads; their ids by text."""
        raise NotImplementedError

    def _head_id_list(self, cursor, heads: list[str]) -> list[int]:
        cache = self._head_ids
        distinct = dict.fromkeys(heads)  # first-seen order
        missing = [h for h in distinct if h not in cache]
        if missing:
            size = sum(map(sys.getsizeof, missing))
            if (
                len(cache) + len(missing) > self.HEAD_CACHE_SIZE
                or self._head_bytes + size > self.HEAD_CACHE_BYTES
            ):
                cache.clear()
                missing = list(distinct)
                size = sum(map(sys.getsizeof, missing))
                self._head_bytes = 0
            cache.update(self._event_ids(cursor, missing))
            self._head_bytes += size
        return list(map(cache.__getitem__, heads))

    def _stage_rows(self, cursor, block) -> Iterable[tuple]:
        """The block's rows in the stage's column order, heads replaced by event ids
        (looked up now, so the rows can be written while a COPY is open)."""
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
