"""Reconciliation: failed GitHub deliveries the stream lacks are redelivered, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from releases.models import StreamEvent
from releases.reconcile import github_deliveries_reconcile
from releases.services import ci_credential_set
from tests.releases.test_hooks import PING

pytestmark = pytest.mark.django_db
HOOK = "421337"


def _delivery(id_: int, guid: str, code: int, minutes_ago: int, redelivery: bool = False):
    return {
        "id": id_,
        "guid": guid,
        "delivered_at": (timezone.now() - timedelta(minutes=minutes_ago)).isoformat(),
        "redelivery": redelivery,
        "duration": 0.2,
        "status": "OK" if code < 300 else f"Invalid HTTP Response: {code}",
        "status_code": code,
        "event": "workflow_job",
        "action": "completed",
        "repository_id": 122663163,
    }


def test_failed_deliveries_missing_from_the_stream_are_redelivered(
    post, github, repository, fake_github
):
    post(github("ping", PING, delivery_id="in-the-stream", hook_id=HOOK))
    ci_credential_set(repository=repository, platform="github", token="ghp_" + "a" * 36)
    fake_github.deliveries[("pyodide/pyodide", HOOK)] = [
        _delivery(1, "in-the-stream", 200, 5),
        _delivery(2, "lost-during-outage", 503, 30),
        _delivery(3, "lost-during-outage", 503, 29, redelivery=True),
        _delivery(4, "recovered-later", 502, 60),
        _delivery(5, "recovered-later", 200, 50, redelivery=True),
        _delivery(6, "too-old", 500, 4 * 24 * 60),
        _delivery(7, "failed-but-stored", 500, 10),
    ]
    post(github("ping", PING, delivery_id="failed-but-stored", hook_id=HOOK))
    run = github_deliveries_reconcile()
    assert run.redelivered == ["lost-during-outage"]
    posts = [c.path for c in fake_github.calls("POST")]
    assert posts == [f"/repos/pyodide/pyodide/hooks/{HOOK}/deliveries/2/attempts"]
    assert StreamEvent.objects.filter(event_type="reconcile.redelivery_requested").count() == 1
    github_deliveries_reconcile()  # asked once already: GitHub's redelivery is on its way
    assert len(fake_github.calls("POST")) == 1
    assert StreamEvent.objects.filter(event_type="reconcile.redelivery_requested").count() == 1


def test_without_a_github_token_nothing_is_called(post, github, fake_github):
    post(github("ping", PING, hook_id=HOOK))
    assert github_deliveries_reconcile().redelivered == []
    assert fake_github.calls() == []
