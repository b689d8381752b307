"""Where a delivery's time goes: each step of the GitHub hook's path, timed in one process.

`bench/parts_worker.py` runs inside Django against a scratch Shiplog database and times every
step on its own (the best of 5 batches of 300 calls), with wall and CPU time apart: CPU is what
competes for the machine's cores, the rest is waiting for PostgreSQL (round trips, fsync).
No HTTP and no concurrency: the ingestion suite measures those.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.payloads import REPOSITORY
from bench.runner import Options, Report, Suite
from bench.server import REPO, RESULT_MARK, scratch_shiplog


def _measure(options: Options) -> dict[str, Any]:
    with scratch_shiplog(REPOSITORY) as shiplog:
        done = subprocess.run(
            [sys.executable, "-m", "bench.parts_worker"],
            cwd=REPO,
            env={
                **shiplog.env,
                "BENCH_GITHUB_SECRET": shiplog.github_secret,
                "BENCH_PG_PID": str(shiplog.pg.pid),
                "BENCH_CALLS": "250" if options.quick else "1500",
            },
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    if done.returncode != 0:
        raise RuntimeError(f"bench.parts_worker failed:\n{done.stderr[-3000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    raise RuntimeError(f"no result from bench.parts_worker:\n{done.stdout[-2000:]}")


def markdown(result: dict[str, Any], machine: dict[str, Any], elapsed_s: float) -> str:
    """Return the Markdown of the hook-parts section."""
    small, large = result["small"], result["large"]
    noise = max(step["others"] for size in result.values() for step in size.values())
    lines = [
        "## Where a delivery's time goes",
        "",
        f"Measured {machine['measured_at']} on {machine['cores']} cores ({machine['cpu']}); "
        f"this suite took {elapsed_s / 60:.1f} min. Each step of the GitHub hook's path timed "
        "alone in one process (Shiplog's code, production settings, the scratch PostgreSQL), "
        "in microseconds per call, the best of 5 batches; wall minus CPU is time spent "
        "waiting for PostgreSQL. "
        "Indented steps are parts of the step above them.",
        "",
        "| step | small wall µs | small CPU µs | large wall µs | large CPU µs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in small:
        label = name.replace("  of which: ", "… ")
        lines.append(
            f"| {label} | {small[name]['wall_us']:,.0f} | {small[name]['cpu_us']:,.0f} "
            f"| {large[name]['wall_us']:,.0f} | {large[name]['cpu_us']:,.0f} |"
        )
    lines += [
        "",
        f"Neighbours took at most {noise:.0%} of the machine's CPU while a step was timed.",
    ]
    return "\n".join(lines)


def run(options: Options, machine: dict[str, Any]) -> Report:
    """Time every step of the hook's path for both body sizes."""
    started = time.monotonic()
    result = _measure(options)
    elapsed = time.monotonic() - started
    return Report(data={"steps": result}, markdown=markdown(result, machine, elapsed))


SUITE = Suite(name="hook-parts", title="Where a delivery's time goes", run=run)
