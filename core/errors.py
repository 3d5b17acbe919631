"""The one application error.

A service raises `AppError` (or an app's subclass of it) when the input breaks a rule:
what was wrong, in words a user can act on, and where (`field`). It is turned into a
response once for each door: DRF's exception handler, the page middleware and the
management commands, so the page, the API and the CLI refuse the same input with the
same message.
"""

from __future__ import annotations


class AppError(Exception):
    """A rule the input broke. `status` is the HTTP status the API and pages answer with;
    `code` a short machine-readable name; `field` the input field it is about, if one."""

    status: int = 400
    code: str = "invalid"

    def __init__(
        self,
        message: str = "",
        *,
        field: str | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    """The input is fine but the state of things refuses it now (closed, busy, taken)."""

    status = 409
    code = "conflict"
