"""Derived release state: which entries deploy, and jobs that never ran."""

from __future__ import annotations

from releases import policy as policy_module
from releases.policy import DEFAULT_POLICY
from releases.projections import Entry, derive
from tests.releases import factories as f


def _entry(platform: str, kind: str, name: str, status: str, conclusion: str = "", **kw):
    return Entry(
        entry_key=f"{platform}:{kind}:{name}",
        repository=f.REPO,
        platform=platform,
        kind=kind,
        name=name,
        workflow_name=kw.pop("workflow_name", name if kind == "workflow_run" else ""),
        status=status,
        conclusion=conclusion,
        **kw,
    )


def test_under_the_default_policy_a_circleci_workflow_name_does_not_make_a_deploy():
    """Pyodide's workflow is "build-and-deploy" and runs every test: its failure is no deploy's."""
    entries = [
        _entry("circleci", "workflow_run", "build-and-deploy", "failed", "failure"),
        _entry("github", "workflow_run", "deploy-release", "completed", "success"),
    ]
    view = derive("tag", entries, DEFAULT_POLICY)
    assert [(o.deploy.platform, o.deploy.name, o.outcome) for o in view.deploys] == [
        ("github", "deploy-release", "success")
    ]
    named = policy_module.parse(
        '[[deploy]]\nplatform = "circleci"\nname = "build-and-deploy"\n'
        '[[deploy]]\nplatform = "github"\nname = "deploy-release"\n'
    )
    outcomes = {(o.deploy.platform, o.outcome) for o in derive("tag", entries, named).deploys}
    assert outcomes == {("circleci", "failed"), ("github", "success")}


def test_a_job_that_never_ran_does_not_make_a_release_running():
    entries = [
        _entry("circleci", "job", "test-packages-firefox", "failed", "failure", job_id="t"),
        _entry(
            "circleci",
            "job",
            "deploy-release",
            "blocked",
            job_id="d",
            extra={"dependencies": ["t"]},
        ),
        _entry("github", "workflow_run", "deploy-release", "completed", "success"),
    ]
    view = derive("tag", entries, DEFAULT_POLICY)
    assert view.flags == ("blocked", "partially_deployed")
    still_running = _entry("circleci", "job", "test-core-firefox", "running", job_id="c")
    assert "running" in derive("tag", [*entries, still_running], DEFAULT_POLICY).flags
