"""Settings, all read from the environment.

DJANGO_ENV=production switches on the deployment hardening that
`manage.py check --deploy` asks for; everything else has a default that runs
on one machine with no services (SQLite in WAL mode, a filesystem broker).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SKD_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the SQLite file, uploads, broker folders


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = os.environ.get("DJANGO_ENV", "development") == "production"

if PRODUCTION:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
    if not SECRET_KEY.strip():
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set: production (DJANGO_ENV=production) needs a secret "
            "key of its own. Make one with\n"
            "    python -c 'import secrets; print(secrets.token_urlsafe(50))'\n"
            "and set it in the environment: DJANGO_SECRET_KEY=<that key>."
        )
else:
    SECRET_KEY = os.environ.get(
        "DJANGO_SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production-8f3b2c1d9e7a6b5c"
    )

DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)
# Django's test client calls itself "testserver": allowed in development and tests only.
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS",
    "localhost,127.0.0.1,[::1]" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver",
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "core",
    "accounts",
    "jobs",
    "corpora",
    "generation",
    "annotation",
    "critic",
    "distillation",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.handlers.AppErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    }
]

# --- Database -----------------------------------------------------------------
# SQLite in WAL mode unless DATABASE_URL says otherwise. Writes take the lock
# up front (BEGIN IMMEDIATE) so concurrent writers queue on busy_timeout
# instead of failing halfway with "database is locked".
SQLITE_PATH = Path(os.environ.get("SQLITE_PATH", VAR_DIR / "db.sqlite3"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# The judging path's hot statements run as prepared statements on PostgreSQL (core.db);
# off (0) behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
DB_PREPARED_STATEMENTS = env_bool("SKD_DB_PREPARED_STATEMENTS", True)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    if DB_PREPARED_STATEMENTS and "postgresql" in DATABASES["default"]["ENGINE"]:
        # psycopg prepares nothing while its threshold is None (Django's default). Django's
        # own cursors bind on the client and never prepare, whatever the threshold: with
        # this one, only the statements core.db asks to prepare are.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 1 << 30
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                    "PRAGMA cache_size=-65536;"
                ),
            },
            # A file, not :memory:, so a Celery worker thread in the tests sees
            # the same test database; one per test process, so runs can overlap.
            "TEST": {"NAME": str(VAR_DIR / f"test_db_{os.getpid()}.sqlite3")},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files --------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request until it exists
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(os.environ.get("SKD_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
# Models, embeddings and label snapshots: a folder every worker can read
# (on several machines, a shared mount).
ARTIFACT_ROOT = Path(os.environ.get("SKD_ARTIFACT_ROOT", VAR_DIR / "artifacts"))
# A new critic version is trained after this many new aggregated labels.
# Join links (annotation): requests to join pages allowed per client address and minute
# (0: no limit). Behind a proxy, make REMOTE_ADDR the client's address.
JOIN_RATE_PER_MINUTE = int(os.environ.get("SKD_JOIN_RATE_PER_MINUTE", "60"))
CRITIC_RETRAIN_EVERY = int(os.environ.get("CRITIC_RETRAIN_EVERY", "200"))
# Corpus uploads go to disk, not memory: a 6.5M-triple file is ~1 GB.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Corpus imports. What reading one file may cost (corpora.formats.ReadLimits): the
# longest line, the bytes read once decompressed, the compression ratio, the blank lines
# in a row. The largest upload taken (a 413 beyond it; DATA_UPLOAD_MAX_MEMORY_SIZE leaves
# files out), and how many days a failed import's upload is kept for "Import the valid
# lines" (a succeeded import's upload is deleted at once).
IMPORT_MAX_LINE_BYTES = int(os.environ.get("SKD_IMPORT_MAX_LINE_BYTES", str(1 << 20)))
IMPORT_MAX_BYTES = int(os.environ.get("SKD_IMPORT_MAX_BYTES", str(16 << 30)))
IMPORT_MAX_RATIO = int(os.environ.get("SKD_IMPORT_MAX_RATIO", "100"))
IMPORT_MAX_BLANK_LINES = int(os.environ.get("SKD_IMPORT_MAX_BLANK_LINES", "100000"))
IMPORT_MAX_UPLOAD_BYTES = int(os.environ.get("SKD_IMPORT_MAX_UPLOAD_BYTES", str(8 << 30)))
IMPORT_UPLOAD_RETENTION_DAYS = float(os.environ.get("SKD_IMPORT_UPLOAD_RETENTION_DAYS", "7"))

# --- API ----------------------------------------------------------------------
# Endpoints for benchmarks (core.bench): off unless a benchmark turns them on.
BENCH_ENDPOINTS = env_bool("SKD_BENCH_ENDPOINTS", False)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.authentication.CachedTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.handlers.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Knowledge distillation studio API",
    "DESCRIPTION": "Corpora of commonsense triples: import, query, export.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ExportFormatEnum": "corpora.exporting.EXPORT_FORMATS",
        "SamplingEnum": "annotation.models.Campaign.Sampling",
        "LearningSamplingEnum": "critic.services.learning.LEARNING_SAMPLINGS",
    },
}

# --- Celery -------------------------------------------------------------------
# Redis when CELERY_BROKER_URL is set; otherwise kombu's filesystem transport,
# which needs no server and works across processes on one machine.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 6 * 3600}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True  # job state lives in the Job table
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 5 * 3600
CELERY_TASK_SOFT_TIME_LIMIT = 5 * 3600 - 60
CELERY_TASK_DEFAULT_QUEUE = "default"
# A student's training runs in slices this long, then checkpoints and queues itself again.
STUDENT_TRAIN_SLICE_SECONDS = int(
    os.environ.get("SKD_STUDENT_TRAIN_SLICE_SECONDS", CELERY_TASK_SOFT_TIME_LIMIT - 15 * 60)
)
# Processes a student trains on, data-parallel under torchrun: 0 = one per GPU of the
# worker's host when it has several, else the worker's own process; N forces N (on a CPU
# host: N CPU processes with the gloo backend, as the tests do).
STUDENT_TRAIN_PROCESSES = int(os.environ.get("SKD_STUDENT_TRAIN_PROCESSES", "0"))
CELERY_TASK_ROUTES: dict = {}  # a job's queue is chosen when it is queued (Job.queue)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "jobs.tasks.reap_stale_jobs", "schedule": 60.0},
    # Aggregate campaigns with new judgments and retrain critics that have enough new labels.
    "critic-tick": {"task": "critic.tick", "schedule": 15.0},
    # Uploads, partial exports, load tables and empty corpora that dead jobs left.
    "remove-import-leftovers": {"task": "corpora.remove_leftovers", "schedule": 900.0},
    # Ranges of a shared rescoring whose worker died, queued again for another worker.
    "requeue-stale-scoring-ranges": {"task": "critic.requeue_stale_ranges", "schedule": 30.0},
}
# A cross-encoder rescoring is split into ranges of this many triples, each a task on the
# gpu queue that any worker takes; a range's worker beats every CRITIC_RANGE_HEARTBEAT_SECONDS
# and one silent for CRITIC_RANGE_STALE_AFTER_SECONDS is given to another worker, at most
# CRITIC_RANGE_MAX_ATTEMPTS times before the rescoring fails.
CRITIC_RESCORE_RANGE = int(os.environ.get("SKD_CRITIC_RESCORE_RANGE", "100000"))
CRITIC_RANGE_HEARTBEAT_SECONDS = float(os.environ.get("SKD_CRITIC_RANGE_HEARTBEAT_SECONDS", "10"))
CRITIC_RANGE_STALE_AFTER_SECONDS = float(
    os.environ.get("SKD_CRITIC_RANGE_STALE_AFTER_SECONDS", "120")
)
CRITIC_RANGE_MAX_ATTEMPTS = int(os.environ.get("SKD_CRITIC_RANGE_MAX_ATTEMPTS", "5"))
JOB_STALE_AFTER_SECONDS = int(os.environ.get("JOB_STALE_AFTER_SECONDS", "300"))
# Each worker writes a heartbeat into the cache this often (jobs.workers), so a queued job's
# page can say whether a worker is running.
WORKER_HEARTBEAT_SECONDS = float(os.environ.get("SKD_WORKER_HEARTBEAT_SECONDS", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Production hardening -----------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

# --- Cache (live job progress is shared between web and worker processes) ------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
