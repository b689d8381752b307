"""Smoke-test the embedded default: `make run`, one signed webhook stored, clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
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


def main() -> int:
    port = free_port()
    var = tempfile.mkdtemp(prefix="shiplog-smoke-")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SHIPLOG_VAR_DIR=var, SHIPLOG_GITHUB_WEBHOOK_SECRET=SECRET)
    log = Path(var, "run.log").open("w")
    server = subprocess.Popen(
        ["make", "run", f"ADDR=127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
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
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    text = Path(var, "run.log").read_text()
    assert "Shiplog is running at http://127.0.0.1:" in text, text[-2000:]
    assert "celery@" in text and "ready" in text, (
        "the Celery worker never became ready:\n" + text[-3000:]
    )
    print("smoke: worker and web server started and stopped cleanly")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
