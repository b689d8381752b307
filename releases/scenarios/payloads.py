"""Build webhook bodies in the shapes GitHub and CircleCI document, from a few facts each.

Every body has the keys of the documented examples (see tests/fixtures/README.md); values the
facts do not give (URLs, node ids, counters) are derived from them, so the same facts always
give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Payload = dict[str, Any]

API = "https://api.github.com"
WEB = "https://github.com"
ZERO_SHA = "0" * 40


def github_time(moment: datetime) -> str:
    """Return a moment as GitHub writes it: UTC, whole seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def circleci_time(moment: datetime) -> str:
    """Return a moment as CircleCI writes entity times: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def circleci_happened_at(moment: datetime) -> str:
    """Return a moment as CircleCI writes `happened_at`: UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _legacy_node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def _node_id(prefix: str, number: int) -> str:
    # GitHub's newer node ids are opaque; a digest keeps them stable and distinct.
    digest = base64.urlsafe_b64encode(hashlib.sha256(f"{prefix}{number}".encode()).digest())
    return f"{prefix}_kwDOB0-eW8{digest.decode()[:12]}"


# ----------------------------------------------------------------------------- GitHub


@dataclass(frozen=True)
class GitHubUser:
    """A user, bot or organisation as GitHub embeds it in every payload."""

    login: str
    id: int
    type: str = "User"

    def payload(self) -> Payload:
        """Return the user object."""
        api = f"{API}/users/{self.login}"
        html = f"{WEB}/apps/github-actions" if self.type == "Bot" else f"{WEB}/{self.login}"
        return {
            "login": self.login,
            "id": self.id,
            "node_id": _legacy_node_id(self.type, self.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{self.id}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": self.type,
            "site_admin": False,
        }


@dataclass(frozen=True)
class GitHubOrganization:
    """The organisation that owns a repository."""

    login: str
    id: int
    description: str

    def payload(self) -> Payload:
        """Return the top-level `organization` object."""
        api = f"{API}/orgs/{self.login}"
        return {
            "login": self.login,
            "id": self.id,
            "node_id": _legacy_node_id("Organization", self.id),
            "url": api,
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events",
            "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{self.id}?v=4",
            "description": self.description,
        }

    def as_owner(self) -> GitHubUser:
        """Return the organisation as a repository's owner."""
        return GitHubUser(self.login, self.id, "Organization")


@dataclass(frozen=True)
class GitHubRepository:
    """A repository and what GitHub says about it in each kind of payload."""

    organization: GitHubOrganization
    name: str
    id: int
    description: str
    homepage: str
    language: str
    license: tuple[str, str, str, str]  # key, name, SPDX id, node id
    created_at: datetime
    topics: tuple[str, ...]
    stars: int
    forks: int
    open_issues: int
    size: int
    default_branch: str = "main"

    @property
    def full_name(self) -> str:
        """Return `owner/name`."""
        return f"{self.organization.login}/{self.name}"

    @property
    def html_url(self) -> str:
        """Return the repository's page."""
        return f"{WEB}/{self.full_name}"

    @property
    def api_url(self) -> str:
        """Return the repository's REST API address."""
        return f"{API}/repos/{self.full_name}"

    def _urls(self) -> Payload:
        api = self.api_url
        return {
            "forks_url": f"{api}/forks",
            "keys_url": f"{api}/keys{{/key_id}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "teams_url": f"{api}/teams",
            "hooks_url": f"{api}/hooks",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "events_url": f"{api}/events",
            "assignees_url": f"{api}/assignees{{/user}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "tags_url": f"{api}/tags",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "languages_url": f"{api}/languages",
            "stargazers_url": f"{api}/stargazers",
            "contributors_url": f"{api}/contributors",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "commits_url": f"{api}/commits{{/sha}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "comments_url": f"{api}/comments{{/number}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "merges_url": f"{api}/merges",
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{api}/downloads",
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "labels_url": f"{api}/labels{{/name}}",
            "releases_url": f"{api}/releases{{/id}}",
            "deployments_url": f"{api}/deployments",
        }

    def payload_in_run(self) -> Payload:
        """Return the short form nested in workflow runs (`repository`, `head_repository`)."""
        return {
            "id": self.id,
            "node_id": _legacy_node_id("Repository", self.id),
            "name": self.name,
            "full_name": self.full_name,
            "private": False,
            "owner": self.organization.as_owner().payload(),
            "html_url": self.html_url,
            "description": self.description,
            "fork": False,
            "url": self.api_url,
            **self._urls(),
        }

    def payload(self, *, pushed_at: datetime) -> Payload:
        """Return the top-level `repository` object of every event but `push`."""
        key, name, spdx, node = self.license
        return {
            **self.payload_in_run(),
            "created_at": github_time(self.created_at),
            "updated_at": github_time(pushed_at),
            "pushed_at": github_time(pushed_at),
            "git_url": f"git://github.com/{self.full_name}.git",
            "ssh_url": f"git@github.com:{self.full_name}.git",
            "clone_url": f"{self.html_url}.git",
            "svn_url": self.html_url,
            "homepage": self.homepage,
            "size": self.size,
            "stargazers_count": self.stars,
            "watchers_count": self.stars,
            "language": self.language,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "forks_count": self.forks,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": self.open_issues,
            "license": {
                "key": key,
                "name": name,
                "spdx_id": spdx,
                "url": f"{API}/licenses/{key}",
                "node_id": node,
            },
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": list(self.topics),
            "visibility": "public",
            "forks": self.forks,
            "open_issues": self.open_issues,
            "watchers": self.stars,
            "default_branch": self.default_branch,
            "has_discussions": True,
            "custom_properties": {},
        }

    def payload_in_push(self, *, pushed_at: datetime) -> Payload:
        """Return the `repository` of a push: Unix times, the owner's name and e-mail."""
        body = self.payload(pushed_at=pushed_at)
        body.update(
            owner={"name": self.organization.login, "email": None, **body["owner"]},
            url=self.html_url,
            created_at=int(self.created_at.timestamp()),
            pushed_at=int(pushed_at.timestamp()),
            stargazers=self.stars,
            master_branch=self.default_branch,
        )
        return body


@dataclass(frozen=True)
class Person:
    """A commit's author or committer."""

    name: str
    email: str
    login: str = ""


@dataclass(frozen=True)
class Commit:
    """A commit; `at` carries the author's own UTC offset, as git records it."""

    sha: str
    tree: str
    message: str
    at: datetime
    author: Person
    committer: Person
    modified: tuple[str, ...] = ()

    def payload_in_push(self, repository: GitHubRepository) -> Payload:
        """Return the commit as a push lists it (`commits[]`, `head_commit`)."""
        return {
            "id": self.sha,
            "tree_id": self.tree,
            "distinct": True,
            "message": self.message,
            "timestamp": self.at.isoformat(),
            "url": f"{repository.html_url}/commit/{self.sha}",
            "author": {
                "name": self.author.name,
                "email": self.author.email,
                "username": self.author.login,
            },
            "committer": {
                "name": self.committer.name,
                "email": self.committer.email,
                "username": self.committer.login,
            },
            "added": [],
            "removed": [],
            "modified": list(self.modified),
        }

    def payload_in_run(self) -> Payload:
        """Return the commit as a workflow run's `head_commit`."""
        return {
            "id": self.sha,
            "tree_id": self.tree,
            "message": self.message,
            "timestamp": self.at.isoformat(),
            "author": {"name": self.author.name, "email": self.author.email},
            "committer": {"name": self.committer.name, "email": self.committer.email},
        }


ACTIONS_APP: Payload = {
    "id": 15368,
    "slug": "github-actions",
    "node_id": "MDM6QXBwMTUzNjg=",
    "owner": GitHubUser("github", 9919, "Organization").payload(),
    "name": "GitHub Actions",
    "description": "Automate your workflow from idea to production",
    "external_url": "https://help.github.com/en/actions",
    "html_url": f"{WEB}/apps/github-actions",
    "created_at": "2018-07-30T09:30:17Z",
    "updated_at": "2024-04-10T20:33:16Z",
    "permissions": {
        "actions": "write",
        "checks": "write",
        "contents": "write",
        "deployments": "write",
        "issues": "write",
        "metadata": "read",
        "packages": "write",
        "pages": "write",
        "pull_requests": "write",
        "statuses": "write",
    },
    "events": [
        "check_run",
        "check_suite",
        "create",
        "delete",
        "deployment",
        "deployment_status",
        "push",
        "release",
        "workflow_dispatch",
        "workflow_run",
    ],
}


@dataclass(frozen=True)
class Workflow:
    """A workflow file of a repository."""

    id: int
    name: str
    path: str
    created_at: datetime
    updated_at: datetime

    def payload(self, repository: GitHubRepository) -> Payload:
        """Return the top-level `workflow` object."""
        return {
            "id": self.id,
            "node_id": _node_id("W", self.id),
            "name": self.name,
            "path": self.path,
            "state": "active",
            "created_at": self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "updated_at": self.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "url": f"{repository.api_url}/actions/workflows/{self.id}",
            "html_url": f"{repository.html_url}/blob/{repository.default_branch}/{self.path}",
            "badge_url": f"{repository.html_url}/workflows/{self.name}/badge.svg",
        }


@dataclass(frozen=True)
class WorkflowRun:
    """One attempt of a workflow run: what stays the same across its deliveries."""

    repository: GitHubRepository
    workflow: Workflow
    id: int
    number: int
    event: str
    head_branch: str  # GitHub puts a tag's name here when a tag started the run
    commit: Commit
    check_suite_id: int
    created_at: datetime
    actor: GitHubUser
    display_title: str
    attempt: int = 1
    started_at: datetime | None = None  # a re-run's start; the creation time otherwise
    triggering_actor: GitHubUser | None = None

    @property
    def html_url(self) -> str:
        """Return the run's page."""
        return f"{self.repository.html_url}/actions/runs/{self.id}"

    def payload(self, *, status: str, conclusion: str | None, updated_at: datetime) -> Payload:
        """Return the `workflow_run` object in a given state."""
        api = f"{self.repository.api_url}/actions/runs/{self.id}"
        return {
            "id": self.id,
            "name": self.workflow.name,
            "node_id": _node_id("WFR", self.id),
            "head_branch": self.head_branch,
            "head_sha": self.commit.sha,
            "path": self.workflow.path,
            "display_title": self.display_title,
            "run_number": self.number,
            "event": self.event,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": self.workflow.id,
            "check_suite_id": self.check_suite_id,
            "check_suite_node_id": _node_id("CS", self.check_suite_id),
            "url": api,
            "html_url": self.html_url,
            "pull_requests": [],
            "created_at": github_time(self.created_at),
            "updated_at": github_time(updated_at),
            "actor": self.actor.payload(),
            "run_attempt": self.attempt,
            "referenced_workflows": [],
            "run_started_at": github_time(self.started_at or self.created_at),
            "triggering_actor": (self.triggering_actor or self.actor).payload(),
            "jobs_url": f"{api}/jobs",
            "logs_url": f"{api}/logs",
            "check_suite_url": f"{self.repository.api_url}/check-suites/{self.check_suite_id}",
            "artifacts_url": f"{api}/artifacts",
            "cancel_url": f"{api}/cancel",
            "rerun_url": f"{api}/rerun",
            "previous_attempt_url": f"{api}/attempts/{self.attempt - 1}"
            if self.attempt > 1
            else None,
            "workflow_url": f"{self.repository.api_url}/actions/workflows/{self.workflow.id}",
            "head_commit": self.commit.payload_in_run(),
            "repository": self.repository.payload_in_run(),
            "head_repository": self.repository.payload_in_run(),
        }


def _envelope(
    repository: GitHubRepository, sender: GitHubUser, pushed_at: datetime, **body: Any
) -> Payload:
    return {
        **body,
        "repository": repository.payload(pushed_at=pushed_at),
        "organization": repository.organization.payload(),
        "sender": sender.payload(),
    }


def workflow_run_event(
    run: WorkflowRun,
    action: str,
    *,
    status: str,
    conclusion: str | None,
    updated_at: datetime,
    sender: GitHubUser,
    pushed_at: datetime,
) -> Payload:
    """Return a `workflow_run` delivery (`requested`, `in_progress` or `completed`)."""
    return _envelope(
        run.repository,
        sender,
        pushed_at,
        action=action,
        workflow_run=run.payload(status=status, conclusion=conclusion, updated_at=updated_at),
        workflow=run.workflow.payload(run.repository),
    )


@dataclass(frozen=True)
class WorkflowJob:
    """One job of a workflow run attempt."""

    run: WorkflowRun
    id: int
    name: str
    runner_id: int
    labels: tuple[str, ...] = ("ubuntu-latest",)

    @property
    def html_url(self) -> str:
        """Return the job's page."""
        return f"{self.run.html_url}/job/{self.id}"

    def payload(
        self,
        *,
        status: str,
        conclusion: str | None,
        created_at: datetime,
        started_at: datetime,
        completed_at: datetime | None,
        steps: list[Payload],
    ) -> Payload:
        """Return the `workflow_job` object in a given state; no runner until it runs."""
        repository = self.run.repository
        running = status in {"in_progress", "completed"}
        return {
            "id": self.id,
            "run_id": self.run.id,
            "workflow_name": self.run.workflow.name,
            "head_branch": self.run.head_branch,
            "run_url": f"{repository.api_url}/actions/runs/{self.run.id}",
            "run_attempt": self.run.attempt,
            "node_id": _node_id("CR", self.id),
            "head_sha": self.run.commit.sha,
            "url": f"{repository.api_url}/actions/jobs/{self.id}",
            "html_url": self.html_url,
            "status": status,
            "conclusion": conclusion,
            "created_at": github_time(created_at),
            "started_at": github_time(started_at),
            "completed_at": github_time(completed_at) if completed_at else None,
            "name": self.name,
            "steps": steps,
            "check_run_url": f"{repository.api_url}/check-runs/{self.id}",
            "labels": list(self.labels),
            "runner_id": self.runner_id if running else None,
            "runner_name": f"GitHub Actions {self.runner_id}" if running else None,
            "runner_group_id": 2 if running else None,
            "runner_group_name": "GitHub Actions" if running else None,
        }

    def check_run_payload(
        self, *, status: str, conclusion: str | None, started_at: datetime, completed_at: datetime
    ) -> Payload:
        """Return the check run GitHub keeps for this job."""
        repository = self.run.repository
        api = f"{repository.api_url}/check-runs/{self.id}"
        return {
            "id": self.id,
            "name": self.name,
            "node_id": _node_id("CR", self.id),
            "head_sha": self.run.commit.sha,
            "external_id": hashlib.md5(str(self.id).encode(), usedforsecurity=False).hexdigest(),
            "url": api,
            "html_url": self.html_url,
            "details_url": self.html_url,
            "status": status,
            "conclusion": conclusion,
            "started_at": github_time(started_at),
            "completed_at": github_time(completed_at),
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{api}/annotations",
            },
            "check_suite": {
                "id": self.run.check_suite_id,
                "node_id": _node_id("CS", self.run.check_suite_id),
                "head_branch": self.run.head_branch,
                "head_sha": self.run.commit.sha,
                "status": "in_progress",
                "conclusion": None,
                "url": f"{repository.api_url}/check-suites/{self.run.check_suite_id}",
                "before": ZERO_SHA,
                "after": self.run.commit.sha,
                "pull_requests": [],
                "app": ACTIONS_APP,
                "created_at": github_time(self.run.created_at),
                "updated_at": github_time(started_at),
            },
            "app": ACTIONS_APP,
            "pull_requests": [],
        }


def job_steps(
    names: list[str], started_at: datetime, completed_at: datetime, *, failed: str = ""
) -> list[Payload]:
    """Return `steps[]` for names run one after the other between two moments.

    The step named `failed` fails; the steps after it are skipped, but for `Complete job`.
    """
    span = (completed_at - started_at) / max(len(names), 1)
    steps, outcome = [], "success"
    for number, name in enumerate(names, start=1):
        if outcome == "failure" and name != "Complete job":
            conclusion = "skipped"
        elif name == failed:
            conclusion = outcome = "failure"
        else:
            conclusion = "success"
        begin = started_at + span * (number - 1)
        steps.append(
            {
                "name": name,
                "status": "completed",
                "conclusion": conclusion,
                "number": number,
                "started_at": github_time(begin),
                "completed_at": github_time(begin + span),
            }
        )
    return steps


def running_steps(name: str, started_at: datetime) -> list[Payload]:
    """Return `steps[]` of a job that has just started: its first step running."""
    return [
        {
            "name": name,
            "status": "in_progress",
            "conclusion": None,
            "number": 1,
            "started_at": github_time(started_at),
            "completed_at": None,
        }
    ]


def workflow_job_event(
    job: WorkflowJob,
    action: str,
    *,
    job_payload: Payload,
    sender: GitHubUser,
    pushed_at: datetime,
    deployment: Payload | None = None,
) -> Payload:
    """Return a `workflow_job` delivery; a job that targets an environment has its deployment."""
    extra = {"deployment": deployment} if deployment is not None else {}
    return _envelope(
        job.run.repository,
        sender,
        pushed_at,
        action=action,
        workflow_job=job_payload,
        **extra,
    )


@dataclass(frozen=True)
class Deployment:
    """A deployment GitHub Actions makes for a job with an `environment:`."""

    job: WorkflowJob
    id: int
    environment: str
    created_at: datetime
    creator: GitHubUser

    def payload(self, *, updated_at: datetime) -> Payload:
        """Return the `deployment` object."""
        repository = self.job.run.repository
        api = f"{repository.api_url}/deployments/{self.id}"
        return {
            "url": api,
            "id": self.id,
            "node_id": _node_id("DE", self.id),
            "task": "deploy",
            "original_environment": self.environment,
            "environment": self.environment,
            "description": None,
            "created_at": github_time(self.created_at),
            "updated_at": github_time(updated_at),
            "statuses_url": f"{api}/statuses",
            "repository_url": repository.api_url,
            "creator": self.creator.payload(),
            "sha": self.job.run.commit.sha,
            # Actions deploys the short ref name: the tag, for a release run.
            "ref": self.job.run.head_branch,
            "payload": {},
            "transient_environment": False,
            "production_environment": False,
            "performed_via_github_app": ACTIONS_APP,
        }


def deployment_event(
    deployment: Deployment, *, run_payload: Payload, sender: GitHubUser, pushed_at: datetime
) -> Payload:
    """Return a `deployment` `created` delivery."""
    run = deployment.job.run
    return _envelope(
        run.repository,
        sender,
        pushed_at,
        action="created",
        deployment=deployment.payload(updated_at=deployment.created_at),
        workflow=run.workflow.payload(run.repository),
        workflow_run=run_payload,
    )


def deployment_status_event(
    deployment: Deployment,
    *,
    status_id: int,
    state: str,
    at: datetime,
    environment_url: str,
    check_run: Payload,
    run_payload: Payload,
    sender: GitHubUser,
    pushed_at: datetime,
) -> Payload:
    """Return a `deployment_status` `created` delivery."""
    run = deployment.job.run
    repository = run.repository
    deployment_api = f"{repository.api_url}/deployments/{deployment.id}"
    return _envelope(
        repository,
        sender,
        pushed_at,
        action="created",
        deployment_status={
            "url": f"{deployment_api}/statuses/{status_id}",
            "id": status_id,
            "node_id": _node_id("DES", status_id),
            "state": state,
            "creator": deployment.creator.payload(),
            "description": "",
            "environment": deployment.environment,
            "target_url": deployment.job.html_url,
            "created_at": github_time(at),
            "updated_at": github_time(at),
            "deployment_url": deployment_api,
            "repository_url": repository.api_url,
            "environment_url": environment_url,
            "log_url": deployment.job.html_url,
            "performed_via_github_app": ACTIONS_APP,
        },
        deployment=deployment.payload(updated_at=at),
        check_run=check_run,
        workflow=run.workflow.payload(repository),
        workflow_run=run_payload,
    )


def push_event(
    repository: GitHubRepository,
    *,
    ref: str,
    before: str,
    after: str,
    base_ref: str | None,
    commits: list[Commit],
    head_commit: Commit | None,
    pushed_at: datetime,
    pusher: Person,
    sender: GitHubUser,
) -> Payload:
    """Return a `push` delivery; all-zero `before`/`after` mark a created/deleted ref."""
    created, deleted = before == ZERO_SHA, after == ZERO_SHA
    if created:
        compare = f"{repository.html_url}/compare/{ref.rsplit('/', 1)[-1]}"
    else:
        compare = f"{repository.html_url}/compare/{before[:12]}...{after[:12]}"
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "repository": repository.payload_in_push(pushed_at=pushed_at),
        "pusher": {"name": pusher.login or pusher.name, "email": pusher.email},
        "organization": repository.organization.payload(),
        "sender": sender.payload(),
        "created": created,
        "deleted": deleted,
        "forced": False,
        "base_ref": base_ref,
        "compare": compare,
        "commits": [commit.payload_in_push(repository) for commit in commits],
        "head_commit": head_commit.payload_in_push(repository) if head_commit else None,
    }


def create_event(
    repository: GitHubRepository,
    *,
    ref: str,
    ref_type: str,
    pushed_at: datetime,
    sender: GitHubUser,
) -> Payload:
    """Return a `create` delivery for a new branch or tag."""
    return _envelope(
        repository,
        sender,
        pushed_at,
        ref=ref,
        ref_type=ref_type,
        master_branch=repository.default_branch,
        description=repository.description,
        pusher_type="user",
    )


def release_event(
    repository: GitHubRepository,
    action: str,
    *,
    id: int,
    tag: str,
    target_commitish: str,
    created_at: datetime,
    published_at: datetime,
    author: GitHubUser,
    body: str,
    pushed_at: datetime,
) -> Payload:
    """Return a `release` delivery; a release's `created_at` is its commit's date."""
    api = f"{repository.api_url}/releases/{id}"
    return _envelope(
        repository,
        author,
        pushed_at,
        action=action,
        release={
            "url": api,
            "assets_url": f"{api}/assets",
            "upload_url": (
                f"https://uploads.github.com/repos/{repository.full_name}/releases/{id}"
                "/assets{?name,label}"
            ),
            "html_url": f"{repository.html_url}/releases/tag/{tag}",
            "id": id,
            "author": author.payload(),
            "node_id": _node_id("RE", id),
            "tag_name": tag,
            "target_commitish": target_commitish,
            "name": tag,
            "draft": False,
            "prerelease": False,
            "created_at": github_time(created_at),
            "published_at": github_time(published_at),
            "assets": [],
            "tarball_url": f"{repository.api_url}/tarball/{tag}",
            "zipball_url": f"{repository.api_url}/zipball/{tag}",
            "body": body,
        },
    )


# ----------------------------------------------------------------------------- CircleCI


@dataclass(frozen=True)
class CircleCIProject:
    """A CircleCI project (OAuth: its slug names the repository) and the webhook it sends."""

    slug: str
    id: str
    name: str
    organization_id: str
    organization_name: str
    webhook_id: str
    webhook_name: str
    repository_url: str

    @property
    def app_url(self) -> str:
        """Return the base of the project's pages (`gh/` slugs show as `github/`)."""
        kind, rest = self.slug.split("/", 1)
        return f"https://app.circleci.com/pipelines/{'github' if kind == 'gh' else kind}/{rest}"


def tag_pipeline_vcs(project: CircleCIProject, sha: str) -> Payload:
    """Return `pipeline.vcs` as CircleCI sends it for a tag: no tag key, the rest null."""
    return {
        "provider_name": "github",
        "origin_repository_url": project.repository_url,
        "target_repository_url": project.repository_url,
        "revision": sha,
        "commit": {
            "subject": None,
            "body": None,
            "author": {"name": None, "email": None},
            "authored_at": None,
            "committer": {"name": None, "email": None},
            "committed_at": None,
        },
        "branch": None,
    }


@dataclass(frozen=True)
class CircleCIPipeline:
    """A pipeline: one per push (or API call), holding one or more workflows."""

    project: CircleCIProject
    id: str
    number: int
    created_at: datetime
    vcs: Payload
    trigger: str = "webhook"

    def payload(self) -> Payload:
        """Return the `pipeline` object."""
        return {
            "id": self.id,
            "number": self.number,
            "created_at": circleci_time(self.created_at),
            "trigger": {"type": self.trigger},
            "vcs": self.vcs,
        }


@dataclass(frozen=True)
class CircleCIWorkflow:
    """A workflow of a pipeline; a rerun is another workflow of the same pipeline."""

    pipeline: CircleCIPipeline
    id: str
    name: str
    created_at: datetime

    @property
    def url(self) -> str:
        """Return the workflow's page."""
        return f"{self.pipeline.project.app_url}/{self.pipeline.number}/workflows/{self.id}"

    def payload(self, *, stopped_at: datetime | None, status: str | None) -> Payload:
        """Return the `workflow` object; `status` only in workflow events."""
        body: Payload = {
            "id": self.id,
            "name": self.name,
            "created_at": circleci_time(self.created_at),
            "url": self.url,
        }
        if stopped_at is not None:
            body["stopped_at"] = circleci_time(stopped_at)
        if status is not None:
            body["status"] = status
        return body


def _circleci_envelope(
    event_id: str, kind: str, happened_at: datetime, pipeline: CircleCIPipeline, **body: Any
) -> Payload:
    project = pipeline.project
    return {
        "type": kind,
        "id": event_id,
        "happened_at": circleci_happened_at(happened_at),
        "webhook": {"id": project.webhook_id, "name": project.webhook_name},
        **body,
        "pipeline": pipeline.payload(),
        "project": {"id": project.id, "name": project.name, "slug": project.slug},
        "organization": {"id": project.organization_id, "name": project.organization_name},
    }


def job_completed_event(
    event_id: str,
    workflow: CircleCIWorkflow,
    *,
    job_id: str,
    name: str,
    number: int,
    status: str,
    started_at: datetime,
    stopped_at: datetime,
    happened_at: datetime,
    workflow_stopped_at: datetime | None = None,
) -> Payload:
    """Return a `job-completed` delivery."""
    return _circleci_envelope(
        event_id,
        "job-completed",
        happened_at,
        workflow.pipeline,
        workflow=workflow.payload(stopped_at=workflow_stopped_at, status=None),
        job={
            "id": job_id,
            "name": name,
            "started_at": circleci_time(started_at),
            "stopped_at": circleci_time(stopped_at),
            "status": status,
            "number": number,
        },
    )


def workflow_completed_event(
    event_id: str,
    workflow: CircleCIWorkflow,
    *,
    status: str,
    stopped_at: datetime,
    happened_at: datetime,
) -> Payload:
    """Return a `workflow-completed` delivery."""
    return _circleci_envelope(
        event_id,
        "workflow-completed",
        happened_at,
        workflow.pipeline,
        workflow=workflow.payload(stopped_at=stopped_at, status=status),
    )
