"""Normalise CircleCI outbound webhook deliveries (workflow-completed, job-completed, ping)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from releases.ingest.base import (
    Conclusion,
    Kind,
    MalformedPayload,
    Normalised,
    Normaliser,
    Reader,
    UnrecognisedEvent,
    is_repository_name,
    quoted,
    split_ref,
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
    r"(?:https?://|ssh://)?(?:[^@/]+@)?[^/:@]+[/:](?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?"
)
_NAMED_SLUG = re.compile(r"(?:gh|github|bb|bitbucket)/(?P<owner>[^/]+)/(?P<name>[^/]+)")
# The documented maps of trigger_parameters that describe the repository, by integration.
_PROVIDERS = ("github_app", "gitlab")


def repository_from_url(url: str) -> str:
    """Return `owner/name` from a repository URL such as https://github.com/pyodide/pyodide."""
    match = _REPO_URL.fullmatch(url.strip())
    if not match:
        return ""
    repository = f"{match['owner']}/{match['name']}"
    return repository if is_repository_name(repository) else ""


def repository_from_slug(slug: str) -> str:
    """Return `owner/name` from a project slug such as gh/pyodide/pyodide; "" when opaque."""
    match = _NAMED_SLUG.fullmatch(slug)
    if not match:
        return ""
    repository = f"{match['owner']}/{match['name']}"
    return repository if is_repository_name(repository) else ""


@dataclass(frozen=True, slots=True)
class _Revision:
    sha: str = ""
    branch: str = ""
    tag: str = ""
    repo_url: str = ""
    repository: str = ""  # owner/name when the payload names them apart from any URL
    provider: str = ""
    subject: str = ""


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
                f"body type {quoted(declared)} does not match circleci-event-type {event_type!r}"
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
        revision = self._revision(pipeline)
        # An opaque slug (circleci/<org id>/<project id>) names no repository: "" here, and
        # the service maps it through the repository's registered CircleCI project slug.
        repository = (
            repository_from_url(revision.repo_url)
            or revision.repository
            or repository_from_slug(slug)
        )
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
            "sha": revision.sha,
            "branch": revision.branch,
            "tag": revision.tag,
        }
        extra = {
            "project_slug": slug,
            "trigger": trigger.opt_text("type") if trigger else "",
            "vcs_provider": revision.provider,
            "commit_subject": revision.subject,
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
    def _revision(pipeline: Reader) -> _Revision:
        """Return the commit, ref and repository of a pipeline, from either payload variant.

        OAuth projects carry `pipeline.vcs`; GitHub App, GitLab and Bitbucket Data Center
        projects carry `pipeline.trigger_parameters` instead. A tag pipeline's `vcs` may have
        null branch and commit fields and no `tag` key at all: its tag is then unknown here
        and the release joins the pipeline by SHA.
        """
        vcs = pipeline.opt_obj("vcs")
        if vcs is not None:
            commit = vcs.opt_obj("commit")
            return _Revision(
                sha=vcs.opt_sha("revision"),
                branch=vcs.opt_text("branch"),
                tag=vcs.opt_text("tag"),
                # The target builds the commit; the origin differs only for a fork's PR.
                repo_url=vcs.opt_text("target_repository_url")
                or vcs.opt_text("origin_repository_url"),
                provider=vcs.opt_text("provider_name"),
                subject=commit.opt_text("subject") if commit else "",
            )
        params = pipeline.opt_obj("trigger_parameters")
        if params is None:
            return _Revision()
        git = params.opt_obj("git") or Reader({}, "pipeline.trigger_parameters.git")
        circleci = params.opt_obj("circleci")
        provider_name = next((name for name in _PROVIDERS if params.has(name)), "")
        provider = params.opt_obj(provider_name) if provider_name else None
        provider = provider or Reader({}, "pipeline.trigger_parameters")
        ref = git.opt_text("ref") or provider.opt_text("full_ref") or provider.opt_text("ref")
        ref_branch, ref_tag = split_ref(ref) if ref.startswith("refs/") else ("", "")
        tag = git.opt_text("tag") or ref_tag
        branch = "" if tag else git.opt_text("branch") or provider.opt_text("branch") or ref_branch
        owner = git.opt_text("repo_owner") or provider.opt_text("owner")
        name = git.opt_text("repo_name") or provider.opt_text("repo_name")
        return _Revision(
            sha=git.opt_sha("checkout_sha")
            or provider.opt_sha("checkout_sha")
            or provider.opt_sha("commit_sha"),
            branch=branch,
            tag=tag,
            # GitLab's repo_url is the SSH clone address; its web_url is the project page.
            repo_url=git.opt_text("repo_url")
            or provider.opt_text("web_url")
            or provider.opt_text("repo_url")
            or git.opt_text("checkout_url"),
            repository=f"{owner}/{name}" if is_repository_name(f"{owner}/{name}") else "",
            provider=(circleci.opt_text("trigger_type") if circleci else "") or provider_name,
            subject=git.opt_text("commit_message") or provider.opt_text("commit_title"),
        )
