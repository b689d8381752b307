"""Fixtures for the maintainers' pages: people in each role, and the Pyodide release in each state.

Import the fixtures a test module needs from here; the release fixtures replay the real
deliveries through the webhook endpoints and project them, as the worker would.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from incidents.models import Incident
from releases import projector
from releases.access import MAINTAINERS, VIEWERS
from releases.models import Release, Repository
from releases.scenarios.pyodide import POLICY, recovery, release_0_26_2
from releases.services import policy_set
from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET

SECRETS = {"github": GITHUB_SECRET, "circleci": CIRCLECI_SECRET}
RELEASE_URL = "/releases/pyodide/pyodide/0.26.2/"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.I)


def person(username: str, *groups: str, **fields: Any) -> User:
    """Return a user in `groups`, created with the password "pw-<username>"."""
    user = User.objects.create_user(username=username, password=f"pw-{username}", **fields)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def maintainer(db: None) -> User:
    return person("mara", MAINTAINERS)


@pytest.fixture
def viewer(db: None) -> User:
    return person("vic", VIEWERS)


@pytest.fixture
def maintainer_client(maintainer: User) -> Client:
    client = Client()
    client.force_login(maintainer)
    return client


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


def replay(post: Any, steps: list[Any]) -> None:
    """Post each step, signed, through the real endpoint."""
    for step in steps:
        response = post(step.delivery(SECRETS[step.platform]))
        assert response.status_code in {200, 202}, (step.summary, response.content)


@pytest.fixture
def blocked(post: Any, repository: Repository) -> Release:
    """Return 0.26.2 as 26 July left it: blocked on CircleCI, shipped on GitHub, incident open."""
    policy_set(repository=repository, document=POLICY, actor="test")
    replay(post, release_0_26_2())
    projector.catch_up()
    release = Release.objects.get(repository=repository.full_name, tag="0.26.2")
    assert release.state == "blocked"
    assert Incident.objects.filter(status="investigating").count() == 1
    return release


@pytest.fixture
def recovered(blocked: Release, post: Any) -> Release:
    """Return 0.26.2 after the rerun of 29 July: deployed everywhere, incident resolved."""
    replay(post, recovery())
    projector.catch_up()
    blocked.refresh_from_db()
    assert blocked.state == "deployed"
    return blocked


def incident_of(release: Release) -> Incident:
    """Return the release's one incident."""
    return Incident.objects.get(repository=release.repository, release_key=release.ref_key)
