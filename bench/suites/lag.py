"""Catch-up lag: commit to visible in the release timeline, at a steady rate, one slow writer.

`bench/lag_worker.py` sends deliveries through the webhook's service at 200/s for 60 s (quick:
10 s) against a scratch PostgreSQL and Redis, with a real Celery worker and beat projecting as
production does, and holds one writer's transaction open for 2 s mid-run. Afterwards the
timeline must equal an independent in-memory fold of the whole stream, and every committed
event must have become visible.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.payloads import REPOSITORY
from bench.runner import Options, Report, Suite
from bench.scratch import scratch_redis
from bench.server import REPO, RESULT_MARK, scratch_shiplog

TARGET_P99_MS = 1000


def _measure(options: Options) -> dict[str, Any]:
    with scratch_shiplog(REPOSITORY) as shiplog, scratch_redis(shiplog.workdir) as redis:
        env = {
            **shiplog.env,
            "REDIS_URL": redis.url,
            "SHIPLOG_PROJECT_AFTER_COMMIT": "1",
            "SHIPLOG_RETRY_KILL_SWITCH": "1",
        }
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "config",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--beat",
                "--schedule",
                str(shiplog.workdir / "beat-schedule"),
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bench.lag_worker"],
                cwd=REPO,
                env={
                    **env,
                    "BENCH_GITHUB_SECRET": shiplog.github_secret,
                    "BENCH_RATE": "200",
                    "BENCH_DURATION": "10" if options.quick else "60",
                },
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"bench.lag_worker failed:\n{done.stderr[-3000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    raise RuntimeError(f"no result from bench.lag_worker:\n{done.stdout[-2000:]}")


def _checks(r: dict[str, Any]) -> list[tuple[str, bool]]:
    return [
        ("every committed event became visible", r["not_visible"] == 0),
        ("the timeline equals an independent fold of the stream", r["fold_differences"] == 0),
        ("hash chain intact", r["chain_problems"] == 0),
    ]


def markdown(r: dict[str, Any], machine: dict[str, Any], elapsed_s: float) -> str:
    """Return the Markdown of the lag section."""
    lag = r["lag_ms"]
    met = "met" if lag["p99"] <= TARGET_P99_MS else "**not met**"
    lines = [
        "## Catch-up lag: commit to visible in the timeline",
        "",
        f"Measured {machine['measured_at']} on {machine['cores']} cores ({machine['cpu']}); "
        f"this suite took {elapsed_s / 60:.1f} min. A writer sends GitHub `workflow_job` "
        f"deliveries through the webhook's service at {r['rate']:.0f}/s "
        f"({r['events']:,} events over {r['sent_s']:.0f} s; achieved {r['achieved_rate']}/s) "
        "into a scratch PostgreSQL, with a real Celery worker and beat on a scratch Redis "
        "projecting as production does (asked after each commit, at most every 0.1 s; beat "
        "every 2 s). Mid-run a second writer appends and holds its transaction open for "
        f"{r['slow_writer']['held_s']:.0f} s: it holds the append lock, so every append "
        f"waits behind it (the steady writer fell up to {r['writer_behind_max_ms']:,.0f} ms "
        "behind its schedule). Lag is from an append's commit to the projector's checkpoint "
        "(advanced in the transaction that writes the timeline) reaching it, polled every 2 ms.",
        "",
        "| p50 ms | p95 ms | p99 ms | max ms | target (p99 ≤ 1 s) |",
        "| ---: | ---: | ---: | ---: | --- |",
        f"| {lag['p50']:,.1f} | {lag['p95']:,.1f} | {lag['p99']:,.1f} | {lag['max']:,.1f} "
        f"| {met} |",
        "",
        "| check | held |",
        "| --- | --- |",
        *(f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in _checks(r)),
        "",
        f"The independent fold reads every stream row with the ORM and merges entries in "
        f"memory by the pure rules (`releases.projections`), without the projector's batches, "
        f"checkpoint or writes: {r['fold_entries']:,} entries against {r['entries']:,} stored, "
        f"{r['fold_differences']} differing.",
    ]
    return "\n".join(lines)


def run(options: Options, machine: dict[str, Any]) -> Report:
    """Send at a steady rate with one slow writer; report lag and the checks."""
    started = time.monotonic()
    result = _measure(options)
    elapsed = time.monotonic() - started
    passed = all(ok for _, ok in _checks(result))
    return Report(data={"lag": result}, markdown=markdown(result, machine, elapsed), passed=passed)


SUITE = Suite(name="lag", title="Catch-up lag: commit to visible in the timeline", run=run)
