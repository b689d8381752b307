"""Fold incident events from the stream into the incident tables. No decisions here."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from incidents import events
from incidents.models import ActionItem, Incident, IncidentEvent, PostmortemRevision, Status
from releases.projections import StreamRow
from releases.projector import Projection

logger = logging.getLogger(__name__)
SEVERITY_ORDER = ("low", "medium", "high", "critical")


def _when(value: Any, default: datetime) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else default


def _merge_evidence(current: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Any]:
    seen = {(item.get("position"), item.get("why")) for item in current}
    merged = list(current)
    for item in new:
        if (item.get("position"), item.get("why")) not in seen:
            merged.append(item)
            seen.add((item.get("position"), item.get("why")))
    return merged


def summary_of(findings: dict[str, Any]) -> str:
    """Return the incident summary: every finding that has held, in the order they came."""
    return " ".join(f["summary"] for f in findings.values() if f.get("summary"))


# Event kinds whose projection writes rows that refer to the incident.
_WRITES_RELATED = {
    events.ACTION_ITEM_ADDED,
    events.ACTION_ITEM_COMPLETED,
    events.POSTMORTEM_GENERATED,
}
_INCIDENT_FIELDS = [f.name for f in Incident._meta.concrete_fields if not f.primary_key]


def _incident_id(row: StreamRow) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(row.data.get("incident_id")))
    except ValueError:
        return None


def _store(changed: dict[uuid.UUID, Incident], pending: list[IncidentEvent]) -> None:
    """Write the incidents changed and the events applied so far, then forget them."""
    if changed:
        Incident.objects.bulk_create(
            list(changed.values()),
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=_INCIDENT_FIELDS,
        )
        changed.clear()
    if pending:
        IncidentEvent.objects.bulk_create(pending, ignore_conflicts=True)
        pending.clear()


class IncidentProjection(Projection):
    def reset(self) -> None:
        """Delete every incident row (they are all rebuilt from the stream)."""
        Incident.objects.all().delete()

    def apply(self, rows: Sequence[StreamRow]) -> None:
        """Apply the incident events among `rows`.

        A batch's incidents are read in one query and written back in one upsert, with their
        events in one insert: detection appends several events per release it looks at.
        """
        mine = [
            row
            for row in rows
            if row.source == "shiplog" and row.event_type.startswith("incident.")
        ]
        if not mine:
            return
        wanted = {found for row in mine if (found := _incident_id(row)) is not None}
        known: dict[uuid.UUID, Incident] = {i.pk: i for i in Incident.objects.filter(pk__in=wanted)}
        changed: dict[uuid.UUID, Incident] = {}
        pending: list[IncidentEvent] = []
        for row in mine:
            data = dict(row.data)
            incident_id = _incident_id(row)
            incident = known.get(incident_id) if incident_id else None
            if incident is None and incident_id and row.event_type == events.OPENED:
                incident = known[incident_id] = self._open(row, data)
            if incident is None:
                logger.warning("incident event at %s names no known incident", row.position)
                continue
            if row.event_type != events.OPENED:
                if row.event_type in _WRITES_RELATED:
                    # Its rows refer to the incident, which must be stored before them.
                    _store(changed, pending)
                self._apply(incident, row, data)
            incident.last_position = max(incident.last_position, row.position)
            changed[incident.pk] = incident
            pending.append(
                IncidentEvent(
                    incident=incident,
                    position=row.position,
                    event_type=row.event_type,
                    occurred_at=row.occurred_at,
                    actor=str(data.get("actor", "")),
                    data=data,
                )
            )
        _store(changed, pending)

    @staticmethod
    def _open(row: StreamRow, data: dict[str, Any]) -> Incident:
        finding = data.get("finding", {})
        findings = {finding["rule"]: finding} if finding else {}
        return Incident(
            id=_incident_id(row),
            repository=row.repository,
            release_key=data.get("release_key", ""),
            release_name=data.get("release_name", ""),
            rule=data.get("rule", ""),
            title=data.get("title", ""),
            summary=summary_of(findings),
            status=Status.INVESTIGATING,
            severity=data.get("severity", "medium"),
            evidence=list(finding.get("evidence", [])),
            details={"findings": findings, "episode": 1, "narrative": {}, "links": []},
            began_at=_when(finding.get("began_at"), row.occurred_at),
            opened_at=row.occurred_at,
            opened_position=row.position,
            last_position=row.position,
        )

    @staticmethod
    def _apply(incident: Incident, row: StreamRow, data: dict[str, Any]) -> None:
        details = dict(incident.details)
        kind = row.event_type
        if kind in (events.EVIDENCE_ADDED, events.REOPENED):
            finding = data.get("finding", {})
            if finding:
                findings = dict(details.get("findings", {}))
                findings[finding["rule"]] = finding
                details["findings"] = findings
                incident.summary = summary_of(findings)
                incident.evidence = _merge_evidence(incident.evidence, finding.get("evidence", []))
            if kind == events.REOPENED:
                incident.status = Status.INVESTIGATING
                incident.resolved_at = None
                incident.resolution = ""
                details["episode"] = int(details.get("episode", 1)) + 1
        elif kind == events.ACKNOWLEDGED:
            incident.acknowledged_at = incident.acknowledged_at or row.occurred_at
        elif kind == events.SEVERITY_CHANGED:
            incident.severity = data["severity"]
        elif kind == events.STATUS_CHANGED:
            incident.status = data["to"]
            if data["to"] == Status.RESOLVED:
                incident.resolved_at = _when(data.get("resolved_at"), row.occurred_at)
                incident.resolution = data.get("note", "")
            elif incident.resolved_at is not None:
                incident.resolved_at = None
                details["episode"] = int(details.get("episode", 1)) + 1
        elif kind == events.RESOLVED:
            incident.status = Status.RESOLVED
            incident.resolved_at = _when(data.get("resolved_at"), row.occurred_at)
            incident.resolution = data.get("resolution", "")
            details["resolved_by"] = data.get("actor", "")
        elif kind == events.RELEASE_LINKED:
            links = list(details.get("links", []))
            if data.get("release_key") not in links:
                links.append(data.get("release_key"))
            details["links"] = links
        elif kind == events.ACTION_ITEM_ADDED:
            ActionItem.objects.get_or_create(
                incident=incident,
                item_id=data["item_id"],
                defaults={
                    "kind": data["kind"],
                    "text": data["text"],
                    "added_position": row.position,
                },
            )
        elif kind == events.ACTION_ITEM_COMPLETED:
            ActionItem.objects.filter(incident=incident, item_id=data["item_id"]).update(
                done=True, done_position=row.position
            )
        elif kind == events.POSTMORTEM_GENERATED:
            PostmortemRevision.objects.get_or_create(
                incident=incident,
                revision=data["revision"],
                defaults={
                    "markdown": data["markdown"],
                    "generated_at": row.occurred_at,
                    "position": row.position,
                },
            )
            incident.postmortem_revision = max(incident.postmortem_revision, data["revision"])
        elif kind == events.NARRATIVE_EDITED:
            narrative = dict(details.get("narrative", {}))
            narrative[data["section"]] = data["text"]
            details["narrative"] = narrative
        incident.details = details
