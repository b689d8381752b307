"""Ingestion side by side: the raw limit, eventsourcing, Shiplog in process and over HTTP.

One scratch PostgreSQL and one scratch Redis (random loopback ports) serve every contender.
Each round runs, for each corpus size (GitHub `workflow_job` and CircleCI `job-completed`
bodies of about 1, 8 and 32 KB), every in-process contender (`bench/compare_worker.py`), then
Shiplog's HTTP path under gunicorn with `wrk`; then mixed traffic. Rounds repeat the same order
(A B C, A B C), so drift and neighbours spread over every contender alike. After every Shiplog
run the stream is checked: each acknowledged delivery stored exactly once, nothing else added,
the chain intact from the run's first row; at the end `verify_chain()` checks the whole stream.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import corpus, cpu
from bench.load import Load, ensure_wrk, prepare
from bench.payloads import REPOSITORY
from bench.runner import Options, Report, Suite
from bench.scratch import REDIS_SERVER, Postgres, scratch_redis
from bench.server import REPO, RESULT_MARK, Server, gunicorn, scratch_shiplog, shell_result
from bench.suites.ingest import VERIFY
from releases.deliveries import github_delivery

DEPS = REPO / "bench" / ".deps"
SCRIPT = REPO / "bench" / "wrk" / "mixed_delivery.lua"
HOOK_ID = 421_337
HOOK_PATH = "/hooks/github/"
METHODS = ("raw1", "raw4", "copy", "es1", "es100", "inproc", "bulk", "import")
LABELS = {
    "raw1": "raw psycopg INSERT … ON CONFLICT DO NOTHING, commit per event, 1 connection",
    "raw4": "raw psycopg INSERT, commit per event, 4 connections",
    "copy": "raw COPY, one transaction",
    "es1": "eventsourcing recorder, 1 event per transaction",
    "es100": "eventsourcing recorder, 100 events per transaction",
    "inproc": "Shiplog `stream.append()` in process",
    "bulk": "Shiplog `stream.append_many()`, 5,000 per transaction",
    "import": "Shiplog `import_history` (parse, normalise, append_many)",
    "http": "Shiplog over HTTP: gunicorn + wrk, GitHub hook",
}
# The HTTP shape: sync workers wait on each commit's fsync, so two more than the cores.
WORKERS = 4
CONNECTIONS = 16
# The server's body limit during the benchmark, so an oversized delivery costs 257 KB, not 25 MB.
MAX_BODY = 256 * 1024
MIXED_SIZE = "8k"
TARGETS = {
    "http_rate": 1_400,
    "http_p99_ms": 10.0,
    "http_over_es1": 1.3,
    "inproc_over_raw1": 0.8,
    "bulk_rate": 25_000,
    "worker_rss_mb": 300,
}
# A run during which neighbours took this share of the machine's CPU is reported as noisy.
NOISY = 0.10


@dataclass(frozen=True)
class Plan:
    """How long, how often and how much of everything."""

    rounds: int
    duration_s: float
    warmup_s: float
    max_events: int
    # Per size: events for the count-bounded contenders (COPY, bulk, import).
    bulk_events: dict[str, int]
    methods: tuple[str, ...]


def plan(options: Options) -> Plan:
    """Return three rounds of 10 s runs, or with --quick one round of 3 s and fewer events."""
    quick = options.quick
    # About 96 MB of bodies per bulk run (a quarter with --quick), at most 20,000 events.
    budget = (24 if quick else 96) * 1024 * 1024
    return Plan(
        rounds=options.rounds or (1 if quick else 3),
        duration_s=options.duration_s or (3 if quick else 10),
        warmup_s=1 if quick else 3,
        max_events=20_000 if quick else 100_000,
        bulk_events={
            size: min(5_000 if quick else 20_000, budget // nominal)
            for size, nominal in corpus.SIZES.items()
        },
        methods=METHODS,
    )


def ensure_eventsourcing() -> str:
    """Install eventsourcing under bench/.deps (benchmark only) if missing; return its version."""
    import importlib.metadata

    def version() -> str | None:
        found = list(importlib.metadata.distributions(name="eventsourcing", path=[str(DEPS)]))
        return found[0].version if found else None

    if version() is None:
        print("installing eventsourcing into bench/.deps (for the benchmark only)", flush=True)
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                "--target", str(DEPS), "eventsourcing", "psycopg-pool",
            ],
            check=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return version() or "not installed"


def _redis_version() -> str:
    done = subprocess.run(
        [REDIS_SERVER, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip()


def _run_worker(env: dict[str, str], spec: dict[str, Any], *, timeout: float) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "bench.compare_worker"],
        cwd=REPO,
        env={**env, "BENCH_SPEC": json.dumps(spec)},
        stdout=subprocess.PIPE,
        stderr=None,  # progress lines go straight to the terminal
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.compare_worker failed ({done.returncode})")
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise RuntimeError(f"no result from bench.compare_worker:\n{done.stdout[-2000:]}")


def _worker_rss_mb(master: int) -> dict[int, float]:
    """Return the resident memory of each child of the gunicorn master, in MB."""
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(master) and "VmRSS" in fields:
            found[int(entry.name)] = int(fields["VmRSS"].split()[0]) / 1024
    return found


class RssSampler:
    """Sample the gunicorn workers' RSS twice a second while a run lasts."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.peak: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        # Bounded by the run: stopped by __exit__, and never more than an hour of samples.
        for _ in range(7200):
            for pid, mb in _worker_rss_mb(self.master).items():
                self.peak[pid] = max(self.peak.get(pid, 0.0), mb)
            if self._stop.wait(0.5):
                break

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _wrk(
    url: str, load: Load, *, files: tuple[Path, Path], big: Path, mixed: bool, workdir: Path
) -> dict[str, Any]:
    """Run wrk with the delivery script and return its JSON summary."""
    tag = secrets.token_hex(4)
    out = workdir / f"wrk-{tag}.json"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BENCH_BODY_FILE": str(files[0]),
        "BENCH_HEADERS_FILE": str(files[1]),
        "BENCH_BIG_BODY_FILE": str(big),
        "BENCH_MIXED": "1" if mixed else "0",
        "BENCH_RUN_TAG": tag,
        "BENCH_OUT": str(out),
    }
    done = subprocess.run(
        [
            ensure_wrk(),
            f"--threads={load.threads}",
            f"--connections={load.connections}",
            f"--duration={load.duration_s:.0f}s",
            f"--timeout={load.timeout_s:.0f}s",
            f"--script={SCRIPT}",
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=load.duration_s + 60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    raw["run_tag"] = tag
    return raw


def _stream_head(pg: Postgres) -> int:
    """Return the last position once requests still in flight have committed."""
    query = "SELECT coalesce(max(position), 0), count(*) FROM shiplog_stream"
    head = pg.execute(query)[0]
    for _ in range(50):
        time.sleep(0.2)
        now = pg.execute(query)[0]
        if now == head:
            return int(head[0])
        head = now
    raise RuntimeError("the stream kept growing 10 s after the load stopped")


def _check_http(
    pg: Postgres, env: dict[str, str], before: int, raw: dict[str, Any]
) -> dict[str, Any]:
    """Check the stream against what wrk saw: every 202 stored once, nothing else, chain intact."""
    _stream_head(pg)
    rows = pg.execute(
        f"SELECT event_id::text, delivery_key FROM shiplog_stream WHERE position > {before}"
    )
    ours = f"github:{HOOK_ID}:{raw['run_tag']}-"
    stored = {event_id for event_id, _ in rows}
    acked, duplicates = raw["acked"], raw["duplicates"]
    statuses = {int(status): count for status, count in raw["statuses"].items()}
    kinds = raw["kinds"]
    unanswered = int(raw["sent"]) - int(raw["responses"])
    chain = _run_worker(env, {"verify_after": before}, timeout=600)
    checks = {
        "only 200, 202, 401 and 413 answers": set(statuses) <= {200, 202, 401, 413},
        "every 202 stored": set(acked) <= stored,
        "no delivery acknowledged as new twice": len(set(acked)) == len(acked),
        "every 200 names a stored delivery": set(duplicates) <= stored,
        "no row from anywhere else": all(key.startswith(ours) for _, key in rows),
        "no rejected delivery stored": not any("-4000-9000-" in key for _, key in rows),
        "unacknowledged rows only from requests in flight": len(stored - set(acked)) <= unanswered,
        "rejections answered 401 and 413": all(
            statuses.get(status, 0) <= kinds[kind] <= statuses.get(status, 0) + unanswered
            for status, kind in ((401, "bad_signature"), (413, "oversized"))
        ),
        # A redelivery that overtakes its original is answered 202 and the original 200.
        "deliveries answered 200 or 202": statuses.get(200, 0) + statuses.get(202, 0)
        <= kinds["new"] + kinds["duplicate"]
        <= statuses.get(200, 0) + statuses.get(202, 0) + unanswered,
        "chain intact after the run's first row": chain["problems"] == 0,
    }
    return {
        "acknowledged": len(acked),
        "duplicates_answered": len(duplicates),
        "stored": len(rows),
        "unanswered": unanswered,
        "chain_checked": chain["checked"],
        "failed": [name for name, ok in checks.items() if not ok],
    }


def _percentiles_ms(raw: dict[str, Any]) -> dict[str, float]:
    latency = raw["latency_us"]
    return {name: round(latency[name] / 1000, 3) for name in ("p50", "p95", "p99")}


def _http_run(
    *,
    server: Server,
    pg: Postgres,
    env: dict[str, str],
    run_plan: Plan,
    files: tuple[Path, Path],
    big: Path,
    mixed: bool,
    workdir: Path,
    roots: dict[str, set[int]],
) -> dict[str, Any]:
    url = server.url(HOOK_PATH)
    warm = Load(connections=CONNECTIONS, duration_s=run_plan.warmup_s)
    _wrk(url, warm, files=files, big=big, mixed=mixed, workdir=workdir)
    before = _stream_head(pg)
    load = Load(connections=CONNECTIONS, duration_s=run_plan.duration_s)
    cpu_before = cpu.sample(roots)
    with RssSampler(server.pid) as rss:
        raw = _wrk(url, load, files=files, big=big, mixed=mixed, workdir=workdir)
    usage = cpu.usage(cpu_before, cpu.sample(roots))
    statuses = {int(status): count for status, count in raw["statuses"].items()}
    duration = raw["duration_us"] / 1e6
    ok = statuses.get(202, 0) + statuses.get(200, 0)
    return {
        "events": ok,
        "elapsed_s": round(duration, 3),
        "rate_per_s": round(ok / duration, 1),
        "latency_ms": _percentiles_ms(raw),
        "latency_per": "request",
        "statuses": raw["statuses"],
        "kinds": raw["kinds"],
        "socket_errors": raw["errors"],
        "worker_rss_peak_mb": round(max(rss.peak.values(), default=0.0), 1),
        "cpu": usage,
        "integrity": _check_http(pg, env, before, raw),
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return medians per (contender, size), the ratios and the targets."""
    table: dict[str, dict[str, Any]] = {}
    for run in runs:
        table.setdefault(f"{run['method']}:{run['size']}", {"runs": []})["runs"].append(run)
    medians: dict[str, dict[str, Any]] = {}
    for key, entry in table.items():
        mine = entry["runs"]
        latencies = [run["latency_ms"] for run in mine if run["latency_ms"]]
        medians[key] = {
            "method": mine[0]["method"],
            "size": mine[0]["size"],
            "runs": len(mine),
            "rate_per_s": round(_median([run["rate_per_s"] for run in mine]), 1),
            "latency_ms": {
                name: round(_median([lat[name] for lat in latencies]), 3)
                for name in ("p50", "p95", "p99")
            }
            if latencies
            else None,
            "latency_per": mine[0]["latency_per"],
        }

    def rate(method: str, size: str) -> float:
        entry = medians.get(f"{method}:{size}")
        return float(entry["rate_per_s"]) if entry else 0.0

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if b else None

    ratios = {
        size: {
            "http_over_raw1": ratio(rate("http", size), rate("raw1", size)),
            "inproc_over_raw1": ratio(rate("inproc", size), rate("raw1", size)),
            "http_over_es1": ratio(rate("http", size), rate("es1", size)),
        }
        for size in corpus.SIZES
    }
    rss = max((run.get("worker_rss_peak_mb", 0.0) for run in runs), default=0.0)
    targets = []
    for size in corpus.SIZES:
        http = medians.get(f"http:{size}")
        if http:
            targets.append(
                _target(f"HTTP {size}: deliveries/s", http["rate_per_s"], TARGETS["http_rate"])
            )
            targets.append(
                _target(
                    f"HTTP {size}: p99 ms",
                    http["latency_ms"]["p99"],
                    TARGETS["http_p99_ms"],
                    at_most=True,
                )
            )
        over_es1 = ratios[size]["http_over_es1"]
        if over_es1 is not None:
            targets.append(
                _target(
                    f"HTTP {size} / eventsourcing 1 per txn", over_es1, TARGETS["http_over_es1"]
                )
            )
        over_raw1 = ratios[size]["inproc_over_raw1"]
        if over_raw1 is not None:
            targets.append(
                _target(f"in-process {size} / raw insert", over_raw1, TARGETS["inproc_over_raw1"])
            )
        if f"bulk:{size}" in medians:
            targets.append(
                _target(f"bulk import {size}: events/s", rate("bulk", size), TARGETS["bulk_rate"])
            )
    targets.append(_target("web worker peak RSS MB", rss, TARGETS["worker_rss_mb"], at_most=True))
    return {"medians": medians, "ratios": ratios, "worker_rss_peak_mb": rss, "targets": targets}


def _target(name: str, value: float, goal: float, *, at_most: bool = False) -> dict[str, Any]:
    met = value <= goal if at_most else value >= goal
    return {"target": name, "value": value, "goal": goal, "at_most": at_most, "met": met}


def format_value(value: float) -> str:
    """Return a rate with thousands separators, a ratio or a latency with two decimals."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def markdown(
    summary: dict[str, Any],
    runs: list[dict[str, Any]],
    run_plan: Plan,
    sizes: dict[str, dict[str, int]],
    machine: dict[str, Any],
    elapsed_s: float,
    failures: list[str],
    chain: dict[str, Any],
) -> str:
    """Return the Markdown of the comparison section."""
    medians = summary["medians"]
    lines = [
        "## Ingestion side by side: the raw limit, eventsourcing, Shiplog",
        "",
        f"Measured {machine['measured_at']} on {machine['cores']} cores ({machine['cpu']}); "
        f"this suite took {elapsed_s / 60:.1f} min; eventsourcing "
        f"{machine.get('compared_against', {}).get('eventsourcing', '?')} (installed under "
        f"`bench/.deps` for the benchmark only), {machine.get('redis', 'redis')}.",
        "",
        "One scratch PostgreSQL and Redis on random loopback ports. Corpus: GitHub "
        "`workflow_job` and CircleCI `job-completed` bodies, alternating, of "
        + ", ".join(
            f"{size} (GitHub {by['github']:,} B, CircleCI {by['circleci']:,} B)"
            for size, by in sizes.items()
        )
        + ". Raw contenders write the stream's row into a table with the stream's columns "
        "and indexes, with no chain and no lock; eventsourcing's `PostgresApplicationRecorder` "
        "(its totally ordered notification log is what the stream's positions are) stores the "
        "body as the event's state. HTTP: gunicorn "
        f"({WORKERS} sync workers, `config.settings.production`, broker on the scratch Redis), "
        f"`wrk` with {CONNECTIONS} connections posting validly signed GitHub deliveries of the "
        "size, each with its own delivery id (CircleCI's key is in its signed body, which "
        "`wrk` cannot re-sign per request; its in-process figures are above). "
        f"Each figure is the median of {run_plan.rounds} interleaved rounds: timed runs last "
        f"{run_plan.duration_s:.0f} s (at most {run_plan.max_events:,} events); COPY, bulk "
        "and import write "
        + ", ".join(f"{n:,} ({size})" for size, n in run_plan.bulk_events.items())
        + " events. Latency is per event, per transaction (batches) or per request (HTTP, "
        "client side).",
        "",
        "| contender | body | events/s | p50 ms | p95 ms | p99 ms | latency per |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for method in (*METHODS, "http"):
        for size in corpus.SIZES:
            entry = medians.get(f"{method}:{size}")
            if not entry:
                continue
            lat = entry["latency_ms"]
            cells = (
                f"{lat['p50']:.2f} | {lat['p95']:.2f} | {lat['p99']:.2f}"
                if lat
                else "n/a | n/a | n/a"
            )
            lines.append(
                f"| {LABELS[method]} | {size} | {entry['rate_per_s']:,.0f} | {cells} "
                f"| {entry['latency_per']} |"
            )
    mixed = [run for run in runs if run["method"] == "mixed"]
    if mixed:
        statuses: dict[str, int] = {}
        kinds: dict[str, int] = {}
        for run in mixed:
            for status, count in run["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
            for kind, count in run["kinds"].items():
                kinds[kind] = kinds.get(kind, 0) + count
        lat = {
            name: _median([run["latency_ms"][name] for run in mixed])
            for name in ("p50", "p95", "p99")
        }
        lines += [
            "",
            f"Mixed traffic ({MIXED_SIZE} bodies; of every 100 requests 10 redeliveries, 1 bad "
            f"signature, 1 body over the limit, set to {MAX_BODY // 1024} KB for the run): "
            f"{_median([run['rate_per_s'] for run in mixed]):,.0f} answered 2xx/s, "
            f"p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, p99 {lat['p99']:.2f} ms. "
            "Sent: "
            + ", ".join(f"{count:,} {kind.replace('_', ' ')}" for kind, count in kinds.items())
            + "; answered: "
            + ", ".join(
                f"{count:,} answered {status}" for status, count in sorted(statuses.items())
            )
            + ".",
        ]
    lines += [
        "",
        "| ratio | " + " | ".join(corpus.SIZES) + " |",
        "| --- |" + " ---: |" * len(corpus.SIZES),
    ]
    for key, label in (
        ("http_over_raw1", "HTTP path / raw single-row insert"),
        ("inproc_over_raw1", "in-process append / raw single-row insert"),
        ("http_over_es1", "HTTP path / eventsourcing one-event append"),
    ):
        values = [summary["ratios"][size][key] for size in corpus.SIZES]
        lines.append(
            f"| {label} | "
            + " | ".join("n/a" if value is None else f"{value:.2f}" for value in values)
            + " |"
        )
    lines += ["", "| target | goal | measured | met |", "| --- | ---: | ---: | --- |"]
    for target in summary["targets"]:
        goal, value = target["goal"], target["value"]
        if target["met"]:
            verdict = "yes"
        else:
            miss = (value - goal) / goal if target["at_most"] else (goal - value) / goal
            verdict = f"**no**: {'over' if target['at_most'] else 'short'} by {miss:.0%}"
        sign = "≤" if target["at_most"] else "≥"
        lines.append(
            f"| {target['target']} | {sign} {format_value(goal)} "
            f"| {format_value(value)} | {verdict} |"
        )
    shares = [run["cpu"]["others"] + run["cpu"]["steal"] for run in runs if "cpu" in run]
    checked = [run["integrity"] for run in runs if "integrity" in run]
    lines += [
        "",
        f"Integrity, after each of the {len(checked)} Shiplog runs (in process, bulk, import, "
        "HTTP, mixed): "
        + (
            "every acknowledged delivery was stored exactly once, no other row was added, every "
            "redelivery was answered with a stored delivery, no rejected one was stored, and the "
            "chain verified from the run's first row; "
            if not failures
            else f"**FAILED**: {', '.join(sorted(set(failures)))}; "
        )
        + f"`verify_chain()` over the whole stream at the end: {chain['rows']:,} rows, "
        f"{chain['problems']} problems.",
        "",
        f"Neighbours: processes other than the benchmark's (and steal) took a median "
        f"{_median(shares):.0%} and at most {max(shares, default=0):.0%} of the machine's CPU "
        f"during the runs; {sum(1 for share in shares if share >= NOISY)} of {len(shares)} runs "
        f"were at or above {NOISY:.0%}, and their figures are lower than a quiet machine gives.",
    ]
    return "\n".join(lines)


def run(options: Options, machine: dict[str, Any]) -> Report:
    """Run every contender on every size, interleaved, and report medians and ratios."""
    started = time.monotonic()
    run_plan = plan(options)
    version = ensure_eventsourcing()
    machine["compared_against"] = {"eventsourcing": version}
    machine["redis"] = _redis_version()
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        shiplog = stack.enter_context(scratch_shiplog(REPOSITORY))
        workdir, pg = shiplog.workdir, shiplog.pg
        redis = stack.enter_context(scratch_redis(workdir))
        print(f"scratch Redis on {redis.url}", flush=True)
        env = {**shiplog.env, "REDIS_URL": redis.url, "SHIPLOG_MAX_WEBHOOK_BYTES": str(MAX_BODY)}
        files: dict[str, tuple[Path, Path]] = {}
        sizes: dict[str, dict[str, int]] = {}
        for size in corpus.SIZES:
            delivery = github_delivery(
                corpus.GITHUB_EVENT,
                corpus.payload("github", size),
                shiplog.github_secret,
                hook_id=HOOK_ID,
            )
            files[size] = prepare(delivery, workdir, f"github-{size}")
            sizes[size] = {
                platform: len(json.dumps(corpus.payload(platform, size), separators=(",", ":")))
                for platform in corpus.PLATFORMS
            }
        big = workdir / "oversized.body"
        big.write_bytes(b'{"padding": "' + b"x" * MAX_BODY + b'"}')
        server = stack.enter_context(
            gunicorn(
                name="shiplog-compare",
                env=env,
                workdir=workdir,
                probe_path=HOOK_PATH,
                workers=WORKERS,
            )
        )
        roots = {"postgres": {pg.pid}, "redis": {redis.pid}, "gunicorn": {server.pid}}
        for round_number in range(1, run_plan.rounds + 1):
            for size in corpus.SIZES:
                print(f"  round {round_number}/{run_plan.rounds}, {size}", flush=True)
                cpu.wait_for_quiet(roots, patience_s=10 if options.quick else 30)
                before = cpu.sample(roots)
                result = _run_worker(
                    env,
                    {
                        "size": size,
                        "tag": secrets.token_hex(4),
                        "methods": list(run_plan.methods),
                        "duration_s": run_plan.duration_s,
                        "max_events": run_plan.max_events,
                        "bulk_events": run_plan.bulk_events[size],
                    },
                    timeout=len(run_plan.methods) * (run_plan.duration_s * 3 + 120),
                )
                usage = cpu.usage(before, cpu.sample(roots))
                for record in result["results"]:
                    # One share for the whole worker: its contenders ran back to back.
                    record.update(round=round_number, cpu=usage)
                    failures += record.get("integrity", {}).get("failed", [])
                    runs.append(record)
                pg.execute("CHECKPOINT", superuser=True)
                record = _http_run(
                    server=server,
                    pg=pg,
                    env=env,
                    run_plan=run_plan,
                    files=files[size],
                    big=big,
                    mixed=False,
                    workdir=workdir,
                    roots=roots,
                )
                record.update(method="http", size=size, round=round_number)
                failures += record["integrity"]["failed"]
                runs.append(record)
                _print_http(record)
            record = _http_run(
                server=server,
                pg=pg,
                env=env,
                run_plan=run_plan,
                files=files[MIXED_SIZE],
                big=big,
                mixed=True,
                workdir=workdir,
                roots=roots,
            )
            record.update(method="mixed", size=MIXED_SIZE, round=round_number)
            failures += record["integrity"]["failed"]
            runs.append(record)
            _print_http(record)
        print("  verify_chain() over the whole stream", flush=True)
        chain = shell_result(env, VERIFY, timeout=1800)
        assert isinstance(chain, dict)
        if chain["problems"]:
            failures.append("verify_chain found problems")
    elapsed = time.monotonic() - started
    summary = summarise([run for run in runs if run["method"] != "mixed"])
    return Report(
        data={
            "plan": asdict(run_plan),
            "body_bytes": sizes,
            "elapsed_s": round(elapsed, 1),
            "eventsourcing": version,
            "targets": TARGETS,
            "summary": summary,
            "chain": chain,
            "failures": failures,
            "runs": runs,
        },
        markdown=markdown(summary, runs, run_plan, sizes, machine, elapsed, failures, chain),
        passed=not failures,
    )


def _print_http(record: dict[str, Any]) -> None:
    lat = record["latency_ms"]
    integrity = record["integrity"]
    print(
        f"    {record['method']:<7} {record['size']:>3}: {record['rate_per_s']:>9,.0f} 2xx/s"
        f"  p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms  statuses {record['statuses']}"
        f"  errors {record['socket_errors']}  worker RSS {record['worker_rss_peak_mb']:.0f} MB"
        f"  others {record['cpu']['others']:.0%}"
        + (f"  FAILED: {integrity['failed']}" if integrity["failed"] else "  checked"),
        flush=True,
    )


SUITE = Suite(name="compare", title="Ingestion side by side", run=run)
