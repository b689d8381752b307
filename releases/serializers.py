"""Shapes of the releases API's answers and requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from releases.models import Release, StreamEvent
from releases.projections import Entry
from releases.selectors import ReleaseDetail


class ReleaseSerializer(serializers.ModelSerializer[Release]):
    name = serializers.CharField(read_only=True)
    flags = serializers.ListField(child=serializers.CharField(), source="flag_list")
    time_blocked_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "repository",
            "name",
            "ref_kind",
            "tag",
            "branch",
            "sha",
            "state",
            "flags",
            "blocking",
            "started_at",
            "tagged_at",
            "first_deploy_started_at",
            "deployed_at",
            "blocked_at",
            "unblocked_at",
            "time_blocked_seconds",
            "last_activity_at",
            "last_position",
        ]

    def get_time_blocked_seconds(self, release: Release) -> float | None:
        """Return how long the release was (or is, so far) blocked."""
        return time_blocked_seconds(release)


def _datetime(value: datetime | None) -> str | None:
    """Return a date-time as DRF's DateTimeField shows it: ISO 8601, "Z" for UTC."""
    if not value:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def release_data(release: Release) -> dict[str, Any]:
    """Return what ReleaseSerializer returns for `release`, without its per-field machinery.

    The timeline and the release list are read by bots on every poll.
    """
    return {
        "repository": release.repository,
        "name": release.name,
        "ref_kind": release.ref_kind,
        "tag": release.tag,
        "branch": release.branch,
        "sha": release.sha,
        "state": release.state,
        "flags": release.flag_list,
        "blocking": release.blocking,
        "started_at": _datetime(release.started_at),
        "tagged_at": _datetime(release.tagged_at),
        "first_deploy_started_at": _datetime(release.first_deploy_started_at),
        "deployed_at": _datetime(release.deployed_at),
        "blocked_at": _datetime(release.blocked_at),
        "unblocked_at": _datetime(release.unblocked_at),
        "time_blocked_seconds": time_blocked_seconds(release),
        "last_activity_at": _datetime(release.last_activity_at),
        "last_position": release.last_position,
    }


def time_blocked_seconds(release: Release) -> float | None:
    """Return how long the release was (or is, so far) blocked."""
    if release.blocked_at is None:
        return None
    end = release.unblocked_at or release.last_activity_at
    if end is None or end < release.blocked_at:
        return None
    return (end - release.blocked_at).total_seconds()


def stream_event_data(row: dict[str, Any]) -> dict[str, Any]:
    """Return a row of `stream_page_rows` as StreamEventSerializer shows it."""
    return {
        **row,
        "event_id": str(row["event_id"]),
        "occurred_at": _datetime(row["occurred_at"]),
        "recorded_at": _datetime(row["recorded_at"]),
    }


def entry_data(entry: Entry, role: str) -> dict[str, Any]:
    """Return one timeline entry as the API shows it."""
    return {
        "platform": entry.platform,
        "kind": entry.kind,
        "name": entry.name,
        "workflow": entry.workflow_name,
        "role": role,
        "status": entry.status,
        "conclusion": entry.conclusion,
        "attempt": entry.attempt,
        "run_id": entry.run_id,
        "job_number": entry.job_number,
        "started": entry.started_at,
        "completed": entry.completed_at,
        "occurred": entry.occurred_at,
        "url": entry.url,
        "position": entry.position,
        "first_position": entry.first_position,
        "details": dict(entry.extra),
    }


def gate_data(detail: ReleaseDetail) -> dict[str, Any]:
    """Return the gate's answer: may this release deploy now, and if not, why."""
    view = detail.view

    def job(entry: Entry) -> dict[str, Any]:
        return {
            "job": entry.name,
            "platform": entry.platform,
            "workflow": entry.workflow_name,
            "status": entry.status,
            "conclusion": entry.conclusion,
            "url": entry.url,
        }

    return {
        "repository": detail.release.repository,
        "release": detail.release.name,
        "deployable": view.deployable,
        "state": view.state,
        "flags": list(view.flags),
        "blocking": [job(e) for e in view.gate_blocking],
        "advisory_failures": [job(e) for e in view.advisory_failures],
        "pending": [job(e) for e in view.pending],
        "blocking_chain": detail.release.blocking,
        "policy": "default" if detail.policy.is_default else "repository",
    }


class StreamEventSerializer(serializers.ModelSerializer[StreamEvent]):
    class Meta:
        model = StreamEvent
        fields = [
            "position",
            "event_id",
            "source",
            "event_type",
            "repository",
            "sha",
            "branch",
            "tag",
            "occurred_at",
            "recorded_at",
            "recognition",
            "data",
        ]


class CustomEventSerializer(serializers.Serializer[dict[str, Any]]):
    """A bot's own fact: a deploy marker, a probe result, an annotation."""

    repository = serializers.RegexField(r"^[\w.-]+/[\w.-]+$", max_length=200)
    type = serializers.RegexField(
        r"^[a-z][a-z0-9_.-]*$",
        max_length=100,
        help_text="What happened, e.g. deploy.cdn_upload_finished (lower case, dots).",
    )
    kind = serializers.ChoiceField(["marker", "probe", "annotation", "deploy"], default="marker")
    name = serializers.CharField(max_length=300, min_length=1)
    tag = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    branch = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)
    sha = serializers.RegexField(r"^[0-9a-f]{7,64}$", required=False, default="")
    status = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
    conclusion = serializers.ChoiceField(
        ["", "success", "failure", "cancelled", "timed_out", "neutral", "skipped"],
        required=False,
        default="",
    )
    url = serializers.URLField(max_length=1000, required=False, default="")
    occurred_at = serializers.DateTimeField(required=False)
    details = serializers.DictField(required=False, default=dict)
    idempotency_key = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Require something that places the event: a tag, a branch or a commit."""
        if not (attrs.get("tag") or attrs.get("sha") or attrs.get("branch")):
            raise serializers.ValidationError("give a tag, a branch or a sha for the event")
        return attrs


class PolicySerializer(serializers.Serializer[dict[str, Any]]):
    document = serializers.CharField(max_length=100_000, help_text="The policy as TOML.")
