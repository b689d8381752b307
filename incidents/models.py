"""Incident projections, rebuilt from the incident events in the stream."""

from __future__ import annotations

import uuid

from django.db import models


class Status(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Incident(models.Model):
    """Projection: one incident, as its events in the stream describe it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repository = models.CharField(max_length=200)
    release_key = models.CharField(max_length=320, blank=True, help_text="tag:<name> or ...")
    release_name = models.CharField(max_length=300, blank=True)
    rule = models.CharField(max_length=60)
    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    evidence = models.JSONField(default=list, help_text="Stream positions with what they prove.")
    details = models.JSONField(default=dict)
    began_at = models.DateTimeField(null=True, help_text="When the problem began.")
    opened_at = models.DateTimeField(help_text="When Shiplog opened the incident.")
    acknowledged_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)
    resolution = models.TextField(blank=True)
    opened_position = models.BigIntegerField()
    last_position = models.BigIntegerField()
    postmortem_revision = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["repository", "status"], name="incident_repo_status"),
            models.Index(fields=["status", "-opened_at"], name="incident_status_opened"),
            models.Index(fields=["repository", "release_key"], name="incident_release"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        """Return whether the incident is not resolved."""
        return self.status != Status.RESOLVED


class IncidentEvent(models.Model):
    """Projection: one event on an incident's timeline, in stream order."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    position = models.BigIntegerField(unique=True)
    event_type = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=150, blank=True)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.position}"


class ActionItem(models.Model):
    """Projection: a follow-up from an incident, typed as in a postmortem."""

    class Kind(models.TextChoices):
        DETECTIVE = "detective", "Detective"
        PREVENTIVE = "preventive", "Preventive"
        CORRECTIVE = "corrective", "Corrective"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="action_items")
    item_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField()
    done = models.BooleanField(default=False)
    added_position = models.BigIntegerField()
    done_position = models.BigIntegerField(null=True)

    class Meta:
        ordering = ["added_position"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "item_id"], name="action_item_unique")
        ]

    def __str__(self) -> str:
        return self.text


class PostmortemRevision(models.Model):
    """Projection: one generated revision of an incident's postmortem; every one is kept."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="postmortems")
    revision = models.PositiveIntegerField()
    markdown = models.TextField()
    generated_at = models.DateTimeField()
    position = models.BigIntegerField()

    class Meta:
        ordering = ["revision"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "revision"], name="postmortem_revision")
        ]

    def __str__(self) -> str:
        return f"postmortem r{self.revision}"
