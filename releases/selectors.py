"""Reads for the releases app."""

from __future__ import annotations

from django.conf import settings

from releases.encryption import UndecryptableSecret, decrypt
from releases.models import Repository, WebhookSecret

# The environment's default secret is tagged with this instead of a repository name.
ENV_DEFAULT = ""


def webhook_secret_candidates(*, platform: str, repository: str | None) -> list[tuple[str, str]]:
    """Return (secret, repository) pairs a delivery's signature may be checked against.

    With a claimed repository, only that repository's active secrets (and the environment's
    default) qualify, so a signature made with another repository's secret never verifies.
    Without one (a ping from an organisation hook, an unparseable body), every active secret
    of the platform does, and the one that matches says which repository sent it.
    """
    secrets = WebhookSecret.objects.filter(platform=platform, active=True)
    if repository is not None:
        secrets = secrets.filter(repository__full_name=repository)
    candidates: list[tuple[str, str]] = []
    for encrypted, full_name in secrets.values_list("encrypted_secret", "repository__full_name"):
        try:
            candidates.append((decrypt(bytes(encrypted)), full_name))
        except UndecryptableSecret:
            continue
    default = {
        "github": settings.SHIPLOG_GITHUB_WEBHOOK_SECRET,
        "circleci": settings.SHIPLOG_CIRCLECI_WEBHOOK_SECRET,
    }[platform]
    if default:
        candidates.append((default, ENV_DEFAULT))
    return candidates


def repository_for_circleci_slug(slug: str) -> str:
    """Return the repository registered for an opaque CircleCI project slug, or ""."""
    if not slug:
        return ""
    found = (
        Repository.objects.filter(circleci_project_slug=slug)
        .values_list("full_name", flat=True)
        .first()
    )
    return found or ""
