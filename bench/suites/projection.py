"""Projection: rebuild and catch-up rates at a million events, detection's cost, API latency.

`bench/projection_worker.py` does the work inside Django against a scratch PostgreSQL; this
module runs it, in a subprocess with a time limit, and writes the tables. The postmortem
suite shares the worker: one release of 10,000 events, its incident and its postmortem.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.runner import Options, Report, Suite
from bench.server import REPO, RESULT_MARK, scratch_shiplog
from bench.stream_seed import REPOSITORY
from bench.suites.targets import catch_up_figures

TARGETS = {
    "catch_up_per_s": 10_000,
    "rebuild_s": 60.0,
    "api_p99_ms": 50.0,
    "detection_share": 0.20,
    "postmortem_s": 1.0,
}


def _run_worker(mode: str, options: Options, timeout: float) -> dict[str, Any]:
    with scratch_shiplog(REPOSITORY) as shiplog:
        done = subprocess.run(
            [sys.executable, "-m", "bench.projection_worker"],
            cwd=REPO,
            env={
                **shiplog.env,
                "BENCH_MODE": mode,
                "BENCH_QUICK": "1" if options.quick else "0",
                "BENCH_PG_PID": str(shiplog.pg.pid),
                # No broker in the bench: nothing may wait on one.
                "SHIPLOG_PROJECT_AFTER_COMMIT": "false",
            },
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    for line in done.stdout.splitlines():
        if not line.startswith(RESULT_MARK):
            print(f"  {line}", flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench.projection_worker failed:\n{done.stderr[-3000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    raise RuntimeError(f"no result from bench.projection_worker:\n{done.stdout[-2000:]}")


def _others(usage: dict[str, float]) -> str:
    return f"{usage['others'] + usage['steal']:.0%}"


def _peak(rebuild: dict[str, Any]) -> str:
    peak = rebuild.get("peak_rss_mb")
    return "" if peak is None else f"; peak RSS {peak:,.0f} MB (target < 300 MB)"


def _per_round(r: dict[str, Any]) -> str:
    """Return detection's share in each round, against the run without it in that round."""
    rates: dict[tuple[int, bool], float] = {
        (c["round"], c["detection"]): c["events"] / c["seconds"] for c in r["catch_up"]
    }
    rounds = sorted({c["round"] for c in r["catch_up"]})
    return ", ".join(f"+{rates[(n, False)] / rates[(n, True)] - 1:.0%}" for n in rounds)


def _yes(met: bool) -> str:
    return "met" if met else "**not met**"


def projection_markdown(r: dict[str, Any], machine: dict[str, Any], elapsed_s: float) -> str:
    """Return the Markdown of the projection section."""
    rebuild, read, fold = r["rebuild"], r["read"], r["sql_fold"]
    rebuild_rate = rebuild["events"] / rebuild["seconds"]
    plain_rate, detect_rate, share = catch_up_figures(r)
    api = r["api"]
    lines = [
        "## Projection: rebuild, catch-up, detection, and the APIs at a million events",
        "",
        f"Measured {machine['measured_at']} on {machine['cores']} cores ({machine['cpu']}); "
        f"this suite took {elapsed_s / 60:.1f} min. The scratch stream holds {r['releases']:,} "
        "releases of 50 real-shaped deliveries each (`bench/stream_seed.py`: GitHub's tag push, "
        "`workflow_run` and eight `workflow_job`s through queued, in_progress and completed; "
        "CircleCI's `job-completed` for 21 jobs and `workflow-completed`; every tenth release "
        "blocked by a failed test), eight releases in flight at a time, a few deliveries out of "
        f"order. Seeded with COPY in {r['seed']['seconds']:.0f} s, hash chain continued by "
        "`row_hash` and checked; a sample of bodies is normalised again and must give the "
        "stored fields. Timings are wall time in one process (production settings) against "
        "the scratch PostgreSQL, which runs on the other core.",
        "",
        "| measurement | events | time | events/s | neighbours' CPU | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        f"| read and decode the normalised columns only (`read_rows`, batches of 20,000) "
        f"| {read['events']:,} | {read['seconds']:.1f} s | {read['events'] / read['seconds']:,.0f} "
        f"| {_others(read['cpu'])} | — |",
        f"| SQL alone: group the stream into {fold['entries']:,} entries, no rules (a bound) "
        f"| {fold['events']:,} | {fold['seconds']:.1f} s | {fold['events'] / fold['seconds']:,.0f} "
        f"| {_others(fold['cpu'])} | — |",
        f"| **rebuild** (`rebuild_projections`): {rebuild['releases']:,} releases, "
        f"{rebuild['entries']:,} entries{_peak(rebuild)} | {rebuild['events']:,} "
        f"| {rebuild['seconds']:.1f} s "
        f"| {rebuild_rate:,.0f} | {_others(rebuild['cpu'])} "
        f"| < 60 s: {_yes(rebuild['seconds'] < TARGETS['rebuild_s'])} |",
    ]
    for c in r["catch_up"]:
        label = "with detection" if c["detection"] else "without detection"
        rate = c["events"] / c["seconds"]
        lines.append(
            f"| catch-up of {c['seeded']:,} fresh events, {label} (round {c['round'] + 1}) "
            f"| {c['events']:,} | {c['seconds']:.1f} s | {rate:,.0f} | {_others(c['cpu'])} "
            f"| ≥ 10,000/s: {_yes(rate >= TARGETS['catch_up_per_s'])} |"
        )
    lines += [
        "",
        f"Catch-up, median: {plain_rate:,.0f} events/s without detection, {detect_rate:,.0f} "
        f"with it; **detection adds {share:.0%}** to catch-up time (target under 20%: "
        f"{_yes(share < TARGETS['detection_share'])}; round by round: {_per_round(r)}). "
        "Catch-up runs as production does: "
        f"batches of {r['catch_up_batch']:,} in their own transactions, detection and the "
        f"retry policy after each batch; {r['incidents']:,} incidents were opened by the runs "
        "with detection.",
        "",
        f"API latency with {r['stored_events']:,} events stored, through Django's test client "
        "as a bot with a read token (server time: middleware, authentication, queries, JSON), "
        "random releases, after 20 warm-up requests:",
        "",
        "| API | requests | p50 | p99 | max | neighbours' CPU | target (p99 < 50 ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, path in (
        ("timeline", "`GET /api/v1/releases/<repo>/<tag>/`"),
        ("gate", "`GET …/<tag>/gate`"),
    ):
        a = api[label]
        lines.append(
            f"| {label} {path} | {a['requests']} | {a['p50_ms']:.1f} ms | {a['p99_ms']:.1f} ms "
            f"| {a['max_ms']:.1f} ms | {_others(a['cpu'])} "
            f"| {_yes(a['p99_ms'] < TARGETS['api_p99_ms'])} |"
        )
    return "\n".join(lines)


def postmortem_markdown(r: dict[str, Any], machine: dict[str, Any], elapsed_s: float) -> str:
    """Return the Markdown of the postmortem section."""
    c = r["compose"]
    return "\n".join(
        [
            "## Postmortem of an incident spanning 10,000 events",
            "",
            f"Measured {machine['measured_at']} on {machine['cores']} cores ({machine['cpu']}); "
            f"this suite took {elapsed_s / 60:.1f} min. One release of {r['seed']['rows']:,} "
            f"events ({r['entries']:,} timeline entries: {r['seed']['rows'] // 50} reruns of the "
            "projection suite's 50 deliveries, the same test failing in every one, so "
            "CircleCI's deploy stays blocked), projected with detection, which opened the "
            "incident. Composing is what the postmortem task does: `postmortem_input()` (the "
            "release's timeline, lessons, the incident's events) and `compose()`, from a fresh "
            "read of the incident.",
            "",
            "| runs | median | max | Markdown | neighbours' CPU | target (< 1 s) |",
            "| ---: | ---: | ---: | ---: | ---: | --- |",
            f"| {c['runs']} | {c['median_s'] * 1000:.0f} ms | {c['max_s'] * 1000:.0f} ms "
            f"| {c['markdown_chars']:,} chars | {_others(c['cpu'])} "
            f"| {_yes(c['median_s'] < TARGETS['postmortem_s'])} |",
        ]
    )


def run_projection(options: Options, machine: dict[str, Any]) -> Report:
    """Seed a million events (50,000 with --quick) and measure the projector on them."""
    started = time.monotonic()
    result = _run_worker("projection", options, timeout=900 if options.quick else 3600)
    markdown = projection_markdown(result, machine, time.monotonic() - started)
    return Report(data=result, markdown=markdown)


def run_postmortem(options: Options, machine: dict[str, Any]) -> Report:
    """Compose the postmortem of an incident whose release has 10,000 events."""
    started = time.monotonic()
    result = _run_worker("postmortem", options, timeout=600 if options.quick else 1200)
    markdown = postmortem_markdown(result, machine, time.monotonic() - started)
    return Report(data=result, markdown=markdown)


SUITE = Suite(name="projection", title="Projection at a million events", run=run_projection)
POSTMORTEM = Suite(name="postmortem", title="Postmortem of 10,000 events", run=run_postmortem)
