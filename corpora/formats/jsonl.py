"""JSON lines: the `jsonl` format (head, relation, tail and optionally split; other keys
kept) and the SKD release format (the same with `valid` and `p_valid_model` checked).

`_jsonl_row` reads one line with care and holds the rules; `_jsonl_blocks`, the import's
hot path, reads plain lines a block at a time (in C where the native module is
installed, else column by column) and sends every other line to `_jsonl_row`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator
from typing import BinaryIO

import orjson

from . import blocks  # its BLOCK_ROWS and BLOCK_BYTES are read when used (tests turn them down)
from .blocks import Block
from .checks import (
    _CONTROL,
    _CONTROL_IN_JSON,
    _SPLIT_RE,
    DEFAULT_SPLIT,
    MAX_TEXT_LENGTH,
    SKD_VALID_VALUES,
    _check_core,
    _check_skd_fields,
    _control_in_fields,
    _tidy,
)
from .line_errors import _json_problem, _long_line_error, _raw, _row_error
from .reading import LineReader, LongLine, ReadLimits, line_reader
from .rows import ParsedRow, RowError

try:
    from skd_native import jsonl_columns
except ImportError:  # the C reader is an optional speed-up (see native/)
    jsonl_columns = None


# In Python, lines are looked at PLAIN_ROWS at a time (see _jsonl_blocks).
PLAIN_ROWS = 2_000


def _jsonl_row(
    line_no: int, line_bytes: bytes, skd: bool, limit: int = ReadLimits.max_line_bytes
) -> ParsedRow | RowError | None:
    """One JSON line, checked with care: the row, the error naming its field, or None
    for a blank line."""
    if type(line_bytes) is LongLine:
        return _long_line_error(line_no, line_bytes, limit)
    try:
        obj = orjson.loads(line_bytes)
    except orjson.JSONDecodeError as exc:
        if not line_bytes.strip():
            return None
        return _row_error(line_no, "(line)", _json_problem(line_bytes, exc), line_bytes)
    raw, truncated = _raw(line_bytes)
    if type(obj) is not dict:
        return RowError(line_no, "(line)", "expected a JSON object", raw, truncated)
    head = obj.pop("head", None)
    relation = obj.pop("relation", None)
    tail = obj.pop("tail", None)
    split = obj.pop("split", DEFAULT_SPLIT)
    checked = _check_core(line_no, head, relation, tail, split, raw)
    if isinstance(checked, RowError):
        return dataclasses.replace(checked, truncated=truncated) if truncated else checked
    if skd and (problem := _check_skd_fields(line_no, obj, raw)):
        return dataclasses.replace(problem, truncated=truncated) if truncated else problem
    if obj and (control := _control_in_fields(obj)):
        return RowError(line_no, control[0], control[1], raw, truncated)
    return ParsedRow(line_no, *checked, orjson.dumps(obj).decode() if obj else "")


def read_jsonl(
    source: BinaryIO | LineReader, *, skd: bool = False
) -> Iterator[ParsedRow | RowError]:
    """JSON lines with head, relation, tail and optionally split; other keys are kept."""
    reader = line_reader(source)
    limit = reader.limits.max_line_bytes
    for line_no, line_bytes in reader.lines():
        item = _jsonl_row(line_no, line_bytes, skd, limit)
        if item is not None:
            yield item


def _jsonl_blocks(source: BinaryIO | LineReader, *, skd: bool) -> Iterator[Block]:
    """read_jsonl's rows as blocks, built without a per-row object: the import's hot path.

    Where the native module is installed, plain lines are read in C and the others
    line by line in Python (`_native_block`). Without it, a piece whose lines are all
    plain is checked column by column (`_plain_block`) and any other goes line by
    line. Either way a line that is anything but plain (bad JSON, a field to clean or
    to complain about) goes through `_jsonl_row`, so the rules live there."""
    reader = line_reader(source)
    limit = reader.limits.max_line_bytes
    # In Python, lines are looked at PLAIN_ROWS at a time, which keeps a piece's objects
    # in the processor's cache (three times bigger pieces were half again as slow).
    step = max(1, min(blocks.BLOCK_ROWS, PLAIN_ROWS))
    for numbers, raw in reader.pieces(blocks.BLOCK_ROWS, blocks.BLOCK_BYTES):
        if jsonl_columns is not None:
            block = _native_block(raw, numbers, skd, limit)
        else:
            pieces = []
            for start in range(0, len(raw), step):
                chunk = list(
                    zip(numbers[start : start + step], raw[start : start + step], strict=True)
                )
                pieces.append(_plain_block(chunk, skd) or _lines_block(chunk, skd, limit))
            block = pieces[0] if len(pieces) == 1 else Block.joined(pieces)
        if block.lines or block.errors:
            yield block


def _native_block(raw: list[bytes], numbers: list[int], skd: bool, limit: int) -> Block:
    """Lines read in C, but for those it leaves to `_lines_block` (odd ones: an escape,
    a number orjson would respell, something to clean or to complain about)."""
    *columns, odd = jsonl_columns(raw, skd)
    if not odd:
        return Block(numbers, *columns, [])
    careful = _lines_block([(numbers[i], raw[i]) for i in odd], skd, limit)
    values = (careful.heads, careful.relations, careful.tails, careful.splits, careful.fields)
    rows = dict(zip(careful.lines, zip(*values, strict=True), strict=True))
    keep = bytearray(b"\x01") * len(raw)
    for i in odd:
        if (row := rows.get(numbers[i])) is None:  # an error or a blank line
            keep[i] = 0
            continue
        for column, value in zip(columns, row, strict=True):
            column[i] = value
    if not all(keep):
        return Block(
            list(itertools.compress(numbers, keep)),
            *(list(itertools.compress(column, keep)) for column in columns),
            careful.errors,
        )
    return Block(numbers, *columns, careful.errors)


_OTHER_SPACE = re.compile(r"[^\S \n]")  # whitespace but the space and the newline
_OTHER_ASCII_SPACE = "\t\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _all_plain_text(values: list, max_length: int = MAX_TEXT_LENGTH) -> bool:
    """Every value is text, not empty, not too long and already clean (no whitespace
    but single inner spaces, no control character): checked over the whole column at
    once."""
    if set(map(type, values)) != {str} or min(map(len, values)) == 0:
        return False
    if max(map(len, values)) > max_length:
        return False
    joined = "\n".join(values)
    if joined.count("\n") != len(values) - 1:
        return False  # a value holds a newline
    if (
        "  " in joined
        or "\n " in joined
        or " \n" in joined
        or joined[0] == " "
        or joined[-1] == " "
    ):
        return False
    if _CONTROL.search(joined):
        return False
    if joined.isascii():
        return not any(space in joined for space in _OTHER_ASCII_SPACE)
    return not _OTHER_SPACE.search(joined)


def _plain_block(chunk: list[tuple[int, bytes]], skd: bool) -> Block | None:
    """The block when every line is a plain, valid row, else None."""
    loads = orjson.loads
    try:
        objs = [loads(line) for _, line in chunk]
    except orjson.JSONDecodeError:
        return None
    if set(map(type, objs)) != {dict}:
        return None
    pop, get = dict.pop, dict.get
    heads = list(map(pop, objs, itertools.repeat("head"), itertools.repeat(None)))
    relations = list(map(pop, objs, itertools.repeat("relation"), itertools.repeat(None)))
    tails = list(map(pop, objs, itertools.repeat("tail"), itertools.repeat(None)))
    splits = list(map(pop, objs, itertools.repeat("split"), itertools.repeat(DEFAULT_SPLIT)))
    plain = (
        _all_plain_text(heads)
        and _all_plain_text(tails)
        and _all_plain_text(relations, max_length=10**9)
        and all(type(split) is str and _SPLIT_RE.match(split) for split in set(splits))
    )
    if plain and skd:
        valids = set(map(get, objs, itertools.repeat("valid")))
        valids.discard(None)
        ps = set(map(get, objs, itertools.repeat("p_valid_model")))
        ps.discard(None)
        plain = (
            set(map(type, valids)) <= {int}
            and valids <= SKD_VALID_VALUES
            and set(map(type, ps)) <= {int, float}
            and (not ps or (min(ps) >= 0 and max(ps) <= 1))
        )
    if not plain:
        return None
    dumped = list(map(orjson.dumps, objs))
    if _CONTROL_IN_JSON.search(b"".join(dumped)):
        return None  # an escape or a control character: looked at line by line
    fields = list(map(bytes.decode, dumped))
    if "{}" in fields:
        fields = [f if f != "{}" else "" for f in fields]
    numbers = [line_no for line_no, _ in chunk]
    return Block(numbers, heads, relations, tails, splits, fields, [])


def _lines_block(
    chunk: list[tuple[int, bytes]], skd: bool, limit: int = ReadLimits.max_line_bytes
) -> Block:
    """The block read line by line (see _jsonl_blocks)."""
    loads = orjson.loads
    dumps = orjson.dumps
    decode_error = orjson.JSONDecodeError
    split_ok = _SPLIT_RE.match
    control = _CONTROL.search
    control_in_json = _CONTROL_IN_JSON.search
    valid_values = SKD_VALID_VALUES
    numbers = (int, float)
    block = Block([], [], [], [], [], [], [])
    add_line, add_head = block.lines.append, block.heads.append
    add_relation, add_tail = block.relations.append, block.tails.append
    add_split, add_fields = block.splits.append, block.fields.append
    for line_no, line_bytes in chunk:
        try:
            obj = loads(line_bytes)
        except decode_error:
            obj = None
        if type(obj) is dict:
            head = obj.pop("head", None)
            relation = obj.pop("relation", None)
            tail = obj.pop("tail", None)
            split = obj.pop("split", DEFAULT_SPLIT)
            if (
                type(head) is str
                and type(relation) is str
                and type(tail) is str
                and type(split) is str
                and 0 < len(head) <= MAX_TEXT_LENGTH
                and 0 < len(tail) <= MAX_TEXT_LENGTH
                and relation
                and split_ok(split)
                and not control(head)
                and not control(tail)
                and not control(relation)
                and (head := _tidy(head))
                and (tail := _tidy(tail))
                and (
                    not skd
                    or (
                        (
                            (valid := obj.get("valid")) is None
                            or (type(valid) is int and valid in valid_values)
                        )
                        and (
                            (p := obj.get("p_valid_model")) is None
                            or (type(p) in numbers and 0 <= p <= 1)
                        )
                    )
                )
                and not (obj and control_in_json(dumped := dumps(obj)))
            ):
                add_line(line_no)
                add_head(head)
                add_relation(relation)
                add_tail(tail)
                add_split(split)
                add_fields(dumped.decode() if obj else "")
                continue
        item = _jsonl_row(line_no, line_bytes, skd, limit)
        if item is None:
            continue
        if type(item) is RowError:
            block.errors.append(item)
        else:
            add_line(line_no)
            add_head(item.head)
            add_relation(item.relation)
            add_tail(item.tail)
            add_split(item.split)
            add_fields(item.source_fields)
    return block
