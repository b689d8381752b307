"""The GitHub normaliser, fixture by fixture: every field it reads, every way a body can be bad."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from releases.ingest.base import Kind, MalformedPayload, Normalised, UnrecognisedEvent
from releases.ingest.github import GitHubNormaliser
from tests.fixtures import DELETE, changed, event_type, load, names

SHA = "7e7cadb9cd3863d5bc5e5620532bea369a135552"
PARENT = "c5f1e9b4a2d07a3e8f6b1d9c0e4a7f2b5d8c3e61"
ZERO_SHA = "0" * 40
REPO = "pyodide/pyodide"
RUNS = "https://github.com/pyodide/pyodide/actions/runs"
TAG_RUN, BRANCH_RUN, RELEASE_RUN = "10111856238", "10111855902", "10112687345"

normaliser = GitHubNormaliser()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def github(**fields: Any) -> Normalised:
    return Normalised(platform="github", repository=REPO, **fields)


# Every field of the result is compared: a field left out here must keep its default.
EXPECTED = {
    "workflow_run.requested": github(
        event_type="workflow_run.requested",
        kind=Kind.WORKFLOW_RUN,
        name="main",
        status="queued",
        run_id=TAG_RUN,
        workflow_name="main",
        pipeline_id="26939516210",
        pipeline_number=14872,
        started_at=at("2024-07-26T13:54:56"),
        occurred_at=at("2024-07-26T13:54:56"),
        url=f"{RUNS}/{TAG_RUN}",
        sha=SHA,
        # A push run's head_branch may be a branch or a tag: the payload cannot tell.
        branch="0.26.2",
        extra={
            "event": "push",
            "head_branch": "0.26.2",
            "path": ".github/workflows/main.yml",
            "workflow_id": "4270431",
            "display_title": "Version 0.26.2",
            "previous_attempt_url": "",
            "triggering_actor": "hoodmane",
        },
    ),
    "workflow_run.in_progress": github(
        event_type="workflow_run.in_progress",
        kind=Kind.WORKFLOW_RUN,
        name="main",
        status="in_progress",
        attempt=2,
        run_id=BRANCH_RUN,
        workflow_name="main",
        pipeline_id="26939503345",
        pipeline_number=14871,
        started_at=at("2024-07-26T14:41:07"),  # the re-run's start, not the run's creation
        occurred_at=at("2024-07-26T14:41:12"),
        url=f"{RUNS}/{BRANCH_RUN}",
        sha=SHA,
        branch="0.26.X",
        extra={
            "event": "push",
            "head_branch": "0.26.X",
            "path": ".github/workflows/main.yml",
            "workflow_id": "4270431",
            "display_title": "Version 0.26.2",
            "previous_attempt_url": (
                f"https://api.github.com/repos/{REPO}/actions/runs/{BRANCH_RUN}/attempts/1"
            ),
            "triggering_actor": "ryanking13",
        },
    ),
    "workflow_run.completed": github(
        event_type="workflow_run.completed",
        kind=Kind.WORKFLOW_RUN,
        name="main",
        status="completed",
        conclusion="success",
        run_id=TAG_RUN,
        workflow_name="main",
        pipeline_id="26939516210",
        pipeline_number=14872,
        started_at=at("2024-07-26T13:54:56"),
        completed_at=at("2024-07-26T14:31:12"),
        occurred_at=at("2024-07-26T14:31:12"),
        url=f"{RUNS}/{TAG_RUN}",
        sha=SHA,
        branch="0.26.2",
        extra={
            "event": "push",
            "head_branch": "0.26.2",
            "path": ".github/workflows/main.yml",
            "workflow_id": "4270431",
            "display_title": "Version 0.26.2",
            "previous_attempt_url": "",
            "triggering_actor": "hoodmane",
        },
    ),
    "workflow_run.completed.release": github(
        event_type="workflow_run.completed",
        kind=Kind.WORKFLOW_RUN,
        name="deploy-release",
        status="completed",
        conclusion="success",
        run_id=RELEASE_RUN,
        workflow_name="deploy-release",
        pipeline_id="26941277718",
        pipeline_number=61,
        started_at=at("2024-07-26T14:55:04"),
        completed_at=at("2024-07-26T14:58:41"),
        occurred_at=at("2024-07-26T14:58:41"),
        url=f"{RUNS}/{RELEASE_RUN}",
        sha=SHA,
        tag="0.26.2",  # a release run always runs on the release's tag
        extra={
            "event": "release",
            "head_branch": "0.26.2",
            "path": ".github/workflows/deploy_release.yml",
            "workflow_id": "36100813",
            "display_title": "0.26.2",
            "previous_attempt_url": "",
            "triggering_actor": "hoodmane",
        },
    ),
    "workflow_job.queued": github(
        event_type="workflow_job.queued",
        kind=Kind.JOB,
        name="build-core (ubuntu-latest)",
        status="queued",
        run_id=TAG_RUN,
        workflow_name="main",
        job_id="28043188001",
        occurred_at=at("2024-07-26T13:55:33"),
        url=f"{RUNS}/{TAG_RUN}/job/28043188001",
        sha=SHA,
        branch="0.26.2",
        extra={
            "head_branch": "0.26.2",
            "labels": ["ubuntu-latest"],
            "runner_name": "",
            "failed_step": None,
        },
    ),
    "workflow_job.waiting": github(
        event_type="workflow_job.waiting",
        kind=Kind.JOB,
        name="deploy-pyodide-py-pypi",
        status="waiting",
        run_id=RELEASE_RUN,
        workflow_name="deploy-release",
        job_id="28045931077",
        occurred_at=at("2024-07-26T14:55:09"),
        url=f"{RUNS}/{RELEASE_RUN}/job/28045931077",
        sha=SHA,
        branch="0.26.2",
        extra={
            "head_branch": "0.26.2",
            "labels": ["ubuntu-latest"],
            "runner_name": "",
            "failed_step": None,
        },
    ),
    "workflow_job.queued.with_deployment": github(
        event_type="workflow_job.queued",
        kind=Kind.JOB,
        name="deploy-pyodide-build-pypi",
        status="queued",
        run_id=RELEASE_RUN,
        workflow_name="deploy-release",
        job_id="28045931120",
        occurred_at=at("2024-07-26T14:55:09"),
        url=f"{RUNS}/{RELEASE_RUN}/job/28045931120",
        sha=SHA,
        branch="0.26.2",
        extra={
            "head_branch": "0.26.2",
            "labels": ["ubuntu-latest"],
            "runner_name": "",
            "failed_step": None,
            "environment": "PyPi",
            "deployment_id": "1698447521",
        },
    ),
    "workflow_job.in_progress": github(
        event_type="workflow_job.in_progress",
        kind=Kind.JOB,
        name="test-core",
        status="in_progress",
        run_id=TAG_RUN,
        workflow_name="main",
        job_id="28043947380",
        started_at=at("2024-07-26T14:18:09"),
        occurred_at=at("2024-07-26T14:18:09"),
        url=f"{RUNS}/{TAG_RUN}/job/28043947380",
        sha=SHA,
        branch="0.26.2",
        extra={
            "head_branch": "0.26.2",
            "labels": ["ubuntu-latest"],
            "runner_name": "GitHub Actions 37",
            "failed_step": None,
        },
    ),
    "workflow_job.completed.success": github(
        event_type="workflow_job.completed",
        kind=Kind.JOB,
        name="deploy-pyodide-py-pypi",
        status="completed",
        conclusion="success",
        run_id=RELEASE_RUN,
        workflow_name="deploy-release",
        job_id="28045931077",
        started_at=at("2024-07-26T14:55:31"),
        completed_at=at("2024-07-26T14:58:02"),
        occurred_at=at("2024-07-26T14:58:02"),
        url=f"{RUNS}/{RELEASE_RUN}/job/28045931077",
        sha=SHA,
        branch="0.26.2",
        extra={
            "head_branch": "0.26.2",
            "labels": ["ubuntu-latest"],
            "runner_name": "GitHub Actions 12",
            "failed_step": None,
        },
    ),
    "workflow_job.completed.failure": github(
        event_type="workflow_job.completed",
        kind=Kind.JOB,
        name="test-deno",
        status="completed",
        conclusion="failure",
        run_id=BRANCH_RUN,
        workflow_name="main",
        job_id="28043176512",
        started_at=at("2024-07-26T14:17:46"),
        completed_at=at("2024-07-26T14:23:15"),
        occurred_at=at("2024-07-26T14:23:15"),
        url=f"{RUNS}/{BRANCH_RUN}/job/28043176512",
        sha=SHA,
        branch="0.26.X",
        extra={
            "head_branch": "0.26.X",
            "labels": ["ubuntu-latest"],
            "runner_name": "GitHub Actions 44",
            "failed_step": {"name": "Run tests", "number": 6, "conclusion": "failure"},
        },
    ),
    "check_run.created": github(
        event_type="check_run.created",
        kind=Kind.CHECK_RUN,
        name="build-core (ubuntu-latest)",
        status="queued",
        pipeline_id="26939503345",
        job_id="28043162004",
        started_at=at("2024-07-26T13:55:21"),
        occurred_at=at("2024-07-26T13:55:21"),
        url=f"{RUNS}/{BRANCH_RUN}/job/28043162004",
        sha=SHA,
        branch="0.26.X",
        extra={"app": "github-actions", "external_id": "5f2c1d7e-8a3b-5c9d-a6e4-0b1f7c3d2e98"},
    ),
    "check_run.completed": github(
        event_type="check_run.completed",
        kind=Kind.CHECK_RUN,
        name="build-core (ubuntu-latest)",
        status="completed",
        conclusion="success",
        pipeline_id="26939503345",
        job_id="28043162004",
        started_at=at("2024-07-26T13:55:21"),
        completed_at=at("2024-07-26T14:17:51"),
        occurred_at=at("2024-07-26T14:17:51"),
        url=f"{RUNS}/{BRANCH_RUN}/job/28043162004",
        sha=SHA,
        branch="0.26.X",
        extra={"app": "github-actions", "external_id": "5f2c1d7e-8a3b-5c9d-a6e4-0b1f7c3d2e98"},
    ),
    "check_suite.completed": github(
        event_type="check_suite.completed",
        kind=Kind.CHECK_SUITE,
        name="GitHub Actions",
        status="completed",
        conclusion="failure",
        pipeline_id="26939503345",
        started_at=at("2024-07-26T13:54:41"),
        completed_at=at("2024-07-26T14:31:40"),
        occurred_at=at("2024-07-26T14:31:40"),
        sha=SHA,
        branch="0.26.X",
        extra={"app": "github-actions", "before": PARENT, "latest_check_runs_count": 7},
    ),
    "deployment.created": github(
        event_type="deployment.created",
        kind=Kind.DEPLOYMENT,
        name="PyPi",
        status="created",
        run_id=RELEASE_RUN,
        workflow_name="deploy-release",
        job_id="1698447521",
        started_at=at("2024-07-26T14:55:12"),
        occurred_at=at("2024-07-26T14:55:12"),
        url=f"https://api.github.com/repos/{REPO}/deployments/1698447521",
        sha=SHA,
        tag="0.26.2",  # the short ref of a deployment made by a release run
        extra={
            "deployment_id": "1698447521",
            "ref": "0.26.2",
            "task": "deploy",
            "production_environment": False,
        },
    ),
    "deployment_status.created": github(
        event_type="deployment_status.created",
        kind=Kind.DEPLOYMENT_STATUS,
        name="PyPi",
        status="success",
        conclusion="success",
        run_id=RELEASE_RUN,
        workflow_name="deploy-release",
        job_id="1698447521",
        completed_at=at("2024-07-26T14:57:49"),
        occurred_at=at("2024-07-26T14:57:49"),
        url=f"{RUNS}/{RELEASE_RUN}/job/28045931120",
        sha=SHA,
        tag="0.26.2",
        extra={
            "deployment_id": "1698447521",
            "status_id": "3401778934",
            "environment_url": "https://pypi.org/p/pyodide-build",
            "description": "",
            "ref": "0.26.2",
        },
    ),
    "release.published": github(
        event_type="release.published",
        kind=Kind.RELEASE,
        name="0.26.2",
        status="published",
        job_id="167613458",
        completed_at=at("2024-07-26T14:55:01"),
        occurred_at=at("2024-07-26T14:55:01"),
        url=f"https://github.com/{REPO}/releases/tag/0.26.2",
        tag="0.26.2",
        extra={
            "target_commitish": "main",
            "draft": False,
            "prerelease": False,
            "author": "hoodmane",
        },
    ),
    "push.branch": github(
        event_type="push",
        kind=Kind.PUSH,
        name="0.26.X",
        status="pushed",
        occurred_at=at("2024-07-26T13:54:38"),  # pushed_at, not the commit's 13:54:30
        url=f"https://github.com/{REPO}/compare/c5f1e9b4a2d0...7e7cadb9cd38",
        sha=SHA,
        branch="0.26.X",
        extra={
            "ref": "refs/heads/0.26.X",
            "before": PARENT,
            "after": SHA,
            "base_ref": "",
            "forced": False,
            "commits": 1,
            "pusher": "hoodmane",
        },
    ),
    "push.branch_created": github(
        event_type="push",
        kind=Kind.PUSH,
        name="backports-for-0.26.2",
        status="created",
        occurred_at=at("2024-07-26T13:11:21"),
        url=f"https://github.com/{REPO}/commit/{PARENT}",
        sha=PARENT,
        branch="backports-for-0.26.2",
        extra={
            "ref": "refs/heads/backports-for-0.26.2",
            "before": ZERO_SHA,
            "after": PARENT,
            "base_ref": "",
            "forced": False,
            "commits": 1,
            "pusher": "hoodmane",
        },
    ),
    "push.tag_created": github(
        event_type="push",
        kind=Kind.TAG,
        name="0.26.2",
        status="created",
        occurred_at=at("2024-07-26T13:54:52"),
        url=f"https://github.com/{REPO}/compare/0.26.2",
        sha=SHA,
        tag="0.26.2",
        extra={
            "ref": "refs/tags/0.26.2",
            "before": ZERO_SHA,
            "after": SHA,
            "base_ref": "refs/heads/0.26.X",
            "forced": False,
            "commits": 0,
            "pusher": "hoodmane",
        },
    ),
    "push.tag_deleted": github(
        event_type="push",
        kind=Kind.TAG,
        name="v0.26.2",
        status="deleted",
        occurred_at=at("2024-07-26T13:57:20"),
        url=f"https://github.com/{REPO}/compare/7e7cadb9cd38...000000000000",
        sha=SHA,  # what the deleted tag pointed at, not the zeros
        tag="v0.26.2",
        extra={
            "ref": "refs/tags/v0.26.2",
            "before": SHA,
            "after": ZERO_SHA,
            "base_ref": "",
            "forced": False,
            "commits": 0,
            "pusher": "hoodmane",
        },
    ),
    "create.tag": github(
        event_type="create",
        kind=Kind.TAG,
        name="0.26.2",
        status="created",
        occurred_at=at("2024-07-26T13:54:52"),
        tag="0.26.2",
        extra={"ref_type": "tag", "pusher_type": "user"},
    ),
    "delete.tag": github(
        event_type="delete",
        kind=Kind.TAG,
        name="v0.26.2",
        status="deleted",
        occurred_at=at("2024-07-26T13:57:20"),
        tag="v0.26.2",
        extra={"ref_type": "tag", "pusher_type": "user"},
    ),
    "ping": github(
        event_type="ping",
        kind=Kind.PING,
        status="ping",
        occurred_at=at("2024-07-20T09:12:44"),
        extra={
            "hook_id": "490110214",
            "zen": "Practicality beats purity.",
            "events": [
                "check_run",
                "check_suite",
                "create",
                "delete",
                "deployment",
                "deployment_status",
                "push",
                "release",
                "workflow_job",
                "workflow_run",
            ],
        },
    ),
}


def normalise(name: str, payload: Any = None) -> Normalised:
    return normaliser.normalise(
        event_type(name), load("github", name) if payload is None else payload
    )


def test_every_fixture_has_an_expected_result():
    assert sorted(EXPECTED) == names("github")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_fixture_normalises_to_exactly_its_fields(name):
    assert normalise(name) == EXPECTED[name]


def test_every_event_type_shiplog_reads_has_a_fixture():
    assert normaliser.event_types == {event_type(name) for name in names("github")}


@pytest.mark.parametrize(
    "event",
    [
        "sponsorship",
        "pull_request",
        "Push",
        "",
        "workflow_run.completed",
        # Names of the normaliser's own helpers and attributes are not event types either.
        "repository",
        "typed",
        "ref_event",
        "deployment_fields",
        "_workflow_run",
        "_class__",
        "handlers",
        "event_types",
    ],
)
def test_an_unknown_event_type_is_unrecognised(event):
    with pytest.raises(UnrecognisedEvent, match="not one Shiplog reads"):
        normaliser.normalise(event, load("github", "ping"))


@pytest.mark.parametrize("body", [None, [], "ping", 7, True, [{"zen": "x"}]])
def test_a_body_that_is_not_an_object_is_malformed(body):
    with pytest.raises(MalformedPayload, match=r"^body must be a JSON object$"):
        normaliser.normalise("workflow_run", body)


@pytest.mark.parametrize(
    ("name", "path", "value", "message"),
    [
        ("workflow_run.completed", "workflow_run", DELETE, "workflow_run is missing"),
        ("workflow_run.completed", "workflow_run", "x", "workflow_run must be an object"),
        ("workflow_run.completed", "workflow_run.id", True, "workflow_run.id must be an id"),
        ("workflow_run.completed", "workflow_run.id", "", "workflow_run.id must be an id"),
        ("workflow_run.completed", "workflow_run.status", 3, "workflow_run.status must be a s"),
        ("workflow_run.completed", "workflow_run.head_sha", DELETE, "workflow_run.head_sha is"),
        ("workflow_run.completed", "workflow_run.head_sha", "main", "must be a git commit SHA"),
        ("workflow_run.completed", "workflow_run.run_attempt", "2", "run_attempt must be an i"),
        ("workflow_run.completed", "workflow_run.run_attempt", False, "run_attempt must be an"),
        ("workflow_run.completed", "workflow_run.updated_at", "yesterday", "ISO 8601 timestamp"),
        ("workflow_run.completed", "workflow_run.updated_at", "2024-07-26T14:31:12", "time zone"),
        ("workflow_run.completed", "workflow_run.updated_at", "0001-01-01T00:00+01:00", "range"),
        ("workflow_run.completed", "workflow_run.name", "ma\x00in", "name must not contain NUL"),
        ("workflow_run.completed", "action", "Completed!", "action must be a lower-case word"),
        ("workflow_run.completed", "action", "x" * 51, "action must be a lower-case word"),
        ("workflow_run.completed", "repository", DELETE, "repository is missing"),
        ("workflow_run.completed", "repository.full_name", "pyodide", "must be a repository"),
        ("workflow_run.completed", "repository.full_name", "a/b/c", "must be a repository"),
        ("workflow_run.completed", "workflow", [], "workflow must be an object or null"),
        ("workflow_job.completed.failure", "workflow_job.steps", {}, "steps must be a list"),
        ("workflow_job.completed.failure", "workflow_job.steps[5]", 6, "steps[5] must be a JSON"),
        (
            "workflow_job.completed.failure",
            "workflow_job.steps[5].conclusion",
            7,
            "workflow_job.steps[5].conclusion must be a string or null",
        ),
        ("workflow_job.queued", "workflow_job.labels[0]", 1, "labels[0] must be a string"),
        ("workflow_job.queued", "workflow_job.run_id", None, "workflow_job.run_id must be an id"),
        ("workflow_job.queued", "workflow_job.name", DELETE, "workflow_job.name is missing"),
        ("workflow_job.queued.with_deployment", "deployment.id", 1.5, "deployment.id must be"),
        ("check_run.completed", "check_run.check_suite", [], "check_suite must be an object"),
        ("check_run.completed", "check_run.head_sha", SHA[:7], "must be a git commit SHA"),
        ("check_suite.completed", "check_suite.id", DELETE, "check_suite.id is missing"),
        ("deployment.created", "deployment.sha", DELETE, "deployment.sha is missing"),
        ("deployment_status.created", "deployment", DELETE, "deployment is missing"),
        ("deployment_status.created", "deployment_status.state", None, "state must be a str"),
        ("release.published", "release.tag_name", None, "release.tag_name must be a string"),
        ("release.published", "release.draft", "false", "release.draft must be true or false"),
        ("push.tag_created", "ref", DELETE, "ref is missing"),
        ("push.tag_created", "after", "HEAD", "after must be a git commit SHA"),
        ("push.tag_created", "repository.pushed_at", "soon", "pushed_at must be an ISO 8601"),
        ("push.tag_created", "repository.pushed_at", 10**20, "pushed_at is not a valid Unix"),
        ("push.tag_created", "commits", "none", "commits must be a list"),
        ("create.tag", "ref_type", DELETE, "ref_type is missing"),
        ("delete.tag", "ref", ["v0.26.2"], "ref must be a string"),
        ("ping", "hook", "web", "hook must be an object or null"),
        ("ping", "hook.events", [None], "hook.events[0] must be a string"),
    ],
)
def test_a_wrong_or_missing_field_is_malformed_and_the_message_names_its_path(
    name, path, value, message
):
    with pytest.raises(MalformedPayload, match=re.escape(message)):
        normalise(name, changed(load("github", name), path, value))


def test_a_sha_in_upper_case_is_read_in_lower_case():
    payload = changed(
        load("github", "workflow_run.completed"), "workflow_run.head_sha", SHA.upper()
    )
    assert normalise("workflow_run.completed", payload).sha == SHA


def test_action_and_status_are_read_separately():
    """An action `requested` may already carry a completed run (GitHub documents this)."""
    payload = load("github", "workflow_run.requested")
    payload["workflow_run"].update(status="completed", conclusion="action_required")
    normalised = normalise("workflow_run.requested", payload)
    assert normalised.event_type == "workflow_run.requested"
    assert (normalised.status, normalised.conclusion) == ("completed", "action_required")
    assert normalised.completed_at == at("2024-07-26T13:54:56")


def test_a_conclusion_outside_the_shared_vocabulary_is_left_empty():
    payload = changed(load("github", "workflow_run.completed"), "workflow_run.conclusion", "new")
    assert normalise("workflow_run.completed", payload).conclusion == ""


def test_a_workflow_run_without_a_name_takes_the_workflows():
    payload = changed(load("github", "workflow_run.completed"), "workflow_run.name", "")
    normalised = normalise("workflow_run.completed", payload)
    assert (normalised.name, normalised.workflow_name) == ("main", "main")


def test_a_job_started_by_a_tag_keeps_the_tag_in_branch_because_the_job_cannot_say():
    job = normalise("workflow_job.completed.success")  # deploy-release, started by a release
    assert (job.branch, job.tag, job.extra["head_branch"]) == ("0.26.2", "", "0.26.2")


def test_a_job_that_timed_out_names_its_first_failed_step():
    payload = load("github", "workflow_job.completed.failure")
    payload["workflow_job"]["steps"][3]["conclusion"] = "timed_out"
    failed_step = normalise("workflow_job.completed.failure", payload).extra["failed_step"]
    assert failed_step == {
        "name": "Run denoland/setup-deno@v1",
        "number": 4,
        "conclusion": "timed_out",
    }


def test_a_deployment_of_a_branch_or_a_full_ref_or_a_commit():
    payload = load("github", "deployment.created")
    payload["workflow_run"]["event"] = "push"
    assert normalise("deployment.created", payload).branch == "0.26.2"
    payload["deployment"]["ref"] = "refs/tags/0.26.2"
    assert normalise("deployment.created", payload).tag == "0.26.2"
    payload["deployment"]["ref"] = SHA
    deployed = normalise("deployment.created", payload)
    assert (deployed.branch, deployed.tag, deployed.sha) == ("", "", SHA)
    payload.update(workflow=None, workflow_run=None)
    payload["deployment"]["ref"] = "main"
    deployed = normalise("deployment.created", payload)
    assert (deployed.branch, deployed.run_id, deployed.attempt) == ("main", "", 1)


@pytest.mark.parametrize(
    ("state", "conclusion", "completed"),
    [
        ("success", "success", True),
        ("failure", "failure", True),
        ("error", "error", True),
        ("inactive", "neutral", True),
        ("in_progress", "", False),
        ("queued", "", False),
        ("pending", "", False),
        ("waiting", "", False),
    ],
)
def test_deployment_states_map_to_the_shared_vocabulary(state, conclusion, completed):
    payload = changed(load("github", "deployment_status.created"), "deployment_status.state", state)
    normalised = normalise("deployment_status.created", payload)
    assert (normalised.status, normalised.conclusion) == (state, conclusion)
    assert (normalised.completed_at is not None) == completed


def test_a_push_without_pushed_at_falls_back_to_the_head_commits_time():
    payload = changed(load("github", "push.tag_created"), "repository.pushed_at", DELETE)
    assert normalise("push.tag_created", payload).occurred_at == at("2024-07-26T13:54:30")


def test_a_ping_from_an_organisation_hook_names_no_repository():
    payload = changed(load("github", "ping"), "repository", DELETE)
    normalised = normalise("ping", payload)
    assert normalised.repository == ""
    assert normalised.kind == Kind.PING


def test_a_branch_created_by_a_create_event():
    payload = load("github", "create.tag")
    payload.update(ref="0.26.X", ref_type="branch")
    normalised = normalise("create.tag", payload)
    assert (normalised.kind, normalised.branch, normalised.tag) == (Kind.PUSH, "0.26.X", "")


def test_the_normalised_data_is_json_ready():
    data = normalise("workflow_job.completed.failure").as_data()
    assert data["kind"] == "job"
    assert data["completed_at"] == "2024-07-26T14:23:15+00:00"
    assert data["extra"]["failed_step"]["name"] == "Run tests"


def test_a_bad_value_is_quoted_short_because_the_message_is_stored_and_answered():
    payload = changed(
        load("github", "workflow_run.completed"), "workflow_run.head_sha", "x" * 10**6
    )
    with pytest.raises(MalformedPayload, match=r"not 'x{57}\.\.\.'$") as caught:
        normalise("workflow_run.completed", payload)
    assert len(str(caught.value)) < 150
