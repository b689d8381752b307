"""Celery tasks for incidents: thin wrappers that fetch by id and call one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from incidents import services
from incidents.models import Incident, Status
from releases.models import Release

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def generate_postmortem(incident_id: str) -> int:
    """Compose and record the postmortem of a resolved incident."""
    return services.postmortem_generate(incident_id=incident_id)


@shared_task(acks_late=True, ignore_result=True)
def postmortems_due() -> int:
    """Generate postmortems for resolved incidents that have none since their resolution.

    The resolution event is the record that this work is owed, so a broker outage at the
    moment of resolution delays the postmortem and loses nothing.
    """
    due = Incident.objects.filter(status=Status.RESOLVED).filter(
        Q(postmortem_revision=0) | Q(postmortems__position__lt=F("last_position"))
    )
    count = 0
    for incident_id in due.values_list("pk", flat=True).distinct()[:50]:
        services.postmortem_generate(incident_id=incident_id)
        count += 1
    return count


@shared_task(acks_late=True, ignore_result=True)
def detect_stale_releases() -> int:
    """Run the time-based rules (stuck, not started) over releases still in flight."""
    recent = timezone.now() - timedelta(days=14)
    ids = Release.objects.exclude(state="deployed").filter(started_at__gte=recent)
    return services.detect_for_releases(ids.values_list("pk", flat=True))


@shared_task(acks_late=True, ignore_result=True)
def run_probes() -> int:
    """Check the probes that are due."""
    return services.probes_run()


def request_postmortem(incident_id: str) -> None:
    """Ask a worker to write the postmortem now; the beat schedule catches up otherwise."""
    if not settings.SHIPLOG_PROJECT_AFTER_COMMIT:
        return
    try:
        generate_postmortem.apply_async((incident_id,), retry=False)
    except Exception as exc:  # the broker being down must not undo the resolution
        logger.warning("could not request a postmortem (%s); beat will catch up", exc)
