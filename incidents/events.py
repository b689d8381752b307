"""The incident events Shiplog appends to the stream, and their deterministic keys.

An incident is a stream of these facts; the `Incident` rows are their projection. Keys are
deterministic where Shiplog itself decides (detection), so that a retried task or a second
worker appends nothing new.
"""

from __future__ import annotations

import uuid

OPENED = "incident.opened"
REOPENED = "incident.reopened"
ACKNOWLEDGED = "incident.acknowledged"
SEVERITY_CHANGED = "incident.severity_changed"
STATUS_CHANGED = "incident.status_changed"
NOTE_ADDED = "incident.note_added"
RELEASE_LINKED = "incident.release_linked"
EVIDENCE_ADDED = "incident.evidence_added"
ACTION_ITEM_ADDED = "incident.action_item_added"
ACTION_ITEM_COMPLETED = "incident.action_item_completed"
RESOLVED = "incident.resolved"
POSTMORTEM_GENERATED = "incident.postmortem_generated"
NARRATIVE_EDITED = "incident.narrative_edited"

ALL = (
    OPENED,
    REOPENED,
    ACKNOWLEDGED,
    SEVERITY_CHANGED,
    STATUS_CHANGED,
    NOTE_ADDED,
    RELEASE_LINKED,
    EVIDENCE_ADDED,
    ACTION_ITEM_ADDED,
    ACTION_ITEM_COMPLETED,
    RESOLVED,
    POSTMORTEM_GENERATED,
    NARRATIVE_EDITED,
)

_NAMESPACE = uuid.UUID("0f5e3a4c-6b1d-4e7a-9c2b-3d8f1a6e5b70")


def incident_id_for(repository: str, release_key: str, rule: str) -> uuid.UUID:
    """Return the one incident id for a rule on a release (or on a repository's probe)."""
    return uuid.uuid5(_NAMESPACE, f"{repository}|{release_key}|{rule}")
