"""Judgments out of the database: raw (one row per judgment) or aggregated (one per item)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import orjson

from core.spreadsheets import csv_safe

from .models import Campaign
from .selectors import (
    AGGREGATE_EXPORT_FIELDS,
    JUDGMENT_EXPORT_FIELDS,
    aggregate_rows,
    judgment_rows,
)

FORMATS = ("jsonl", "csv")


def _csv_lines(rows: Iterable[dict], fields: tuple[str, ...]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    for n, row in enumerate(rows, 1):
        writer.writerow(
            [csv_safe(v) if isinstance(v, str) else ("" if v is None else v) for v in row.values()]
        )
        if n % 2000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def judgment_export_chunks(
    *, campaign: Campaign, fmt: str, aggregated: bool = False
) -> Iterator[bytes]:
    """The export as byte chunks, for streaming responses and files alike."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    rows = aggregate_rows(campaign=campaign) if aggregated else judgment_rows(campaign=campaign)
    if fmt == "csv":
        fields = AGGREGATE_EXPORT_FIELDS if aggregated else JUDGMENT_EXPORT_FIELDS
        yield from _csv_lines(rows, fields)
        return
    batch: list[bytes] = []
    for row in rows:
        batch.append(orjson.dumps(row) + b"\n")
        if len(batch) == 2000:
            yield b"".join(batch)
            batch.clear()
    yield b"".join(batch)


def judgment_export_write(
    *, campaign: Campaign, fmt: str, out: BinaryIO, aggregated: bool = False
) -> None:
    for chunk in judgment_export_chunks(campaign=campaign, fmt=fmt, aggregated=aggregated):
        out.write(chunk)
