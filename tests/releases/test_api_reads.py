"""The API's hot reads: token checks, the stream's cursor, and answers built without models."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from releases import projector, selectors
from releases.models import DeployPolicy, Release, StreamEvent
from releases.serializers import (
    ReleaseSerializer,
    StreamEventSerializer,
    gate_data,
    release_data,
    stream_event_data,
)
from releases.services import bot_token_create, bot_token_revoke, policy_set, repository_create
from tests.releases import factories as f

pytestmark = pytest.mark.django_db
RELEASE_URL = f"/api/v1/releases/{f.REPO}/{f.TAG}/"
GATE_URL = f"/api/v1/releases/{f.REPO}/{f.TAG}/gate"
OTHERS = ("someone/else", "third/party")


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _elsewhere(repository: str, count: int) -> list[dict[str, object]]:
    """Return `count` custom events of another repository, to interleave with Pyodide's."""
    events = []
    for number in range(count):
        kwargs = f.event("shiplog", "marker", minutes=number, name=f"marker-{number}")
        kwargs["repository"] = repository
        kwargs["data"] = {**kwargs["data"], "repository": repository}
        events.append(kwargs)
    return events


@pytest.fixture
def pyodide():
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=f.PYODIDE_POLICY, actor="test")
    story = f.pyodide_story()
    # Other repositories' events between Pyodide's, so pages skip rows they may not show.
    mixed = []
    others = [*_elsewhere(OTHERS[0], len(story)), *_elsewhere(OTHERS[1], len(story))]
    for index, kwargs in enumerate(story):
        mixed += [kwargs, others[2 * index], others[2 * index + 1]]
    f.append_all(mixed)
    projector.catch_up()
    return repo


def test_a_token_revoked_after_use_is_refused_on_its_next_request(pyodide):
    bot, token = bot_token_create(name="ci", repositories=[pyodide])
    client = _client(token)
    assert client.get(GATE_URL).status_code == 200
    bot_token_revoke(bot=bot)
    assert client.get(GATE_URL).status_code == 401
    assert client.get("/api/v1/stream/").status_code == 401


def test_a_repository_taken_from_a_token_is_unreadable_on_its_next_request(pyodide):
    other = repository_create(full_name=OTHERS[0])
    bot, token = bot_token_create(name="ci", repositories=[pyodide, other])
    client = _client(token)
    assert client.get(RELEASE_URL).status_code == 200
    bot.repositories.remove(pyodide)
    assert client.get(RELEASE_URL).status_code == 404
    assert client.get(GATE_URL).status_code == 404
    streamed = client.get("/api/v1/stream/?limit=500").json()["events"]
    assert {event["repository"] for event in streamed} == {OTHERS[0]}


def test_a_token_for_two_repositories_reads_both_and_no_third(pyodide):
    other = repository_create(full_name=OTHERS[0])
    _bot, token = bot_token_create(name="ci", repositories=[pyodide, other])
    streamed = _client(token).get("/api/v1/stream/?limit=500").json()["events"]
    assert {event["repository"] for event in streamed} == {f.REPO, OTHERS[0]}
    assert len(streamed) == StreamEvent.objects.exclude(repository=OTHERS[1]).count()


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_following_the_cursor_returns_every_readable_event_once_in_order(pyodide, limit):
    _bot, token = bot_token_create(name="ci", repositories=[pyodide])
    client = _client(token)
    expected = list(
        StreamEvent.objects.filter(repository=f.REPO)
        .order_by("position")
        .values_list("position", flat=True)
    )
    seen: list[int] = []
    after = 0
    for _ in range(len(expected) + 2):  # every page holds at least one event until the end
        page = client.get(f"/api/v1/stream/?after={after}&limit={limit}").json()
        positions = [event["position"] for event in page["events"]]
        assert len(positions) <= limit
        if not positions:
            assert page["next_after"] == after
            break
        assert page["next_after"] == positions[-1]
        seen += positions
        after = page["next_after"]
    assert seen == expected


def test_a_page_ending_on_the_last_event_is_followed_by_an_empty_page(pyodide):
    _bot, token = bot_token_create(name="ci", repositories=[pyodide])
    client = _client(token)
    positions = list(
        StreamEvent.objects.filter(repository=f.REPO)
        .order_by("position")
        .values_list("position", flat=True)
    )
    before_last_two = positions[-3]
    page = client.get(f"/api/v1/stream/?after={before_last_two}&limit=2").json()
    assert [event["position"] for event in page["events"]] == positions[-2:]
    after_last = client.get(f"/api/v1/stream/?after={page['next_after']}&limit=2").json()
    assert after_last == {"events": [], "next_after": positions[-1]}


def test_stream_pages_show_what_the_stream_event_serializer_shows(pyodide):
    rows = selectors.stream_page_rows(readable=None, limit=500)
    events = selectors.stream_page(readable=None, limit=500)
    assert len(rows) == StreamEvent.objects.count()
    assert [stream_event_data(row) for row in rows] == list(
        StreamEventSerializer(events, many=True).data
    )


def _releases() -> list[Release]:
    """Return releases in every shape the serializer must agree on, unsaved."""
    t0 = f.at(0)
    return [
        Release(repository="a/b", ref_kind="tag", ref_key="tag:v1", tag="v1"),
        Release(
            repository="a/b",
            ref_kind="tag",
            ref_key="tag:v2",
            tag="v2",
            sha="ab" * 20,
            state="blocked",
            flags=",blocked,partially_deployed,",
            blocking=[{"deploy": "deploy", "blocked_by": [{"job": "test-07"}]}],
            started_at=t0,
            tagged_at=t0,
            first_deploy_started_at=t0 + timedelta(minutes=30, microseconds=250),
            blocked_at=t0 + timedelta(minutes=25),
            last_activity_at=t0 + timedelta(hours=2),
            last_position=41,
        ),
        Release(
            repository="a/b",
            ref_kind="tag",
            ref_key="tag:v3",
            tag="v3",
            state="deployed",
            blocked_at=t0 + timedelta(minutes=25),
            unblocked_at=t0 + timedelta(hours=5),
            deployed_at=t0 + timedelta(hours=6),
        ),
        # Activity recorded before the block (clocks disagree): no time blocked.
        Release(
            repository="a/b",
            ref_kind="tag",
            ref_key="tag:v4",
            tag="v4",
            blocked_at=t0 + timedelta(hours=1),
            last_activity_at=t0,
        ),
        Release(
            repository="a/b",
            ref_kind="branch",
            ref_key="branch:main@" + "cd" * 20,
            branch="main",
            sha="cd" * 20,
            state="running",
            flags=",running,",
        ),
    ]


@pytest.mark.parametrize("release", _releases(), ids=lambda r: r.ref_key[:12])
def test_release_data_is_what_the_release_serializer_shows(release):
    assert release_data(release) == ReleaseSerializer(release).data


def test_the_timeline_and_the_gate_read_by_tag_agree_with_release_detail(pyodide):
    release = selectors.release_get(repository=f.REPO, tag=f.TAG)
    assert release is not None
    detail = selectors.release_detail(release)
    by_tag = selectors.release_detail_get(repository=f.REPO, tag=f.TAG)
    timeline = selectors.release_timeline_get(repository=f.REPO, tag=f.TAG)
    assert by_tag is not None
    assert timeline is not None
    assert by_tag.entries == timeline.entries == detail.entries
    assert by_tag.policy == timeline.policy == detail.policy
    assert gate_data(by_tag) == gate_data(detail)
    assert selectors.release_detail_get(repository=f.REPO, tag="0.0.0") is None
    assert selectors.release_timeline_get(repository=OTHERS[0], tag=f.TAG) is None


def test_a_stored_policy_that_no_longer_parses_reads_as_the_default(pyodide):
    DeployPolicy.objects.filter(repository=pyodide).update(document="[deploy\nbroken")
    release = selectors.release_get(repository=f.REPO, tag=f.TAG)
    assert release is not None
    by_tag = selectors.release_detail_get(repository=f.REPO, tag=f.TAG)
    assert by_tag is not None
    assert by_tag.policy == selectors.release_detail(release).policy
    assert by_tag.policy.is_default


def test_a_changed_policy_changes_the_gate_on_the_next_request(pyodide):
    _bot, token = bot_token_create(name="ci", repositories=[pyodide])
    client = _client(token)
    assert client.get(GATE_URL).json()["deployable"] is False
    policy_set(repository=pyodide, document=f.ADVISORY_FIREFOX, actor="test")
    assert client.get(GATE_URL).json()["deployable"] is True
    DeployPolicy.objects.filter(repository=pyodide).delete()
    assert client.get(GATE_URL).json()["policy"] == "default"
