"""Deploy retry policy and decisions. Pure: no ORM, no HTTP, no clock of its own.

A repository's `[retry]` policy section says which blocked deploys Shiplog may unblock by
rerunning on the CI platform: an advisory job's failure, a timeout, a job known to be flaky;
never a core job's real failure, and never a failure that repeated identically on a rerun
(same job, same failing step): that one is deterministic, and the timeline says so.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any

from releases.projections import Entry, ReleaseView

TIMEOUTS = frozenset({"timed_out", "infrastructure_fail"})
QUALIFYING = ("advisory", "timeout", "flaky")


class RetryPolicyError(ValueError):
    """A `[retry]` section that cannot be used."""


@dataclass(frozen=True)
class RetryPolicy:
    """When Shiplog may rerun a blocked deploy, and how often."""

    enabled: bool = False
    dry_run: bool = False
    qualify: tuple[str, ...] = QUALIFYING
    flaky: tuple[str, ...] = ()
    max_attempts: int = 2
    backoff_seconds: int = 60
    max_backoff_seconds: int = 3600
    quiet_windows: tuple[tuple[time, time], ...] = ()  # UTC; no retry starts inside one
    dispatch: Mapping[str, Any] = field(default_factory=dict)  # coordinator: workflow to dispatch


def _window(text: Any, where: str) -> tuple[time, time]:
    if not isinstance(text, str) or "-" not in text:
        raise RetryPolicyError(f"{where} must look like '22:00-06:00' (UTC)")
    start, _, end = text.partition("-")
    try:
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError as exc:
        raise RetryPolicyError(f"{where} must look like '22:00-06:00' (UTC)") from exc


def retry_policy_from(extra: Mapping[str, Any]) -> RetryPolicy:
    """Return the retry policy in a deploy policy's `[retry]` section, validated."""
    raw = extra.get("retry", {})
    if not isinstance(raw, dict):
        raise RetryPolicyError("[retry] must be a table")
    known = {
        "enabled",
        "dry_run",
        "qualify",
        "flaky",
        "max_attempts",
        "backoff_seconds",
        "max_backoff_seconds",
        "quiet_windows",
        "dispatch",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RetryPolicyError(f"unknown key retry.{unknown[0]}; expected one of {sorted(known)}")
    for key in ("enabled", "dry_run"):
        if key in raw and not isinstance(raw[key], bool):
            raise RetryPolicyError(f"retry.{key} must be true or false")
    qualify = raw.get("qualify", list(QUALIFYING))
    if not isinstance(qualify, list) or not set(qualify) <= set(QUALIFYING):
        raise RetryPolicyError(f"retry.qualify lists situations from {list(QUALIFYING)}")
    flaky = raw.get("flaky", [])
    if not isinstance(flaky, list) or not all(isinstance(p, str) and p for p in flaky):
        raise RetryPolicyError("retry.flaky must be a list of job name patterns")
    numbers = {}
    for key, low, high, default in (
        ("max_attempts", 1, 10, 2),
        ("backoff_seconds", 1, 86_400, 60),
        ("max_backoff_seconds", 1, 86_400, 3600),
    ):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RetryPolicyError(f"retry.{key} must be a whole number from {low} to {high}")
        numbers[key] = value
    windows = raw.get("quiet_windows", [])
    if not isinstance(windows, list):
        raise RetryPolicyError("retry.quiet_windows must be a list like ['22:00-06:00']")
    dispatch = raw.get("dispatch", {})
    if not isinstance(dispatch, dict) or (
        dispatch and not isinstance(dispatch.get("workflow"), str)
    ):
        raise RetryPolicyError("retry.dispatch needs workflow = 'deploy_release.yml'")
    return RetryPolicy(
        enabled=raw.get("enabled", False),
        dry_run=raw.get("dry_run", False),
        qualify=tuple(qualify),
        flaky=tuple(flaky),
        quiet_windows=tuple(_window(w, f"retry.quiet_windows[{i}]") for i, w in enumerate(windows)),
        dispatch=dispatch,
        **numbers,
    )


@dataclass(frozen=True)
class PastAttempt:
    """A retry Shiplog already asked for, and how it ended."""

    attempt: int
    requested_at: datetime
    outcome: str  # "requested", "accepted", "failed", "unknown"


@dataclass(frozen=True)
class Decision:
    """What to do about one blocked deploy, and why (every decision goes on the timeline)."""

    action: str  # "rerun", "dry_run", "wait", "skip"
    reason: str
    platform: str = ""
    deploy: str = ""
    blocker: str = ""
    api: str = ""  # "circleci.rerun_from_failed" or "github.rerun_failed_jobs"
    target: str = ""  # the CircleCI workflow id or the GitHub run id to rerun
    attempt: int = 0
    not_before: datetime | None = None
    situation: str = ""

    @property
    def idempotency_key(self) -> str:
        """Return the key that makes one rerun per release, deploy and attempt."""
        return f"{self.platform}:{self.deploy}:{self.target}:{self.attempt}"


def in_quiet_window(moment: datetime, windows: Sequence[tuple[time, time]]) -> time | None:
    """Return the end of the quiet window `moment` falls in, or None."""
    clock = moment.time().replace(tzinfo=None)
    for start, end in windows:
        inside = start <= clock < end if start <= end else clock >= start or clock < end
        if inside:
            return end
    return None


def backoff(policy: RetryPolicy, attempt: int, *, rng: random.Random) -> timedelta:
    """Return the wait before `attempt` (1-based): exponential, capped, with full jitter."""
    ceiling = min(policy.backoff_seconds * 2 ** (attempt - 1), policy.max_backoff_seconds)
    return timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


def _situation(blocker: Any, policy: RetryPolicy) -> str:
    if blocker.role == "advisory" and "advisory" in policy.qualify:
        return "advisory"
    if blocker.conclusion in TIMEOUTS and "timeout" in policy.qualify:
        return "timeout"
    if "flaky" in policy.qualify and any(fnmatchcase(blocker.job, p) for p in policy.flaky):
        return "flaky"
    return ""


def _failed_step(entry: Entry | None) -> str:
    step = entry.extra.get("failed_step") if entry is not None else None
    return str(step.get("name", "")) if isinstance(step, dict) else ""


def decide(
    *,
    view: ReleaseView,
    entries: Sequence[Entry],
    policy: RetryPolicy,
    history: Mapping[str, Sequence[PastAttempt]],
    now: datetime,
    kill_switch: bool = False,
    rng: random.Random | None = None,
) -> list[Decision]:
    """Return one decision per blocked deploy of a release.

    `history` maps "<platform>:<deploy>" to the retries already requested for it.
    """
    rng = rng or random.Random(0)
    decisions: list[Decision] = []
    for outcome in view.blocking_chain:
        deploy = outcome.deploy
        blocker = outcome.blocked_by[0]
        base = Decision(
            "skip", "", platform=deploy.platform, deploy=deploy.name, blocker=blocker.job
        )
        if kill_switch:
            decisions.append(replace(base, reason="the retry kill switch is on"))
            continue
        if not policy.enabled and not policy.dry_run:
            decisions.append(replace(base, reason="automatic retry is off for this repository"))
            continue
        core_real = [b.job for b in outcome.blocked_by if not _situation(b, policy)]
        if core_real:
            decisions.append(
                replace(
                    base,
                    reason=f"`{core_real[0]}` is a core job that failed for real; a rerun "
                    "would hide a genuine failure",
                )
            )
            continue
        attempts = sorted(
            (
                e
                for e in entries
                if e.kind == "job" and e.platform == blocker.platform and e.name == blocker.job
            ),
            key=lambda e: (e.job_number or 0, e.attempt, e.rank),
        )
        failures = [e for e in attempts if e.failed]
        if len(failures) >= 2 and _failed_step(failures[-1]) == _failed_step(failures[-2]):
            step = _failed_step(failures[-1]) or "the same point"
            decisions.append(
                replace(
                    base,
                    reason=f"`{blocker.job}` failed identically on a rerun (same job, same "
                    f"failing step: {step}): the failure is deterministic, not flaky",
                )
            )
            continue
        past = list(history.get(f"{deploy.platform}:{deploy.name}", ()))
        if past and past[-1].outcome == "requested":
            continue  # one is under way; its outcome decides what comes next
        latest_failure = failures[-1] if failures else None
        if (
            past
            and past[-1].outcome == "accepted"
            and latest_failure is not None
            and latest_failure.completed_at is not None
            and latest_failure.completed_at < past[-1].requested_at
        ):
            continue  # the accepted rerun has not reported yet
        target = _rerun_target(deploy.platform, latest_failure, entries)
        if target is None:
            decisions.append(replace(base, reason="no workflow run to rerun is known"))
            continue
        situation = _situation(blocker, policy)
        common = replace(
            base,
            api="circleci.rerun_from_failed"
            if deploy.platform == "circleci"
            else "github.rerun_failed_jobs",
            target=target.run_id,
            attempt=len(past) + 1,
            situation=situation,
        )
        if len(past) >= policy.max_attempts:
            decisions.append(
                replace(common, reason=f"{len(past)} retries already, the policy's maximum")
            )
            continue
        not_before = now
        if past:
            not_before = past[-1].requested_at + backoff(policy, common.attempt, rng=rng)
        start = max(now, not_before)
        quiet_end = in_quiet_window(start, policy.quiet_windows)
        if quiet_end is not None:
            end = start.replace(
                hour=quiet_end.hour, minute=quiet_end.minute, second=0, microsecond=0
            )
            not_before = end if end > start else end + timedelta(days=1)
        why = {
            "advisory": f"`{blocker.job}` is advisory under the policy, yet it blocked "
            f"`{deploy.name}`",
            "timeout": f"`{blocker.job}` {blocker.conclusion.replace('_', ' ')}",
            "flaky": f"`{blocker.job}` is known to be flaky",
        }[situation]
        if not_before > now:
            decisions.append(
                replace(
                    common,
                    action="wait",
                    reason=f"{why}; waiting until {not_before:%Y-%m-%d %H:%M} UTC",
                    not_before=not_before,
                )
            )
        elif policy.dry_run:
            decisions.append(
                replace(common, action="dry_run", reason=f"{why}: would rerun from failed")
            )
        else:
            decisions.append(replace(common, action="rerun", reason=f"{why}: rerun from failed"))
    decisions.extend(_dispatches(view, policy, history, kill_switch))
    return decisions


def _dispatches(
    view: ReleaseView,
    policy: RetryPolicy,
    history: Mapping[str, Sequence[PastAttempt]],
    kill_switch: bool,
) -> list[Decision]:
    """Return dispatches of a GitHub deploy workflow that never ran while another half shipped.

    This is the coordinator pattern done by Shiplog: when the policy names the workflow to
    dispatch (`retry.dispatch.workflow`), a release whose other platform deployed gets its
    GitHub half started with `workflow_dispatch` at the release's tag.
    """
    workflow = str(policy.dispatch.get("workflow", ""))
    if not workflow or not any(o.outcome == "success" for o in view.deploys):
        return []
    found = []
    for outcome in view.deploys:
        if outcome.deploy.platform != "github" or outcome.outcome != "not_run":
            continue
        base = Decision(
            "skip",
            "",
            platform="github",
            deploy=outcome.deploy.name,
            api="github.dispatch",
            target=workflow,
            situation="coordinator",
        )
        past = list(history.get(f"github:{outcome.deploy.name}", ()))
        if kill_switch:
            found.append(replace(base, reason="the retry kill switch is on"))
        elif not policy.enabled and not policy.dry_run:
            found.append(replace(base, reason="automatic retry is off for this repository"))
        elif past and past[-1].outcome in {"requested", "accepted"}:
            continue
        elif len(past) >= policy.max_attempts:
            found.append(replace(base, reason=f"{len(past)} dispatches already, the maximum"))
        else:
            action = "dry_run" if policy.dry_run else "rerun"
            found.append(
                replace(
                    base,
                    action=action,
                    attempt=len(past) + 1,
                    reason=f"`{outcome.deploy.name}` never ran on GitHub Actions while the "
                    f"other half shipped: dispatch `{workflow}` at the release's tag",
                )
            )
    return found


def _rerun_target(platform: str, failed: Entry | None, entries: Sequence[Entry]) -> Entry | None:
    """Return the run to rerun: the failed job's workflow run (newest attempt)."""
    if failed is None or not failed.run_id:
        return None
    if platform == "circleci":
        return failed
    runs = [e for e in entries if e.kind == "workflow_run" and e.run_id == failed.run_id]
    return max(runs, key=lambda e: e.attempt) if runs else failed
