"""With the broker down, nothing is lost: the rerun runs once when it is back.

The decision to rerun is recorded in the same transaction as the projection that saw the
blocked release (the stream and a RetryAttempt row are the outbox); the broker only carries
the nudge to act on it, and beat carries it again once the broker is back.
"""

from __future__ import annotations

import shutil
import time

import kombu.pools
import pytest
from django.db import connection

from config.celery import app
from releases.models import RetryAttempt, StreamEvent
from releases.scenarios.pyodide import release_0_26_2
from releases.services import ci_credential_set, policy_set
from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET
from tests.releases.test_unblock import FAILED_WORKFLOW, RERUN_PATH, RETRY_ON, TOKEN
from tests.worker import celery_worker, free_port, scratch_redis, wait_for

SECRETS = {"github": GITHUB_SECRET, "circleci": CIRCLECI_SECRET}
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def broker_at(settings):
    if connection.vendor != "postgresql" or not shutil.which("redis-server"):
        pytest.skip("needs PostgreSQL (shared with a worker process) and redis-server")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    previous = app.conf.broker_url
    _point_at(url)
    settings.SHIPLOG_PROJECT_AFTER_COMMIT = True
    yield port, url
    _point_at(previous)


def _point_at(url: str) -> None:
    """Send this process's tasks to `url`, dropping connections to the old broker."""
    app.conf.update(broker_url=url)
    kombu.pools.reset()  # the producer pools are kept per connection, process-wide
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]


def test_a_broker_outage_delays_the_rerun_and_loses_nothing(
    broker_at, post, repository, fake_circleci, tmp_path, caplog
):
    port, url = broker_at
    fake_circleci.add_workflow({"id": FAILED_WORKFLOW, "name": "build-and-deploy"}, [])
    policy_set(repository=repository, document=RETRY_ON, actor="test")
    ci_credential_set(repository=repository, platform="circleci", token=TOKEN)

    # The broker is down: every delivery is still recorded, and nothing is projected yet.
    slowest = 0.0
    for step in release_0_26_2():
        started = time.monotonic()
        assert post(step.delivery(SECRETS[step.platform])).status_code == 202
        slowest = max(slowest, time.monotonic() - started)
    assert "could not request a projection run" in caplog.text
    assert slowest < 5, "a webhook must be answered well inside GitHub's 10 s, broker or not"
    assert not StreamEvent.objects.filter(event_type="retry.requested").exists()

    # The broker is back; a worker with beat picks everything up.
    with (
        scratch_redis(port),
        celery_worker(
            tmp_path, redis_url=url, env={"SHIPLOG_CIRCLECI_API_URL": fake_circleci.url}
        ) as log,
    ):
        wait_for(lambda: fake_circleci.calls("POST", RERUN_PATH), 90, "the rerun", log)
        wait_for(
            lambda: RetryAttempt.objects.filter(status="accepted").exists(),
            30,
            "the rerun to be recorded as accepted",
            log,
        )
        # Let beat come round again (projection every 2 s, retries every 30 s).
        wait_for(
            lambda: sum("retries_due" in line and "succeeded" in line for line in log) >= 2,
            75,
            "beat to run the retries twice",
            log,
        )
    assert len(fake_circleci.calls("POST", RERUN_PATH)) == 1
    assert RetryAttempt.objects.count() == 1
    assert StreamEvent.objects.filter(event_type="retry.requested").count() == 1
