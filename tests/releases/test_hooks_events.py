"""Every event type Shiplog reads, through the real endpoints: the stream row it leaves behind."""

from __future__ import annotations

import uuid

import pytest

from releases.deliveries import circleci_delivery
from releases.ingest.base import Normalised
from releases.models import Recognition, StreamEvent
from releases.services import repository_create, webhook_secret_add
from tests.conftest import CIRCLECI_SECRET
from tests.fixtures import changed, event_type, load, names
from tests.releases.test_ingest_circleci import EXPECTED as CIRCLECI_EXPECTED
from tests.releases.test_ingest_github import EXPECTED as GITHUB_EXPECTED

REPO = "pyodide/pyodide"
SHA = "7e7cadb9cd3863d5bc5e5620532bea369a135552"
APP_SLUG = "circleci/7Hq2mVxK9bT4nRzL3cWd8e/Fp5sJ1gYu6oN0aXkQ2hE9r"
DELIVERIES = uuid.UUID("3d0f1e0c-54a4-4d7e-9b1c-2f1a8e6c7d90")
# A hypothetical GitLab mirror: a project of its own, filed under its own name.
ELSEWHERE = {"job-completed.gitlab"}


def delivery_id(name: str) -> str:
    return str(uuid.uuid5(DELIVERIES, name))


def assert_row_holds(row: StreamEvent, expected: Normalised, *, repository: str = REPO) -> None:
    assert row.recognition == Recognition.RECOGNISED
    assert row.source == expected.platform
    assert row.event_type == expected.event_type
    assert row.repository == repository
    assert (row.sha, row.branch, row.tag) == (expected.sha, expected.branch, expected.tag)
    assert row.occurred_at == expected.occurred_at  # the platform's clock, not Shiplog's
    assert row.data == {**expected.as_data(), "repository": repository}


@pytest.mark.parametrize("name", names("github"))
def test_a_github_delivery_of_every_type_is_recorded_with_its_normalised_columns(
    post, github, name
):
    delivery = github(event_type(name), load("github", name), delivery_id=delivery_id(name))
    response = post(delivery)
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "recorded"
    row = StreamEvent.objects.get()
    assert_row_holds(row, GITHUB_EXPECTED[name])
    assert bytes(row.body) == delivery.body
    assert row.headers["X-GitHub-Event"] == event_type(name)
    assert row.delivery_key == f"github:421337:{delivery_id(name)}"


@pytest.mark.parametrize("name", sorted(set(names("circleci")) - ELSEWHERE))
def test_a_circleci_delivery_of_every_type_is_recorded_with_its_normalised_columns(
    post, circleci, repository, name
):
    # A GitHub App project's slug is opaque: the repository says which slug is its own.
    repository.circleci_project_slug = APP_SLUG
    repository.save()
    payload = load("circleci", name)
    delivery = circleci(payload)
    response = post(delivery)
    assert response.status_code == 202, response.json()
    row = StreamEvent.objects.get()
    assert_row_holds(row, CIRCLECI_EXPECTED[name])
    assert bytes(row.body) == delivery.body
    assert row.headers["circleci-event-type"] == event_type(name)
    assert row.delivery_key == f"circleci:{payload['id']}"


def test_the_form_encoded_variant_is_normalised_like_json(post, github):
    name = "workflow_job.completed.failure"
    delivery = github("workflow_job", load("github", name), form=True)
    assert delivery.content_type == "application/x-www-form-urlencoded"
    response = post(delivery)
    assert response.status_code == 202, response.json()
    row = StreamEvent.objects.get()
    assert_row_holds(row, GITHUB_EXPECTED[name])
    assert row.data["extra"]["failed_step"] == {
        "name": "Run tests",
        "number": 6,
        "conclusion": "failure",
    }
    assert bytes(row.body) == delivery.body


def test_the_tag_pipeline_is_joined_by_sha_because_it_names_no_tag(post, circleci, github):
    post(github("push", load("github", "push.tag_created")))
    post(circleci(load("circleci", "job-completed.tag")))
    tag, job = StreamEvent.objects.order_by("position")
    assert (tag.tag, tag.sha) == ("0.26.2", SHA)
    assert (job.tag, job.branch, job.sha) == ("", "", SHA)
    assert job.data["job_number"] == 108413
    assert job.data["conclusion"] == "failure"


def test_a_circleci_rerun_is_a_new_workflow_in_the_same_pipeline(post, circleci):
    post(circleci(load("circleci", "workflow-completed.tag")))
    post(circleci(load("circleci", "workflow-completed.rerun")))
    failed, rerun = StreamEvent.objects.order_by("position")
    assert failed.data["pipeline_id"] == rerun.data["pipeline_id"]
    assert failed.data["pipeline_number"] == rerun.data["pipeline_number"] == 7578
    assert failed.data["run_id"] != rerun.data["run_id"]
    assert (failed.data["conclusion"], rerun.data["conclusion"]) == ("failure", "success")


class TestAGitHubAppProjectsOpaqueSlug:
    """Only the registered slug says whose an API-triggered GitHub App delivery is."""

    name = "job-completed.github_app"

    def test_is_mapped_to_the_repository_that_registered_it(self, post, repository, settings):
        # Signed with the environment's secret, which belongs to no repository: only the slug
        # can say whose delivery this is.
        settings.SHIPLOG_CIRCLECI_WEBHOOK_SECRET = "environment-wide-secret"
        repository.circleci_project_slug = APP_SLUG
        repository.save()
        response = post(circleci_delivery(load("circleci", self.name), "environment-wide-secret"))
        assert response.status_code == 202, response.json()
        row = StreamEvent.objects.get()
        assert row.repository == REPO
        assert row.data["repository"] == REPO
        assert row.data["extra"]["project_slug"] == APP_SLUG

    def test_is_filed_under_no_repository_when_no_one_registered_it(
        self, post, repository, settings
    ):
        settings.SHIPLOG_CIRCLECI_WEBHOOK_SECRET = "environment-wide-secret"
        response = post(circleci_delivery(load("circleci", self.name), "environment-wide-secret"))
        assert response.status_code == 202, response.json()
        assert StreamEvent.objects.get().repository == ""

    def test_must_be_signed_with_a_secret_of_the_repository_it_maps_to(self, post, repository):
        repository.circleci_project_slug = APP_SLUG
        repository.save()
        other = repository_create(full_name="someone/else")
        webhook_secret_add(repository=other, platform="circleci", secret="someone-elses-secret")
        response = post(circleci_delivery(load("circleci", self.name), "someone-elses-secret"))
        assert response.status_code == 401
        assert StreamEvent.objects.count() == 0
        assert (
            post(circleci_delivery(load("circleci", self.name), CIRCLECI_SECRET)).status_code == 202
        )


def test_a_gitlab_project_is_filed_under_the_repository_its_web_url_names(post, db):
    mirror = repository_create(full_name="pyodide/pyodide-mirror")
    webhook_secret_add(repository=mirror, platform="circleci", secret="mirror-secret")
    name = "job-completed.gitlab"
    response = post(circleci_delivery(load("circleci", name), "mirror-secret"))
    assert response.status_code == 202, response.json()
    assert_row_holds(
        StreamEvent.objects.get(), CIRCLECI_EXPECTED[name], repository="pyodide/pyodide-mirror"
    )


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        # Neither a PostgreSQL text column nor jsonb can hold NUL: once a 503 retried for ever.
        ("workflow_run.name", "ma\x00in", "workflow_run.name must not contain NUL characters"),
        # Longer than the sha column: once a failed insert on PostgreSQL.
        ("workflow_run.head_sha", SHA + "0" * 30, "workflow_run.head_sha must be a git commit"),
        ("action", "completed" * 20, "action must be a lower-case word"),
    ],
)
def test_a_verified_body_the_stream_could_not_hold_is_kept_as_malformed(
    post, github, path, value, problem
):
    payload = changed(load("github", "workflow_run.completed"), path, value)
    response = post(github("workflow_run", payload))
    assert response.status_code == 400, response.json()
    assert response.json()["error"].startswith(problem)
    row = StreamEvent.objects.get()
    assert row.recognition == Recognition.MALFORMED
    assert row.event_type == "workflow_run"
    assert (row.sha, row.branch, row.tag) == ("", "", "")
