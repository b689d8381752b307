"""Settings shared by every deployment; each value can be set from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets admin.ModelAdmin[Model] and friends be subscripted at run time, as the stubs type them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("SHIPLOG_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a yes/no environment variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "releases",
    "incidents",
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
    "config.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "releases.context_processors.roles",
            ],
        },
    },
]


def database_from_url(url: str) -> dict[str, Any]:
    """Turn DATABASE_URL into Django's settings, with the options each backend needs."""
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    )
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock when a transaction starts, so two appends never
        # read the same chain head; WAL lets readers run beside the single writer.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config["CONN_MAX_AGE"] = 0
    elif engine == "django.db.backends.postgresql":
        config.setdefault("OPTIONS", {})
    else:
        raise ImproperlyConfigured(f"DATABASE_URL must be PostgreSQL or SQLite, not {engine}")
    return config


DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'shiplog.sqlite3'}")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Failed logins allowed per username and client address, and per address whatever the
# username (password spraying), within the window; beyond them the login forms refuse.
SHIPLOG_LOGIN_FAILURES_PER_USER = int(os.environ.get("SHIPLOG_LOGIN_FAILURES_PER_USER", "5"))
SHIPLOG_LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("SHIPLOG_LOGIN_FAILURES_PER_ADDRESS", "30"))
SHIPLOG_LOGIN_WINDOW_SECONDS = int(os.environ.get("SHIPLOG_LOGIN_WINDOW_SECONDS", "900"))
# How many proxies in front of Shiplog append to X-Forwarded-For; the client's address is read
# that many entries from the right. 0: REMOTE_ADDR is the client.
SHIPLOG_TRUSTED_PROXIES = int(os.environ.get("SHIPLOG_TRUSTED_PROXIES", "0"))
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# GitHub caps webhook payloads at 25 MB; only the hook views accept bodies that large (they read
# the stream themselves), every other view keeps Django's 2.5 MB limit.
SHIPLOG_MAX_WEBHOOK_BYTES = int(os.environ.get("SHIPLOG_MAX_WEBHOOK_BYTES", 25 * 1024 * 1024))

SHIPLOG_GITHUB_WEBHOOK_SECRET = os.environ.get("SHIPLOG_GITHUB_WEBHOOK_SECRET", "")
SHIPLOG_CIRCLECI_WEBHOOK_SECRET = os.environ.get("SHIPLOG_CIRCLECI_WEBHOOK_SECRET", "")
SHIPLOG_PUBLIC_URL = os.environ.get("SHIPLOG_PUBLIC_URL", "http://127.0.0.1:8000")
# Fernet keys for secrets at rest, newest first; `manage.py rotate_encryption_keys` moves every
# stored secret to the first. Empty: a key derived from SECRET_KEY (see releases.encryption).
SHIPLOG_ENCRYPTION_KEYS = env_list("SHIPLOG_ENCRYPTION_KEYS")

# Outbound API calls (deploy retries, CircleCI gap filling). GHES: https://<host>/api/v3.
SHIPLOG_CIRCLECI_API_URL = os.environ.get("SHIPLOG_CIRCLECI_API_URL", "https://circleci.com/api/v2")
SHIPLOG_GITHUB_API_URL = os.environ.get("SHIPLOG_GITHUB_API_URL", "https://api.github.com")
SHIPLOG_CI_API_TIMEOUT_SECONDS = float(os.environ.get("SHIPLOG_CI_API_TIMEOUT_SECONDS", "15"))

REDIS_URL = os.environ.get("REDIS_URL", "")
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "visibility_timeout": 3600,
        # A web process publishes after its commit; with Redis down it must give up at once
        # (the stream holds the work and beat brings it back), not retry for ever while the
        # webhook sender waits.
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
        "socket_connect_timeout": 1,
    }
else:
    # Kombu's filesystem transport needs no server: the embedded default runs a real worker.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Kombu's default is ./control, relative to wherever a process happens to start.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
# The cache holds short-lived counts (failed logins) that every web process must share: Redis
# in production; without it, files in var/ (shared by the processes of one machine).
if REDIS_URL:
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "shiplog",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            # Its incr() rewrites an entry with the default timeout: keep that the window.
            "TIMEOUT": SHIPLOG_LOGIN_WINDOW_SECONDS,
        }
    }

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "project-stream": {"task": "releases.tasks.project_stream", "schedule": 2.0},
    "postmortems-due": {"task": "incidents.tasks.postmortems_due", "schedule": 30.0},
    "reconcile-github-deliveries": {
        "task": "releases.tasks.reconcile_github_deliveries",
        "schedule": 600.0,
    },
    "retries-due": {"task": "releases.tasks.retries_due", "schedule": 30.0},
    "run-probes": {"task": "incidents.tasks.run_probes", "schedule": 60.0},
    "detect-stale-releases": {"task": "incidents.tasks.detect_stale_releases", "schedule": 300.0},
    "enrich-circleci-workflows": {
        "task": "releases.tasks.enrich_circleci_workflows",
        "schedule": 300.0,
    },
}
# Stop every automatic rerun at once, whatever the repositories' policies say.
SHIPLOG_RETRY_KILL_SWITCH = env_bool("SHIPLOG_RETRY_KILL_SWITCH", False)
# Ask a worker to project right after each append commits (besides the beat schedule).
SHIPLOG_PROJECT_AFTER_COMMIT = env_bool("SHIPLOG_PROJECT_AFTER_COMMIT", True)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "releases.authentication.BotTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shiplog API",
    "DESCRIPTION": "Release timelines, deploy gate, incidents and the event stream for CI bots.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
    ],
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Pages keep every script and style in static files served from this origin (htmx included),
# so the policy needs no 'unsafe-inline'; inline SVG images use data: URLs.
SHIPLOG_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}
SESSION_COOKIE_HTTPONLY = True
