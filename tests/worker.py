"""Run a real Celery worker (with beat) against the test database and real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url(user: str | None = None) -> str:
    """Return a URL for the test database this process is using (as `user`, if given)."""
    db = connection.settings_dict
    user = user or db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


@contextmanager
def celery_worker(
    tmp_path: Path,
    *,
    beat: bool = True,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[list[str]]:
    """Start a worker process on the test database; yield its output lines; stop it."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url or settings.REDIS_URL,
        "SHIPLOG_PROJECT_AFTER_COMMIT": "1",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "config",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"test-{uuid.uuid4().hex[:8]}@%h",
    ]
    if beat:
        command += ["--beat", "--schedule", str(tmp_path / "beat-schedule")]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.daemon = True
    reader.start()
    try:
        wait_for(lambda: any(" ready." in line for line in lines), 60, "the worker to start", lines)
        yield lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(condition: Callable[[], object], seconds: float, what: str, log: list[str]) -> None:
    """Poll `condition` until it holds, or fail naming what was awaited, with the worker log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; worker said:\n" + "".join(log[-60:]))


def free_port() -> int:
    """Return a TCP port nobody listens on at the moment."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def scratch_redis(port: int) -> Iterator[None]:
    """Run a throwaway Redis on 127.0.0.1:`port` that keeps nothing on disk."""
    process = subprocess.Popen(  # a broker of its own: stopping it disturbs nobody
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        wait_for(lambda: _pings(client), 10, "redis to start", [])
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _pings(client: object) -> bool:
    try:
        return bool(client.ping())  # type: ignore[attr-defined]
    except Exception:
        return False
