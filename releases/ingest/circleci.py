"""Normalise CircleCI outbound webhook deliveries (workflow-completed, job-completed, ping)."""

from __future__ import annotations

import re
from typing import Any

from releases.ingest.base import (
    Conclusion,
    Kind,
    MalformedPayload,
    Normalised,
    Normaliser,
    Reader,
    UnrecognisedEvent,
)

# Webhook statuses, plus the API's words for the same outcomes (gap filling reads the API).
_CONCLUSIONS = {
    "success": Conclusion.SUCCESS,
    "failed": Conclusion.FAILURE,
    "error": Conclusion.ERROR,
    "canceled": Conclusion.CANCELLED,
    "cancelled": Conclusion.CANCELLED,
    "unauthorized": Conclusion.UNAUTHORIZED,
    "timedout": Conclusion.TIMED_OUT,
    "infrastructure_fail": Conclusion.INFRASTRUCTURE_FAIL,
    "not_run": Conclusion.SKIPPED,
}
_REPO_URL = re.compile(
    r"^(?:https?://|git@)[^/:]+[/:](?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?$"
)
_NAMED_SLUG = re.compile(r"^(?:gh|github|bb|bitbucket)/(?P<owner>[^/]+)/(?P<name>[^/]+)$")


def repository_from_url(url: str) -> str:
    """Return `owner/name` from a repository URL such as https://github.com/pyodide/pyodide."""
    match = _REPO_URL.match(url.strip())
    return f"{match['owner']}/{match['name']}" if match else ""


def repository_from_slug(slug: str) -> str:
    """Return `owner/name` from a project slug such as gh/pyodide/pyodide; "" when opaque."""
    match = _NAMED_SLUG.match(slug)
    return f"{match['owner']}/{match['name']}" if match else ""


class CircleCINormaliser(Normaliser):
    platform = "circleci"

    def normalise(self, event_type: str, payload: Any) -> Normalised:
        """Return the normalised fact for a CircleCI delivery (`circleci-event-type`)."""
        if event_type not in {"workflow-completed", "job-completed", "ping"}:
            raise UnrecognisedEvent(f"CircleCI event {event_type!r} is not one Shiplog reads")
        if not isinstance(payload, dict):
            raise MalformedPayload("body must be a JSON object")
        body = Reader(payload)
        body.id("id")
        declared = body.opt_text("type")
        if declared and declared != event_type:
            raise MalformedPayload(
                f"body type {declared!r} does not match circleci-event-type {event_type!r}"
            )
        if event_type == "ping":
            return Normalised(
                platform=self.platform,
                event_type="ping",
                kind=Kind.PING,
                status="ping",
                occurred_at=body.opt_datetime("happened_at"),
                extra=self._webhook(body),
            )
        return self._completed(event_type, body)

    @staticmethod
    def _webhook(body: Reader) -> dict[str, Any]:
        webhook = body.opt_obj("webhook")
        return {"webhook_id": webhook.opt_id("id") if webhook else ""}

    def _completed(self, event_type: str, body: Reader) -> Normalised:
        pipeline = body.obj("pipeline")
        project = body.opt_obj("project")
        # GitLab job-completed samples omit the workflow; everything else carries it.
        workflow = (
            body.obj("workflow") if event_type == "workflow-completed" else body.opt_obj("workflow")
        )
        slug = project.opt_text("slug") if project else ""
        sha, branch, tag, repo_url = self._revision(pipeline)
        repository = repository_from_url(repo_url) or repository_from_slug(slug)
        trigger = pipeline.opt_obj("trigger")
        common: dict[str, Any] = {
            "platform": self.platform,
            "event_type": event_type,
            "repository": repository,
            "run_id": workflow.id("id") if workflow else "",
            "workflow_name": workflow.opt_text("name") if workflow else "",
            "pipeline_id": pipeline.id("id"),
            "pipeline_number": pipeline.opt_integer("number"),
            "occurred_at": body.datetime("happened_at"),
            "sha": sha,
            "branch": branch,
            "tag": tag,
        }
        extra = {
            "project_slug": slug,
            "trigger": trigger.opt_text("type") if trigger else "",
            "pipeline_created_at": pipeline.opt_text("created_at"),
            **self._webhook(body),
        }
        if event_type == "workflow-completed":
            assert workflow is not None
            status = workflow.text("status")
            return Normalised(
                kind=Kind.WORKFLOW_RUN,
                name=workflow.text("name"),
                status=status,
                conclusion=str(_CONCLUSIONS.get(status, "")),
                started_at=workflow.opt_datetime("created_at"),
                completed_at=workflow.opt_datetime("stopped_at"),
                url=workflow.opt_text("url"),
                extra=extra,
                **common,
            )
        job = body.obj("job")
        status = job.text("status")
        number = job.opt_integer("number")
        workflow_url = workflow.opt_text("url") if workflow else ""
        return Normalised(
            kind=Kind.JOB,
            name=job.text("name"),
            status=status,
            conclusion=str(_CONCLUSIONS.get(status, "")),
            job_id=job.id("id"),
            job_number=number,
            started_at=job.opt_datetime("started_at"),
            completed_at=job.opt_datetime("stopped_at"),
            url=f"{workflow_url}/jobs/{number}" if workflow_url and number is not None else "",
            extra=extra,
            **common,
        )

    @staticmethod
    def _revision(pipeline: Reader) -> tuple[str, str, str, str]:
        """Return (sha, branch, tag, repository URL) from either payload variant.

        OAuth projects carry `pipeline.vcs`; GitHub App and GitLab projects carry
        `pipeline.trigger_parameters` instead. A tag pipeline's `vcs` may have null branch
        and commit fields and no `tag` key at all: the release joins it by SHA later.
        """
        vcs = pipeline.opt_obj("vcs")
        if vcs is not None:
            return (
                vcs.opt_text("revision"),
                vcs.opt_text("branch"),
                vcs.opt_text("tag"),
                vcs.opt_text("target_repository_url") or vcs.opt_text("origin_repository_url"),
            )
        params = pipeline.opt_obj("trigger_parameters")
        git = params.opt_obj("git") if params else None
        if git is None:
            return "", "", "", ""
        provider_url = ""
        for provider in ("github_app", "gitlab", "bitbucket"):
            info = params.opt_obj(provider) if params else None
            if info is not None:
                provider_url = info.opt_text("repo_url") or info.opt_text("web_url")
                break
        return (
            git.opt_text("checkout_sha") or git.opt_text("commit_sha"),
            git.opt_text("branch"),
            git.opt_text("tag"),
            git.opt_text("repo_url") or provider_url or git.opt_text("checkout_url"),
        )
