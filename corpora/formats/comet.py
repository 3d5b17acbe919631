"""COMET generations: one JSON object per (head, relation) with a list of tails, a row each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import orjson

from .checks import _check_core
from .line_errors import _json_problem, _long_line_error, _raw, _row_error
from .reading import LineReader, LongLine, line_reader
from .rows import ParsedRow, RowError


def read_comet(source: BinaryIO | LineReader) -> Iterator[ParsedRow | RowError]:
    """COMET generations: one object per (head, relation) with a list of tails."""
    reader = line_reader(source)
    limit = reader.limits.max_line_bytes
    for line_no, line_bytes in reader.lines():
        if type(line_bytes) is LongLine:
            yield _long_line_error(line_no, line_bytes, limit)
            continue
        raw, truncated = _raw(line_bytes)
        try:
            obj = orjson.loads(line_bytes)
        except orjson.JSONDecodeError as exc:
            yield _row_error(line_no, "(line)", _json_problem(line_bytes, exc), line_bytes)
            continue
        if not isinstance(obj, dict):
            yield RowError(line_no, "(line)", "expected a JSON object", raw, truncated)
            continue
        generations = obj.get("generations")
        if not isinstance(generations, list):
            yield RowError(line_no, "generations", "missing or not a list", raw, truncated)
            continue
        greedy = obj.get("greedy")
        for rank, tail in enumerate(generations, 1):
            checked = _check_core(
                line_no, obj.get("head"), obj.get("relation"), tail, obj.get("split"), raw
            )
            if isinstance(checked, RowError):
                field = f"generations[{rank - 1}]" if checked.field == "tail" else checked.field
                yield RowError(line_no, field, checked.message, raw, truncated)
                continue
            extra = {"rank": rank}
            if greedy is not None and tail == greedy:
                extra["greedy"] = True
            yield ParsedRow(
                line_no,
                checked[0],
                checked[1],
                checked[2],
                checked[3],
                orjson.dumps(extra).decode(),
            )
