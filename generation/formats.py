"""Reading corpus files: format detection, parsing, validation. No Django here.

Every reader yields `ParsedRow`s or `RowError`s in file order; a `RowError`
names the line and the field. Lines are read as bytes and decoded one at a
time so an encoding error still has a line number.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import orjson

try:
    from skd_native import jsonl_columns
except ImportError:  # the C reader is an optional speed-up (see native/)
    jsonl_columns = None

FORMATS = ("skd", "jsonl", "atomic-tsv", "csv", "comet")
MAX_TEXT_LENGTH = 500
SKD_VALID_VALUES = frozenset({2, 1, -1, -2, -9})
CORE_FIELDS = ("head", "relation", "tail", "split")
DEFAULT_SPLIT = "train"
TAIL_END_CHARS = ".!?;, "
_SPLIT_RE = re.compile(r"^[a-z0-9_-]{1,16}$")


class FormatError(Exception):
    """The file as a whole cannot be read (unknown format, bad header)."""


class ParsedRow(NamedTuple):
    line: int
    head: str
    relation: str
    tail: str
    split: str
    source_fields: str  # JSON object text, or "" when there is nothing more


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    message: str
    raw: str

    def describe(self, path: str | Path) -> str:
        return f"{Path(path).name}, line {self.line}, field '{self.field}': {self.message}"


def clean_text(value: str) -> str:
    """Collapse runs of whitespace; the form in which heads and tails are stored."""
    return " ".join(value.split())


def normalize_tail(tail: str) -> str:
    """The form in which two tails count as the same (case, spacing, final punctuation)."""
    return " ".join(tail.lower().split()).rstrip(TAIL_END_CHARS)


class CountingReader(io.RawIOBase):
    """Wraps a binary file and counts compressed bytes read, for progress."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.bytes_read += n or 0
        return n


@dataclass
class OpenedFile:
    path: Path
    size: int
    counter: CountingReader
    stream: BinaryIO

    @property
    def bytes_read(self) -> int:
        return self.counter.bytes_read

    def close(self) -> None:
        self.stream.close()
        self.counter.raw.close()


def open_binary(path: str | Path) -> OpenedFile:
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    raw = open(path, "rb")  # noqa: SIM115 - closed by OpenedFile.close
    counter = CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    stream: BinaryIO = buffered
    if path.name.endswith(".gz"):
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
    return OpenedFile(path=path, size=os.path.getsize(path), counter=counter, stream=stream)


def _base_name(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def _first_line(path: Path) -> bytes:
    opened = open_binary(path)
    try:
        for line in opened.stream:
            if line.strip():
                return line
        return b""
    except (OSError, EOFError) as exc:
        raise FormatError(f"{path.name}: cannot read the file ({exc})") from exc
    finally:
        opened.close()


def detect_format(path: str | Path) -> str:
    path = Path(path)
    name = _base_name(path)
    if name.endswith(".tsv"):
        return "atomic-tsv"
    if name.endswith(".csv"):
        return "csv"
    first = _first_line(path)
    if first.lstrip().startswith(b"{"):
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError as exc:
            raise FormatError(f"{path.name}, line 1: not valid JSON ({exc})") from exc
        if isinstance(obj, dict):
            if "generations" in obj:
                return "comet"
            if "valid" in obj or "p_valid_model" in obj or any(k.startswith("rec_") for k in obj):
                return "skd"
            return "jsonl"
    if b"\t" in first:
        return "atomic-tsv"
    raise FormatError(
        f"{path.name}: cannot tell the format from its name or first line; "
        f"give it explicitly (one of {', '.join(FORMATS)})"
    )


def _check_core(line: int, head, relation, tail, split, raw: str) -> RowError | tuple:
    for field, value in (("head", head), ("relation", relation), ("tail", tail)):
        if value is None:
            return RowError(line, field, "missing", raw)
        if not isinstance(value, str):
            return RowError(line, field, f"must be text, got {type(value).__name__}", raw)
    head = clean_text(head)
    tail = clean_text(tail)
    relation = relation.strip()
    if not head:
        return RowError(line, "head", "empty", raw)
    if not tail:
        return RowError(line, "tail", "empty", raw)
    if not relation:
        return RowError(line, "relation", "empty", raw)
    if len(head) > MAX_TEXT_LENGTH:
        return RowError(line, "head", f"longer than {MAX_TEXT_LENGTH} characters", raw)
    if len(tail) > MAX_TEXT_LENGTH:
        return RowError(line, "tail", f"longer than {MAX_TEXT_LENGTH} characters", raw)
    if split is None or split == "":
        split = DEFAULT_SPLIT
    elif not isinstance(split, str) or not _SPLIT_RE.match(split.strip().lower()):
        return RowError(
            line, "split", f"{split!r} is not a split name (letters, digits, - or _)", raw
        )
    else:
        split = split.strip().lower()
    return head, relation, tail, split


def _decode(line_bytes: bytes, line: int) -> str | RowError:
    try:
        return line_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RowError(
            line,
            "(line)",
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            line_bytes.decode("utf-8", "replace"),
        )


def read_atomic_tsv(stream: Iterable[bytes]) -> Iterator[ParsedRow | RowError]:
    for line_no, line_bytes in enumerate(stream, 1):
        text = _decode(line_bytes, line_no)
        if isinstance(text, RowError):
            yield text
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        parts = text.split("\t")
        if len(parts) != 3:
            if line_no == 1 and [p.strip().lower() for p in parts[:3]] == [
                "head",
                "relation",
                "tail",
            ]:
                continue
            yield RowError(
                line_no,
                "(line)",
                f"expected 3 tab-separated fields (head, relation, tail), found {len(parts)}",
                text,
            )
            continue
        if line_no == 1 and [p.strip().lower() for p in parts] == ["head", "relation", "tail"]:
            continue
        checked = _check_core(line_no, parts[0], parts[1], parts[2], None, text)
        if isinstance(checked, RowError):
            yield checked
        else:
            yield ParsedRow(line_no, checked[0], checked[1], checked[2], checked[3], "")


def _check_skd_fields(line: int, obj: dict, raw: str) -> RowError | None:
    valid = obj.get("valid")
    if valid is not None and (type(valid) is not int or valid not in SKD_VALID_VALUES):
        return RowError(line, "valid", f"{valid!r} is not one of 2, 1, -1, -2, -9", raw)
    p_valid = obj.get("p_valid_model")
    if p_valid is not None and (type(p_valid) not in (int, float) or not 0 <= p_valid <= 1):
        return RowError(line, "p_valid_model", f"{p_valid!r} is not a number between 0 and 1", raw)
    return None


def _tidy(value: str) -> str:
    """clean_text, skipped when there is nothing to clean (the common case).

    Every whitespace character but the plain space is unprintable, so a printable
    value needs cleaning only for doubled, leading or trailing spaces."""
    if not value.isprintable() or "  " in value or value[:1] == " " or value[-1:] == " ":
        return " ".join(value.split())
    return value


def _jsonl_row(line_no: int, line_bytes: bytes, skd: bool) -> ParsedRow | RowError | None:
    """One JSON line, checked with care: the row, the error naming its field, or None
    for a blank line."""
    try:
        obj = orjson.loads(line_bytes)
    except orjson.JSONDecodeError as exc:
        if not line_bytes.strip():
            return None
        return RowError(
            line_no,
            "(line)",
            f"not valid JSON: {exc}",
            line_bytes.decode("utf-8", "replace").rstrip("\n"),
        )
    raw = line_bytes.decode("utf-8", "replace").rstrip("\n")
    if type(obj) is not dict:
        return RowError(line_no, "(line)", "expected a JSON object", raw)
    head = obj.pop("head", None)
    relation = obj.pop("relation", None)
    tail = obj.pop("tail", None)
    split = obj.pop("split", DEFAULT_SPLIT)
    checked = _check_core(line_no, head, relation, tail, split, raw)
    if isinstance(checked, RowError):
        return checked
    if skd and (problem := _check_skd_fields(line_no, obj, raw)):
        return problem
    return ParsedRow(line_no, *checked, orjson.dumps(obj).decode() if obj else "")


def read_jsonl(stream: Iterable[bytes], *, skd: bool = False) -> Iterator[ParsedRow | RowError]:
    """JSON lines with head, relation, tail and optionally split; other keys are kept."""
    for line_no, line_bytes in enumerate(stream, 1):
        item = _jsonl_row(line_no, line_bytes, skd)
        if item is not None:
            yield item


def _jsonl_blocks(stream: Iterable[bytes], *, skd: bool) -> Iterator[Block]:
    """read_jsonl's rows as blocks, built without a per-row object: the import's hot path.

    Where the native module is installed, plain lines are read in C and the others
    line by line in Python (`_native_block`). Without it, a piece whose lines are all
    plain is checked column by column (`_plain_block`) and any other goes line by
    line. Either way a line that is anything but plain (bad JSON, a field to clean or
    to complain about) goes through `_jsonl_row`, so the rules live there."""
    # In Python, lines are looked at PLAIN_ROWS at a time, which keeps a piece's objects
    # in the processor's cache (three times bigger pieces were half again as slow).
    step = max(1, min(BLOCK_ROWS, PLAIN_ROWS))
    first = 1  # the line number of the block's first line
    while raw := list(itertools.islice(stream, BLOCK_ROWS)):
        if jsonl_columns is not None:
            block = _native_block(raw, first, skd)
        else:
            pieces = []
            for start in range(0, len(raw), step):
                chunk = list(enumerate(raw[start : start + step], first + start))
                pieces.append(_plain_block(chunk, skd) or _lines_block(chunk, skd))
            block = pieces[0] if len(pieces) == 1 else Block.joined(pieces)
        first += len(raw)
        if block.lines or block.errors:
            yield block


def _native_block(raw: list[bytes], first: int, skd: bool) -> Block:
    """Lines read in C, but for those it leaves to `_lines_block` (odd ones: an escape,
    a number orjson would respell, something to clean or to complain about)."""
    *columns, odd = jsonl_columns(raw, skd)
    if not odd:
        return Block(range(first, first + len(raw)), *columns, [])
    careful = _lines_block([(first + i, raw[i]) for i in odd], skd)
    values = (careful.heads, careful.relations, careful.tails, careful.splits, careful.fields)
    rows = dict(zip(careful.lines, zip(*values, strict=True), strict=True))
    keep = bytearray(b"\x01") * len(raw)
    for i in odd:
        if (row := rows.get(first + i)) is None:  # an error or a blank line
            keep[i] = 0
            continue
        for column, value in zip(columns, row, strict=True):
            column[i] = value
    if not all(keep):
        return Block(
            list(itertools.compress(range(first, first + len(raw)), keep)),
            *(list(itertools.compress(column, keep)) for column in columns),
            careful.errors,
        )
    return Block(range(first, first + len(raw)), *columns, careful.errors)


_OTHER_SPACE = re.compile(r"[^\S \n]")  # whitespace but the space and the newline
_OTHER_ASCII_SPACE = "\t\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _all_plain_text(values: list, max_length: int = MAX_TEXT_LENGTH) -> bool:
    """Every value is text, not empty, not too long and already clean (no whitespace
    but single inner spaces): checked over the whole column at once."""
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
    fields = list(map(bytes.decode, map(orjson.dumps, objs)))
    if "{}" in fields:
        fields = [f if f != "{}" else "" for f in fields]
    first = chunk[0][0]
    return Block(range(first, first + len(chunk)), heads, relations, tails, splits, fields, [])


def _lines_block(chunk: list[tuple[int, bytes]], skd: bool) -> Block:
    """The block read line by line (see _jsonl_blocks)."""
    loads = orjson.loads
    dumps = orjson.dumps
    decode_error = orjson.JSONDecodeError
    split_ok = _SPLIT_RE.match
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
            ):
                add_line(line_no)
                add_head(head)
                add_relation(relation)
                add_tail(tail)
                add_split(split)
                add_fields(dumps(obj).decode() if obj else "")
                continue
        item = _jsonl_row(line_no, line_bytes, skd)
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


def read_comet(stream: BinaryIO) -> Iterator[ParsedRow | RowError]:
    """COMET generations: one object per (head, relation) with a list of tails."""
    for line_no, line_bytes in enumerate(stream, 1):
        if not line_bytes.strip():
            continue
        raw = line_bytes.decode("utf-8", "replace").rstrip("\n")
        try:
            obj = orjson.loads(line_bytes)
        except orjson.JSONDecodeError as exc:
            yield RowError(line_no, "(line)", f"not valid JSON: {exc}", raw)
            continue
        if not isinstance(obj, dict):
            yield RowError(line_no, "(line)", "expected a JSON object", raw)
            continue
        generations = obj.get("generations")
        if not isinstance(generations, list):
            yield RowError(line_no, "generations", "missing or not a list", raw)
            continue
        greedy = obj.get("greedy")
        for rank, tail in enumerate(generations, 1):
            checked = _check_core(
                line_no, obj.get("head"), obj.get("relation"), tail, obj.get("split"), raw
            )
            if isinstance(checked, RowError):
                field = f"generations[{rank - 1}]" if checked.field == "tail" else checked.field
                yield RowError(line_no, field, checked.message, raw)
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


def read_csv(stream: BinaryIO) -> Iterator[ParsedRow | RowError]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except UnicodeDecodeError as exc:
        raise FormatError(f"line 1: not UTF-8 text ({exc.reason})") from exc
    columns = [h.strip().lower() for h in header]
    missing = [c for c in ("head", "relation", "tail") if c not in columns]
    if missing:
        raise FormatError(
            f"line 1: the header must name the columns head, relation and tail; "
            f"missing {', '.join(missing)} (found: {', '.join(header)})"
        )
    index = {name: columns.index(name) for name in ("head", "relation", "tail")}
    split_index = columns.index("split") if "split" in columns else None
    extra_columns = [
        (i, header[i].strip()) for i, c in enumerate(columns) if c not in CORE_FIELDS and c
    ]
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            yield RowError(reader.line_num + 1, "(line)", f"not UTF-8 text ({exc.reason})", "")
            return
        except csv.Error as exc:
            yield RowError(reader.line_num, "(line)", f"malformed CSV: {exc}", "")
            continue
        line_no = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        raw = ",".join(row)
        if len(row) != len(header):
            yield RowError(
                line_no,
                "(line)",
                f"expected {len(header)} columns as in the header, found {len(row)}",
                raw,
            )
            continue
        checked = _check_core(
            line_no,
            row[index["head"]],
            row[index["relation"]],
            row[index["tail"]],
            row[split_index] if split_index is not None else None,
            raw,
        )
        if isinstance(checked, RowError):
            yield checked
            continue
        extra = {name: row[i] for i, name in extra_columns if row[i] != ""}
        yield ParsedRow(
            line_no,
            checked[0],
            checked[1],
            checked[2],
            checked[3],
            orjson.dumps(extra).decode() if extra else "",
        )


def read_rows(stream: BinaryIO, fmt: str) -> Iterator[ParsedRow | RowError]:
    if fmt == "atomic-tsv":
        return read_atomic_tsv(stream)
    if fmt == "jsonl":
        return read_jsonl(stream)
    if fmt == "skd":
        return read_jsonl(stream, skd=True)
    if fmt == "comet":
        return read_comet(stream)
    if fmt == "csv":
        return read_csv(stream)
    raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --- Blocks: rows as columns, for the bulk loaders ---------------------------

BLOCK_ROWS = 20_000
PLAIN_ROWS = 2_000


@dataclass
class Block:
    """Rows of consecutive lines as columns. `lines[i]` is the line of row i."""

    lines: Sequence[int]
    heads: list[str]
    relations: list[str]
    tails: list[str]
    splits: list[str]
    fields: list[str]
    errors: list[RowError]

    def __len__(self) -> int:
        return len(self.heads)

    @classmethod
    def joined(cls, blocks: list[Block]) -> Block:
        """One block holding these consecutive blocks' rows and errors."""
        joined = cls([], [], [], [], [], [], [])
        for block in blocks:
            for column in dataclasses.fields(cls):
                getattr(joined, column.name).extend(getattr(block, column.name))
        return joined


def _block_from_rows(items: Iterable[ParsedRow | RowError]) -> Block:
    block = Block([], [], [], [], [], [], [])
    for item in items:
        if type(item) is RowError:
            block.errors.append(item)
            continue
        block.lines.append(item.line)  # type: ignore[attr-defined]
        block.heads.append(item.head)
        block.relations.append(item.relation)
        block.tails.append(item.tail)
        block.splits.append(item.split)
        block.fields.append(item.source_fields)
    return block


def read_blocks(stream: BinaryIO, fmt: str) -> Iterator[Block]:
    """The file's rows and errors, BLOCK_ROWS lines (or rows) at a time, as columns."""
    if fmt in ("jsonl", "skd"):
        yield from _jsonl_blocks(stream, skd=fmt == "skd")
        return
    rows = read_rows(stream, fmt)
    while True:
        block = _block_from_rows(itertools.islice(rows, BLOCK_ROWS))
        if not len(block) and not block.errors:
            return
        yield block
