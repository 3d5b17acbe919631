"""The trained model folder as a zip, streamed as it is made."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import DistillationError
from ..folders import verified_model_folder
from ..models import StudentRun


class _Chunks(io.RawIOBase):
    """A write-only stream that hands what was written to a generator (zipfile writes
    data descriptors when it cannot seek, so the zip never touches the disk)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


ARCHIVE_READ_BYTES = 4 << 20


def student_archive_name(run: StudentRun) -> str:
    return f"{run.name}-model.zip"


def student_archive(*, run: StudentRun) -> Iterator[bytes]:
    """The trained model folder as a zip, streamed as it is made (stored, not compressed:
    weights don't shrink), in constant memory whatever the model's size."""
    if not run.is_trained:
        raise DistillationError(f"Run '{run}' has not finished training.")
    source = verified_model_folder(run)
    files = sorted(path for path in source.rglob("*") if path.is_file())

    def chunks() -> Iterator[bytes]:
        sink = _Chunks()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
            for file in files:
                name = str(Path(run.name) / file.relative_to(source))
                large = file.stat().st_size >= zipfile.ZIP64_LIMIT
                with open(file, "rb") as read, archive.open(name, "w", force_zip64=large) as out:
                    while block := read.read(ARCHIVE_READ_BYTES):
                        out.write(block)
                        yield sink.take()
                yield sink.take()
        yield sink.take()

    return chunks()
