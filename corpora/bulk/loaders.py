"""The loader for the database in use."""

from __future__ import annotations

from django.db import connection

from .postgres import PostgresLoader
from .sqlite import SqliteLoader


def make_loader(*, corpus_id: int, origin: str, job_id: int | None):
    if connection.vendor == "postgresql":
        return PostgresLoader(corpus_id=corpus_id, origin=origin, job_id=job_id)
    if connection.vendor == "sqlite":
        return SqliteLoader(corpus_id=corpus_id, origin=origin, job_id=job_id)
    raise NotImplementedError(f"bulk import is not supported on {connection.vendor}")
