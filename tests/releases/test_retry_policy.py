"""Retry decisions: which blocked deploys Shiplog may rerun, when, and why not."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from releases import policy as policy_module
from releases import projector
from releases.retry import (
    Decision,
    PastAttempt,
    RetryPolicy,
    RetryPolicyError,
    backoff,
    decide,
    in_quiet_window,
    retry_policy_from,
)
from releases.selectors import release_detail, release_get
from releases.services import policy_set, repository_create
from tests.releases import factories as f

pytestmark = pytest.mark.django_db
NOW = datetime(2024, 7, 26, 16, 0, tzinfo=UTC)
ON = RetryPolicy(enabled=True)


def _blocked(document: str = f.ADVISORY_FIREFOX, extra_events=()):
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=document, actor="test")
    f.append_all(f.pyodide_story() + list(extra_events))
    projector.catch_up(react=False)
    release = release_get(repository=f.REPO, tag=f.TAG)
    assert release is not None
    return release_detail(release)


def _decide(detail, policy=ON, history=None, now=NOW, **kw) -> Decision:
    decisions = decide(
        view=detail.view,
        entries=detail.entries,
        policy=policy,
        history=history or {},
        now=now,
        **kw,
    )
    assert len(decisions) <= 1
    return decisions[0] if decisions else None  # type: ignore[return-value]


def test_an_advisory_blocker_qualifies_for_a_rerun_from_failed():
    decision = _decide(_blocked())
    assert decision.action == "rerun"
    assert decision.api == "circleci.rerun_from_failed"
    assert decision.target == f.WORKFLOW
    assert decision.attempt == 1
    assert decision.situation == "advisory"
    assert "`test-packages-firefox` is advisory under the policy" in decision.reason
    assert decision.idempotency_key == f"circleci:deploy-release:{f.WORKFLOW}:1"


def test_a_core_jobs_real_failure_never_qualifies():
    decision = _decide(_blocked(f.PYODIDE_POLICY))
    assert decision.action == "skip"
    assert "core job that failed for real" in decision.reason


def test_a_flaky_core_job_qualifies():
    decision = _decide(
        _blocked(f.PYODIDE_POLICY), policy=RetryPolicy(enabled=True, flaky=("test-packages-*",))
    )
    assert (decision.action, decision.situation) == ("rerun", "flaky")


@pytest.mark.parametrize(
    ("policy", "kill", "action", "reason"),
    [
        (RetryPolicy(enabled=False), False, "skip", "automatic retry is off"),
        (ON, True, "skip", "kill switch"),
        (RetryPolicy(enabled=True, dry_run=True), False, "dry_run", "would rerun"),
        (RetryPolicy(dry_run=True), False, "dry_run", "would rerun"),
    ],
)
def test_switches(policy, kill, action, reason):
    decision = _decide(_blocked(), policy=policy, kill_switch=kill)
    assert decision.action == action
    assert reason in decision.reason


def test_the_maximum_number_of_attempts_is_honoured():
    history = {
        "circleci:deploy-release": [
            PastAttempt(1, NOW - timedelta(hours=3), "failed"),
            PastAttempt(2, NOW - timedelta(hours=2), "failed"),
        ]
    }
    decision = _decide(_blocked(), history=history)
    assert decision.action == "skip"
    assert "2 retries already" in decision.reason


def test_a_retry_under_way_is_not_doubled():
    history = {"circleci:deploy-release": [PastAttempt(1, NOW, "requested")]}
    assert _decide(_blocked(), history=history) is None


def test_backoff_after_a_failed_attempt_with_jitter():
    history = {"circleci:deploy-release": [PastAttempt(1, NOW, "failed")]}
    decision = _decide(_blocked(), history=history, now=NOW + timedelta(seconds=10))
    assert decision.action == "wait"
    assert decision.not_before is not None
    assert NOW + timedelta(seconds=60) <= decision.not_before <= NOW + timedelta(seconds=120)
    delays = {backoff(ON, 3, rng=random.Random(seed)) for seed in range(5)}
    assert len(delays) == 5
    assert all(timedelta(seconds=120) <= d <= timedelta(seconds=240) for d in delays)


def test_a_quiet_window_defers_the_retry_to_its_end():
    quiet = RetryPolicy(enabled=True, quiet_windows=((time(15, 0), time(18, 30)),))
    decision = _decide(_blocked(), policy=quiet)
    assert decision.action == "wait"
    assert decision.not_before == datetime(2024, 7, 26, 18, 30, tzinfo=UTC)
    assert in_quiet_window(
        datetime(2024, 7, 26, 23, 0, tzinfo=UTC), [(time(22, 0), time(6, 0))]
    ) == time(6, 0)


def test_a_failure_repeated_identically_on_a_rerun_is_deterministic():
    step = {"failed_step": {"name": "Run packages tests", "number": 5}}
    again = f.cci_job(
        "test-packages-firefox",
        "failed",
        number=108500,
        minutes=200,
        workflow=f.RERUN_WORKFLOW,
        extra=step,
    )
    first = f.pyodide_story()
    for event in first:
        if event["data"].get("name") == "test-packages-firefox":
            event["data"]["extra"] = step
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=f.ADVISORY_FIREFOX, actor="test")
    f.append_all([*first, again])
    projector.catch_up(react=False)
    release = release_get(repository=f.REPO, tag=f.TAG)
    assert release is not None
    decision = _decide(release_detail(release))
    assert decision.action == "skip"
    assert "failed identically on a rerun" in decision.reason
    assert "Run packages tests" in decision.reason


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ("enabled = 'yes'", "retry.enabled must be true or false"),
        ("qualify = ['always']", "retry.qualify lists situations"),
        ("max_attempts = 0", "retry.max_attempts must be a whole number"),
        ("quiet_windows = ['late']", r"retry.quiet_windows\[0\] must look like"),
        ("retries = 3", "unknown key retry.retries"),
    ],
)
def test_invalid_retry_sections_are_refused(section, error):
    with pytest.raises(policy_module.PolicyError, match=error):
        policy_module.parse(f"[retry]\n{section}\n")
    with pytest.raises(RetryPolicyError, match=r"\[retry\] must be a table"):
        retry_policy_from({"retry": 1})
