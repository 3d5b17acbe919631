import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_the_deploy_check_with_no_warnings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "skd.example.org",
        "SKD_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _environment(tmp_path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return env | {"SKD_VAR_DIR": str(tmp_path)} | values


@pytest.mark.parametrize("key", [None, "", "  "])
def test_production_refuses_to_start_without_a_secret_key_and_says_how_to_make_one(tmp_path, key):
    env = _environment(tmp_path, DJANGO_ENV="production")
    if key is not None:
        env["DJANGO_SECRET_KEY"] = key
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()
    assert "django.core.exceptions.ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in "\n".join(
        last[-4:]
    )
    assert "secrets.token_urlsafe(50)" in result.stderr
    assert "KeyError" not in result.stderr


def _allowed_hosts(tmp_path, **values: str) -> list[str]:
    script = "from django.conf import settings; print(','.join(settings.ALLOWED_HOSTS))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=_environment(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", **values),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def test_testserver_is_an_allowed_host_in_development_only(tmp_path):
    assert "testserver" in _allowed_hosts(tmp_path)
    production = _allowed_hosts(
        tmp_path, DJANGO_ENV="production", DJANGO_SECRET_KEY=secrets.token_urlsafe(50)
    )
    assert production == ["localhost", "127.0.0.1", "[::1]"]
    named = _allowed_hosts(
        tmp_path,
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="skd.example.org, api.example.org",
    )
    assert named == ["skd.example.org", "api.example.org"]


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_immediate_writes():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
