"""The suites `python -m bench` runs, by name, in the order `make bench` runs them."""

from __future__ import annotations

from bench.runner import Suite
from bench.suites import ingest, parts, projection

SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (ingest.SUITE, parts.SUITE, projection.SUITE, projection.POSTMORTEM)
}
