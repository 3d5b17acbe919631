"""Corpus import: parse in a thread, load in bulk, all-or-nothing by default."""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import compress
from operator import methodcaller
from pathlib import Path

import numpy as np
import orjson
import xxhash
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .bulk import CorpusNotEmpty, PartitionLoader, make_loader
from .formats import (
    FORMATS,
    MAX_RAW_CHARS,
    TAIL_END_CHARS,
    Block,
    FormatError,
    OpenedFile,
    ReadLimits,
    RowError,
    detect_format,
    normalize_tail,
    open_binary,
    read_blocks,
)
from .partitions import deferred_partition

try:
    from skd_native import tail_keys as native_tail_keys
except ImportError:  # an optional speed-up in C (see native/), there when xxhash.h was
    native_tail_keys = None

CHUNK_ROWS = 50_000
MAX_REPORTED_ERRORS = 20
MAX_COUNTED_ERRORS = 1000
_SIGN = 1 << 63
_IMPORT_LOCK = 0x534B44  # advisory lock class of corpus imports

ProgressCallback = Callable[..., None]


def tail_key(tail: str) -> int:
    """Signed 64-bit hash of the normalized tail (fits a BIGINT column)."""
    return xxhash.xxh3_64_intdigest(normalize_tail(tail).encode()) - _SIGN


# ATOMIC writes "none" where a relation has no inference for a head; such rows are not
# triples. Their tail key, for dropping them at import and leaving them out of campaigns.
NONE_TAIL = "none"
NONE_TAIL_KEY = tail_key(NONE_TAIL)


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


class CorpusImportError(Exception):
    """The file had invalid lines (or could not be read) and nothing was imported."""

    def __init__(self, message: str, *, errors: list[str] | None = None, total: int = 0) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.total = total


class _RejectSink:
    """Where invalid rows go: kept for the error message, or written to a file, each
    with at most MAX_RAW_CHARS of its line (marked "truncated" when it had more)."""

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
            entry = {
                "line": error.line,
                "field": error.field,
                "error": error.message,
                "raw": error.raw[:MAX_RAW_CHARS],
            }
            if error.truncated or len(error.raw) > MAX_RAW_CHARS:
                entry["truncated"] = True
            self._file.write(orjson.dumps(entry) + b"\n")

    @property
    def full(self) -> bool:
        return not self.skip_invalid and self.count >= MAX_COUNTED_ERRORS

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """The import failed: its rejected file goes too."""
        self.close()
        if self.rejected_path is not None:
            self.rejected_path.unlink(missing_ok=True)
            self.rejected_path = None


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


@dataclass
class StageBlock:
    """Distinct rows ready for a loader, as columns; `counts[i]` copies of row i were read."""

    seqs: range
    heads: list[str]
    relation_ids: list[int]
    tails: list[str]
    keys: list[int]
    splits: list[str]
    fields: list[str]
    counts: list[int]

    @property
    def rows_read(self) -> int:
        return sum(self.counts)


def _pick(column: list, keep: bytearray) -> list:
    """The values whose `keep` byte is not zero."""
    return list(compress(column, keep))


@dataclass
class _Dropped:
    """Valid rows left out on purpose."""

    none_tails: int = 0


def _stage_blocks(
    blocks: Iterator[Block],
    relation_ids: dict[str, int],
    sink: _RejectSink,
    *,
    fold: bool,
    drop_none: bool = False,
    dropped: _Dropped | None = None,
) -> Iterator[StageBlock]:
    """Resolve relations (case-insensitively), hash tails, drop "none" tails when asked
    (counted in `dropped`), and, when asked, fold repeats within a block; invalid rows
    go to the sink."""
    known = ", ".join(sorted(name for name in relation_ids if not name.startswith("\0")))
    seq = 0  # row ordinal: keeps file order even where one line gives several rows
    for block in blocks:
        heads, tails, splits, fields = block.heads, block.tails, block.splits, block.fields
        rel_ids = list(map(relation_ids.get, block.relations))
        errors = list(block.errors)
        if None in rel_ids:
            keep = bytearray(len(rel_ids))
            for i, relation in enumerate(block.relations):
                if rel_ids[i] is None:
                    rel_ids[i] = relation_ids.get("\0" + relation.strip().lower())
                if rel_ids[i] is None:
                    errors.append(
                        RowError(
                            block.lines[i],
                            "relation",
                            f"unknown relation {relation!r} (known: {known}; add new relations "
                            "on the relations page or through the API)",
                            "\t".join((heads[i], relation, tails[i])),
                        )
                    )
                else:
                    keep[i] = 1
            heads, tails = _pick(heads, keep), _pick(tails, keep)
            splits, fields = _pick(splits, keep), _pick(fields, keep)
            rel_ids = _pick(rel_ids, keep)
        for error in sorted(errors, key=lambda e: e.line):
            sink.add(error)
            if sink.full:
                return
        if not heads or (sink.count and not sink.skip_invalid):
            continue  # nothing left, or the import is failing: only count errors now
        keys = _tail_keys(tails)
        if drop_none and NONE_TAIL_KEY in keys:
            keep = bytearray(b"\x01") * len(keys)
            for i, key in enumerate(keys):
                if key == NONE_TAIL_KEY and normalize_tail(tails[i]) == NONE_TAIL:
                    keep[i] = 0
            if dropped is not None:
                dropped.none_tails += len(keep) - sum(keep)
            heads, tails, keys = _pick(heads, keep), _pick(tails, keep), _pick(keys, keep)
            splits, fields, rel_ids = _pick(splits, keep), _pick(fields, keep), _pick(rel_ids, keep)
            if not heads:
                continue
        counts = [1] * len(heads)
        suspects = _rows_that_may_repeat(heads, rel_ids, keys) if fold else None
        if suspects:
            # Exact comparison among the few rows whose hash repeats.
            first: dict[tuple, int] = {}
            dropped = []
            for i in suspects:
                j = first.setdefault((heads[i], rel_ids[i], keys[i]), i)
                if j != i:
                    counts[j] += 1
                    dropped.append(i)
            if dropped:
                keep = bytearray(b"\x01") * len(heads)
                for i in dropped:
                    keep[i] = 0
                heads, tails, keys = _pick(heads, keep), _pick(tails, keep), _pick(keys, keep)
                splits, fields = _pick(splits, keep), _pick(fields, keep)
                rel_ids, counts = _pick(rel_ids, keep), _pick(counts, keep)
        yield StageBlock(
            range(seq + 1, seq + 1 + len(heads)),
            heads,
            rel_ids,
            tails,
            keys,
            splits,
            fields,
            counts,
        )
        seq += len(heads)


def _tail_keys(tails: list[str]) -> list[int]:
    """tail_key of each tail, which arrives whitespace-collapsed (so without newlines):
    in C where the native module has xxh3, else lower-cased all at once and hashed in
    C-level loops, not a Python loop per row."""
    if native_tail_keys is not None:
        return native_tail_keys(tails, tail_key)
    joined = "\n".join(tails)
    if joined.count("\n") != len(tails) - 1:
        return [tail_key(t) for t in tails]
    trimmed = map(methodcaller("rstrip", TAIL_END_CHARS), joined.lower().split("\n"))
    hashes = np.fromiter(
        map(xxhash.xxh3_64_intdigest, map(str.encode, trimmed)), dtype=np.uint64, count=len(tails)
    )
    return (hashes ^ np.uint64(_SIGN)).view(np.int64).tolist()


def _rows_that_may_repeat(heads: list[str], relation_ids: list[int], keys: list[int]) -> list[int]:
    """Rows (in order) whose (head, relation, tail key) may occur twice in the block: one
    64-bit hash per row is compared, so a rare collision only adds a suspect."""
    h = np.fromiter(map(hash, heads), dtype=np.int64, count=len(heads)).view(np.uint64)
    h = (h * np.uint64(0x9E3779B97F4A7C15)) ^ np.array(relation_ids, dtype=np.uint64)
    h = (h * np.uint64(0xBF58476D1CE4E5B9)) ^ np.array(keys, dtype=np.int64).view(np.uint64)
    _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] > 1).tolist()


def _relation_ids() -> dict[str, int]:
    from .models import Relation

    # Exact names, plus lower-cased ones behind a NUL prefix that no name can have.
    ids: dict[str, int] = {}
    for relation_id, name in Relation.objects.values_list("id", "name"):
        ids[name] = relation_id
        ids["\0" + name.lower()] = relation_id
    return ids


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
    from .models import Corpus

    with transaction.atomic():
        corpus = Corpus.objects.select_for_update().get(pk=corpus_id)
        corpus.imports = [*corpus.imports, entry]
        corpus.save(update_fields=["imports"])


class _CopyConflict(Exception):
    """A corpus being filled while empty got rows meanwhile from another writer."""


@contextmanager
def _import_turn(corpus_id: int) -> Iterator[None]:
    """Imports into one corpus take turns (PostgreSQL): an advisory lock held for the
    import, or until the caller's transaction ends when inside one."""
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_IMPORT_LOCK, corpus_id])
            yield
            return
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_IMPORT_LOCK, corpus_id])
        try:
            yield
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_IMPORT_LOCK, corpus_id])


@contextmanager
def import_turn_try(corpus_id: int) -> Iterator[bool]:
    """Takes the corpus's import turn if no import holds it (PostgreSQL; elsewhere there
    is none to take) and gives it back after: yields whether it was free."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_IMPORT_LOCK, corpus_id])
        (free,) = cursor.fetchone()
    try:
        yield free
    finally:
        if free:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_IMPORT_LOCK, corpus_id])


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


# A corpus that an import job creates carries this in its stats until the import
# succeeds (which replaces the stats): the cleanup removes it if the job died.
IMPORTING_JOB = "created_by_import_job"


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
    from .models import Corpus
    from .services import corpus_refresh_counts

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
    from .models import Corpus

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
    from .models import Corpus, Triple
    from .services import corpus_refresh_counts

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


def _raise_if_rejected(
    sink: _RejectSink,
    path: Path,
    skip_invalid: bool,
    rows_read: int,
    dropped: _Dropped,
    opened: OpenedFile,
) -> None:
    if sink.count and not skip_invalid:
        more = "+" if sink.full else ""
        shown = "\n".join(f"  {m}" for m in sink.messages)
        extra = sink.count - len(sink.messages)
        tail = f"\n  … and {extra}{more} more" if extra > 0 else ""
        raise CorpusImportError(
            f"{path.name}: {sink.count}{more} invalid line(s); nothing was imported.\n"
            f"{shown}{tail}\n"
            'Fix them, or import only the valid lines (--skip-invalid, or "Import the valid '
            'lines" on the job page); the rejected ones are then written to a file.',
            errors=sink.messages,
            total=sink.count,
        )
    if rows_read == 0:
        if not sink.count and not opened.reader.nonblank_lines:
            if opened.reader.lines_read:
                raise CorpusImportError(f"{path.name} has only blank lines: nothing to import")
            raise CorpusImportError(f"{path.name} is empty: it has no lines to import")
        if dropped.none_tails and not sink.count:
            raise CorpusImportError(
                f"{path.name}: no triples left once its {dropped.none_tails:,} 'none' tails "
                "were dropped (keep them with --keep-none, or untick \"Drop 'none' tails\")"
            )
        raise CorpusImportError(
            f"{path.name}: no valid triples found"
            + (f" ({sink.count} invalid line(s) rejected)" if sink.count else "")
        )


def _forget_empty_corpus(corpus_id: int, job_id: int | None) -> bool:
    """A corpus created by an import that failed is removed again (all-or-nothing),
    unless it got rows meanwhile or another import job is now filling it. True when it
    was removed."""
    from jobs.models import Job

    from .models import Corpus, Triple
    from .services import IMPORT_JOB

    with transaction.atomic():
        corpus = Corpus.objects.select_for_update().filter(pk=corpus_id, triple_count=0).first()
        if corpus is None or Triple.objects.filter(corpus_id=corpus_id).exists():
            return False
        others = Job.objects.filter(
            kind=IMPORT_JOB, status__in=Job.ACTIVE_STATUSES, params__corpus=corpus.name
        ).exclude(pk=job_id)
        if others.exists():
            return False
        corpus.delete()
        return True
