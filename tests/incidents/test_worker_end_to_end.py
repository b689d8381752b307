"""A real Celery worker on real Redis: signed webhooks in, incident, resolution, postmortem out.

Nothing here calls the projector or the services directly: the webhooks go through the
endpoints, and everything after the commit happens in the worker process.
"""

from __future__ import annotations

import pytest
from django.db import connection

from config.celery import app
from incidents.models import Incident, PostmortemRevision
from incidents.tasks import generate_postmortem
from releases.scenarios.pyodide import recovery, release_0_26_2
from releases.services import policy_set
from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET
from tests.releases import factories as f
from tests.worker import celery_worker, wait_for

SECRETS = {"github": GITHUB_SECRET, "circleci": CIRCLECI_SECRET}
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def real_broker(settings):
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("runs a worker on PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)")
    settings.SHIPLOG_PROJECT_AFTER_COMMIT = True
    app.control.purge()


def test_webhooks_to_incident_to_postmortem_in_a_real_worker(
    real_broker, post, repository, tmp_path
):
    policy_set(repository=repository, document=f.PYODIDE_POLICY, actor="test")
    with celery_worker(tmp_path) as log:
        for step in release_0_26_2():
            assert post(step.delivery(SECRETS[step.platform])).status_code == 202
        wait_for(lambda: Incident.objects.exists(), 60, "the incident to open", log)
        incident = Incident.objects.get()
        assert incident.status == "investigating"
        assert "test-packages-firefox" in incident.summary

        for step in recovery():
            assert post(step.delivery(SECRETS[step.platform])).status_code == 202
        wait_for(
            lambda: PostmortemRevision.objects.exists(), 60, "the postmortem to be written", log
        )
        incident.refresh_from_db()
        assert incident.status == "resolved"
        markdown = PostmortemRevision.objects.get().markdown
        assert "`deploy-release` on CircleCI never ran because `test-packages-firefox`" in (
            markdown
        )

        # The same task delivered twice more: still one incident, one revision.
        generate_postmortem.delay(str(incident.pk))
        generate_postmortem.delay(str(incident.pk))
        wait_for(
            lambda: sum("generate_postmortem" in line and "succeeded" in line for line in log) >= 3,
            60,
            "the repeated tasks to finish",
            log,
        )
    assert Incident.objects.count() == 1
    assert PostmortemRevision.objects.count() == 1
