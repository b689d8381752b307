"""Unblock releases: decide on reruns under policy, record each decision, run them once.

Every decision is an event on the release's timeline: `retry.considered` (why or why not),
`retry.requested` (which API, which attempt), `retry.accepted` (the new workflow or run) and
`retry.failed` (status and reason). A `retry.requested` event and its `RetryAttempt` row are
written in one transaction with the projection batch that caused them; the call itself runs
in a task that takes the row under a lock, so it happens at most once per idempotency key.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from releases import stream
from releases.ci_clients.base import PermanentFailure, RateLimited, TransientFailure
from releases.ci_clients.circleci import CircleCIClient
from releases.ci_clients.github import GitHubClient
from releases.models import Release, Repository, RetryAttempt, Source
from releases.projector import matching_pairs
from releases.retry import Decision, PastAttempt, RetryPolicyError, decide, retry_policy_from
from releases.selectors import ci_credential_token, release_details

logger = logging.getLogger(__name__)
IN_FLIGHT_TIMEOUT = timedelta(minutes=10)
TRANSIENT_TRIES = 5


def _record(
    release: Release | RetryAttempt,
    *,
    status: str,
    key: str,
    name: str,
    extra: dict[str, Any],
    conclusion: str = "",
) -> stream.Appended:
    repository = release.repository
    tag = release.tag
    sha = release.sha
    return stream.append(
        source=Source.SHIPLOG,
        event_type=f"retry.{status}",
        delivery_key=f"shiplog:retry:{key}",
        repository=repository,
        data={
            "kind": "retry",
            "name": name,
            "status": status,
            "conclusion": conclusion,
            "extra": extra,
        },
        tag=tag,
        sha=sha,
    )


def _histories(releases: Iterable[Release]) -> dict[int, dict[str, list[PastAttempt]]]:
    """Return each release's past retry attempts by `platform:deploy`, from one query."""
    histories: dict[int, dict[str, list[PastAttempt]]] = {}
    by_key: dict[tuple[str, str], int] = {}
    for release in releases:
        histories[release.pk] = defaultdict(list)
        by_key[(release.repository, release.ref_key)] = release.pk
    attempts = matching_pairs(
        RetryAttempt.objects.order_by("attempt"), "repository", "release_key", by_key
    )
    for attempt in attempts:
        outcome = {
            RetryAttempt.Status.IN_FLIGHT: "requested",
            RetryAttempt.Status.UNKNOWN: "failed",
        }.get(RetryAttempt.Status(attempt.status), attempt.status)
        history = histories[by_key[(attempt.repository, attempt.release_key)]]
        history[f"{attempt.platform}:{attempt.deploy}"].append(
            PastAttempt(attempt.attempt, attempt.requested_at, outcome)
        )
    return histories


def consider_after_batch(release_ids: set[int]) -> None:
    """Decide on reruns for the releases a projection batch changed (inside its transaction)."""
    retries_consider(release_ids)


def retries_consider(release_ids: Iterable[int], *, now: datetime | None = None) -> list[str]:
    """Decide what to do about each blocked deploy; return the idempotency keys requested."""
    now = now or timezone.now()
    requested: list[str] = []
    releases = list(
        Release.objects.filter(pk__in=list(release_ids)).filter(
            Q(flags__contains=",blocked,") | Q(flags__contains=",partially_deployed,")
        )
    )
    details = release_details(releases)
    histories = _histories(releases)
    for release in releases:
        detail = details[release.pk]
        try:
            policy = retry_policy_from(detail.policy.extra)
        except RetryPolicyError:
            logger.warning("the retry policy of %s does not parse", release.repository)
            continue
        decisions = decide(
            view=detail.view,
            entries=detail.entries,
            policy=policy,
            history=histories[release.pk],
            now=now,
            kill_switch=settings.SHIPLOG_RETRY_KILL_SWITCH,
        )
        for decision in decisions:
            key = _apply(release, decision, now)
            if key:
                requested.append(key)
    return requested


def _apply(release: Release, decision: Decision, now: datetime) -> str | None:
    reason_id = hashlib.sha256(decision.reason.encode()).hexdigest()[:12]
    scope = f"{release.repository}:{release.ref_key}:{decision.platform}:{decision.deploy}"
    _record(
        release,
        status="considered",
        key=f"{scope}:{decision.attempt}:{decision.action}:{reason_id}",
        name=f"retry considered: {decision.action.replace('_', ' ')}",
        extra={
            "decision": decision.action,
            "reason": decision.reason,
            "deploy": decision.deploy,
            "blocker": decision.blocker,
            "api": decision.api,
            "target": decision.target,
            "attempt": decision.attempt,
            "not_before": decision.not_before.isoformat() if decision.not_before else None,
        },
    )
    if decision.action != "rerun":
        return None
    key = f"{release.repository}:{release.ref_key}:{decision.idempotency_key}"
    _, created = RetryAttempt.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "repository": release.repository,
            "release_key": release.ref_key,
            "tag": release.tag,
            "sha": release.sha,
            "platform": decision.platform,
            "deploy": decision.deploy,
            "api": decision.api,
            "target": decision.target,
            "attempt": decision.attempt,
            "not_before": now,
            "requested_at": now,
        },
    )
    if not created:
        return None
    _record(
        release,
        status="requested",
        key=f"{key}:requested",
        name=f"retry requested: {decision.api} (attempt {decision.attempt})",
        extra={
            "api": decision.api,
            "target": decision.target,
            "attempt": decision.attempt,
            "deploy": decision.deploy,
            "reason": decision.reason,
        },
    )
    transaction.on_commit(lambda: _request_execution(key))
    return key


def _request_execution(key: str) -> None:
    from releases.tasks import request_retry

    request_retry(key)


@dataclass(frozen=True)
class Outcome:
    """What calling the CI platform came to."""

    status: str  # "accepted", "failed", "deferred"
    detail: dict[str, Any]


def retry_execute(*, key: str, now: datetime | None = None) -> str:
    """Run one requested rerun through the CI platform's API, at most once; return its status.

    The row is locked while it moves from requested to in flight, so a second delivery of the
    task, or a second worker, finds it taken and leaves.
    """
    now = now or timezone.now()
    with transaction.atomic():
        attempt = RetryAttempt.objects.select_for_update().filter(idempotency_key=key).first()
        if attempt is None:
            return "missing"
        if attempt.status != RetryAttempt.Status.REQUESTED or attempt.not_before > now:
            return str(attempt.status)
        attempt.status = RetryAttempt.Status.IN_FLIGHT
        attempt.save(update_fields=["status", "updated_at"])
    outcome = _call(attempt)
    with transaction.atomic():
        attempt = RetryAttempt.objects.select_for_update().get(pk=attempt.pk)
        name = f"{attempt.api} (attempt {attempt.attempt})"
        if outcome.status == "accepted":
            attempt.status = RetryAttempt.Status.ACCEPTED
            attempt.result = outcome.detail
            _record(
                attempt,
                status="accepted",
                key=f"{key}:accepted",
                conclusion="success",
                name=f"retry accepted: {name}",
                extra={**outcome.detail, "api": attempt.api, "attempt": attempt.attempt},
            )
        elif outcome.status == "deferred" and attempt.tries + 1 < TRANSIENT_TRIES:
            attempt.status = RetryAttempt.Status.REQUESTED
            attempt.tries += 1
            attempt.not_before = now + timedelta(seconds=outcome.detail["wait_seconds"])
            attempt.result = outcome.detail
            _record(
                attempt,
                status="deferred",
                key=f"{key}:deferred:{attempt.tries}",
                name=f"retry deferred: {name}",
                extra={**outcome.detail, "api": attempt.api},
            )
        else:
            attempt.status = RetryAttempt.Status.FAILED
            attempt.result = outcome.detail
            _record(
                attempt,
                status="failed",
                key=f"{key}:failed",
                conclusion="failure",
                name=f"retry failed: {name}",
                extra={**outcome.detail, "api": attempt.api, "attempt": attempt.attempt},
            )
        attempt.save()
    return str(attempt.status)


def _call(attempt: RetryAttempt) -> Outcome:
    """Call the platform for one attempt; never raise, never put the token in the outcome."""
    repository = Repository.objects.filter(full_name=attempt.repository).first()
    token = (
        ci_credential_token(repository=repository, platform=attempt.platform)
        if repository is not None
        else None
    )
    if not token:
        return Outcome(
            "failed",
            {
                "reason": f"no {attempt.platform} API token is configured for {attempt.repository}",
                "permanent": True,
            },
        )
    try:
        if attempt.api == "circleci.rerun_from_failed":
            with CircleCIClient(token) as circleci:
                new_id = circleci.rerun_workflow(attempt.target, from_failed=True)
            return Outcome("accepted", {"new_run_id": new_id, "rerun_of": attempt.target})
        owner, _, name = attempt.repository.partition("/")
        with GitHubClient(token) as github:
            if attempt.api == "github.rerun_failed_jobs":
                github.rerun_failed_jobs(owner, name, attempt.target)
                return Outcome("accepted", {"run_id": attempt.target, "rerun_of": attempt.target})
            result = github.dispatch_workflow(owner, name, attempt.target, attempt.tag)
            return Outcome(
                "accepted",
                {"new_run_id": str(result.workflow_run_id or ""), "run_url": result.html_url},
            )
    except RateLimited as exc:
        return Outcome("deferred", {"reason": str(exc), "wait_seconds": exc.retry_after_seconds})
    except TransientFailure as exc:
        wait = min(60 * 2**attempt.tries, 3600)
        return Outcome("deferred", {"reason": str(exc), "wait_seconds": wait})
    except PermanentFailure as exc:
        return Outcome("failed", {"status": exc.status, "reason": exc.reason, "permanent": True})


def retries_due(*, now: datetime | None = None) -> list[str]:
    """Run requested reruns that are due, settle stale calls, and reconsider blocked releases.

    This is the outbox's reader: whatever a broker outage kept from running runs here.
    """
    now = now or timezone.now()
    stale = RetryAttempt.objects.filter(
        status=RetryAttempt.Status.IN_FLIGHT, updated_at__lt=now - IN_FLIGHT_TIMEOUT
    )
    for attempt in stale:
        with transaction.atomic():
            locked = RetryAttempt.objects.select_for_update().get(pk=attempt.pk)
            if locked.status != RetryAttempt.Status.IN_FLIGHT:
                continue
            locked.status = RetryAttempt.Status.UNKNOWN
            locked.save(update_fields=["status", "updated_at"])
            # Calling again could rerun the workflow twice; a person checks instead.
            _record(
                locked,
                status="failed",
                key=f"{locked.idempotency_key}:unknown",
                conclusion="failure",
                name=f"retry outcome unknown: {locked.api} (attempt {locked.attempt})",
                extra={
                    "reason": "the worker stopped while calling the CI platform; check "
                    f"{locked.platform} for a rerun of {locked.target} before retrying",
                    "api": locked.api,
                },
            )
    recent = now - timedelta(days=7)
    blocked = Release.objects.filter(
        Q(flags__contains=",blocked,") | Q(flags__contains=",partially_deployed,"),
        last_activity_at__gte=recent,
    )
    retries_consider(blocked.values_list("pk", flat=True), now=now)
    done = []
    due = RetryAttempt.objects.filter(status=RetryAttempt.Status.REQUESTED, not_before__lte=now)
    for key in due.values_list("idempotency_key", flat=True)[:20]:
        retry_execute(key=key, now=now)
        done.append(key)
    return done
