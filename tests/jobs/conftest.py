"""A Redis broker the test fills by hand, and a worker started when the test says so."""

import pytest

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
def broker(redis_broker):
    return Broker(redis_broker)


def worker():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    return start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    )
