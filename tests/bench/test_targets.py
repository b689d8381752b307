"""The targets table reads each suite's newest results and says which targets hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.suites import targets


def _write(folder: Path, suite: str, stamp: str, **data: Any) -> None:
    payload = {"suite": suite, "machine": {"measured_at": f"{stamp}+00:00"}, **data}
    name = stamp.replace("-", "").replace(":", "")
    (folder / f"{suite}-{name}Z.json").write_text(json.dumps(payload))


def _lag(p50: float, p99: float) -> dict[str, Any]:
    return {"lag": {"lag_ms": {"p50": p50, "p99": p99}}}


def _projection(rebuild_s: float, peak_mb: float | None) -> dict[str, Any]:
    rebuild: dict[str, Any] = {"events": 1_000_000, "seconds": rebuild_s}
    if peak_mb is not None:
        rebuild["peak_rss_mb"] = peak_mb
    return {
        "rebuild": rebuild,
        "catch_up": [
            {"detection": False, "events": 100_000, "seconds": 8.0},
            {"detection": True, "events": 100_000, "seconds": 9.2},
        ],
        "api": {"timeline": {"p99_ms": 20.0}, "gate": {"p99_ms": 60.0}},
    }


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(targets, "RESULTS_DIR", tmp_path)
    return tmp_path


def _by_target(found: list[targets.Row]) -> dict[str, targets.Row]:
    return {row.target: row for row in found}


def test_the_newest_run_of_a_suite_is_the_one_reported(results):
    _write(results, "lag", "2026-11-26T10:00:00", **_lag(10, 2_000))
    _write(results, "lag", "2026-11-27T10:00:00", **_lag(10, 40))

    row = _by_target(targets.rows(targets.newest_results()))[
        "catch-up lag p99 ≤ 1 s (200 events/s, one 2 s writer)"
    ]

    assert row.met is True
    assert row.measured == "p99 40 ms (p50 10 ms)"
    assert row.measured_at.startswith("2026-11-27T10:00")


def test_a_missed_target_says_why_and_a_met_one_does_not(results):
    _write(results, "projection", "2026-11-27T10:00:00", **_projection(45.0, 250.0))

    found = targets.rows(targets.newest_results())
    rows = _by_target(found)
    text = targets.markdown(found)

    assert rows["rebuild of 1,000,000 events < 60 s"].met is True
    assert rows["rebuild of 1,000,000 events ≤ 30 s (stretch 10 s)"].met is False
    assert rows["catch-up ≥ 10,000 events/s"].measured == "12,500/s"
    assert rows["detection adds < 20% to catch-up"].measured == "+15%"
    assert rows["gate API p99 < 50 ms at 1,000,000 events (test client)"].met is False
    assert rows["memory of a rebuild of 1,000,000 events < 300 MB"].measured == "250 MB peak RSS"
    rebuild_30 = next(line for line in text.splitlines() if "≤ 30 s" in line)
    assert "**no**" in rebuild_30
    assert targets.WHY["rebuild_30"] in rebuild_30
    rebuild_60 = next(line for line in text.splitlines() if "< 60 s" in line)
    assert "| yes |" in rebuild_60
    assert targets.WHY["rebuild_30"] not in rebuild_60


def test_a_suite_never_run_and_a_figure_never_recorded_are_not_called_met(results):
    _write(results, "projection", "2026-11-27T10:00:00", **_projection(20.0, None))

    found = targets.rows(targets.newest_results())
    rows = _by_target(found)

    assert rows["memory of a rebuild of 1,000,000 events < 300 MB"].met is None
    assert rows["the api suite's targets"].measured == "never run here"
    assert rows["the api suite's targets"].met is None
    assert "| — |" in targets.markdown(found)


def test_an_unreadable_results_file_is_skipped(results):
    (results / "lag-20261127T100000Z.json").write_text("{not json")
    _write(results, "lag", "2026-11-26T10:00:00", **_lag(10, 40))

    assert targets.newest_results()["lag"]["lag"]["lag_ms"]["p99"] == 40


def test_a_quick_run_never_stands_for_a_full_one(results):
    _write(results, "lag", "2026-11-26T10:00:00", **_lag(10, 40))
    _write(results, "lag", "2026-11-27T10:00:00", partial=True, **_lag(10, 2_000))

    assert targets.newest_results()["lag"]["lag"]["lag_ms"]["p99"] == 40
