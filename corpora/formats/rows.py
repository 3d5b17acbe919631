"""What the readers give: a row (`ParsedRow`), an error naming its line and field
(`RowError`), and `FormatError` for a file that cannot be read at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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
