"""The incidents API: filters, detail with evidence, status changes, postmortem documents."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from incidents import services
from incidents.models import Incident
from releases import projector
from releases.services import bot_token_create, policy_set, repository_create
from tests.releases import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident():
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=f.PYODIDE_POLICY, actor="test")
    f.append_all(f.pyodide_story())
    projector.catch_up()
    return Incident.objects.get()


def _bot(*, write: bool, repository: str = f.REPO) -> APIClient:
    repo = repository_create(full_name=repository)
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Bearer "
        + bot_token_create(name="b", repositories=[repo], can_write=write)[1]
    )
    return client


def test_incidents_are_listed_and_filtered(incident):
    bot = _bot(write=False)
    assert bot.get(f"/api/v1/incidents/?repository={f.REPO}").json()["count"] == 1
    assert bot.get("/api/v1/incidents/?status=open").json()["count"] == 1
    assert bot.get("/api/v1/incidents/?status=resolved").json()["count"] == 0
    assert bot.get("/api/v1/incidents/?rule=partial_deploy").json()["count"] == 1
    assert bot.get(f"/api/v1/incidents/?release={f.TAG}").json()["count"] == 1
    assert bot.get("/api/v1/incidents/?status=sleeping").status_code == 400


def test_an_incident_has_its_evidence_and_timeline(incident):
    body = _bot(write=False).get(f"/api/v1/incidents/{incident.pk}/").json()
    assert body["rule"] == "deploy_blocked"
    assert {e.get("name") for e in body["evidence"]} >= {"test-packages-firefox", "deploy-release"}
    assert body["timeline"][0]["type"] == "incident.opened"
    assert set(body["findings"]) == {"deploy_blocked", "partial_deploy"}


def test_a_write_scoped_bot_resolves_and_the_postmortem_is_served(incident):
    bot = _bot(write=True)
    response = bot.post(
        f"/api/v1/incidents/{incident.pk}/status/",
        {"status": "resolved", "note": "Reran test-packages-firefox from failed."},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "resolved"
    services.postmortem_generate(incident_id=incident.pk)
    markdown = bot.get(f"/api/v1/incidents/{incident.pk}/postmortem.md")
    assert markdown.status_code == 200
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    assert markdown.content.decode().startswith("# Postmortem:")
    assert "Reran test-packages-firefox from failed." in markdown.content.decode()
    html = bot.get(f"/api/v1/incidents/{incident.pk}/postmortem.html")
    assert html["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Postmortem:" in html.content.decode()
    assert "<script" not in html.content.decode()


def test_invalid_transitions_and_read_only_tokens_are_refused(incident):
    reader = _bot(write=False)
    url = f"/api/v1/incidents/{incident.pk}/status/"
    assert reader.post(url, {"status": "resolved"}, format="json").status_code == 403
    writer = _bot(write=True)
    bad = writer.post(url, {"status": "investigating"}, format="json")
    assert bad.status_code == 400
    assert "can move to" in bad.json()["status"][0]
    assert writer.post(url, {"status": "on-fire"}, format="json").status_code == 400


def test_another_repositorys_token_sees_no_incident(incident):
    other = _bot(write=True, repository="someone/else")
    assert other.get(f"/api/v1/incidents/{incident.pk}/").status_code == 404
    assert other.get("/api/v1/incidents/").json()["count"] == 0
    assert (
        other.post(
            f"/api/v1/incidents/{incident.pk}/status/", {"status": "resolved"}, format="json"
        ).status_code
        == 404
    )


def test_lessons_are_aggregated_across_incidents(incident):
    lessons = _bot(write=False).get("/api/v1/lessons/").json()["lessons"]
    keys = {lesson["key"]: lesson for lesson in lessons}
    assert {"non_core_gate", "split_deploy", "browser_timeouts", "no_probe"} <= set(keys)
    assert keys["non_core_gate"]["subjects"] == {"test-packages-firefox": 1}
    assert keys["non_core_gate"]["incidents"][0]["evidence"][0]["position"]
