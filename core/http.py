"""Small helpers for pages."""

from django.http import HttpRequest


def wants_fragment(request: HttpRequest) -> bool:
    """Whether an htmx request asked for a fragment of the page rather than the whole page.
    A history-restore request (back button after a cache miss) needs the whole page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request
