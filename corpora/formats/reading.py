"""Reading a file's lines within limits.

Lines are read as bytes by a `LineReader`, which bounds what any input can cost
(`ReadLimits`: the length of a line, the bytes read, the compression ratio, runs of
blank lines), strips a UTF-8 byte-order mark and skips blank lines without a Python
object each; lines are decoded one at a time (by the readers) so an encoding error
still has a line number. `open_binary` opens a file, gzipped or not, counting the
compressed bytes read for progress.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .rows import MAX_RAW_CHARS, FormatError

UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Lines handed on by LineReader.lines at a time (a piece of the file held at once).
PIECE_LINES = 20_000


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
        for numbers, lines in self.pieces(PIECE_LINES, keep_blank=keep_blank):
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
