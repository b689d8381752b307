"""Settings for the test suite: PostgreSQL and Redis in CI, SQLite and no broker otherwise."""

from __future__ import annotations

from config.settings.base import *  # noqa: F403
from config.settings.base import env_bool

SECRET_KEY = "test-only-not-secret"  # noqa: S105
DEBUG = False
# Tests project explicitly; the ones that run a real worker turn this back on.
SHIPLOG_PROJECT_AFTER_COMMIT = env_bool("SHIPLOG_PROJECT_AFTER_COMMIT", False)
# Each test starts with an empty cache of its own (see tests/conftest.py), never a shared Redis.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# WhiteNoise warns about a missing STATIC_ROOT; tests serve nothing collected.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
