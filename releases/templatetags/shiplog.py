"""Template helpers for the pages: badges that pair colour with text and a symbol, durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from releases.metrics import duration_text

register = template.Library()

PLATFORMS = {"github": "GitHub Actions", "circleci": "CircleCI", "api": "API", "shiplog": "Shiplog"}
# Every state shows a symbol and a word beside its colour, so colour is never the only signal.
STATES = {
    "pending": ("◌", "Pending"),
    "running": ("◐", "Running"),
    "blocked": ("⊘", "Blocked"),
    "failed": ("✗", "Failed"),
    "partially_deployed": ("◑", "Partially deployed"),
    "deployed": ("✓", "Deployed"),
}
OUTCOMES = {
    "success": ("✓", "Succeeded"),
    "failure": ("✗", "Failed"),
    "failed": ("✗", "Failed"),
    "running": ("◐", "Running"),
    "other": ("\N{EN DASH}", "Other"),
    "blocked": ("⊘", "Blocked, never ran"),
    "not_run": ("⊘", "Never ran"),
    "never_ran": ("⊘", "Never ran"),
    "pending": ("◌", "Waiting"),
}
STATUSES = {
    "investigating": ("●", "Investigating"),
    "identified": ("◆", "Identified"),
    "monitoring": ("◐", "Monitoring"),
    "resolved": ("✓", "Resolved"),
}
SEVERITIES = {
    "low": ("▁", "Low"),
    "medium": ("▃", "Medium"),
    "high": ("▅", "High"),
    "critical": ("█", "Critical"),
}


def _badge(kind: str, value: str, table: dict[str, tuple[str, str]]) -> SafeString:
    symbol, word = table.get(value, ("•", value.replace("_", " ").capitalize()))
    css = value.replace("_", "-")
    return format_html(
        '<span class="badge badge--{}-{}"><span aria-hidden="true">{}</span> {}</span>',
        kind,
        css,
        symbol,
        word,
    )


@register.simple_tag
def state_badge(state: str) -> SafeString:
    """Return a release state as a badge."""
    return _badge("state", state, STATES)


@register.simple_tag
def outcome_badge(outcome: str) -> SafeString:
    """Return how a job, run or deploy ended, as a badge."""
    return _badge("outcome", outcome, OUTCOMES)


@register.simple_tag
def status_badge(status: str) -> SafeString:
    """Return an incident status as a badge."""
    return _badge("status", status, STATUSES)


@register.simple_tag
def severity_badge(severity: str) -> SafeString:
    """Return an incident severity as a badge."""
    return _badge("severity", severity, SEVERITIES)


@register.filter
def platform_name(platform: str) -> str:
    """Return a platform's name as people know it."""
    return PLATFORMS.get(platform, platform)


@register.filter
def duration(span: timedelta | None) -> str:
    """Return a span as "2 d 17 h", "45 min"."""
    return duration_text(span)


@register.filter
def since(start: datetime | None, end: datetime | None = None) -> str:
    """Return the time from `start` to `end` (or to now)."""
    if start is None:
        return "—"
    return duration_text((end or timezone.now()) - start)


@register.filter
def time_blocked(release: Any) -> str:
    """Return how long a release was (or, so far, is) blocked."""
    if release.blocked_at is None:
        return "—"
    end = release.unblocked_at or timezone.now()
    return duration_text(end - release.blocked_at)


@register.filter
def utc(moment: datetime | None) -> str:
    """Return a moment as "2024-07-26 13:54 UTC"."""
    if moment is None:
        return "—"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@register.filter
def short_sha(sha: str) -> str:
    """Return a commit's first eight characters."""
    return sha[:8]


_CODE = re.compile(r"`([^`]+)`")


@register.filter
def inline_code(text: str) -> SafeString:
    """Return text with `backticked` words as <code>, everything else escaped."""
    escaped = str(conditional_escape(text))
    return mark_safe(_CODE.sub(r"<code>\1</code>", escaped))  # noqa: S308 - escaped above


@register.filter
def words(value: object) -> str:
    """Return an identifier as words: workflow_run becomes "workflow run"."""
    return str(value).replace("_", " ")


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    """Return mapping[key], or "" when it is missing."""
    return mapping.get(key, "") if isinstance(mapping, dict) else ""


@register.filter
def percent(value: float | None) -> str:
    """Return a share as a whole percentage, or a dash."""
    return "—" if value is None else f"{value:.0%}"
