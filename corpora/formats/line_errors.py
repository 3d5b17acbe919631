"""Errors for lines that cannot be read as rows: too long, not UTF-8, not JSON; and what
an error keeps of its line.
"""

from __future__ import annotations

import orjson

from .reading import LineReader, LongLine
from .rows import MAX_RAW_CHARS, RowError


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


def _decode(line_bytes: bytes, line: int, limit: int) -> str | RowError:
    if type(line_bytes) is LongLine:
        return _long_line_error(line, line_bytes, limit)
    try:
        return line_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _row_error(line, "(line)", _utf8_problem(line_bytes, exc), line_bytes)
