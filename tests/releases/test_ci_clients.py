"""Outbound CircleCI and GitHub clients against local fake servers: calls, pages, failures."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from releases.ci_clients import (
    CircleCIClient,
    DispatchResult,
    GitHubClient,
    PermanentFailure,
    RateLimited,
    TransientFailure,
)
from releases.ci_clients.github import permissions_needed
from tests.fakes.ci_servers import FakeGitHub, Reply

CCI_TOKEN = "cci-personal-5ecret-token-0123456789abcdef"
GH_TOKEN = "github_pat_11ABCDEF0g1tHubS3cr3tT0k3nValue"
WORKFLOW = "403d102b-8063-48c2-a32c-bcede2efee93"
NOW = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)


@pytest.fixture
def circleci(fake_circleci):
    fake_circleci.add_workflow(
        {"id": WORKFLOW, "name": "build-and-deploy", "pipeline_id": "p-1", "pipeline_number": 7578},
        [],
    )
    with CircleCIClient(CCI_TOKEN, clock=lambda: NOW) as client:
        yield client


@pytest.fixture
def github(fake_github):
    fake_github.workflows["pyodide/pyodide"].add("deploy_release.yml")
    fake_github.runs["pyodide/pyodide"].add("202")
    with GitHubClient(GH_TOKEN, clock=lambda: NOW) as client:
        yield client


def _assert_token_kept_out(raised, caplog, token):
    """Neither the exception nor anything logged while it happened shows the token."""
    exc = raised.value
    for text in (str(exc), repr(exc), getattr(exc, "reason", ""), caplog.text):
        assert token not in text


def _job(number: int) -> dict[str, str]:
    return {"id": f"job-{number}", "name": f"test-{number}", "status": "success"}


# -- CircleCI ------------------------------------------------------------------------------


def test_circleci_rerun_from_failed_returns_the_new_workflow(circleci, fake_circleci):
    new_id = circleci.rerun_workflow(WORKFLOW)
    assert new_id == fake_circleci.reruns[-1]
    [call] = fake_circleci.calls("POST", f"/workflow/{WORKFLOW}/rerun")
    assert call.headers["circle-token"] == CCI_TOKEN
    assert call.json == {"from_failed": True}


def test_circleci_rerun_of_chosen_jobs_sends_jobs_and_sparse_tree(circleci, fake_circleci):
    circleci.rerun_workflow(WORKFLOW, jobs=["job-1", "job-2"], sparse_tree=True)
    [call] = fake_circleci.calls("POST", f"/workflow/{WORKFLOW}/rerun")
    assert call.json == {"jobs": ["job-1", "job-2"], "sparse_tree": True}
    with pytest.raises(ValueError, match="mutually exclusive"):
        circleci.rerun_workflow(WORKFLOW, from_failed=True, jobs=["job-1"])
    with pytest.raises(ValueError, match="sparse_tree needs jobs"):
        circleci.rerun_workflow(WORKFLOW, sparse_tree=True)


@pytest.mark.parametrize("status", [200, 201, 202])
def test_circleci_rerun_accepts_every_documented_success_status(circleci, fake_circleci, status):
    path = f"/workflow/{WORKFLOW}/rerun"
    fake_circleci.script("POST", path, Reply(status, {"workflow_id": "new-workflow"}))
    assert circleci.rerun_workflow(WORKFLOW) == "new-workflow"


def test_circleci_rerun_answer_without_a_workflow_id_is_a_permanent_failure(
    circleci, fake_circleci
):
    fake_circleci.script("POST", f"/workflow/{WORKFLOW}/rerun", Reply(202, {"message": "ok"}))
    with pytest.raises(PermanentFailure, match="names no new workflow_id"):
        circleci.rerun_workflow(WORKFLOW)


def test_circleci_workflow_jobs_follows_every_page(circleci, fake_circleci):
    fake_circleci.page_size = 2
    fake_circleci.jobs[WORKFLOW] = [_job(n) for n in range(5)]
    items = circleci.workflow_jobs(WORKFLOW)
    assert [item["id"] for item in items] == [f"job-{n}" for n in range(5)]
    calls = fake_circleci.calls("GET", f"/workflow/{WORKFLOW}/job")
    assert [c.query.get("page-token") for c in calls] == [None, ["2"], ["4"]]


def test_circleci_workflow_jobs_stops_on_a_repeating_page_token(circleci, fake_circleci):
    path = f"/workflow/{WORKFLOW}/job"
    page = {"items": [_job(1)], "next_page_token": "same"}
    fake_circleci.script("GET", path, Reply(200, page), Reply(200, page), Reply(200, page))
    assert len(circleci.workflow_jobs(WORKFLOW)) == 2
    assert len(fake_circleci.calls("GET", path)) == 2


def test_circleci_get_workflow_and_pipeline(circleci, fake_circleci):
    fake_circleci.pipelines["p-1"] = {"id": "p-1", "number": 7578, "vcs": {"tag": "0.26.2"}}
    assert circleci.get_workflow(WORKFLOW)["pipeline_number"] == 7578
    assert circleci.get_pipeline("p-1")["vcs"] == {"tag": "0.26.2"}
    with pytest.raises(PermanentFailure, match="pipeline not found") as raised:
        circleci.get_pipeline("p-404")
    assert raised.value.status == 404


def test_circleci_ids_cannot_change_the_path(circleci, fake_circleci):
    with pytest.raises(PermanentFailure):
        circleci.get_workflow("../pipeline/p-1")
    [call] = fake_circleci.calls()
    assert call.path == "/workflow/..%2Fpipeline%2Fp-1"


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "30"}, 30),
        ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)}, 90),
        ({"RateLimit-Reset": "12"}, 12),
        ({}, 60),
    ],
)
def test_circleci_429_is_rate_limited_with_the_wait_it_asks_for(
    circleci, fake_circleci, caplog, headers, wait
):
    fake_circleci.script(
        "POST", f"/workflow/{WORKFLOW}/rerun", Reply(429, {"message": "slow down"}, headers)
    )
    with pytest.raises(RateLimited) as raised:
        circleci.rerun_workflow(WORKFLOW)
    assert raised.value.retry_after_seconds == pytest.approx(wait, abs=1)
    _assert_token_kept_out(raised, caplog, CCI_TOKEN)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_circleci_5xx_is_transient(circleci, fake_circleci, caplog, status):
    fake_circleci.script("GET", f"/workflow/{WORKFLOW}/job", Reply(status, {"message": "oops"}))
    with pytest.raises(TransientFailure) as raised:
        circleci.workflow_jobs(WORKFLOW)
    assert raised.value.status == status
    _assert_token_kept_out(raised, caplog, CCI_TOKEN)


def test_a_timeout_is_transient(fake_circleci, caplog):
    fake_circleci.add_workflow({"id": WORKFLOW}, [])
    fake_circleci.script("GET", f"/workflow/{WORKFLOW}", Reply(200, {}, delay=0.5))
    with (
        CircleCIClient(CCI_TOKEN, timeout=0.1) as client,
        pytest.raises(TransientFailure, match="timed out") as raised,
    ):
        client.get_workflow(WORKFLOW)
    _assert_token_kept_out(raised, caplog, CCI_TOKEN)


def test_an_unreachable_server_is_transient(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    with (
        GitHubClient(GH_TOKEN, base_url=f"http://127.0.0.1:{port}") as client,
        pytest.raises(TransientFailure, match="unreachable") as raised,
    ):
        client.redeliver("pyodide", "pyodide", 1, 2)
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


@pytest.mark.parametrize(
    ("reply", "status", "reason"),
    [
        (Reply(401, {"message": "Invalid token provided."}), 401, "personal API token"),
        (Reply(403, {"message": "Permission denied"}), 403, "write access to the project"),
        (Reply(404, {"message": "Workflow not found"}), 404, "workflow not found"),
        (
            Reply(400, {"message": "from_failed and jobs are mutually exclusive"}),
            400,
            "refused the request as invalid (CircleCI: from_failed and jobs",
        ),
    ],
)
def test_circleci_refusals_are_permanent_with_the_reason(
    circleci, fake_circleci, caplog, reply, status, reason
):
    fake_circleci.script("POST", f"/workflow/{WORKFLOW}/rerun", reply)
    with pytest.raises(PermanentFailure) as raised:
        circleci.rerun_workflow(WORKFLOW)
    assert raised.value.status == status
    assert reason in raised.value.reason
    _assert_token_kept_out(raised, caplog, CCI_TOKEN)


def test_a_missing_token_header_is_what_the_fake_refuses(fake_circleci):
    """The fake holds clients to the documented auth: no Circle-Token, no answer."""
    fake_circleci.add_workflow({"id": WORKFLOW}, [])
    with CircleCIClient(CCI_TOKEN) as client:
        client._http.headers.pop("Circle-Token")
        with pytest.raises(PermanentFailure, match="personal API token"):
            client.get_workflow(WORKFLOW)


def test_a_token_echoed_by_the_platform_is_scrubbed_from_the_reason(
    circleci, fake_circleci, caplog
):
    echo = Reply(401, {"message": f"token {CCI_TOKEN} is not valid"})
    fake_circleci.script("GET", f"/workflow/{WORKFLOW}", echo)
    with pytest.raises(PermanentFailure, match=r"token \[token\] is not valid") as raised:
        circleci.get_workflow(WORKFLOW)
    _assert_token_kept_out(raised, caplog, CCI_TOKEN)


def test_clients_refuse_a_token_that_cannot_be_a_header_without_quoting_it():
    with pytest.raises(ValueError, match="printable ASCII") as raised:
        CircleCIClient("good-looking\r\nX-Injected: yes")
    assert "X-Injected" not in str(raised.value)
    assert CCI_TOKEN not in repr(CircleCIClient(CCI_TOKEN, base_url="http://127.0.0.1:9"))


# -- GitHub --------------------------------------------------------------------------------


def test_github_rerun_failed_jobs_sends_the_documented_headers(github, fake_github):
    github.rerun_failed_jobs("pyodide", "pyodide", 202)
    [call] = fake_github.calls("POST", "/repos/pyodide/pyodide/actions/runs/202/rerun-failed-jobs")
    assert call.headers["authorization"] == f"Bearer {GH_TOKEN}"
    assert call.headers["accept"] == "application/vnd.github+json"
    assert call.headers["x-github-api-version"] == "2022-11-28"
    assert call.json == {"enable_debug_logging": False}


def test_github_dispatch_returns_the_run_when_github_gives_it(github, fake_github):
    result = github.dispatch_workflow("pyodide", "pyodide", "deploy_release.yml", "0.26.2")
    assert result.workflow_run_id == 900_001
    assert result.html_url == "https://github.com/pyodide/pyodide/actions/runs/900001"
    assert result.run_url.endswith("/repos/pyodide/pyodide/actions/runs/900001")
    path = "/repos/pyodide/pyodide/actions/workflows/deploy_release.yml/dispatches"
    [call] = fake_github.calls("POST", path)
    assert call.json == {"ref": "0.26.2", "inputs": {}, "return_run_details": True}


def test_github_dispatch_accepts_a_plain_204(github, fake_github):
    path = "/repos/pyodide/pyodide/actions/workflows/deploy_release.yml/dispatches"
    fake_github.script("POST", path, Reply(204))
    assert (
        github.dispatch_workflow(
            "pyodide", "pyodide", "deploy_release.yml", "0.26.2", {"version": "0.26.2"}
        )
        == DispatchResult()
    )
    plain = github.dispatch_workflow(
        "pyodide", "pyodide", "deploy_release.yml", "0.26.2", return_run_details=False
    )
    assert plain == DispatchResult()
    assert [c.json for c in fake_github.calls("POST", path)] == [
        {"ref": "0.26.2", "inputs": {"version": "0.26.2"}, "return_run_details": True},
        {"ref": "0.26.2", "inputs": {}},
    ]


def test_github_enterprise_refusing_return_run_details_is_asked_once_more_without_it(
    github, fake_github
):
    fake_github.run_details = False
    result = github.dispatch_workflow("pyodide", "pyodide", "deploy_release.yml", "0.26.2")
    assert result == DispatchResult()
    path = "/repos/pyodide/pyodide/actions/workflows/deploy_release.yml/dispatches"
    bodies = [c.json for c in fake_github.calls("POST", path)]
    assert bodies == [
        {"ref": "0.26.2", "inputs": {}, "return_run_details": True},
        {"ref": "0.26.2", "inputs": {}},
    ]


def test_github_dispatch_400_twice_is_permanent_and_not_retried_again(github, fake_github):
    path = "/repos/pyodide/pyodide/actions/workflows/deploy_release.yml/dispatches"
    bad = Reply(400, {"message": "Problems parsing JSON"})
    fake_github.script("POST", path, bad, bad, bad)
    with pytest.raises(PermanentFailure, match="malformed") as raised:
        github.dispatch_workflow("pyodide", "pyodide", "deploy_release.yml", "0.26.2")
    assert raised.value.status == 400
    assert len(fake_github.calls("POST", path)) == 2


def test_github_dispatch_of_an_unknown_workflow_explains_the_classic_mistake(
    github, fake_github, caplog
):
    """Pyodide's 2022 attempt POSTed to the wrong URL and got a bare Not Found."""
    with pytest.raises(PermanentFailure) as raised:
        github.dispatch_workflow("pyodide", "pyodide", "deploy-release", "0.26.2")
    assert raised.value.status == 404
    assert (
        "workflow not found: check the workflow file name or id, e.g. deploy_release.yml, "
        "and that the token can see the repository" in raised.value.reason
    )
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


def test_github_dispatch_422_is_a_bad_ref_or_inputs(github, fake_github, caplog):
    path = "/repos/pyodide/pyodide/actions/workflows/deploy_release.yml/dispatches"
    fake_github.script("POST", path, Reply(422, {"message": "No ref found for: 9.9.9"}))
    with pytest.raises(PermanentFailure) as raised:
        github.dispatch_workflow("pyodide", "pyodide", "deploy_release.yml", "9.9.9")
    assert raised.value.status == 422
    assert "bad ref or inputs" in raised.value.reason
    assert "No ref found for: 9.9.9" in raised.value.reason
    assert len(fake_github.calls("POST", path)) == 1
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


@pytest.mark.parametrize(
    ("headers", "needed"),
    [
        ({"X-Accepted-GitHub-Permissions": "actions=write"}, "Actions: write"),
        (
            {"X-Accepted-GitHub-Permissions": "actions=write; contents=write"},
            "Actions: write or Contents: write",
        ),
        ({}, "Actions: write"),
    ],
)
def test_github_403_without_a_rate_limit_names_the_permission_needed(
    github, fake_github, caplog, headers, needed
):
    path = "/repos/pyodide/pyodide/actions/runs/202/rerun-failed-jobs"
    fake_github.script(
        "POST",
        path,
        Reply(403, {"message": "Resource not accessible by personal access token"}, headers),
    )
    with pytest.raises(PermanentFailure) as raised:
        github.rerun_failed_jobs("pyodide", "pyodide", 202)
    assert raised.value.status == 403
    assert f"it needs {needed}" in raised.value.reason
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


def test_permissions_header_in_the_ui_words():
    assert permissions_needed("repository_hooks=read") == "Repository hooks: read"
    assert permissions_needed("") == ""


@pytest.mark.parametrize(
    ("status", "headers", "message", "wait"),
    [
        (403, {"retry-after": "7"}, "You have exceeded a secondary rate limit", 7),
        (
            403,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 120)},
            "API rate limit exceeded for user ID 1.",
            120,
        ),
        (403, {}, "You have exceeded a secondary rate limit.", 60),
        (429, {"retry-after": "3"}, "", 3),
        (
            429,
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 45)},
            "",
            45,
        ),
        (429, {}, "", 60),
    ],
)
def test_github_primary_and_secondary_limits_are_rate_limited(
    github, fake_github, caplog, status, headers, message, wait
):
    path = "/repos/pyodide/pyodide/actions/workflows/deploy_release.yml/dispatches"
    fake_github.script("POST", path, Reply(status, {"message": message}, headers))
    with pytest.raises(RateLimited) as raised:
        github.dispatch_workflow("pyodide", "pyodide", "deploy_release.yml", "0.26.2")
    assert raised.value.retry_after_seconds == pytest.approx(wait)
    assert len(fake_github.calls("POST", path)) == 1
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


def test_github_401_is_permanent(github, fake_github, caplog):
    fake_github.script(
        "POST",
        "/repos/pyodide/pyodide/hooks/1/deliveries/2/attempts",
        Reply(401, {"message": "Bad credentials"}),
    )
    with pytest.raises(PermanentFailure, match="invalid, expired or revoked") as raised:
        github.redeliver("pyodide", "pyodide", 1, 2)
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


def test_github_5xx_is_transient(github, fake_github, caplog):
    fake_github.script(
        "POST",
        "/repos/pyodide/pyodide/actions/runs/202/rerun-failed-jobs",
        Reply(502, raw=b"<html>Bad gateway</html>"),
    )
    with pytest.raises(TransientFailure, match="answered 502") as raised:
        github.rerun_failed_jobs("pyodide", "pyodide", 202)
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


def test_github_rerun_of_an_unknown_run_is_not_found(github, caplog):
    with pytest.raises(PermanentFailure, match="workflow run not found") as raised:
        github.rerun_failed_jobs("pyodide", "pyodide", 999)
    _assert_token_kept_out(raised, caplog, GH_TOKEN)


def _deliveries(count: int) -> list[dict[str, object]]:
    return [
        {"id": 1000 + n, "guid": f"guid-{n}", "status": "OK" if n % 2 else "failed"}
        for n in range(count)
    ]


def test_github_hook_deliveries_follow_link_pagination(github, fake_github):
    fake_github.deliveries[("pyodide/pyodide", "421337")] = _deliveries(5)
    found = github.list_hook_deliveries("pyodide", "pyodide", 421337, per_page=2)
    assert [d["id"] for d in found] == [1000, 1001, 1002, 1003, 1004]
    calls = fake_github.calls("GET", "/repos/pyodide/pyodide/hooks/421337/deliveries")
    assert [c.query.get("cursor") for c in calls] == [None, ["2"], ["4"]]
    assert all(c.headers["authorization"] == f"Bearer {GH_TOKEN}" for c in calls)


def test_github_hook_deliveries_stop_at_the_page_bound(github, fake_github):
    fake_github.deliveries[("pyodide/pyodide", "421337")] = _deliveries(5)
    found = github.list_hook_deliveries("pyodide", "pyodide", 421337, per_page=2, max_pages=2)
    assert len(found) == 4


def test_github_pagination_never_carries_the_token_to_another_host(github, fake_github):
    elsewhere = FakeGitHub().start()
    try:
        path = "/repos/pyodide/pyodide/hooks/421337/deliveries"
        link = {"Link": f'<{elsewhere.url}{path}?cursor=2>; rel="next"'}
        fake_github.script("GET", path, Reply(200, _deliveries(2), link))
        with pytest.raises(PermanentFailure, match="not followed"):
            github.list_hook_deliveries("pyodide", "pyodide", 421337)
        assert elsewhere.calls() == []
    finally:
        elsewhere.stop()


def test_github_redeliver_asks_for_another_attempt(github, fake_github):
    fake_github.deliveries[("pyodide/pyodide", "421337")] = _deliveries(3)
    github.redeliver("pyodide", "pyodide", 421337, 1001)
    assert (
        len(
            fake_github.calls(
                "POST", "/repos/pyodide/pyodide/hooks/421337/deliveries/1001/attempts"
            )
        )
        == 1
    )
    with pytest.raises(PermanentFailure, match="hook or delivery not found"):
        github.redeliver("pyodide", "pyodide", 421337, 4242)


def test_github_hook_deliveries_of_an_unknown_hook_are_not_found(github):
    with pytest.raises(PermanentFailure, match="hook not found") as raised:
        github.list_hook_deliveries("pyodide", "pyodide", 7)
    assert raised.value.status == 404
