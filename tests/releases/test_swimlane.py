"""Swimlanes drawn from entries: the time axis, lanes and bars, markers, the blocking chain."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from releases.policy import parse
from releases.projections import Entry, derive
from releases.swimlane import CHART_WIDTH, GAP_WIDTH, LABEL_WIDTH, TimeScale, layout, render_svg
from tests.releases import factories as f

T0 = datetime(2024, 7, 26, 13, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


SCALE_CASES = [
    pytest.param([(0, 60)], 1, id="one busy hour"),
    pytest.param([(0, 30), (50, 90)], 1, id="a short gap stays to scale"),
    pytest.param([(0, 120), (3 * 24 * 60, 3 * 24 * 60 + 30)], 2, id="three quiet days cut out"),
    pytest.param([(0, 10), (200, 210), (400, 410)], 3, id="two long gaps"),
    pytest.param([(5, 5)], 1, id="a single moment"),
]


@pytest.mark.parametrize(("spans", "segments"), SCALE_CASES)
def test_the_time_axis_cuts_out_long_quiet_stretches(spans, segments):
    scale = TimeScale.build([(at(a), at(b)) for a, b in spans], x=100, width=800)
    assert len(scale.segments) == segments
    assert scale.segments[0].x == 100
    last = scale.segments[-1]
    assert last.x + last.width == pytest.approx(900)
    assert len(scale.breaks()) == segments - 1
    xs = [scale.x(at(minute)) for minute in sorted({m for span in spans for m in span})]
    assert xs == sorted(xs)
    assert all(100 <= x <= 900 for x in xs)


def test_a_break_says_how_long_it_leaves_out():
    scale = TimeScale.build([(at(0), at(120)), (at(4320), at(4350))], x=0, width=1000)
    ((x, left_out),) = scale.breaks()
    assert left_out == timedelta(minutes=4200)
    first = scale.segments[0]
    assert x == pytest.approx(first.width)
    assert scale.segments[1].x == pytest.approx(first.width + GAP_WIDTH)
    # Busy time shares the width in proportion: 120 minutes against 30.
    assert first.width / scale.segments[1].width == pytest.approx(4.0)


def test_ticks_name_the_day_at_the_start_of_each_stretch():
    scale = TimeScale.build([(at(0), at(120)), (at(4320), at(4350))], x=0, width=1000)
    labels = [label for _, label in scale.ticks()]
    assert labels[0] == "26 Jul 13:00"
    assert "29 Jul" in next(label for label in labels[1:] if "Jul" in label)
    assert sum("Jul" in label for label in labels) == 2


def test_a_scale_needs_something_to_show():
    with pytest.raises(ValueError, match="at least one span"):
        TimeScale.build([])


def entries_of(events: list[dict[str, Any]]) -> list[Entry]:
    from releases.projections import StreamRow, entry_from_row, merge

    merged: dict[str, Entry] = {}
    for position, kwargs in enumerate(events, start=1):
        row = StreamRow(
            position,
            f"00000000-0000-0000-0000-{position:012d}",
            kwargs["source"],
            kwargs["event_type"],
            kwargs["repository"],
            kwargs["sha"],
            kwargs["branch"],
            kwargs["tag"],
            kwargs["occurred_at"],
            kwargs["data"],
        )
        entry = entry_from_row(row)
        if entry is not None:
            merged[entry.entry_key] = merge(merged.get(entry.entry_key), entry)
    # The CircleCI tag pipeline names no tag: the projector joins it by commit.
    return [replace(e, tag=e.tag or f.TAG) for e in merged.values()]


POLICY = parse(f.PYODIDE_POLICY)


def draw(events: list[dict[str, Any]], now: datetime | None = None):
    entries = entries_of(events)
    view = derive("tag", entries, POLICY)
    lanes = layout(
        entries,
        view=view,
        role=lambda e: POLICY.role(e.platform, e.name, e.workflow_name),
        now=now or f.at(4 * 24 * 60),
        release_name="pyodide/pyodide 0.26.2",
    )
    assert lanes is not None
    return lanes, view


def test_the_blocked_release_draws_its_blocking_chain():
    lanes, view = draw(f.pyodide_story())
    assert view.state == "blocked"
    titles = [lane.title for lane in lanes.lanes]
    assert "CircleCI · build-and-deploy" in titles
    assert "GitHub Actions · deploy-release" in titles
    blockers = [bar for bar in lanes.bars if bar.blocker]
    assert len(blockers) == 1
    assert blockers[0].outcome == "failure"
    assert "test-packages-firefox on CircleCI" in blockers[0].title
    (ghost,) = [bar for bar in lanes.bars if bar.ghost]
    assert ghost.outcome == "never_ran"
    assert ghost.label == "never ran"
    assert ghost.x >= blockers[0].x + blockers[0].width
    (arrow,) = lanes.arrows
    assert arrow.x1 == pytest.approx(blockers[0].x + blockers[0].width)
    assert arrow.x2 == pytest.approx(ghost.x)
    assert lanes.blockers == ("test-packages-firefox",)
    assert lanes.never_ran == ("deploy-release",)
    cci = next(lane for lane in lanes.lanes if lane.title.startswith("CircleCI"))
    assert [row.label for row in cci.rows if row.never_ran] == ["deploy-release"]
    assert "Blocking chain: test-packages-firefox (failure) blocks deploy-release" in lanes.summary
    kinds = {marker.kind for marker in lanes.markers}
    assert {"tag", "release", "deploy"} <= kinds
    assert lanes.bands[0].label.startswith("blocked ")
    assert all(LABEL_WIDTH <= bar.x <= LABEL_WIDTH + CHART_WIDTH for bar in lanes.bars)


def test_the_rerun_draws_a_retry_and_no_ghost_once_deployed():
    lanes, view = draw(f.pyodide_story() + f.rerun_story())
    assert view.state == "deployed"
    assert not [bar for bar in lanes.bars if bar.ghost]
    assert not lanes.arrows
    retries = [bar for bar in lanes.bars if bar.retry]
    assert len(retries) == 1
    assert "test-packages-firefox" in retries[0].title
    assert retries[0].outcome == "success"
    assert any(marker.kind == "retry" for marker in lanes.markers)
    assert lanes.breaks  # three days between the failure and the rerun are left out
    assert lanes.bands[0].label.startswith("was blocked 2 d")


def test_a_running_job_reaches_now():
    events = [
        f.event("github", "tag", key="t", name=f.TAG, status="created", sha=f.SHA, tag=f.TAG),
        f.gh_job("build", "main", "in_progress", job_id=1, run_id=1, minutes=5),
    ]
    lanes, _ = draw(events, now=f.at(65))
    (bar,) = [bar for bar in lanes.bars if not bar.ghost]
    assert bar.outcome == "running"
    assert bar.x + bar.width == pytest.approx(LABEL_WIDTH + CHART_WIDTH)


def test_nothing_timed_draws_nothing():
    assert layout([], view=derive("tag", [], POLICY), role=lambda e: "", now=T0) is None


def test_the_svg_has_no_inline_style_and_escapes_names():
    hostile = f.cci_job('<script>alert("x")</script>', "failed", number=1, minutes=99)
    events = [*f.pyodide_story(), hostile]
    lanes, _ = draw(events)
    svg = render_svg(lanes)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert not re.search(r"\sstyle=", svg)
    assert 'role="img"' in svg
    assert '<desc id="swimlane-desc">' in svg
    # Colour is never the only signal: failures are hatched, blockers outlined and named.
    assert "url(#hatch-failure)" not in svg.split("</defs>")[1]  # colours live in the CSS
    assert 'class="bar bar--failure bar--blocker"' in svg
    assert "⚠ test-packages-firefox" in svg
    assert "⊘ deploy-release" in svg
