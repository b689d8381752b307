"""The Pyodide story moved in time: every moment shifts, nothing else changes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from releases.ingest import NORMALISERS
from releases.scenarios.pyodide import recovery, release_0_26_2, shift_to_end_at, the_whole_story
from releases.scenarios.story import shift_times

SHIFT = timedelta(days=853, hours=3, minutes=7, seconds=1)


@pytest.mark.parametrize(
    ("value", "shifted"),
    [
        ("2024-07-26T13:54:52Z", "2024-07-27T15:54:52Z"),
        ("2024-07-26T13:54:55.642Z", "2024-07-27T15:54:55.642Z"),
        ("2024-07-26T13:54:55.642123Z", "2024-07-27T15:54:55.642123Z"),
        ("2024-07-26T15:54:30+02:00", "2024-07-27T17:54:30+02:00"),
        ("2024-07-26", "2024-07-26"),
        ("refs/tags/0.26.2", "refs/tags/0.26.2"),
    ],
)
def test_moments_shift_in_the_format_they_were_written(value, shifted):
    assert shift_times({"at": value}, timedelta(days=1, hours=2)) == {"at": shifted}


def test_unix_times_shift_only_under_keys_that_are_moments():
    payload = {"pushed_at": 1_721_999_692, "id": 1_550_871, "size": 62415, "flag": True}
    moved = shift_times(payload, timedelta(hours=1))
    assert moved == {
        "pushed_at": 1_721_999_692 + 3600,
        "id": 1_550_871,
        "size": 62415,
        "flag": True,
    }


def test_a_shifted_story_is_the_same_deliveries_later():
    original, moved = the_whole_story(), the_whole_story(SHIFT)
    assert [s.delivery_id for s in moved] == [s.delivery_id for s in original]
    assert [s.at - o.at for s, o in zip(moved, original, strict=True)] == [SHIFT] * len(moved)
    assert not re.search(r"2024-07", orjson.dumps([s.payload for s in moved]).decode())
    for before, after in zip(original, moved, strict=True):
        old = NORMALISERS[before.platform].normalise(before.event_type, before.payload)
        new = NORMALISERS[after.platform].normalise(after.event_type, after.payload)
        assert new.occurred_at is not None
        assert old.occurred_at is not None
        assert new.occurred_at - old.occurred_at == SHIFT, before.summary
        assert (new.name, new.status, new.conclusion, new.sha, new.tag, new.branch) == (
            old.name,
            old.status,
            old.conclusion,
            old.sha,
            old.tag,
            old.branch,
        )


def test_without_a_shift_nothing_moves():
    assert release_0_26_2(None) == release_0_26_2()
    assert recovery(timedelta(0)) == recovery()


def test_the_demo_shift_ends_the_story_at_a_given_minute():
    now = datetime(2026, 11, 26, 17, 30, 42, tzinfo=UTC)
    shift = shift_to_end_at(now)
    last = recovery(shift)[-1].at
    assert now - timedelta(minutes=1) < last <= now
    assert shift.total_seconds() % 60 == 0
