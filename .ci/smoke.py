"""Smoke-test the embedded default: `make run`, one signed webhook stored, the demo, clean stop.

`make run` loads the Pyodide 0.26.2 demo through the webhook endpoints and prints the demo
maintainer's credentials; the dashboard shows the release. A second `make run` on the same
database loads nothing twice.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from releases.deliveries import github_delivery  # noqa: E402

SECRET = "smoke-test-secret"
PING = {
    "zen": "Design for failure.",
    "hook_id": 1,
    "hook": {"type": "Repository", "id": 1, "name": "web", "active": True, "events": ["*"]},
    "repository": {"id": 1, "full_name": "pyodide/pyodide", "name": "pyodide"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(url: str, delivery) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=delivery.body, headers=delivery.headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_for_line(log_path: Path, pattern: str, deadline: float) -> re.Match[str]:
    while time.monotonic() < deadline:
        found = re.search(pattern, log_path.read_text())
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"never saw {pattern!r} in the log:\n" + log_path.read_text()[-3000:])


def dashboard_as(base: str, username: str, password: str) -> str:
    """Log in through the login form, as a browser would, and return the dashboard's HTML."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = opener.open(base + "/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, form[:500]
    data = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    ).encode()
    request = urllib.request.Request(base + "/login/", data=data, headers={"Referer": base})
    with opener.open(request, timeout=10) as response:
        return str(response.read().decode())


def start(var: str, port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], object]:
    log = Path(var, "run.log").open("w")
    server = subprocess.Popen(
        ["make", "run", f"ADDR=127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return server, log


def stop(server: subprocess.Popen[bytes], log: object) -> None:
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
    log.close()  # type: ignore[attr-defined]


def main() -> int:
    port = free_port()
    var = tempfile.mkdtemp(prefix="shiplog-smoke-")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SHIPLOG_VAR_DIR=var, SHIPLOG_GITHUB_WEBHOOK_SECRET=SECRET)
    server, log = start(var, port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("make run exited early") from None
                time.sleep(0.5)
        else:
            raise SystemExit("the server did not start within 120 s")
        log_path = Path(var, "run.log")
        while time.monotonic() < deadline and " ready." not in log_path.read_text():
            time.sleep(0.5)
        delivery = github_delivery("ping", PING, SECRET, delivery_id="smoke-1")
        status, answer = post(base + "/hooks/github/", delivery)
        assert status == 202, (status, answer)
        assert answer["status"] == "recorded", answer
        status, again = post(base + "/hooks/github/", delivery)
        assert (status, again["status"]) == (200, "duplicate"), (status, again)
        count = subprocess.run(
            [
                str(ROOT / ".venv/bin/python"),
                "manage.py",
                "shell",
                "--no-imports",
                "-c",
                "from releases.models import StreamEvent;"
                "print(StreamEvent.objects.filter(delivery_key__endswith=':smoke-1').count())",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert count == "1", count
        print(f"smoke: embedded default stored delivery at position {answer['position']}")

        found = wait_for_line(
            log_path,
            r"Demo maintainer: username '(\w+)', password '([^']+)'",
            time.monotonic() + 60,
        )
        username, password = found.groups()
        wait_for_line(log_path, r"Demo loaded: 88 recorded", time.monotonic() + 120)
        deadline = time.monotonic() + 60
        page = ""
        while time.monotonic() < deadline:
            page = dashboard_as(base, username, password)
            if ">0.26.2</a>" in page and "Deployed" in page:
                break
            time.sleep(1)
        else:
            raise SystemExit("the dashboard never showed the demo:\n" + page[-3000:])
        print(f"smoke: the demo is loaded and the dashboard shows it to {username}")
    finally:
        stop(server, log)
    text = Path(var, "run.log").read_text()
    assert "Shiplog is running at http://127.0.0.1:" in text, text[-2000:]
    assert "celery@" in text and "ready" in text, (
        "the Celery worker never became ready:\n" + text[-3000:]
    )
    print("smoke: worker and web server started and stopped cleanly")

    # A second `make run` on the same database loads nothing twice.
    server, log = start(var, port, env)
    try:
        wait_for_line(
            Path(var, "run.log"), r"The demo is already in the stream", time.monotonic() + 120
        )
    finally:
        stop(server, log)
    print("smoke: a second make run found the demo loaded and posted nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
