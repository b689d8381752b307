"""GitHub REST: re-run failed jobs, dispatch a workflow, list and redeliver hook deliveries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
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

API_VERSION = "2022-11-28"
# Deliveries are kept three days (seven on GHES); ten pages of 100 cover a busy repository.
MAX_DELIVERY_PAGES = 10


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """A dispatched workflow: its run, when GitHub said which (return_run_details), else None."""

    workflow_run_id: int | None = None
    run_url: str = ""
    html_url: str = ""


def permissions_needed(header: str) -> str:
    """Return X-Accepted-GitHub-Permissions ("actions=write; contents=read") in the UI's words."""
    alternatives = []
    for alternative in header.split(";"):
        names = []
        for pair in alternative.split(","):
            name, _, level = pair.strip().partition("=")
            if name:
                names.append(f"{name.replace('_', ' ').capitalize()}: {level or 'read'}")
        if names:
            alternatives.append(" and ".join(names))
    return " or ".join(alternatives)


_LINK = re.compile(r"<(?P<url>[^>]*)>(?P<params>[^,<]*)")
_REL_NEXT = re.compile(r';\s*rel="?(?:[^";]*\s)?next(?:\s[^";]*)?"?', re.IGNORECASE)


def next_link(header: str) -> str:
    """Return the URL of rel="next" in a Link header, or ""."""
    for match in _LINK.finditer(header):
        if _REL_NEXT.search(match["params"]):
            return match["url"]
    return ""


def _repo(owner: str, repo: str) -> str:
    return f"/repos/{segment(owner)}/{segment(repo)}"


class GitHubClient(CIClient):
    """The GitHub REST API (github.com or GHES) with one token: a PAT or an App token."""

    platform = "GitHub"
    base_url_setting = "SHIPLOG_GITHUB_API_URL"

    def auth_headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }

    def rerun_failed_jobs(
        self, owner: str, repo: str, run_id: int | str, *, enable_debug_logging: bool = False
    ) -> None:
        """Re-run the failed jobs of a workflow run, and the jobs that depend on them."""
        call = Call(
            f"re-run the failed jobs of run {run_id} in {owner}/{repo}",
            not_found="workflow run not found: check the run id and that the token can see "
            "the repository",
            permission="Actions: write",
        )
        self.request(
            "POST",
            f"{_repo(owner, repo)}/actions/runs/{segment(run_id)}/rerun-failed-jobs",
            call,
            accept=(201,),
            json={"enable_debug_logging": enable_debug_logging},
        )

    def dispatch_workflow(
        self,
        owner: str,
        repo: str,
        workflow: int | str,
        ref: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        return_run_details: bool = True,
    ) -> DispatchResult:
        """Start a workflow_dispatch workflow (file name or id) at `ref`.

        With `return_run_details`, github.com answers 200 with the new run; older GitHub
        Enterprise servers refuse the field with a 400, and are asked once more without it.
        """
        call = Call(
            f"dispatch workflow {workflow} at {ref} in {owner}/{repo}",
            not_found="workflow not found: check the workflow file name or id, e.g. "
            "deploy_release.yml, and that the token can see the repository",
            permission="Actions: write",
            unprocessable="bad ref or inputs: check that the ref exists and that the inputs "
            "are ones the workflow's workflow_dispatch declares",
        )
        url = f"{_repo(owner, repo)}/actions/workflows/{segment(workflow)}/dispatches"
        body: dict[str, Any] = {"ref": ref, "inputs": dict(inputs or {})}
        if return_run_details:
            try:
                answer = self.request(
                    "POST", url, call, accept=(200, 204), json={**body, "return_run_details": True}
                )
            except PermanentFailure as exc:
                # A dispatch refused as malformed started nothing, so asking again is safe.
                unknown_field = exc.status == 422 and "return_run_details" in exc.reason
                if exc.status != 400 and not unknown_field:
                    raise
                answer = self.request("POST", url, call, accept=(200, 204), json=body)
        else:
            answer = self.request("POST", url, call, accept=(200, 204), json=body)
        details = answer.body if isinstance(answer.body, dict) else {}
        run_id = details.get("workflow_run_id")
        return DispatchResult(
            workflow_run_id=run_id
            if isinstance(run_id, int) and not isinstance(run_id, bool)
            else None,
            run_url=str(details.get("run_url") or ""),
            html_url=str(details.get("html_url") or ""),
        )

    def list_hook_deliveries(
        self,
        owner: str,
        repo: str,
        hook_id: int | str,
        *,
        per_page: int = 100,
        max_pages: int = MAX_DELIVERY_PAGES,
    ) -> list[Any]:
        """Return a repository hook's recent deliveries, newest first, up to `max_pages` pages.

        Follows Link rel="next", but only to the API's own origin: the token goes with it.
        """
        call = Call(
            f"list deliveries of hook {hook_id} in {owner}/{repo}",
            not_found="hook not found: check the hook id and that the token can see the "
            "repository's webhooks",
            permission="Webhooks: read",
        )
        origin = httpx.URL(self.base_url)
        url = f"{_repo(owner, repo)}/hooks/{segment(hook_id)}/deliveries"
        params: dict[str, str | int] | None = {"per_page": per_page}
        deliveries: list[Any] = []
        for _ in range(max_pages):
            answer = self.request("GET", url, call, params=params)
            if not isinstance(answer.body, list):
                raise PermanentFailure(answer.status, f"{call.description}: not a JSON list")
            deliveries.extend(answer.body)
            following = next_link(answer.headers.get("link", ""))
            if not following:
                break
            target = httpx.URL(following)
            if (target.scheme, target.host, target.port) != (
                origin.scheme,
                origin.host,
                origin.port,
            ):
                raise PermanentFailure(
                    answer.status,
                    f"{call.description}: the next page is on another host ({target.host}); "
                    "not followed, so the token is not sent there",
                )
            url, params = following, None
        return deliveries

    def redeliver(self, owner: str, repo: str, hook_id: int | str, delivery_id: int | str) -> None:
        """Ask GitHub to send a repository hook's delivery again (within its retention)."""
        call = Call(
            f"redeliver delivery {delivery_id} of hook {hook_id} in {owner}/{repo}",
            not_found="hook or delivery not found: deliveries are kept three days (seven on "
            "GHES); check the ids and that the token can see the repository's webhooks",
            permission="Webhooks: write",
        )
        self.request(
            "POST",
            f"{_repo(owner, repo)}/hooks/{segment(hook_id)}/deliveries/{segment(delivery_id)}"
            "/attempts",
            call,
            accept=(202,),
        )

    def rate_limit_wait(self, response: httpx.Response, message: str) -> float | None:
        status = response.status_code
        headers = response.headers
        remaining = headers.get("x-ratelimit-remaining")
        retry_after = headers.get("retry-after")
        limited = status == 429 or (
            status == 403
            and (retry_after is not None or remaining == "0" or "rate limit" in message.lower())
        )
        if not limited:
            return None
        wait = wait_seconds(retry_after, self.now())
        if wait is not None:
            return wait
        reset = headers.get("x-ratelimit-reset")
        if remaining == "0" and reset and reset.isdigit():
            return max(0.0, int(reset) - self.now())
        return DEFAULT_RATE_LIMIT_WAIT

    def permanent_reason(self, response: httpx.Response, call: Call, message: str) -> str:
        status = response.status_code
        said = f" (GitHub: {message})" if message else ""
        if status == 401:
            return (
                f"{call.description}: GitHub rejected the token: it is invalid, expired or "
                f"revoked{said}"
            )
        if status == 403:
            accepted = response.headers.get("x-accepted-github-permissions", "")
            needed = permissions_needed(accepted) or call.permission
            return f"{call.description}: the token lacks a permission; it needs {needed}{said}"
        if status == 404:
            return f"{call.description}: {call.not_found}{said}"
        if status == 422:
            return f"{call.description}: {call.unprocessable or 'unprocessable request'}{said}"
        if status == 400:
            return f"{call.description}: GitHub refused the request as malformed{said}"
        return f"{call.description}: GitHub answered {status}{said}"
