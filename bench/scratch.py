"""Scratch resources for a benchmark: a temp dir, free ports, and a PostgreSQL of its own.

Everything listens on 127.0.0.1 only, every wait is bounded, and every context manager
removes what it made, whatever happens inside it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

LOOPBACK = "127.0.0.1"
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "/usr/bin/redis-server")
# Durability as in production: the figures must include the WAL flush of every commit.
PG_SETTINGS = {
    "listen_addresses": f"'{LOOPBACK}'",
    "unix_socket_directories": "''",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "max_connections": "100",
    "shared_buffers": "'128MB'",
    "log_min_messages": "warning",
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], *, what: str, timeout: float, interval: float = 0.1):
    """Call `check` until it returns True; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        if check():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def scratch_dir(prefix: str = "shiplog-bench-") -> Iterator[Path]:
    """Yield a new temp dir, removed afterwards with everything in it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    # The postgres user must traverse it to reach the data directory it owns.
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_postgres(command: list[str]) -> list[str]:
    """Return `command` run as the postgres user when running as root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass(frozen=True)
class Postgres:
    """A running scratch cluster with one database owned by the application's role."""

    port: int
    data_dir: Path
    database: str
    user: str
    password: str
    superuser_password: str

    @property
    def pid(self) -> int:
        """Return the postmaster's process id (0 when it is not running)."""
        return _postmaster_pid(self.data_dir) or 0

    @property
    def url(self) -> str:
        """Return the DATABASE_URL of the application's role."""
        return f"postgres://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{self.database}"

    def connect(self, *, superuser: bool = False) -> psycopg.Connection:
        """Open an autocommit connection, as the application's role or as the superuser."""
        return psycopg.connect(
            host=LOOPBACK,
            port=self.port,
            dbname=self.database if not superuser else "postgres",
            user="postgres" if superuser else self.user,
            password=self.superuser_password if superuser else self.password,
            autocommit=True,
            connect_timeout=5,
        )

    def execute(self, sql: str, *, superuser: bool = False) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty when it returns none)."""
        with self.connect(superuser=superuser) as conn, conn.cursor() as cursor:
            cursor.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []


def _pg_ctl(data_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data_dir), *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _stop_postgres(data_dir: Path) -> None:
    """Stop the cluster: fast shutdown, then SIGKILL of its postmaster if that did not work."""
    pid = _postmaster_pid(data_dir)
    if pid is None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        _pg_ctl(data_dir, "stop", "-m", "fast", "-w", "-t", "30", timeout=40)
    if _postmaster_pid(data_dir) == pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def scratch_postgres(workdir: Path, *, database: str = "shiplog") -> Iterator[Postgres]:
    """Yield a fresh PostgreSQL cluster on a random loopback port; stop it afterwards."""
    root = workdir / "postgres"
    root.mkdir()
    data_dir = root / "data"
    superuser_password = secrets.token_urlsafe(24)
    password_file = root / "superuser-password"
    password_file.write_text(superuser_password + "\n")
    password_file.chmod(0o600)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(password_file, owner.pw_uid, owner.pw_gid)
    root.chmod(0o700)
    initdb = subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if initdb.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{initdb.stderr[-2000:]}")
    port = free_port()
    settings = {**PG_SETTINGS, "port": str(port)}
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\n# shiplog bench\n")
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
    try:
        started = _pg_ctl(
            data_dir, "start", "-w", "-t", "60", "-l", str(root / "server.log"), timeout=90
        )
        if started.returncode != 0:
            log = (root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start:\n{started.stderr}\n{log}")
        pg = Postgres(
            port=port,
            data_dir=data_dir,
            database=database,
            user="shiplog",
            password=secrets.token_urlsafe(24),
            superuser_password=superuser_password,
        )
        pg.execute(f"CREATE ROLE {pg.user} LOGIN PASSWORD '{pg.password}'", superuser=True)
        pg.execute(f"CREATE DATABASE {database} OWNER {pg.user}", superuser=True)
        yield pg
    finally:
        _stop_postgres(data_dir)


@dataclass(frozen=True)
class Redis:
    """A running scratch Redis: no persistence, loopback only."""

    port: int
    pid: int

    @property
    def url(self) -> str:
        """Return the REDIS_URL of its database 0."""
        return f"redis://{LOOPBACK}:{self.port}/0"


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def scratch_redis(workdir: Path) -> Iterator[Redis]:
    """Yield a fresh Redis on a random loopback port, nothing saved to disk; stop it afterwards."""
    root = workdir / "redis"
    root.mkdir()
    port = free_port()
    command = [
        REDIS_SERVER,
        "--bind", LOOPBACK,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "yes",
        "--dir", str(root),
        "--logfile", str(root / "redis.log"),
    ]  # fmt: skip
    # A session of its own, so that it is ended by its id and nothing else.
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: process.poll() is not None or _redis_answers(port),
            what="redis-server",
            timeout=30,
        )
        if process.poll() is not None:
            log = (root / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server exited:\n{log}")
        yield Redis(port=port, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
