"""Reads for incidents: lists, one incident with its timeline, postmortem inputs, lessons."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from incidents import lessons as lessons_module
from incidents.models import ActionItem, Incident, IncidentEvent, PostmortemRevision
from incidents.postmortem import (
    PostmortemInput,
    TimelineLine,
    demote_headings,
    render_html,
    timeline_lines,
)
from releases.models import Release, StreamEvent
from releases.projector import policies_for
from releases.selectors import release_detail


def incident_list(
    *,
    readable: frozenset[str] | None,
    repository: str | None = None,
    status: str | None = None,
    rule: str | None = None,
    release: str | None = None,
    severity: str | None = None,
) -> QuerySet[Incident]:
    """Return incidents the caller may read, newest first, filtered as asked."""
    incidents = Incident.objects.order_by("-opened_at")
    if readable is not None:
        incidents = incidents.filter(repository__in=readable)
    if repository:
        incidents = incidents.filter(repository=repository)
    if status == "open":
        incidents = incidents.exclude(status="resolved")
    elif status:
        incidents = incidents.filter(status=status)
    if rule:
        incidents = incidents.filter(details__findings__has_key=rule) | incidents.filter(rule=rule)
    if release:
        incidents = incidents.filter(release_name=release)
    if severity:
        incidents = incidents.filter(severity=severity)
    return incidents


def _detected_after(incident: Incident) -> timedelta | None:
    positions = [e.get("position") for e in incident.evidence if e.get("position")]
    if not positions:
        return None
    rows = StreamEvent.objects.filter(position__in=[*positions, incident.opened_position])
    times = dict(rows.values_list("position", "recorded_at"))
    opened = times.get(incident.opened_position)
    evidence = [times[p] for p in positions if p in times]
    if opened is None or not evidence:
        return None
    return max(opened - max(evidence), timedelta(0))


def _other_blocked_releases(incident: Incident) -> dict[str, list[str]]:
    since = incident.opened_at - lessons_module.RECURRING_WINDOW
    others: dict[str, list[str]] = defaultdict(list)
    for other in Incident.objects.filter(
        repository=incident.repository, opened_at__gte=since
    ).exclude(pk=incident.pk):
        blocked = other.details.get("findings", {}).get("deploy_blocked", {})
        for blocker in blocked.get("details", {}).get("blocked_by", []):
            others[blocker["job"]].append(other.release_name)
    return dict(others)


def _after_block(incident: Incident, entry: Any) -> str:
    # Both on Shiplog's clock: the incident opened when the blocking failure arrived.
    if entry.occurred_at is None:
        return ""
    seconds = int((entry.occurred_at - incident.opened_at).total_seconds())
    if seconds < 0:
        return ""
    return f", {seconds // 60} min {seconds % 60} s after the incident opened"


@dataclass(frozen=True)
class IncidentContext:
    """An incident with its release's entries and the lessons drawn from it."""

    incident: Incident
    entries: list[Any]
    lessons: list[lessons_module.Lesson]
    retries: list[dict[str, Any]]


def incident_context(incident: Incident) -> IncidentContext:
    """Return what the postmortem and the lessons page read for one incident."""
    release = Release.objects.filter(
        repository=incident.repository, ref_key=incident.release_key
    ).first()
    entries = release_detail(release).entries if release is not None else []
    retries = [
        {
            "position": e.position,
            "text": f"{e.name.removeprefix('retry ')} at {e.occurred_at:%Y-%m-%d %H:%M:%S} UTC"
            + _after_block(incident, e),
        }
        for e in entries
        if e.platform == "shiplog" and e.kind == "retry" and e.status in {"accepted", "failed"}
    ]
    policy = policies_for([incident.repository])[incident.repository]
    ctx = lessons_module.Context(
        repository=incident.repository,
        release_name=incident.release_name,
        findings=incident.details.get("findings", {}),
        entries=entries,
        began_at=incident.began_at,
        detected_after=_detected_after(incident),
        shiplog_retries=sum((1 for r in retries if "accepted" in str(r["text"])), 0),
        has_probes=bool(policy.extra.get("probes")),
        other_blocked_releases=_other_blocked_releases(incident),
    )
    return IncidentContext(incident, entries, lessons_module.analyse(ctx), retries)


def postmortem_input(incident: Incident) -> PostmortemInput:
    """Return everything the postmortem of `incident` is composed from."""
    context = incident_context(incident)
    incident_events = list(IncidentEvent.objects.filter(incident=incident))
    return PostmortemInput(
        title=incident.title,
        repository=incident.repository,
        release_name=incident.release_name,
        severity=incident.severity,
        status=incident.status,
        began_at=incident.began_at,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        resolution=incident.resolution,
        findings=incident.details.get("findings", {}),
        narrative=incident.details.get("narrative", {}),
        detected_after=_detected_after(incident),
        timeline=timeline_lines(context.entries, incident_events),
        lessons=context.lessons,
        action_items=[
            {"kind": item.kind, "text": item.text, "done": item.done}
            for item in incident.action_items.all()
        ],
        event_url=settings.SHIPLOG_PUBLIC_URL.rstrip("/") + "/stream/{position}/",
        retries=context.retries,
    )


@dataclass(frozen=True)
class LessonSummary:
    """One kind of lesson across incidents, with counts and where it came from."""

    key: str
    title: str
    count: int
    incidents: list[dict[str, Any]]
    subjects: dict[str, int]
    action: str


def lessons_across(
    *, readable: frozenset[str] | None, repository: str | None = None
) -> list[LessonSummary]:
    """Return the lessons of every incident the caller may read, grouped and counted."""
    grouped: dict[str, list[tuple[Incident, lessons_module.Lesson]]] = defaultdict(list)
    for incident in incident_list(readable=readable, repository=repository)[:500]:
        for lesson in incident_context(incident).lessons:
            grouped[lesson.key].append((incident, lesson))
    summaries = []
    for key, found in grouped.items():
        subjects = Counter(lesson.subject for _, lesson in found if lesson.subject)
        summaries.append(
            LessonSummary(
                key=key,
                title=found[0][1].title,
                count=len(found),
                incidents=[
                    {
                        "id": str(incident.pk),
                        "title": incident.title,
                        "release": incident.release_name,
                        "repository": incident.repository,
                        "text": lesson.text,
                        "evidence": list(lesson.evidence),
                    }
                    for incident, lesson in found
                ],
                subjects=dict(subjects),
                action=found[0][1].action,
            )
        )
    summaries.sort(key=lambda s: (-s.count, s.key))
    return summaries


# ----------------------------------------------------------------------------- pages


def incident_get(*, incident_id: str, readable: frozenset[str] | None) -> Incident | None:
    """Return the incident if the caller may read it."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None or (readable is not None and incident.repository not in readable):
        return None
    return incident


def incidents_for_release(*, repository: str, release_key: str) -> list[Incident]:
    """Return the incidents opened for one release, newest first."""
    return list(
        Incident.objects.filter(repository=repository, release_key=release_key).order_by(
            "-opened_at"
        )
    )


@dataclass(frozen=True)
class IncidentPage:
    """An incident with everything its page shows."""

    incident: Incident
    timeline: list[TimelineLine]
    action_items: list[ActionItem]
    releases: list[Release]
    missing_releases: list[str]
    lessons: list[lessons_module.Lesson]
    latest_postmortem: PostmortemRevision | None


def incident_page(incident: Incident) -> IncidentPage:
    """Return an incident with its timeline across both platforms, its items and releases."""
    context = incident_context(incident)
    incident_events = list(IncidentEvent.objects.filter(incident=incident))
    keys = [incident.release_key, *incident.details.get("links", [])]
    keys = [key for key in dict.fromkeys(keys) if key]
    found = {
        release.ref_key: release
        for release in Release.objects.filter(repository=incident.repository, ref_key__in=keys)
    }
    return IncidentPage(
        incident=incident,
        timeline=timeline_lines(context.entries, incident_events),
        action_items=list(incident.action_items.all()),
        releases=[found[key] for key in keys if key in found],
        missing_releases=[key for key in keys if key not in found],
        lessons=context.lessons,
        latest_postmortem=incident.postmortems.order_by("-revision").first(),
    )


@dataclass(frozen=True)
class PostmortemPage:
    """One revision of a postmortem, the others, and the maintainers' own text."""

    incident: Incident
    revision: PostmortemRevision | None
    revisions: list[int]
    html: str
    narrative: dict[str, str]


def postmortem_page(incident: Incident, *, revision: int | None = None) -> PostmortemPage:
    """Return a postmortem revision (the latest by default) rendered to sanitised HTML."""
    revisions = incident.postmortems.order_by("-revision")
    chosen = revisions.filter(revision=revision).first() if revision else revisions.first()
    return PostmortemPage(
        incident=incident,
        revision=chosen,
        revisions=list(revisions.values_list("revision", flat=True)),
        html=demote_headings(render_html(chosen.markdown)) if chosen is not None else "",
        narrative=dict(incident.details.get("narrative", {})),
    )
