"""Token authentication that remembers recent tokens for a few seconds.

Annotation clients send two requests per judgment; looking the token and its
user up each time was a fifth of the database work of judging through the API.
A revoked token or a deactivated user is refused again after at most
TOKEN_CACHE_SECONDS.
"""

from __future__ import annotations

import threading
import time

from rest_framework.authentication import TokenAuthentication

TOKEN_CACHE_SECONDS = 30
TOKEN_CACHE_SIZE = 10_000

_recent: dict[str, tuple[float, object, object]] = {}
_lock = threading.Lock()


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        now = time.monotonic()
        hit = _recent.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        with _lock:
            if len(_recent) >= TOKEN_CACHE_SIZE:
                _recent.clear()
            _recent[key] = (now + TOKEN_CACHE_SECONDS, user, token)
        return user, token


def forget_tokens() -> None:
    """Drop every remembered token (tests; a deployment that revokes tokens in bulk)."""
    with _lock:
        _recent.clear()
