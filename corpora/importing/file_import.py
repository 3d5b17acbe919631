"""Importing one corpus file: parse in a thread, load in bulk, all-or-nothing by default.

`corpus_import_file` reads the file's blocks (`corpora.formats`), stages them
(`staging`), hands them to the database's loader (`corpora.bulk`), refuses the import
if rows were rejected (`rejects`), and records it on the corpus.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..bulk import CorpusNotEmpty, PartitionLoader, make_loader
from ..formats import FORMATS, FormatError, ReadLimits, detect_format, open_binary, read_blocks
from ..partitions import deferred_partition
from .empty_corpus import IMPORTING_JOB, _forget_empty_corpus
from .rejects import CorpusImportError, _raise_if_rejected, _RejectSink
from .staging import StageBlock, _Dropped, _relation_ids, _stage_blocks
from .turns import _import_turn, import_turn_try

CHUNK_ROWS = 50_000
ProgressCallback = Callable[..., None]


def drops_none_by_default(fmt: str) -> bool:
    """Whether an import drops "none" tails when not told: for ATOMIC TSV only."""
    return fmt == "atomic-tsv"


def read_limits() -> ReadLimits:
    """The limits on what reading one corpus file may cost, from settings."""
    return ReadLimits(
        max_line_bytes=settings.IMPORT_MAX_LINE_BYTES,
        max_bytes=settings.IMPORT_MAX_BYTES,
        max_ratio=settings.IMPORT_MAX_RATIO,
        max_blank_lines=settings.IMPORT_MAX_BLANK_LINES,
    )


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
    dropped_none: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        dropped = f", dropped {self.dropped_none:,} 'none' tails" if self.dropped_none else ""
        text = (
            f"{self.corpus}: imported {self.imported:,}, duplicates {self.duplicates:,}, "
            f"rejected {self.rejected:,}{dropped} ({self.rows_read:,} rows in "
            f"{self.seconds:.1f} s, {self.rows_per_second:,.0f} rows/s)"
        )
        if self.rejected_path:
            text += f"; rejected lines written to {self.rejected_path}"
        return text

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}


class _InThread:
    """Runs a generator in a background thread, a few items ahead of its consumer.

    Worth it only where the consumer mostly waits on another process (PostgreSQL):
    with SQLite, which runs in this process and gives the GIL back on every row,
    a busy parsing thread makes each database call wait for the GIL.
    """

    _DONE = object()

    def __init__(self, items: Iterator, ahead: int = 4) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), daemon=True)
        self._thread.start()

    def _run(self, items: Iterator) -> None:
        try:
            for item in items:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            self._queue.put(exc)

    def __iter__(self):
        while (item := self._queue.get()) is not self._DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _record_import(
    corpus_id: int, path: Path, fmt: str, rows_read: int, imported: int, job_id: int | None
) -> None:
    entry = {
        "file": str(path),
        "format": fmt,
        "at": timezone.now().isoformat(),
        "rows": rows_read,
        "imported": imported,
        "job": job_id,
    }
    from ..models import Corpus

    with transaction.atomic():
        corpus = Corpus.objects.select_for_update().get(pk=corpus_id)
        corpus.imports = [*corpus.imports, entry]
        corpus.save(update_fields=["imports"])


class _CopyConflict(Exception):
    """A corpus being filled while empty got rows meanwhile from another writer."""


def corpus_import_file(
    *,
    path: str | Path,
    corpus_name: str,
    fmt: str = "auto",
    skip_invalid: bool = False,
    drop_none: bool | None = None,
    origin: str = "import",
    job_id: int | None = None,
    created_by=None,
    description: str = "",
    progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import a corpus file. Raises CorpusImportError, having imported nothing, on bad input
    unless `skip_invalid`, in which case invalid lines go to a `.rejected.jsonl` file.
    `drop_none` leaves out rows whose tail is "none" (ATOMIC's "no inference"); by
    default (None) for ATOMIC TSV only."""
    options = {
        "path": path,
        "corpus_name": corpus_name,
        "fmt": fmt,
        "skip_invalid": skip_invalid,
        "drop_none": drop_none,
        "origin": origin,
        "job_id": job_id,
        "created_by": created_by,
        "description": description,
        "progress": progress,
    }
    with _collector_paused(), _queries_not_logged():
        try:
            return _import(**options, copy_into_empty=True)
        except _CopyConflict:
            # Another writer (a teacher run) added rows to the corpus while it was being
            # filled whole, or it could not be swapped in: nothing was kept, so load
            # again with the merge that folds such rows.
            return _import(**options, copy_into_empty=False)


@contextmanager
def _queries_not_logged() -> Iterator[None]:
    """With DEBUG on, Django keeps the text of its last 9,000 queries, parameters filled
    in: an import's lookups of thousands of heads at a time would keep hundreds of MB.
    (Left alone while a test captures queries.)"""
    if connection.force_debug_cursor:
        yield
        return
    log = connection.queries_log
    connection.queries_log = deque(maxlen=0)
    try:
        yield
    finally:
        connection.queries_log = log


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while rows stream through: parsing makes millions of
    short-lived objects and no cycles, and the collector's passes over them cost about a
    sixth of the parsing time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _named(path: Path, exc: BaseException) -> str:
    """The message of a reading error, with the file's name in front."""
    text = str(exc) or exc.__class__.__name__
    return text if path.name in text else f"{path.name}: {text}"


def _import(
    *,
    path: str | Path,
    corpus_name: str,
    fmt: str,
    skip_invalid: bool,
    drop_none: bool | None,
    origin: str,
    job_id: int | None,
    created_by,
    description: str,
    progress: ProgressCallback | None,
    copy_into_empty: bool,
) -> ImportSummary:
    from ..models import Corpus
    from ..services import corpus_refresh_counts

    started = time.perf_counter()
    path = Path(path)
    limits = read_limits()
    try:
        fmt = detect_format(path, limits) if fmt == "auto" else fmt
        if fmt not in FORMATS:
            raise FormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        opened = open_binary(path, limits)
    except FormatError as exc:
        raise CorpusImportError(_named(path, exc)) from exc
    drop = drops_none_by_default(fmt) if drop_none is None else drop_none

    relation_ids = _relation_ids()
    sink = _RejectSink(path, skip_invalid=skip_invalid)
    dropped = _Dropped()
    rows_read = 0

    def report(force: bool = False) -> None:
        if progress:
            progress(opened.bytes_read, opened.size, f"{rows_read:,} rows", force=force)

    def consume(loader, blocks: Iterator[StageBlock]) -> None:
        nonlocal rows_read
        try:
            for block in blocks:
                if sink.count and not skip_invalid:
                    continue  # the import will be refused: only count errors now
                loader.add(block)
                rows_read += block.rows_read
                report()
        except (FormatError, UnicodeDecodeError, OSError, EOFError) as exc:
            raise CorpusImportError(_named(path, exc)) from exc

    def check() -> None:
        _raise_if_rejected(sink, path, skip_invalid, rows_read, dropped, opened)

    with transaction.atomic(), deferred_partition():
        corpus, corpus_created = Corpus.objects.get_or_create(
            name=corpus_name,
            defaults={
                "created_by": created_by,
                "description": description,
                "stats": {IMPORTING_JOB: job_id} if job_id else {},
            },
        )

    def stage(*, fold: bool) -> Iterator[StageBlock]:
        return _stage_blocks(
            read_blocks(opened.reader, fmt),
            relation_ids,
            sink,
            fold=fold,
            drop_none=drop,
            dropped=dropped,
        )

    try:
        if connection.vendor == "sqlite":
            loader = make_loader(corpus_id=corpus.pk, origin=origin, job_id=job_id)
            loader.open()
            try:
                consume(loader, stage(fold=True))
                check()
                # The write lock is taken here: what the corpus held before is read under
                # it, so that two imports at once each count what they added.
                with transaction.atomic():
                    before = _triples_now(corpus)
                    loader.finish()
                    totals = corpus_refresh_counts(corpus=corpus)
            finally:
                loader.close()
        else:
            totals, before = _load_postgres(
                corpus,
                stage,
                consume,
                check,
                origin=origin,
                job_id=job_id,
                copy_into_empty=copy_into_empty,
            )
    except BaseException:
        sink.discard()
        if corpus_created and not (connection.in_atomic_block and connection.needs_rollback):
            with import_turn_try(corpus.pk) as free:
                if free:  # else another import is filling it
                    _forget_empty_corpus(corpus.pk, job_id)
        raise
    finally:
        sink.close()
        opened.close()
    report(force=True)
    seconds = time.perf_counter() - started
    imported = totals.triples - before
    _record_import(corpus.pk, path, fmt, rows_read, imported, job_id)
    return ImportSummary(
        corpus=corpus_name,
        format=fmt,
        rows_read=rows_read + dropped.none_tails,
        imported=imported,
        duplicates=rows_read - imported,
        rejected=sink.count,
        seconds=seconds,
        rejected_path=str(sink.rejected_path) if sink.rejected_path else None,
        errors=sink.messages,
        dropped_none=dropped.none_tails,
    )


def _triples_now(corpus) -> int:
    """The corpus's triple count as stored now (read under the import's lock)."""
    from ..models import Corpus

    count = Corpus.objects.filter(pk=corpus.pk).values_list("triple_count", flat=True).first()
    if count is None:
        raise CorpusImportError(
            f"corpus {corpus.name!r} was deleted while the file was read; nothing was imported"
        )
    return count


def _load_postgres(
    corpus,
    stage: Callable[..., Iterator[StageBlock]],
    consume: Callable,
    check: Callable[[], None],
    *,
    origin: str,
    job_id: int | None,
    copy_into_empty: bool,
):
    """Load the blocks `stage` reads into the corpus, whole into an empty one
    (PartitionLoader, which folds repeats itself), else merged block by block; `check`
    raises, before anything is kept, if rows were rejected. Returns the corpus's totals
    after and its triple count before, read while holding the corpus's import turn."""
    from ..models import Corpus, Triple
    from ..services import corpus_refresh_counts

    with _import_turn(corpus.pk):
        if copy_into_empty and not Triple.objects.filter(corpus_id=corpus.pk).exists():
            # Parsed in this thread: the loader's COPY is sent from a thread of its own
            # and never waits, so a parsing thread would only contend for the GIL.
            loader = PartitionLoader(corpus_id=corpus.pk, origin=origin, job_id=job_id)
            loader.open()
            try:
                consume(loader, stage(fold=False))
                check()
                loader.finish()
                totals = loader.swap_in(
                    lambda: corpus_refresh_counts(corpus=corpus, counts=loader.counts)
                )
                return totals, 0
            except CorpusNotEmpty as exc:
                loader.discard()
                raise _CopyConflict from exc
            except BaseException:
                loader.discard()
                raise
        # Parsing overlaps with the merges, where this thread waits for PostgreSQL on
        # the other core.
        ahead = _InThread(stage(fold=True))
        try:
            with transaction.atomic():
                Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
                before = _triples_now(corpus)
                loader = make_loader(corpus_id=corpus.pk, origin=origin, job_id=job_id)
                loader.open()
                consume(loader, ahead)
                check()
                loader.finish()
                totals = corpus_refresh_counts(corpus=corpus)
                loader.close()
                return totals, before
        finally:
            ahead.close()
