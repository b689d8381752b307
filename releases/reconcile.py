"""Fill the gaps webhooks leave: GitHub never redelivers a failed delivery by itself.

For each repository with a GitHub token, list each hook's recent deliveries and ask GitHub to
send again the ones that failed and that the stream does not hold. (CircleCI gaps are filled
from its API: `services.circleci_workflows_enrich_recent`.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from releases import stream
from releases.ci_clients.base import CIClientError
from releases.ci_clients.github import GitHubClient
from releases.models import CICredential, Source, StreamEvent
from releases.selectors import ci_credential_token

logger = logging.getLogger(__name__)
RETENTION = timedelta(days=3)  # github.com keeps deliveries three days


@dataclass
class ReconcileRun:
    """What one pass did."""

    redelivered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _hook_ids(repository: str) -> set[str]:
    """Return the ids of the hooks that have delivered this repository's events."""
    keys = StreamEvent.objects.filter(repository=repository, source=Source.GITHUB).values_list(
        "delivery_key", flat=True
    )
    return {key.split(":")[1] for key in keys.order_by("-position")[:5000] if key.count(":") >= 2}


def _failed(delivery: Any) -> bool:
    code = delivery.get("status_code")
    return not (isinstance(code, int) and 200 <= code < 300)


def github_deliveries_reconcile(*, now: datetime | None = None) -> ReconcileRun:
    """Ask GitHub to redeliver failed deliveries that never reached the stream."""
    now = now or timezone.now()
    run = ReconcileRun()
    credentials = CICredential.objects.filter(platform="github").select_related("repository")
    for credential in credentials:
        repository = credential.repository
        token = ci_credential_token(repository=repository, platform="github")
        if not token:
            continue
        owner, _, name = repository.full_name.partition("/")
        try:
            with GitHubClient(token) as github:
                for hook_id in sorted(_hook_ids(repository.full_name)):
                    _reconcile_hook(github, owner, name, hook_id, repository.full_name, now, run)
        except CIClientError as exc:
            run.problems.append(f"{repository.full_name}: {exc}")
            logger.warning("reconciling %s: %s", repository.full_name, exc)
    return run


def _reconcile_hook(
    github: GitHubClient,
    owner: str,
    name: str,
    hook_id: str,
    repository: str,
    now: datetime,
    run: ReconcileRun,
) -> None:
    deliveries = github.list_hook_deliveries(owner, name, hook_id)
    succeeded = {d.get("guid") for d in deliveries if isinstance(d, dict) and not _failed(d)}
    for delivery in deliveries:
        if not isinstance(delivery, dict) or not _failed(delivery):
            continue
        guid = str(delivery.get("guid", ""))
        delivered_at = parse_datetime(str(delivery.get("delivered_at", "")))
        if not guid or guid in succeeded:
            continue  # a later attempt of the same delivery got through
        if delivered_at is None or now - delivered_at > RETENTION:
            continue  # GitHub no longer has it
        key = f"github:{hook_id}:{guid}"
        if StreamEvent.objects.filter(event_id=stream.event_id_for(key)).exists():
            continue
        asked = StreamEvent.objects.filter(
            repository=repository,
            event_type="reconcile.redelivery_requested",
            delivery_key__startswith=f"shiplog:redeliver:{hook_id}:{guid}:",
        )
        if asked.exists():
            continue  # asked once already; GitHub's answer arrives as a delivery
        github.redeliver(owner, name, hook_id, delivery["id"])
        succeeded.add(guid)  # one request per guid, however many failed attempts it had
        run.redelivered.append(guid)
        stream.append(
            source=Source.SHIPLOG,
            event_type="reconcile.redelivery_requested",
            delivery_key=f"shiplog:redeliver:{hook_id}:{guid}:{delivery['id']}",
            repository=repository,
            data={
                "kind": "reconcile",
                "hook_id": hook_id,
                "guid": guid,
                "event": delivery.get("event"),
                "status": delivery.get("status"),
            },
        )
