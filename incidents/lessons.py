"""Lessons learned: deterministic analysers over an incident and its releases' timelines.

Each analyser looks at the same `Context` and returns lessons that cite their evidence, with
the action item that would prevent a repeat. `aggregate` groups lessons across incidents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from releases.projections import Entry

BROWSER = re.compile(r"firefox|chrome|chromium|safari|webkit|browser|selenium|playwright", re.I)
SLOW_DETECTION = timedelta(minutes=15)
RECURRING_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class Lesson:
    """One thing learned, with its evidence and the action that follows from it."""

    key: str
    title: str
    text: str
    evidence: Sequence[dict[str, Any]] = ()
    action_kind: str = "preventive"
    action: str = ""
    subject: str = ""  # what the lesson is about (a job name), for aggregation


@dataclass(frozen=True)
class Context:
    """What the analysers read: the incident's findings and its release's entries."""

    repository: str
    release_name: str
    findings: dict[str, dict[str, Any]]
    entries: Sequence[Entry]
    began_at: datetime | None
    detected_after: timedelta | None
    shiplog_retries: int
    has_probes: bool
    other_blocked_releases: dict[str, list[str]] = field(default_factory=dict)


def _blockers(ctx: Context) -> list[dict[str, Any]]:
    blocked = ctx.findings.get("deploy_blocked", {})
    details = blocked.get("details", {})
    return [dict(b, deploy=details.get("deploy", "")) for b in details.get("blocked_by", [])]


def _cite(ctx: Context, job: str) -> list[dict[str, Any]]:
    return [
        {"position": e.position, "why": f"{e.name} {e.conclusion or e.status}", "url": e.url}
        for e in ctx.entries
        if e.kind == "job" and e.name == job and e.failed
    ]


def non_core_gate(ctx: Context) -> list[Lesson]:
    """A test job that is not core to the release gated its deploy."""
    lessons = []
    for blocker in _blockers(ctx):
        job = blocker["job"]
        if blocker.get("role") != "advisory" and "test" not in job:
            continue
        lessons.append(
            Lesson(
                key="non_core_gate",
                title="A non-core test gated the deploy",
                text=f"`{job}` {blocker['conclusion']} and kept `{blocker['deploy']}` from "
                "running: the deploy waited on a test that does not decide whether the "
                "release works.",
                evidence=_cite(ctx, job),
                action_kind="preventive",
                action=f"Gate `{blocker['deploy']}` only on core tests: mark `{job}` advisory "
                "in the deploy policy and drop it from the deploy job's requirements, so "
                "Shiplog's gate reports it without blocking.",
                subject=job,
            )
        )
    return lessons


def split_deploy(ctx: Context) -> list[Lesson]:
    """The deploy is split across platforms with no coordinator, and one half shipped."""
    partial = ctx.findings.get("partial_deploy")
    if not partial:
        return []
    details = partial.get("details", {})
    shipped = ", ".join(f"`{u['deploy']}` ({u['platform']})" for u in details.get("shipped", []))
    missing = ", ".join(f"`{u['deploy']}` ({u['platform']})" for u in details.get("missing", []))
    return [
        Lesson(
            key="split_deploy",
            title="A deploy split across two platforms with no coordinator",
            text=f"{shipped} shipped while {missing} did not: each platform deployed on its "
            "own trigger, so one half went out without the other.",
            evidence=list(partial.get("evidence", [])),
            action_kind="preventive",
            action="Make one job the coordinator: CircleCI's `deploy-release` dispatches the "
            "GitHub deploy workflow (`POST /repos/{owner}/{repo}/actions/workflows/"
            "deploy_release.yml/dispatches`, a token with Actions: write) instead of "
            "both starting independently.",
        )
    ]


def browser_timeouts(ctx: Context) -> list[Lesson]:
    """Browser tests failed or timed out on the way to the deploy."""
    lessons = []
    for blocker in _blockers(ctx):
        job = blocker["job"]
        if not BROWSER.search(job):
            continue
        timed_out = blocker["conclusion"] == "timed_out"
        lessons.append(
            Lesson(
                key="browser_timeouts",
                title="Browser tests time out" if timed_out else "Browser tests fail",
                text=f"`{job}` runs tests in a browser and "
                f"{'timed out' if timed_out else 'failed'}; browser tests are slow and "
                "flaky, and this one stood between the release and its users.",
                evidence=_cite(ctx, job),
                action_kind="corrective",
                action=f"Give the slow tests in `{job}` a longer driver timeout or quarantine "
                "them, and record the job as flaky in the retry policy.",
                subject=job,
            )
        )
    return lessons


def manual_reruns(ctx: Context) -> list[Lesson]:
    """People re-ran jobs by hand before the release recovered."""
    reruns = [
        e
        for e in ctx.entries
        if e.kind == "workflow_run" and e.attempt > 1 and not e.extra.get("caused_by")
    ]
    circleci: dict[tuple[str, str], set[str]] = {}
    for e in ctx.entries:
        if e.platform == "circleci" and e.kind == "workflow_run" and e.pipeline_id:
            circleci.setdefault((e.pipeline_id, e.name), set()).add(e.run_id)
    extra_workflows = sum((len(ids) - 1 for ids in circleci.values()), 0)
    manual = len(reruns) + max(0, extra_workflows - ctx.shiplog_retries)
    if manual <= 0:
        return []
    return [
        Lesson(
            key="manual_reruns",
            title="Manual reruns before recovery",
            text=f"{manual} rerun(s) were started by hand before the release recovered.",
            evidence=[
                {"position": e.position, "why": f"{e.name} attempt {e.attempt}"} for e in reruns
            ],
            action_kind="corrective",
            action="Let Shiplog's retry policy rerun blocked deploys whose blocker qualifies "
            "(advisory, timed out or flaky), so nobody has to watch for it.",
        )
    ]


def slow_detection(ctx: Context) -> list[Lesson]:
    """The problem was noticed long after it began."""
    if ctx.detected_after is None or ctx.detected_after <= SLOW_DETECTION:
        return []
    minutes = int(ctx.detected_after.total_seconds() // 60)
    return [
        Lesson(
            key="slow_detection",
            title="Slow detection",
            text=f"The incident was opened {minutes} minutes after its evidence arrived.",
            action_kind="detective",
            action="Check that webhooks from both platforms reach Shiplog and that workers "
            "and beat are running.",
        )
    ]


def no_probe(ctx: Context) -> list[Lesson]:
    """No probe watched the public side of the release."""
    if ctx.has_probes:
        return []
    return [
        Lesson(
            key="no_probe",
            title="No probe configured",
            text="Nothing checked what users see (the console page, the CDN files), so the "
            "outage was reported by a user instead of noticed by a check.",
            action_kind="detective",
            action="Add probes to the policy for the public URLs of each release, e.g. "
            "`https://cdn.jsdelivr.net/pyodide/v{version}/full/pyodide.mjs` and the console.",
        )
    ]


def recurring_blocker(ctx: Context) -> list[Lesson]:
    """The same job has blocked two or more releases within 90 days."""
    lessons = []
    for blocker in _blockers(ctx):
        releases = sorted({ctx.release_name, *ctx.other_blocked_releases.get(blocker["job"], [])})
        if len(releases) < 2:
            continue
        lessons.append(
            Lesson(
                key="recurring_blocker",
                title="A recurring blocker",
                text=f"`{blocker['job']}` has blocked {len(releases)} releases within 90 days: "
                f"{', '.join(releases)}.",
                evidence=_cite(ctx, blocker["job"]),
                action_kind="preventive",
                action=f"Fix or quarantine `{blocker['job']}`; it keeps blocking releases.",
                subject=blocker["job"],
            )
        )
    return lessons


ANALYSERS: tuple[Callable[[Context], list[Lesson]], ...] = (
    non_core_gate,
    split_deploy,
    browser_timeouts,
    manual_reruns,
    slow_detection,
    no_probe,
    recurring_blocker,
)


def analyse(ctx: Context) -> list[Lesson]:
    """Return every lesson the analysers draw from one incident, in a stable order."""
    return [lesson for analyser in ANALYSERS for lesson in analyser(ctx)]
