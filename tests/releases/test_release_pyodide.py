"""The Pyodide 0.26.2 release, projected from its real deliveries in any order.

Release 0.26.2 ends blocked and partially deployed: CircleCI's deploy-release never ran
because test-packages-firefox (job 108413) failed, while GitHub Actions' deploy-release
workflow shipped the PyPI half. Under a policy that makes test-packages-firefox advisory,
the gate says the release may deploy.
"""

from __future__ import annotations

import random

import pytest
from rest_framework.test import APIClient

from releases import projector
from releases.models import Release, TimelineEntry
from releases.scenarios.pyodide import recovery, release_0_26_2
from releases.services import bot_token_create, policy_set
from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET
from tests.releases import factories as f

SECRETS = {"github": GITHUB_SECRET, "circleci": CIRCLECI_SECRET}
GATE = f"/api/v1/releases/{f.REPO}/{f.TAG}/gate"


def _replay(post, steps):
    for step in steps:
        assert post(step.delivery(SECRETS[step.platform])).status_code in {200, 202}


def _client(repository):
    client = APIClient()
    token = bot_token_create(name="gate", repositories=[repository])[1]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.parametrize("order", ["as it happened", "shuffled", "reversed"])
def test_the_release_ends_blocked_and_partially_deployed(post, repository, order):
    policy_set(repository=repository, document=f.PYODIDE_POLICY, actor="test")
    steps = release_0_26_2()
    if order == "shuffled":
        random.Random(4964).shuffle(steps)
    elif order == "reversed":
        steps.reverse()
    _replay(post, steps)
    projector.catch_up()
    release = Release.objects.get(repository=f.REPO, ref_key=f"tag:{f.TAG}")
    assert release.flag_list == ["blocked", "partially_deployed"]
    chain = release.blocking[0]
    assert (chain["deploy"], chain["platform"]) == ("deploy-release", "circleci")
    assert [b["job"] for b in chain["blocked_by"]] == ["test-packages-firefox"]
    assert chain["blocked_by"][0]["url"].endswith("/jobs/108413")
    entries = TimelineEntry.objects.filter(release=release)
    assert not entries.filter(platform="circleci", name="deploy-release").exists()
    github_deploy = entries.get(platform="github", kind="workflow_run", name="deploy-release")
    assert github_deploy.conclusion == "success"
    # Every CircleCI job of the tag pipeline joined by commit: it names no tag or branch.
    assert entries.filter(platform="circleci", kind="job").count() == 32
    assert not Release.objects.exclude(pk=release.pk).filter(repository=f.REPO, tag=f.TAG)

    gate = _client(repository).get(GATE).json()
    assert gate["deployable"] is False
    assert [b["job"] for b in gate["blocking"]] == ["test-packages-firefox"]


def test_under_an_advisory_firefox_policy_the_gate_says_deployable(post, repository):
    policy_set(repository=repository, document=f.ADVISORY_FIREFOX, actor="test")
    _replay(post, release_0_26_2())
    projector.catch_up()
    gate = _client(repository).get(GATE).json()
    assert gate["deployable"] is True, gate
    assert gate["blocking"] == []
    assert [a["job"] for a in gate["advisory_failures"]] == ["test-packages-firefox"]
    # The platform's own graph still held deploy-release back: both readings are shown.
    assert gate["blocking_chain"][0]["blocked_by"][0]["role"] == "advisory"


def test_the_rerun_joins_the_release_and_deploys_it(post, repository):
    policy_set(repository=repository, document=f.PYODIDE_POLICY, actor="test")
    _replay(post, release_0_26_2())
    projector.catch_up()
    _replay(post, recovery())
    projector.catch_up()
    release = Release.objects.get(repository=f.REPO, ref_key=f"tag:{f.TAG}")
    assert release.flag_list == ["deployed"]
    assert release.blocked_at is not None
    assert release.unblocked_at is not None
    assert release.deployed_at is not None
    runs = TimelineEntry.objects.filter(release=release, platform="circleci", kind="workflow_run")
    assert runs.count() == 2
    assert len({r.pipeline_number for r in runs}) == 1
