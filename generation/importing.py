"""Corpus import: parse in a thread, load in bulk, all-or-nothing by default."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import xxhash
from django.conf import settings
from django.db import transaction

from .bulk import SqliteLoader, StageRow, make_loader
from .formats import (
    FORMATS,
    TAIL_END_CHARS,
    FormatError,
    ParsedRow,
    RowError,
    detect_format,
    normalize_tail,
    open_binary,
    read_rows,
)

CHUNK_ROWS = 50_000
MAX_REPORTED_ERRORS = 20
MAX_COUNTED_ERRORS = 1000
_SIGN = 1 << 63

ProgressCallback = Callable[..., None]


def tail_key(tail: str) -> int:
    """Signed 64-bit hash of the normalized tail (fits a BIGINT column)."""
    return xxhash.xxh3_64_intdigest(normalize_tail(tail).encode()) - _SIGN


@dataclass
class ImportSummary:
    corpus: str
    format: str
    rows_read: int
    imported: int
    duplicates: int
    rejected: int
    seconds: float
    rejected_path: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        text = (
            f"{self.corpus}: imported {self.imported:,}, duplicates {self.duplicates:,}, "
            f"rejected {self.rejected:,} ({self.rows_read:,} rows in {self.seconds:.1f} s, "
            f"{self.rows_per_second:,.0f} rows/s)"
        )
        if self.rejected_path:
            text += f"; rejected lines written to {self.rejected_path}"
        return text

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


class CorpusImportError(Exception):
    """The file had invalid lines (or could not be read) and nothing was imported."""

    def __init__(self, message: str, *, errors: list[str] | None = None, total: int = 0) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.total = total


class _RejectSink:
    """Where invalid rows go: kept for the error message, or written to a file."""

    def __init__(self, path: Path, *, skip_invalid: bool) -> None:
        self.path = path
        self.skip_invalid = skip_invalid
        self.count = 0
        self.messages: list[str] = []
        self.rejected_path: Path | None = None
        self._file = None

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.messages) < MAX_REPORTED_ERRORS:
            self.messages.append(error.describe(self.path))
        if self.skip_invalid:
            if self._file is None:
                self.rejected_path = _rejected_path_for(self.path)
                self._file = open(self.rejected_path, "wb")  # noqa: SIM115
            self._file.write(
                orjson.dumps(
                    {
                        "line": error.line,
                        "field": error.field,
                        "error": error.message,
                        "raw": error.raw,
                    }
                )
                + b"\n"
            )

    @property
    def full(self) -> bool:
        return not self.skip_invalid and self.count >= MAX_COUNTED_ERRORS

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _rejected_path_for(path: Path) -> Path:
    """Beside the input when its folder is writable, else under MEDIA_ROOT/rejected."""
    beside = path.with_name(path.name + ".rejected.jsonl")
    try:
        with open(beside, "wb"):
            pass
        return beside
    except OSError:
        folder = Path(settings.MEDIA_ROOT) / "rejected"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / beside.name


def _stage_rows(
    items: Iterator[ParsedRow | RowError], relation_ids: dict[str, int], sink: _RejectSink
) -> Iterator[StageRow]:
    """Resolve relations (case-insensitively) and hash tails; send invalid rows to the sink."""
    known = ", ".join(sorted(name for name in relation_ids if not name.startswith("\0")))
    hash64 = xxhash.xxh3_64_intdigest
    seq = 0  # row ordinal: keeps file order even where one line gives several rows
    for item in items:
        if type(item) is RowError:
            sink.add(item)
            if sink.full:
                return
            continue
        line, head, relation, tail, split, source_fields = item
        relation_id = relation_ids.get(relation)
        if relation_id is None:
            relation_id = relation_ids.get("\0" + relation.lower())
            if relation_id is None:
                sink.add(
                    RowError(
                        line,
                        "relation",
                        f"unknown relation {relation!r} (known: {known}; "
                        "add new relations on the relations page or with create_relation)",
                        "\t".join((head, relation, tail)),
                    )
                )
                if sink.full:
                    return
                continue
        if sink.count and not sink.skip_invalid:
            continue  # the import is failing: keep counting errors, stage nothing more
        seq += 1
        # Tails arrive whitespace-collapsed, so this equals tail_key(tail), inlined.
        yield (
            seq,
            head,
            relation_id,
            tail,
            hash64(tail.lower().rstrip(TAIL_END_CHARS).encode()) - _SIGN,
            split,
            source_fields,
        )


def _relation_ids() -> dict[str, int]:
    from .models import Relation

    # Exact names, plus lower-cased ones behind a NUL prefix that no name can have.
    ids: dict[str, int] = {}
    for relation_id, name in Relation.objects.values_list("id", "name"):
        ids[name] = relation_id
        ids["\0" + name.lower()] = relation_id
    return ids


_DONE = object()


def _produce(chunks: queue.Queue, make_rows: Callable[[], Iterator[tuple]]) -> None:
    """Parser thread: put chunks of distinct stage rows on the queue, then _DONE (or the
    exception). A row repeated inside a chunk is folded into its first copy's count."""
    try:
        rows: list[tuple] = []
        counts: list[int] = []
        where: dict[tuple, int] = {}

        def flush() -> None:
            chunks.put([(*row, n) for row, n in zip(rows, counts, strict=True)])
            rows.clear()
            counts.clear()
            where.clear()

        for row in make_rows():
            key = (row[1], row[2], row[4])  # head, relation_id, tail_key
            index = where.get(key)
            if index is None:
                where[key] = len(rows)
                rows.append(row)
                counts.append(1)
                if len(rows) >= CHUNK_ROWS:
                    flush()
            else:
                counts[index] += 1
        if rows:
            flush()
        chunks.put(_DONE)
    except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
        chunks.put(exc)


def corpus_import_file(
    *,
    path: str | Path,
    corpus_name: str,
    fmt: str = "auto",
    skip_invalid: bool = False,
    origin: str = "import",
    job_id: int | None = None,
    created_by=None,
    description: str = "",
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import a corpus file. Raises CorpusImportError, having imported nothing, on bad input
    unless `skip_invalid`, in which case invalid lines go to a `.rejected.jsonl` file."""
    from .models import Corpus
    from .services import corpus_refresh_counts

    started = time.perf_counter()
    path = Path(path)
    try:
        fmt = detect_format(path) if fmt == "auto" else fmt
        if fmt not in FORMATS:
            raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        opened = open_binary(path)
    except FormatError as exc:
        raise CorpusImportError(
            f"{path.name}: {exc}" if path.name not in str(exc) else str(exc)
        ) from exc

    relation_ids = _relation_ids()
    sink = _RejectSink(path, skip_invalid=skip_invalid)
    rows_read = 0

    def make_rows() -> Iterator[StageRow]:
        return _stage_rows(read_rows(opened.stream, fmt), relation_ids, sink)

    def report(force: bool = False) -> None:
        if progress:
            progress(opened.bytes_read, opened.size, f"{rows_read:,} rows", force=force)

    chunks: queue.Queue = queue.Queue(maxsize=4)
    producer = threading.Thread(target=_produce, args=(chunks, make_rows), daemon=True)

    def consume(loader) -> None:
        nonlocal rows_read
        while True:
            item = chunks.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                if isinstance(item, (FormatError, UnicodeDecodeError, OSError, EOFError)):
                    raise CorpusImportError(f"{path.name}: {item}") from item
                raise item
            if sink.count and not skip_invalid:
                continue  # drain: the import will be refused
            loader.add(item)
            rows_read += sum(row[-1] for row in item)
            report()

    try:
        with transaction.atomic():
            corpus, corpus_created = Corpus.objects.get_or_create(
                name=corpus_name, defaults={"created_by": created_by, "description": description}
            )
            corpus_id = corpus.pk
            triples_before = corpus.triple_count
        loader = make_loader(corpus_id=corpus_id, origin=origin, job_id=job_id)
        if isinstance(loader, SqliteLoader):
            loader.open()
            try:
                producer.start()
                consume(loader)
                _raise_if_rejected(sink, path, skip_invalid, rows_read)
                with transaction.atomic():
                    loader.merge()
                    totals = corpus_refresh_counts(corpus=corpus)
            finally:
                loader.close()
        else:
            with transaction.atomic():
                loader.open()
                producer.start()
                consume(loader)
                _raise_if_rejected(sink, path, skip_invalid, rows_read)
                loader.close()
                totals = corpus_refresh_counts(corpus=corpus)
    except BaseException:
        _drain(chunks, producer)
        if locals().get("corpus_created"):
            _forget_empty_corpus(corpus_name)
        raise
    finally:
        sink.close()
        opened.close()
    report(force=True)
    seconds = time.perf_counter() - started
    imported = totals.triples - triples_before
    return ImportSummary(
        corpus=corpus_name,
        format=fmt,
        rows_read=rows_read,
        imported=imported,
        duplicates=rows_read - imported,
        rejected=sink.count,
        seconds=seconds,
        rejected_path=str(sink.rejected_path) if sink.rejected_path else None,
        errors=sink.messages,
    )


def _raise_if_rejected(sink: _RejectSink, path: Path, skip_invalid: bool, rows_read: int) -> None:
    if sink.count and not skip_invalid:
        more = "+" if sink.full else ""
        shown = "\n".join(f"  {m}" for m in sink.messages)
        extra = sink.count - len(sink.messages)
        tail = f"\n  … and {extra}{more} more" if extra > 0 else ""
        raise CorpusImportError(
            f"{path.name}: {sink.count}{more} invalid line(s); nothing was imported.\n"
            f"{shown}{tail}\n"
            "Fix them, or import the valid lines only with --skip-invalid "
            "(the rejected lines are then written beside the file).",
            errors=sink.messages,
            total=sink.count,
        )
    if rows_read == 0:
        raise CorpusImportError(
            f"{path.name}: no valid triples found"
            + (f" ({sink.count} invalid line(s) rejected)" if sink.count else "")
        )


def _drain(chunks: queue.Queue, producer: threading.Thread) -> None:
    """Let a blocked parser thread finish after a failure."""
    if not producer.is_alive():
        return
    while producer.is_alive():
        try:
            chunks.get(timeout=0.1)
        except queue.Empty:
            continue


def _forget_empty_corpus(name: str) -> None:
    """A corpus created by an import that failed is removed again (all-or-nothing)."""
    from .models import Corpus

    Corpus.objects.filter(name=name, triple_count=0).delete()
