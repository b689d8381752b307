"""The REST API for CI bots: tokens, releases, the gate, the stream, custom events, policy."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from releases import projector
from releases.models import BotToken, StreamEvent
from releases.services import bot_token_create, policy_set, repository_create
from tests.releases import factories as f

pytestmark = pytest.mark.django_db
RELEASE_URL = f"/api/v1/releases/{f.REPO}/{f.TAG}/"
GATE_URL = f"/api/v1/releases/{f.REPO}/{f.TAG}/gate"


def _client(token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def pyodide():
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=f.PYODIDE_POLICY, actor="test")
    f.append_all(f.pyodide_story())
    projector.catch_up()
    return repo


@pytest.fixture
def reader(pyodide):
    return _client(bot_token_create(name="reader", repositories=[pyodide])[1])


@pytest.fixture
def writer(pyodide):
    return _client(bot_token_create(name="writer", repositories=[pyodide], can_write=True)[1])


def test_bot_token_create_prints_the_token_last_and_stores_only_its_hash():
    out, err = io.StringIO(), io.StringIO()
    call_command("bot_token", "create", "--repository", f.REPO, "--write", stdout=out, stderr=err)
    token = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(r"shiplog_[\w-]{40,}", token)
    stored = BotToken.objects.get()
    assert stored.can_write
    assert token not in (stored.token_hash, stored.prefix)
    assert "not shown again" in err.getvalue()
    response = _client(token).get("/api/v1/releases/")
    assert response.status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer a b", "Token x"])
def test_requests_without_a_valid_token_get_401_json(pyodide, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/releases/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_a_revoked_token_is_refused(pyodide):
    bot, token = bot_token_create(name="old", repositories=[pyodide])
    call_command("bot_token", "revoke", bot.prefix, stdout=io.StringIO())
    assert _client(token).get("/api/v1/releases/").status_code == 401


def test_release_detail_has_state_and_timeline_in_stream_order(reader):
    body = reader.get(RELEASE_URL).json()
    assert body["release"]["state"] == "blocked"
    assert body["release"]["flags"] == ["blocked", "partially_deployed"]
    timeline = body["timeline"]
    positions = [entry["first_position"] for entry in timeline]
    assert positions == sorted(positions)
    failed = next(e for e in timeline if e["name"] == "test-packages-firefox")
    assert failed["platform"] == "circleci"
    assert failed["conclusion"] == "failure"
    assert failed["job_number"] == 108413
    assert failed["url"].endswith("/jobs/108413")
    assert {"platform", "kind", "status", "attempt", "started", "completed", "position"} <= set(
        failed
    )
    deploy = next(
        e
        for e in timeline
        if e["kind"] == "workflow_run"
        and e["platform"] == "github"
        and e["name"] == "deploy-release"
    )
    assert deploy["role"] == "deploy"
    assert deploy["conclusion"] == "success"


def test_the_gate_says_blocked_by_firefox_under_the_real_graph(reader):
    gate = reader.get(GATE_URL).json()
    assert gate["deployable"] is False
    assert gate["state"] == "blocked"
    assert [b["job"] for b in gate["blocking"]] == ["test-packages-firefox"]
    assert gate["blocking"][0]["platform"] == "circleci"
    assert gate["blocking"][0]["url"].endswith("/jobs/108413")
    assert gate["advisory_failures"] == []


def test_the_gate_says_deployable_when_firefox_is_advisory(pyodide, reader):
    policy_set(repository=pyodide, document=f.ADVISORY_FIREFOX, actor="test")
    gate = reader.get(GATE_URL).json()
    assert gate["deployable"] is True
    assert gate["blocking"] == []
    assert [a["job"] for a in gate["advisory_failures"]] == ["test-packages-firefox"]


def test_release_list_filters_by_repository_state_and_date(reader):
    assert reader.get("/api/v1/releases/?state=blocked").json()["count"] == 1
    assert reader.get("/api/v1/releases/?state=partially_deployed").json()["count"] == 1
    assert reader.get("/api/v1/releases/?state=deployed").json()["count"] == 0
    assert reader.get(f"/api/v1/releases/?repository={f.REPO}").json()["count"] == 1
    assert reader.get("/api/v1/releases/?since=2024-07-27T00:00:00Z").json()["count"] == 0
    assert reader.get("/api/v1/releases/?until=2024-07-27T00:00:00Z").json()["count"] == 1
    bad = reader.get("/api/v1/releases/?state=exploded")
    assert bad.status_code == 400
    assert "state" in bad.json()
    assert reader.get("/api/v1/releases/?since=yesterday").status_code == 400


def test_a_token_for_one_repository_can_neither_read_nor_write_another(pyodide):
    other = repository_create(full_name="someone/else")
    _, token = bot_token_create(name="other", repositories=[other], can_write=True)
    client = _client(token)
    assert client.get(RELEASE_URL).status_code == 404
    assert client.get(GATE_URL).status_code == 404
    assert client.get("/api/v1/releases/").json()["count"] == 0
    assert client.get("/api/v1/stream/").json()["events"] == []
    event = {"repository": f.REPO, "type": "deploy.marker", "name": "x", "tag": f.TAG}
    assert client.post("/api/v1/events/", event, format="json").status_code == 403
    assert client.get(f"/api/v1/repositories/{f.REPO}/policy").status_code == 404
    assert (
        client.put(
            f"/api/v1/repositories/{f.REPO}/policy", {"document": ""}, format="json"
        ).status_code
        == 404
    )


def test_a_read_only_token_cannot_write(reader):
    event = {"repository": f.REPO, "type": "deploy.marker", "name": "x", "tag": f.TAG}
    response = reader.post("/api/v1/events/", event, format="json")
    assert response.status_code == 403
    assert "may not write" in response.json()["detail"]


def test_custom_events_are_idempotent_and_join_the_release_timeline(writer):
    event = {
        "repository": f.REPO,
        "type": "deploy.cdn_upload_finished",
        "kind": "deploy",
        "name": "CDN upload finished",
        "tag": f.TAG,
        "conclusion": "success",
        "url": "https://cdn.jsdelivr.net/pyodide/v0.26.2/full/pyodide.mjs",
    }
    first = writer.post("/api/v1/events/", event, format="json", HTTP_IDEMPOTENCY_KEY="cdn-1")
    assert first.status_code == 201
    again = writer.post("/api/v1/events/", event, format="json", HTTP_IDEMPOTENCY_KEY="cdn-1")
    assert again.status_code == 200
    assert again.json() == {**first.json(), "status": "duplicate"}
    row = StreamEvent.objects.get(position=first.json()["position"])
    assert row.source == "api"
    assert "Authorization" not in row.headers
    projector.catch_up()
    timeline = writer.get(RELEASE_URL).json()["timeline"]
    assert timeline[-1]["name"] == "CDN upload finished"
    assert timeline[-1]["kind"] == "deploy"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "x", "name": "x", "tag": "t"}, "repository"),
        ({"repository": f.REPO, "type": "Not A Type", "name": "x", "tag": "t"}, "type"),
        ({"repository": f.REPO, "type": "x", "name": "x"}, "non_field_errors"),
        ({"repository": f.REPO, "type": "x", "name": "x", "tag": "t", "details": [1]}, "details"),
    ],
)
def test_invalid_custom_events_get_400_naming_the_field(writer, event, field):
    response = writer.post("/api/v1/events/", event, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_malformed_json_gets_400_not_500(writer):
    response = writer.post("/api/v1/events/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_the_stream_can_be_followed_with_an_after_cursor(reader):
    first = reader.get("/api/v1/stream/?limit=4").json()
    assert len(first["events"]) == 4
    positions = [e["position"] for e in first["events"]]
    assert positions == sorted(positions)
    rest = reader.get(f"/api/v1/stream/?after={first['next_after']}&limit=500").json()
    assert rest["events"][0]["position"] > positions[-1]
    total = StreamEvent.objects.filter(repository=f.REPO).count()
    assert len(first["events"]) + len(rest["events"]) == total
    assert "body" not in rest["events"][0]
    assert reader.get("/api/v1/stream/?limit=0").status_code == 400
    assert reader.get("/api/v1/stream/?after=x").status_code == 400


def test_the_openapi_schema_and_its_docs_page_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/releases/{owner}/{name}/{tag}/gate" in document["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert not re.search(r"(src|href)=\"https?://", html)


def test_unknown_api_urls_get_a_json_404(reader):
    response = reader.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no such endpoint")


def test_the_policy_can_be_read_and_replaced_over_the_api_with_validation(pyodide, writer):
    url = f"/api/v1/repositories/{f.REPO}/policy"
    assert "deploy-release" in writer.get(url).json()["document"]
    bad = writer.put(url, {"document": "[jobs]\ncore = 3\n"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["document"] == ["jobs.core must be a list of non-empty strings"]
    ok = writer.put(url, {"document": f.ADVISORY_FIREFOX}, format="json")
    assert ok.status_code == 200
    assert writer.get(GATE_URL).json()["deployable"] is True


def test_ci_credentials_are_set_and_replaced_over_the_api_and_never_shown(pyodide, writer, caplog):
    url = f"/api/v1/repositories/{f.REPO}/credentials/circleci"
    token = "circle-token-0123456789-abcd"
    first = writer.put(url, {"token": token}, format="json")
    assert first.status_code == 200
    assert first.json()["last_four"] == "abcd"
    assert token not in first.content.decode()
    replaced = writer.put(url, {"token": token + "-wxyz"}, format="json")
    assert replaced.json()["last_four"] == "wxyz"
    listing = writer.get(f"/api/v1/repositories/{f.REPO}/credentials/").json()
    assert listing["credentials"][0]["last_four"] == "wxyz"
    assert token not in str(listing)
    assert token not in caplog.text
    short = writer.put(url, {"token": "short"}, format="json")
    assert short.status_code == 400
    assert (
        writer.put(
            f"/api/v1/repositories/{f.REPO}/credentials/jenkins", {"token": token}, format="json"
        ).status_code
        == 404
    )


def test_a_read_only_token_cannot_see_or_set_credentials(reader):
    url = f"/api/v1/repositories/{f.REPO}/credentials/circleci"
    assert reader.put(url, {"token": "x" * 20}, format="json").status_code == 403
    assert reader.get(f"/api/v1/repositories/{f.REPO}/credentials/").status_code == 403


@pytest.mark.parametrize("query", ["repository=a%00b", "state=blocked&since=2024%00", "%00=x"])
def test_nul_characters_in_query_parameters_are_a_400_not_a_500(reader, query):
    response = reader.get(f"/api/v1/releases/?{query}")
    assert response.status_code == 400
    assert reader.get(f"/api/v1/incidents/?{query}").status_code == 400
    assert reader.get(f"/api/v1/stream/?{query}").status_code == 400


@pytest.mark.parametrize(
    "value", ["0058-12-09T03:11:10%2B23:13", "0001-01-01T00:00:00%2B01:00", "2024-07-26T13:54"]
)
def test_odd_but_valid_date_times_are_answered_not_a_500(reader, value):
    response = reader.get(f"/api/v1/releases/?since={value}")
    assert response.status_code in {200, 400}
