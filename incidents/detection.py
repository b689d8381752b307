"""Detection rules: pure functions from a release's derived state to findings.

A finding says "this rule holds for this release, and these stream positions prove it".
The services turn findings into incident events; nothing here reads or writes storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from incidents.probes import Probe, consecutive_failures
from releases.policy import Policy
from releases.projections import Entry, ReleaseView

DEFAULT_SEVERITY = {
    "deploy_blocked": "high",
    "partial_deploy": "high",
    "deploy_failed": "high",
    "release_stuck": "medium",
    "probe_failing": "high",
}
RULES = tuple(DEFAULT_SEVERITY)


@dataclass(frozen=True)
class Finding:
    """One rule that holds for a release, with its evidence."""

    rule: str
    title: str
    summary: str
    severity: str
    evidence: Sequence[dict[str, Any]]
    began_at: datetime | None
    details: dict[str, Any] = field(default_factory=dict)


def severity(policy: Policy, rule: str) -> str:
    """Return the severity the policy gives a rule, or the rule's default."""
    return policy.severity.get(rule, DEFAULT_SEVERITY.get(rule, "medium"))


def _cite(entry: Entry | None, why: str) -> dict[str, Any]:
    if entry is None:
        return {"position": None, "why": why}
    return {
        "position": entry.position,
        "why": why,
        "platform": entry.platform,
        "name": entry.name,
        "conclusion": entry.conclusion,
        "url": entry.url,
    }


def findings(
    *,
    repository: str,
    release_name: str,
    view: ReleaseView,
    entries: Sequence[Entry],
    policy: Policy,
    now: datetime,
    time_rules: bool = True,
    probes: Sequence[Probe] = (),
) -> list[Finding]:
    """Return every rule that holds for one release now.

    `time_rules` adds the rules about time passing (stuck); detection after each projection
    batch leaves them to the scheduled run, so replaying old history does not call every
    old release stuck in the middle of its replay.
    """
    by_name = {(e.platform, e.name): e for e in entries if e.kind == "job"}
    shipped = [o for o in view.deploys if o.outcome == "success"]
    found: list[Finding] = []

    for outcome in view.blocking_chain:
        deploy = outcome.deploy
        blockers = outcome.blocked_by
        evidence = [
            _cite(by_name.get((b.platform, b.job)), f"{b.job} {b.conclusion} ({b.role})")
            for b in blockers
        ]
        advisory = [b.job for b in blockers if b.role == "advisory"]
        names = ", ".join(f"`{b.job}`" for b in blockers)
        summary = (
            f"`{deploy.name}` on {_platform(deploy.platform)} never ran because {names}, "
            f"which gates it, {_ended(blockers[0].conclusion)}."
        )
        if advisory:
            summary += f" The policy calls {', '.join(f'`{a}`' for a in advisory)} advisory."
        times = [b.completed_at for b in blockers if b.completed_at]
        found.append(
            Finding(
                rule="deploy_blocked",
                title=f"{repository} {release_name}: {deploy.name} is blocked",
                summary=summary,
                severity=severity(policy, "deploy_blocked"),
                evidence=evidence,
                began_at=min(times) if times else None,
                details={
                    "deploy": deploy.name,
                    "platform": deploy.platform,
                    "blocked_by": [
                        {
                            "job": b.job,
                            "platform": b.platform,
                            "conclusion": b.conclusion,
                            "role": b.role,
                            "url": b.url,
                        }
                        for b in blockers
                    ],
                    "advisory_blockers": advisory,
                },
            )
        )

    if "partially_deployed" in view.flags:
        missing = [o for o in view.deploys if o.outcome != "success"]
        evidence = [_cite(o.entry, f"{o.deploy.name} succeeded") for o in shipped]
        evidence += [
            _cite(o.entry, f"{o.deploy.name} {o.outcome.replace('_', ' ')}") for o in missing
        ]
        shipped_times = [o.entry.completed_at for o in shipped if o.entry and o.entry.completed_at]
        found.append(
            Finding(
                rule="partial_deploy",
                title=f"{repository} {release_name} is only partially deployed",
                summary=(
                    f"{_list(shipped)} shipped while {_list(missing)} did not: the release "
                    "is half out."
                ),
                severity=severity(policy, "partial_deploy"),
                evidence=evidence,
                began_at=min(shipped_times) if shipped_times else None,
                details={
                    "shipped": [_unit(o) for o in shipped],
                    "missing": [{**_unit(o), "outcome": o.outcome} for o in missing],
                },
            )
        )

    failed = [o for o in view.deploys if o.outcome == "failed"]
    if failed:
        times = [o.entry.completed_at for o in failed if o.entry and o.entry.completed_at]
        found.append(
            Finding(
                rule="deploy_failed",
                title=f"{repository} {release_name}: {failed[0].deploy.name} failed",
                summary=f"{_list(failed)} failed.",
                severity=severity(policy, "deploy_failed"),
                evidence=[_cite(o.entry, f"{o.deploy.name} failed") for o in failed],
                began_at=min(times) if times else None,
                details={"failed": [_unit(o) for o in failed]},
            )
        )

    for probe in probes:
        failing = consecutive_failures(entries, probe.name)
        if len(failing) < probe.failures_to_open:
            continue
        latest = failing[-1]
        found.append(
            Finding(
                rule="probe_failing",
                title=f"{repository} {release_name}: {probe.name} is failing",
                summary=(
                    f"The probe `{probe.name}` failed {len(failing)} times in a row: "
                    f"{latest.url} answered {latest.status}."
                ),
                severity=severity(policy, "probe_failing"),
                evidence=[_cite(e, f"{probe.name} {e.status}") for e in failing],
                began_at=failing[0].occurred_at,
                details={"probe": probe.name, "url": latest.url},
            )
        )

    start = view.tagged_at or view.started_at
    limit = timedelta(minutes=policy.stuck_after_minutes)
    if time_rules and "deployed" not in view.flags and start is not None and now - start > limit:
        last = view.last_activity_at
        if last is None or now - last > limit / 2:
            found.append(
                Finding(
                    rule="release_stuck",
                    title=f"{repository} {release_name} is stuck",
                    summary=(
                        f"Not deployed {_duration(now - start)} after it was tagged "
                        f"(limit {policy.stuck_after_minutes} minutes), and nothing has "
                        f"happened for {_duration(now - last) if last else 'ever'}."
                    ),
                    severity=severity(policy, "release_stuck"),
                    evidence=[_cite(e, "last activity") for e in entries[-1:]],
                    began_at=start + limit,
                    details={"limit_minutes": policy.stuck_after_minutes},
                )
            )
    return found


def _platform(platform: str) -> str:
    return {"github": "GitHub Actions", "circleci": "CircleCI"}.get(platform, platform)


def _ended(conclusion: str) -> str:
    return {
        "timed_out": "timed out",
        "failure": "failed",
        "cancelled": "was cancelled",
        "infrastructure_fail": "hit an infrastructure failure",
    }.get(conclusion, f"ended {conclusion}")


def _unit(outcome: Any) -> dict[str, Any]:
    return {"deploy": outcome.deploy.name, "platform": outcome.deploy.platform}


def _list(outcomes: Sequence[Any]) -> str:
    return " and ".join(f"`{o.deploy.name}` on {_platform(o.deploy.platform)}" for o in outcomes)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"
