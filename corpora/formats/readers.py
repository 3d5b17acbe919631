"""A format's name to its reader: rows one at a time (`read_rows`) or in blocks of columns
(`read_blocks`, what the import reads).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .blocks import Block, _block_from_rows
from .comet import read_comet
from .delimited import read_atomic_tsv, read_csv
from .jsonl import _jsonl_blocks, read_jsonl
from .reading import LineReader
from .rows import FormatError, ParsedRow, RowError

FORMATS = ("skd", "jsonl", "atomic-tsv", "csv", "comet")


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
