"""Writes for incidents: every change is an event appended to the stream."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from incidents import events
from incidents.detection import Finding, findings
from incidents.models import Incident, Severity, Status
from incidents.probes import Probe, probes_from
from releases import projector, stream
from releases.models import DeployPolicy, Release, Source
from releases.selectors import release_detail, release_details

logger = logging.getLogger(__name__)
RELEASE_RULES = "release"
SEVERITY_ORDER = [s.value for s in Severity]
TRANSITIONS = {
    Status.INVESTIGATING: {Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED},
    Status.IDENTIFIED: {Status.INVESTIGATING, Status.MONITORING, Status.RESOLVED},
    Status.MONITORING: {Status.INVESTIGATING, Status.IDENTIFIED, Status.RESOLVED},
    Status.RESOLVED: {Status.INVESTIGATING},  # reopening
}


class InvalidChange(ValueError):
    """A change to an incident that its current state does not allow."""


def _json_time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _finding_data(finding: Finding) -> dict[str, Any]:
    data = asdict(finding)
    data["began_at"] = _json_time(finding.began_at)
    data["evidence"] = [dict(item) for item in finding.evidence]
    return data


def _append(
    *,
    incident_id: uuid.UUID | str,
    event_type: str,
    key: str,
    repository: str,
    data: dict[str, Any],
    place: dict[str, str] | None = None,
    occurred_at: datetime | None = None,
) -> stream.Appended:
    payload = {"incident_id": str(incident_id), "kind": "incident", **data}
    payload.setdefault("name", event_type.removeprefix("incident.").replace("_", " "))
    return stream.append(
        source=Source.SHIPLOG,
        event_type=event_type,
        delivery_key=f"shiplog:incident:{incident_id}:{key}",
        repository=repository,
        data=payload,
        occurred_at=occurred_at,
        tag=(place or {}).get("tag", ""),
        sha=(place or {}).get("sha", ""),
        branch=(place or {}).get("branch", ""),
    )


def _place(release: Release) -> dict[str, str]:
    return {"tag": release.tag, "sha": release.sha, "branch": release.branch}


def detect_after_batch(release_ids: set[int]) -> None:
    """Run the event-driven rules for the releases a projection batch changed."""
    detect_for_releases(release_ids, time_rules=False)


def detect_for_releases(
    release_ids: Iterable[int], *, now: datetime | None = None, time_rules: bool = True
) -> int:
    """Open, extend, reopen or resolve each release's incident; return events appended."""
    now = now or timezone.now()
    appended = 0
    releases = list(Release.objects.filter(pk__in=list(release_ids)))
    details = release_details(releases)
    ids = {
        release.pk: events.incident_id_for(release.repository, release.ref_key, RELEASE_RULES)
        for release in releases
    }
    incidents = {i.pk: i for i in Incident.objects.filter(pk__in=list(ids.values()))}
    for release in releases:
        detail = details[release.pk]
        found = findings(
            repository=release.repository,
            release_name=release.name,
            view=detail.view,
            entries=detail.entries,
            policy=detail.policy,
            now=now,
            time_rules=time_rules,
            probes=probes_from(detail.policy.extra),
        )
        appended += _reconcile(
            release,
            found,
            deployed="deployed" in detail.view.flags,
            incident=incidents.get(ids[release.pk]),
        )
    return appended


def _reconcile(
    release: Release, found: list[Finding], *, deployed: bool, incident: Incident | None
) -> int:
    """Append what changed about the release's incident: `incident` is its projection now."""
    incident_id = events.incident_id_for(release.repository, release.ref_key, RELEASE_RULES)
    place = _place(release)
    count = 0
    if not found:
        if incident is not None and incident.is_open and deployed:
            episode = incident.details.get("episode", 1)
            when = release.deployed_at or timezone.now()
            result = _append(
                incident_id=incident_id,
                event_type=events.RESOLVED,
                key=f"resolved:{episode}",
                repository=release.repository,
                data={
                    "actor": "shiplog",
                    "resolved_at": _json_time(when),
                    "resolution": f"{release.name} deployed on every platform at "
                    f"{when:%Y-%m-%d %H:%M} UTC.",
                },
                place=place,
            )
            count += result.created
            if result.created:
                _request_postmortem(incident_id)
        return count
    worst = max(found, key=lambda f: SEVERITY_ORDER.index(f.severity))
    if incident is None:
        first = found[0]
        result = _append(
            incident_id=incident_id,
            event_type=events.OPENED,
            key="opened",
            repository=release.repository,
            data={
                "actor": "shiplog",
                "rule": first.rule,
                "title": first.title,
                "severity": worst.severity,
                "release_key": release.ref_key,
                "release_name": release.name,
                "finding": _finding_data(first),
            },
            place=place,
        )
        count += result.created
        rest = found[1:]
        episode = 1
    elif not incident.is_open:
        # A maintainer may resolve an incident whose condition still holds ("known, moving
        # on"); only new evidence reopens it, or the same facts would reopen it forever.
        seen = {item.get("position") for item in incident.evidence}
        if all(item.get("position") in seen for f in found for item in f.evidence):
            return count
        episode = int(incident.details.get("episode", 1)) + 1
        result = _append(
            incident_id=incident_id,
            event_type=events.REOPENED,
            key=f"reopened:{episode}",
            repository=release.repository,
            data={"actor": "shiplog", "finding": _finding_data(found[0])},
            place=place,
        )
        count += result.created
        rest = found[1:]
    else:
        episode = int(incident.details.get("episode", 1))
        rest = found
    known = dict(incident.details.get("findings", {})) if incident is not None else {}
    for finding in rest:
        data = _finding_data(finding)
        before = known.get(finding.rule)
        if before is not None and before.get("evidence") == data["evidence"]:
            continue
        marks = ",".join(str(e.get("position")) for e in finding.evidence)
        result = _append(
            incident_id=incident_id,
            event_type=events.EVIDENCE_ADDED,
            key=f"evidence:{episode}:{finding.rule}:{marks}",
            repository=release.repository,
            data={"actor": "shiplog", "finding": data},
            place=place,
        )
        count += result.created
    if incident is not None and SEVERITY_ORDER.index(worst.severity) > SEVERITY_ORDER.index(
        incident.severity
    ):
        result = _append(
            incident_id=incident_id,
            event_type=events.SEVERITY_CHANGED,
            key=f"severity:{episode}:{worst.severity}",
            repository=release.repository,
            data={"actor": "shiplog", "severity": worst.severity, "why": worst.rule},
            place=place,
        )
        count += result.created
    return count


def _request_postmortem(incident_id: uuid.UUID | str) -> None:
    from incidents.tasks import request_postmortem

    transaction.on_commit(lambda: request_postmortem(str(incident_id)))


def _locked(incident_id: uuid.UUID | str) -> Incident:
    """Return the incident, up to date with the stream and locked for this transaction."""
    projector.catch_up()
    try:
        return Incident.objects.select_for_update().get(pk=incident_id)
    except Incident.DoesNotExist as exc:
        raise InvalidChange(f"no incident {incident_id}") from exc


def _release_place(incident: Incident) -> dict[str, str]:
    release = Release.objects.filter(
        repository=incident.repository, ref_key=incident.release_key
    ).first()
    return _place(release) if release is not None else {}


def incident_status_change(
    *, incident_id: uuid.UUID | str, status: str, note: str = "", actor: str
) -> Incident:
    """Move an incident to a new status, validating the transition (reopening allowed)."""
    if status not in Status.values:
        raise InvalidChange(f"status must be one of {', '.join(Status.values)}")
    with transaction.atomic():
        incident = _locked(incident_id)
        current = Status(incident.status)
        if status not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current]))
            raise InvalidChange(
                f"an incident that is {current} can move to {allowed}, not {status}"
            )
        data: dict[str, Any] = {"actor": actor, "from": current, "to": status, "note": note}
        if status == Status.RESOLVED:
            data["resolved_at"] = _json_time(timezone.now())
        _append(
            incident_id=incident.pk,
            event_type=events.STATUS_CHANGED,
            key=str(uuid.uuid4()),
            repository=incident.repository,
            data=data,
            place=_release_place(incident),
        )
        if note:
            _append(
                incident_id=incident.pk,
                event_type=events.NOTE_ADDED,
                key=str(uuid.uuid4()),
                repository=incident.repository,
                data={"actor": actor, "text": note},
                place=_release_place(incident),
            )
        if status == Status.RESOLVED:
            _request_postmortem(incident.pk)
    return _refreshed(incident.pk)


def incident_note_add(*, incident_id: uuid.UUID | str, text: str, actor: str) -> Incident:
    """Add a maintainer's note to an incident's timeline."""
    if not text.strip():
        raise InvalidChange("a note needs some text")
    with transaction.atomic():
        incident = _locked(incident_id)
        _append(
            incident_id=incident.pk,
            event_type=events.NOTE_ADDED,
            key=str(uuid.uuid4()),
            repository=incident.repository,
            data={"actor": actor, "text": text.strip()},
            place=_release_place(incident),
        )
    return _refreshed(incident.pk)


def incident_acknowledge(*, incident_id: uuid.UUID | str, actor: str) -> Incident:
    """Record that a maintainer has seen the incident (once)."""
    with transaction.atomic():
        incident = _locked(incident_id)
        _append(
            incident_id=incident.pk,
            event_type=events.ACKNOWLEDGED,
            key="acknowledged",
            repository=incident.repository,
            data={"actor": actor},
        )
    return _refreshed(incident.pk)


def incident_severity_change(
    *, incident_id: uuid.UUID | str, severity: str, actor: str
) -> Incident:
    """Change an incident's severity."""
    if severity not in Severity.values:
        raise InvalidChange(f"severity must be one of {', '.join(Severity.values)}")
    with transaction.atomic():
        incident = _locked(incident_id)
        if severity == incident.severity:
            raise InvalidChange(f"the incident is already {severity}")
        _append(
            incident_id=incident.pk,
            event_type=events.SEVERITY_CHANGED,
            key=str(uuid.uuid4()),
            repository=incident.repository,
            data={"actor": actor, "severity": severity},
        )
    return _refreshed(incident.pk)


def incident_release_link(
    *, incident_id: uuid.UUID | str, release_key: str, actor: str
) -> Incident:
    """Link another release to an incident (the same blocker hit two releases, say)."""
    with transaction.atomic():
        incident = _locked(incident_id)
        _append(
            incident_id=incident.pk,
            event_type=events.RELEASE_LINKED,
            key=f"linked:{release_key}",
            repository=incident.repository,
            data={"actor": actor, "release_key": release_key},
        )
    return _refreshed(incident.pk)


def action_item_add(
    *, incident_id: uuid.UUID | str, kind: str, text: str, actor: str, item_id: str | None = None
) -> Incident:
    """Add a detective, preventive or corrective action item."""
    if kind not in {"detective", "preventive", "corrective"}:
        raise InvalidChange("an action item is detective, preventive or corrective")
    if not text.strip():
        raise InvalidChange("an action item needs some text")
    item_id = item_id or uuid.uuid4().hex[:12]
    with transaction.atomic():
        incident = _locked(incident_id)
        _append(
            incident_id=incident.pk,
            event_type=events.ACTION_ITEM_ADDED,
            key=f"action:{item_id}",
            repository=incident.repository,
            data={"actor": actor, "item_id": item_id, "kind": kind, "text": text.strip()},
        )
    return _refreshed(incident.pk)


def action_item_complete(*, incident_id: uuid.UUID | str, item_id: str, actor: str) -> Incident:
    """Mark an action item done."""
    with transaction.atomic():
        incident = _locked(incident_id)
        if not incident.action_items.filter(item_id=item_id).exists():
            raise InvalidChange(f"no action item {item_id} on this incident")
        _append(
            incident_id=incident.pk,
            event_type=events.ACTION_ITEM_COMPLETED,
            key=f"action-done:{item_id}",
            repository=incident.repository,
            data={"actor": actor, "item_id": item_id},
        )
    return _refreshed(incident.pk)


def narrative_edit(
    *, incident_id: uuid.UUID | str, section: str, text: str, actor: str
) -> Incident:
    """Store a maintainer's text for a postmortem section; regeneration keeps it."""
    from incidents.postmortem import EDITABLE_SECTIONS

    if section not in EDITABLE_SECTIONS:
        raise InvalidChange(f"section must be one of {', '.join(EDITABLE_SECTIONS)}")
    with transaction.atomic():
        incident = _locked(incident_id)
        _append(
            incident_id=incident.pk,
            event_type=events.NARRATIVE_EDITED,
            key=str(uuid.uuid4()),
            repository=incident.repository,
            data={"actor": actor, "section": section, "text": text},
        )
    return _refreshed(incident.pk)


def _refreshed(incident_id: uuid.UUID | str) -> Incident:
    projector.catch_up()
    return Incident.objects.get(pk=incident_id)


def postmortem_generate(*, incident_id: uuid.UUID | str, actor: str = "shiplog") -> int:
    """Compose the incident's postmortem and record it as a new revision; return its number.

    The revision is keyed by its content, so a task that runs twice records one revision,
    and a regeneration that changes nothing records none.
    """
    from incidents.selectors import postmortem_input  # selectors import this module

    projector.catch_up()
    incident = Incident.objects.get(pk=incident_id)
    body = postmortem_compose(postmortem_input(incident))
    digest = hashlib.sha256(body.encode()).hexdigest()
    existing = incident.postmortems.filter(markdown=body).values_list("revision", flat=True)
    if existing:
        return int(existing[0])
    revision = incident.postmortem_revision + 1
    result = _append(
        incident_id=incident.pk,
        event_type=events.POSTMORTEM_GENERATED,
        key=f"postmortem:{digest}",
        repository=incident.repository,
        data={"actor": actor, "revision": revision, "markdown": body, "sha256": digest},
    )
    projector.catch_up()
    if not result.created:
        incident.refresh_from_db()
        return incident.postmortem_revision
    return revision


def postmortem_compose(data: Any) -> str:
    """Return the Markdown for a postmortem input (kept here so tasks call one service)."""
    from incidents.postmortem import compose

    return compose(data)


def probes_run(*, now: datetime | None = None, client: httpx.Client | None = None) -> int:
    """Check every probe that is due, record each result as an event; return how many ran.

    A probe is due every `every_minutes`, and at once after a deploy newer than its last
    result. Results are keyed by the minute, so a task run twice records one result.
    """
    from releases.projector import policies_for

    now = now or timezone.now()
    documents = DeployPolicy.objects.values_list("repository__full_name", flat=True)
    policies = policies_for(list(documents))
    ran = 0
    own_client = client is None
    http = client or httpx.Client(timeout=10.0, follow_redirects=True)
    try:
        for repository, policy in policies.items():
            probes = probes_from(policy.extra)
            if not probes:
                continue
            for release in _releases_to_probe(repository):
                detail = release_detail(release)
                for probe in probes:
                    if not _due(probe, detail.entries, release, now):
                        continue
                    _record_probe(http, probe, release, now)
                    ran += 1
    finally:
        if own_client:
            http.close()
    projector.catch_up()
    return ran


def _releases_to_probe(repository: str) -> list[Release]:
    """Return the newest tag release that deployed anything, and any with an open incident."""
    releases = Release.objects.filter(repository=repository, ref_kind=Release.RefKind.TAG)
    shipped = releases.exclude(first_deploy_started_at=None).order_by("-started_at")[:1]
    troubled = Incident.objects.filter(repository=repository).exclude(status=Status.RESOLVED)
    keys = set(troubled.values_list("release_key", flat=True))
    return list({r.pk: r for r in [*shipped, *releases.filter(ref_key__in=keys)]}.values())


def _due(probe: Probe, entries: Iterable[Any], release: Release, now: datetime) -> bool:
    results = [e for e in entries if e.kind == "probe" and e.name == probe.name]
    if not results:
        return True
    last = max(e.occurred_at for e in results if e.occurred_at)
    deployed = max(
        (
            e.completed_at
            for e in entries
            if e.kind in {"job", "workflow_run"} and e.completed_at and e.conclusion == "success"
        ),
        default=None,
    )
    return bool(
        now - last >= timedelta(minutes=probe.every_minutes) or (deployed and deployed > last)
    )


def _record_probe(http: httpx.Client, probe: Probe, release: Release, now: datetime) -> None:
    url = probe.url_for(tag=release.tag, repository=release.repository, sha=release.sha)
    started = time.perf_counter()
    error = ""
    try:
        response = http.get(url, timeout=probe.timeout_seconds)
        status = str(response.status_code)
        ok = response.status_code == probe.expect_status
    except httpx.HTTPError as exc:
        status, ok, error = "unreachable", False, type(exc).__name__
    latency = round((time.perf_counter() - started) * 1000, 1)
    stream.append(
        source=Source.SHIPLOG,
        event_type="probe.result",
        delivery_key=f"shiplog:probe:{release.repository}:{release.ref_key}:{probe.name}:"
        f"{now:%Y%m%dT%H%M}",
        repository=release.repository,
        data={
            "kind": "probe",
            "name": probe.name,
            "status": status,
            "conclusion": "success" if ok else "failure",
            "url": url,
            "occurred_at": _json_time(now),
            "extra": {"latency_ms": latency, "error": error},
        },
        occurred_at=now,
        tag=release.tag,
        sha=release.sha,
    )
