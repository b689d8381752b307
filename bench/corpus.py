"""The comparison suite's payload corpus: GitHub `workflow_job` and CircleCI `job-completed`.

Three sizes for each platform, as the platforms send them:

- "1k": a GitHub job that just started (repository and sender cut to the fields Shiplog reads);
  a CircleCI job of a commit with a one-line message.
- "8k": a finished GitHub job with its steps, the full repository, sender and organization;
  a CircleCI job of a release commit whose message carries its changelog.
- "32k": the same GitHub job with a long steps list (a release job building every package);
  the CircleCI job of a release commit with the full changelog of a minor version.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from bench.payloads import REPOSITORY, SHA, workflow_job

SIZES = {"1k": 1024, "8k": 8 * 1024, "32k": 32 * 1024}
PLATFORMS = ("github", "circleci")
CIRCLECI_EVENT = "job-completed"
GITHUB_EVENT = "workflow_job"

_CIRCLECI_JOB: dict[str, Any] = {
    "happened_at": "2024-07-26T14:22:58.731406Z",
    "pipeline": {
        "id": "1d7b3e9f-4a62-4c05-a9d8-5e2c7f0b3a14",
        "number": 7577,
        "created_at": "2024-07-26T13:54:44.318Z",
        "trigger": {"type": "webhook"},
        "vcs": {
            "provider_name": "github",
            "origin_repository_url": f"https://github.com/{REPOSITORY}",
            "target_repository_url": f"https://github.com/{REPOSITORY}",
            "revision": SHA,
            "commit": {
                "subject": "Version 0.26.2",
                "body": "",
                "author": {"name": "Hood Chatham", "email": "hoodmane@users.noreply.github.com"},
                "authored_at": "2024-07-26T13:54:30Z",
                "committer": {
                    "name": "Hood Chatham",
                    "email": "hoodmane@users.noreply.github.com",
                },
                "committed_at": "2024-07-26T13:54:30Z",
            },
            "branch": "0.26.X",
        },
    },
    "webhook": {"id": "9b0f2c8e-5d41-4a7b-8e36-1f4c2a9d7b05", "name": "shiplog"},
    "type": CIRCLECI_EVENT,
    "organization": {"id": "a3f81c2d-0b67-4e94-8d5a-6c2e9f1b4a73", "name": "pyodide"},
    "workflow": {
        "id": "58c2e71a-3f9d-4b06-a4e8-9d1c6b2f0e37",
        "name": "build-and-deploy",
        "created_at": "2024-07-26T13:54:44.507Z",
        "stopped_at": "2024-07-26T16:02:11.401Z",
        "url": f"https://app.circleci.com/pipelines/github/{REPOSITORY}/7577/workflows/"
        "58c2e71a-3f9d-4b06-a4e8-9d1c6b2f0e37",
    },
    "project": {
        "id": "e2b7c4d1-6a39-4f85-9c0e-3d8a1b5f7e26",
        "name": "pyodide",
        "slug": f"gh/{REPOSITORY}",
    },
    "id": "b81c5e3a-6f29-3d47-8a0e-4c7d2f9b1e65",
    "job": {
        "id": "d5a9c2e7-3b16-4f80-9e4d-1a7c6b3f8e29",
        "name": "build-core",
        "started_at": "2024-07-26T13:55:02.118Z",
        "stopped_at": "2024-07-26T14:22:58.604Z",
        "status": "success",
        "number": 108371,
    },
}
_CHANGELOG_ENTRIES = [
    "{{ Fix }} `pyodide.loadPackage` no longer downloads a package twice when two calls race.",
    "{{ Enhancement }} Updated the Emscripten toolchain; the wheels are rebuilt against it.",
    "{{ Fix }} `micropip.install` reports the missing dependency instead of a KeyError.",
    "{{ Enhancement }} `pyodide.mountNativeFS` syncs in the background on Chromium.",
    "{{ Fix }} The REPL loads again when the CDN answers with a redirect.",
    "{{ Breaking }} Dropped the deprecated `pyodide.isPyProxy`; use `instanceof PyProxy`.",
    "{{ Enhancement }} New packages: `pyxel`, `rasterio`, `tiktoken`; updated `numpy` to 2.0.",
]


def _changelog(target: int) -> str:
    lines = ["Changelog since 0.26.1:", ""]
    number = 0
    while sum(len(line) + 1 for line in lines) < target:
        entry = _CHANGELOG_ENTRIES[number % len(_CHANGELOG_ENTRIES)]
        lines.append(f"- {entry} (#{4800 + number})")
        number += 1
    return "\n".join(lines)


def circleci_job(size: str) -> dict[str, Any]:
    """Return a CircleCI `job-completed` payload of about `size` ("1k", "8k" or "32k")."""
    payload = copy.deepcopy(_CIRCLECI_JOB)
    if size != "1k":
        # The rest of the payload is about 1.8 KB; the commit message makes up the difference.
        payload["pipeline"]["vcs"]["commit"]["body"] = _changelog(SIZES[size] - 1900)
    return payload


def github_job(size: str) -> dict[str, Any]:
    """Return a GitHub `workflow_job` payload of about `size` ("1k", "8k" or "32k")."""
    if size == "1k":
        return workflow_job("small")
    payload = workflow_job("large")
    if size == "32k":
        steps = payload["workflow_job"]["steps"]
        template = steps[3]
        while len(orjson.dumps(payload)) < SIZES[size]:
            number = len(steps) + 1
            steps.insert(-1, {**template, "name": f"Build package {number:03d}", "number": number})
        steps[-1]["number"] = len(steps)
    return payload


def payload(platform: str, size: str) -> dict[str, Any]:
    """Return the corpus payload for `platform` ("github" or "circleci") and `size`."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    return github_job(size) if platform == "github" else circleci_job(size)


def event_type(platform: str) -> str:
    """Return the event type (GitHub's X-GitHub-Event, CircleCI's `type`) of the corpus."""
    return GITHUB_EVENT if platform == "github" else CIRCLECI_EVENT
