"""Normalise GitHub webhook deliveries (workflow runs and jobs, checks, deployments, refs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from releases.ingest.base import (
    Conclusion,
    Kind,
    MalformedPayload,
    Normalised,
    Normaliser,
    Reader,
    UnrecognisedEvent,
    split_ref,
)

ZERO_SHA = "0" * 40
# GitHub's conclusions already are the shared vocabulary; anything else is kept out of it.
_CONCLUSIONS = {c.value for c in Conclusion}
_DEPLOYMENT_STATE_CONCLUSIONS = {
    "success": Conclusion.SUCCESS,
    "failure": Conclusion.FAILURE,
    "error": Conclusion.ERROR,
    "inactive": Conclusion.NEUTRAL,
}
_FAILED_STEP_CONCLUSIONS = {"failure", "timed_out", "cancelled"}
_RUNNING_OR_DONE = {"in_progress", "completed"}
# Actions are short lower-case words ("completed", "in_progress"); the event type built from
# one is a column of the stream, so anything else is a malformed body.
_ACTION = re.compile(r"[a-z][a-z_]{0,49}")


def _conclusion(value: str) -> str:
    return value if value in _CONCLUSIONS else ""


def _run_ref(head_branch: str, event: str) -> tuple[str, str]:
    """Return (branch, tag) for a run's `head_branch`, given the event that started the run.

    GitHub puts the tag's name in `head_branch` when a tag started the run. A `release` run
    always runs on the release's tag; for a `push` (or a dispatch) the payload does not say
    whether the name is a branch or a tag, so it stays in `branch` and releases join such
    runs by SHA.
    """
    if event == "release":
        return "", head_branch
    return head_branch, ""


class GitHubNormaliser(Normaliser):
    platform = "github"

    def __init__(self) -> None:
        # An explicit table: a name looked up on the instance could reach a helper method.
        self._handlers: dict[str, Callable[[Reader], Normalised]] = {
            "workflow_run": self._workflow_run,
            "workflow_job": self._workflow_job,
            "check_run": self._check_run,
            "check_suite": self._check_suite,
            "deployment": self._deployment,
            "deployment_status": self._deployment_status,
            "release": self._release,
            "push": self._push,
            "create": self._create,
            "delete": self._delete,
            "ping": self._ping,
        }

    @property
    def event_types(self) -> frozenset[str]:
        """Return the X-GitHub-Event values this normaliser reads."""
        return frozenset(self._handlers)

    def normalise(self, event_type: str, payload: Any) -> Normalised:
        """Return the normalised fact for a GitHub delivery of `event_type` (X-GitHub-Event)."""
        handler = self._handlers.get(event_type)
        if handler is None:
            raise UnrecognisedEvent(f"GitHub event {event_type!r} is not one Shiplog reads")
        if not isinstance(payload, dict):
            raise MalformedPayload("body must be a JSON object")
        return handler(Reader(payload))

    @staticmethod
    def _repository(body: Reader, required: bool = True) -> str:
        repo = body.obj("repository") if required else body.opt_obj("repository")
        return repo.repository("full_name") if repo else ""

    @staticmethod
    def _typed(body: Reader, event: str) -> str:
        action = body.opt_text("action")
        if not action:
            return event
        if not _ACTION.fullmatch(action):
            raise MalformedPayload("action must be a lower-case word such as 'completed'")
        return f"{event}.{action}"

    @staticmethod
    def _login(parent: Reader, key: str) -> str:
        user = parent.opt_obj(key)
        return user.opt_text("login") if user else ""

    def _workflow_run(self, body: Reader) -> Normalised:
        run = body.obj("workflow_run")
        status = run.text("status")
        updated_at = run.opt_datetime("updated_at")
        created_at = run.opt_datetime("created_at")
        workflow = body.opt_obj("workflow")
        name = run.opt_text("name") or (workflow.opt_text("name") if workflow else "")
        event = run.opt_text("event")
        head_branch = run.opt_text("head_branch")
        branch, tag = _run_ref(head_branch, event)
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "workflow_run"),
            kind=Kind.WORKFLOW_RUN,
            repository=self._repository(body),
            name=name,
            status=status,
            conclusion=_conclusion(run.opt_text("conclusion")),
            attempt=run.opt_integer("run_attempt") or 1,
            run_id=run.id("id"),
            workflow_name=name,
            pipeline_id=run.opt_id("check_suite_id"),
            pipeline_number=run.opt_integer("run_number"),
            started_at=run.opt_datetime("run_started_at") or created_at,
            completed_at=updated_at if status == "completed" else None,
            occurred_at=updated_at or created_at,
            url=run.opt_text("html_url"),
            sha=run.sha("head_sha"),
            branch=branch,
            tag=tag,
            extra={
                "event": event,
                "head_branch": head_branch,
                "path": run.opt_text("path"),
                "workflow_id": run.opt_id("workflow_id"),
                "display_title": run.opt_text("display_title"),
                "previous_attempt_url": run.opt_text("previous_attempt_url"),
                "triggering_actor": self._login(run, "triggering_actor"),
            },
        )

    def _workflow_job(self, body: Reader) -> Normalised:
        job = body.obj("workflow_job")
        failed_step = next(
            (
                {
                    "name": step.opt_text("name"),
                    "number": step.opt_integer("number"),
                    "conclusion": step.opt_text("conclusion"),
                }
                for step in job.items("steps")
                if step.opt_text("conclusion") in _FAILED_STEP_CONCLUSIONS
            ),
            None,
        )
        status = job.text("status")
        completed_at = job.opt_datetime("completed_at")
        # A queued or waiting job carries its creation time as started_at; it has not run yet.
        started_at = job.opt_datetime("started_at") if status in _RUNNING_OR_DONE else None
        head_branch = job.opt_text("head_branch")
        deployment = body.opt_obj("deployment")
        extra: dict[str, Any] = {
            "head_branch": head_branch,
            "labels": job.texts("labels"),
            "runner_name": job.opt_text("runner_name"),
            "failed_step": failed_step,
        }
        if deployment:
            extra["environment"] = deployment.opt_text("environment")
            extra["deployment_id"] = deployment.opt_id("id")
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "workflow_job"),
            kind=Kind.JOB,
            repository=self._repository(body),
            name=job.text("name"),
            status=status,
            conclusion=_conclusion(job.opt_text("conclusion")),
            attempt=job.opt_integer("run_attempt") or 1,
            run_id=job.id("run_id"),
            workflow_name=job.opt_text("workflow_name"),
            job_id=job.id("id"),
            started_at=started_at,
            completed_at=completed_at,
            occurred_at=completed_at or started_at or job.opt_datetime("created_at"),
            url=job.opt_text("html_url"),
            sha=job.sha("head_sha"),
            # A job does not say which event started its run: see _run_ref.
            branch=head_branch,
            extra=extra,
        )

    def _check_run(self, body: Reader) -> Normalised:
        check = body.obj("check_run")
        suite = check.opt_obj("check_suite")
        app = check.opt_obj("app")
        started_at = check.opt_datetime("started_at")
        completed_at = check.opt_datetime("completed_at")
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "check_run"),
            kind=Kind.CHECK_RUN,
            repository=self._repository(body),
            name=check.text("name"),
            status=check.text("status"),
            conclusion=_conclusion(check.opt_text("conclusion")),
            pipeline_id=suite.opt_id("id") if suite else "",
            job_id=check.id("id"),
            started_at=started_at,
            completed_at=completed_at,
            occurred_at=completed_at or started_at,
            url=check.opt_text("html_url") or check.opt_text("details_url"),
            sha=check.sha("head_sha"),
            branch=suite.opt_text("head_branch") if suite else "",
            extra={
                "app": (app.opt_text("slug") or app.opt_text("name")) if app else "",
                "external_id": check.opt_text("external_id"),
            },
        )

    def _check_suite(self, body: Reader) -> Normalised:
        suite = body.obj("check_suite")
        app = suite.opt_obj("app")
        updated_at = suite.opt_datetime("updated_at")
        status = suite.opt_text("status")
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "check_suite"),
            kind=Kind.CHECK_SUITE,
            repository=self._repository(body),
            name=app.opt_text("name") if app else "",
            status=status,
            conclusion=_conclusion(suite.opt_text("conclusion")),
            pipeline_id=suite.id("id"),
            started_at=suite.opt_datetime("created_at"),
            completed_at=updated_at if status == "completed" else None,
            occurred_at=updated_at or suite.opt_datetime("created_at"),
            sha=suite.sha("head_sha"),
            branch=suite.opt_text("head_branch"),
            extra={
                "app": (app.opt_text("slug") or app.opt_text("name")) if app else "",
                "before": suite.opt_sha("before"),
                "latest_check_runs_count": suite.opt_integer("latest_check_runs_count"),
            },
        )

    def _deployment_fields(self, deployment: Reader, body: Reader) -> dict[str, Any]:
        ref = deployment.opt_text("ref")
        sha = deployment.sha("sha")
        run = body.opt_obj("workflow_run")
        if ref.startswith("refs/"):
            branch, tag = split_ref(ref)
        elif ref.lower() == sha:
            branch, tag = "", ""  # deployed a commit, not a ref
        else:
            # Actions deploys with the short ref name: a tag when a release started the run.
            branch, tag = _run_ref(ref, run.opt_text("event") if run else "")
        return {
            "repository": self._repository(body),
            "name": deployment.opt_text("environment"),
            "run_id": run.opt_id("id") if run else "",
            "attempt": (run.opt_integer("run_attempt") if run else None) or 1,
            "workflow_name": run.opt_text("name") if run else "",
            "sha": sha,
            "branch": branch,
            "tag": tag,
        }

    def _deployment(self, body: Reader) -> Normalised:
        deployment = body.obj("deployment")
        created_at = deployment.opt_datetime("created_at")
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "deployment"),
            kind=Kind.DEPLOYMENT,
            status="created",
            job_id=deployment.id("id"),
            started_at=created_at,
            occurred_at=created_at,
            url=deployment.opt_text("url"),
            extra={
                "deployment_id": deployment.id("id"),
                "ref": deployment.opt_text("ref"),
                "task": deployment.opt_text("task"),
                "production_environment": deployment.opt_bool("production_environment"),
            },
            **self._deployment_fields(deployment, body),
        )

    def _deployment_status(self, body: Reader) -> Normalised:
        status = body.obj("deployment_status")
        deployment = body.obj("deployment")
        state = status.text("state")
        created_at = status.opt_datetime("created_at")
        conclusion = _DEPLOYMENT_STATE_CONCLUSIONS.get(state)
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "deployment_status"),
            kind=Kind.DEPLOYMENT_STATUS,
            status=state,
            conclusion=str(conclusion) if conclusion else "",
            job_id=deployment.id("id"),
            completed_at=created_at if conclusion else None,
            occurred_at=status.opt_datetime("updated_at") or created_at,
            url=status.opt_text("target_url")
            or status.opt_text("log_url")
            or status.opt_text("environment_url"),
            extra={
                "deployment_id": deployment.id("id"),
                "status_id": status.id("id"),
                "environment_url": status.opt_text("environment_url"),
                "description": status.opt_text("description"),
                "ref": deployment.opt_text("ref"),
            },
            **self._deployment_fields(deployment, body),
        )

    def _release(self, body: Reader) -> Normalised:
        release = body.obj("release")
        tag = release.text("tag_name")
        published_at = release.opt_datetime("published_at")
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "release"),
            kind=Kind.RELEASE,
            repository=self._repository(body),
            name=release.opt_text("name") or tag,
            status=body.opt_text("action"),
            job_id=release.id("id"),
            occurred_at=published_at or release.opt_datetime("created_at"),
            completed_at=published_at,
            url=release.opt_text("html_url"),
            tag=tag,
            extra={
                # The branch or commit chosen when the tag was new; ignored for an existing tag.
                "target_commitish": release.opt_text("target_commitish"),
                "draft": release.opt_bool("draft"),
                "prerelease": release.opt_bool("prerelease"),
                "author": self._login(release, "author"),
            },
        )

    def _push(self, body: Reader) -> Normalised:
        ref = body.text("ref")
        branch, tag = split_ref(ref)
        deleted = bool(body.opt_bool("deleted"))
        created = bool(body.opt_bool("created"))
        before = body.opt_sha("before")
        after = body.opt_sha("after")
        head = body.opt_obj("head_commit")
        repo = body.obj("repository")
        return Normalised(
            platform=self.platform,
            event_type="push",
            kind=Kind.TAG if tag else Kind.PUSH,
            repository=repo.repository("full_name"),
            name=tag or branch,
            status="deleted" if deleted else "created" if created else "pushed",
            # When the push happened; a new tag's head commit can be days older.
            occurred_at=repo.opt_instant("pushed_at")
            or (head.opt_datetime("timestamp") if head else None),
            url=body.opt_text("compare"),
            sha=before if deleted else after,
            branch=branch,
            tag=tag,
            extra={
                "ref": ref,
                "before": before,
                "after": after,
                "base_ref": body.opt_text("base_ref"),
                "forced": body.opt_bool("forced"),
                "commits": len(body.items("commits")),
                "pusher": (pusher.opt_text("name") if (pusher := body.opt_obj("pusher")) else ""),
            },
        )

    def _ref_event(self, body: Reader, event: str) -> Normalised:
        ref_type = body.text("ref_type")
        ref = body.text("ref")
        is_tag = ref_type == "tag"
        repo = body.obj("repository")
        return Normalised(
            platform=self.platform,
            event_type=event,
            kind=Kind.TAG if is_tag else Kind.PUSH,
            repository=repo.repository("full_name"),
            name=ref,
            status="created" if event == "create" else "deleted",
            # The payload has no time of its own; the push that made or removed the ref is
            # the repository's latest.
            occurred_at=repo.opt_instant("pushed_at"),
            branch="" if is_tag else ref,
            tag=ref if is_tag else "",
            extra={"ref_type": ref_type, "pusher_type": body.opt_text("pusher_type")},
        )

    def _create(self, body: Reader) -> Normalised:
        return self._ref_event(body, "create")

    def _delete(self, body: Reader) -> Normalised:
        return self._ref_event(body, "delete")

    def _ping(self, body: Reader) -> Normalised:
        hook = body.opt_obj("hook")
        return Normalised(
            platform=self.platform,
            event_type="ping",
            kind=Kind.PING,
            repository=self._repository(body, required=False),
            status="ping",
            occurred_at=hook.opt_datetime("updated_at") if hook else None,
            extra={
                "hook_id": body.opt_id("hook_id"),
                "zen": body.opt_text("zen"),
                "events": hook.texts("events") if hook else [],
            },
        )
