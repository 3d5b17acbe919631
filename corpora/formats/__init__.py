"""Reading corpus files: format detection, parsing, validation. No Django here.

Every reader yields `ParsedRow`s or `RowError`s in file order; a `RowError` names the line
and the field. The modules, each owning one part:

- `rows`: what readers give (`ParsedRow`, `RowError`) and `FormatError`
- `reading`: `LineReader` and `ReadLimits` (what reading one file may cost), `open_binary`
  (gzip included)
- `checks`: the rules a row meets (texts, split, SKD fields, control characters) and
  `clean_text` / `normalize_tail`
- `line_errors`: errors for lines that cannot be read (too long, not UTF-8, not JSON)
- `detection`: `detect_format`, from a file's name or first line
- `jsonl` (JSON lines and the SKD release format), `comet` (COMET generations),
  `delimited` (ATOMIC TSV and CSV): the readers, one per family of formats
- `blocks`: `Block`, rows as columns for the bulk loaders
- `readers`: `FORMATS`, and `read_rows` / `read_blocks`, a format's name to its reader

The public names are re-exported here. Private helpers, and the sizes that tests turn down
(`blocks.BLOCK_ROWS`, `reading.CHUNK_BYTES`, `jsonl.jsonl_columns`), are reached in their
own module.
"""

from .blocks import Block
from .checks import (
    CORE_FIELDS,
    DEFAULT_SPLIT,
    MAX_TEXT_LENGTH,
    SKD_VALID_VALUES,
    TAIL_END_CHARS,
    clean_text,
    normalize_tail,
)
from .comet import read_comet
from .delimited import read_atomic_tsv, read_csv
from .detection import detect_format
from .jsonl import read_jsonl
from .readers import FORMATS, read_blocks, read_rows
from .reading import (
    CountingReader,
    LineReader,
    LongLine,
    OpenedFile,
    ReadLimits,
    line_reader,
    open_binary,
)
from .rows import MAX_RAW_CHARS, FormatError, ParsedRow, RowError

__all__ = [
    "CORE_FIELDS",
    "DEFAULT_SPLIT",
    "FORMATS",
    "MAX_RAW_CHARS",
    "MAX_TEXT_LENGTH",
    "SKD_VALID_VALUES",
    "TAIL_END_CHARS",
    "Block",
    "CountingReader",
    "FormatError",
    "LineReader",
    "LongLine",
    "OpenedFile",
    "ParsedRow",
    "ReadLimits",
    "RowError",
    "clean_text",
    "detect_format",
    "line_reader",
    "normalize_tail",
    "open_binary",
    "read_atomic_tsv",
    "read_blocks",
    "read_comet",
    "read_csv",
    "read_jsonl",
    "read_rows",
]
