"""Telling a file's format from its name, else from its first line that is not blank."""

from __future__ import annotations

from pathlib import Path

import orjson

from .line_errors import _json_problem, _long_line_message
from .readers import FORMATS
from .reading import LongLine, ReadLimits, open_binary
from .rows import FormatError


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
