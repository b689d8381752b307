"""The suites `python -m bench` runs, by name, in the order `make bench` runs them."""

from __future__ import annotations

from bench.runner import Suite
from bench.suites import api, chaos, compare, ingest, lag, pages, parts, projection, targets

SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        ingest.SUITE,
        parts.SUITE,
        compare.SUITE,
        projection.SUITE,
        projection.POSTMORTEM,
        lag.SUITE,
        api.SUITE,
        pages.SUITE,
        # Last: it tabulates what the others just wrote.
        targets.SUITE,
    )
}
# Run only when named (`python -m bench chaos`, `make chaos`): long, and it breaks things.
OPT_IN: dict[str, Suite] = {chaos.SUITE.name: chaos.SUITE}
