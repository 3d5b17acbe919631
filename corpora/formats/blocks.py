"""Blocks: rows of consecutive lines as columns, the shape the bulk loaders take."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .rows import ParsedRow, RowError

BLOCK_ROWS = 20_000
# Blocks of long lines hold fewer of them: at most about BLOCK_BYTES of lines read, or
# BLOCK_CHARS of text in rows (up to four bytes each in a Python string).
BLOCK_BYTES = 8 << 20
BLOCK_CHARS = 2 << 20


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
