"""Incidents: detected from projections, kept as events, one per release, resolved, written up."""

from __future__ import annotations

import pytest

from incidents import services
from incidents.models import ActionItem, Incident, IncidentEvent, PostmortemRevision
from releases import projector, stream
from releases.models import Release, Source, StreamEvent
from releases.services import policy_set, repository_create
from tests.projection_state import incident_state
from tests.releases import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def pyodide():
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=f.PYODIDE_POLICY, actor="test")
    return repo


def _story_until(name: str) -> list[dict[str, object]]:
    story = f.pyodide_story()
    index = next(i for i, e in enumerate(story) if e["data"].get("name") == name)
    return story[: index + 1]


def _resolved_by_the_rerun() -> Incident:
    """Project the blocked release, then the rerun that shipped it; return its incident."""
    f.append_all(f.pyodide_story())
    projector.catch_up()
    f.append_all(f.rerun_story())
    projector.catch_up()
    return Incident.objects.get()


def test_an_incident_opens_in_the_same_projection_cycle_as_the_blocking_failure(pyodide):
    f.append_all(_story_until("test-packages-firefox"))
    projector.catch_up()
    incident = Incident.objects.get()
    assert incident.rule == "deploy_blocked"
    assert incident.severity == "high"
    assert incident.status == "investigating"
    assert "`deploy-release` on CircleCI never ran because `test-packages-firefox`" in (
        incident.summary
    )
    failed = StreamEvent.objects.get(delivery_key=f"cci:{f.WORKFLOW}:test-packages-firefox")
    assert [e["position"] for e in incident.evidence] == [failed.position]


def test_the_shipped_half_joins_the_same_incident_as_evidence(pyodide):
    f.append_all(f.pyodide_story())
    projector.catch_up()
    incident = Incident.objects.get()
    findings = incident.details["findings"]
    assert set(findings) == {"deploy_blocked", "partial_deploy"}
    assert "`deploy-release` on GitHub Actions shipped while `deploy-release` on CircleCI" in (
        incident.summary
    )
    whys = [e["why"] for e in incident.evidence]
    assert "test-packages-firefox failure (core)" in whys
    assert "deploy-release succeeded" in whys


def test_repeated_deliveries_and_rebuilds_never_open_a_second_incident(pyodide):
    f.append_all(f.pyodide_story())
    projector.catch_up()
    events_before = StreamEvent.objects.filter(source="shiplog").count()
    f.append_all(f.pyodide_story())  # redeliveries: duplicates, nothing appended
    projector.catch_up()
    services.detect_for_releases(Release.objects.values_list("pk", flat=True), time_rules=False)
    projector.rebuild()
    projector.catch_up()
    assert Incident.objects.count() == 1
    assert StreamEvent.objects.filter(source="shiplog").count() == events_before


def test_the_rerun_resolves_the_incident_and_a_postmortem_is_written(pyodide):
    incident = _resolved_by_the_rerun()
    assert incident.status == "resolved"
    assert incident.resolved_at == f.at(3 * 24 * 60 + 10)
    revision = services.postmortem_generate(incident_id=incident.pk)
    assert revision == 1
    markdown = PostmortemRevision.objects.get().markdown
    assert "`deploy-release` on CircleCI never ran because `test-packages-firefox`" in markdown
    assert "`deploy-release` on GitHub Actions shipped" in markdown
    assert "A non-core test gated the deploy" in markdown
    assert "A deploy split across two platforms with no coordinator" in markdown
    assert "**From** 2024-07-26 15:29 UTC **to** 2024-07-29 14:04 UTC" in markdown
    assert "*preventive*: Make one job the coordinator" in markdown
    # Running the task again records nothing new.
    assert services.postmortem_generate(incident_id=incident.pk) == 1
    assert PostmortemRevision.objects.count() == 1


def test_status_transitions_are_validated_and_reopening_is_allowed(pyodide):
    f.append_all(f.pyodide_story())
    projector.catch_up()
    incident = Incident.objects.get()
    services.incident_status_change(incident_id=incident.pk, status="identified", actor="hood")
    with pytest.raises(services.InvalidChange, match="identified can move to"):
        services.incident_status_change(incident_id=incident.pk, status="identified", actor="h")
    resolved = services.incident_status_change(
        incident_id=incident.pk, status="resolved", note="reran from failed", actor="hood"
    )
    assert resolved.status == "resolved"
    with pytest.raises(services.InvalidChange, match="resolved can move to investigating"):
        services.incident_status_change(incident_id=incident.pk, status="monitoring", actor="h")
    reopened = services.incident_status_change(
        incident_id=incident.pk, status="investigating", actor="hood"
    )
    assert reopened.status == "investigating"
    assert reopened.resolved_at is None
    kinds = list(IncidentEvent.objects.values_list("event_type", flat=True))
    assert kinds.count("incident.status_changed") == 3
    assert "incident.note_added" in kinds


def test_maintainer_text_survives_regeneration_and_every_revision_is_kept(pyodide):
    incident = _resolved_by_the_rerun()
    services.postmortem_generate(incident_id=incident.pk)
    services.narrative_edit(
        incident_id=incident.pk, section="summary", text="The REPL was down.", actor="hood"
    )
    services.action_item_add(
        incident_id=incident.pk, kind="detective", text="Probe the console page", actor="hood"
    )
    assert services.postmortem_generate(incident_id=incident.pk) == 2
    assert services.postmortem_generate(incident_id=incident.pk) == 2
    revisions = list(PostmortemRevision.objects.order_by("revision"))
    assert [r.revision for r in revisions] == [1, 2]
    assert "The REPL was down." in revisions[1].markdown
    assert "*detective*: Probe the console page" in revisions[1].markdown
    assert "The REPL was down." not in revisions[0].markdown


def test_a_whole_incident_life_in_one_batch_projects_as_it_did_event_by_event(pyodide):
    incident = _resolved_by_the_rerun()
    services.incident_acknowledge(incident_id=incident.pk, actor="hood")
    services.postmortem_generate(incident_id=incident.pk)
    item = services.action_item_add(
        incident_id=incident.pk, kind="detective", text="Probe the console page", actor="hood"
    )
    item_id = ActionItem.objects.get(incident=item).item_id
    services.action_item_complete(incident_id=incident.pk, item_id=item_id, actor="hood")
    services.incident_status_change(incident_id=incident.pk, status="investigating", actor="h")
    projector.catch_up()
    one_by_one = incident_state()

    # One batch holds the opening, the evidence, the acknowledgement, the postmortem, the
    # action item's addition and completion, and the reopening.
    projector.rebuild()

    assert incident_state() == one_by_one
    assert ActionItem.objects.get().done
    kinds = set(IncidentEvent.objects.values_list("event_type", flat=True))
    assert {"incident.acknowledged", "incident.status_changed"} <= kinds


def test_an_incident_event_with_an_unreadable_id_is_skipped(pyodide, caplog):
    f.append_all(f.pyodide_story())
    projector.catch_up()
    stream.append(
        source=Source.SHIPLOG,
        event_type="incident.note_added",
        delivery_key="shiplog:incident:broken:note",
        repository=f.REPO,
        data={"incident_id": "not-a-uuid", "kind": "incident", "text": "lost"},
    )

    projector.catch_up()

    assert Incident.objects.count() == 1
    assert "names no known incident" in caplog.text
