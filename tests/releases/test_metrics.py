"""DORA's four keys and time blocked, computed from release and incident facts. Table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from releases.metrics import (
    DoraFigures,
    IncidentFacts,
    ReleaseFacts,
    dora,
    duration_text,
    month_start,
    time_blocked,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def shipped(key: str, started: float, deployed: float) -> ReleaseFacts:
    """Return a release tagged `started` days ago and deployed `deployed` days ago."""
    return release(
        key,
        started_at=days_ago(started),
        tagged_at=days_ago(started),
        deployed_at=days_ago(deployed),
    )


def release(
    key: str, state: str = "deployed", flags: tuple[str, ...] = (), **times: datetime | None
) -> ReleaseFacts:
    return ReleaseFacts(repository="o/r", ref_key=f"tag:{key}", state=state, flags=flags, **times)


def incident(key: str, opened: datetime, **times: datetime | None) -> IncidentFacts:
    return IncidentFacts(repository="o/r", release_key=f"tag:{key}", opened_at=opened, **times)


# Each row: releases, incidents, and the figures expected over the last 30 days.
DORA_CASES = [
    pytest.param([], [], DoraFigures(30, 0, None, 0, 0, None, 0), id="nothing happened"),
    pytest.param(
        [
            release(
                "1.0", started_at=days_ago(10), tagged_at=days_ago(10), deployed_at=days_ago(9)
            ),
            release(
                "1.1", started_at=days_ago(5), tagged_at=days_ago(5), deployed_at=days_ago(4.5)
            ),
            release(
                "1.2", started_at=days_ago(2), tagged_at=days_ago(2), deployed_at=days_ago(1.5)
            ),
        ],
        [],
        DoraFigures(30, 3, timedelta(hours=12), 3, 0, None, 0),
        id="three clean deploys: median lead time, no failure",
    ),
    pytest.param(
        [
            release("0.9", started_at=days_ago(40), deployed_at=days_ago(35)),
            release(
                "1.0", started_at=days_ago(40), tagged_at=days_ago(40), deployed_at=days_ago(1)
            ),
        ],
        [],
        DoraFigures(30, 1, timedelta(days=39), 0, 0, None, 0),
        id="only deploys inside the window count; a change started before it is not one",
    ),
    pytest.param(
        [
            release(
                "0.26.2",
                started_at=days_ago(3),
                tagged_at=days_ago(3),
                deployed_at=days_ago(0.5),
                blocked_at=days_ago(2.9),
                unblocked_at=days_ago(0.6),
            ),
            release("0.26.3", started_at=days_ago(2), deployed_at=days_ago(1.9)),
        ],
        [
            incident("0.26.2", days_ago(2.9), began_at=days_ago(2.95), resolved_at=days_ago(0.45)),
        ],
        DoraFigures(30, 2, timedelta(days=1.3), 2, 1, timedelta(days=2.5), 1),
        id="the Pyodide shape: blocked, incident, restored",
    ),
    pytest.param(
        [
            release("a", state="running", started_at=days_ago(1)),
            release("b", state="pending", started_at=days_ago(1)),
            release("c", state="failed", started_at=days_ago(1)),
            release("d", state="partially_deployed", started_at=days_ago(1)),
            release("e", state="deployed", started_at=days_ago(1), deployed_at=days_ago(0.9)),
        ],
        [],
        DoraFigures(30, 1, timedelta(days=0.1), 3, 2, None, 0),
        id="releases still running are not settled changes; failed and half-shipped ones fail",
    ),
    pytest.param(
        [release("x", started_at=days_ago(6), deployed_at=days_ago(5))],
        [incident("x", days_ago(5.5))],
        DoraFigures(30, 1, timedelta(days=1), 1, 1, None, 0),
        id="an incident alone makes a change a failure; unresolved, it restores nothing",
    ),
    pytest.param(
        [release("y", state="deployed", started_at=days_ago(2), flags=("blocked",))],
        [incident("z", days_ago(50), resolved_at=days_ago(1))],
        DoraFigures(30, 0, None, 1, 1, timedelta(days=49), 1),
        id="time to restore starts when the problem did, here when it opened",
    ),
]


@pytest.mark.parametrize(("releases", "incidents", "expected"), DORA_CASES)
def test_dora_figures(releases, incidents, expected):
    assert dora(releases, incidents, now=NOW, days=30) == expected


def test_rates_are_derived_from_counts():
    figures = DoraFigures(28, 8, None, 4, 1, None, 0)
    assert figures.deployments_per_week == 2
    assert figures.change_failure_rate == 0.25
    assert DoraFigures(7, 0, None, 0, 0, None, 0).change_failure_rate is None


def test_a_window_must_last_a_day():
    with pytest.raises(ValueError, match="at least one day"):
        dora([], [], now=NOW, days=0)


MONTH = month_start(NOW)
HOURS_6 = timedelta(hours=6)
DAY = timedelta(days=1)
BLOCKED_CASES = [
    pytest.param([], timedelta(0), id="nothing blocked"),
    pytest.param(
        [release("1", blocked_at=days_ago(3), unblocked_at=days_ago(1))],
        timedelta(days=2),
        id="blocked and unblocked inside the month",
    ),
    pytest.param(
        [release("1", blocked_at=days_ago(2))],
        timedelta(days=2),
        id="still blocked: counts until now",
    ),
    pytest.param(
        [
            release(
                "1", blocked_at=MONTH - timedelta(days=4), unblocked_at=MONTH + timedelta(hours=6)
            )
        ],
        timedelta(hours=6),
        id="blocked last month: only this month's part counts",
    ),
    pytest.param(
        [
            release(
                "1", blocked_at=MONTH - timedelta(days=9), unblocked_at=MONTH - timedelta(days=1)
            )
        ],
        timedelta(0),
        id="blocked and unblocked last month",
    ),
    pytest.param(
        [
            release("1", blocked_at=days_ago(3), unblocked_at=days_ago(2)),
            release("2", blocked_at=days_ago(1)),
            release("3"),
        ],
        timedelta(days=2),
        id="summed over releases",
    ),
]


@pytest.mark.parametrize(("releases", "expected"), BLOCKED_CASES)
def test_time_blocked_this_month(releases, expected):
    assert time_blocked(releases, start=MONTH, end=NOW) == expected


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (None, "—"),
        (timedelta(seconds=30), "30 s"),
        (timedelta(minutes=45, seconds=10), "45 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=3, minutes=5), "3 h 5 min"),
        (timedelta(days=2, hours=17, minutes=40), "2 d 17 h"),
        (timedelta(days=4), "4 d"),
    ],
)
def test_durations_read_as_people_say_them(span, text):
    assert duration_text(span) == text


def test_the_month_starts_at_midnight_on_the_first():
    assert month_start(NOW) == datetime(2026, 11, 1, tzinfo=UTC)
