"""Normalised events of a small two-platform release, for projection tests.

These skip the webhooks: they are what the normalisers produce, appended through the one
append path, so projection tests read like the story they tell.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from releases import stream

REPO = "pyodide/pyodide"
SHA = "7e7cadb9cd3863d5bc5e5620532bea369a135552"
TAG = "0.26.2"
PIPELINE = "5e0f7a3c-0b1e-4d5f-9a4e-7578000000aa"
WORKFLOW = "403d102b-8063-48c2-a32c-bcede2efee93"
RERUN_WORKFLOW = "7d2c3f6e-1b7a-4f0e-8a52-0c9d2e7b5a11"
T0 = datetime(2024, 7, 26, 13, 54, 30, tzinfo=UTC)
_ids = itertools.count(1)


def at(minutes: float) -> datetime:
    """Return the moment `minutes` after the tag was pushed."""
    return T0 + timedelta(minutes=minutes)


def event(
    platform: str, kind: str, *, key: str | None = None, minutes: float = 0, **fields: Any
) -> dict[str, Any]:
    """Return the keyword arguments of one append: a normalised event."""
    occurred = at(minutes)
    data: dict[str, Any] = {
        "platform": platform,
        "kind": kind,
        "repository": REPO,
        "attempt": 1,
        "occurred_at": occurred.isoformat(),
        "extra": {},
    }
    for name in ("started_at", "completed_at"):
        if name in fields and isinstance(fields[name], int | float):
            fields[name] = at(fields[name]).isoformat()
    data.update(fields)
    return {
        "source": platform,
        "event_type": f"{kind}.{fields.get('status', '')}",
        "delivery_key": key or f"test:{next(_ids)}",
        "repository": REPO,
        "data": data,
        "occurred_at": occurred,
        "sha": data.get("sha", ""),
        "branch": data.get("branch", ""),
        "tag": data.get("tag", ""),
    }


def cci_job(
    name: str, status: str, *, number: int, minutes: float, workflow: str = WORKFLOW, **extra: Any
) -> dict[str, Any]:
    """Return a CircleCI job-completed event of the tag pipeline (no branch, no tag)."""
    conclusion = {"success": "success", "failed": "failure"}[status]
    return event(
        "circleci",
        "job",
        key=f"cci:{workflow}:{name}",
        minutes=minutes,
        name=name,
        status=status,
        conclusion=conclusion,
        run_id=workflow,
        workflow_name="build-and-deploy",
        pipeline_id=PIPELINE,
        pipeline_number=7578,
        job_id=f"{workflow}:{name}",
        job_number=number,
        started_at=minutes - 5,
        completed_at=minutes,
        sha=SHA,
        url=f"https://app.circleci.com/pipelines/gh/pyodide/pyodide/7578/workflows/{workflow}/jobs/{number}",
        **extra,
    )


def cci_workflow(status: str, *, minutes: float, workflow: str = WORKFLOW) -> dict[str, Any]:
    """Return a CircleCI workflow-completed event of the tag pipeline."""
    conclusion = {"success": "success", "failed": "failure"}[status]
    return event(
        "circleci",
        "workflow_run",
        key=f"cci:{workflow}",
        minutes=minutes,
        name="build-and-deploy",
        status=status,
        conclusion=conclusion,
        run_id=workflow,
        workflow_name="build-and-deploy",
        pipeline_id=PIPELINE,
        pipeline_number=7578,
        started_at=0.5,
        completed_at=minutes,
        sha=SHA,
    )


def gh_run(
    name: str,
    status: str,
    *,
    run_id: int,
    minutes: float,
    trigger: str,
    conclusion: str = "",
    attempt: int = 1,
) -> dict[str, Any]:
    """Return a GitHub workflow_run event for the tag (head_branch is the tag name)."""
    return event(
        "github",
        "workflow_run",
        key=f"gh:run:{run_id}:{attempt}:{status}",
        minutes=minutes,
        name=name,
        status=status,
        conclusion=conclusion,
        run_id=str(run_id),
        attempt=attempt,
        workflow_name=name,
        started_at=minutes if status != "completed" else None,
        completed_at=minutes if status == "completed" else None,
        sha=SHA,
        branch=TAG,
        extra={"event": trigger},
    )


def gh_job(
    name: str,
    workflow: str,
    status: str,
    *,
    job_id: int,
    run_id: int,
    minutes: float,
    conclusion: str = "",
) -> dict[str, Any]:
    """Return a GitHub workflow_job event."""
    return event(
        "github",
        "job",
        key=f"gh:job:{job_id}:{status}",
        minutes=minutes,
        name=name,
        status=status,
        conclusion=conclusion,
        run_id=str(run_id),
        workflow_name=workflow,
        job_id=str(job_id),
        started_at=minutes,
        sha=SHA,
        branch=TAG,
        completed_at=minutes if status == "completed" else None,
    )


def tag_push() -> dict[str, Any]:
    """Return the GitHub push that created the tag."""
    return event("github", "tag", key="gh:push:tag", name=TAG, status="created", sha=SHA, tag=TAG)


def pyodide_story() -> list[dict[str, Any]]:
    """Return the 0.26.2 release: CircleCI blocked by Firefox, GitHub's half shipped."""
    return [
        tag_push(),
        gh_run("main", "completed", run_id=101, minutes=40, trigger="push", conclusion="success"),
        cci_job("build-core", "success", number=108300, minutes=20),
        cci_job("test-core-firefox", "success", number=108390, minutes=50),
        cci_job("check-release-version", "success", number=108301, minutes=2),
        cci_job("test-packages-firefox", "failed", number=108413, minutes=95),
        cci_workflow("failed", minutes=96),
        event(
            "github",
            "release",
            key="gh:release",
            minutes=70,
            name=TAG,
            status="published",
            job_id="165000001",
            tag=TAG,
            completed_at=at(70).isoformat(),
        ),
        gh_run("deploy-release", "in_progress", run_id=202, minutes=71, trigger="release"),
        gh_job(
            "deploy-pyodide-py-pypi",
            "deploy-release",
            "completed",
            job_id=9001,
            run_id=202,
            minutes=75,
            conclusion="success",
        ),
        gh_run(
            "deploy-release",
            "completed",
            run_id=202,
            minutes=76,
            trigger="release",
            conclusion="success",
        ),
    ]


def rerun_story() -> list[dict[str, Any]]:
    """Return the CircleCI rerun from failed that shipped the rest, three days later."""
    later = 3 * 24 * 60
    return [
        cci_job(
            "test-packages-firefox",
            "success",
            number=118001,
            minutes=later,
            workflow=RERUN_WORKFLOW,
        ),
        cci_job(
            "deploy-release", "success", number=118002, minutes=later + 10, workflow=RERUN_WORKFLOW
        ),
        cci_workflow("success", minutes=later + 11, workflow=RERUN_WORKFLOW),
    ]


PYODIDE_POLICY = """
repository = "pyodide/pyodide"

[[deploy]]
platform = "circleci"
name = "deploy-release"
on = "tag"
requires = ["check-release-version", "test-core-firefox", "test-packages-firefox",
            "build-pyodide-debug", "create-xbuild-env", "build-test-pyc-packages"]

[[deploy]]
platform = "github"
name = "deploy-release"
on = "tag"
"""

ADVISORY_FIREFOX = (
    PYODIDE_POLICY
    + """
[jobs]
advisory = ["test-packages-firefox"]
"""
)


def append_all(events: list[dict[str, Any]]) -> None:
    """Append events through the one append path."""
    for kwargs in events:
        stream.append(**kwargs)
