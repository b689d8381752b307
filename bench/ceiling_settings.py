"""Production settings with the ceiling's URLconf: the same stack, a view that needs no DB."""

from __future__ import annotations

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.ceiling"
