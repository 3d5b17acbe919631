"""Reading corpus files: format detection, parsing, validation. No Django here.

Every reader yields `ParsedRow`s or `RowError`s in file order; a `RowError`
names the line and the field. Lines are read as bytes by a `LineReader`, which
bounds what any input can cost (`ReadLimits`: the length of a line, the bytes
read, the compression ratio, runs of blank lines), strips a UTF-8 byte-order
mark and skips blank lines without a Python object each; lines are decoded one
at a time so an encoding error still has a line number.

Control characters: C0 (U+0000-U+001F) but tab, line feed and carriage return,
DEL (U+007F) and C1 (U+0080-U+009F) are refused wherever they appear, in the
head, relation, tail and split and in every other field kept (`source_fields`).
Tab and line breaks are whitespace, which cleaning turns into one space in the
stored texts. C1 characters are refused too: they are invisible, PostgreSQL's
text would keep them, and in practice they are the mark of text decoded with
the wrong encoding (Windows-1252 read as Latin-1).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import itertools
import os
import re
from collections.abc import Iterator, Sequence
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
# Control characters refused (see the module's docstring).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The same in orjson's output, which escapes C0 (so a backslash sends the line to the
# careful check) but writes DEL and C1 as they are.
_CONTROL_IN_JSON = re.compile(rb"\\|\x7f|\xc2[\x80-\x9f]")
UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
MAX_RAW_CHARS = 1000  # what an error keeps of its line


class FormatError(Exception):
    """The file as a whole cannot be read (unknown format, bad header, over a limit)."""


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
    truncated: bool = False  # `raw` is the start of a longer line

    def describe(self, path: str | Path) -> str:
        return f"{Path(path).name}, line {self.line}, field '{self.field}': {self.message}"


def clean_text(value: str) -> str:
    """Collapse runs of whitespace; the form in which heads and tails are stored."""
    return " ".join(value.split())


def normalize_tail(tail: str) -> str:
    """The form in which two tails count as the same (case, spacing, final punctuation)."""
    return " ".join(tail.lower().split()).rstrip(TAIL_END_CHARS)


# --- Reading lines within limits ---------------------------------------------------


@dataclass(frozen=True)
class ReadLimits:
    """What reading one file may cost. The importer takes them from settings
    (IMPORT_MAX_LINE_BYTES, IMPORT_MAX_BYTES, IMPORT_MAX_RATIO, IMPORT_MAX_BLANK_LINES)."""

    max_line_bytes: int = 1 << 20
    max_bytes: int = 16 << 30  # read, after decompression
    max_ratio: int = 100  # decompressed bytes per compressed byte
    ratio_after: int = 64 << 20  # the ratio is judged once this much is decompressed
    max_blank_lines: int = 100_000  # in a row


class LongLine(bytes):
    """Stands for a line over the length limit, skipped without being held: `start` is
    its first bytes, `length` its length. Its own bytes are a NUL, which no reader
    takes for a row."""

    start: bytes
    length: int

    def __new__(cls, start: bytes, length: int) -> LongLine:
        line = super().__new__(cls, b"\x00")
        line.start, line.length = start, length
        return line


_BLANK_RUN = re.compile(rb"\n[ \t\r\x0b\x0c\n]*\n")  # from a line's end to a blank run's end
CHUNK_BYTES = 1 << 19


def _lines(data: bytes) -> list[bytes]:
    """`data` cut after each line feed (which each line keeps): BytesIO's readlines does it
    four times faster than bytes.split."""
    return io.BytesIO(data).readlines()


class LineReader:
    """The lines of a binary stream (bytes, with their line feed but the last) with their
    line numbers, read a chunk at a time. Blank lines (nothing but whitespace) are counted,
    not handed on, unless asked for; a line over the length limit comes as a
    `LongLine`. Raises FormatError when the file goes over a limit."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        limits: ReadLimits | None = None,
        compressed_read=None,
    ) -> None:
        self.stream = stream
        self.limits = limits or ReadLimits()
        # For a compressed file: a callable giving the compressed bytes read so far.
        self.compressed_read = compressed_read
        self.bytes_read = 0
        self.lines_read = 0  # line numbers given out, blank lines included
        self.nonblank_lines = 0
        self._blank_run = 0
        self._started = False

    # Reading and limits

    def _read(self) -> bytes:
        data = self.stream.read(CHUNK_BYTES)
        if not self._started:
            while data and len(data) < 3 and (more := self.stream.read(CHUNK_BYTES)):
                data += more
            self._started = True
            if data.startswith(_UTF16_BOMS):
                raise FormatError(
                    "this is UTF-16 text (it starts with a UTF-16 byte-order mark); "
                    "save it as UTF-8"
                )
            if data.startswith(UTF8_BOM):
                self.bytes_read += len(UTF8_BOM)
                data = data[len(UTF8_BOM) :]
        self.bytes_read += len(data)
        limits = self.limits
        if self.bytes_read > limits.max_bytes:
            raise FormatError(
                f"larger than the limit of {limits.max_bytes:,} bytes"
                + (" once decompressed" if self.compressed_read else "")
                + " (IMPORT_MAX_BYTES)"
            )
        if (
            self.compressed_read is not None
            and self.bytes_read > limits.ratio_after
            and self.bytes_read > limits.max_ratio * max(1, self.compressed_read())
        ):
            raise FormatError(
                f"decompresses to more than {limits.max_ratio} times its compressed size "
                f"({self.bytes_read:,} bytes from {self.compressed_read():,}), over the limit "
                "(IMPORT_MAX_RATIO): a compression bomb, or a file to import uncompressed"
            )
        return data

    def _blank(self, count: int) -> None:
        self._blank_run += count
        if self._blank_run > self.limits.max_blank_lines:
            first = self.lines_read - self._blank_run + 1
            raise FormatError(
                f"more than {self.limits.max_blank_lines:,} blank lines in a row from line "
                f"{first:,} (IMPORT_MAX_BLANK_LINES); is it a corpus file?"
            )

    # Lines

    def _split(
        self, found: list[bytes], keep_blank: bool, short: bool = False, text: bytes = b""
    ) -> tuple[list[int], list[bytes]]:
        """Numbers and lines of these consecutive whole lines (`text`, if given, is them
        joined), blank ones counted."""
        numbers: list[int] = []
        lines: list[bytes] = []
        # The common case, checked in a C-level loop: no line is only whitespace.
        if not any(map(bytes.isspace, found)):
            self._take(found, numbers, lines, short)
            return numbers, lines
        # Runs of blank lines found by a regular expression over the text, not one by one
        # (a megabyte of line feeds is a million lines).
        work = b"\n" + (text or b"".join(found))
        if not work.endswith(b"\n"):
            work += b"\n"  # the file's last line
        pos = 1
        for match in _BLANK_RUN.finditer(work):
            start, end = match.span()
            if start >= pos:  # the lines before the run (none when it opens `work`)
                self._take(_lines(work[pos : start + 1]), numbers, lines)
            blank = work.count(b"\n", start, end) - 1
            if keep_blank:
                first = self.lines_read + 1
                numbers.extend(range(first, first + blank))
                lines.extend(_lines(work[start + 1 : end]))
            self.lines_read += blank
            self._blank(blank)
            pos = end
        if pos < len(work):
            self._take(_lines(work[pos:]), numbers, lines)
        return numbers, lines

    def _take(
        self, found: list[bytes], numbers: list[int], lines: list[bytes], short: bool = False
    ) -> None:
        """Lines that are not blank (found between blank runs); `short`: none can be over
        the length limit."""
        first = self.lines_read + 1
        self.lines_read += len(found)
        self.nonblank_lines += len(found)
        self._blank_run = 0
        limit = self.limits.max_line_bytes
        if not short and max(map(len, found)) > limit:
            found = [
                line if len(line) - line.endswith(b"\n") <= limit else self._long(line)
                for line in found
            ]
        numbers.extend(range(first, first + len(found)))
        lines.extend(found)

    def _long(self, line: bytes, length: int | None = None) -> LongLine:
        if length is None:
            length = len(line) - line.endswith(b"\n")
        return LongLine(line[:MAX_RAW_CHARS], length)

    def _chunks(self, keep_blank: bool) -> Iterator[tuple[list[int], list[bytes], int]]:
        """(line numbers, lines, bytes) for each chunk read."""
        limit = self.limits.max_line_bytes
        pending = b""  # a line whose end is not read yet
        skipping: tuple[bytes, int] | None = None  # a long line's start and length so far
        while data := self._read():
            size = len(data)
            numbers: list[int] = []
            lines: list[bytes] = []
            if skipping is not None:
                end = data.find(b"\n")
                if end < 0:
                    skipping = (skipping[0], skipping[1] + len(data))
                    continue
                self._take([self._long(skipping[0], skipping[1] + end)], numbers, lines)
                skipping, data = None, data[end + 1 :]
            found = _lines(data)
            tail = found.pop() if found and not found[-1].endswith(b"\n") else b""
            if found:
                short = len(pending) + len(data) <= limit
                text = pending + data[: len(data) - len(tail)] if len(found) > size // 8 else b""
                if pending:
                    found[0] = pending + found[0]
                pending = tail
                more_numbers, more_lines = self._split(found, keep_blank, short, text)
                numbers += more_numbers
                lines += more_lines
            else:
                pending += tail
            if len(pending) > limit:
                skipping, pending = (pending[:MAX_RAW_CHARS], len(pending)), b""
            if lines:
                yield numbers, lines, size
        if skipping is not None:
            numbers, lines = [], []
            self._take([self._long(*skipping)], numbers, lines)
            yield numbers, lines, 0
        elif pending:
            numbers, lines = self._split([pending], keep_blank)
            if lines:
                yield numbers, lines, len(pending)

    def pieces(
        self, max_lines: int, max_bytes: int = 8 << 20, *, keep_blank: bool = False
    ) -> Iterator[tuple[list[int], list[bytes]]]:
        """(line numbers, lines) of at most `max_lines` lines and about `max_bytes`."""
        numbers: list[int] = []
        lines: list[bytes] = []
        size = 0
        for chunk_numbers, chunk_lines, chunk_size in self._chunks(keep_blank):
            numbers += chunk_numbers
            lines += chunk_lines
            size += chunk_size
            while len(lines) >= max_lines:
                yield numbers[:max_lines], lines[:max_lines]
                del numbers[:max_lines], lines[:max_lines]
                size = sum(map(len, lines))
            if size >= max_bytes and lines:
                yield numbers, lines
                numbers, lines, size = [], [], 0
        if lines:
            yield numbers, lines

    def lines(self, *, keep_blank: bool = False) -> Iterator[tuple[int, bytes]]:
        """(line number, line), one at a time."""
        for numbers, lines in self.pieces(BLOCK_ROWS, keep_blank=keep_blank):
            yield from zip(numbers, lines, strict=True)


def line_reader(source: BinaryIO | LineReader) -> LineReader:
    """The LineReader of `source`: itself, or one over a binary stream (default limits)."""
    return source if isinstance(source, LineReader) else LineReader(source)


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
    reader: LineReader

    @property
    def bytes_read(self) -> int:
        return self.counter.bytes_read

    def close(self) -> None:
        self.stream.close()
        self.counter.raw.close()


def open_binary(path: str | Path, limits: ReadLimits | None = None) -> OpenedFile:
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file")
    limits = limits or ReadLimits()
    size = os.path.getsize(path)
    compressed = path.name.endswith(".gz")
    if not compressed and size > limits.max_bytes:
        raise FormatError(
            f"{path.name}: {size:,} bytes, larger than the limit of {limits.max_bytes:,} "
            "(IMPORT_MAX_BYTES)"
        )
    raw = open(path, "rb")  # noqa: SIM115 - closed by OpenedFile.close
    counter = CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    stream: BinaryIO = buffered
    if compressed:
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
    reader = LineReader(
        stream,
        limits=limits,
        compressed_read=(lambda: counter.bytes_read) if compressed else None,
    )
    return OpenedFile(path=path, size=size, counter=counter, stream=stream, reader=reader)


def _base_name(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def _first_line(path: Path, limits: ReadLimits | None) -> tuple[int, bytes]:
    """The first line that is not blank, and its number; (0, b"") when there is none."""
    opened = open_binary(path, limits)
    try:
        for line_no, line in opened.reader.lines():
            if type(line) is LongLine:
                raise FormatError(
                    f"{path.name}, line {line_no}: {_long_line_message(line, opened.reader)}; "
                    "cannot tell the format"
                )
            return line_no, line
        return 0, b""
    except (OSError, EOFError) as exc:
        raise FormatError(f"{path.name}: cannot read the file ({exc})") from exc
    finally:
        opened.close()


def detect_format(path: str | Path, limits: ReadLimits | None = None) -> str:
    path = Path(path)
    name = _base_name(path)
    if name.endswith(".tsv"):
        return "atomic-tsv"
    if name.endswith(".csv"):
        return "csv"
    line_no, first = _first_line(path, limits)
    if not line_no:
        raise FormatError(f"{path.name} is empty (or only blank lines): nothing to import")
    if first.lstrip().startswith(b"{"):
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError as exc:
            problem = _json_problem(first, exc)
            raise FormatError(f"{path.name}, line {line_no}: {problem}") from exc
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


# --- Checks and messages -----------------------------------------------------------


def _long_line_message(line: LongLine, reader: LineReader | None = None) -> str:
    limit = reader.limits.max_line_bytes if reader else None
    over = f" the limit of {limit:,} bytes" if limit else " the limit"
    return f"line of {line.length:,} bytes, longer than{over} (IMPORT_MAX_LINE_BYTES)"


def _long_line_error(line_no: int, line: LongLine, limit: int) -> RowError:
    return RowError(
        line_no,
        "(line)",
        f"line of {line.length:,} bytes, longer than the limit of {limit:,} bytes "
        "(IMPORT_MAX_LINE_BYTES); skipped unread",
        line.start.decode("utf-8", "replace"),
        truncated=True,
    )


def _raw(line_bytes: bytes) -> tuple[str, bool]:
    """What an error keeps of its line: its first MAX_RAW_CHARS characters."""
    text = line_bytes[: MAX_RAW_CHARS * 4].decode("utf-8", "replace").rstrip("\r\n")
    if len(text) > MAX_RAW_CHARS or len(line_bytes) > MAX_RAW_CHARS * 4:
        return text[:MAX_RAW_CHARS], True
    return text, False


def _row_error(line_no: int, field: str, message: str, line_bytes: bytes) -> RowError:
    raw, truncated = _raw(line_bytes)
    return RowError(line_no, field, message, raw, truncated)


def _utf8_problem(line_bytes: bytes, exc: UnicodeDecodeError) -> str:
    bad = line_bytes[exc.start]
    return (
        f"not UTF-8 text: byte 0x{bad:02X} at byte offset {exc.start} of the line is not "
        "valid UTF-8 (the file must be UTF-8; Latin-1 or Windows-1252 text must be "
        "converted first)"
    )


def _json_problem(line_bytes: bytes, exc: orjson.JSONDecodeError) -> str:
    """orjson's complaint, placed within our line (its own line and column count from
    the start of what it was given, which is this one line)."""
    try:
        text = line_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        return _utf8_problem(line_bytes, error)
    message = exc.msg
    if exc.pos >= len(text.rstrip()):
        return f"not valid JSON: {message} (the line ends before the JSON value does)"
    return f"not valid JSON: {message} at character {exc.pos + 1} of the line"


def _control_problem(value: str) -> str | None:
    """A message when `value` holds a refused control character."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return (
        f"holds the control character U+{ord(found.group()):04X} at character "
        f"{found.start() + 1} (control characters other than tab and line breaks are "
        "not allowed)"
    )


def _control_in_fields(obj: dict) -> tuple[str, str] | None:
    """(field, message) for the first refused control character in the names or values
    of the fields kept as source_fields, nested ones included (walked without
    recursion: orjson reads objects nested a thousand deep)."""
    stack: list[tuple[str, object]] = [("", obj)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if problem := _control_problem(value):
                return where, problem
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                field = f"{where}.{key}" if where else key
                if problem := _control_problem(key):
                    return field, f"its name {problem}"
                stack.append((field, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def _check_core(line: int, head, relation, tail, split, raw: str) -> RowError | tuple:
    for field, value in (("head", head), ("relation", relation), ("tail", tail)):
        if value is None:
            return RowError(line, field, "missing", raw)
        if not isinstance(value, str):
            return RowError(line, field, f"must be text, got {type(value).__name__}", raw)
    if _CONTROL.search(head) or _CONTROL.search(relation) or _CONTROL.search(tail):
        for field, value in (("head", head), ("relation", relation), ("tail", tail)):
            if problem := _control_problem(value):
                return RowError(line, field, problem, raw)
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
    elif isinstance(split, str) and (problem := _control_problem(split)):
        return RowError(line, "split", problem, raw)
    elif not isinstance(split, str) or not _SPLIT_RE.match(split.strip().lower()):
        return RowError(
            line, "split", f"{split!r} is not a split name (letters, digits, - or _)", raw
        )
    else:
        split = split.strip().lower()
    return head, relation, tail, split


def _decode(line_bytes: bytes, line: int, limit: int) -> str | RowError:
    if type(line_bytes) is LongLine:
        return _long_line_error(line, line_bytes, limit)
    try:
        return line_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _row_error(line, "(line)", _utf8_problem(line_bytes, exc), line_bytes)


def read_atomic_tsv(source: BinaryIO | LineReader) -> Iterator[ParsedRow | RowError]:
    reader = line_reader(source)
    limit = reader.limits.max_line_bytes
    first = True
    for line_no, line_bytes in reader.lines():
        text = _decode(line_bytes, line_no, limit)
        if isinstance(text, RowError):
            yield text
            first = False
            continue
        text = text.rstrip("\r\n")
        parts = text.split("\t")
        if first:
            first = False
            if [p.strip().lower() for p in parts[:3]] == ["head", "relation", "tail"]:
                continue  # a header
        if len(parts) != 3:
            yield RowError(
                line_no,
                "(line)",
                f"expected 3 tab-separated fields (head, relation, tail), found {len(parts)}",
                *_raw(line_bytes),
            )
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
    step = max(1, min(BLOCK_ROWS, PLAIN_ROWS))
    for numbers, raw in reader.pieces(BLOCK_ROWS, BLOCK_BYTES):
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


class _CsvFeed:
    """Decoded lines for csv.reader, keeping the number of the line each record starts
    on; a line that cannot be read becomes an error and an empty line."""

    def __init__(self, reader: LineReader) -> None:
        self.lines = reader.lines(keep_blank=True)
        self.limit = reader.limits.max_line_bytes
        self.record_start: int | None = None
        self.errors: list[RowError] = []

    def __iter__(self) -> Iterator[str]:
        for line_no, line_bytes in self.lines:
            if self.record_start is None:
                self.record_start = line_no
            text = _decode(line_bytes, line_no, self.limit)
            if isinstance(text, RowError):
                self.errors.append(text)
                yield "\n"
            else:
                yield text if text.endswith("\n") else text + "\n"


def read_csv(source: BinaryIO | LineReader) -> Iterator[ParsedRow | RowError]:
    feed = _CsvFeed(line_reader(source))
    reader = csv.reader(feed)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise FormatError(f"line {feed.record_start or 1}: malformed CSV header ({exc})") from exc
    if feed.errors:
        error = feed.errors[0]
        raise FormatError(f"line {error.line}: the header cannot be read: {error.message}")
    columns = [h.strip().lower() for h in header]
    missing = [c for c in ("head", "relation", "tail") if c not in columns]
    if missing:
        raise FormatError(
            f"line {feed.record_start}: the header must name the columns head, relation and "
            f"tail; missing {', '.join(missing)} (found: {', '.join(header)})"
        )
    index = {name: columns.index(name) for name in ("head", "relation", "tail")}
    split_index = columns.index("split") if "split" in columns else None
    extra_columns = [
        (i, header[i].strip()) for i, c in enumerate(columns) if c not in CORE_FIELDS and c
    ]
    while True:
        feed.record_start = None
        try:
            row = next(reader)
        except StopIteration:
            yield from feed.errors
            return
        except csv.Error as exc:
            yield from feed.errors
            feed.errors.clear()
            yield RowError(feed.record_start or 0, "(line)", f"malformed CSV: {exc}", "")
            continue
        line_no = feed.record_start
        if feed.errors:
            yield from feed.errors
            feed.errors.clear()
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
        if extra and (control := _control_in_fields(extra)):
            yield RowError(line_no, control[0], control[1], raw)
            continue
        yield ParsedRow(
            line_no,
            checked[0],
            checked[1],
            checked[2],
            checked[3],
            orjson.dumps(extra).decode() if extra else "",
        )


def read_rows(source: BinaryIO | LineReader, fmt: str) -> Iterator[ParsedRow | RowError]:
    if fmt == "atomic-tsv":
        return read_atomic_tsv(source)
    if fmt == "jsonl":
        return read_jsonl(source)
    if fmt == "skd":
        return read_jsonl(source, skd=True)
    if fmt == "comet":
        return read_comet(source)
    if fmt == "csv":
        return read_csv(source)
    raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --- Blocks: rows as columns, for the bulk loaders ---------------------------

BLOCK_ROWS = 20_000
# Blocks of long lines hold fewer of them: at most about BLOCK_BYTES of lines read, or
# BLOCK_CHARS of text in rows (up to four bytes each in a Python string).
BLOCK_BYTES = 8 << 20
BLOCK_CHARS = 2 << 20
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


def _block_from_rows(rows: Iterator[ParsedRow | RowError]) -> Block:
    """The next BLOCK_ROWS rows and errors, fewer when their text passes BLOCK_CHARS."""
    block = Block([], [], [], [], [], [], [])
    size = 0
    for item in itertools.islice(rows, BLOCK_ROWS):
        if type(item) is RowError:
            block.errors.append(item)
            size += len(item.raw)
        else:
            block.lines.append(item.line)  # type: ignore[attr-defined]
            block.heads.append(item.head)
            block.relations.append(item.relation)
            block.tails.append(item.tail)
            block.splits.append(item.split)
            block.fields.append(item.source_fields)
            size += len(item.head) + len(item.tail) + len(item.source_fields)
        if size >= BLOCK_CHARS:
            break
    return block


def read_blocks(source: BinaryIO | LineReader, fmt: str) -> Iterator[Block]:
    """The file's rows and errors, BLOCK_ROWS lines (or rows) at a time, as columns."""
    if fmt in ("jsonl", "skd"):
        yield from _jsonl_blocks(source, skd=fmt == "skd")
        return
    rows = read_rows(source, fmt)
    while True:
        block = _block_from_rows(rows)
        if not len(block) and not block.errors:
            return
        yield block
