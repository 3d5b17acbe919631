"""Checksums of artifact folders (a critic version's model, a student's weights), so a
row refuses to load files that are not the ones written for it.

The checksum is a SHA-256 over a manifest of the folder: each file's path relative to the
folder, its size and a digest of its content. Files up to `FULL_HASH_BYTES` are hashed
whole; a larger one (a cross-encoder's or a student's weights, up to gigabytes) by its size
and `SAMPLE_BLOCKS` blocks spread evenly through it, so a check reads at most a few tens of
MiB per file: enough to tell one model's weights from another's, not a guard against a
single flipped byte in the middle of a large file.

A verified folder is remembered for the process together with each file's size and
modification time, so checking it again (every load) costs one `stat` per file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from pathlib import Path

FULL_HASH_BYTES = 64 << 20
SAMPLE_BLOCKS = 32
BLOCK_BYTES = 1 << 20
READ_BYTES = 4 << 20

_verified: dict[tuple[str, str], tuple] = {}
_lock = threading.Lock()


def _files(folder: Path, skip: Iterable[str]) -> list[tuple[str, Path]]:
    skipped = set(skip)
    files = []
    for path in folder.rglob("*"):
        if path.is_file():
            relative = path.relative_to(folder).as_posix()
            if relative not in skipped:
                files.append((relative, path))
    return sorted(files)


def _content_digest(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= FULL_HASH_BYTES:
            while block := handle.read(READ_BYTES):
                digest.update(block)
        else:
            step = (size - BLOCK_BYTES) // (SAMPLE_BLOCKS - 1)
            for index in range(SAMPLE_BLOCKS):
                handle.seek(index * step)
                digest.update(handle.read(BLOCK_BYTES))
    return digest.hexdigest()


def _signature(files: list[tuple[str, Path]]) -> tuple:
    stats = [(relative, path.stat()) for relative, path in files]
    return tuple((relative, st.st_size, st.st_mtime_ns) for relative, st in stats)


def artifact_checksum(folder: Path, *, skip: Iterable[str] = ()) -> str:
    """The checksum of the files in `folder` (recursively), leaving out the relative
    paths in `skip`. An empty or missing folder has the checksum of an empty manifest."""
    folder = Path(folder)
    manifest = hashlib.sha256()
    for relative, path in _files(folder, skip) if folder.is_dir() else []:
        size = path.stat().st_size
        manifest.update(f"{relative}\0{size}\0{_content_digest(path, size)}\n".encode())
    return manifest.hexdigest()


def artifact_mismatch(folder: Path, checksum: str, *, skip: Iterable[str] = ()) -> str | None:
    """None when the files in `folder` have the checksum `checksum`; otherwise why not,
    in words. Checked once per process while no file changes size or time."""
    folder = Path(folder)
    skip = tuple(skip)
    if not folder.is_dir():
        return "the folder is missing"
    files = _files(folder, skip)
    if not files:
        return "the folder is empty"
    try:
        signature = _signature(files)
    except OSError as exc:
        return f"a file could not be read ({exc})"
    key = (str(folder.resolve()), checksum)
    with _lock:
        if _verified.get(key) == signature:
            return None
    try:
        actual = artifact_checksum(folder, skip=skip)
    except OSError as exc:
        return f"a file could not be read ({exc})"
    if actual != checksum:
        names = ", ".join(relative for relative, _ in files[:8])
        more = f" and {len(files) - 8} more" if len(files) > 8 else ""
        return (
            f"its files ({names}{more}) do not have the checksum recorded when it was saved "
            f"(recorded {checksum[:12]}…, found {actual[:12]}…)"
        )
    with _lock:
        _verified[key] = signature
    return None


def forget_verified() -> None:
    """Forget which folders were verified (tests)."""
    with _lock:
        _verified.clear()
