"""Normalise GitHub webhook deliveries (workflow runs and jobs, checks, deployments, refs)."""

from __future__ import annotations

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


def _conclusion(value: str) -> str:
    return value if value in _CONCLUSIONS else ""


class GitHubNormaliser(Normaliser):
    platform = "github"

    def normalise(self, event_type: str, payload: Any) -> Normalised:
        """Return the normalised fact for a GitHub delivery of `event_type` (X-GitHub-Event)."""
        handler = getattr(self, f"_{event_type}", None) if event_type.isidentifier() else None
        if handler is None:
            raise UnrecognisedEvent(f"GitHub event {event_type!r} is not one Shiplog reads")
        body = Reader(payload)
        if not isinstance(payload, dict):
            raise MalformedPayload("body must be a JSON object")
        result: Normalised = handler(body)
        return result

    @staticmethod
    def _repository(body: Reader, required: bool = True) -> str:
        repo = body.obj("repository") if required else body.opt_obj("repository")
        return repo.text("full_name") if repo else ""

    @staticmethod
    def _typed(body: Reader, event: str) -> str:
        action = body.opt_text("action")
        return f"{event}.{action}" if action else event

    def _workflow_run(self, body: Reader) -> Normalised:
        run = body.obj("workflow_run")
        status = run.text("status")
        completed = status == "completed"
        updated_at = run.opt_datetime("updated_at")
        workflow = body.opt_obj("workflow")
        name = run.opt_text("name") or (workflow.opt_text("name") if workflow else "")
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
            started_at=run.opt_datetime("run_started_at") or run.opt_datetime("created_at"),
            completed_at=updated_at if completed else None,
            occurred_at=updated_at or run.opt_datetime("created_at"),
            url=run.opt_text("html_url"),
            sha=run.text("head_sha"),
            branch=run.opt_text("head_branch"),
            extra={
                "event": run.opt_text("event"),
                "path": run.opt_text("path"),
                "workflow_id": run.opt_id("workflow_id"),
                "display_title": run.opt_text("display_title"),
                "previous_attempt_url": run.opt_text("previous_attempt_url"),
            },
        )

    def _workflow_job(self, body: Reader) -> Normalised:
        job = body.obj("workflow_job")
        status = job.text("status")
        failed_step = next(
            (
                {"name": step.opt_text("name"), "number": step.opt_integer("number")}
                for step in job.items("steps")
                if step.opt_text("conclusion") in {"failure", "timed_out", "cancelled"}
            ),
            None,
        )
        completed_at = job.opt_datetime("completed_at")
        deployment = body.opt_obj("deployment")
        extra: dict[str, Any] = {
            "labels": [label.raw for label in job.items("labels") if isinstance(label.raw, str)],
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
            started_at=job.opt_datetime("started_at"),
            completed_at=completed_at,
            occurred_at=completed_at
            or job.opt_datetime("started_at")
            or job.opt_datetime("created_at"),
            url=job.opt_text("html_url"),
            sha=job.text("head_sha"),
            branch=job.opt_text("head_branch"),
            extra=extra,
        )

    def _check_run(self, body: Reader) -> Normalised:
        check = body.obj("check_run")
        suite = check.opt_obj("check_suite")
        app = check.opt_obj("app")
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
            started_at=check.opt_datetime("started_at"),
            completed_at=completed_at,
            occurred_at=completed_at or check.opt_datetime("started_at"),
            url=check.opt_text("html_url") or check.opt_text("details_url"),
            sha=check.text("head_sha"),
            branch=suite.opt_text("head_branch") if suite else "",
            extra={"app": app.opt_text("slug") if app else ""},
        )

    def _check_suite(self, body: Reader) -> Normalised:
        suite = body.obj("check_suite")
        app = suite.opt_obj("app")
        return Normalised(
            platform=self.platform,
            event_type=self._typed(body, "check_suite"),
            kind=Kind.CHECK_SUITE,
            repository=self._repository(body),
            name=app.opt_text("name") if app else "",
            status=suite.opt_text("status"),
            conclusion=_conclusion(suite.opt_text("conclusion")),
            pipeline_id=suite.id("id"),
            occurred_at=suite.opt_datetime("updated_at") or suite.opt_datetime("created_at"),
            sha=suite.text("head_sha"),
            branch=suite.opt_text("head_branch"),
            extra={"app": app.opt_text("slug") if app else ""},
        )

    def _deployment_fields(self, deployment: Reader, body: Reader) -> dict[str, Any]:
        ref: str = deployment.opt_text("ref")
        branch, tag = split_ref(ref) if ref.startswith("refs/") else (ref, "")
        run = body.opt_obj("workflow_run")
        return {
            "repository": self._repository(body),
            "name": deployment.opt_text("environment"),
            "run_id": run.opt_id("id") if run else "",
            "sha": deployment.text("sha"),
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
                "target_commitish": release.opt_text("target_commitish"),
                "draft": release.opt_bool("draft"),
                "prerelease": release.opt_bool("prerelease"),
            },
        )

    def _push(self, body: Reader) -> Normalised:
        ref = body.text("ref")
        branch, tag = split_ref(ref)
        deleted = bool(body.opt_bool("deleted"))
        created = bool(body.opt_bool("created"))
        after = body.opt_text("after")
        head = body.opt_obj("head_commit")
        return Normalised(
            platform=self.platform,
            event_type="push",
            kind=Kind.TAG if tag else Kind.PUSH,
            repository=self._repository(body),
            name=tag or branch,
            status="deleted" if deleted else "created" if created else "pushed",
            occurred_at=head.opt_datetime("timestamp") if head else None,
            url=body.opt_text("compare"),
            sha=body.opt_text("before") if deleted else after,
            branch=branch,
            tag=tag,
            extra={
                "ref": ref,
                "before": body.opt_text("before"),
                "forced": body.opt_bool("forced"),
            },
        )

    def _ref_event(self, body: Reader, event: str) -> Normalised:
        ref_type = body.text("ref_type")
        ref = body.text("ref")
        is_tag = ref_type == "tag"
        return Normalised(
            platform=self.platform,
            event_type=event,
            kind=Kind.TAG if is_tag else Kind.PUSH,
            repository=self._repository(body),
            name=ref,
            status="created" if event == "create" else "deleted",
            branch="" if is_tag else ref,
            tag=ref if is_tag else "",
            extra={"ref_type": ref_type},
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
            extra={"hook_id": body.opt_id("hook_id"), "zen": body.opt_text("zen")},
        )
