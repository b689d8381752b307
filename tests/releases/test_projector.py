"""Release projections: correlation across platforms, derived state, the gate, rebuilds."""

from __future__ import annotations

import random

import pytest

from releases import projector
from releases.models import DeployPolicy, Release, TimelineEntry
from releases.services import repository_create
from tests.releases import factories as f


def _policy(document: str) -> None:
    repo = repository_create(full_name=f.REPO)
    DeployPolicy.objects.update_or_create(repository=repo, defaults={"document": document})


def _release() -> Release:
    return Release.objects.get(repository=f.REPO, ref_key=f"tag:{f.TAG}")


@pytest.mark.django_db
def test_the_pyodide_release_is_blocked_and_partially_deployed_across_both_platforms():
    _policy(f.PYODIDE_POLICY)
    f.append_all(f.pyodide_story())
    projector.catch_up()
    release = _release()
    assert release.state == "blocked"
    assert release.flag_list == ["blocked", "partially_deployed"]
    assert release.blocking == [
        {
            "deploy": "deploy-release",
            "platform": "circleci",
            "blocked_by": [
                {
                    "job": "test-packages-firefox",
                    "platform": "circleci",
                    "conclusion": "failure",
                    "url": "https://app.circleci.com/pipelines/gh/pyodide/pyodide/7578/workflows/"
                    f"{f.WORKFLOW}/jobs/108413",
                    "role": "core",
                }
            ],
        }
    ]
    # The CircleCI tag pipeline names neither branch nor tag: it joined by commit.
    circleci = TimelineEntry.objects.filter(platform="circleci", release=release)
    assert circleci.count() == 5
    assert release.blocked_at == f.at(95)
    assert release.unblocked_at is None


@pytest.mark.django_db
def test_the_rerun_joins_the_same_release_and_deploys_it():
    _policy(f.PYODIDE_POLICY)
    f.append_all(f.pyodide_story())
    projector.catch_up()
    f.append_all(f.rerun_story())
    projector.catch_up()
    release = _release()
    assert release.state == "deployed"
    assert release.flag_list == ["deployed"]
    assert release.blocking == []
    assert release.blocked_at == f.at(95)
    assert release.unblocked_at == f.at(3 * 24 * 60 + 5)
    assert release.deployed_at == f.at(3 * 24 * 60 + 10)
    assert release.first_deploy_started_at is not None


@pytest.mark.django_db
def test_events_arriving_before_the_tag_is_known_join_the_release_once_it_is():
    _policy(f.PYODIDE_POLICY)
    story = f.pyodide_story()
    tag_push, rest = story[0], story[1:]
    circleci_only = [e for e in rest if e["source"] == "circleci"]
    f.append_all(circleci_only)
    projector.catch_up()
    assert not Release.objects.filter(ref_key=f"tag:{f.TAG}").exists()
    f.append_all([tag_push])
    projector.catch_up()
    assert TimelineEntry.objects.filter(release=_release(), platform="circleci").count() == 5


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_arrival_order_gives_the_same_projection(seed):
    _policy(f.PYODIDE_POLICY)
    events = f.pyodide_story() + f.rerun_story()
    random.Random(seed).shuffle(events)
    f.append_all(events[: len(events) // 2])
    projector.catch_up(batch_size=3)
    f.append_all(events[len(events) // 2 :])
    projector.catch_up(batch_size=3)
    assert _release().state == "deployed"


@pytest.mark.django_db
def test_under_a_policy_that_makes_firefox_advisory_the_blocker_is_advisory():
    _policy(f.ADVISORY_FIREFOX)
    f.append_all(f.pyodide_story())
    projector.catch_up()
    release = _release()
    assert release.state == "blocked"  # CircleCI's own graph still kept deploy-release back
    assert release.blocking[0]["blocked_by"][0]["role"] == "advisory"


@pytest.mark.django_db
def test_rebuild_equals_incremental():
    _policy(f.PYODIDE_POLICY)
    f.append_all(f.pyodide_story())
    projector.catch_up(batch_size=2)
    f.append_all(f.rerun_story())
    projector.catch_up(batch_size=1)
    incremental = _snapshot()
    projector.rebuild()
    assert _snapshot() == incremental


def _snapshot():
    releases = list(
        Release.objects.order_by("ref_key").values(
            "repository",
            "ref_key",
            "state",
            "flags",
            "blocking",
            "tagged_at",
            "deployed_at",
            "blocked_at",
            "unblocked_at",
            "first_deploy_started_at",
        )
    )
    entries = list(
        TimelineEntry.objects.order_by("entry_key").values(
            "entry_key",
            "release__ref_key",
            "status",
            "conclusion",
            "started_at",
            "completed_at",
            "name",
            "workflow_name",
            "attempt",
        )
    )
    return releases, entries


class _Rollback(Exception):
    pass


def _project_in_savepoint(events, batch_size):
    """Return the projection of `events` appended in this order, leaving nothing behind."""
    from django.db import transaction

    result = None
    try:
        with transaction.atomic():
            _policy(f.PYODIDE_POLICY)
            f.append_all(events)
            # Reactions (detection) depend on what was known when; the projection must not.
            projector.catch_up(batch_size=batch_size, react=False)
            result = _snapshot()
            raise _Rollback
    except _Rollback:
        pass
    return result


@pytest.mark.django_db
def test_any_permutation_with_redeliveries_gives_the_identical_projection():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    events = f.pyodide_story() + f.rerun_story()
    reference = _project_in_savepoint(events, batch_size=100)
    assert reference is not None

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        order=st.permutations(range(len(events))),
        redelivered=st.lists(st.integers(0, len(events) - 1), max_size=6),
        batch_size=st.integers(1, 8),
    )
    def check(order, redelivered, batch_size):
        shuffled = [events[i] for i in order] + [events[i] for i in redelivered]
        assert _project_in_savepoint(shuffled, batch_size) == reference

    check()


@pytest.mark.django_db
def test_the_postgresql_statements_give_the_same_projection_as_the_portable_path(monkeypatch):
    """On PostgreSQL the projector reads and writes with its own statements; on SQLite the ORM.

    Both must store the same releases and entries, in batches that split deliveries of one
    job and learn the tag late.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the fast path runs on PostgreSQL only")
    _policy(f.PYODIDE_POLICY)
    story = f.pyodide_story()
    events = story[1:] + story[:1] + f.rerun_story()
    f.append_all(events)
    monkeypatch.setattr(projector, "portable_only", True)
    projector.catch_up(batch_size=3, react=False)
    portable = _snapshot(), _full_entries()
    monkeypatch.setattr(projector, "portable_only", False)
    projector.rebuild(batch_size=3)
    assert (_snapshot(), _full_entries()) == portable
    projector.rebuild(batch_size=1000)
    assert (_snapshot(), _full_entries()) == portable


def _full_entries():
    """Return every stored field of every entry and release, without database ids."""
    entries = list(
        TimelineEntry.objects.order_by("entry_key").values(*projector.ENTRY_FIELDS, "entry_key")
    )
    releases = list(
        Release.objects.order_by("ref_key").values(
            "repository", "ref_key", "flags", "started_at", "last_activity_at", "last_position"
        )
    )
    return entries, releases


@pytest.mark.django_db
def test_release_details_in_bulk_equal_one_release_at_a_time():
    """Detection reads many releases at once; each must read as `release_detail` reads it."""
    from releases.selectors import release_detail, release_details

    _policy(f.PYODIDE_POLICY)
    f.append_all(f.pyodide_story())
    projector.catch_up(react=False)
    releases = list(Release.objects.all())
    assert releases
    bulk = release_details(releases)
    for release in releases:
        one = release_detail(release)
        assert bulk[release.pk].entries == one.entries
        assert bulk[release.pk].view == one.view
        assert bulk[release.pk].policy == one.policy


@pytest.mark.django_db
def test_reactions_see_what_the_projector_derived_as_a_fresh_read_would(monkeypatch):
    """Inside a batch, reactions get the projector's details; they equal a fresh read."""
    from releases.selectors import release_detail, release_details

    _policy(f.PYODIDE_POLICY)
    f.append_all(f.pyodide_story())
    seen = []

    def compare(touched):
        releases = list(Release.objects.filter(pk__in=touched))
        for pk, detail in release_details(releases).items():
            fresh = release_detail(detail.release)
            seen.append(pk)
            assert detail.entries == fresh.entries
            assert detail.view == fresh.view

    monkeypatch.setattr(projector, "after_batch_hooks", [compare])
    projector.catch_up(batch_size=4)
    f.append_all(f.rerun_story())
    projector.catch_up(batch_size=4)
    assert seen
