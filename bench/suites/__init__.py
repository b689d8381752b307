"""The suites `python -m bench` runs, by name, in the order `make bench` runs them."""

from __future__ import annotations

from bench.runner import Suite
from bench.suites import api, ingest, pages, parts

SUITES: dict[str, Suite] = {
    suite.name: suite for suite in (ingest.SUITE, parts.SUITE, pages.SUITE, api.SUITE)
}
