"""Celery tasks for the releases app: thin wrappers that call one function each."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings

from releases import projector, services

logger = logging.getLogger(__name__)

# Publishing one task per append would flood the broker under load; a projection run picks up
# everything committed so far, so one request per interval per process is enough. A request
# inside the interval is not dropped but deferred to its end, so the last event of a burst
# is projected within the interval too (beat is only the safety net).
_MIN_INTERVAL = 0.1
_BROKER_DOWN_PAUSE = 5.0
_next_allowed = 0.0


@shared_task(acks_late=True, ignore_result=True)
def project_stream() -> int:
    """Apply every committed stream event to the projections."""
    return projector.catch_up()


def request_projection() -> None:
    """Ask a worker to project the stream soon; never fail the caller if the broker is down."""
    global _next_allowed
    if not settings.SHIPLOG_PROJECT_AFTER_COMMIT:
        return
    now = time.monotonic()
    if now < _next_allowed:
        return  # a request already covers this moment
    delay = 0.0 if now - _next_allowed >= _MIN_INTERVAL else _MIN_INTERVAL
    _next_allowed = now + max(delay, _MIN_INTERVAL)
    try:
        if delay:
            project_stream.apply_async(countdown=delay, retry=False)
        else:
            project_stream.apply_async(retry=False)
    except Exception as exc:  # the broker being down must not fail a recorded delivery
        # Stop knocking for a while: each attempt costs the caller a connection timeout.
        _next_allowed = time.monotonic() + _BROKER_DOWN_PAUSE
        logger.warning("could not request a projection run (%s); beat will catch up", exc)


@shared_task(acks_late=True, ignore_result=True)
def enrich_circleci_workflows() -> int:
    """Fill in recent CircleCI workflows from the API: the jobs its webhooks never report."""
    return services.circleci_workflows_enrich_recent().appended


@shared_task(acks_late=True, ignore_result=True)
def execute_retry(key: str) -> str:
    """Run one requested rerun through the CI platform, at most once."""
    from releases.unblock import retry_execute

    return retry_execute(key=key)


@shared_task(acks_late=True, ignore_result=True)
def retries_due() -> int:
    """Run the reruns that are due and reconsider blocked releases."""
    from releases.unblock import retries_due as run_due

    return len(run_due())


def request_retry(key: str) -> None:
    """Ask a worker to run a rerun now; the beat schedule runs it otherwise."""
    if not settings.SHIPLOG_PROJECT_AFTER_COMMIT:
        return
    try:
        execute_retry.apply_async((key,), retry=False)
    except Exception as exc:  # the decision is recorded; beat runs it when the broker is back
        logger.warning("could not request a rerun (%s); beat will run it", exc)


@shared_task(acks_late=True, ignore_result=True)
def reconcile_github_deliveries() -> int:
    """Ask GitHub to redeliver failed deliveries the stream does not hold."""
    from releases.reconcile import github_deliveries_reconcile

    return len(github_deliveries_reconcile().redelivered)
