"""Ingestion: signed GitHub `workflow_job` deliveries through gunicorn into the stream.

Every case runs against two servers, interleaved round by round: the ceiling (`bench.ceiling`:
the same gunicorn and middleware, a view that checks the HMAC and parses the JSON, no DB) and
Shiplog's real hook. After every Shiplog run the stream is checked: each acknowledged delivery
is stored exactly once, nothing else was added, and `verify_chain()` finds no problem.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import cpu
from bench.load import Load, LoadResult, prepare, run_wrk
from bench.payloads import REPOSITORY, workflow_job
from bench.runner import Options, Report, Suite
from bench.scratch import Postgres
from bench.server import Server, gunicorn, scratch_shiplog, shell_result
from releases.deliveries import github_delivery

HOOK_ID = 421_337
HOOK_PATH = "/hooks/github/"
TARGET = {"rate": 1_000, "p99_ms": 50.0}  # p99 strictly below
STRETCH = {"rate": 1_400, "p99_ms": 10.0}  # p99 at most
SIZES = {"small": "~1 KB", "large": "~8 KB"}
TARGETS = ("ceiling", "shiplog")
# A run during which neighbours took this share of the machine's CPU is noisy: it is measured
# again, up to ATTEMPTS times in all, the quietest attempt kept and the rest only counted.
NOISY = 0.10
ATTEMPTS = 3

VERIFY = """\
import json
from releases.models import StreamEvent
from releases.stream import verify_chain
problems = [f"{p.position}: {p.reason}" for p in verify_chain()]
print("BENCH-RESULT " + json.dumps(
    {"rows": StreamEvent.objects.count(), "problems": len(problems), "first": problems[:5]}))
"""


@dataclass(frozen=True)
class Case:
    """One load shape: payload size, connections, and how gunicorn runs its workers."""

    size: str
    connections: int
    worker_class: str = "sync"
    threads: int = 1
    workers: int = 2

    @property
    def server(self) -> str:
        """Return the name of the gunicorn configuration this case needs."""
        kind = self.worker_class if self.threads == 1 else f"{self.worker_class}x{self.threads}"
        return kind if self.workers == 2 else f"{self.workers}{kind}"

    @property
    def label(self) -> str:
        """Return a short name for progress lines."""
        return f"{self.size} c{self.connections} {self.server}"


CASES = [
    Case("small", 8),
    Case("large", 8),
    Case("small", 16),
    Case("large", 16),
    # Sync workers spend part of each request waiting for the commit's fsync, so two more
    # than the cores keep the CPU busy (gthread workers measured slower: the GIL).
    Case("small", 16, "sync", 1, 4),
    Case("large", 16, "sync", 1, 4),
]
QUICK_CASES = [Case("small", 8), Case("large", 8)]


@dataclass(frozen=True)
class Plan:
    """How long and how often to run every case."""

    cases: list[Case]
    rounds: int
    warmup_s: float
    duration_s: float
    # Waiting for a quiet machine and measuring noisy runs again stop once this is spent.
    budget_s: float


def parse_case(text: str) -> Case:
    """Return the case written as SIZE:CONNS[:WORKER[:THREADS[:WORKERS]]]: small:16:sync:1:4."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 5 or parts[0] not in SIZES or not parts[1].isdigit():
        raise ValueError(f"a case is SIZE:CONNS[:WORKER[:THREADS]] with SIZE in {list(SIZES)}")
    worker_class = parts[2] if len(parts) > 2 else "sync"
    if worker_class not in {"sync", "gthread"}:
        raise ValueError("WORKER is sync or gthread")
    threads = int(parts[3]) if len(parts) > 3 else 1
    if not 1 <= int(parts[1]) <= 256 or not 1 <= threads <= 64:
        raise ValueError("CONNS must be 1..256 and THREADS 1..64")
    workers = int(parts[4]) if len(parts) > 4 else 2
    if not 1 <= workers <= 16:
        raise ValueError("WORKERS must be 1..16")
    return Case(parts[0], int(parts[1]), worker_class, threads, workers)


def plan(options: Options) -> Plan:
    """Return the plan for these options: three rounds of 10 s, or one of 5 s with --quick."""
    return Plan(
        cases=[parse_case(text) for text in options.cases]
        or (QUICK_CASES if options.quick else CASES),
        rounds=options.rounds or (1 if options.quick else 3),
        warmup_s=2 if options.quick else 3,
        duration_s=options.duration_s or (5 if options.quick else 10),
        budget_s=240 if options.quick else 1200,
    )


def _stream_head(pg: Postgres) -> tuple[int, int]:
    rows = pg.execute("SELECT coalesce(max(position), 0), count(*) FROM shiplog_stream")
    return int(rows[0][0]), int(rows[0][1])


def _settled_head(pg: Postgres) -> int:
    """Return the stream's last position once requests still in flight have committed."""
    head = _stream_head(pg)
    for _ in range(50):
        time.sleep(0.2)
        now = _stream_head(pg)
        if now == head:
            return head[0]
        head = now
    raise RuntimeError("the stream kept growing 10 s after the load stopped")


def _check_stream(
    pg: Postgres, env: dict[str, str], before: int, load: LoadResult
) -> dict[str, Any]:
    """Compare the rows a run added with what wrk saw acknowledged, then verify the chain."""
    _settled_head(pg)
    rows = pg.execute(
        f"SELECT event_id::text, delivery_key FROM shiplog_stream WHERE position > {before}"
    )
    ours = f"github:{HOOK_ID}:{load.run_tag}-"
    foreign = sum(1 for _, key in rows if not key.startswith(ours))
    stored = {event_id for event_id, _ in rows}
    acked = set(load.acked)
    unacknowledged = len(stored - acked)
    chain = shell_result(env, VERIFY)
    assert isinstance(chain, dict)
    checks = {
        "every acknowledged delivery stored": acked <= stored,
        "no delivery acknowledged twice": len(acked) == len(load.acked) == load.ok,
        "every 2xx was a new record (202)": load.statuses.get(202, 0) == load.ok,
        "no row from anywhere else": foreign == 0,
        "unacknowledged rows only from requests in flight": unacknowledged <= load.unanswered,
        "verify_chain finds no problem": chain["problems"] == 0,
    }
    return {
        "acknowledged": load.ok,
        "stored": len(rows),
        "stored_unacknowledged": unacknowledged,
        "unanswered": load.unanswered,
        "missing": len(acked - stored),
        "foreign": foreign,
        "chain_rows": chain["rows"],
        "chain_problems": chain["problems"],
        "chain_first_problems": chain["first"],
        "failed": [name for name, ok in checks.items() if not ok],
    }


def _measure(
    *,
    target: str,
    server: Server,
    case: Case,
    run_plan: Plan,
    files: tuple[Path, Path],
    pg: Postgres,
    env: dict[str, str],
    workdir: Path,
    roots: dict[str, set[int]],
    patience_s: float,
) -> dict[str, Any]:
    """Warm up, run the load once, and for Shiplog check the stream it left behind."""
    body_file, headers_file = files
    url = server.url(HOOK_PATH)
    quiet = cpu.wait_for_quiet(roots, patience_s=patience_s)
    # A checkpoint now rather than one forced by WAL volume in the middle of a measurement.
    pg.execute("CHECKPOINT", superuser=True)
    warm = Load(connections=case.connections, duration_s=run_plan.warmup_s)
    run_wrk(url, warm, body_file=body_file, headers_file=headers_file, workdir=workdir)
    before = _settled_head(pg) if target == "shiplog" else 0
    load = Load(connections=case.connections, duration_s=run_plan.duration_s)
    cpu_before = cpu.sample(roots)
    result = run_wrk(url, load, body_file=body_file, headers_file=headers_file, workdir=workdir)
    record: dict[str, Any] = {
        "target": target,
        **asdict(case),
        **result.summary(),
        "cpu": cpu.usage(cpu_before, cpu.sample(roots)),
        "cpu_before": quiet,
    }
    if target == "shiplog":
        record["integrity"] = _check_stream(pg, env, before, result)
    return record


def _noise(record: dict[str, Any]) -> float:
    """Return the share of the machine's CPU that neighbours and the hypervisor took."""
    share: float = record["cpu"]["others"] + record["cpu"]["steal"]
    return share


def _print_run(round_number: int, rounds: int, case: Case, record: dict[str, Any]) -> None:
    latency = record["latency_ms"]
    integrity = record.get("integrity")
    checked = ""
    if integrity is not None:
        checked = (
            f" | stored {integrity['stored']:,} = {integrity['acknowledged']:,} acked"
            f" + {integrity['stored_unacknowledged']} in flight;"
            f" chain {integrity['chain_problems']} problems"
        )
        if integrity["failed"]:
            checked += f" FAILED: {', '.join(integrity['failed'])}"
    print(
        f"  round {round_number}/{rounds} {case.label:<18} {record['target']:<8}"
        f" {record['rate_2xx_per_s']:>8,.0f}/s  p50 {latency['p50']:6.2f} ms"
        f"  p99 {latency['p99']:6.2f} ms  non-2xx {record['non_2xx']}"
        f"  cpu: gunicorn {record['cpu']['ours_gunicorn']:.0%}"
        f" postgres {record['cpu']['ours_postgres']:.0%} wrk {record['cpu']['ours_client']:.0%}"
        f" others {record['cpu']['others']:.0%}"
        f" steal {record['cpu']['steal']:.0%}{checked}",
        flush=True,
    )


def _median(records: list[dict[str, Any]], *path: str) -> float:
    values = []
    for record in records:
        value: Any = record
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def summarise(runs: list[dict[str, Any]], cases: list[Case]) -> list[dict[str, Any]]:
    """Return one row per case: medians over rounds for each target, and Shiplog / ceiling."""
    rows = []
    for case in cases:
        row: dict[str, Any] = asdict(case)
        for target in TARGETS:
            mine = [
                run for run in runs if run["target"] == target and Case(**_case_of(run)) == case
            ]
            row[target] = {
                "runs": len(mine),
                "rate_2xx_per_s": round(_median(mine, "rate_2xx_per_s"), 1),
                "p50_ms": round(_median(mine, "latency_ms", "p50"), 2),
                "p99_ms": round(_median(mine, "latency_ms", "p99"), 2),
                "non_2xx": sum(run["non_2xx"] for run in mine),
                "socket_errors": sum(sum(run["socket_errors"].values()) for run in mine),
            }
        shiplog, ceiling = row["shiplog"], row["ceiling"]
        row["ratio"] = round(shiplog["rate_2xx_per_s"] / ceiling["rate_2xx_per_s"], 3)
        row["target_met"] = (
            shiplog["rate_2xx_per_s"] >= TARGET["rate"] and shiplog["p99_ms"] < TARGET["p99_ms"]
        )
        row["stretch_met"] = (
            shiplog["rate_2xx_per_s"] >= STRETCH["rate"] and shiplog["p99_ms"] <= STRETCH["p99_ms"]
        )
        rows.append(row)
    return rows


def _case_of(run: dict[str, Any]) -> dict[str, Any]:
    return {
        name: run[name] for name in ("size", "connections", "worker_class", "threads", "workers")
    }


def markdown(
    rows: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    run_plan: Plan,
    sizes: dict[str, int],
    elapsed_s: float,
    machine: dict[str, Any],
) -> str:
    """Return the Markdown of the ingestion section."""

    def mark(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        "## Ingestion: GitHub webhook deliveries into the stream",
        "",
        f"Measured {machine['measured_at']} on {machine['cores']} cores ({machine['cpu']}); "
        f"this suite took {elapsed_s / 60:.1f} min.",
        "",
        "`wrk` (2 threads) posts validly signed GitHub `workflow_job` deliveries to "
        "`/hooks/github/`, every request with its own `X-GitHub-Delivery`, to Shiplog under "
        "gunicorn (`config.settings.production`) on the scratch PostgreSQL. The "
        "ceiling is the same gunicorn, settings and middleware serving `bench/ceiling.py`, a "
        "view that only checks the HMAC and parses the JSON. Bodies: "
        + ", ".join(f"{name} {size:,} bytes" for name, size in sizes.items())
        + f". Each figure is the median of {run_plan.rounds} runs of "
        f"{run_plan.duration_s:.0f} s after {run_plan.warmup_s:.0f} s of warm-up, ceiling and "
        "Shiplog interleaved. Deliveries/s counts 2xx answers only; latencies are wrk's, "
        "client side.",
        "",
        f"Targets: at least {TARGET['rate']:,} deliveries/s with p99 under "
        f"{TARGET['p99_ms']:.0f} ms; stretch: {STRETCH['rate']:,}/s with p99 at most "
        f"{STRETCH['p99_ms']:.0f} ms.",
        "",
        "| body | conns | gunicorn | Shiplog /s | p50 ms | p99 ms | non-2xx "
        "| ceiling /s | ceiling p50 | ceiling p99 | Shiplog / ceiling | target | stretch |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        shiplog, ceiling = row["shiplog"], row["ceiling"]
        workers = row.get("workers", 2)
        gunicorn_text = (
            f"{workers} sync workers"
            if row["worker_class"] == "sync"
            else f"{workers} {row['worker_class']} workers, {row['threads']} threads"
        )
        lines.append(
            f"| {row['size']} ({SIZES[row['size']]}) | {row['connections']} | {gunicorn_text} "
            f"| {shiplog['rate_2xx_per_s']:,.0f} | {shiplog['p50_ms']:.1f} "
            f"| {shiplog['p99_ms']:.1f} | {shiplog['non_2xx'] + shiplog['socket_errors']} "
            f"| {ceiling['rate_2xx_per_s']:,.0f} | {ceiling['p50_ms']:.1f} "
            f"| {ceiling['p99_ms']:.1f} | {row['ratio']:.2f} "
            f"| {mark(row['target_met'])} | {mark(row['stretch_met'])} |"
        )
    others = sorted(_noise(run) for run in runs)
    retried = sum(run["attempts"] - 1 for run in runs)
    noisy = sum(1 for share in others if share >= NOISY)
    checked = [run["integrity"] for run in runs if "integrity" in run]
    failures = sorted({name for integrity in checked for name in integrity["failed"]})
    in_flight = sum(integrity["stored_unacknowledged"] for integrity in checked)
    lines += [
        "",
        "Non-2xx counts non-2xx answers and socket errors over all rounds. "
        f"Integrity, after each of the {len(checked)} Shiplog runs: "
        + (
            "every acknowledged delivery was in the stream exactly once, no other row was "
            f"added, and `verify_chain()` found no problem over the whole stream "
            f"({max((i['chain_rows'] for i in checked), default=0):,} rows at the end). "
            f"Acknowledged {sum(i['acknowledged'] for i in checked):,}, stored "
            f"{sum(i['stored'] for i in checked):,}: the {in_flight} more are requests in flight "
            "when wrk stopped, committed by Shiplog but never read by wrk."
            if not failures
            else f"**FAILED**: {', '.join(failures)} (see bench/results/)."
        ),
        "",
        f"Neighbours: during the measured runs, processes other than the benchmark's (and the "
        f"hypervisor's steal) took a median {statistics.median(others):.0%} and at most "
        f"{max(others):.0%} of the machine's CPU; {noisy} of {len(runs)} runs were at or above "
        f"{NOISY:.0%} after {retried} noisy attempts were measured again"
        + (", and their figures are lower than a quiet machine gives." if noisy else "."),
    ]
    return "\n".join(lines)


def run(options: Options, machine: dict[str, Any]) -> Report:
    """Run every case against the ceiling and Shiplog, interleaved, and report medians."""
    started = time.monotonic()
    run_plan = plan(options)
    deadline = started + run_plan.budget_s
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        shiplog = stack.enter_context(scratch_shiplog(REPOSITORY))
        workdir, pg, env, secret = shiplog.workdir, shiplog.pg, shiplog.env, shiplog.github_secret
        files, sizes = {}, {}
        for size in sorted({case.size for case in run_plan.cases}, reverse=True):
            delivery = github_delivery("workflow_job", workflow_job(size), secret, hook_id=HOOK_ID)
            files[size] = prepare(delivery, workdir, size)
            sizes[size] = len(delivery.body)
        server_env = {
            # The ceiling reads the one secret from the environment, Shiplog from its table.
            "ceiling": {
                **env,
                "DJANGO_SETTINGS_MODULE": "bench.ceiling_settings",
                "SHIPLOG_GITHUB_WEBHOOK_SECRET": secret,
            },
            "shiplog": env,
        }
        servers: dict[tuple[str, str], Server] = {}
        for round_number in range(1, run_plan.rounds + 1):
            for case in run_plan.cases:
                for target in TARGETS:
                    key = (target, case.server)
                    if key not in servers:
                        servers[key] = stack.enter_context(
                            gunicorn(
                                name=f"{target}-{case.server}",
                                env=server_env[target],
                                workdir=workdir,
                                probe_path=HOOK_PATH,
                                worker_class=case.worker_class,
                                threads=case.threads,
                                workers=case.workers,
                            )
                        )
                    attempts = []
                    for _ in range(ATTEMPTS):
                        left = deadline - time.monotonic()
                        attempts.append(
                            _measure(
                                target=target,
                                server=servers[key],
                                case=case,
                                run_plan=run_plan,
                                files=files[case.size],
                                pg=pg,
                                env=env,
                                workdir=workdir,
                                roots={
                                    "postgres": {pg.pid},
                                    "gunicorn": {s.pid for s in servers.values()},
                                },
                                patience_s=min(30.0, max(left, 0.0)),
                            )
                        )
                        if _noise(attempts[-1]) < NOISY or deadline < time.monotonic():
                            break
                        if len(attempts) < ATTEMPTS:
                            print(f"  neighbours took {_noise(attempts[-1]):.0%}: once more")
                    record = min(attempts, key=_noise)
                    record["round"] = round_number
                    record["attempts"] = len(attempts)
                    runs.append(record)
                    _print_run(round_number, run_plan.rounds, case, record)
        stream_rows = _stream_head(pg)[1]
    elapsed = time.monotonic() - started
    rows = summarise(runs, run_plan.cases)
    failed = any(run["integrity"]["failed"] for run in runs if "integrity" in run)
    return Report(
        data={
            "plan": asdict(run_plan),
            "body_bytes": sizes,
            "elapsed_s": round(elapsed, 1),
            "stream_rows_at_end": stream_rows,
            "targets": {"target": TARGET, "stretch": STRETCH},
            "summary": rows,
            "runs": runs,
        },
        markdown=markdown(rows, runs, run_plan, sizes, elapsed, machine),
        passed=not failed,
    )


SUITE = Suite(name="ingest", title="Ingestion", run=run)
