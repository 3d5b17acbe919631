"""A fresh, migrated database for a benchmark's child processes (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def recreate_postgres(url: str) -> None:
    """Drop the database `url` names (closing its sessions) and create it empty."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrated_env(*, db: str, pg_url: str, work: Path, sqlite_name: str) -> dict[str, str]:
    """The environment of child processes that use a new database, migrated: PostgreSQL at
    `pg_url` (recreated), or an SQLite file in `work`; files under `work/var`."""
    env = {**os.environ, "SKD_VAR_DIR": str(work / "var"), "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    if db == "postgresql":
        recreate_postgres(pg_url)
        env["DATABASE_URL"] = pg_url
    else:
        env["SQLITE_PATH"] = str(work / sqlite_name)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    return env
