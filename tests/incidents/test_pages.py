"""The incident pages: timeline, notes, status and severity, action items, postmortem, lessons.

Every change goes through the services, so each one is an event in the stream.
"""

from __future__ import annotations

import re

import pytest

from incidents.models import ActionItem, PostmortemRevision
from releases.models import StreamEvent
from tests.pages import (
    blocked,
    incident_of,
    maintainer,
    maintainer_client,
    recovered,
    viewer,
    viewer_client,
)

__all__ = ["blocked", "maintainer", "maintainer_client", "recovered", "viewer", "viewer_client"]
pytestmark = pytest.mark.django_db


def text(response) -> str:
    return str(response.content.decode())


def test_the_incident_list_filters_by_status_severity_and_repository(viewer_client, blocked):
    assert "deploy-release is blocked" in text(viewer_client.get("/incidents/"))
    assert "deploy-release is blocked" in text(viewer_client.get("/incidents/?status=open"))
    assert "deploy-release is blocked" not in text(viewer_client.get("/incidents/?status=resolved"))
    assert "deploy-release is blocked" in text(viewer_client.get("/incidents/?severity=high"))
    assert "deploy-release is blocked" not in text(viewer_client.get("/incidents/?severity=low"))
    assert "deploy-release is blocked" not in text(
        viewer_client.get("/incidents/?repository=nobody/else")
    )


def test_the_incident_page_tells_the_story_across_both_platforms(viewer_client, blocked):
    incident = incident_of(blocked)
    page = text(viewer_client.get(f"/incidents/{incident.pk}/"))
    assert "<h1>pyodide/pyodide 0.26.2: deploy-release is blocked</h1>" in page
    assert "High" in page
    assert "Investigating" in page
    assert 'href="/releases/pyodide/pyodide/0.26.2/"' in page
    timeline = page.split('class="timeline"')[1].split("</ol>")[0]
    assert "CircleCI" in timeline
    assert "GitHub Actions" in timeline
    assert "job <code>test-packages-firefox</code> failure" in timeline
    assert "incident opened" in timeline
    evidence = page.split('id="evidence-heading"')[1].split("</section>")[0]
    failed = StreamEvent.objects.get(data__name="test-packages-firefox")
    assert f'href="/stream/{failed.position}/"' in evidence
    assert "written when the incident is resolved" in page


def test_a_maintainer_adds_a_note_and_resolves_the_incident(maintainer_client, blocked):
    incident = incident_of(blocked)
    url = f"/incidents/{incident.pk}/"
    empty = maintainer_client.post(url + "notes/", {"note-text": ""})
    assert "This field is required" in text(empty)
    page = maintainer_client.post(
        url + "notes/", {"note-text": "Firefox timed out in duckdb; rerunning."}, follow=True
    )
    assert "Note added." in text(page)
    assert "note (mara): Firefox timed out in duckdb; rerunning." in text(page)
    assert StreamEvent.objects.filter(event_type="incident.note_added").count() == 1
    resolved = maintainer_client.post(
        url + "status/", {"status": "resolved", "note": "known; fixed in 0.26.3"}, follow=True
    )
    assert "Status changed to resolved." in text(resolved)
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolution == "known; fixed in 0.26.3"
    assert "status investigating → resolved (mara)" in text(resolved)
    # A resolved incident may only be reopened.
    form = text(resolved).split('action="' + url + 'status/"')[1].split("</form>")[0]
    assert '<option value="investigating">' in form
    assert '<option value="monitoring">' not in form
    refused = maintainer_client.post(url + "status/", {"status": "monitoring"})
    assert "Select a valid choice" in text(refused)


def test_severity_acknowledgement_and_action_items(maintainer_client, blocked):
    incident = incident_of(blocked)
    url = f"/incidents/{incident.pk}/"
    maintainer_client.post(url + "severity/", {"severity": "critical"})
    same = maintainer_client.post(url + "severity/", {"severity": "critical"}, follow=True)
    assert "the incident is already critical" in text(same)
    maintainer_client.post(url + "acknowledge/")
    maintainer_client.post(
        url + "action-items/", {"item-kind": "preventive", "item-text": "Gate on core"}
    )
    item = ActionItem.objects.get()
    page = text(maintainer_client.get(url))
    assert "Critical" in page
    assert "acknowledged" in page
    assert "To do:</span> <em>Preventive</em>: Gate on core" in page
    maintainer_client.post(url + f"action-items/{item.item_id}/done/")
    item.refresh_from_db()
    assert item.done
    assert "Done:</span> <em>Preventive</em>: Gate on core" in text(maintainer_client.get(url))
    missing = maintainer_client.post(url + "action-items/nope/done/", follow=True)
    assert "no action item nope" in text(missing)
    types = set(StreamEvent.objects.values_list("event_type", flat=True))
    assert {
        "incident.severity_changed",
        "incident.acknowledged",
        "incident.action_item_added",
        "incident.action_item_completed",
    } <= types


def test_forms_answer_in_place_with_htmx(maintainer_client, blocked):
    incident = incident_of(blocked)
    page = text(maintainer_client.get(f"/incidents/{incident.pk}/"))
    note_form = page.split(f'action="/incidents/{incident.pk}/notes/"')[1].split(">")[0]
    assert f'hx-post="/incidents/{incident.pk}/notes/"' in note_form
    assert 'hx-select="#main"' in note_form


def test_the_postmortem_is_written_edited_regenerated_and_downloaded(maintainer_client, recovered):
    incident = incident_of(recovered)
    url = f"/incidents/{incident.pk}/postmortem/"
    waiting = text(maintainer_client.get(url))
    assert "The worker is writing the postmortem" in waiting
    assert 'hx-trigger="every 3s"' in waiting
    maintainer_client.post(url + "regenerate/")
    page = text(maintainer_client.get(url))
    assert "Revision 1" in page
    article = page.split('<article class="postmortem"')[1].split("</article>")[0]
    assert "<h1" not in article  # the document's headings sit under the page's own
    assert "<h2>Postmortem: pyodide/pyodide 0.26.2: deploy-release is blocked</h2>" in article
    assert "<h3>Root cause and contributing factors</h3>" in article
    assert "test-packages-firefox" in article
    assert "/stream/" in article

    edited = maintainer_client.post(
        url + "sections/root_cause/",
        {
            "root_cause-section": "root_cause",
            "root_cause-text": "A flaky Firefox test gated the deploy.",
        },
        follow=True,
    )
    assert "revision 2 uses it" in text(edited)
    assert "A flaky Firefox test gated the deploy." in text(edited).split("</article>")[0]
    assert "written by a maintainer" in text(edited)
    again = maintainer_client.post(url + "regenerate/", follow=True)
    assert "Nothing changed since the last revision." in text(again)
    assert PostmortemRevision.objects.filter(incident=incident).count() == 2

    download = maintainer_client.get(f"/incidents/{incident.pk}/postmortem.md")
    assert download["Content-Type"] == "text/markdown; charset=utf-8"
    assert download["Content-Disposition"] == (
        'attachment; filename="postmortem-pyodide-pyodide-0.26.2-r2.md"'
    )
    assert download.content.decode().startswith("# Postmortem: pyodide/pyodide 0.26.2")
    first = maintainer_client.get(f"/incidents/{incident.pk}/postmortem.md?revision=1")
    assert b"A flaky Firefox test" not in first.content
    assert "Revision 1" in text(maintainer_client.get(url + "?revision=1"))
    assert maintainer_client.get(url + "?revision=9").status_code == 404
    assert maintainer_client.get(url + "?revision=x").status_code == 404


def test_no_postmortem_yet_is_said_plainly(viewer_client, blocked):
    incident = incident_of(blocked)
    page = text(viewer_client.get(f"/incidents/{incident.pk}/postmortem/"))
    assert "Shiplog writes one when the incident is resolved" in page
    assert "every 3s" not in page
    assert viewer_client.get(f"/incidents/{incident.pk}/postmortem.md").status_code == 404


def test_lessons_are_gathered_across_incidents(viewer_client, recovered):
    page = text(viewer_client.get("/lessons/"))
    assert "A non-core test gated the deploy" in page
    assert "A deploy split across two platforms with no coordinator" in page
    assert re.search(r'href="/incidents/[0-9a-f-]+/">pyodide/pyodide 0.26.2</a>', page)
    assert "No lessons yet" in text(viewer_client.get("/lessons/?repository=nobody/else"))
