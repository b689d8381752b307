"""Drive a server with `wrk` and the Lua script that sends unique, signed GitHub deliveries."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from releases.deliveries import Delivery

SCRIPT = Path(__file__).resolve().parent / "wrk" / "github_delivery.lua"


@dataclass(frozen=True)
class Load:
    """How hard and how long to push."""

    connections: int
    duration_s: float
    threads: int = 2
    timeout_s: float = 5.0


@dataclass(frozen=True)
class LoadResult:
    """What wrk measured in one run, plus the event ids the server acknowledged."""

    run_tag: str
    duration_s: float
    sent: int
    responses: int
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    acked: list[str]

    @property
    def ok(self) -> int:
        """Return the number of 2xx responses."""
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        """Return the number of responses that were not 2xx."""
        return self.responses - self.ok

    @property
    def unanswered(self) -> int:
        """Return requests sent but never answered (in flight when wrk stopped, or lost)."""
        return self.sent - self.responses

    @property
    def rate(self) -> float:
        """Return 2xx responses per second."""
        return self.ok / self.duration_s if self.duration_s else 0.0

    def summary(self) -> dict[str, object]:
        """Return the figures as JSON-ready values, without the acknowledged ids."""
        return {
            "run_tag": self.run_tag,
            "duration_s": round(self.duration_s, 3),
            "sent": self.sent,
            "responses": self.responses,
            "ok_2xx": self.ok,
            "non_2xx": self.non_2xx,
            "unanswered": self.unanswered,
            "rate_2xx_per_s": round(self.rate, 1),
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
            "latency_ms": self.latency_ms,
        }


def ensure_wrk() -> str:
    """Return the path of `wrk`, installing Debian's package first if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("wrk is missing: install it (apt-get install wrk) and run again")
    print("wrk is missing: installing Debian's package", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    # Without a fresh package list apt may not know wrk: update once, only if needed.
    for commands in ([install], [["apt-get", "update", "-q"], install]):
        for command in commands:
            subprocess.run(command, check=False, timeout=600, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise RuntimeError("apt-get did not install wrk")


def prepare(delivery: Delivery, workdir: Path, name: str) -> tuple[Path, Path]:
    """Write a delivery's body and headers where the Lua script reads them."""
    body_file = workdir / f"{name}.body"
    headers_file = workdir / f"{name}.headers"
    body_file.write_bytes(delivery.body)
    headers = {k: v for k, v in delivery.headers.items() if k != "X-GitHub-Delivery"}
    headers_file.write_text("".join(f"{k}: {v}\n" for k, v in headers.items()))
    return body_file, headers_file


def run_wrk(
    url: str, load: Load, *, body_file: Path, headers_file: Path, workdir: Path
) -> LoadResult:
    """Run wrk against `url` for `load.duration_s` seconds and return what it measured."""
    run_tag = secrets.token_hex(4)
    out = workdir / f"wrk-{run_tag}.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_HEADERS_FILE": str(headers_file),
        "BENCH_RUN_TAG": run_tag,
        "BENCH_OUT": str(out),
    }
    command = [
        ensure_wrk(),
        f"--threads={load.threads}",
        f"--connections={load.connections}",
        f"--duration={load.duration_s:.0f}s",
        f"--timeout={load.timeout_s:.0f}s",
        f"--script={SCRIPT}",
        url,
    ]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=load.duration_s + 60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(out.read_text())
    out.unlink()
    return LoadResult(
        run_tag=run_tag,
        duration_s=raw["duration_us"] / 1e6,
        sent=int(raw["sent"]),
        responses=int(raw["responses"]),
        statuses={int(status): int(count) for status, count in raw["statuses"].items()},
        socket_errors={
            name: int(count) for name, count in raw["errors"].items() if name != "status"
        },
        latency_ms={name: round(value / 1000, 3) for name, value in raw["latency_us"].items()},
        acked=raw["acked"],
    )
