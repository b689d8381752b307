"""CircleCI gap filling: the jobs its webhooks never report, read from its API.

Pyodide 0.26.2 again, told to a Shiplog whose policy names no CircleCI deploy job and no
`requires`. The webhooks say only that test-packages-firefox failed; CircleCI's API adds that
deploy-release is blocked, and on which jobs it depends. From that, Shiplog knows the release
is blocked by test-packages-firefox, without anyone having written the graph into a policy.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from releases import projector
from releases.ci_clients import PermanentFailure, RateLimited
from releases.ingest import circleci_api
from releases.ingest.base import MalformedPayload
from releases.models import DeployPolicy, Release, StreamEvent, TimelineEntry
from releases.services import (
    ci_credential_set,
    circleci_workflow_enrich,
    circleci_workflows_enrich_recent,
    repository_create,
)
from releases.tasks import enrich_circleci_workflows
from tests.fakes.ci_servers import Reply
from tests.releases import factories as f
from tests.releases.test_projector import _snapshot

TOKEN = "cci-personal-t0ken-for-pyodide-0123456789"
SLUG = "gh/pyodide/pyodide"
# A policy with neither a CircleCI deploy job nor `requires`: deploys are found by name.
NO_CIRCLECI_DEPLOY = """
repository = "pyodide/pyodide"
branches = ["main"]

[jobs]
advisory = ["test-core-node"]
"""


def job_id(name: str, workflow: str = f.WORKFLOW) -> str:
    """Return the job id the factories give a CircleCI job."""
    return f"{workflow}:{name}"


def api_job(
    name: str,
    status: str,
    *,
    number: int | None = None,
    minutes: float | None = None,
    requires: tuple[str, ...] = (),
    workflow: str = f.WORKFLOW,
) -> dict[str, object]:
    """Return one item of GET /workflow/{id}/job, as CircleCI's API v2 lists it."""
    item: dict[str, object] = {
        "id": job_id(name, workflow),
        "name": name,
        "type": "build",
        "status": status,
        "project_slug": SLUG,
        "dependencies": [job_id(dependency, workflow) for dependency in requires],
    }
    if number is not None:
        item["job_number"] = number
    if minutes is not None:
        item["started_at"] = f.at(minutes - 5).isoformat().replace("+00:00", "Z")
        item["stopped_at"] = f.at(minutes).isoformat().replace("+00:00", "Z")
    return item


WORKFLOW = {
    "id": f.WORKFLOW,
    "name": "build-and-deploy",
    "status": "failed",
    "pipeline_id": f.PIPELINE,
    "pipeline_number": 7578,
    "project_slug": SLUG,
    "created_at": "2024-07-26T13:55:00Z",
    "stopped_at": "2024-07-26T15:30:00Z",
    "started_by": "0f4b0b3c-9c9e-4d5a-8d3b-2f1a7e6c5d40",
}
JOBS = [
    api_job("check-release-version", "success", number=108301, minutes=2),
    api_job("build-core", "success", number=108300, minutes=20),
    api_job("test-core-firefox", "success", number=108390, minutes=50, requires=("build-core",)),
    api_job("test-packages-firefox", "failed", number=108413, minutes=95, requires=("build-core",)),
    api_job(
        "deploy-release",
        "blocked",
        requires=("check-release-version", "test-core-firefox", "test-packages-firefox"),
    ),
]


@pytest.fixture
def pyodide(db, fake_circleci):
    """Return pyodide/pyodide with its 0.26.2 webhooks recorded and CircleCI's API faked."""
    repo = repository_create(full_name=f.REPO)
    f.append_all(f.pyodide_story())
    fake_circleci.page_size = 2  # the five jobs come in three pages
    fake_circleci.add_workflow(WORKFLOW, JOBS)
    return repo


def _release() -> Release:
    return Release.objects.get(repository=f.REPO, ref_key=f"tag:{f.TAG}")


@pytest.mark.django_db
@pytest.mark.parametrize("policy", [None, NO_CIRCLECI_DEPLOY], ids=["default", "no-circleci"])
def test_the_api_reveals_the_blocked_deploy_and_what_blocks_it(pyodide, fake_circleci, policy):
    if policy is not None:
        DeployPolicy.objects.create(repository=pyodide, document=policy)
    projector.catch_up()
    # From webhooks alone, only GitHub's deploy is known, and it succeeded.
    assert _release().state == "deployed"

    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    assert circleci_workflow_enrich(repository=pyodide, workflow_id=f.WORKFLOW) == 5
    projector.catch_up()

    release = _release()
    assert release.state == "blocked"
    assert release.flag_list == ["blocked", "partially_deployed"]
    [chain] = release.blocking
    assert chain["deploy"] == "deploy-release"
    assert chain["platform"] == "circleci"
    assert [(b["job"], b["conclusion"], b["role"]) for b in chain["blocked_by"]] == [
        ("test-packages-firefox", "failure", "core")
    ]
    deploy = TimelineEntry.objects.get(entry_key=f"circleci:job:{job_id('deploy-release')}")
    assert deploy.release == release
    assert (deploy.status, deploy.conclusion) == ("blocked", "")
    assert deploy.extra["dependencies"] == [
        job_id("check-release-version"),
        job_id("test-core-firefox"),
        job_id("test-packages-firefox"),
    ]
    assert deploy.sha == f.SHA
    # API facts merge into the webhook's entries: one entry per job, not two.
    assert TimelineEntry.objects.filter(platform="circleci", release=release).count() == 6
    assert fake_circleci.calls()[0].headers["circle-token"] == TOKEN


@pytest.mark.django_db
def test_reading_the_same_workflow_again_records_nothing_new(pyodide, fake_circleci):
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    circleci_workflow_enrich(repository=pyodide, workflow_id=f.WORKFLOW)
    before = StreamEvent.objects.count()
    assert circleci_workflow_enrich(repository=pyodide, workflow_id=f.WORKFLOW) == 0
    assert StreamEvent.objects.count() == before
    # A status that changed is a new fact: deploy-release went from blocked to not_run.
    fake_circleci.jobs[f.WORKFLOW][-1] = {**JOBS[-1], "status": "not_run"}
    assert circleci_workflow_enrich(repository=pyodide, workflow_id=f.WORKFLOW) == 1
    keys = StreamEvent.objects.filter(event_type="api.workflow-job").values_list(
        "delivery_key", flat=True
    )
    assert f"circleci-api:{f.WORKFLOW}:{job_id('deploy-release')}:not_run" in keys
    projector.catch_up()
    assert _release().state == "blocked"


@pytest.mark.django_db
def test_a_rebuild_from_the_stream_gives_the_same_projection(pyodide):
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    projector.catch_up(batch_size=3)
    circleci_workflow_enrich(repository=pyodide, workflow_id=f.WORKFLOW)
    projector.catch_up(batch_size=2)
    incremental = _snapshot()
    projector.rebuild()
    assert _snapshot() == incremental


@pytest.mark.django_db
def test_without_a_credential_nothing_is_called(pyodide, fake_circleci):
    before = StreamEvent.objects.count()
    assert circleci_workflow_enrich(repository=pyodide, workflow_id=f.WORKFLOW) == 0
    assert fake_circleci.calls() == []
    assert StreamEvent.objects.count() == before


@pytest.mark.django_db
def test_the_stream_keeps_the_raw_answer_and_never_the_token(pyodide):
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    circleci_workflow_enrich(repository=pyodide, workflow_id=f.WORKFLOW)
    rows = StreamEvent.objects.filter(event_type="api.workflow-job")
    assert rows.count() == 5
    for row in rows:
        assert TOKEN.encode() not in bytes(row.body)
        assert TOKEN not in str(row.data) + str(row.headers)
    deploy = rows.get(data__job_id=job_id("deploy-release"))
    assert deploy.source == "circleci"
    assert deploy.sha == f.SHA
    assert deploy.data["extra"] == {
        "dependencies": JOBS[-1]["dependencies"],
        "source": "api",
    }


@pytest.mark.django_db
def test_a_workflow_the_stream_knows_nothing_of_takes_its_revision_from_the_pipeline(
    db, fake_circleci
):
    repo = repository_create(full_name=f.REPO)
    ci_credential_set(repository=repo, platform="circleci", token=TOKEN)
    fake_circleci.add_workflow(WORKFLOW, JOBS[:1])
    fake_circleci.pipelines[f.PIPELINE] = {
        "id": f.PIPELINE,
        "number": 7578,
        "vcs": {"revision": f.SHA, "tag": f.TAG, "branch": None},
    }
    assert circleci_workflow_enrich(repository=repo, workflow_id=f.WORKFLOW) == 1
    row = StreamEvent.objects.get()
    assert (row.sha, row.branch, row.tag) == (f.SHA, "", f.TAG)


# -- the periodic pass -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_periodic_pass_reads_workflows_of_recent_undeployed_releases(pyodide, fake_circleci):
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    projector.catch_up()
    run = circleci_workflows_enrich_recent(now=f.at(24 * 60))
    assert (run.workflows, run.appended, run.postponed, run.failed) == (1, 5, 0, 0)
    # A week after its last activity, a release is left alone.
    assert fake_circleci.calls() != []
    fake_circleci.reset()
    run = circleci_workflows_enrich_recent(now=f.at(96) + timedelta(days=7, minutes=1))
    assert run.workflows == 0
    assert fake_circleci.calls() == []


@pytest.mark.django_db
def test_the_task_skips_old_releases(pyodide, fake_circleci):
    """The story is from 2024: today it is far outside the week the task looks at."""
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    projector.catch_up()
    assert enrich_circleci_workflows() == 0
    assert fake_circleci.calls() == []


@pytest.mark.django_db
def test_repositories_without_a_token_are_not_read(pyodide, fake_circleci):
    projector.catch_up()
    assert circleci_workflows_enrich_recent(now=f.at(100)).workflows == 0
    assert fake_circleci.calls() == []


@pytest.mark.django_db
def test_a_deployed_release_is_read_once_then_left_alone(pyodide, fake_circleci):
    """Webhooks alone can make a release look deployed; one reading settles it."""
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    f.append_all(f.rerun_story())
    projector.catch_up()
    assert _release().state == "deployed"
    fake_circleci.add_workflow(
        {**WORKFLOW, "id": f.RERUN_WORKFLOW, "status": "success"},
        [
            api_job(
                "test-packages-firefox",
                "success",
                number=118001,
                minutes=3 * 24 * 60,
                workflow=f.RERUN_WORKFLOW,
            ),
            api_job(
                "deploy-release",
                "success",
                number=118002,
                minutes=3 * 24 * 60 + 10,
                workflow=f.RERUN_WORKFLOW,
                requires=("test-packages-firefox",),
            ),
        ],
    )
    now = f.at(3 * 24 * 60 + 20)
    assert circleci_workflows_enrich_recent(now=now).workflows == 2
    projector.catch_up()
    assert _release().state == "deployed"  # the rerun's deploy-release is the latest attempt
    fake_circleci.reset()
    assert circleci_workflows_enrich_recent(now=now).workflows == 0
    assert fake_circleci.calls() == []


@pytest.mark.django_db
def test_a_rate_limit_postpones_the_repository_and_logs_no_token(pyodide, fake_circleci, caplog):
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    f.append_all(f.rerun_story()[:1])  # a second workflow of the release, still running
    projector.catch_up()
    first, second = sorted([f.WORKFLOW, f.RERUN_WORKFLOW])
    fake_circleci.add_workflow({**WORKFLOW, "id": f.RERUN_WORKFLOW}, [])
    fake_circleci.script(
        "GET", f"/workflow/{first}", Reply(429, {"message": "slow down"}, {"Retry-After": "3600"})
    )
    with caplog.at_level(logging.DEBUG):
        run = circleci_workflows_enrich_recent(now=f.at(3 * 24 * 60))
    assert (run.workflows, run.postponed, run.appended) == (1, 2, 0)
    assert fake_circleci.calls("GET", f"/workflow/{second}") == []
    assert "postponed to the next pass" in caplog.text
    assert "retry in 3600 s" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.django_db
def test_a_refused_workflow_is_logged_without_the_token_and_the_rest_go_on(
    pyodide, fake_circleci, caplog
):
    ci_credential_set(repository=pyodide, platform="circleci", token=TOKEN)
    f.append_all(f.rerun_story()[:1])
    projector.catch_up()
    first, second = sorted([f.WORKFLOW, f.RERUN_WORKFLOW])
    fake_circleci.add_workflow({**WORKFLOW, "id": f.RERUN_WORKFLOW}, [])
    fake_circleci.script(
        "GET", f"/workflow/{first}", Reply(404, {"message": f"no workflow for {TOKEN}"})
    )
    with caplog.at_level(logging.DEBUG):
        run = circleci_workflows_enrich_recent(now=f.at(3 * 24 * 60))
    assert (run.workflows, run.failed, run.postponed) == (2, 1, 0)
    assert len(fake_circleci.calls("GET", f"/workflow/{second}")) == 1
    assert "workflow not found" in caplog.text
    assert TOKEN not in caplog.text


def test_the_service_raises_the_client_failures_for_its_caller(db, fake_circleci):
    repo = repository_create(full_name=f.REPO)
    ci_credential_set(repository=repo, platform="circleci", token=TOKEN)
    fake_circleci.script("GET", f"/workflow/{f.WORKFLOW}", Reply(429, headers={"Retry-After": "9"}))
    with pytest.raises(RateLimited) as limited:
        circleci_workflow_enrich(repository=repo, workflow_id=f.WORKFLOW)
    assert limited.value.retry_after_seconds == 9
    with pytest.raises(PermanentFailure, match="workflow not found"):
        circleci_workflow_enrich(repository=repo, workflow_id=f.WORKFLOW)


# -- the pure normaliser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "conclusion"),
    [
        ("success", "success"),
        ("failed", "failure"),
        ("canceled", "cancelled"),
        ("timedout", "timed_out"),
        ("infrastructure_fail", "infrastructure_fail"),
        ("unauthorized", "unauthorized"),
        ("error", "error"),
        ("blocked", ""),
        ("not_run", ""),
        ("running", ""),
        ("queued", ""),
        ("on_hold", ""),
    ],
)
def test_only_terminal_statuses_have_a_conclusion(status, conclusion):
    [fact] = circleci_api.normalise_workflow_jobs(
        repository=f.REPO, workflow=WORKFLOW, items=[api_job("x", status)]
    )
    assert (fact["status"], fact["conclusion"]) == (status, conclusion)


def test_a_job_fact_has_the_webhook_normalisers_shape():
    [fact] = circleci_api.normalise_workflow_jobs(
        repository=f.REPO,
        workflow=WORKFLOW,
        items=[JOBS[3]],
        sha=f.SHA,
    )
    assert fact == {
        "platform": "circleci",
        "event_type": "api.workflow-job",
        "kind": "job",
        "repository": f.REPO,
        "name": "test-packages-firefox",
        "status": "failed",
        "conclusion": "failure",
        "attempt": 1,
        "run_id": f.WORKFLOW,
        "workflow_name": "build-and-deploy",
        "pipeline_id": f.PIPELINE,
        "pipeline_number": 7578,
        "job_id": job_id("test-packages-firefox"),
        "job_number": 108413,
        "started_at": f.at(90).isoformat(),
        "completed_at": f.at(95).isoformat(),
        "occurred_at": f.at(95).isoformat(),
        "url": "https://app.circleci.com/pipelines/github/pyodide/pyodide/7578/workflows/"
        f"{f.WORKFLOW}/jobs/108413",
        "sha": f.SHA,
        "branch": "",
        "tag": "",
        "extra": {"dependencies": [job_id("build-core")], "source": "api"},
    }


def test_a_job_that_never_started_takes_the_workflows_clock_and_has_no_url():
    [fact] = circleci_api.normalise_workflow_jobs(
        repository=f.REPO, workflow=WORKFLOW, items=[JOBS[-1]]
    )
    assert fact["occurred_at"] == "2024-07-26T15:30:00+00:00"
    assert (fact["started_at"], fact["completed_at"], fact["job_number"]) == (None, None, None)
    assert fact["url"] == ""


@pytest.mark.parametrize(
    ("slug", "path"),
    [
        ("gh/pyodide/pyodide", "github/pyodide/pyodide"),
        ("bb/team/repo", "bitbucket/team/repo"),
        ("circleci/9a1b/7c2d", "circleci/9a1b/7c2d"),
        ("", ""),
    ],
)
def test_job_urls_spell_the_slug_as_the_app_does(slug, path):
    url = circleci_api.job_url(slug, 7578, f.WORKFLOW, 1)
    assert url == (
        f"https://app.circleci.com/pipelines/{path}/7578/workflows/{f.WORKFLOW}/jobs/1"
        if path
        else ""
    )


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ({"name": "x", "status": "success"}, r"items\[0\].id is missing"),
        ({"id": "j", "name": "x"}, r"items\[0\].status is missing"),
        ({"id": "j", "name": "x", "status": "success", "dependencies": [3]}, "list of job ids"),
        ({"id": "j", "name": "x", "status": "success", "job_number": "7"}, "must be an integer"),
        ("not an object", r"items\[0\] must be a JSON object"),
    ],
)
def test_a_malformed_item_is_refused_with_its_path(item, error):
    with pytest.raises(MalformedPayload, match=error):
        circleci_api.normalise_workflow_jobs(repository=f.REPO, workflow=WORKFLOW, items=[item])


def test_the_task_runs_every_five_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["enrich-circleci-workflows"]
    assert entry == {"task": enrich_circleci_workflows.name, "schedule": 300.0}
