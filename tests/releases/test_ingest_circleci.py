"""The CircleCI normaliser, fixture by fixture: both payload variants, tags, reruns, bad bodies."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from releases.ingest.base import Kind, MalformedPayload, Normalised, UnrecognisedEvent
from releases.ingest.circleci import (
    CircleCINormaliser,
    repository_from_slug,
    repository_from_url,
)
from tests.fixtures import DELETE, changed, event_type, load, names

SHA = "7e7cadb9cd3863d5bc5e5620532bea369a135552"
REPO = "pyodide/pyodide"
OAUTH_APP = "https://app.circleci.com/pipelines/github/pyodide/pyodide"
APP_SLUG = "circleci/7Hq2mVxK9bT4nRzL3cWd8e/Fp5sJ1gYu6oN0aXkQ2hE9r"
GITHUB_APP = f"https://app.circleci.com/pipelines/{APP_SLUG}"
WEBHOOK_ID = "9b0f2c8e-5d41-4a7b-8e36-1f4c2a9d7b05"
BRANCH_PIPELINE = "1d7b3e9f-4a62-4c05-a9d8-5e2c7f0b3a14"
TAG_PIPELINE = "6a1e0f3b-9c27-4d58-b8e4-2f7a5c1d9e03"
BRANCH_WORKFLOW = "58c2e71a-3f9d-4b06-a4e8-9d1c6b2f0e37"
TAG_WORKFLOW = "403d102b-8063-48c2-a32c-bcede2efee93"
RERUN_WORKFLOW = "0c9f4e2b-7d18-4a53-b6e1-8f3a2d5c9b70"

normaliser = CircleCINormaliser()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def circleci(**fields: Any) -> Normalised:
    return Normalised(platform="circleci", **fields)


def extra(**fields: Any) -> dict[str, Any]:
    return {
        "project_slug": "gh/pyodide/pyodide",
        "trigger": "webhook",
        "vcs_provider": "github",
        "commit_subject": "",
        **fields,
        "webhook_id": WEBHOOK_ID,
    }


# Every field of the result is compared: a field left out here must keep its default.
EXPECTED = {
    "workflow-completed": circleci(
        event_type="workflow-completed",
        kind=Kind.WORKFLOW_RUN,
        repository=REPO,
        name="build-and-deploy",
        status="success",
        conclusion="success",
        run_id=BRANCH_WORKFLOW,
        workflow_name="build-and-deploy",
        pipeline_id=BRANCH_PIPELINE,
        pipeline_number=7577,
        started_at=at("2024-07-26T13:54:44.507"),
        completed_at=at("2024-07-26T16:02:11.401"),
        occurred_at=at("2024-07-26T16:02:11.514873"),
        url=f"{OAUTH_APP}/7577/workflows/{BRANCH_WORKFLOW}",
        sha=SHA,
        branch="0.26.X",
        extra=extra(
            commit_subject="Version 0.26.2", pipeline_created_at="2024-07-26T13:54:44.318Z"
        ),
    ),
    "job-completed": circleci(
        event_type="job-completed",
        kind=Kind.JOB,
        repository=REPO,
        name="build-core",
        status="success",
        conclusion="success",
        run_id=BRANCH_WORKFLOW,
        workflow_name="build-and-deploy",
        pipeline_id=BRANCH_PIPELINE,
        pipeline_number=7577,
        job_id="d5a9c2e7-3b16-4f80-9e4d-1a7c6b3f8e29",
        job_number=108371,
        started_at=at("2024-07-26T13:55:02.118"),
        completed_at=at("2024-07-26T14:22:58.604"),
        occurred_at=at("2024-07-26T14:22:58.731406"),
        url=f"{OAUTH_APP}/7577/workflows/{BRANCH_WORKFLOW}/jobs/108371",
        sha=SHA,
        branch="0.26.X",
        extra=extra(
            commit_subject="Version 0.26.2", pipeline_created_at="2024-07-26T13:54:44.318Z"
        ),
    ),
    # The tag pipeline: vcs.branch is null and there is no vcs.tag, so neither is known here.
    "workflow-completed.tag": circleci(
        event_type="workflow-completed",
        kind=Kind.WORKFLOW_RUN,
        repository=REPO,
        name="build-and-deploy",
        status="failed",
        conclusion="failure",
        run_id=TAG_WORKFLOW,
        workflow_name="build-and-deploy",
        pipeline_id=TAG_PIPELINE,
        pipeline_number=7578,
        started_at=at("2024-07-26T13:54:55.811"),
        completed_at=at("2024-07-26T16:21:37.782"),
        occurred_at=at("2024-07-26T16:21:37.904125"),
        url=f"{OAUTH_APP}/7578/workflows/{TAG_WORKFLOW}",
        sha=SHA,
        extra=extra(pipeline_created_at="2024-07-26T13:54:55.642Z"),
    ),
    "job-completed.tag": circleci(
        event_type="job-completed",
        kind=Kind.JOB,
        repository=REPO,
        name="test-packages-firefox",
        status="failed",
        conclusion="failure",
        run_id=TAG_WORKFLOW,
        workflow_name="build-and-deploy",
        pipeline_id=TAG_PIPELINE,
        pipeline_number=7578,
        job_id="9e3b7d1f-5a24-4c68-b0e9-2f6a8c4d1b57",
        job_number=108413,
        started_at=at("2024-07-26T15:47:12.440"),
        completed_at=at("2024-07-26T16:21:37.782"),
        occurred_at=at("2024-07-26T16:21:37.851260"),
        url=f"{OAUTH_APP}/7578/workflows/{TAG_WORKFLOW}/jobs/108413",
        sha=SHA,
        extra=extra(pipeline_created_at="2024-07-26T13:54:55.642Z"),
    ),
    "workflow-completed.rerun": circleci(
        event_type="workflow-completed",
        kind=Kind.WORKFLOW_RUN,
        repository=REPO,
        name="build-and-deploy",
        status="success",
        conclusion="success",
        run_id=RERUN_WORKFLOW,
        workflow_name="build-and-deploy",
        pipeline_id=TAG_PIPELINE,
        pipeline_number=7578,
        started_at=at("2024-07-29T08:17:02.334"),
        completed_at=at("2024-07-29T08:59:41.097"),
        occurred_at=at("2024-07-29T08:59:41.226804"),
        url=f"{OAUTH_APP}/7578/workflows/{RERUN_WORKFLOW}",
        sha=SHA,
        extra=extra(pipeline_created_at="2024-07-26T13:54:55.642Z"),
    ),
    "job-completed.rerun": circleci(
        event_type="job-completed",
        kind=Kind.JOB,
        repository=REPO,
        name="deploy-release",
        status="success",
        conclusion="success",
        run_id=RERUN_WORKFLOW,
        workflow_name="build-and-deploy",
        pipeline_id=TAG_PIPELINE,
        pipeline_number=7578,
        job_id="4f8c1a6e-2b93-4d07-8e5f-c9a3d7b1e260",
        job_number=108655,
        started_at=at("2024-07-29T08:51:33.905"),
        completed_at=at("2024-07-29T08:59:40.988"),
        occurred_at=at("2024-07-29T08:59:41.160937"),
        url=f"{OAUTH_APP}/7578/workflows/{RERUN_WORKFLOW}/jobs/108655",
        sha=SHA,
        extra=extra(pipeline_created_at="2024-07-26T13:54:55.642Z"),
    ),
    "workflow-completed.api": circleci(
        event_type="workflow-completed",
        kind=Kind.WORKFLOW_RUN,
        repository=REPO,
        name="build-and-deploy",
        status="canceled",
        conclusion="cancelled",
        run_id="e7a3c9f1-5b28-4d64-8c0e-2a9f6d1b4e85",
        workflow_name="build-and-deploy",
        pipeline_id="8f2d6b1c-7e49-4a35-9c0b-3e5a1f7d2c84",
        pipeline_number=7590,
        started_at=at("2024-07-27T10:02:17.220"),
        completed_at=at("2024-07-27T10:09:52.511"),
        occurred_at=at("2024-07-27T10:09:52.637091"),
        url=f"{OAUTH_APP}/7590/workflows/e7a3c9f1-5b28-4d64-8c0e-2a9f6d1b4e85",
        sha="a29621ddaf5e3c8b17d40e9f2c6b5a83d1e7f094",
        branch="main",
        extra=extra(trigger="api", pipeline_created_at="2024-07-27T10:02:17.045Z"),
    ),
    # GitHub App project: trigger_parameters instead of vcs; the tag is known here.
    "workflow-completed.github_app": circleci(
        event_type="workflow-completed",
        kind=Kind.WORKFLOW_RUN,
        repository=REPO,
        name="build-and-deploy",
        status="failed",
        conclusion="failure",
        run_id="71b5d3e9-c4a2-4f08-9d6e-3b8f1a5c7e20",
        workflow_name="build-and-deploy",
        pipeline_id="3c9a7e5b-1f84-4d26-b0a3-8e6d2c4f9b17",
        pipeline_number=412,
        started_at=at("2024-07-26T13:54:56.002"),
        completed_at=at("2024-07-26T16:21:38.013"),
        occurred_at=at("2024-07-26T16:21:38.120447"),
        url=f"{GITHUB_APP}/412/workflows/71b5d3e9-c4a2-4f08-9d6e-3b8f1a5c7e20",
        sha=SHA,
        tag="0.26.2",
        extra=extra(
            project_slug=APP_SLUG,
            trigger="github_app",
            vcs_provider="github_app",
            commit_subject="Version 0.26.2",
            pipeline_created_at="2024-07-26T13:54:55.703Z",
        ),
    ),
    # API-triggered, GitHub App: the repository fields are empty and only the slug says whose.
    "job-completed.github_app": circleci(
        event_type="job-completed",
        kind=Kind.JOB,
        name="test-packages-firefox",
        status="success",
        conclusion="success",
        run_id="d2e8a4c6-9f17-4b53-8a0c-6e3b1d7f5a92",
        workflow_name="build-and-deploy",
        pipeline_id="0b6f3d8a-5e21-4c97-a8d4-1f9e7b2c6a35",
        pipeline_number=413,
        job_id="6c3e9a1d-4f72-4b85-9e0a-7d2c5f8b3e14",
        job_number=1873,
        started_at=at("2024-07-26T17:05:20.512"),
        completed_at=at("2024-07-26T17:31:06.702"),
        occurred_at=at("2024-07-26T17:31:06.775213"),
        url=f"{GITHUB_APP}/413/workflows/d2e8a4c6-9f17-4b53-8a0c-6e3b1d7f5a92/jobs/1873",
        sha=SHA,
        branch="0.26.X",
        extra=extra(
            project_slug=APP_SLUG,
            trigger="api",
            vcs_provider="github_app",
            commit_subject="Version 0.26.2",
            pipeline_created_at="2024-07-26T17:05:13.180Z",
        ),
    ),
    "job-completed.gitlab": circleci(
        event_type="job-completed",
        kind=Kind.JOB,
        repository="pyodide/pyodide-mirror",  # from web_url, not the SSH repo_url
        name="build-core",
        status="success",
        conclusion="success",
        pipeline_id="5f9b2d7e-3a16-4c84-b7e0-1d8a6f3c9e52",
        pipeline_number=57,
        job_id="3e7c1a9f-8d42-4b65-a0f3-c6e2b9d4a718",
        job_number=57,
        started_at=at("2024-07-26T14:41:30.226"),
        completed_at=at("2024-07-26T15:12:43.958"),
        occurred_at=at("2024-07-26T15:12:44.091573"),
        sha="4b1e8d2f7c93a56e0d4f1b8c2a7e9d3f6b5c0a18",
        branch="0.26.X",
        extra=extra(
            project_slug="circleci/7Hq2mVxK9bT4nRzL3cWd8e/Kv3wN8cR2pD6fH1mT9yQ4z",
            trigger="gitlab",
            vcs_provider="gitlab",
            commit_subject="Mirror 0.26.X",
            pipeline_created_at="2024-07-26T14:41:02.774Z",
        ),
    ),
    "ping": circleci(
        event_type="ping",
        kind=Kind.PING,
        status="ping",
        occurred_at=at("2024-07-20T09:31:05.284117"),
        extra={"webhook_id": WEBHOOK_ID},
    ),
}


def normalise(name: str, payload: Any = None) -> Normalised:
    body = load("circleci", name) if payload is None else payload
    return normaliser.normalise(event_type(name), body)


def test_every_fixture_has_an_expected_result():
    assert sorted(EXPECTED) == names("circleci")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_fixture_normalises_to_exactly_its_fields(name):
    assert normalise(name) == EXPECTED[name]


def test_a_rerun_keeps_its_pipeline_and_gets_a_new_workflow_id():
    failed, rerun = normalise("workflow-completed.tag"), normalise("workflow-completed.rerun")
    assert (rerun.pipeline_id, rerun.pipeline_number) == (failed.pipeline_id, 7578)
    assert rerun.workflow_name == failed.workflow_name == "build-and-deploy"
    assert rerun.run_id != failed.run_id
    assert rerun.sha == failed.sha == SHA
    assert rerun.attempt == failed.attempt == 1  # CircleCI counts reruns in workflow ids


@pytest.mark.parametrize(
    ("status", "conclusion"),
    [
        # What webhooks send.
        ("success", "success"),
        ("failed", "failure"),
        ("error", "error"),
        ("canceled", "cancelled"),
        ("unauthorized", "unauthorized"),
        # The API's words for the same outcomes.
        ("cancelled", "cancelled"),
        ("timedout", "timed_out"),
        ("infrastructure_fail", "infrastructure_fail"),
        ("not_run", "skipped"),
        # Not terminal, or not known: no conclusion.
        ("running", ""),
        ("on_hold", ""),
        ("blocked", ""),
        ("Success", ""),
    ],
)
@pytest.mark.parametrize(
    ("name", "path"), [("job-completed", "job"), ("workflow-completed", "workflow")]
)
def test_statuses_map_to_the_shared_conclusions(name, path, status, conclusion):
    normalised = normalise(name, changed(load("circleci", name), f"{path}.status", status))
    assert (normalised.status, normalised.conclusion) == (status, conclusion)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("workflow-completed", "job-completed"),
        ("job-completed", "workflow-completed"),
        ("ping", "workflow-completed"),
        ("job-completed", "ping"),
    ],
)
def test_a_body_whose_type_contradicts_the_header_is_malformed(header, name):
    with pytest.raises(MalformedPayload, match="does not match circleci-event-type"):
        normaliser.normalise(header, load("circleci", name))


def test_a_body_without_a_type_is_read_as_its_header_says():
    payload = changed(load("circleci", "job-completed"), "type", DELETE)
    assert normaliser.normalise("job-completed", payload).kind == Kind.JOB


@pytest.mark.parametrize(
    "event", ["workflow-started", "build-completed", "", "Job-Completed", "job_completed"]
)
def test_an_unknown_event_type_is_unrecognised(event):
    with pytest.raises(UnrecognisedEvent, match="not one Shiplog reads"):
        normaliser.normalise(event, load("circleci", "job-completed"))


@pytest.mark.parametrize("body", [None, [], "job-completed", 1.5, False])
def test_a_body_that_is_not_an_object_is_malformed(body):
    with pytest.raises(MalformedPayload, match=r"^body must be a JSON object$"):
        normaliser.normalise("job-completed", body)


@pytest.mark.parametrize(
    ("name", "path", "value", "message"),
    [
        ("ping", "id", DELETE, "id is missing"),
        ("ping", "id", {"v": 1}, "id must be an id"),
        ("ping", "happened_at", "2023-06-17 19:50", "happened_at must carry a time zone"),
        ("ping", "type", 3, "type must be a string or null"),
        ("job-completed", "happened_at", DELETE, "happened_at is missing"),
        ("job-completed", "pipeline", DELETE, "pipeline is missing"),
        ("job-completed", "pipeline", [], "pipeline must be an object"),
        ("job-completed", "pipeline.id", None, "pipeline.id must be an id"),
        ("job-completed", "pipeline.number", "7577", "pipeline.number must be an integer"),
        ("job-completed", "pipeline.vcs", "github", "pipeline.vcs must be an object or null"),
        ("job-completed", "pipeline.vcs.revision", "HEAD", "pipeline.vcs.revision must be a git"),
        ("job-completed", "pipeline.vcs.branch", 1, "pipeline.vcs.branch must be a string"),
        ("job-completed", "pipeline.vcs.commit", "x", "pipeline.vcs.commit must be an object"),
        ("job-completed", "job", DELETE, "job is missing"),
        ("job-completed", "job.status", DELETE, "job.status is missing"),
        ("job-completed", "job.number", 6.0, "job.number must be an integer or null"),
        ("job-completed", "job.started_at", "noon", "job.started_at must be an ISO 8601"),
        ("job-completed", "workflow", "sample", "workflow must be an object or null"),
        ("job-completed", "workflow.id", DELETE, "workflow.id is missing"),
        ("job-completed", "project", 1, "project must be an object or null"),
        ("workflow-completed", "workflow", DELETE, "workflow is missing"),
        ("workflow-completed", "workflow.status", None, "workflow.status must be a string"),
        ("workflow-completed", "workflow.name", DELETE, "workflow.name is missing"),
        (
            "workflow-completed.github_app",
            "pipeline.trigger_parameters.git",
            "x",
            "pipeline.trigger_parameters.git must be an object or null",
        ),
        (
            "workflow-completed.github_app",
            "pipeline.trigger_parameters.git.checkout_sha",
            "x",
            "pipeline.trigger_parameters.git.checkout_sha must be a git commit SHA",
        ),
        (
            "job-completed.gitlab",
            "pipeline.trigger_parameters.gitlab.web_url",
            ["https://gitlab.com"],
            "pipeline.trigger_parameters.gitlab.web_url must be a string or null",
        ),
    ],
)
def test_a_wrong_or_missing_field_is_malformed_and_the_message_names_its_path(
    name, path, value, message
):
    with pytest.raises(MalformedPayload, match=re.escape(message)):
        normalise(name, changed(load("circleci", name), path, value))


def test_a_tag_in_the_vcs_block_is_read_when_circleci_sends_it():
    payload = load("circleci", "workflow-completed.tag")
    payload["pipeline"]["vcs"]["tag"] = "0.26.2"
    del payload["pipeline"]["vcs"]["branch"]
    normalised = normalise("workflow-completed.tag", payload)
    assert (normalised.branch, normalised.tag) == ("", "0.26.2")


def test_a_github_app_tag_is_read_from_the_ref_when_git_has_no_tag():
    payload = load("circleci", "workflow-completed.github_app")
    git = payload["pipeline"]["trigger_parameters"]["git"]
    del git["tag"]
    assert normalise("workflow-completed.github_app", payload).tag == "0.26.2"
    del git["ref"]
    # Without git.ref, the provider's full_ref says the same.
    assert normalise("workflow-completed.github_app", payload).tag == "0.26.2"


def test_a_github_app_pipeline_without_git_reads_the_provider_map():
    payload = load("circleci", "workflow-completed.github_app")
    del payload["pipeline"]["trigger_parameters"]["git"]
    normalised = normalise("workflow-completed.github_app", payload)
    assert (normalised.sha, normalised.tag, normalised.repository) == (SHA, "0.26.2", REPO)


def test_a_github_app_repository_is_read_from_owner_and_name_without_a_url():
    payload = load("circleci", "workflow-completed.github_app")
    for block in ("git", "github_app"):
        payload["pipeline"]["trigger_parameters"][block]["repo_url"] = ""
    payload["pipeline"]["trigger_parameters"]["git"]["checkout_url"] = ""
    assert normalise("workflow-completed.github_app", payload).repository == REPO


def test_a_pipeline_with_neither_vcs_nor_trigger_parameters_names_no_commit():
    payload = changed(load("circleci", "job-completed"), "pipeline.vcs", DELETE)
    normalised = normalise("job-completed", payload)
    assert (normalised.sha, normalised.branch, normalised.tag) == ("", "", "")
    assert normalised.repository == REPO  # the named slug still says whose


def test_a_fork_pull_request_belongs_to_the_target_repository():
    payload = load("circleci", "job-completed")
    payload["pipeline"]["vcs"]["origin_repository_url"] = "https://github.com/someone/pyodide"
    assert normalise("job-completed", payload).repository == REPO


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://github.com/pyodide/pyodide", REPO),
        ("https://github.com/pyodide/pyodide/", REPO),
        ("https://github.com/pyodide/pyodide.git", REPO),
        ("git@github.com:pyodide/pyodide.git", REPO),
        ("ssh://git@github.com/pyodide/pyodide.git", REPO),
        ("https://bitbucket.org/pyodide/pyodide", REPO),
        (" https://github.com/pyodide/pyodide ", REPO),
        ("https://gitlab.com/group/subgroup/project", ""),
        ("https://github.com/pyodide", ""),
        ("pyodide/pyodide", ""),
        ("", ""),
        ("https://github.com/py odide/pyodide", ""),
    ],
)
def test_repository_from_url(url, repository):
    assert repository_from_url(url) == repository


@pytest.mark.parametrize(
    ("slug", "repository"),
    [
        ("gh/pyodide/pyodide", REPO),
        ("github/pyodide/pyodide", REPO),
        ("bb/pyodide/pyodide", REPO),
        ("bitbucket/pyodide/pyodide", REPO),
        (APP_SLUG, ""),
        ("gh/pyodide", ""),
        ("gh/pyodide/pyodide/extra", ""),
        ("", ""),
    ],
)
def test_repository_from_slug(slug, repository):
    assert repository_from_slug(slug) == repository
