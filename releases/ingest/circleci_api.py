"""Normalise CircleCI API v2 job lists: the jobs its webhooks never report. Pure.

CircleCI sends terminal events only, so a job that never ran (blocked behind a failed job,
not run at all) leaves no trace in the webhooks. `GET /workflow/{id}/job` lists every job of a
workflow with its status and its dependencies; this turns one such list into job facts shaped
like the webhook normaliser's (`Normalised.as_data()`), so that they merge into the same
timeline entries ("circleci:job:<job id>").

The API does not say which commit, branch or tag a workflow ran for; the caller passes what
the stream already knows about the workflow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from releases.ingest.base import Conclusion, Kind, MalformedPayload, Normalised, Reader

EVENT_TYPE = "api.workflow-job"
# Only terminal statuses have a conclusion; blocked, not_run, running, queued, on_hold, ...
# are still (or forever) without an outcome.
_CONCLUSIONS = {
    "success": Conclusion.SUCCESS,
    "failed": Conclusion.FAILURE,
    "canceled": Conclusion.CANCELLED,
    "timedout": Conclusion.TIMED_OUT,
    "infrastructure_fail": Conclusion.INFRASTRUCTURE_FAIL,
    "unauthorized": Conclusion.UNAUTHORIZED,
    "error": Conclusion.ERROR,
    "terminated-unknown": Conclusion.ERROR,
}
# Project slugs abbreviate the VCS; app.circleci.com URLs spell it out.
_APP_VCS = {"gh": "github", "bb": "bitbucket"}
_SLUG = re.compile(r"^(?P<vcs>[^/]+)/(?P<rest>.+)$")


def app_slug_path(project_slug: str) -> str:
    """Return a project slug as app.circleci.com URLs spell it: gh/o/r becomes github/o/r."""
    match = _SLUG.match(project_slug)
    if not match:
        return ""
    return f"{_APP_VCS.get(match['vcs'], match['vcs'])}/{match['rest']}"


def job_url(
    project_slug: str, pipeline_number: int | None, workflow_id: str, number: int | None
) -> str:
    """Return a job's page, built like the webhook's workflow URL plus /jobs/<number>."""
    path = app_slug_path(project_slug)
    if not path or pipeline_number is None or number is None:
        return ""
    return (
        f"https://app.circleci.com/pipelines/{path}/{pipeline_number}"
        f"/workflows/{workflow_id}/jobs/{number}"
    )


def normalise_workflow_jobs(
    *,
    repository: str,
    workflow: Any,
    items: Sequence[Any],
    sha: str = "",
    branch: str = "",
    tag: str = "",
) -> list[dict[str, Any]]:
    """Return one job fact per API item of `workflow` (a GET /workflow/{id} answer).

    Raise MalformedPayload naming the first field that does not have the documented shape.
    """
    wf = Reader(workflow, "workflow")
    workflow_id = wf.id("id")
    workflow_name = wf.opt_text("name")
    pipeline_id = wf.opt_id("pipeline_id")
    pipeline_number = wf.opt_integer("pipeline_number")
    project_slug = wf.opt_text("project_slug")
    # A job that never started has no clock of its own; the workflow's is the nearest.
    workflow_moment = wf.opt_datetime("stopped_at") or wf.opt_datetime("created_at")
    facts = []
    for index, item in enumerate(items):
        job = Reader(item, f"items[{index}]")
        status = job.text("status")
        number = job.opt_integer("job_number")
        started_at = job.opt_datetime("started_at")
        stopped_at = job.opt_datetime("stopped_at")
        dependencies = [dep.raw for dep in job.items("dependencies")]
        if not all(isinstance(dep, str) and dep for dep in dependencies):
            raise MalformedPayload(f"items[{index}].dependencies must be a list of job ids")
        fact = Normalised(
            platform="circleci",
            event_type=EVENT_TYPE,
            kind=Kind.JOB,
            repository=repository,
            name=job.text("name"),
            status=status,
            conclusion=str(_CONCLUSIONS.get(status, "")),
            run_id=workflow_id,
            workflow_name=workflow_name,
            pipeline_id=pipeline_id,
            pipeline_number=pipeline_number,
            job_id=job.id("id"),
            job_number=number,
            started_at=started_at,
            completed_at=stopped_at,
            occurred_at=stopped_at or started_at or workflow_moment,
            url=job_url(project_slug, pipeline_number, workflow_id, number),
            sha=sha,
            branch=branch,
            tag=tag,
            extra={"dependencies": dependencies, "source": "api"},
        )
        facts.append(fact.as_data())
    return facts
