"""Hostile input at the hooks: clear 4xx answers, nothing half-stored, never a 500."""

from __future__ import annotations

import pytest

from releases.deliveries import github_delivery
from releases.models import Recognition, StreamEvent
from releases.signatures import sign_github
from tests.conftest import GITHUB_SECRET

PING = {"zen": "z", "hook_id": 1, "repository": {"full_name": "pyodide/pyodide"}}


def _signed(client, body: bytes, headers: dict[str, str] | None = None, **extra):
    delivery = github_delivery("workflow_run", PING, GITHUB_SECRET)
    merged = {**delivery.headers, "X-Hub-Signature-256": sign_github(body, GITHUB_SECRET)}
    merged.update(headers or {})
    merged.pop("Content-Type")
    return client.generic(
        "POST",
        "/hooks/github/",
        data=body,
        content_type="application/json",
        headers=merged,
        **extra,
    )


@pytest.mark.usefixtures("repository")
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'{"action": "completed", "workflow_run": "\xff\xfe"}', "not valid JSON"),
        (b"null", "must be a JSON object"),
    ],
)
def test_a_signed_but_unparseable_body_is_kept_as_malformed_and_answered_400(
    client, settings, body, why
):
    settings.SHIPLOG_GITHUB_WEBHOOK_SECRET = GITHUB_SECRET  # unparseable: no repository to ask
    response = _signed(client, body)
    assert response.status_code == 400
    assert why in response.json()["error"]
    row = StreamEvent.objects.get()
    assert row.recognition == Recognition.MALFORMED
    assert bytes(row.body) == body


@pytest.mark.usefixtures("repository")
def test_huge_headers_are_refused_with_the_header_named(client):
    response = _signed(client, b"{}", {"X-GitHub-Delivery": "d" * 100_000})
    assert response.status_code == 400
    assert "X-GitHub-Delivery header is longer than 200 characters" in response.json()["error"]
    assert not StreamEvent.objects.exists()


def test_a_valid_signature_replayed_is_a_duplicate_not_a_new_fact(post, github):
    delivery = github("ping", PING)
    assert post(delivery).status_code == 202
    for _ in range(3):
        assert post(delivery).json()["status"] == "duplicate"
    assert StreamEvent.objects.count() == 1


def test_a_valid_signature_over_a_changed_body_is_refused(client, repository):
    delivery = github_delivery("ping", PING, GITHUB_SECRET)
    headers = dict(delivery.headers)
    headers.pop("Content-Type")
    response = client.generic(
        "POST",
        "/hooks/github/",
        data=delivery.body + b" ",
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert not StreamEvent.objects.exists()


@pytest.mark.django_db
def test_a_bad_content_length_is_a_400(client):
    response = client.generic(
        "POST",
        "/hooks/github/",
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH="lots",
    )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["error"]
