"""The soak's moving parts: a scratch Redis, Celery workers and beat, the fake CI APIs.

Each part can be stopped hard and started again on the same address; every wait is bounded,
and each context manager ends what it started, by process id, whatever happens inside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.scratch import LOOPBACK, Postgres, _pg_ctl, free_port, wait_until
from bench.server import REPO
from tests.fakes.ci_servers import FakeCircleCI, FakeGitHub

REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "/usr/bin/redis-server")


def _end(process: subprocess.Popen[bytes], *, grace: float = 10) -> None:
    """Stop one process we started: SIGTERM, then SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def _pings(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    """A throwaway Redis on a random loopback port that keeps nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the REDIS_URL of database 0."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Return whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        command = [
            REDIS_SERVER,
            "--bind",
            LOOPBACK,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(self.log),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(lambda: _pings(self.port), what="redis", timeout=20)

    def stop(self) -> None:
        """Stop the server (SIGTERM: with nothing to save it exits at once)."""
        if self.process is not None:
            _end(self.process)
            self.process = None


@contextlib.contextmanager
def scratch_redis(workdir: Path) -> Iterator[Redis]:
    """Yield a running scratch Redis; stop it afterwards."""
    redis = Redis(workdir)
    try:
        redis.start()
        yield redis
    finally:
        redis.stop()


_TASK = re.compile(r"Task (\S+)\[([0-9a-f-]+)\] (received|succeeded|raised|retry|failed)")


class CeleryProcess:
    """One `celery worker` (solo pool: the task runs in the process we may kill) or `beat`."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path, *, beat: bool = False):
        self.name = name
        self.env = env
        self.beat = beat
        self.log = workdir / f"celery-{name}.log"
        self.schedule = workdir / "beat-schedule"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.unexpected_exits: list[int] = []
        self._read = 0
        self._running: dict[str, str] = {}

    def command(self) -> list[str]:
        """Return the command line of this process."""
        base = [sys.executable, "-m", "celery", "--app", "config"]
        if self.beat:
            return [*base, "beat", "--loglevel", "INFO", "--schedule", str(self.schedule)]
        return [
            *base,
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{self.name}@chaos",
        ]

    @property
    def running(self) -> bool:
        """Return whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: float = 60) -> None:
        """Start the process; for a worker, wait (bounded) until it says it is ready.

        `wait=0` returns at once: a worker restarted while Redis is down cannot be ready.
        """
        mark = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command(),
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self._running.clear()
        self._read = mark
        if self.beat or not wait:
            return

        def ready() -> bool:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            with self.log.open("rb") as log:
                log.seek(mark)
                return b" ready." in log.read()

        wait_until(ready, what=f"celery {self.name}", timeout=wait, interval=0.2)
        self._read = self.log.stat().st_size

    def tail(self, lines: int = 30) -> str:
        """Return the end of the log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def busy(self) -> str | None:
        """Return the name of the task the worker is running now, if the log says one is."""
        with self.log.open("rb") as log:
            log.seek(self._read)
            chunk = log.read()
        # Only whole lines: a half-written one is read again next time.
        end = chunk.rfind(b"\n") + 1
        self._read += end
        for match in _TASK.finditer(chunk[:end].decode(errors="replace")):
            name, task_id, what = match.groups()
            if what == "received":
                self._running[task_id] = name
            else:
                self._running.pop(task_id, None)
        return next(iter(self._running.values()), None)

    def kill(self) -> None:
        """SIGKILL the process: no shutdown, no ack, whatever it was doing."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            # Killed on purpose: `check` must not take it for a crash and start a second one.
            self.process = None

    def check(self) -> None:
        """Restart the process if it exited by itself, and remember that it did."""
        if self.process is not None and self.process.poll() is not None:
            self.unexpected_exits.append(self.process.returncode)
            self.start(wait=0)

    def stop(self) -> None:
        """Stop it warmly (SIGTERM: a worker finishes its task), SIGKILL after 30 s."""
        if self.process is not None:
            _end(self.process, grace=30)
            self.process = None


@contextlib.contextmanager
def celery_processes(
    env: dict[str, str], workdir: Path, *, workers: int = 2
) -> Iterator[list[CeleryProcess]]:
    """Yield `workers` started workers and a beat (last); stop them all afterwards."""
    processes = [CeleryProcess(f"worker{n + 1}", env, workdir) for n in range(workers)]
    processes.append(CeleryProcess("beat", env, workdir, beat=True))
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


class SoakCircleCI(FakeCircleCI):
    """The fake CircleCI API, knowing every workflow of the soak, counting each rerun."""

    def __init__(self, workflows: list[str]) -> None:
        super().__init__()
        for workflow_id in workflows:
            self.add_workflow({"id": workflow_id, "name": "build-and-deploy"}, [])

    def reruns_by_workflow(self) -> dict[str, int]:
        """Return how many rerun requests each workflow received."""
        counts: dict[str, int] = {}
        for call in self.calls("POST"):
            if call.path.startswith("/workflow/") and call.path.endswith("/rerun"):
                workflow = call.path.split("/")[2]
                counts[workflow] = counts.get(workflow, 0) + 1
        return counts


@contextlib.contextmanager
def fake_apis(workflows: list[str]) -> Iterator[tuple[SoakCircleCI, FakeGitHub]]:
    """Yield the fake CircleCI and GitHub APIs on loopback; stop them afterwards."""
    circleci = SoakCircleCI(workflows).start()
    github = FakeGitHub().start()
    try:
        yield circleci, github
    finally:
        circleci.stop()
        github.stop()


def postgres_ready(pg: Postgres) -> bool:
    """Return whether the cluster accepts the application's connections."""
    try:
        pg.execute("SELECT 1")
    except Exception:
        return False
    return True


def postgres_kill(pg: Postgres) -> int:
    """SIGKILL the postmaster (its backends exit once they notice); return its pid."""
    pid = pg.pid
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pid


def postgres_start(pg: Postgres, *, timeout: float = 120) -> int:
    """Start the killed cluster again (crash recovery); return how many tries it took.

    A new postmaster refuses to start while backends of the old one still hold its shared
    memory, so starting is retried until they are gone.
    """
    deadline = time.monotonic() + timeout
    tries = 0
    log = pg.data_dir.parent / "server.log"
    while True:
        tries += 1
        started = _pg_ctl(pg.data_dir, "start", "-w", "-t", "60", "-l", str(log), timeout=90)
        if started.returncode == 0 and postgres_ready(pg):
            return tries
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not restart: {started.stderr[-1000:]}")
        time.sleep(0.5)


class Stopwatch:
    """Sum the time something was down, from the fault injector's thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[float] = []

    def add(self, seconds: float) -> None:
        """Record one outage."""
        with self.lock:
            self.spans.append(seconds)

    def summary(self) -> dict[str, Any]:
        """Return the count, total and longest outage, in seconds."""
        with self.lock:
            spans = list(self.spans)
        return {
            "count": len(spans),
            "total_s": round(sum(spans), 1),
            "max_s": round(max(spans), 1) if spans else 0.0,
        }
