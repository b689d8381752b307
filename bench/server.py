"""Shiplog's side of a benchmark: its environment, `manage.py`, and gunicorn on loopback."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.scratch import (
    LOOPBACK,
    Postgres,
    free_port,
    scratch_dir,
    scratch_postgres,
    wait_until,
)

REPO = Path(__file__).resolve().parent.parent
RESULT_MARK = "BENCH-RESULT "
# Kept from the caller's environment; everything else a server sees is set here, so a
# developer's DJANGO_SETTINGS_MODULE or webhook secrets cannot leak into the figures.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
REGISTER = """\
import json, os
from releases.services import repository_create, webhook_secret_add
repository = repository_create(full_name=os.environ["BENCH_REPOSITORY"])
webhook_secret_add(repository=repository, platform="github",
                   secret=os.environ["BENCH_GITHUB_SECRET"], label="bench")
webhook_secret_add(repository=repository, platform="circleci",
                   secret=os.environ["BENCH_CIRCLECI_SECRET"], label="bench")
print("BENCH-RESULT " + json.dumps({"repository": repository.full_name}))
"""


def shiplog_env(pg: Postgres, workdir: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a production Shiplog on the scratch database."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=pg.url,
        # Ingestion never reaches the broker; port 1 makes any attempt fail at once.
        REDIS_URL="redis://127.0.0.1:1/0",
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS=LOOPBACK,
        SHIPLOG_VAR_DIR=str(workdir / "var"),
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Shiplog:
    """A migrated Shiplog database on a scratch PostgreSQL, with one repository registered."""

    workdir: Path
    pg: Postgres
    env: dict[str, str]
    repository: str
    github_secret: str


@contextlib.contextmanager
def scratch_shiplog(repository: str) -> Iterator[Shiplog]:
    """Yield Shiplog's schema on a scratch PostgreSQL, `repository` and its secrets stored."""
    with scratch_dir() as workdir, scratch_postgres(workdir) as pg:
        env = shiplog_env(pg, workdir)
        print(f"scratch PostgreSQL on {LOOPBACK}:{pg.port}; migrating", flush=True)
        manage(env, "migrate", "--noinput")
        github_secret = secrets.token_urlsafe(32)
        shell_result(
            {
                **env,
                "BENCH_REPOSITORY": repository,
                "BENCH_GITHUB_SECRET": github_secret,
                "BENCH_CIRCLECI_SECRET": secrets.token_urlsafe(32),
            },
            REGISTER,
        )
        yield Shiplog(workdir, pg, env, repository, github_secret)


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """Run `manage.py` with `args` and return its standard output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def shell_result(env: dict[str, str], code: str, *, timeout: float = 300) -> object:
    """Run `code` in `manage.py shell` and return what it printed as `RESULT_MARK` JSON."""
    out = manage(env, "shell", "--no-imports", "-c", code, timeout=timeout)
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise RuntimeError(f"no result line in the shell's output:\n{out[-2000:]}")


@dataclass(frozen=True)
class Server:
    """A running gunicorn master and how to reach it."""

    name: str
    port: int
    pid: int
    log: Path

    def url(self, path: str) -> str:
        """Return the absolute URL of `path` on this server."""
        return f"http://{LOOPBACK}:{self.port}{path}"


def _answers(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        conn.request("GET", path)
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


@contextlib.contextmanager
def gunicorn(
    *,
    name: str,
    env: dict[str, str],
    workdir: Path,
    probe_path: str,
    workers: int = 2,
    worker_class: str = "sync",
    threads: int = 1,
) -> Iterator[Server]:
    """Serve Shiplog's WSGI app with gunicorn on a random loopback port; stop it afterwards."""
    port = free_port()
    log = workdir / f"gunicorn-{name}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        f"--bind={LOOPBACK}:{port}",
        f"--workers={workers}",
        f"--worker-class={worker_class}",
        f"--threads={threads}",
        "--log-level=warning",
        f"--error-logfile={log}",
        "--timeout=60",
        "--graceful-timeout=10",
        f"--chdir={REPO}",
    ]
    with log.open("ab") as output:
        # A session of its own, so the whole group (master and workers) can be ended by id.
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: process.poll() is not None or _answers(port, probe_path),
            what=f"gunicorn {name}",
            timeout=60,
            interval=0.2,
        )
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn {name} exited:\n{log.read_text()[-3000:]}")
        yield Server(name=name, port=port, pid=process.pid, log=log)
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn gracefully (SIGTERM), then kill what is left of its process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
