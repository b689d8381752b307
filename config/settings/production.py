"""Production: every secret and address from the environment, HTTPS assumed behind a proxy."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, REDIS_URL, SECRET_KEY, env_bool

if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("production runs on PostgreSQL: set DATABASE_URL")
if not REDIS_URL:
    raise ImproperlyConfigured("production runs Celery on Redis: set REDIS_URL")

# Behind one TLS-terminating proxy, which sets X-Forwarded-Proto and appends to X-Forwarded-For.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SHIPLOG_TRUSTED_PROXIES = int(os.environ.get("SHIPLOG_TRUSTED_PROXIES", "1"))
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
