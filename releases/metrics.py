"""Delivery figures from the projections: DORA's four keys and time spent blocked. Pure.

Definitions, each computed over a window of days ending now:

- **Deployment frequency**: releases that became deployed on every platform in the window,
  per week.
- **Lead time**: the median time from a release's tag (its first event, for a branch deploy)
  to the moment its last deploy job succeeded, over those deployments.
- **Change failure rate**: of the releases started in the window that have settled (neither
  pending nor still running), the share that failed: an incident opened for it, or it was
  blocked, failed or only partially deployed at some point.
- **Time to restore**: the median time from when an incident's problem began to its
  resolution, over the incidents resolved in the window.
- **Time blocked**: the total time releases spent blocked within a period (a calendar month,
  on the dashboard), counting a release that is still blocked up to the end of the period.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

UNSETTLED = frozenset({"pending", "running"})
TROUBLED = frozenset({"blocked", "failed", "partially_deployed"})


@dataclass(frozen=True, slots=True)
class ReleaseFacts:
    """The times and state of one release that the figures read."""

    repository: str
    ref_key: str
    state: str
    started_at: datetime | None = None
    tagged_at: datetime | None = None
    deployed_at: datetime | None = None
    blocked_at: datetime | None = None
    unblocked_at: datetime | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    """The release and times of one incident that the figures read."""

    repository: str
    release_key: str
    opened_at: datetime
    began_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DoraFigures:
    """DORA's four keys over a window of days ending at `now`."""

    days: int
    deployments: int
    lead_time: timedelta | None
    changes: int
    failed_changes: int
    time_to_restore: timedelta | None
    restored: int

    @property
    def deployments_per_week(self) -> float:
        """Return how many deployments the window saw per seven days."""
        return self.deployments * 7 / self.days

    @property
    def change_failure_rate(self) -> float | None:
        """Return the share of settled changes that failed, or None without any change."""
        return self.failed_changes / self.changes if self.changes else None


def _median(spans: Iterable[timedelta]) -> timedelta | None:
    seconds = [max(span.total_seconds(), 0.0) for span in spans]
    return timedelta(seconds=median(seconds)) if seconds else None


def dora(
    releases: Sequence[ReleaseFacts],
    incidents: Sequence[IncidentFacts],
    *,
    now: datetime,
    days: int = 30,
) -> DoraFigures:
    """Return the four keys for the `days` before `now`."""
    if days <= 0:
        raise ValueError("the window must be at least one day long")
    since = now - timedelta(days=days)

    def inside(moment: datetime | None) -> bool:
        return moment is not None and since <= moment <= now

    deployed = [r for r in releases if inside(r.deployed_at)]
    lead_times = [
        r.deployed_at - start
        for r in deployed
        if r.deployed_at is not None and (start := r.tagged_at or r.started_at) is not None
    ]
    with_incident = {(i.repository, i.release_key) for i in incidents}
    changes = [r for r in releases if inside(r.started_at) and r.state not in UNSETTLED]
    failed = [
        r
        for r in changes
        if (r.repository, r.ref_key) in with_incident
        or r.blocked_at is not None
        or r.state in TROUBLED
        or TROUBLED.intersection(r.flags)
    ]
    resolved = [i for i in incidents if inside(i.resolved_at)]
    restore_times = [
        i.resolved_at - (i.began_at or i.opened_at) for i in resolved if i.resolved_at is not None
    ]
    return DoraFigures(
        days=days,
        deployments=len(deployed),
        lead_time=_median(lead_times),
        changes=len(changes),
        failed_changes=len(failed),
        time_to_restore=_median(restore_times),
        restored=len(resolved),
    )


def time_blocked(releases: Iterable[ReleaseFacts], *, start: datetime, end: datetime) -> timedelta:
    """Return the time releases spent blocked between `start` and `end`, summed.

    A release still blocked (no `unblocked_at`) counts as blocked until `end`.
    """
    total = timedelta(0)
    for release in releases:
        if release.blocked_at is None:
            continue
        until = release.unblocked_at or end
        overlap = min(until, end) - max(release.blocked_at, start)
        if overlap > timedelta(0):
            total += overlap
    return total


def month_start(now: datetime) -> datetime:
    """Return the first moment of `now`'s calendar month, in `now`'s time zone."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def duration_text(span: timedelta | None) -> str:
    """Return a span as people read it on a dashboard: "2 d 17 h", "45 min", "30 s"."""
    if span is None:
        return "—"
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
