"""The size limit on corpus uploads (settings.IMPORT_MAX_UPLOAD_BYTES), for the page and
the API alike.

Django's DATA_UPLOAD_MAX_MEMORY_SIZE leaves file parts out, so nothing else stops an
upload before it is on disk. A request is refused before its body is read when its
Content-Length says it is too big; a file that turns out bigger while it streams to disk
(a Content-Length that lied, or within the form's slack) is cut short there. Either way
the caller answers 413 and nothing is kept. Both must be in place before the body is
parsed, so the views using them are exempt from the CSRF middleware (which parses it)
and check CSRF themselves after.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

# The form's other fields and the multipart framing around the file.
FORM_SLACK_BYTES = 64 * 1024


def upload_limit() -> int:
    return settings.IMPORT_MAX_UPLOAD_BYTES


def upload_too_large_message(limit: int | None = None) -> str:
    limit = upload_limit() if limit is None else limit
    return (
        f"The file is larger than the upload limit of {_size(limit)} "
        f"(IMPORT_MAX_UPLOAD_BYTES). Compress it (.gz is read as it is) or import it "
        "on the server with manage.py import_corpus."
    )


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


class LimitedUploadHandler(FileUploadHandler):
    """Counts each uploaded file's bytes and stops the upload once one is over the limit
    (the files already received are closed and deleted by Django)."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.request.upload_too_large = True
            # Reads (and drops) the little that is left: the client then gets the answer.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file


def upload_guard(request: HttpRequest) -> bool:
    """Call before the request's body is read: False when its Content-Length is over the
    limit (answer 413 without reading it); otherwise installs the counting handler, after
    which `upload_refused(request)` says whether the file was cut short."""
    limit = upload_limit()
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + FORM_SLACK_BYTES:
        request.upload_too_large = True
        return False
    request.upload_handlers.insert(0, LimitedUploadHandler(request, limit))
    return True


def upload_refused(request: HttpRequest) -> bool:
    return bool(getattr(request, "upload_too_large", False))
