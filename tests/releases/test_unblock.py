"""Deploy retry: Shiplog reruns a blocked deploy through the CI API, once, and says why.

The Pyodide 0.26.2 scenario with test-packages-firefox advisory and automatic retry on:
Shiplog reruns from failed once; the fake CircleCI then sends the new workflow's signed
webhooks (deploy-release succeeds); the release becomes deployed; the incident resolves;
the postmortem credits the automatic retry and its timing.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents.models import Incident
from incidents.services import postmortem_generate
from releases import projector
from releases.models import Release, RetryAttempt, StreamEvent
from releases.scenarios.pyodide import RERUN_WORKFLOW, recovery, release_0_26_2
from releases.selectors import release_detail
from releases.services import ci_credential_set, policy_set
from releases.unblock import retries_due, retry_execute
from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET
from tests.fakes.ci_servers import Reply
from tests.releases import factories as f

SECRETS = {"github": GITHUB_SECRET, "circleci": CIRCLECI_SECRET}
TOKEN = "circle-token-for-pyodide-0123456789"
FAILED_WORKFLOW = "403d102b-8063-48c2-a32c-bcede2efee93"
RERUN_PATH = f"/workflow/{FAILED_WORKFLOW}/rerun"
RETRY_ON = f.ADVISORY_FIREFOX + "\n[retry]\nenabled = true\nmax_attempts = 2\n"


def _replay(post, steps):
    for step in steps:
        assert post(step.delivery(SECRETS[step.platform])).status_code in {200, 202}


@pytest.fixture
def blocked(post, repository, fake_circleci):
    """Pyodide blocked by an advisory job, with retry on and a CircleCI token."""
    fake_circleci.add_workflow({"id": FAILED_WORKFLOW, "name": "build-and-deploy"}, [])
    policy_set(repository=repository, document=RETRY_ON, actor="test")
    ci_credential_set(repository=repository, platform="circleci", token=TOKEN)
    _replay(post, release_0_26_2())
    projector.catch_up()
    return fake_circleci


def _retry_events(kind: str) -> list[StreamEvent]:
    return list(StreamEvent.objects.filter(event_type=f"retry.{kind}").order_by("position"))


def test_a_blocked_deploy_is_rerun_once_and_the_release_recovers(blocked, post):
    blocked.script("POST", RERUN_PATH, Reply(202, {"workflow_id": RERUN_WORKFLOW.id}))
    [requested] = _retry_events("requested")
    assert requested.data["extra"]["api"] == "circleci.rerun_from_failed"
    assert requested.tag == f.TAG
    considered = _retry_events("considered")
    assert (
        "`test-packages-firefox` is advisory under the policy"
        in (considered[0].data["extra"]["reason"])
    )
    assert retries_due() == [RetryAttempt.objects.get().idempotency_key]
    assert [c.json for c in blocked.calls("POST")] == [{"from_failed": True}]
    [accepted] = _retry_events("accepted")
    assert accepted.data["extra"]["new_run_id"] == RERUN_WORKFLOW.id

    _replay(post, recovery())  # the fake CircleCI's webhooks for the new workflow
    projector.catch_up()
    assert retries_due() == []
    assert len(blocked.calls("POST")) == 1

    release = Release.objects.get(ref_key=f"tag:{f.TAG}")
    assert release.flag_list == ["deployed"]
    rerun = [e for e in release_detail(release).entries if e.run_id == RERUN_WORKFLOW.id]
    assert rerun
    assert {e.extra.get("caused_by") for e in rerun} == {accepted.position}

    incident = Incident.objects.get()
    assert incident.status == "resolved"
    postmortem_generate(incident_id=incident.pk)
    markdown = incident.postmortems.get().markdown
    assert "**Automatic retry:** accepted: circleci.rerun_from_failed (attempt 1) at" in markdown
    assert "after the incident opened" in markdown
    assert "Shiplog's automatic retry unblocked the deploy" in markdown


def test_a_task_delivered_twice_or_two_workers_at_once_rerun_once(blocked, transactional_db):
    key = RetryAttempt.objects.get().idempotency_key
    if connection.vendor == "postgresql":
        outcomes: list[str] = []

        def worker():
            try:
                outcomes.append(retry_execute(key=key))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        outcomes = [retry_execute(key=key) for _ in range(4)]
    assert len(blocked.calls("POST")) == 1
    assert "accepted" in outcomes
    assert retry_execute(key=key) == "accepted"
    assert len(blocked.calls("POST")) == 1


def test_a_redelivered_webhook_requests_no_second_rerun(blocked, post):
    _replay(post, release_0_26_2())
    projector.catch_up()
    retries_due()
    retries_due()
    assert RetryAttempt.objects.count() == 1
    assert len(blocked.calls("POST")) == 1


@pytest.mark.parametrize(
    ("reply", "status", "reason"),
    [
        (Reply(404, {"message": "Workflow not found"}), "failed", "workflow not found"),
        (Reply(401, {"message": "You must log in first."}), "failed", "401"),
    ],
)
def test_permanent_failures_are_recorded_with_a_reason_and_never_retried(
    blocked, reply, status, reason
):
    blocked.script("POST", RERUN_PATH, reply, reply, reply)
    retries_due()
    retries_due()
    attempt = RetryAttempt.objects.get()
    assert attempt.status == status
    [failed] = _retry_events("failed")
    assert reason in failed.data["extra"]["reason"] or reason == str(
        failed.data["extra"].get("status")
    )
    assert len(blocked.calls("POST")) == 1
    assert TOKEN not in str(failed.data)


def test_a_rate_limit_is_honoured_then_the_rerun_goes_through(blocked):
    blocked.script(
        "POST",
        RERUN_PATH,
        Reply(429, {"message": "slow down"}, headers={"Retry-After": "120"}),
        Reply(202, {"workflow_id": RERUN_WORKFLOW.id}),
    )
    now = timezone.now()
    retries_due(now=now)
    attempt = RetryAttempt.objects.get()
    assert attempt.status == "requested"
    assert (attempt.not_before - now).total_seconds() == pytest.approx(120, abs=1)
    retries_due(now=now + timedelta(seconds=30))
    assert len(blocked.calls("POST")) == 1  # still waiting
    retries_due(now=now + timedelta(seconds=121))
    attempt.refresh_from_db()
    assert attempt.status == "accepted"
    assert len(blocked.calls("POST")) == 2
    assert _retry_events("deferred")


def test_the_kill_switch_stops_every_rerun(post, repository, fake_circleci, settings):
    settings.SHIPLOG_RETRY_KILL_SWITCH = True
    policy_set(repository=repository, document=RETRY_ON, actor="test")
    ci_credential_set(repository=repository, platform="circleci", token=TOKEN)
    _replay(post, release_0_26_2())
    projector.catch_up()
    retries_due()
    assert not RetryAttempt.objects.exists()
    assert fake_circleci.calls("POST") == []
    assert "kill switch" in _retry_events("considered")[0].data["extra"]["reason"]


DISPATCH_ON = RETRY_ON + '\n[retry.dispatch]\nworkflow = "deploy_release.yml"\n'


def test_a_github_half_that_never_ran_is_dispatched_at_the_tag(
    post, repository, fake_circleci, fake_github
):
    """The coordinator pattern: CircleCI shipped, so Shiplog starts the GitHub half."""
    fake_github.workflows["pyodide/pyodide"].add("deploy_release.yml")
    policy_set(repository=repository, document=DISPATCH_ON, actor="test")
    ci_credential_set(repository=repository, platform="github", token="ghp_" + "b" * 36)
    without_github_deploy = [
        step
        for step in release_0_26_2()
        if step.event_type != "release"
        and "deploy-release" not in str(step.payload.get("workflow_run", {}).get("name", ""))
        and "deploy-release"
        not in str(step.payload.get("workflow_job", {}).get("workflow_name", ""))
        and step.event_type not in {"deployment", "deployment_status"}
    ]
    _replay(post, without_github_deploy)
    projector.catch_up()
    _replay(post, recovery())
    projector.catch_up()
    retries_due()
    [call] = fake_github.calls("POST")
    assert call.path == "/repos/pyodide/pyodide/actions/workflows/deploy_release.yml/dispatches"
    assert call.json["ref"] == f.TAG
    attempt = RetryAttempt.objects.get(api="github.dispatch")
    assert attempt.status == "accepted"
    assert (
        "never ran on GitHub Actions while the other half shipped"
        in (_retry_events("requested")[-1].data["extra"]["reason"])
    )


def test_the_ci_token_never_reaches_events_logs_or_task_arguments(blocked, caplog, settings):
    caplog.set_level("DEBUG")
    sent: list[tuple[object, ...]] = []
    settings.SHIPLOG_PROJECT_AFTER_COMMIT = True
    from releases import tasks

    original = tasks.execute_retry.apply_async
    tasks.execute_retry.apply_async = lambda args=(), **kw: sent.append(args)  # type: ignore
    try:
        blocked.script(
            "POST", RERUN_PATH, Reply(429, {"message": "slow"}, headers={"Retry-After": "1"})
        )
        retries_due()
        retries_due(now=timezone.now() + timedelta(seconds=5))
    finally:
        tasks.execute_retry.apply_async = original  # type: ignore[method-assign]
    everything = [caplog.text, repr(sent)]
    for row in StreamEvent.objects.all():
        everything += [bytes(row.body).decode("utf-8", "replace"), str(row.headers), str(row.data)]
    everything += [str(a.result) for a in RetryAttempt.objects.all()]
    assert all(TOKEN not in text for text in everything)
    assert any("circleci.rerun_from_failed" in str(a.api) for a in RetryAttempt.objects.all())


@pytest.mark.parametrize(
    "reply", [Reply(503, {"message": "unavailable"}), Reply(502, raw=b"<html>bad gateway</html>")]
)
def test_a_server_error_is_retried_with_backoff_then_goes_through(blocked, reply):
    blocked.script("POST", RERUN_PATH, reply, Reply(202, {"workflow_id": RERUN_WORKFLOW.id}))
    now = timezone.now()
    retries_due(now=now)
    attempt = RetryAttempt.objects.get()
    assert (attempt.status, attempt.tries) == ("requested", 1)
    assert attempt.not_before > now
    retries_due(now=attempt.not_before + timedelta(seconds=1))
    attempt.refresh_from_db()
    assert attempt.status == "accepted"
    assert len(blocked.calls("POST")) == 2


def test_a_422_is_permanent_and_says_why(blocked):
    blocked.script("POST", RERUN_PATH, Reply(422, {"message": "bad input"}))
    retries_due()
    retries_due()
    [failed] = _retry_events("failed")
    assert failed.data["extra"]["permanent"] is True
    assert len(blocked.calls("POST")) == 1
