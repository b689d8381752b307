"""The admin: the stream read-only with filters; policies validated; tokens shown once."""

from __future__ import annotations

import pytest

from releases.models import BotToken, DeployPolicy, StreamEvent
from releases.services import repository_create
from tests.releases import factories as f

pytestmark = pytest.mark.django_db


def test_the_stream_is_listed_filtered_and_never_editable(admin_client):
    f.append_all(f.pyodide_story())
    listing = admin_client.get("/admin/releases/streamevent/?source__exact=circleci")
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 5
    row = StreamEvent.objects.first()
    assert row is not None
    page = admin_client.get(f"/admin/releases/streamevent/{row.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.get("/admin/releases/streamevent/add/").status_code == 403
    delete = admin_client.post(f"/admin/releases/streamevent/{row.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert StreamEvent.objects.filter(pk=row.pk).exists()


def test_an_invalid_policy_is_refused_in_the_admin_with_the_reason(admin_client):
    repo = repository_create(full_name=f.REPO)
    response = admin_client.post(
        "/admin/releases/deploypolicy/add/",
        {"repository": repo.pk, "document": "[jobs]\ncore = 3\n"},
    )
    assert response.status_code == 200
    assert "jobs.core must be a list of non-empty strings" in response.content.decode()
    assert not DeployPolicy.objects.exists()
    response = admin_client.post(
        "/admin/releases/deploypolicy/add/", {"repository": repo.pk, "document": f.PYODIDE_POLICY}
    )
    assert response.status_code == 302
    assert StreamEvent.objects.filter(event_type="policy.changed").count() == 1


def test_a_token_created_in_the_admin_is_shown_once_and_stored_hashed(admin_client):
    repo = repository_create(full_name=f.REPO)
    response = admin_client.post(
        "/admin/releases/bottoken/add/",
        {"name": "deploy-bot", "repositories": [repo.pk], "can_write": "on"},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) >= 1
    value = next(m for m in shown if "shiplog_" in m).split("Token for deploy-bot: ")[1].split()[0]
    bot = BotToken.objects.get()
    assert bot.can_write
    assert list(bot.repositories.all()) == [repo]
    page = admin_client.get(f"/admin/releases/bottoken/{bot.pk}/change/")
    assert value not in page.content.decode()
