"""The soak with faults (`make chaos`, opt-in): signed deliveries while the platform breaks.

Sixteen senders post 50,000 signed GitHub and CircleCI deliveries (10% redeliveries, 5% sent
out of order) to Shiplog under gunicorn with production settings, with two Celery workers and
beat on a scratch Redis, while a fault injector runs 20 cycles of: `kill -9` of PostgreSQL's
postmaster then a restart, SIGKILL of a Celery worker in the middle of a task then a restart,
and Redis stopped for a minute. Senders retry whatever was not acknowledged, as GitHub's
redelivery and CircleCI's retries would. Afterwards, everything restarted and drained, the
run checks what must hold: every acknowledged delivery is in the stream exactly once, no
delivery key twice, the hash chain intact, projections equal to a rebuild, every rerun of a
blocked deploy reached the fake CircleCI API at most once per idempotency key, and no answer
was a 500 (a database outage answers 503 with Retry-After).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import secrets
import shutil
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.chaos import workload
from bench.chaos.procs import (
    CeleryProcess,
    Redis,
    Stopwatch,
    celery_processes,
    fake_apis,
    postgres_kill,
    postgres_ready,
    postgres_start,
    scratch_redis,
)
from bench.runner import RESULTS_DIR, Options, Report, Suite
from bench.scratch import LOOPBACK, Postgres, scratch_dir, scratch_postgres
from bench.server import REPO, Server, gunicorn, manage, shell_result, shiplog_env

RELIABILITY = REPO / "docs" / "reliability.md"
LOGS = RESULTS_DIR / "chaos-logs"
FAULTS = ("postgres", "worker", "redis")


@dataclass(frozen=True)
class Plan:
    """The size of a run."""

    deliveries: int
    cycles: int
    redis_down_s: float
    postgres_down_s: float
    gap_s: float  # at least this long between two faults
    senders: int = 16
    retry_cap_s: float = 2.0  # the longest a sender waits, whatever Retry-After says
    drain_s: float = 300.0  # the bound on catching up after the load

    def expected_s(self) -> float:
        """Return how long the faults should take: the load is paced to span them."""
        per = {"postgres": self.postgres_down_s + 6, "worker": 8.0, "redis": self.redis_down_s}
        faults = sum(per[FAULTS[n % len(FAULTS)]] for n in range(self.cycles))
        return faults + (self.cycles + 1) * self.gap_s

    def deadline_s(self) -> float:
        """Return the bound on the load and the faults together."""
        return self.expected_s() * 2 + 300


FULL = Plan(deliveries=50_000, cycles=20, redis_down_s=60, postgres_down_s=5, gap_s=20)
QUICK = Plan(deliveries=3_000, cycles=4, redis_down_s=10, postgres_down_s=3, gap_s=5, drain_s=180)


@dataclass
class Tally:
    """What the senders saw, shared between their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    dispatched: int = 0  # deliveries taken by a sender (first attempts started)
    acknowledged: int = 0
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    retry_after: Counter[str] = field(default_factory=Counter)  # 503s with / without it
    rejected: list[dict[str, Any]] = field(default_factory=list)  # 4xx: never retried
    errors: list[tuple[float, str]] = field(default_factory=list)  # (when, status) non-2xx
    retried: int = 0  # deliveries that needed more than one attempt
    unacknowledged: list[str] = field(default_factory=list)
    acks: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


class Senders:
    """Post the workload from N threads, paced, each delivery retried until acknowledged."""

    def __init__(self, server: Server, items: list[workload.Item], plan: Plan, rate: float):
        self.server = server
        self.items = items
        self.plan = plan
        self.rate = rate
        self.tally = Tally()
        self.stop = threading.Event()
        self.next = 0
        self.started = time.monotonic()
        self.deadline = self.started + plan.deadline_s()
        self.threads = [
            threading.Thread(target=self._run, name=f"sender-{n}", daemon=True)
            for n in range(plan.senders)
        ]

    def start(self) -> None:
        """Start every sender."""
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        """Wait for every sender (each stops by the deadline)."""
        for thread in self.threads:
            thread.join(timeout=max(1.0, self.deadline - time.monotonic() + 60))

    @property
    def done(self) -> bool:
        """Return whether every sender has finished."""
        return not any(thread.is_alive() for thread in self.threads)

    def _take(self) -> int | None:
        with self.tally.lock:
            if self.next >= len(self.items):
                return None
            index = self.next
            self.next += 1
            self.tally.dispatched += 1
            return index

    def _post(self, item: workload.Item) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(LOOPBACK, self.server.port, timeout=30)
        try:
            conn.request("POST", item.delivery.path, item.delivery.body, item.delivery.headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def _run(self) -> None:
        rng = random.Random()
        while not self.stop.is_set():
            index = self._take()
            if index is None:
                return
            # Paced: the load spans the faults instead of finishing before the first.
            wait = self.started + index / self.rate - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return
            self._deliver(self.items[index], rng)

    def _deliver(self, item: workload.Item, rng: random.Random) -> None:
        tally = self.tally
        attempt = 0
        while time.monotonic() < self.deadline and not self.stop.is_set():
            attempt += 1
            began = time.monotonic()
            headers: dict[str, str] = {}
            try:
                status, headers, body = self._post(item)
                label = str(status)
            except (OSError, http.client.HTTPException) as exc:
                status, body, label = 0, b"", f"connection: {type(exc).__name__}"
            elapsed = time.monotonic() - began
            with tally.lock:
                tally.requests += 1
                tally.statuses[label] += 1
                if 200 <= status < 300:
                    answer = orjson.loads(body)
                    tally.acks.setdefault(item.key, []).append(
                        (answer["event_id"], answer["position"])
                    )
                    tally.acknowledged += 1
                    tally.latencies.append(elapsed)
                    if attempt > 1:
                        tally.retried += 1
                    return
                tally.errors.append((began, label))
                if status == 503:
                    has = "Retry-After" in headers or "retry-after" in headers
                    tally.retry_after["with" if has else "without"] += 1
                if 400 <= status < 500 and status != 429:
                    # A 4xx is Shiplog's final word on these bytes: sending them again is futile.
                    tally.rejected.append({"key": item.key, "status": status, "body": body[:300]})
                    return
            hinted = headers.get("Retry-After") or headers.get("retry-after")
            try:
                pause = float(hinted) if hinted else 0.1 * 2 ** min(attempt, 5)
            except ValueError:
                pause = 1.0
            # Capped, and jittered so that 16 senders do not knock in step.
            self.stop.wait(min(pause, self.plan.retry_cap_s) * rng.uniform(0.5, 1.0))
        with tally.lock:
            tally.unacknowledged.append(item.key)


class Faults:
    """Run the fault cycles in a thread, spread over the load, and keep every part alive."""

    def __init__(
        self,
        plan: Plan,
        pg: Postgres,
        redis: Redis,
        celery: list[CeleryProcess],
        senders: Senders,
    ) -> None:
        self.plan = plan
        self.pg = pg
        self.redis = redis
        self.workers = [p for p in celery if not p.beat]
        self.celery = celery
        self.senders = senders
        self.stop = threading.Event()
        self.outages = {kind: Stopwatch() for kind in FAULTS}
        self.windows: list[tuple[str, float, float]] = []
        self.log: list[dict[str, Any]] = []
        self.failure: str | None = None
        self.thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> None:
        """Start the fault injector."""
        self.thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the fault injector to finish its cycles."""
        self.thread.join(timeout=timeout)

    def supervise(self) -> None:
        """Restart a Celery process that exited by itself (and remember it did)."""
        for process in self.celery:
            process.check()

    def _pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < end:
            self.supervise()
            self.stop.wait(min(1.0, max(0.0, end - time.monotonic())))

    def _run(self) -> None:
        try:
            for cycle in range(self.plan.cycles):
                # Cycle k waits for its share of the load to be under way (and a gap).
                share = (cycle + 1) / (self.plan.cycles + 1) * len(self.senders.items)
                self._pause(self.plan.gap_s)
                while (
                    not self.stop.is_set()
                    and self.senders.tally.dispatched < share
                    and not self.senders.done
                ):
                    self._pause(0.5)
                if self.stop.is_set():
                    return
                kind = FAULTS[cycle % len(FAULTS)]
                began = time.monotonic()
                detail = getattr(self, f"_{kind}")(cycle)
                ended = time.monotonic()
                self.windows.append((kind, began, ended))
                self.outages[kind].add(ended - began)
                self.log.append(
                    {
                        "cycle": cycle + 1,
                        "fault": kind,
                        "at_s": round(began - self.senders.started, 1),
                        "down_s": round(ended - began, 1),
                        "dispatched": self.senders.tally.dispatched,
                        **detail,
                    }
                )
                print(f"  fault {cycle + 1}/{self.plan.cycles}: {self.log[-1]}", flush=True)
        except Exception as exc:  # reported, and the run fails, but teardown still happens
            self.failure = f"{type(exc).__name__}: {exc}"

    def _postgres(self, cycle: int) -> dict[str, Any]:
        pid = postgres_kill(self.pg)
        self._pause(self.plan.postgres_down_s)
        tries = postgres_start(self.pg)
        return {"killed_pid": pid, "start_tries": tries}

    def _worker(self, cycle: int) -> dict[str, Any]:
        worker = self.workers[(cycle // len(FAULTS)) % len(self.workers)]
        worker.busy()  # read what the log says so far
        task = None
        deadline = time.monotonic() + 60
        while task is None and time.monotonic() < deadline and not self.stop.is_set():
            task = worker.busy()
            if task is None:
                time.sleep(0.02)
        worker.kill()
        self._pause(1.0)
        worker.start()
        return {"worker": worker.name, "killed_during": task or "no task within 60 s"}

    def _redis(self, cycle: int) -> dict[str, Any]:
        self.redis.stop()
        self._pause(self.plan.redis_down_s)
        self.redis.start()
        return {}


def _register(env: dict[str, str], secrets_by: dict[tuple[str, str], str], token: str) -> None:
    code = """\
import json, os
from releases import services
setup = json.loads(os.environ["CHAOS_SETUP"])
for repo in setup["repositories"]:
    repository = services.repository_create(
        full_name=repo["name"], circleci_project_slug="gh/" + repo["name"])
    for platform in ("github", "circleci"):
        services.webhook_secret_add(repository=repository, platform=platform,
                                    secret=repo[platform], label="chaos")
    services.policy_set(repository=repository, document=repo["policy"], actor="chaos")
    services.ci_credential_set(repository=repository, platform="circleci", token=setup["token"])
print("BENCH-RESULT " + json.dumps(len(setup["repositories"])))
"""
    setup = {
        "token": token,
        "repositories": [
            {
                "name": name,
                "github": secrets_by[(name, "github")],
                "circleci": secrets_by[(name, "circleci")],
                "policy": workload.policy(name),
            }
            for name in workload.repositories()
        ],
    }
    shell_result({**env, "CHAOS_SETUP": json.dumps(setup)}, code)


def _progress(pg: Postgres) -> tuple[int, int, int]:
    """Return (last stream position, projector checkpoint, reruns still requested)."""
    rows = pg.execute(
        "SELECT (SELECT COALESCE(MAX(position), 0) FROM shiplog_stream), "
        "(SELECT COALESCE(MAX(position), 0) FROM releases_projectorcheckpoint "
        "WHERE name = 'releases'), "
        "(SELECT COUNT(*) FROM releases_retryattempt WHERE status = 'requested')"
    )
    last, checkpoint, requested = rows[0]
    return int(last), int(checkpoint), int(requested)


def _drain(pg: Postgres, faults: Faults, bound: float) -> dict[str, Any]:
    """Wait (bounded) until the projector has caught up and no rerun waits, for 15 s running."""
    began = time.monotonic()
    settled_since: float | None = None
    state = (0, 0, 0)
    while time.monotonic() - began < bound:
        faults.supervise()
        try:
            now_state = _progress(pg)
        except Exception:
            now_state = (-1, -2, -1)
        caught_up = now_state[0] == now_state[1] and now_state[2] == 0
        if caught_up and now_state == state:
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since >= 15:
                break
        else:
            settled_since = None
        state = now_state
        time.sleep(1)
    last, checkpoint, requested = state
    return {
        "seconds": round(time.monotonic() - began, 1),
        "caught_up": last == checkpoint and requested == 0 and settled_since is not None,
        "last_position": last,
        "checkpoint": checkpoint,
        "reruns_waiting": requested,
    }


def _snapshot(env: dict[str, str], path: Path) -> dict[str, list[str]]:
    shell_result(
        {**env, "CHAOS_CHECK": "snapshot", "CHAOS_SNAPSHOT": str(path)},
        "from bench.chaos.check import main; main()",
        timeout=900,
    )
    snapshot: dict[str, list[str]] = json.loads(path.read_text())
    return snapshot


def _compare(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, Any]:
    """Return, per table, the rows only one side has (order-insensitive)."""
    differences: dict[str, Any] = {}
    for table in sorted(set(before) | set(after)):
        mine, theirs = Counter(before.get(table, [])), Counter(after.get(table, []))
        only_incremental = list((mine - theirs).elements())
        only_rebuilt = list((theirs - mine).elements())
        if only_incremental or only_rebuilt:
            differences[table] = {
                "only_incremental": len(only_incremental),
                "only_rebuilt": len(only_rebuilt),
                "example_incremental": only_incremental[:1],
                "example_rebuilt": only_rebuilt[:1],
            }
    return differences


def _in_windows(when: float, windows: list[tuple[str, float, float]], slack: float = 5.0) -> str:
    for kind, began, ended in windows:
        if began - 1 <= when <= ended + slack:
            return kind
    return "outside"


def _reruns(
    attempts: list[dict[str, Any]], received: dict[str, int], blocked: list[str]
) -> dict[str, Any]:
    """Return how the fake CircleCI's rerun requests map onto Shiplog's RetryAttempt rows."""
    keys_by_target: Counter[str] = Counter(
        a["target"] for a in attempts if a["api"] == "circleci.rerun_from_failed"
    )
    over = {
        target: {"requests": count, "attempts": keys_by_target.get(target, 0)}
        for target, count in received.items()
        if count > keys_by_target.get(target, 0)
    }
    statuses = Counter(a["status"] for a in attempts)
    return {
        "attempts": len(attempts),
        "attempts_by_status": dict(statuses),
        "requests_received": sum(received.values()),
        "workflows_rerun": len(received),
        "blocked_workflows": len(blocked),
        "blocked_workflows_rerun": len(set(blocked) & set(received)),
        "more_requests_than_keys": over,
    }


def _keep_logs(workdir: Path, pg: Postgres) -> None:
    """Copy the run's logs out of the scratch dir (which goes) to bench/results/chaos-logs/."""
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    for log in [*workdir.glob("*.log"), pg.data_dir.parent / "server.log"]:
        with contextlib.suppress(OSError):
            name = "postgres.log" if log.name == "server.log" else log.name
            shutil.copyfile(log, LOGS / name)


def run(options: Options, machine: dict[str, Any]) -> Report:
    """Run the soak and check what must hold afterwards."""
    plan = QUICK if options.quick else FULL
    started_at = datetime.now(UTC)
    began = time.monotonic()
    secrets_by = {
        (name, platform): secrets.token_urlsafe(32)
        for name in workload.repositories()
        for platform in ("github", "circleci")
    }
    print(f"building {plan.deliveries:,} deliveries", flush=True)
    work = workload.build(plan.deliveries, secrets_by, now=started_at)
    expected = options.duration_s or plan.expected_s()
    rate = plan.deliveries / expected
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(scratch_dir(prefix="shiplog-chaos-"))
        pg = stack.enter_context(scratch_postgres(workdir))
        redis = stack.enter_context(scratch_redis(workdir))
        circleci, github = stack.enter_context(fake_apis(work.blocked_workflows))
        env = shiplog_env(
            pg,
            workdir,
            REDIS_URL=redis.url,
            SHIPLOG_PROJECT_AFTER_COMMIT="true",
            SHIPLOG_RETRY_KILL_SWITCH="false",
            SHIPLOG_CIRCLECI_API_URL=circleci.url,
            SHIPLOG_GITHUB_API_URL=github.url,
            SHIPLOG_CI_API_TIMEOUT_SECONDS="5",
        )
        print(
            f"scratch PostgreSQL on {LOOPBACK}:{pg.port}, Redis on {LOOPBACK}:{redis.port}; "
            "migrating",
            flush=True,
        )
        manage(env, "migrate", "--noinput")
        _register(env, secrets_by, token=secrets.token_urlsafe(24))
        server = stack.enter_context(
            gunicorn(name="chaos", env=env, workdir=workdir, probe_path="/hooks/github/", workers=3)
        )
        celery = stack.enter_context(celery_processes({**env, "LOG_LEVEL": "INFO"}, workdir))
        senders = Senders(server, work.items, plan, rate)
        faults = Faults(plan, pg, redis, celery, senders)
        print(
            f"sending {len(work.items):,} deliveries ({work.unique:,} distinct, {work.releases:,} "
            f"releases) from {plan.senders} senders at {rate:.0f}/s over ~{expected / 60:.0f} min, "
            f"{plan.cycles} fault cycles",
            flush=True,
        )
        try:
            senders.start()
            faults.start()
            senders.join()
            load_s = time.monotonic() - senders.started
            faults.join(timeout=max(1.0, senders.deadline - time.monotonic()))
        finally:
            senders.stop.set()
            faults.stop.set()
            faults.join(timeout=180)
        faults_s = time.monotonic() - senders.started
        # Whatever is down comes back before the checks.
        if not postgres_ready(pg):
            postgres_start(pg)
        if not redis.running:
            redis.start()
        print("load done; draining", flush=True)
        drain = _drain(pg, faults, plan.drain_s)
        for process in celery:
            process.stop()
        acks_path = workdir / "acks.json"
        acks_path.write_text(json.dumps(senders.tally.acks))
        stream = shell_result(
            {**env, "CHAOS_CHECK": "stream", "CHAOS_ACKS": str(acks_path)},
            "from bench.chaos.check import main; main()",
            timeout=900,
        )
        assert isinstance(stream, dict)
        incremental = _snapshot(env, workdir / "incremental.json")
        rebuild_began = time.monotonic()
        rebuilt_said = manage(env, "rebuild_projections", timeout=1800).strip()
        rebuild_s = time.monotonic() - rebuild_began
        rebuilt = _snapshot(env, workdir / "rebuilt.json")
        received = circleci.reruns_by_workflow()
        gunicorn_log = server.log.read_text(errors="replace")
        worker_errors = sum(
            p.log.read_text(errors="replace").count(" ERROR/") for p in celery if p.log.exists()
        )
        unexpected_exits = {p.name: p.unexpected_exits for p in celery if p.unexpected_exits}
        _keep_logs(workdir, pg)

    tally = senders.tally
    differences = _compare(incremental, rebuilt)
    reruns = _reruns(stream["retry_attempts"], received, work.blocked_workflows)
    errors_by_window: Counter[str] = Counter(
        f"{_in_windows(when, faults.windows)} {label}" for when, label in tally.errors
    )
    five_hundreds = {
        label: count
        for label, count in tally.statuses.items()
        if label.isdigit() and int(label) >= 500 and label != "503"
    }
    checks = {
        "every delivery acknowledged": not tally.unacknowledged and not tally.rejected,
        "every acknowledged delivery in the stream exactly once": stream["missing"] == 0
        and stream["stored_twice"] == 0
        and stream["answer_mismatch"] == 0,
        "no delivery key twice": stream["duplicate_delivery_keys"] == 0,
        "hash chain intact (verify_chain)": stream["chain_problems"] == 0,
        "projector caught up": drain["caught_up"],
        "projections equal a rebuild": not differences,
        "each rerun reached the CI API at most once per idempotency key": not reruns[
            "more_requests_than_keys"
        ],
        "no 500 (or other 5xx than 503)": not five_hundreds,
        "every 503 carried Retry-After": tally.retry_after["without"] == 0,
        "fault injector ran every cycle": faults.failure is None and len(faults.log) == plan.cycles,
    }
    passed = all(checks.values())
    elapsed = time.monotonic() - began
    data: dict[str, Any] = {
        "quick": options.quick,
        "started_at": started_at.isoformat(timespec="seconds"),
        "minutes": round(elapsed / 60, 1),
        "plan": plan.__dict__,
        "paced_rate_per_s": round(rate, 1),
        "deliveries": len(work.items),
        "distinct": work.unique,
        "releases": work.releases,
        "kinds": dict(Counter(item.kind for item in work.items)),
        "load_s": round(load_s, 1),
        "faults_s": round(faults_s, 1),
        "requests": tally.requests,
        "acknowledged": tally.acknowledged,
        "retried_deliveries": tally.retried,
        "unacknowledged": len(tally.unacknowledged),
        "rejected": tally.rejected[:5],
        "statuses": dict(tally.statuses),
        "errors_by_window": dict(errors_by_window),
        "retry_after_503": dict(tally.retry_after),
        "ack_latency_ms": {
            "p50": round(statistics.median(tally.latencies) * 1000, 1) if tally.latencies else 0,
            "p99": round(statistics.quantiles(tally.latencies, n=100)[98] * 1000, 1)
            if len(tally.latencies) > 100
            else 0,
        },
        "outages": {kind: watch.summary() for kind, watch in faults.outages.items()},
        "fault_log": faults.log,
        "fault_failure": faults.failure,
        "drain": drain,
        "stream": {k: v for k, v in stream.items() if k != "retry_attempts"},
        "reruns": reruns,
        "projection_rows": {table: len(rows) for table, rows in incremental.items()},
        "projection_differences": differences,
        "rebuild": {"said": rebuilt_said, "seconds": round(rebuild_s, 1)},
        "gunicorn_tracebacks": gunicorn_log.count("Traceback"),
        "worker_error_lines": worker_errors,
        "unexpected_exits": unexpected_exits,
        "checks": checks,
    }
    markdown = _markdown(data, machine)
    if not options.quick:
        write_reliability_figures(_reliability_figures(data))
    return Report(data=data, markdown=markdown, passed=passed)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _exits(exits: dict[str, list[int]]) -> str:
    if not exits:
        return "none"
    return ", ".join(f"{name}: exit {', '.join(map(str, codes))}" for name, codes in exits.items())


def _markdown(data: dict[str, Any], machine: dict[str, Any]) -> str:
    outages = data["outages"]
    statuses = ", ".join(
        f"{label}: {count:,}"
        for label, count in sorted(data["statuses"].items())
        if not label.startswith("2")
    )
    lines = [
        "## Soak with faults (`make chaos`)",
        "",
        f"Measured {data['started_at']} on {machine['cores']} cores ({machine['cpu']}); the run "
        f"took {data['minutes']} min{' (--quick)' if data['quick'] else ''}. "
        f"{data['plan']['senders']} senders posted {data['deliveries']:,} signed deliveries "
        f"({data['distinct']:,} distinct, {data['releases']:,} releases on four repositories; "
        f"{data['kinds'].get('redelivery', 0):,} redeliveries, "
        f"{data['kinds'].get('late', 0):,} out of order) to gunicorn (3 sync workers, production "
        "settings), with 2 Celery workers and beat on a scratch Redis, paced at "
        f"{data['paced_rate_per_s']:.0f}/s so that the load spans {data['plan']['cycles']} fault "
        "cycles. See `docs/reliability.md` for what each check proves.",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| deliveries acknowledged | {data['acknowledged']:,} of {data['deliveries']:,} |",
        f"| load, first send to last acknowledgement | {data['load_s']:,.0f} s "
        f"({data['acknowledged'] / max(data['load_s'], 1):.0f}/s) |",
        f"| HTTP requests (with senders' retries) | {data['requests']:,} |",
        f"| deliveries that needed a retry | {data['retried_deliveries']:,} |",
        f"| answers other than 2xx | {statuses or 'none'} |",
        f"| 503 answers with Retry-After | {data['retry_after_503'].get('with', 0):,} "
        f"(without: {data['retry_after_503'].get('without', 0):,}) |",
        f"| acknowledgement latency p50 / p99 | {data['ack_latency_ms']['p50']} / "
        f"{data['ack_latency_ms']['p99']} ms |",
        f"| PostgreSQL `kill -9`, outages | {outages['postgres']['count']}, "
        f"{outages['postgres']['total_s']} s in all (longest {outages['postgres']['max_s']} s) |",
        f"| Celery worker SIGKILLs mid-task | {outages['worker']['count']} |",
        f"| Redis stopped | {outages['redis']['count']}, {outages['redis']['total_s']} s in all |",
        f"| Celery processes that exited by themselves (restarted) | "
        f"{_exits(data['unexpected_exits'])} |",
        f"| catch-up after the load | {data['drain']['seconds']} s |",
        f"| stream rows / Shiplog's own events | {data['stream']['stream_rows']:,} / "
        f"{sum(data['stream']['shiplog_events'].values()):,} |",
        f"| reruns requested (RetryAttempt) / received by fake CircleCI | "
        f"{data['reruns']['attempts']} / {data['reruns']['requests_received']} "
        f"({data['reruns']['blocked_workflows_rerun']} of {data['reruns']['blocked_workflows']} "
        "blocked workflows) |",
        f"| rebuild of the projections | {data['rebuild']['seconds']} s |",
        "",
        "| check | held |",
        "| --- | --- |",
        *(f"| {name} | {_yes(ok)} |" for name, ok in data["checks"].items()),
    ]
    return "\n".join(lines)


def _reliability_figures(data: dict[str, Any]) -> str:
    held = sum(data["checks"].values())
    return "\n".join(
        [
            f"Last full run: {data['started_at']}, {data['minutes']} min. "
            f"{data['acknowledged']:,} of {data['deliveries']:,} deliveries acknowledged "
            f"({data['distinct']:,} distinct) through "
            f"{data['outages']['postgres']['count']} PostgreSQL kills, "
            f"{data['outages']['worker']['count']} worker kills and "
            f"{data['outages']['redis']['count']} Redis outages "
            f"({data['outages']['redis']['total_s']:.0f} s); "
            f"{data['retry_after_503'].get('with', 0):,} answers were 503 with Retry-After, "
            f"{sum(v for k, v in data['statuses'].items() if k == '500')} were 500; "
            f"{data['reruns']['attempts']} reruns requested, "
            f"{data['reruns']['requests_received']} received by the fake CircleCI. "
            f"{held} of {len(data['checks'])} checks held"
            + ("." if held == len(data["checks"]) else ": see docs/benchmarks.md."),
        ]
    )


def write_reliability_figures(text: str, docs: Path = RELIABILITY) -> None:
    """Replace the soak's figures in docs/reliability.md, between their markers."""
    start, end = "<!-- chaos:figures:start -->", "<!-- chaos:figures:end -->"
    if not docs.exists():
        return
    current = docs.read_text()
    if start not in current or end not in current:
        return
    head, rest = current.split(start, 1)
    _, tail = rest.split(end, 1)
    docs.write_text(f"{head}{start}\n{text.strip()}\n{end}{tail}")


SUITE = Suite(name="chaos", title="Soak with faults", run=run)
