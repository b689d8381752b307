"""Snapshots of the projection tables, for tests that compare two ways of building them."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from incidents.models import ActionItem, Incident, IncidentEvent, PostmortemRevision
from releases.models import KnownTag, Release, TimelineEntry


def _without_ids(rows: QuerySet[Any]) -> list[dict[str, Any]]:
    """Return the rows as dicts without their database ids, which differ between builds."""
    return [{k: v for k, v in row.items() if k != "id"} for row in rows.values()]


def incident_state() -> dict[str, Any]:
    """Return every incident projection row."""
    return {
        "incidents": list(Incident.objects.order_by("pk").values()),
        "incident_events": _without_ids(IncidentEvent.objects.order_by("position")),
        "action_items": _without_ids(ActionItem.objects.order_by("incident_id", "item_id")),
        "postmortems": _without_ids(PostmortemRevision.objects.order_by("incident_id", "revision")),
    }


def projection_state() -> dict[str, Any]:
    """Return every projection row, releases named by their keys rather than their ids."""
    refs = dict(Release.objects.values_list("pk", "ref_key"))
    entries = _without_ids(TimelineEntry.objects.order_by("entry_key"))
    for row in entries:
        row["release_id"] = refs.get(row["release_id"])
    return {
        "entries": entries,
        "releases": _without_ids(Release.objects.order_by("repository", "ref_key")),
        "tags": _without_ids(KnownTag.objects.order_by("repository", "tag")),
        **incident_state(),
    }
