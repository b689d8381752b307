"""The webhook endpoints: verify, dedupe, append, answer; bad input never half-stored."""

from __future__ import annotations

import threading

import orjson
import pytest
from django.db import InterfaceError, OperationalError, connection

from releases import stream
from releases.deliveries import circleci_delivery, github_delivery
from releases.models import Recognition, StreamEvent, WebhookSecret
from releases.services import (
    github_delivery_record,
    repository_create,
    webhook_secret_add,
    webhook_secret_retire,
)
from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET

PING = {
    "zen": "Anything added dilutes everything else.",
    "hook_id": 421337,
    "hook": {"type": "Repository", "id": 421337, "name": "web", "active": True, "events": ["*"]},
    "repository": {"id": 1, "full_name": "pyodide/pyodide", "name": "pyodide"},
    "sender": {"login": "hoodmane"},
}
CIRCLECI_PING = {
    "id": "d1264809-3541-48db-9d72-68f04f074877",
    "type": "ping",
    "happened_at": "2024-07-26T13:50:27.457981Z",
    "webhook": {"id": "87f2e824-39f9-4fa8-985e-ce1a0571ad93", "name": "shiplog"},
}


def test_a_new_github_delivery_is_recorded_with_its_raw_body_and_headers(post, github):
    delivery = github("ping", PING, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    response = post(delivery)
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "recorded"
    row = StreamEvent.objects.get(position=answer["position"])
    assert bytes(row.body) == delivery.body
    assert row.source == "github"
    assert row.event_type == "ping"
    assert row.repository == "pyodide/pyodide"
    assert row.delivery_key == "github:421337:72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert row.headers["X-GitHub-Delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert "X-Hub-Signature-256" not in row.headers
    assert GITHUB_SECRET not in orjson.dumps(row.headers).decode()


def test_a_github_redelivery_is_answered_as_a_duplicate_and_appends_nothing(post, github):
    delivery = github("ping", PING)
    first = post(delivery).json()
    again = post(delivery)
    assert again.status_code == 200
    assert again.json() == {
        "status": "duplicate",
        "position": first["position"],
        "event_id": first["event_id"],
    }
    assert StreamEvent.objects.count() == 1


def test_the_same_delivery_id_reaching_two_hooks_is_two_facts(post, github):
    assert post(github("ping", PING, delivery_id="same", hook_id=1)).status_code == 202
    assert post(github("ping", PING, delivery_id="same", hook_id=2)).status_code == 202
    assert StreamEvent.objects.count() == 2


def test_the_form_encoded_variant_is_accepted(post, github):
    delivery = github("ping", PING, form=True)
    response = post(delivery)
    assert response.status_code == 202, response.json()
    row = StreamEvent.objects.get()
    assert bytes(row.body) == delivery.body
    assert row.repository == "pyodide/pyodide"


@pytest.mark.parametrize(
    ("secret", "why"),
    [("not-the-secret", "signature does not match")],
)
def test_a_wrong_signature_gets_401_and_is_not_stored(post, github, secret, why):
    response = post(github("ping", PING, secret=secret))
    assert response.status_code == 401
    assert why in response.json()["error"]
    assert StreamEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("header", "why"),
    [(None, "missing X-Hub-Signature-256"), ("sha1=abc", "must be sha256=")],
)
def test_a_missing_or_malformed_signature_gets_401(client, github, header, why):
    delivery = github("ping", PING)
    headers = delivery.django_headers()
    headers.pop("HTTP_X_HUB_SIGNATURE_256")
    if header:
        headers["HTTP_X_HUB_SIGNATURE_256"] = header
    response = client.post(
        "/hooks/github/", data=delivery.body, content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert why in response.json()["error"]
    assert StreamEvent.objects.count() == 0


def test_a_signature_made_with_another_repositorys_secret_is_refused(post, repository):
    other = repository_create(full_name="someone/else")
    webhook_secret_add(repository=other, platform="github", secret="someone-elses-secret")
    # Signed with someone/else's secret, but claiming to be about pyodide/pyodide.
    response = post(github_delivery("ping", PING, "someone-elses-secret"))
    assert response.status_code == 401
    assert StreamEvent.objects.count() == 0


def test_two_active_secrets_both_verify_during_a_rotation(post, repository):
    webhook_secret_add(repository=repository, platform="github", secret="the-new-secret")
    assert post(github_delivery("ping", PING, GITHUB_SECRET)).status_code == 202
    assert post(github_delivery("ping", PING, "the-new-secret")).status_code == 202
    webhook_secret_retire(
        secret=WebhookSecret.objects.get(platform="github", last_four=GITHUB_SECRET[-4:])
    )
    assert post(github_delivery("ping", PING, GITHUB_SECRET)).status_code == 401


def test_the_environment_default_secret_serves_a_single_project_setup(post, db, settings):
    settings.SHIPLOG_GITHUB_WEBHOOK_SECRET = "from-the-environment"
    assert post(github_delivery("ping", PING, "from-the-environment")).status_code == 202
    assert post(github_delivery("ping", PING, "something-else")).status_code == 401


def test_no_configured_secret_is_a_clear_401(post, db):
    response = post(github_delivery("ping", PING, "anything"))
    assert response.status_code == 401
    assert (
        "no github webhook secret is configured for repository pyodide/pyodide"
        in (response.json()["error"])
    )


@pytest.mark.parametrize(
    "missing", ["HTTP_X_GITHUB_EVENT", "HTTP_X_GITHUB_DELIVERY", "HTTP_X_GITHUB_HOOK_ID"]
)
def test_missing_github_headers_get_400_naming_them(client, github, missing):
    delivery = github("ping", PING)
    headers = delivery.django_headers()
    headers.pop(missing)
    response = client.post(
        "/hooks/github/", data=delivery.body, content_type="application/json", **headers
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("missing X-GitHub-")
    assert StreamEvent.objects.count() == 0


def test_a_wrong_content_type_gets_415(client, github):
    delivery = github("ping", PING)
    response = client.post(
        "/hooks/github/",
        data=delivery.body,
        content_type="text/plain",
        **delivery.django_headers(),
    )
    assert response.status_code == 415
    assert "content type" in response.json()["error"]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_a_wrong_method_gets_405(client, db, method):
    response = getattr(client, method)("/hooks/github/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "not allowed" in response.json()["error"]


def test_a_body_over_25_mb_gets_413_and_is_not_stored(post, github):
    payload = dict(PING, zen="x" * (25 * 1024 * 1024))
    response = post(github("ping", payload))
    assert response.status_code == 413
    assert "byte limit" in response.json()["error"]
    assert StreamEvent.objects.count() == 0


def test_a_body_just_under_the_cap_is_accepted(post, github):
    payload = dict(PING, zen="x" * (24 * 1024 * 1024))
    assert post(github("ping", payload)).status_code == 202


def test_a_verified_delivery_of_an_unknown_type_is_stored_flagged_and_acknowledged(post, github):
    response = post(github("sponsorship", {"action": "created", "repository": PING["repository"]}))
    assert response.status_code == 202
    assert "not interpreted" in response.json()["note"]
    row = StreamEvent.objects.get()
    assert row.recognition == Recognition.UNRECOGNISED
    assert row.event_type == "sponsorship"


def test_a_verified_body_that_cannot_be_parsed_is_kept_flagged_and_answered_400(
    client, db, settings
):
    settings.SHIPLOG_GITHUB_WEBHOOK_SECRET = "single-project-secret"
    delivery = github_delivery("workflow_run", {}, "single-project-secret")
    body = b'{"action": "completed", "workflow_run": '
    from releases.signatures import sign_github

    headers = delivery.django_headers()
    headers["HTTP_X_HUB_SIGNATURE_256"] = sign_github(body, "single-project-secret")
    response = client.post("/hooks/github/", data=body, content_type="application/json", **headers)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    row = StreamEvent.objects.get()
    assert row.recognition == Recognition.MALFORMED
    assert bytes(row.body) == body


def test_a_verified_json_body_missing_required_fields_is_kept_as_malformed(post, github):
    response = post(
        github("workflow_run", {"action": "completed", "repository": PING["repository"]})
    )
    assert response.status_code == 400
    assert response.json()["error"] == "workflow_run is missing"
    assert StreamEvent.objects.get().recognition == Recognition.MALFORMED


def test_a_circleci_delivery_is_recorded_and_its_redelivery_is_a_duplicate(post, circleci):
    delivery = circleci(CIRCLECI_PING)
    first = post(delivery)
    assert first.status_code == 202
    again = post(delivery)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    row = StreamEvent.objects.get()
    assert row.delivery_key == f"circleci:{CIRCLECI_PING['id']}"
    assert row.repository == "pyodide/pyodide"  # the secret that verified it says whose it is
    assert "circleci-signature" not in row.headers


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_while_the_database_is_down_both_hooks_answer_503_with_retry_after(
    post, github, circleci, monkeypatch, error
):
    """The sender keeps the delivery and retries; the retry is recorded (`make chaos` too)."""
    deliveries = [github("ping", PING), circleci(CIRCLECI_PING)]

    def unavailable(**kwargs):
        raise error("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(stream, "append", unavailable)
    for delivery in deliveries:
        response = post(delivery)
        assert response.status_code == 503
        assert response["Retry-After"].isdigit()
        assert response.json()["status"] == "rejected"
    monkeypatch.undo()
    assert [post(delivery).status_code for delivery in deliveries] == [202, 202]
    assert StreamEvent.objects.count() == 2


def test_a_circleci_delivery_with_a_wrong_signature_gets_401(post, circleci):
    response = post(circleci(CIRCLECI_PING, secret="wrong-secret"))
    assert response.status_code == 401
    assert StreamEvent.objects.count() == 0


def test_a_missing_circleci_event_type_gets_400(client, repository):
    delivery = circleci_delivery(CIRCLECI_PING, CIRCLECI_SECRET)
    headers = delivery.django_headers()
    headers.pop("HTTP_CIRCLECI_EVENT_TYPE")
    response = client.post(
        "/hooks/circleci/", data=delivery.body, content_type="application/json", **headers
    )
    assert response.status_code == 400
    assert response.json()["error"] == "missing circleci-event-type header"


def test_secrets_never_appear_in_answers_or_logs(post, github, circleci, caplog):
    caplog.set_level("DEBUG")
    answers = [
        post(github("ping", PING)).content,
        post(github("ping", PING, secret="wrong-secret")).content,
        post(circleci(CIRCLECI_PING)).content,
    ]
    for text in [*answers, caplog.text.encode()]:
        assert GITHUB_SECRET.encode() not in text
        assert CIRCLECI_SECRET.encode() not in text


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_with_the_same_key_store_exactly_one_row(repository):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent transactions on PostgreSQL")
    delivery = github_delivery("ping", PING, GITHUB_SECRET, delivery_id="raced")
    barrier = threading.Barrier(8)
    outcomes = []

    def deliver():
        try:
            barrier.wait()
            outcomes.append(
                github_delivery_record(
                    headers=delivery.headers,
                    body=delivery.body,
                    content_type=delivery.content_type,
                ).status
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [200] * 7 + [202]
    assert StreamEvent.objects.count() == 1
    assert list(stream.verify_chain()) == []
