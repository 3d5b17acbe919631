"""Corpus export: streamed from a database cursor in constant memory."""

from __future__ import annotations

import csv
import io
import select
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.db import DatabaseError, connection, transaction
from psycopg import pq

from core.spreadsheets import csv_safe

EXPORT_FORMATS = ("jsonl", "tsv", "csv", "parquet")
FETCH_ROWS = 20_000
PROGRESS_ROWS = 20_000
# A cell starting with one of these is read as a formula by spreadsheets.


@dataclass(frozen=True)
class ExportFilter:
    relations: tuple[str, ...] = ()
    split: str | None = None
    min_score: float | None = None
    # Per-relation score cut-offs overriding min_score (a critic preset).
    relation_min_scores: tuple[tuple[str, float], ...] = ()
    # SKD release flags added to JSONL lines, e.g. (("rec_50", 0.41), ...): each is
    # true when the triple's score reaches its threshold; p_valid_model is the score.
    critic_flags: tuple[tuple[str, float], ...] = ()


@dataclass
class ExportSummary:
    corpus: str
    format: str
    rows: int
    seconds: float
    path: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return (
            f"{self.corpus}: exported {self.rows:,} triples as {self.format} to {self.path} "
            f"in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        )


ExportRow = tuple[
    str, str, str, str, float | None, str
]  # head, relation, tail, split, score, fields


def _where(flt: ExportFilter) -> tuple[str, list]:
    where = ["t.corpus_id = %s"]
    params: list = []
    if flt.relations:
        where.append(f"r.name IN ({', '.join(['%s'] * len(flt.relations))})")
        params.extend(flt.relations)
    if flt.split:
        where.append("t.split = %s")
        params.append(flt.split)
    if flt.relation_min_scores:
        cases = " ".join("WHEN %s THEN %s" for _ in flt.relation_min_scores)
        where.append(f"s.score >= (CASE r.name {cases} ELSE %s END)")
        for name, value in flt.relation_min_scores:
            params.extend([name, value])
        params.append(flt.min_score if flt.min_score is not None else 0.0)
    elif flt.min_score is not None:
        where.append("s.score >= %s")
        params.append(flt.min_score)
    return " AND ".join(where), params


def _from(corpus_id: int, *, with_score: bool = True) -> str:
    """The triples with head and relation and, as `s.score`, their critic score."""
    from .models import Event, Relation, Triple
    from .scores import score_join

    sql = (
        f"FROM {Triple._meta.db_table} t "
        f"JOIN {Event._meta.db_table} e ON e.id = t.head_id "
        f"JOIN {Relation._meta.db_table} r ON r.id = t.relation_id"
    )
    return sql + score_join(corpus_id) if with_score else sql


def _uses_score(fmt: str, flt: ExportFilter) -> bool:
    return fmt != "tsv" or flt.min_score is not None or bool(flt.relation_min_scores)


def _query(corpus_id: int, flt: ExportFilter) -> tuple[str, list]:
    where, params = _where(flt)
    sql = (
        "SELECT e.text, r.name, t.tail, t.split, s.score, t.source_fields "
        f"{_from(corpus_id)} WHERE {where} ORDER BY t.id"
    )
    return sql, [corpus_id, *params]


def _critic_members(flt: ExportFilter) -> tuple[str, str]:
    """(source fields without the members the critic supplies, the critic's members)."""
    if not flt.critic_flags:
        return "t.source_fields", ""
    replaced = ["p_valid_model", *(name for name, _ in flt.critic_flags)]
    if connection.vendor == "postgresql":
        keys = ", ".join(f"'{name}'" for name in replaced)
        fields = (
            "CASE WHEN t.source_fields IN ('', '{}') THEN '' "
            f"ELSE (t.source_fields::jsonb - ARRAY[{keys}])::text END"
        )
        score = "s.score::text"
    else:
        paths = ", ".join(f"'$.{name}'" for name in replaced)
        fields = (
            "CASE WHEN t.source_fields IN ('', '{}') THEN '' "
            f"ELSE json_remove(t.source_fields, {paths}) END"
        )
        score = "json_quote(s.score)"
    members = f""" || ',"p_valid_model":' || {score}""" + "".join(
        f""" || ',"{name}":' || CASE WHEN s.score >= {float(value)!r} """
        "THEN 'true' ELSE 'false' END"
        for name, value in flt.critic_flags
    )
    return fields, members


def _line_expression(fmt: str, flt: ExportFilter | None = None) -> str:
    """SQL building one output line, so that the database, not Python, formats each row.

    Stored heads and tails never hold tabs or newlines (imports collapse whitespace);
    relation and split names are [A-Za-z0-9_-]+ by validation, so need no escaping.
    source_fields is a JSON object's text (or ''): its members are spliced in.
    """
    if fmt == "tsv":
        return "e.text || '\t' || r.name || '\t' || t.tail"
    if connection.vendor == "postgresql":
        head, tail, score = "to_json(e.text)::text", "to_json(t.tail)::text", "s.score::text"
    else:
        head, tail, score = "json_quote(e.text)", "json_quote(t.tail)", "json_quote(s.score)"
    fields, critic_members = _critic_members(flt or ExportFilter())
    return (
        f"""'{{"head":' || {head} || ',"relation":"' || r.name || '","tail":' || {tail}"""
        """ || ',"split":"' || t.split || '"'"""
        f" || CASE WHEN {fields} IN ('', '{{}}') THEN ''"
        f" ELSE ',' || substr({fields}, 2, length({fields}) - 2) END"
        f"{critic_members}"
        f""" || CASE WHEN s.score IS NULL THEN '' ELSE ',"score":' || {score} END || '}}'"""
    )


def _write_lines_from_database(
    corpus_id: int, fmt: str, flt: ExportFilter, out: BinaryIO, progress
) -> int:
    """JSONL and TSV: the database builds every line; Python only moves bytes."""
    where, params = _where(flt)
    sql = (
        f"SELECT {_line_expression(fmt, flt)} "
        f"{_from(corpus_id, with_score=_uses_score(fmt, flt))} WHERE {where} ORDER BY t.id"
    )
    params = [corpus_id, *params]
    count = 0
    if connection.vendor == "postgresql":
        # COPY streams the lines; a CSV quote character that never occurs in
        # the text makes COPY pass each line through unescaped.
        with transaction.atomic():
            query = connection.ops.compose_sql(sql, params)
            return _copy_out(
                f"COPY ({query}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')",
                out,
                progress,
            )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            out.write(("\n".join([row[0] for row in rows]) + "\n").encode())
            count += len(rows)
            if progress:
                progress(count, None)
    return count


def _copy_out(sql: str, out: BinaryIO, progress=None) -> int:
    """Run a COPY … TO STDOUT on the connection and write what it sends to `out`; the
    rows it sent.

    Drives libpq through psycopg's `pq` layer: PostgreSQL sends a message per row,
    and psycopg's Copy object takes a trip through its wait loop for each, which made
    Python, not the query, the slow end of an export (3 µs a row against 0.5 µs)."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    pgconn.send_query(sql.encode())
    _result(pgconn, pq.ExecStatus.COPY_OUT)
    rows = 0
    try:
        while True:
            size, data = pgconn.get_copy_data(1)
            if size > 0:
                out.write(data)
                rows += 1
                if progress and not rows % PROGRESS_ROWS:
                    progress(rows, None)
            elif size == 0:  # nothing buffered: wait for the server
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
            else:
                break
    except BaseException:
        connection.connection.cancel()
        while pgconn.get_copy_data(0)[0] >= 0:  # what was sent before the cancel
            pass
        _drain(pgconn)
        raise
    _result(pgconn, pq.ExecStatus.COMMAND_OK)
    if progress:
        progress(rows, None)
    return rows


def _result(pgconn, expected) -> None:
    """Wait for the next result; raise DatabaseError (the server's message) unless its
    status is `expected`."""
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()
    result = pgconn.get_result()
    if result is None or result.status != expected:
        message = (result.error_message if result else pgconn.error_message) or b""
        _drain(pgconn)
        raise DatabaseError(message.decode(errors="replace").strip() or "COPY failed")
    if expected == pq.ExecStatus.COMMAND_OK:
        _drain(pgconn)


def _drain(pgconn) -> None:
    while pgconn.get_result() is not None:
        pass


@contextmanager
def _row_batches(corpus_id: int, flt: ExportFilter) -> Iterator[Iterator[list[ExportRow]]]:
    """Batches of rows from a streaming cursor (a named server-side cursor on PostgreSQL)."""
    sql, params = _query(corpus_id, flt)
    if connection.vendor == "postgresql":
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor(name="corpus_export") as cursor:
                cursor.itersize = FETCH_ROWS
                cursor.execute(sql, params)

                def batches():
                    while rows := cursor.fetchmany(FETCH_ROWS):
                        yield rows

                yield batches()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

            def batches():
                while rows := cursor.fetchmany(FETCH_ROWS):
                    yield rows

            yield batches()


def _write_csv(batches, out: BinaryIO) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["head", "relation", "tail", "split", "score"])
    count = 0
    for rows in batches:
        writer.writerows(
            (csv_safe(head), relation, csv_safe(tail), split, "" if score is None else score)
            for head, relation, tail, split, score, _ in rows
        )
        count += len(rows)
    text.flush()
    text.detach()
    return count


def _write_parquet(batches, out: BinaryIO) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("head", pa.string()),
            ("relation", pa.string()),
            ("tail", pa.string()),
            ("split", pa.string()),
            ("score", pa.float64()),
            ("source_fields", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for rows in batches:
            columns = list(zip(*rows, strict=True))
            columns[5] = [f or None for f in columns[5]]
            writer.write_batch(pa.record_batch(columns, schema=schema))
            count += len(rows)
    return count


_ROW_WRITERS = {"csv": _write_csv, "parquet": _write_parquet}


def corpus_export_stream(
    *, corpus_id: int, fmt: str, out: BinaryIO, flt: ExportFilter, progress=None
) -> int:
    """Write the export to `out`; returns the number of triples written."""
    if fmt in ("jsonl", "tsv"):
        return _write_lines_from_database(corpus_id, fmt, flt, out, progress)
    if fmt not in _ROW_WRITERS:
        raise ValueError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    with _row_batches(corpus_id, flt) as batches:
        return _ROW_WRITERS[fmt](batches, out)


def corpus_export_file(
    *, corpus, fmt: str, out_path: str | Path, flt: ExportFilter, progress=None
) -> ExportSummary:
    """Write an export to a path ('-' is standard output); the file appears only when complete."""
    started = time.perf_counter()
    if str(out_path) == "-":
        rows = corpus_export_stream(
            corpus_id=corpus.pk, fmt=fmt, out=sys.stdout.buffer, flt=flt, progress=progress
        )
        sys.stdout.buffer.flush()
    else:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        partial = out_path.with_name(out_path.name + ".partial")
        try:
            with open(partial, "wb", buffering=1 << 20) as out:
                rows = corpus_export_stream(
                    corpus_id=corpus.pk, fmt=fmt, out=out, flt=flt, progress=progress
                )
            partial.replace(out_path)
        finally:
            partial.unlink(missing_ok=True)
    return ExportSummary(
        corpus=corpus.name,
        format=fmt,
        rows=rows,
        seconds=time.perf_counter() - started,
        path=str(out_path),
    )
