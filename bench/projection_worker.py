"""Measure the projector on a scratch stream: run by the projection and postmortem suites.

Runs inside Django (production settings, the scratch database in DATABASE_URL) and prints one
`BENCH-RESULT` JSON line. `BENCH_MODE=projection`: seed the stream with COPY, rebuild it,
catch up on fresh batches with and without detection, and time the release timeline and gate
APIs. `BENCH_MODE=postmortem`: one release of 10,000 events, its incident, its postmortem.
Every loop is bounded in count, and every phase reports the neighbours' share of the CPU.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import django

django.setup()

import psycopg  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from bench import cpu, stream_seed  # noqa: E402
from releases import projector, stream  # noqa: E402
from releases.models import (  # noqa: E402
    DeployPolicy,
    Release,
    Repository,
    StreamEvent,
    TimelineEntry,
)

RESULT_MARK = "BENCH-RESULT "
ROOTS = {"worker": {os.getpid()}, "postgres": {int(os.environ["BENCH_PG_PID"])}}


def log(message: str) -> None:
    print(message, flush=True)


def timed(what: Callable[[], Any]) -> tuple[Any, float, dict[str, float]]:
    """Run `what`; return its result, wall seconds, and the CPU shares while it ran."""
    before = cpu.sample(ROOTS)
    started = time.perf_counter()
    result = what()
    elapsed = time.perf_counter() - started
    return result, elapsed, cpu.usage(before, cpu.sample(ROOTS))


def reset_peak_rss() -> None:
    """Start this process's peak resident size afresh (Linux: VmHWM := VmRSS)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Return this process's peak resident size since the last reset, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def seed(releases: int, *, first: int, one_release: bool = False) -> dict[str, Any]:
    """COPY `releases` releases into the stream; check the chain and a sample of bodies."""
    url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        written, seconds, usage = timed(
            lambda: stream_seed.copy_rows(conn, releases, first=first, one_release=one_release)
        )
        with conn.cursor() as cursor:
            # Every row links to the row before it (the hashes themselves are checked below).
            cursor.execute(
                "SELECT count(*) FROM (SELECT prev_hash, lag(hash) OVER (ORDER BY position) AS p "
                "FROM shiplog_stream) t WHERE p IS NOT NULL AND p <> prev_hash"
            )
            found = cursor.fetchone()
            broken = found[0] if found else 0
            cursor.execute("ANALYZE shiplog_stream")
    total = StreamEvent.objects.count()
    sample = stream_seed.sample_positions(total, 100, seed=first + 1)
    problems = stream_seed.check_sample(sample)
    for event in StreamEvent.objects.filter(position__in=sample).values():
        if stream.row_hash(event["prev_hash"], event) != event["hash"]:
            problems.append(f"{event['position']}: hash does not match its row")
    if broken or problems:
        raise RuntimeError(f"seeded stream is wrong: {broken} broken links; {problems[:5]}")
    log(f"seeded {written:,} rows in {seconds:.1f} s ({written / seconds:,.0f}/s)")
    return {"rows": written, "seconds": round(seconds, 2), "cpu": usage}


def set_policy() -> None:
    repository, _ = Repository.objects.get_or_create(full_name=stream_seed.REPOSITORY)
    DeployPolicy.objects.update_or_create(
        repository=repository, defaults={"document": stream_seed.POLICY}
    )


def read_only(batch_size: int) -> int:
    """Read and decode the whole stream as the projector does, applying nothing."""
    after, count = 0, 0
    for _ in range(10_000_000 // batch_size + 1):
        rows = projector.read_rows(after, batch_size)
        if not rows:
            break
        count += len(rows)
        after = rows[-1].position
    return count


SQL_FOLD = """
SELECT count(*) FROM (
    SELECT source, data->>'kind', data->>'run_id', data->>'job_id', data->>'attempt',
           max(position), min(position), max(data->>'status'), max(data->>'conclusion'),
           max(data->>'started_at'), max(data->>'completed_at')
    FROM shiplog_stream GROUP BY 1, 2, 3, 4, 5
) entries
"""


def sql_fold() -> int:
    """Group the stream's normalised fields into entries in SQL alone: a bound, no rules."""
    with connection.cursor() as cursor:
        cursor.execute(SQL_FOLD)
        return int(cursor.fetchone()[0])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def api_latency(requests: int) -> dict[str, Any]:
    """Time the timeline and gate APIs for random releases, as a bot with a read token."""
    from releases.services import bot_token_create

    repository = Repository.objects.get(full_name=stream_seed.REPOSITORY)
    _, token = bot_token_create(name="bench", repositories=[repository])
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    tags = list(Release.objects.filter(ref_kind="tag").values_list("tag", flat=True))
    rng = random.Random(11)
    owner, name = stream_seed.REPOSITORY.split("/")
    result: dict[str, Any] = {}
    for label, suffix in (("timeline", "/"), ("gate", "/gate")):
        times: list[float] = []
        before = cpu.sample(ROOTS)
        for i in range(requests + 20):
            tag = rng.choice(tags)
            started = time.perf_counter()
            response = client.get(f"/api/v1/releases/{owner}/{name}/{tag}{suffix}")
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(
                    f"{label} answered {response.status_code}: {response.content[:300]!r}"
                )
            if i >= 20:  # the first requests warm the caches and the connection
                times.append(elapsed * 1000)
        result[label] = {
            "requests": len(times),
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(percentile(times, 0.99), 2),
            "max_ms": round(max(times), 2),
            "cpu": cpu.usage(before, cpu.sample(ROOTS)),
        }
        log(f"{label} API: p50 {result[label]['p50_ms']} ms, p99 {result[label]['p99_ms']} ms")
    return result


def projection(quick: bool) -> dict[str, Any]:
    """Seed, rebuild, catch up with and without detection, time the APIs."""
    releases = 1_000 if quick else 20_000
    fresh = 400 if quick else 2_000
    rounds = 1 if quick else 3
    set_policy()
    out: dict[str, Any] = {"releases": releases, "fresh_releases": fresh}
    out["seed"] = seed(releases, first=0)
    total = StreamEvent.objects.count()
    cpu.wait_for_quiet(ROOTS, patience_s=30)
    count, seconds, usage = timed(lambda: read_only(20_000))
    out["read"] = {"events": count, "seconds": round(seconds, 2), "cpu": usage}
    log(f"read and decode: {count:,} in {seconds:.1f} s ({count / seconds:,.0f}/s)")
    entries, seconds, usage = timed(sql_fold)
    out["sql_fold"] = {
        "events": total,
        "entries": entries,
        "seconds": round(seconds, 2),
        "cpu": usage,
    }
    log(f"SQL fold: {total:,} events into {entries:,} groups in {seconds:.1f} s")
    cpu.wait_for_quiet(ROOTS, patience_s=30)
    reset_peak_rss()
    count, seconds, usage = timed(projector.rebuild)
    out["rebuild"] = {
        "events": count,
        "seconds": round(seconds, 2),
        "peak_rss_mb": peak_rss_mb(),
        "releases": Release.objects.count(),
        "entries": TimelineEntry.objects.count(),
        "cpu": usage,
    }
    log(f"rebuild: {count:,} events in {seconds:.1f} s ({count / seconds:,.0f}/s)")
    runs: list[dict[str, Any]] = []
    first = releases
    for round_ in range(rounds):
        for react in (False, True):
            seeded = seed(fresh, first=first)
            first += fresh
            cpu.wait_for_quiet(ROOTS, patience_s=20)
            count, seconds, usage = timed(partial(projector.catch_up, react=react))
            runs.append(
                {
                    "round": round_,
                    "detection": react,
                    "events": count,
                    "seconds": round(seconds, 3),
                    "seeded": seeded["rows"],
                    "cpu": usage,
                }
            )
            log(f"catch-up{' with detection' if react else ''}: {count:,} in {seconds:.1f} s")
    out["catch_up"] = runs
    out["catch_up_batch"] = inspect.signature(projector.catch_up).parameters["batch_size"].default
    from incidents.models import Incident

    out["incidents"] = Incident.objects.count()
    out["stored_events"] = StreamEvent.objects.count()
    out["api"] = api_latency(100 if quick else 500)
    return out


def postmortem(quick: bool) -> dict[str, Any]:
    """One release of 10,000 events (200 reruns of 50), its incident, its postmortem."""
    from incidents.models import Incident
    from incidents.selectors import postmortem_input
    from incidents.services import postmortem_compose

    copies = 40 if quick else 200
    set_policy()
    # The test fails in every rerun, so the release stays blocked and an incident opens.
    out: dict[str, Any] = {"seed": seed(copies, first=10, one_release=True)}
    projector.catch_up()
    release = Release.objects.get()
    incident = Incident.objects.get()
    out["release_events"] = (
        StreamEvent.objects.filter(tag=release.tag).count()
        + StreamEvent.objects.filter(sha=release.sha, tag="").count()
    )
    out["entries"] = TimelineEntry.objects.filter(release=release).count()
    out["incident_events"] = incident.events.count()
    times: list[float] = []
    markdown = ""
    before = cpu.sample(ROOTS)
    for _ in range(7):
        started = time.perf_counter()
        incident = Incident.objects.get(pk=incident.pk)
        markdown = postmortem_compose(postmortem_input(incident))
        times.append(time.perf_counter() - started)
    out["compose"] = {
        "runs": len(times),
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "markdown_chars": len(markdown),
        "cpu": cpu.usage(before, cpu.sample(ROOTS)),
    }
    log(f"postmortem: median {out['compose']['median_s']} s over {len(times)} runs")
    return out


def main() -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    mode = os.environ["BENCH_MODE"]
    result = projection(quick) if mode == "projection" else postmortem(quick)
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
