"""The REST API for CI bots at 1,000,000 events: latency under wrk, and each query's plan.

`bench/api_worker.py seed` fills a scratch PostgreSQL with a million events and the
projections they leave (50 repositories, 20,000 releases, 400,000 timeline entries, incidents,
some open), records one release of about 200 timeline entries through the real append and
projector, and creates a read-only bot token for its repository. gunicorn then serves Shiplog
with production settings and `wrk` (8 connections, `bench/wrk/api_get.lua`, the token in the
`Authorization` header) drives four endpoints in turn: the release timeline, the stream page
(walking the `after=` cursor over the repository's pages), the open incidents and the gate.
`bench/api_worker.py explain` captures the SQL each endpoint runs and records
`EXPLAIN (ANALYZE, BUFFERS)` of every SELECT; a plan that seq-scans the stream fails the suite.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu
from bench.api_worker import STREAM_TABLE
from bench.load import ensure_wrk
from bench.runner import RESULTS_DIR, Options, Report, Suite
from bench.scratch import LOOPBACK, scratch_dir, scratch_postgres
from bench.server import REPO, RESULT_MARK, Server, gunicorn, manage, shiplog_env

SCRIPT = Path(__file__).resolve().parent.parent / "wrk" / "api_get.lua"
WORKER = "bench/api_worker.py"
ENDPOINTS = ("timeline", "stream", "incidents", "gate")
CONNECTIONS = 8
# Sync workers: each request is CPU in Python plus a few short waits for PostgreSQL, so one
# more worker than cores keeps both cores busy while one worker waits; more would only add
# context switches beside wrk and PostgreSQL on the same two cores.
WORKERS = int(os.environ.get("BENCH_API_WORKERS", "3"))
# A run during which neighbours took this share of the machine's CPU is measured again.
NOISY = 0.10
ATTEMPTS = 3


@dataclass(frozen=True)
class Target:
    """Latency and throughput an endpoint must reach; None where none was set."""

    p50_ms: float | None = None
    p99_ms: float | None = None
    rate: float | None = None
    source: str = ""

    def misses(self, summary: dict[str, float]) -> list[str]:
        """Return how each figure misses the target (empty when all are met)."""
        missed = []
        if self.p50_ms is not None and summary["p50_ms"] > self.p50_ms:
            missed.append(f"p50 {summary['p50_ms']:.1f} > {self.p50_ms:g} ms")
        if self.p99_ms is not None and summary["p99_ms"] > self.p99_ms:
            missed.append(f"p99 {summary['p99_ms']:.1f} > {self.p99_ms:g} ms")
        if self.rate is not None and summary["rate"] < self.rate:
            missed.append(f"{summary['rate']:,.0f} < {self.rate:,.0f}/s")
        return missed

    def text(self) -> str:
        """Return the target as the table shows it."""
        parts = []
        if self.p50_ms is not None:
            parts.append(f"p50 ≤ {self.p50_ms:g} ms")
        if self.p99_ms is not None:
            parts.append(f"p99 ≤ {self.p99_ms:g} ms")
        if self.rate is not None:
            parts.append(f"≥ {self.rate:,.0f}/s")
        return ", ".join(parts) + (f" ({self.source})" if self.source else "") if parts else "—"


TARGETS = {
    "timeline": Target(p50_ms=5, p99_ms=10, rate=1_000, source="#7"),
    "gate": Target(p99_ms=50, source="#3"),
}


@dataclass(frozen=True)
class Plan:
    """How long and how often to load each endpoint."""

    events: int
    rounds: int
    warmup_s: float
    duration_s: float
    budget_s: float


def plan(options: Options) -> Plan:
    """Return the plan: 1,000,000 events, three rounds of 15 s; --quick: 100,000, one of 5 s."""
    return Plan(
        events=100_000 if options.quick else 1_000_000,
        rounds=options.rounds or (1 if options.quick else 3),
        warmup_s=2 if options.quick else 3,
        duration_s=options.duration_s or (5 if options.quick else 15),
        budget_s=120 if options.quick else 900,
    )


def worker(env: dict[str, str], *args: str, timeout: float) -> dict[str, Any]:
    """Run `bench/api_worker.py` with `args` and return its BENCH-RESULT."""
    done = subprocess.run(
        [sys.executable, WORKER, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{WORKER} {args[0]} failed:\n{done.stderr[-3000:]}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    raise RuntimeError(f"no result from {WORKER} {args[0]}:\n{done.stdout[-2000:]}")


def endpoint_paths(seeded: dict[str, Any]) -> dict[str, list[str]]:
    """Return the paths wrk cycles through for each endpoint."""
    release = f"/api/v1/releases/{seeded['repository']}/{seeded['tag']}/"
    return {
        "timeline": [release],
        "stream": [f"/api/v1/stream/?after={cursor}" for cursor in seeded["cursors"]],
        "incidents": ["/api/v1/incidents/?status=open"],
        "gate": [release + "gate"],
    }


def run_wrk(
    server: Server, paths_file: Path, token_file: Path, duration_s: float, workdir: Path
) -> dict[str, Any]:
    """Run wrk for `duration_s` over the paths in `paths_file`; return what it measured."""
    out = workdir / f"wrk-{secrets.token_hex(4)}.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BENCH_PATHS_FILE": str(paths_file),
        "BENCH_TOKEN_FILE": str(token_file),
        "BENCH_OUT": str(out),
    }
    command = [
        ensure_wrk(),
        "--threads=2",
        f"--connections={CONNECTIONS}",
        f"--duration={duration_s:.0f}s",
        "--timeout=5s",
        f"--script={SCRIPT}",
        server.url("/"),
    ]
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(out.read_text())
    out.unlink()
    duration = raw["duration_us"] / 1e6
    statuses = {int(status): int(count) for status, count in raw["statuses"].items()}
    ok = sum(count for status, count in statuses.items() if status == 200)
    errors = {name: int(count) for name, count in raw["errors"].items() if name != "status"}
    return {
        "duration_s": round(duration, 3),
        "responses": int(raw["responses"]),
        "ok_200": ok,
        "not_200": int(raw["responses"]) - ok + sum(errors.values()),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "socket_errors": errors,
        "rate": round(ok / duration, 1) if duration else 0.0,
        "latency_ms": {name: round(value / 1000, 3) for name, value in raw["latency_us"].items()},
    }


def _measure(
    server: Server,
    roots: dict[str, set[int]],
    files: tuple[Path, Path],
    the_plan: Plan,
    workdir: Path,
) -> dict[str, Any]:
    """Warm up, then run wrk once, accounting for the machine's CPU while it ran."""
    run_wrk(server, *files, the_plan.warmup_s, workdir)
    before = cpu.sample(roots)
    record = run_wrk(server, *files, the_plan.duration_s, workdir)
    after = cpu.sample(roots)
    record["cpu"] = cpu.usage(before, after)
    # CPU time per answer moves far less with neighbours than latency does: the figure to
    # compare before and after a change on a shared machine.
    answered = max(record["responses"], 1)
    # A process that ends during the run (an autovacuum worker) takes its CPU time with it,
    # so a group's figure can only be too low, never below zero.
    record["cpu_ms_per_request"] = {
        group: round(max(after.ours[group] - used, 0.0) * 1000 / answered, 3)
        for group, used in before.ours.items()
        if group in roots
    }
    return record


def _noise(record: dict[str, Any]) -> float:
    return float(record["cpu"]["others"] + record["cpu"]["steal"])


def load_endpoints(
    server: Server,
    roots: dict[str, set[int]],
    paths: dict[str, list[str]],
    token: str,
    the_plan: Plan,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Load every endpoint once per round, round-robin; measure noisy runs again in budget."""
    token_file = workdir / "api-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    files = {}
    for name, endpoint_paths_ in paths.items():
        files[name] = workdir / f"api-{name}.paths"
        files[name].write_text("".join(f"{path}\n" for path in endpoint_paths_))
    deadline = time.monotonic() + the_plan.budget_s
    cpu.wait_for_quiet(roots, patience_s=min(60.0, the_plan.budget_s / 4))
    runs = []
    for round_number in range(1, the_plan.rounds + 1):
        for name in ENDPOINTS:
            attempts = []
            for _ in range(ATTEMPTS):
                attempts.append(
                    _measure(server, roots, (files[name], token_file), the_plan, workdir)
                )
                if _noise(attempts[-1]) < NOISY or time.monotonic() >= deadline:
                    break
            kept = min(attempts, key=_noise)
            kept.update(endpoint=name, round=round_number, attempts=len(attempts))
            latency = kept["latency_ms"]
            print(
                f"  round {round_number}/{the_plan.rounds} {name:9} {kept['rate']:8,.0f}/s "
                f"p50 {latency['p50']:6.1f} ms  p95 {latency['p95']:6.1f} ms  "
                f"p99 {latency['p99']:6.1f} ms  not-200 {kept['not_200']}  "
                f"CPU/request: server {kept['cpu_ms_per_request']['server']:.2f} ms, "
                f"PostgreSQL {kept['cpu_ms_per_request']['postgres']:.2f} ms  "
                f"others {_noise(kept):.0%}",
                flush=True,
            )
            runs.append(kept)
    return runs


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return each endpoint's medians over its rounds."""
    summary = {}
    for name in ENDPOINTS:
        mine = [run for run in runs if run["endpoint"] == name]
        summary[name] = {
            "rounds": len(mine),
            "rate": statistics.median(run["rate"] for run in mine),
            "p50_ms": statistics.median(run["latency_ms"]["p50"] for run in mine),
            "p95_ms": statistics.median(run["latency_ms"]["p95"] for run in mine),
            "p99_ms": statistics.median(run["latency_ms"]["p99"] for run in mine),
            "not_200": sum(run["not_200"] for run in mine),
            "server_cpu_ms": statistics.median(run["cpu_ms_per_request"]["server"] for run in mine),
            "postgres_cpu_ms": statistics.median(
                run["cpu_ms_per_request"]["postgres"] for run in mine
            ),
            "others_max": max(_noise(run) for run in mine),
        }
    return summary


def _short(sql: str) -> str:
    """Return the table a query's outermost FROM names, for the plans table."""
    depth = 0
    words = sql.replace('"', "").split()
    for before, word in itertools.pairwise(words):
        depth += before.count("(") - before.count(")")
        if depth == 0 and before.upper() == "FROM":
            return word
    return words[0] if words else ""


def plans_text(explained: dict[str, Any]) -> str:
    """Return every captured query and its plan as Markdown, for bench/results/."""
    lines = ["# EXPLAIN (ANALYZE, BUFFERS) of each API endpoint's queries", ""]
    for name, requests in explained["endpoints"].items():
        for request in requests:
            lines += [f"## {name}: GET {request['path']} → {request['status']}", ""]
            for number, query in enumerate(request["queries"], 1):
                lines += [f"### query {number}", "", "```sql", query["sql"], "```", ""]
                if query["explained"]:
                    lines += ["```", query["plan"], "```", ""]
                else:
                    lines += ["(not a SELECT: not explained)", ""]
    return "\n".join(lines)


def stream_seq_scans(explained: dict[str, Any]) -> list[str]:
    """Return the endpoints and queries whose plans seq-scan the stream table."""
    found = []
    for name, requests in explained["endpoints"].items():
        for request in requests:
            for query in request["queries"]:
                if query.get("stream_seq_scan"):
                    found.append(f"{name} {request['path']}: {query['sql'][:120]}")
    return found


def markdown(
    seeded: dict[str, Any],
    summary: dict[str, dict[str, Any]],
    explained: dict[str, Any],
    the_plan: Plan,
    machine: dict[str, Any],
    elapsed_s: float,
) -> str:
    """Return the Markdown of the API section."""
    lines = [
        "## REST API at scale: latency under load and query plans",
        "",
        f"Measured {machine['measured_at']} on {machine['cores']} cores ({machine['cpu']}); "
        f"this suite took {elapsed_s / 60:.1f} min. The stream holds {seeded['events']:,} "
        f"events (INSERT ... SELECT, with the projections they leave: 50 repositories, "
        f"releases, timeline entries, incidents); `{seeded['repository']}` has "
        f"{seeded['repository_events']:,} of them and a release, `{seeded['tag']}`, of "
        f"{seeded['timeline_entries']} timeline entries recorded through `stream.append` and "
        "the projector, blocked by a failed CircleCI test. `wrk` (2 threads, "
        f"{CONNECTIONS} connections, `bench/wrk/api_get.lua`) sends a read-only bot token "
        f"for that repository to gunicorn ({WORKERS} sync workers, `config.settings.production`) "
        "on the scratch PostgreSQL; the stream page walks the `after=` cursor over "
        f"{len(seeded['cursors'])} of the repository's pages. Each figure is the median of "
        f"{the_plan.rounds} run(s) of {the_plan.duration_s:.0f} s after "
        f"{the_plan.warmup_s:.0f} s of warm-up, endpoints interleaved; requests/s counts "
        "200 answers; latencies are wrk's, client side, so they include wrk's and "
        "PostgreSQL's share of the same two cores. CPU ms/request is the CPU time gunicorn's "
        "processes (and PostgreSQL's) used over the run divided by the answers: what a request "
        "costs, which neighbours move far less than they move latency.",
        "",
        "| endpoint | req/s | p50 ms | p95 ms | p99 ms | not 200 | server CPU ms/req | "
        "PostgreSQL CPU ms/req | queries | body KB | target | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name in ENDPOINTS:
        row = summary[name]
        request = explained["endpoints"][name][0]
        target = TARGETS.get(name, Target())
        missed = target.misses(row)
        verdict = "—" if target == Target() else ("yes" if not missed else "**no**: ")
        verdict += "; ".join(missed)
        lines.append(
            f"| {name} | {row['rate']:,.0f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['not_200']} | {row['server_cpu_ms']:.2f} | "
            f"{row['postgres_cpu_ms']:.2f} | {len(request['queries'])} | "
            f"{request['bytes'] / 1024:.1f} | {target.text()} | {verdict} |"
        )
    lines += [
        "",
        "Query plans (`EXPLAIN (ANALYZE, BUFFERS)` of each SELECT of one request, after one "
        "request to warm up; every plan in full in `bench/results/api-plans-*.md`):",
        "",
        "| endpoint | request | query reads | top node | seq scans | stream seq scan | ms |",
        "| --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for name, requests in explained["endpoints"].items():
        for request in requests:
            for query in request["queries"]:
                if not query["explained"]:
                    continue
                seq = ", ".join(query["seq_scans"]) or "none"
                lines.append(
                    f"| {name} | `{request['path']}` | {_short(query['sql'])} | "
                    f"{query['top_node']} | {seq} | "
                    f"{'**yes**' if query['stream_seq_scan'] else 'no'} | "
                    f"{query['execution_ms']:.2f} |"
                )
    others = max(row["others_max"] for row in summary.values())
    lines += [
        "",
        f"Seeding took {seeded['seed_bulk_s']:.0f} s for the bulk and "
        f"{seeded['seed_release_s']:.0f} s for the release. Neighbours: processes other than "
        f"the benchmark's (and steal) took at most {others:.0%} of the machine's CPU during a "
        "kept run; runs at or above 10% were measured again, the quietest kept.",
    ]
    return "\n".join(lines)


def run(options: Options, machine: dict[str, Any]) -> Report:
    """Seed a scratch PostgreSQL, explain each endpoint's queries, load each endpoint."""
    started = time.monotonic()
    the_plan = plan(options)
    with scratch_dir() as workdir, scratch_postgres(workdir) as pg:
        env = shiplog_env(pg, workdir)
        print(f"scratch PostgreSQL on {LOOPBACK}:{pg.port}; migrating", flush=True)
        manage(env, "migrate", "--noinput")
        print(f"seeding {the_plan.events:,} events", flush=True)
        # The projector's reactions may queue tasks: seed with the test settings, whose
        # broker is a directory, instead of production's unreachable Redis.
        seed_env = {k: v for k, v in env.items() if k != "REDIS_URL"}
        seed_env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
        seeded = worker(seed_env, "seed", "--events", str(the_plan.events), timeout=3600)
        token = seeded.pop("token")
        paths = endpoint_paths(seeded)
        cursors = paths["stream"]
        spec = {
            "token": token,
            "paths": {
                **paths,
                "stream": [cursors[0], cursors[len(cursors) // 2], cursors[-1]],
            },
        }
        spec_file = workdir / "api-explain.json"
        spec_file.write_text(json.dumps(spec))
        spec_file.chmod(0o600)
        print("capturing and explaining each endpoint's queries", flush=True)
        explained = worker(env, "explain", "--spec", str(spec_file), timeout=600)
        with gunicorn(
            name="api", env=env, workdir=workdir, probe_path="/api/v1/stream/", workers=WORKERS
        ) as server:
            roots = {"postgres": {pg.pid}, "server": {server.pid}}
            runs = load_endpoints(server, roots, paths, token, the_plan, workdir)
    summary = summarise(runs)
    elapsed = time.monotonic() - started
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    plans_file = RESULTS_DIR / f"api-plans-{stamp}.md"
    plans_file.write_text(plans_text(explained))
    print(f"query plans: {plans_file}")
    scans = stream_seq_scans(explained)
    for scan in scans:
        print(f"SEQ SCAN of {STREAM_TABLE}: {scan}", flush=True)
    bad_status = [
        f"{name} {request['path']}: {request['status']}"
        for name, requests in explained["endpoints"].items()
        for request in requests
        if request["status"] != 200
    ]
    not_200 = sum(row["not_200"] for row in summary.values())
    return Report(
        data={
            "plan": the_plan.__dict__,
            "workers": WORKERS,
            "seeded": seeded,
            "summary": summary,
            "runs": runs,
            "explain": explained,
            "stream_seq_scans": scans,
        },
        markdown=markdown(seeded, summary, explained, the_plan, machine, elapsed),
        # Fails on a plan that reads the whole stream, or on answers that were not the page
        # asked for; missed latency targets are the table's to say, as in the other suites.
        passed=not scans and not bad_status and not_200 == 0,
        notes=[*scans, *bad_status],
    )


SUITE = Suite(name="api", title="REST API at scale: latency and query plans", run=run)
