"""The runner's parts: what a suite is, the machine it ran on, and where results are written.

A suite is a name and a function that takes the options and the machine's facts and returns a
`Report`: JSON-ready data for `bench/results/` and the Markdown of its own section of
`docs/benchmarks.md`, which lies between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`
so that every suite rewrites its section and leaves the others alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scratch import PG_BIN

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DOCS = BENCH_DIR.parent / "docs" / "benchmarks.md"
PACKAGES = ("Django", "djangorestframework", "celery", "psycopg", "gunicorn", "orjson")

INTRO = """\
# Benchmarks

What Shiplog's hot paths cost on a small machine, next to what the same machine allows.

Reproduce with `make bench` (every suite; each rewrites its own section below and writes its
raw figures to `bench/results/`). For development, `.venv/bin/python -m bench ingest --quick`
(one short round) or `--case large:16:gthread:4` (one load shape) leave this file alone. Each
suite starts its own PostgreSQL 15 (fsync on, synchronous commit) in a temp dir on a random
loopback port, migrates Shiplog into it, and removes it afterwards; the load generator, the
server and the database share the machine's cores, so every figure includes the cost of
generating the load. The machine may be shared: every run records how much CPU other processes
took, noisy runs are measured again within a time budget, and what stays noisy is said.
"""


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    quick: bool = False
    rounds: int | None = None
    duration_s: float | None = None
    # Suite-specific load shapes, as given on the command line (e.g. "small:16:gthread:4").
    cases: tuple[str, ...] = ()


@dataclass
class Report:
    """What a suite hands back: raw data for the JSON file, Markdown for its docs section."""

    data: dict[str, Any]
    markdown: str
    passed: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Suite:
    """A named benchmark that the runner can run."""

    name: str
    title: str
    run: Callable[[Options, dict[str, Any]], Report]


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "unavailable"
    output = (done.stdout or done.stderr).strip()
    return output.splitlines()[0] if output else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def fsync_rate() -> dict[str, Any]:
    """Return pg_test_fsync's one-8kB-write fdatasync rate, on the temp dir's filesystem.

    fdatasync is PostgreSQL's default wal_sync_method on Linux: one of these per commit.
    """
    with tempfile.TemporaryDirectory(prefix="shiplog-fsync-") as where:
        try:
            done = subprocess.run(
                [str(PG_BIN / "pg_test_fsync"), "-s", "1", "-f", f"{where}/pg_test_fsync.out"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": str(exc)}
    match = re.search(r"^\s*fdatasync\s+([\d.]+) ops/sec\s+(\d+) usecs/op", done.stdout, re.M)
    if not match:
        return {"error": (done.stdout + done.stderr)[-500:]}
    return {
        "method": "fdatasync",
        "ops_per_s": round(float(match.group(1))),
        "usecs_per_op": int(match.group(2)),
    }


def machine_info(*, measure_fsync: bool) -> dict[str, Any]:
    """Return the facts about this machine and its software that the figures depend on."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": _first_line([str(PG_BIN / "postgres"), "--version"]),
        "wrk": _first_line(["wrk", "--version"]),
        "packages": versions,
        "fsync": fsync_rate() if measure_fsync else {"skipped": "--quick"},
    }


def machine_markdown(machine: dict[str, Any]) -> str:
    """Return the Markdown of the machine section."""
    fsync = machine["fsync"]
    if "ops_per_s" in fsync:
        fsync_text = (
            f"{fsync['ops_per_s']:,} fdatasync/s ({fsync['usecs_per_op']} µs each, "
            "`pg_test_fsync -s 1`, one 8 kB write)"
        )
    else:
        fsync_text = f"not measured ({next(iter(fsync.values()))})"
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    return "\n".join(
        [
            "## Machine",
            "",
            "| | |",
            "| --- | --- |",
            f"| cores | {machine['cores']} |",
            f"| CPU | {machine['cpu']} |",
            f"| memory | {machine['memory_gib']} GiB |",
            f"| disk | {fsync_text} |",
            f"| kernel | Linux {machine['kernel']} |",
            f"| PostgreSQL | {machine['postgresql']} |",
            f"| Python | {machine['python']} |",
            f"| packages | {packages} |",
            f"| load generator | {machine['wrk']} |",
            *(f"| Redis | {machine['redis']} |" for _ in [1] if "redis" in machine),
            *(
                f"| compared against | {name} {version} (benchmark only) |"
                for name, version in machine.get("compared_against", {}).items()
            ),
            f"| measured | {machine['measured_at']} |",
        ]
    )


def write_section(name: str, markdown: str, docs: Path = DOCS) -> None:
    """Replace the section `name` of the docs between its markers, appending it if new."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = docs.read_text() if docs.exists() else INTRO
    # The intro (everything before the first section) is the runner's: keep it current.
    first = text.find("<!-- bench:")
    text = INTRO + "\n" + text[first:] if first >= 0 else INTRO
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write one suite's raw figures to `bench/results/NAME-<UTC time>.json`."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
