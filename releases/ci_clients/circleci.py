"""CircleCI API v2: rerun a workflow, read a workflow, its jobs and its pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from releases.ci_clients.base import (
    DEFAULT_RATE_LIMIT_WAIT,
    Call,
    CIClient,
    PermanentFailure,
    segment,
    wait_seconds,
)

# A workflow has a few hundred jobs at most; the bound only stops a looping page token.
MAX_JOB_PAGES = 50


class CircleCIClient(CIClient):
    """CircleCI API v2 with one personal API token (project tokens do not work on v2)."""

    platform = "CircleCI"
    base_url_setting = "SHIPLOG_CIRCLECI_API_URL"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Circle-Token": token, "Accept": "application/json"}

    def rerun_workflow(
        self,
        workflow_id: str,
        *,
        from_failed: bool | None = None,
        jobs: Sequence[str] | None = None,
        sparse_tree: bool | None = None,
    ) -> str:
        """Rerun a workflow from its failed jobs, or only `jobs`; return the new workflow's id.

        `from_failed` and `jobs` are mutually exclusive; without either, rerun from failed.
        `sparse_tree` (with `jobs` only) reruns just those jobs and what they require.
        """
        if from_failed and jobs:
            raise ValueError("from_failed and jobs are mutually exclusive")
        if sparse_tree is not None and not jobs:
            raise ValueError("sparse_tree needs jobs")
        body: dict[str, Any]
        if jobs:
            body = {"jobs": list(jobs)}
            if sparse_tree is not None:
                body["sparse_tree"] = sparse_tree
        else:
            body = {"from_failed": True if from_failed is None else from_failed}
        call = Call(
            f"rerun workflow {workflow_id}",
            not_found="workflow not found: check the workflow id and that the token's user "
            "can see the project",
        )
        answer = self.request(
            "POST",
            f"/workflow/{segment(workflow_id)}/rerun",
            call,
            accept=(200, 201, 202),
            json=body,
        )
        new_id = answer.body.get("workflow_id") if isinstance(answer.body, dict) else None
        if not isinstance(new_id, str) or not new_id:
            raise PermanentFailure(
                answer.status, f"{call.description}: the answer names no new workflow_id"
            )
        return new_id

    def workflow_jobs(self, workflow_id: str, *, max_pages: int = MAX_JOB_PAGES) -> list[Any]:
        """Return every job item of a workflow, following next_page_token."""
        call = Call(
            f"list the jobs of workflow {workflow_id}",
            not_found="workflow not found: check the workflow id and that the token's user "
            "can see the project",
        )
        items: list[Any] = []
        token: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            params = {"page-token": token} if token else None
            answer = self.request(
                "GET", f"/workflow/{segment(workflow_id)}/job", call, params=params
            )
            body = answer.body if isinstance(answer.body, dict) else {}
            page = body.get("items")
            if not isinstance(page, list):
                raise PermanentFailure(answer.status, f"{call.description}: no items list")
            items.extend(page)
            token = body.get("next_page_token") or None
            if not isinstance(token, str) or token in seen:
                break
            seen.add(token)
        return items

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        """Return a workflow: id, name, status, pipeline_id, pipeline_number, project_slug, ..."""
        call = Call(
            f"get workflow {workflow_id}",
            not_found="workflow not found: check the workflow id and that the token's user "
            "can see the project",
        )
        return self._object(self.request("GET", f"/workflow/{segment(workflow_id)}", call), call)

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        """Return a pipeline: id, number, project_slug, state, vcs {revision, branch, tag}, ..."""
        call = Call(
            f"get pipeline {pipeline_id}",
            not_found="pipeline not found: check the pipeline id and that the token's user "
            "can see the project",
        )
        return self._object(self.request("GET", f"/pipeline/{segment(pipeline_id)}", call), call)

    @staticmethod
    def _object(answer: Any, call: Call) -> dict[str, Any]:
        if not isinstance(answer.body, dict):
            raise PermanentFailure(answer.status, f"{call.description}: not a JSON object")
        return answer.body

    def rate_limit_wait(self, response: httpx.Response, message: str) -> float | None:
        if response.status_code != 429:
            return None
        headers = response.headers
        for name in ("Retry-After", "RateLimit-Reset", "X-RateLimit-Reset"):
            # CircleCI's reset headers count seconds until the reset, not an epoch.
            wait = wait_seconds(headers.get(name), self.now())
            if wait is not None:
                return wait
        return DEFAULT_RATE_LIMIT_WAIT

    def permanent_reason(self, response: httpx.Response, call: Call, message: str) -> str:
        status = response.status_code
        said = f" (CircleCI: {message})" if message else ""
        if status == 401:
            return (
                f"{call.description}: CircleCI rejected the token; it must be a valid personal "
                f"API token (project tokens do not work on API v2){said}"
            )
        if status == 403:
            return (
                f"{call.description}: the token's user may not do this; it needs write access "
                f"to the project{said}"
            )
        if status == 404:
            return f"{call.description}: {call.not_found}{said}"
        if status in (400, 422):
            return f"{call.description}: CircleCI refused the request as invalid{said}"
        return f"{call.description}: CircleCI answered {status}{said}"
