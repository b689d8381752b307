"""The embedded default: SQLite, a broker with no server, debug pages on localhost."""

from __future__ import annotations

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, env_bool

DEBUG = env_bool("DEBUG", True)
# A local install must not need any configuration; production.py refuses to start without one.
SECRET_KEY = os.environ.get("SECRET_KEY") or "local-development-only-not-secret"
VAR_DIR.mkdir(parents=True, exist_ok=True)
