"""Pyodide 0.26.2, replayed through the real endpoints: what the stream holds afterwards.

On 26 July 2024 tag 0.26.2 is pushed; GitHub Actions' `main` passes; CircleCI's tag pipeline
7578 fails in test-packages-firefox (job 108413), so its deploy-release never runs; a
maintainer publishes the release by hand and GitHub Actions ships the PyPI half. On 29 July a
rerun from failed, in the same pipeline, passes and deploys.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from releases import stream
from releases.ingest import NORMALISERS
from releases.models import Recognition, StreamEvent
from releases.scenarios import Step
from releases.scenarios.pyodide import (
    BLOCKED_JOB,
    FAILED_JOB,
    FAILED_JOB_NUMBER,
    SHA,
    TAG,
    recovery,
    release_0_26_2,
    the_whole_story,
)
from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET
from tests.fixtures import load, names

SECRETS = {"github": GITHUB_SECRET, "circleci": CIRCLECI_SECRET}
# Runs started by the release: GitHub Actions runs them on the release's tag.
RELEASE_WORKFLOWS = {"deploy-release", "Update cross-build metadata file"}


def replay(post: Any, steps: list[Step]) -> list[dict[str, Any]]:
    """Post every step, signed, through the real endpoints; return the answers."""
    answers = []
    for step in steps:
        response = post(step.delivery(SECRETS[step.platform]))
        assert response.status_code in {200, 202}, (step.summary, response.json())
        answers.append(response.json())
    return answers


def rows(**filters: Any) -> list[StreamEvent]:
    return list(StreamEvent.objects.filter(**filters).order_by("position"))


def test_the_story_is_told_in_order_with_one_delivery_id_each():
    steps = the_whole_story()
    assert [step.at for step in steps] == sorted(step.at for step in steps)
    assert len({(step.platform, step.delivery_id) for step in steps}) == len(steps)
    assert 80 <= len(steps) <= 100


def test_telling_it_twice_gives_the_same_deliveries_byte_for_byte():
    first, again = the_whole_story(), the_whole_story()
    assert [step.delivery("secret") for step in first] == [
        step.delivery("secret") for step in again
    ]


def test_the_incident_and_its_recovery_through_the_endpoints(post, repository):
    # 26 July: the tag, both CIs, the release. The blocked deploy sends nothing.
    answers = replay(post, release_0_26_2())
    assert {answer["status"] for answer in answers} == {"recorded"}
    assert rows(event_type="job-completed", data__name=BLOCKED_JOB) == []
    (failed_job,) = rows(event_type="job-completed", data__conclusion="failure")
    assert failed_job.data["name"] == FAILED_JOB
    assert failed_job.data["job_number"] == FAILED_JOB_NUMBER
    assert failed_job.data["url"].endswith(
        "/pipelines/github/pyodide/pyodide/7578/workflows/"
        f"403d102b-8063-48c2-a32c-bcede2efee93/jobs/{FAILED_JOB_NUMBER}"
    )
    (failed_workflow,) = rows(event_type="workflow-completed")
    assert (failed_workflow.data["status"], failed_workflow.data["conclusion"]) == (
        "failed",
        "failure",
    )
    (pypi,) = rows(event_type="workflow_run.completed", data__name="deploy-release")
    assert pypi.data["conclusion"] == "success"  # the GitHub half shipped regardless

    # 29 July: the rerun from failed, in the same pipeline, deploys.
    assert {answer["status"] for answer in replay(post, recovery())} == {"recorded"}
    (deployed,) = rows(event_type="job-completed", data__name=BLOCKED_JOB)
    assert deployed.data["conclusion"] == "success"
    assert deployed.occurred_at.isoformat().startswith("2024-07-29T08:59")
    rerun_workflow = rows(event_type="workflow-completed")[-1]
    assert rerun_workflow.data["conclusion"] == "success"
    assert rerun_workflow.data["pipeline_id"] == failed_workflow.data["pipeline_id"]
    assert rerun_workflow.data["pipeline_number"] == 7578
    assert rerun_workflow.data["run_id"] != failed_workflow.data["run_id"]

    # Everything once; a second replay is only duplicates.
    steps = the_whole_story()
    assert StreamEvent.objects.count() == len(steps)
    assert {answer["status"] for answer in replay(post, steps)} == {"duplicate"}
    assert StreamEvent.objects.count() == len(steps)
    assert list(stream.verify_chain()) == []


@pytest.mark.parametrize("order", ["in order", "shuffled"])
def test_every_delivery_is_recorded_once_with_the_columns_its_normalised_fact_gives(
    post, repository, order
):
    steps = the_whole_story()
    if order == "shuffled":
        random.Random(4964).shuffle(steps)  # the number: the same shuffle every run
    replay(post, steps)
    recorded = {row.delivery_key: row for row in rows()}
    assert len(recorded) == len(steps)
    for step in steps:
        key = (
            f"github:421337:{step.delivery_id}"
            if step.platform == "github"
            else f"circleci:{step.delivery_id}"
        )
        row = recorded[key]
        fact = NORMALISERS[step.platform].normalise(step.event_type, step.payload)
        assert row.recognition == Recognition.RECOGNISED, step.summary
        assert row.repository == "pyodide/pyodide", step.summary
        assert (row.event_type, row.sha, row.branch, row.tag) == (
            fact.event_type,
            fact.sha,
            fact.branch,
            fact.tag,
        ), step.summary
        assert row.occurred_at == fact.occurred_at == step.at, step.summary
        assert row.data == fact.as_data(), step.summary


def test_the_circleci_rows_are_joined_by_sha_as_the_tag_pipeline_names_no_tag(post, repository):
    replay(post, the_whole_story())
    circleci = rows(source="circleci")
    assert len(circleci) == 36  # 32 jobs and a workflow; then 2 jobs and a workflow
    assert {(row.sha, row.tag, row.branch) for row in circleci} == {(SHA, "", "")}


def test_the_github_rows_of_the_tag_read_it_as_the_normaliser_does(post, repository):
    replay(post, release_0_26_2())
    github = rows(source="github")
    # A release and a `create` event name the tag, not a commit; the rest name the commit.
    no_commit = {"create", "release.published"}
    assert {row.sha for row in github if row.event_type not in no_commit} == {SHA}
    assert {row.sha for row in github if row.event_type in no_commit} == {""}
    for row in github:
        workflow = row.data["workflow_name"]
        if row.event_type in {"push", "create", "release.published"}:
            expected = ("", TAG)  # the ref names the tag
        elif row.event_type.startswith(("deployment", "workflow_run")) and (
            workflow in RELEASE_WORKFLOWS
        ):
            expected = ("", TAG)  # a release run runs on the release's tag
        else:
            # A push run's head_branch, and any job's, may be a branch or a tag: kept as is.
            expected = (TAG, "")
        assert (row.branch, row.tag) == expected, (row.event_type, workflow)


def _paths(value: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found |= {path} | _paths(item, path)
    elif isinstance(value, list):
        for item in value:
            found |= _paths(item, f"{prefix}[]")
    return found


# Present only once a workflow has stopped: a job that ends mid-workflow has no such key.
OPTIONAL = {"workflow.stopped_at"}


def _shape(payload: Any) -> tuple[set[str], set[str]]:
    """Return a body's paths, apart from those of a job's optional `deployment`."""
    paths = _paths(payload) - OPTIONAL
    deployment = {path for path in paths if path.split(".", 1)[0] == "deployment"}
    return paths - deployment, deployment


@pytest.mark.parametrize("platform", ["github", "circleci"])
def test_every_scenario_body_has_the_shape_of_a_hand_written_fixture(platform):
    shapes: dict[str, list[set[str]]] = {}
    for name in names(platform):
        shapes.setdefault(name.split(".", 1)[0], []).append(_shape(load(platform, name))[0])
    _, job_deployment = _shape(load("github", "workflow_job.queued.with_deployment"))
    for step in the_whole_story():
        if step.platform != platform:
            continue
        paths, deployment = _shape(step.payload)
        assert paths in shapes[step.event_type], step.summary
        if step.event_type == "workflow_job" and deployment:
            assert deployment == job_deployment, step.summary
