"""The one-pass rebuild on PostgreSQL stores exactly what the incremental projector stores."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.db import connection

from incidents.models import Incident
from releases import projector
from releases.models import Release, StreamEvent
from releases.services import policy_set, repository_create
from tests.projection_state import projection_state
from tests.releases import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the bulk rebuild runs on PostgreSQL only")


@pytest.fixture
def pyodide():
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=f.PYODIDE_POLICY, actor="test")
    return repo


def _last_position() -> int:
    return StreamEvent.objects.order_by("-position").values_list("position", flat=True)[0]


def _assert_bulk_equals_incremental() -> None:
    incremental = projection_state()
    assert incremental["entries"]
    assert incremental["releases"]
    read = projector.bulk_rebuild(chunk_size=4)
    assert read == StreamEvent.objects.count()
    assert projection_state() == incremental
    assert projector.checkpoint_position() == _last_position()
    # Entries set aside in a temporary table, when more arrive than memory may hold.
    projector.bulk_rebuild(chunk_size=3, max_held=2)
    assert projection_state() == incremental
    assert projector.checkpoint_position() == _last_position()
    # A rebuild of a rebuild changes nothing.
    projector.bulk_rebuild()
    assert projection_state() == incremental
    assert projector.checkpoint_position() == _last_position()


def test_the_pyodide_scenario_rebuilds_as_it_was_projected(pyodide):
    f.append_all(f.pyodide_story())
    projector.catch_up(batch_size=3)
    f.append_all(f.rerun_story())
    projector.catch_up(batch_size=2)
    # Detection reacted along the way: the incident's events are in the stream now.
    assert Incident.objects.exists()
    _assert_bulk_equals_incremental()


def _release_story(number: int) -> list[dict[str, Any]]:
    """Return a small two-platform release whose tag push arrives after its jobs."""
    tag = f"1.{number}.0"
    sha = f"{number:04d}" + "a" * 36
    run_id = 5000 + number * 10

    def gh_job(name: str, status: str, job_id: int, minutes: float, **more: Any) -> Any:
        return f.event(
            "github",
            "job",
            minutes=minutes,
            name=name,
            status=status,
            run_id=str(run_id),
            workflow_name="ci",
            job_id=str(job_id),
            started_at=minutes,
            sha=sha,
            branch=tag,
            **more,
        )

    def cci_job(name: str, status: str, number_: int, minutes: float) -> Any:
        return f.event(
            "circleci",
            "job",
            minutes=minutes,
            name=name,
            status=status,
            conclusion="success" if status == "success" else "failure",
            job_id=f"{number:04d}-{number_}",
            job_number=number_,
            workflow_name="release",
            pipeline_id=f"pipe-{number}",
            pipeline_number=number,
            started_at=minutes - 1,
            completed_at=minutes,
            sha=sha,
        )

    job_id = 90000 + number * 10
    failing = number % 3 == 0
    story = [
        gh_job("build", "queued", job_id, 1),
        gh_job("build", "completed", job_id, 9, conclusion="success", completed_at=9),
        gh_job("build", "in_progress", job_id, 2),  # late: ranks below the completion
        cci_job("test-core-firefox", "success", 100 + number, 5),
        cci_job("test-packages-firefox", "failed" if failing else "success", 200 + number, 8),
        f.event("github", "tag", minutes=10, name=tag, status="created", sha=sha, tag=tag),
        gh_job(
            "deploy-release", "completed", job_id + 1, 12, conclusion="success", completed_at=12
        ),
        f.event(
            "github",
            "workflow_run",
            minutes=13,
            name="deploy-release",
            status="completed",
            conclusion="success",
            run_id=str(run_id + 1),
            workflow_name="deploy-release",
            completed_at=13,
            sha=sha,
            branch=tag,
            extra={"event": "release"},
        ),
    ]
    if not failing:
        story.append(cci_job("deploy-release", "success", 300 + number, 15))
    # Redeliveries under new delivery keys: the same facts again, out of place.
    story.append(gh_job("build", "completed", job_id, 9, conclusion="success", completed_at=9))
    story.append(cci_job("test-core-firefox", "success", 100 + number, 5))
    return story


def _branch_push(number: int) -> list[dict[str, Any]]:
    sha = f"{number:04d}" + "b" * 36
    return [
        f.event(
            "github",
            "job",
            minutes=20 + number,
            name="build",
            status=status,
            conclusion="success" if status == "completed" else "",
            run_id=str(7000 + number),
            workflow_name="ci",
            job_id=str(70000 + number),
            started_at=20 + number,
            sha=sha,
            branch="main",
        )
        for status in ("queued", "completed")
    ]


def test_a_generated_stream_rebuilds_as_it_was_projected(pyodide):
    events: list[dict[str, Any]] = []
    for number in range(1, 7):
        events.extend(_release_story(number))
        events.extend(_branch_push(number))
    # Releases in flight together: their deliveries interleave.
    rng = random.Random(7)
    for _ in range(len(events)):
        i = rng.randrange(len(events) - 1)
        events[i], events[i + 1] = events[i + 1], events[i]
    f.append_all(events)
    projector.catch_up(batch_size=5, react=False)
    assert Release.objects.filter(ref_kind="tag").count() == 6
    assert Release.objects.filter(ref_kind="branch").count() == 6
    _assert_bulk_equals_incremental()


def test_rebuild_takes_the_bulk_path_on_postgresql(pyodide, monkeypatch):
    f.append_all(f.pyodide_story())
    called: list[int] = []
    bulk = projector.bulk_rebuild

    def spy(**kwargs: Any) -> int:
        called.append(1)
        return bulk(**kwargs)

    monkeypatch.setattr(projector, "bulk_rebuild", spy)
    assert projector.rebuild() == StreamEvent.objects.count()
    assert called == [1]
    monkeypatch.setattr(projector, "portable_only", True)
    projector.rebuild()
    assert called == [1]


@pytest.mark.parametrize("incoming_wins", [True, False])
def test_merge_keeps_every_field_of_the_winner(incoming_wins):
    """`merge` spells out every field: a field added to Entry must not fall back to its default."""
    from dataclasses import fields, replace
    from datetime import UTC, datetime

    from releases.projections import Entry, merge

    def full(rank: str, position: int, text: str) -> Entry:
        values: dict[str, Any] = {}
        for item in fields(Entry):
            numbers = {"attempt", "pipeline_number", "job_number", "position", "first_position"}
            if item.name in numbers:
                values[item.name] = position
            elif item.name.endswith("_at"):
                values[item.name] = datetime(2024, 1, position, tzinfo=UTC)
            elif item.name == "extra":
                values[item.name] = {text: position}
            elif item.name == "rank":
                values[item.name] = rank
            else:
                values[item.name] = f"{item.name}-{text}"
        return Entry(**values)

    high, low = full("2", 2, "high"), full("1", 1, "low")
    incoming, existing = (high, low) if incoming_wins else (low, high)
    assert merge(existing, incoming) == replace(high, extra={"low": 1, "high": 2}, first_position=1)
