"""Delimited text: ATOMIC's TSV (head, relation, tail; a header optional) and CSV (a header
naming head, relation and tail; split and other columns optional, the others kept).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import BinaryIO

import orjson

from .checks import CORE_FIELDS, _check_core, _control_in_fields
from .line_errors import _decode, _raw
from .reading import LineReader, line_reader
from .rows import FormatError, ParsedRow, RowError


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
