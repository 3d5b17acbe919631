"""The one application error, mapped once for each door.

- API: `api_exception_handler` (DRF's EXCEPTION_HANDLER) answers an AppError with its
  status and `{"detail": message, "code": code, "field": field}`.
- Pages: `AppErrorMiddleware` renders `error.html` with the message and status (a small
  fragment for htmx requests).
- CLI: `AppCommand`, the base of the management commands, turns it into CommandError.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import AppError
from .http import wants_fragment


def app_error_body(exc: AppError) -> dict:
    return {"detail": exc.message, "code": exc.code, "field": exc.field}


def api_exception_handler(exc, context):
    if isinstance(exc, AppError):
        return Response(app_error_body(exc), status=exc.status)
    return exception_handler(exc, context)


class AppErrorMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, AppError):
            return None
        template = "error.html#message" if wants_fragment(request) else "error.html"
        return render(request, template, {"error": exc}, status=exc.status)


class AppCommand(BaseCommand):
    """A management command whose AppErrors end it the way CommandError does: the message
    on standard error and exit status 1, no traceback."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except AppError as exc:
            raise CommandError(str(exc)) from None
