"""Who may see and do what on the pages: login, roles, CSRF, and the security headers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from releases.models import StreamEvent
from tests.pages import (
    INLINE_SCRIPT,
    INLINE_STYLE,
    RELEASE_URL,
    blocked,
    incident_of,
    maintainer,
    maintainer_client,
    person,
    viewer,
    viewer_client,
)

REMOTE_ASSET = re.compile(r"<(script|link|img)\b[^>]*\b(src|href)=\"(https?:)?//", re.I)
__all__ = ["blocked", "maintainer", "maintainer_client", "viewer", "viewer_client"]
pytestmark = pytest.mark.django_db


def page_urls(incident_id: str) -> list[str]:
    first = StreamEvent.objects.order_by("position").values_list("position", flat=True)[0]
    return [
        "/",
        "/releases/",
        RELEASE_URL,
        "/incidents/",
        f"/incidents/{incident_id}/",
        f"/incidents/{incident_id}/postmortem/",
        "/lessons/",
        "/stream/",
        f"/stream/{first}/",
        "/settings/",
        "/settings/repositories/pyodide/pyodide/",
    ]


def action_urls(incident_id: str) -> list[tuple[str, dict[str, Any]]]:
    repo = "/settings/repositories/pyodide/pyodide"
    return [
        (f"/incidents/{incident_id}/notes/", {"note-text": "looking"}),
        (f"/incidents/{incident_id}/status/", {"status": "resolved"}),
        (f"/incidents/{incident_id}/severity/", {"severity": "low"}),
        (f"/incidents/{incident_id}/acknowledge/", {}),
        (
            f"/incidents/{incident_id}/action-items/",
            {"item-kind": "preventive", "item-text": "x"},
        ),
        (f"/incidents/{incident_id}/postmortem/regenerate/", {}),
        (
            f"/incidents/{incident_id}/postmortem/sections/summary/",
            {"summary-section": "summary", "summary-text": "x"},
        ),
        ("/settings/repositories/", {"full_name": "acme/rocket"}),
        (f"{repo}/secrets/", {"platform": "github", "secret": "long-enough-secret"}),
        (
            f"{repo}/credentials/",
            {"credential-platform": "github", "credential-token": "ghp_0123456789abcdef"},
        ),
        (f"{repo}/policy/", {"document": "[jobs]\n"}),
        (f"{repo}/policy/check/", {"document": "[jobs]\n"}),
        ("/settings/tokens/", {"name": "bot", "repositories": ["pyodide/pyodide"]}),
    ]


def test_anonymous_people_are_sent_to_log_in_from_every_page(client, blocked):
    incident = incident_of(blocked)
    for url in page_urls(str(incident.pk)):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url
    for url, data in action_urls(str(incident.pk)):
        response = client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url


def test_logging_in_leads_to_the_page_asked_for(client, maintainer):
    page = client.get("/login/")
    html = page.content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    wrong = client.post("/login/", {"username": "mara", "password": "nope"})
    assert wrong.status_code == 200
    assert 'role="alert"' in wrong.content.decode()
    response = client.post("/login/?next=/incidents/", {"username": "mara", "password": "pw-mara"})
    assert response.status_code == 302
    assert response["Location"] == "/incidents/"
    logout = client.post("/logout/")
    assert logout["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_viewers_read_every_page_but_change_nothing(viewer_client, blocked):
    incident = incident_of(blocked)
    for url in page_urls(str(incident.pk)):
        assert viewer_client.get(url).status_code == 200, url
    for url, data in action_urls(str(incident.pk)):
        assert viewer_client.post(url, data).status_code == 403, url
    page = viewer_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Add note" not in page
    assert "Change status" not in page
    assert "viewer" in page


def test_a_signed_in_person_in_no_group_reads_like_a_viewer(client, blocked):
    client.force_login(person("nobody"))
    assert client.get(RELEASE_URL).status_code == 200
    incident = incident_of(blocked)
    assert client.post(f"/incidents/{incident.pk}/notes/", {"note-text": "hi"}).status_code == 403


def test_a_superuser_acts_without_being_in_a_group(client, blocked):
    client.force_login(person("root", is_superuser=True, is_staff=True))
    incident = incident_of(blocked)
    response = client.post(f"/incidents/{incident.pk}/notes/", {"note-text": "on it"})
    assert response.status_code == 302
    assert ">Admin</a>" in client.get("/").content.decode()


def test_every_form_needs_its_csrf_token(maintainer, blocked):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(maintainer)
    incident = incident_of(blocked)
    for url, data in action_urls(str(incident.pk)):
        assert strict.post(url, data).status_code == 403, url
    page = strict.get(f"/incidents/{incident.pk}/")
    token = page.context["csrf_token"]
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    accepted = strict.post(
        f"/incidents/{incident.pk}/notes/",
        {"note-text": "with a token", "csrfmiddlewaretoken": token},
    )
    assert accepted.status_code == 302


def test_pages_are_served_under_a_strict_content_security_policy(maintainer_client, blocked):
    """No inline script or style anywhere, so the policy needs no 'unsafe-inline'."""
    incident = incident_of(blocked)
    anonymous = Client()
    for url in [*page_urls(str(incident.pk)), "/login/", "/api/docs/"]:
        response = (anonymous if url == "/login/" else maintainer_client).get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe" not in policy
        assert response["X-Frame-Options"] == "DENY"
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), url
        assert not INLINE_STYLE.search(html), url
        assert not REMOTE_ASSET.search(html), url


def test_the_api_docs_load_their_start_up_script_from_a_file(client):
    page = client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_the_admin_stays_separate_and_staff_only(maintainer_client):
    response = maintainer_client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
