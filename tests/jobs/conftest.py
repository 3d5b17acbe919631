"""A Redis broker the test fills by hand, and a worker started when the test says so."""

import pytest

from tests.conftest import IN_CI

QUEUE = "default"


class Broker:
    """The Redis list a queue is; a worker takes the oldest message first."""

    def __init__(self, client) -> None:
        self.client = client

    def take(self) -> bytes:
        """What a worker does when it takes the next message (and then dies with it)."""
        message = self.client.rpop(QUEUE)
        assert message is not None, "no message in the queue"
        return message

    def peek(self) -> list[bytes]:
        return list(reversed(self.client.lrange(QUEUE, 0, -1)))  # oldest first

    def redeliver(self, message: bytes, *, first: bool = False) -> None:
        (self.client.rpush if first else self.client.lpush)(QUEUE, message)


@pytest.fixture
def broker(transactional_db, settings):
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        if IN_CI:
            pytest.fail("CELERY_BROKER_URL is not Redis: Redis is required under CI")
        pytest.skip("Redis is not the broker (scripts/test.sh sets it when Redis answers)")
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    return Broker(client)


def worker():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    return start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    )
