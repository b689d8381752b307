"""CI credentials: encrypted at rest, replaced not duplicated, never shown, rotatable."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from releases import encryption
from releases.models import CICredential, StreamEvent, WebhookSecret
from releases.selectors import ci_credential_token, webhook_secret_candidates
from releases.services import (
    ci_credential_set,
    repository_create,
    webhook_secret_add,
)
from tests.releases import factories as f

pytestmark = pytest.mark.django_db

TOKEN = "CCIPAT_s3cr3t-circleci-token-0123456789abcdef"
NEW_TOKEN = "CCIPAT_n3w-circleci-token-fedcba9876543210wxyz"
GH_TOKEN = "github_pat_11AAAAAAA0s3cr3tG1tHubT0k3nV4lu3"


@pytest.fixture
def keys(settings) -> Iterator[object]:
    """Let a test choose SHIPLOG_ENCRYPTION_KEYS; the cached MultiFernet follows."""

    class Keys:
        def use(self, *values: str) -> None:
            settings.SHIPLOG_ENCRYPTION_KEYS = list(values)
            encryption._fernet.cache_clear()

    encryption._fernet.cache_clear()
    yield Keys()
    encryption._fernet.cache_clear()


def test_a_token_is_stored_encrypted_and_read_back_only_by_the_selector(caplog):
    caplog.set_level(logging.DEBUG)
    repo = repository_create(full_name=f.REPO)
    credential = ci_credential_set(repository=repo, platform="circleci", token=f"  {TOKEN}\n")
    assert TOKEN.encode() not in bytes(credential.encrypted_token)
    assert credential.last_four == TOKEN[-4:]
    assert ci_credential_token(repository=repo, platform="circleci") == TOKEN
    assert ci_credential_token(repository=repo, platform="github") is None
    for shown in (str(credential), repr(credential), caplog.text):
        assert TOKEN not in shown
    assert str(credential) == f"{f.REPO} circleci token ••••{TOKEN[-4:]}"
    assert not StreamEvent.objects.exists()


def test_setting_a_token_again_replaces_it():
    repo = repository_create(full_name=f.REPO)
    first = ci_credential_set(repository=repo, platform="circleci", token=TOKEN)
    ci_credential_set(repository=repo, platform="github", token=GH_TOKEN)
    second = ci_credential_set(repository=repo, platform="circleci", token=NEW_TOKEN)
    assert second.pk == first.pk
    assert CICredential.objects.count() == 2
    assert ci_credential_token(repository=repo, platform="circleci") == NEW_TOKEN
    assert ci_credential_token(repository=repo, platform="github") == GH_TOKEN


@pytest.mark.parametrize(
    ("platform", "token", "error"),
    [
        ("jenkins", TOKEN, "platform must be one of github, circleci"),
        ("circleci", "short-s3cr3t", "at least 16 characters"),
    ],
)
def test_a_bad_credential_is_refused_without_repeating_the_token(platform, token, error):
    repo = repository_create(full_name=f.REPO)
    with pytest.raises(ValueError, match=error) as raised:
        ci_credential_set(repository=repo, platform=platform, token=token)
    assert token not in str(raised.value)
    assert not CICredential.objects.exists()


def test_the_admin_takes_a_token_write_only_and_shows_only_its_last_four(admin_client):
    repo = repository_create(full_name=f.REPO)
    response = admin_client.post(
        "/admin/releases/cicredential/add/",
        {"repository": repo.pk, "platform": "circleci", "token": TOKEN},
    )
    assert response.status_code == 302
    credential = CICredential.objects.get()
    assert ci_credential_token(repository=repo, platform="circleci") == TOKEN
    listing = admin_client.get("/admin/releases/cicredential/").content.decode()
    assert f"••••{TOKEN[-4:]}" in listing
    change = admin_client.get(f"/admin/releases/cicredential/{credential.pk}/change/")
    page = change.content.decode()
    assert TOKEN not in page
    assert f"••••{TOKEN[-4:]}" in page
    history = admin_client.get(f"/admin/releases/cicredential/{credential.pk}/history/")
    assert TOKEN not in history.content.decode()

    # Saving without a token keeps the stored one; saving with one replaces it.
    url = f"/admin/releases/cicredential/{credential.pk}/change/"
    assert admin_client.post(url, {"token": ""}).status_code == 302
    assert ci_credential_token(repository=repo, platform="circleci") == TOKEN
    assert admin_client.post(url, {"token": NEW_TOKEN}).status_code == 302
    assert ci_credential_token(repository=repo, platform="circleci") == NEW_TOKEN
    assert CICredential.objects.count() == 1


def test_the_admin_refuses_a_second_credential_and_never_echoes_the_token(admin_client):
    repo = repository_create(full_name=f.REPO)
    ci_credential_set(repository=repo, platform="circleci", token=TOKEN)
    response = admin_client.post(
        "/admin/releases/cicredential/add/",
        {"repository": repo.pk, "platform": "circleci", "token": NEW_TOKEN},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "already exists" in page
    assert NEW_TOKEN not in page
    missing = admin_client.post(
        "/admin/releases/cicredential/add/", {"repository": repo.pk, "platform": "github"}
    )
    assert "A new CI credential needs its token." in missing.content.decode()
    assert ci_credential_token(repository=repo, platform="circleci") == TOKEN


def test_rotation_re_encrypts_every_secret_with_the_newest_key(keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys.use(old)
    repo = repository_create(full_name=f.REPO)
    webhook_secret_add(repository=repo, platform="github", secret="gh-webhook-secret")
    credential = ci_credential_set(repository=repo, platform="circleci", token=TOKEN)
    updated_at = credential.updated_at

    keys.use(new, old)
    call_command("rotate_encryption_keys", stdout=(out := io.StringIO()))
    assert "releases.CICredential: 1 re-encrypted" in out.getvalue()
    assert "releases.WebhookSecret: 1 re-encrypted" in out.getvalue()

    keys.use(new)  # the old key is gone: everything must still decrypt
    assert ci_credential_token(repository=repo, platform="circleci") == TOKEN
    assert ("gh-webhook-secret", f.REPO) in webhook_secret_candidates(
        platform="github", repository=f.REPO
    )
    assert CICredential.objects.get().updated_at == updated_at


def test_rotation_reports_secrets_no_key_can_read_and_leaves_them(keys):
    lost, kept = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys.use(lost)
    repo = repository_create(full_name=f.REPO)
    unreadable = webhook_secret_add(repository=repo, platform="github", secret="gh-webhook-secret")
    before = bytes(WebhookSecret.objects.get().encrypted_secret)
    keys.use(kept)
    ci_credential_set(repository=repo, platform="circleci", token=TOKEN)
    err = io.StringIO()
    with pytest.raises(CommandError, match="keep the old key"):
        call_command("rotate_encryption_keys", stdout=io.StringIO(), stderr=err)
    assert f"rows {unreadable.pk}" in err.getvalue()
    assert bytes(WebhookSecret.objects.get().encrypted_secret) == before
    assert ci_credential_token(repository=repo, platform="circleci") == TOKEN
