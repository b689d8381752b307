"""Fake CircleCI API v2 and GitHub REST servers: real HTTP on 127.0.0.1, in a background thread.

Each speaks the documented shapes of the calls Shiplog makes, records every request (method,
path, query, headers, JSON body), and can be scripted per route: `script(method, path, *replies)`
queues replies (status, JSON, headers, optional delay) that are served before the route's
default behaviour, so a test can stage a 429 with Retry-After, a 404, a 422 or a 5xx.
"""

from __future__ import annotations

import collections
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import pytest

_NO_BODY = object()


@dataclass
class Reply:
    """One scripted answer. `json` is sent as the body unless it is left out (no body)."""

    status: int = 200
    json: Any = _NO_BODY
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering, to provoke client timeouts
    raw: bytes | None = None  # a body that is not JSON


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    json: Any


Route = tuple[str, re.Pattern[str], Callable[..., Reply]]


class FakeServer:
    """A scripted HTTP server; subclasses add the routes of one platform."""

    prefix = ""  # the path the API lives under, as in https://circleci.com/api/v2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every request, script and piece of state, as if freshly started."""
        self.requests: list[Recorded] = []
        self._scripts: dict[tuple[str, str], collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def origin(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """Return the API's base URL, as the settings take it."""
        return self.origin + self.prefix

    # -- scripting and inspection ------------------------------------------------------
    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Serve `replies`, in order, to the next requests of `method path` (path sans prefix)."""
        with self._lock:
            self._scripts[(method.upper(), path)].extend(replies)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Return the recorded requests, optionally of one method and path (sans prefix)."""
        with self._lock:
            found = list(self.requests)
        return [
            r
            for r in found
            if (method is None or r.method == method.upper()) and (path is None or r.path == path)
        ]

    # -- dispatch ------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return []

    def handle(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            queue = self._scripts.get((recorded.method, recorded.path))
            scripted = queue.popleft() if queue else None
        if scripted is not None:
            return scripted
        for method, pattern, action in self.routes():
            match = pattern.fullmatch(recorded.path)
            if method == recorded.method and match:
                return action(recorded, **match.groupdict())
        return Reply(404, {"message": "Not Found"})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _serve(self) -> None:
        split = urlsplit(self.path)
        path = split.path
        if self.fake.prefix and path.startswith(self.fake.prefix):
            path = path[len(self.fake.prefix) :]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", errors="replace")
        recorded = Recorded(
            method=self.command,
            path=path,
            query=parse_qs(split.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            json=body,
        )
        reply = self.fake.handle(recorded)
        if reply.delay:
            time.sleep(reply.delay)
        payload = reply.raw if reply.raw is not None else b""
        if reply.raw is None and reply.json is not _NO_BODY:
            payload = orjson.dumps(reply.json)
        try:
            self.send_response(reply.status)
            if reply.raw is None and reply.json is not _NO_BODY:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, which is what a timeout test provokes

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class FakeCircleCI(FakeServer):
    """CircleCI API v2: workflows, their jobs (paginated), pipelines, reruns.

    Requests without a Circle-Token header are answered 401, as CircleCI does.
    """

    prefix = "/api/v2"

    def reset(self) -> None:
        super().reset()
        self.page_size = 20
        self.workflows: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, list[dict[str, Any]]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.reruns: list[str] = []

    def add_workflow(self, workflow: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """Serve `workflow` (GET /workflow/{id}) and its job items (GET /workflow/{id}/job)."""
        self.workflows[workflow["id"]] = workflow
        self.jobs[workflow["id"]] = jobs

    def routes(self) -> list[Route]:
        return [
            ("POST", re.compile(r"/workflow/(?P<wid>[^/]+)/rerun"), self._rerun),
            ("GET", re.compile(r"/workflow/(?P<wid>[^/]+)/job"), self._jobs),
            ("GET", re.compile(r"/workflow/(?P<wid>[^/]+)"), self._workflow),
            ("GET", re.compile(r"/pipeline/(?P<pid>[^/]+)"), self._pipeline),
        ]

    def handle(self, recorded: Recorded) -> Reply:
        if not recorded.headers.get("circle-token"):
            with self._lock:
                self.requests.append(recorded)
            return Reply(401, {"message": "You must log in first."})
        return super().handle(recorded)

    def _rerun(self, request: Recorded, wid: str) -> Reply:
        if wid not in self.workflows:
            return Reply(404, {"message": "Workflow not found"})
        body = request.json if isinstance(request.json, dict) else {}
        if body.get("from_failed") and body.get("jobs"):
            return Reply(400, {"message": "from_failed and jobs are mutually exclusive"})
        new_id = str(uuid.uuid4())
        self.reruns.append(new_id)
        return Reply(202, {"workflow_id": new_id})

    def _jobs(self, request: Recorded, wid: str) -> Reply:
        if wid not in self.jobs:
            return Reply(404, {"message": "Workflow not found"})
        start = int((request.query.get("page-token") or ["0"])[0])
        items = self.jobs[wid][start : start + self.page_size]
        more = start + self.page_size < len(self.jobs[wid])
        return Reply(
            200, {"items": items, "next_page_token": str(start + self.page_size) if more else None}
        )

    def _workflow(self, request: Recorded, wid: str) -> Reply:
        if wid not in self.workflows:
            return Reply(404, {"message": "Workflow not found"})
        return Reply(200, self.workflows[wid])

    def _pipeline(self, request: Recorded, pid: str) -> Reply:
        if pid not in self.pipelines:
            return Reply(404, {"message": "Pipeline not found"})
        return Reply(200, self.pipelines[pid])


class FakeGitHub(FakeServer):
    """GitHub REST: re-run failed jobs, workflow dispatch, hook deliveries and redelivery.

    `workflows` names the dispatchable workflows (file names or ids) per "owner/repo";
    `run_details` False plays a GitHub Enterprise server that refuses `return_run_details`.
    Requests without `Authorization: Bearer` are answered 401.
    """

    def reset(self) -> None:
        super().reset()
        self.page_size = 100
        self.workflows: dict[str, set[str]] = collections.defaultdict(set)
        self.runs: dict[str, set[str]] = collections.defaultdict(set)
        self.deliveries: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.run_details = True
        self._next_run = 900_000

    def routes(self) -> list[Route]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        return [
            (
                "POST",
                re.compile(repo + r"/actions/runs/(?P<run>[^/]+)/rerun-failed-jobs"),
                self._rerun_failed,
            ),
            (
                "POST",
                re.compile(repo + r"/actions/workflows/(?P<workflow>[^/]+)/dispatches"),
                self._dispatch,
            ),
            ("GET", re.compile(repo + r"/hooks/(?P<hook>[^/]+)/deliveries"), self._deliveries),
            (
                "POST",
                re.compile(
                    repo + r"/hooks/(?P<hook>[^/]+)/deliveries/(?P<delivery>[^/]+)/attempts"
                ),
                self._redeliver,
            ),
        ]

    def handle(self, recorded: Recorded) -> Reply:
        if not recorded.headers.get("authorization", "").startswith("Bearer "):
            with self._lock:
                self.requests.append(recorded)
            return Reply(401, {"message": "Requires authentication"})
        return super().handle(recorded)

    @staticmethod
    def _not_found(doc: str) -> Reply:
        return Reply(
            404,
            {"message": "Not Found", "documentation_url": f"https://docs.github.com/rest/{doc}"},
        )

    def _rerun_failed(self, request: Recorded, owner: str, repo: str, run: str) -> Reply:
        if run not in self.runs[f"{owner}/{repo}"]:
            return self._not_found("actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run")
        return Reply(201, {})

    def _dispatch(self, request: Recorded, owner: str, repo: str, workflow: str) -> Reply:
        if workflow not in self.workflows[f"{owner}/{repo}"]:
            return self._not_found("actions/workflows#create-a-workflow-dispatch-event")
        body = request.json if isinstance(request.json, dict) else {}
        if "return_run_details" in body and not self.run_details:
            return Reply(
                400, {"message": 'Invalid request.\n\n"return_run_details" is not a permitted key.'}
            )
        if not isinstance(body.get("ref"), str):
            return Reply(422, {"message": 'Invalid request.\n\n"ref" wasn\'t supplied.'})
        if body.get("return_run_details"):
            self._next_run += 1
            run = self._next_run
            api = f"{self.url}/repos/{owner}/{repo}/actions/runs/{run}"
            html = f"https://github.com/{owner}/{repo}/actions/runs/{run}"
            return Reply(200, {"workflow_run_id": run, "run_url": api, "html_url": html})
        return Reply(204)

    def _deliveries(self, request: Recorded, owner: str, repo: str, hook: str) -> Reply:
        deliveries = self.deliveries.get((f"{owner}/{repo}", hook))
        if deliveries is None:
            return self._not_found("repos/webhooks#list-deliveries-for-a-repository-webhook")
        per_page = int((request.query.get("per_page") or [str(self.page_size)])[0])
        start = int((request.query.get("cursor") or ["0"])[0])
        page = deliveries[start : start + per_page]
        headers = {}
        if start + per_page < len(deliveries):
            query = urlencode({"per_page": per_page, "cursor": start + per_page})
            link = f"{self.url}/repos/{owner}/{repo}/hooks/{hook}/deliveries?{query}"
            headers["Link"] = f'<{link}>; rel="next"'
        return Reply(200, page, headers)

    def _redeliver(
        self, request: Recorded, owner: str, repo: str, hook: str, delivery: str
    ) -> Reply:
        known = self.deliveries.get((f"{owner}/{repo}", hook), [])
        if not any(str(d.get("id")) == delivery for d in known):
            return self._not_found("repos/webhooks#redeliver-a-delivery-for-a-repository-webhook")
        return Reply(202, {})


# One server per platform for the whole session (starting and stopping one per test costs
# half a second each); every test gets it reset and the settings pointed at it.
@pytest.fixture(scope="session")
def _circleci_server() -> Iterator[FakeCircleCI]:
    server = FakeCircleCI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _github_server() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    yield server
    server.stop()


@pytest.fixture
def fake_circleci(_circleci_server: FakeCircleCI, settings: Any) -> FakeCircleCI:
    """Return a fake CircleCI API, freshly reset, with SHIPLOG_CIRCLECI_API_URL pointing at it."""
    _circleci_server.reset()
    settings.SHIPLOG_CIRCLECI_API_URL = _circleci_server.url
    return _circleci_server


@pytest.fixture
def fake_github(_github_server: FakeGitHub, settings: Any) -> FakeGitHub:
    """Return a fake GitHub API, freshly reset, with SHIPLOG_GITHUB_API_URL pointing at it."""
    _github_server.reset()
    settings.SHIPLOG_GITHUB_API_URL = _github_server.url
    return _github_server
