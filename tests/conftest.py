import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "atomic2020"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true"}
_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server"}


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL, leave out the tests that touch no database: they already ran on the
    SQLite leg and would only give the same answer again (SKD_TEST_EVERYTHING=1 keeps
    them). pytest-django refuses database access to a test that asks for none, so a test
    kept out here cannot depend on the database.

    A test marked `one_leg` (slow, and its point does not depend on the database engine)
    runs on the PostgreSQL leg only, when scripts/test.sh says that leg runs
    (SKD_POSTGRES_LEG_RUNS=1); otherwise on SQLite."""
    if os.environ.get("SKD_TEST_EVERYTHING"):
        return
    on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    if not on_postgres:
        if os.environ.get("SKD_POSTGRES_LEG_RUNS"):
            elsewhere = [item for item in items if item.get_closest_marker("one_leg")]
            if elsewhere:
                config.hook.pytest_deselected(items=elsewhere)
                items[:] = [item for item in items if not item.get_closest_marker("one_leg")]
        return
    kept, left_out = [], []
    for item in items:
        uses_database = item.get_closest_marker("django_db") is not None or bool(
            _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
        here = uses_database or item.get_closest_marker("one_leg") is not None
        (kept if here else left_out).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path):
    """Uploads, exports and the cache of each test live in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }


@pytest.fixture(autouse=True)
def _forget_api_tokens():
    """Each test starts with no remembered API tokens or relations (process caches)."""
    from accounts.authentication import forget_tokens
    from annotation.selectors import forget_relations
    from annotation.services.honesty import forget_crowds
    from annotation.services.leasing import forget_early_gold

    forget_crowds()
    forget_tokens()
    forget_relations()
    forget_early_gold()


@pytest.fixture(autouse=True)
def _builtin_relations(request):
    """Transactional tests empty every table when they end, including the relations the
    data migration loaded; put them back for the tests that come after. (Transactional
    tests therefore ask for the `transactional_db` fixture rather than the marker.)"""
    if {"transactional_db", "live_server"} & set(request.fixturenames):
        from corpora.services import relations_ensure_builtin

        request.getfixturevalue("transactional_db")
        relations_ensure_builtin()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        if IN_CI:
            pytest.fail(f"{SHARED_DATA} is missing")
        pytest.skip(f"{SHARED_DATA} is not here")
    return SHARED_DATA


@pytest.fixture
def researcher(db):
    from tests.factories import UserFactory

    return UserFactory(role="researcher")


@pytest.fixture
def annotator(db):
    from tests.factories import UserFactory

    return UserFactory(role="annotator")


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def annotator_client(client, annotator):
    client.force_login(annotator)
    return client


@pytest.fixture
def redis_celery_worker(transactional_db):
    """A real Celery worker (a thread of this process) consuming from the real Redis.

    scripts/test.sh points CELERY_BROKER_URL at Redis when Redis answers."""
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        if IN_CI:
            pytest.fail("CELERY_BROKER_URL is not Redis: Redis is required under CI")
        pytest.skip("Redis is not the broker (scripts/test.sh sets it when Redis answers)")
    import redis
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    redis.Redis.from_url(url).flushdb()
    with start_worker(
        app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10
    ):
        yield app


DEMO_CORPUS = Path(__file__).resolve().parents[1] / "demo" / "demo_corpus.jsonl"


@pytest.fixture
def labelled_corpus(db):
    """The shipped demo corpus (347 SKD-format triples) with its `valid` labels imported
    as judgments of the "imported" annotator, aggregated."""
    from annotation.services.labels import campaign_import_labels
    from corpora.models import Corpus
    from corpora.services import corpus_import

    corpus_import(path=DEMO_CORPUS, corpus_name="demo", fmt="skd")
    corpus = Corpus.objects.get(name="demo")
    campaign_import_labels(corpus=corpus)
    return corpus


@pytest.fixture
def redis_broker(transactional_db, settings):
    """The Redis broker the test settings name, emptied (real workers, redelivery); a skip,
    or under CI a failure, when the broker is not Redis."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        if IN_CI:
            pytest.fail("CELERY_BROKER_URL is not Redis: Redis is required under CI")
        pytest.skip("Redis is not the broker (scripts/test.sh sets it when Redis answers)")
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    return client
