"""Build GitHub `workflow_job` payloads with the real shape, in two realistic sizes.

"small" (~1 KB) is a job that just started, with the repository and sender cut to the fields
Shiplog reads; "large" (~8 KB) is a finished job of a Pyodide release as GitHub really sends
it: seven steps, the full repository object with its URL templates, sender, organization.
"""

from __future__ import annotations

from typing import Any

OWNER = "pyodide"
REPOSITORY = f"{OWNER}/pyodide"
API = "https://api.github.com"
SHA = "7e7cadb9cd3863d5bc5e5620532bea369a135552"

# GitHub's repository object carries one URL (template) per API resource: (field, suffix).
_REPO_URLS = [
    ("forks_url", "/forks"),
    ("keys_url", "/keys{/key_id}"),
    ("collaborators_url", "/collaborators{/collaborator}"),
    ("teams_url", "/teams"),
    ("hooks_url", "/hooks"),
    ("issue_events_url", "/issues/events{/number}"),
    ("events_url", "/events"),
    ("assignees_url", "/assignees{/user}"),
    ("branches_url", "/branches{/branch}"),
    ("tags_url", "/tags"),
    ("blobs_url", "/git/blobs{/sha}"),
    ("git_tags_url", "/git/tags{/sha}"),
    ("git_refs_url", "/git/refs{/sha}"),
    ("trees_url", "/git/trees{/sha}"),
    ("statuses_url", "/statuses/{sha}"),
    ("languages_url", "/languages"),
    ("stargazers_url", "/stargazers"),
    ("contributors_url", "/contributors"),
    ("subscribers_url", "/subscribers"),
    ("subscription_url", "/subscription"),
    ("commits_url", "/commits{/sha}"),
    ("git_commits_url", "/git/commits{/sha}"),
    ("comments_url", "/comments{/number}"),
    ("issue_comment_url", "/issues/comments{/number}"),
    ("contents_url", "/contents/{+path}"),
    ("compare_url", "/compare/{base}...{head}"),
    ("merges_url", "/merges"),
    ("archive_url", "/{archive_format}{/ref}"),
    ("downloads_url", "/downloads"),
    ("issues_url", "/issues{/number}"),
    ("pulls_url", "/pulls{/number}"),
    ("milestones_url", "/milestones{/number}"),
    ("notifications_url", "/notifications{?since,all,participating}"),
    ("labels_url", "/labels{/name}"),
    ("releases_url", "/releases{/id}"),
    ("deployments_url", "/deployments"),
]
_USER_URLS = [
    ("followers_url", "/followers"),
    ("following_url", "/following{/other_user}"),
    ("gists_url", "/gists{/gist_id}"),
    ("starred_url", "/starred{/owner}{/repo}"),
    ("subscriptions_url", "/subscriptions"),
    ("organizations_url", "/orgs"),
    ("repos_url", "/repos"),
    ("events_url", "/events{/privacy}"),
    ("received_events_url", "/received_events"),
]
_STEPS = [
    "Set up job",
    "Run actions/checkout@v4",
    "Run actions/setup-python@v5",
    "Install dependencies",
    "Build Pyodide core",
    "Run core tests",
    "Complete job",
]


def _user(login: str, user_id: int, kind: str) -> dict[str, Any]:
    url = f"{API}/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": "MDQ6VXNlcj" + str(user_id),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"https://github.com/{login}",
        **{name: url + suffix for name, suffix in _USER_URLS},
        "type": kind,
        "site_admin": False,
    }


def _full_repository() -> dict[str, Any]:
    url = f"{API}/repos/{REPOSITORY}"
    return {
        "id": 122663163,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjI2NjMxNjM=",
        "name": "pyodide",
        "full_name": REPOSITORY,
        "private": False,
        "owner": _user(OWNER, 37305636, "Organization"),
        "html_url": f"https://github.com/{REPOSITORY}",
        "description": "Pyodide is a Python distribution for the browser and Node.js based on "
        "WebAssembly",
        "fork": False,
        "url": url,
        **{name: url + suffix for name, suffix in _REPO_URLS},
        "created_at": "2018-02-23T19:36:58Z",
        "updated_at": "2024-07-26T13:50:11Z",
        "pushed_at": "2024-07-26T13:54:30Z",
        "git_url": f"git://github.com/{REPOSITORY}.git",
        "ssh_url": f"git@github.com:{REPOSITORY}.git",
        "clone_url": f"https://github.com/{REPOSITORY}.git",
        "svn_url": f"https://github.com/{REPOSITORY}",
        "homepage": "https://pyodide.org/en/stable/",
        "size": 62830,
        "stargazers_count": 11931,
        "watchers_count": 11931,
        "language": "Python",
        "has_issues": True,
        "has_projects": True,
        "has_downloads": True,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": True,
        "forks_count": 816,
        "mirror_url": None,
        "archived": False,
        "disabled": False,
        "open_issues_count": 324,
        "license": {
            "key": "mpl-2.0",
            "name": "Mozilla Public License 2.0",
            "spdx_id": "MPL-2.0",
            "url": f"{API}/licenses/mpl-2.0",
            "node_id": "MDc6TGljZW5zZTE0",
        },
        "allow_forking": True,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": ["python", "webassembly", "pyodide", "emscripten"],
        "visibility": "public",
        "forks": 816,
        "open_issues": 324,
        "watchers": 11931,
        "default_branch": "main",
        "custom_properties": {},
    }


def _step(number: int, name: str, *, failed: bool) -> dict[str, Any]:
    return {
        "name": name,
        "status": "completed",
        "conclusion": "failure" if failed else "success",
        "number": number,
        "started_at": f"2024-07-26T14:{10 + number:02d}:05.000Z",
        "completed_at": f"2024-07-26T14:{11 + number:02d}:01.000Z",
    }


def _job(*, finished: bool, steps: int) -> dict[str, Any]:
    job_id, run_id = 27947813020, 10112640155
    run_url = f"{API}/repos/{REPOSITORY}/actions/runs/{run_id}"
    if finished:
        step_list = [
            _step(i + 1, name, failed=i == steps - 3) for i, name in enumerate(_STEPS[:steps])
        ]
    else:
        step_list = [
            {
                "name": _STEPS[0],
                "status": "in_progress",
                "conclusion": None,
                "number": 1,
                "started_at": "2024-07-26T14:10:05Z",
                "completed_at": None,
            }
        ]
    return {
        "id": job_id,
        "run_id": run_id,
        "workflow_name": "main",
        "head_branch": "0.26.X",
        "run_url": run_url,
        "run_attempt": 1,
        "node_id": "CR_kwDOB0-Uq88AAAAGgcZJfA",
        "head_sha": SHA,
        "url": f"{API}/repos/{REPOSITORY}/actions/jobs/{job_id}",
        "html_url": f"https://github.com/{REPOSITORY}/actions/runs/{run_id}/job/{job_id}",
        "status": "completed" if finished else "in_progress",
        "conclusion": "failure" if finished else None,
        "created_at": "2024-07-26T14:09:58Z",
        "started_at": "2024-07-26T14:10:04Z",
        "completed_at": "2024-07-26T14:26:41Z" if finished else None,
        "name": "build-core (ubuntu-latest)",
        "steps": step_list,
        "check_run_url": f"{API}/repos/{REPOSITORY}/check-runs/{job_id}",
        "labels": ["ubuntu-latest"],
        "runner_id": 12 if finished else 0,
        "runner_name": "GitHub Actions 12",
        "runner_group_id": 2,
        "runner_group_name": "GitHub Actions",
    }


def workflow_job(size: str) -> dict[str, Any]:
    """Return a `workflow_job` payload: "small" (~1 KB) or "large" (~8 KB)."""
    if size == "small":
        return {
            "action": "in_progress",
            "workflow_job": _job(finished=False, steps=1),
            "repository": {"id": 122663163, "full_name": REPOSITORY, "private": False},
            "sender": {"login": "hoodmane", "id": 1939176, "type": "User"},
        }
    if size == "large":
        org_url = f"{API}/orgs/{OWNER}"
        return {
            "action": "completed",
            "workflow_job": _job(finished=True, steps=len(_STEPS)),
            "repository": _full_repository(),
            "organization": {
                "login": OWNER,
                "id": 37305636,
                "node_id": "MDEyOk9yZ2FuaXphdGlvbjM3MzA1NjM2",
                "url": org_url,
                "repos_url": f"{org_url}/repos",
                "events_url": f"{org_url}/events",
                "hooks_url": f"{org_url}/hooks",
                "issues_url": f"{org_url}/issues",
                "members_url": f"{org_url}/members{{/member}}",
                "public_members_url": f"{org_url}/public_members{{/member}}",
                "avatar_url": "https://avatars.githubusercontent.com/u/37305636?v=4",
                "description": "",
            },
            "sender": _user("hoodmane", 1939176, "User"),
        }
    raise ValueError(f"size must be 'small' or 'large', not {size!r}")
