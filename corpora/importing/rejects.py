"""Invalid rows: where they go (`_RejectSink`: kept for the message, or written to a
`.rejected.jsonl` file beside the input), and the refusal of an import that had any
(`CorpusImportError`), or no valid rows at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from django.conf import settings

from ..formats import MAX_RAW_CHARS, OpenedFile, RowError

if TYPE_CHECKING:
    from .staging import _Dropped

MAX_REPORTED_ERRORS = 20
MAX_COUNTED_ERRORS = 1000


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
