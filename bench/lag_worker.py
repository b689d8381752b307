"""Measure catch-up lag: from an append's commit to its event being in the release timeline.

Runs inside Django (production settings; the scratch PostgreSQL and Redis in DATABASE_URL and
REDIS_URL) beside a real Celery worker with beat, as production runs: each delivery goes
through the webhook's own service (`github_delivery_record`), its commit asks a worker to
project, and the projector's checkpoint, advanced in the transaction that writes the
timeline, says when it became visible. A writer sends at a steady rate; once, mid-run, another
writer holds its transaction open for 2 s after appending (it holds the append lock, so every
other append waits behind it: lag may stall, nothing may be skipped). Prints one
`BENCH-RESULT` JSON line. Every loop is bounded in count and time.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import uuid
from typing import Any

import django

django.setup()

import psycopg  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench import payloads  # noqa: E402
from releases import projections, services, stream  # noqa: E402
from releases.deliveries import github_delivery  # noqa: E402
from releases.models import ProjectorCheckpoint, StreamEvent, TimelineEntry  # noqa: E402
from releases.projector import NAME as PROJECTOR  # noqa: E402

RESULT_MARK = "BENCH-RESULT "
TAGS = 40  # releases the deliveries spread over


def delivery(n: int, secret: str) -> tuple[dict[str, str], bytes]:
    """Return the headers and body of the n-th delivery: a job of one of TAGS releases.

    Deliveries come in pairs, a job's start and then its end, so entries merge as they do in
    production.
    """
    payload = copy.deepcopy(payloads.workflow_job("small"))
    job = payload["workflow_job"]
    job["id"] = 30_000_000_000 + n // 2
    if n % 2:
        payload["action"] = "completed"
        job.update(status="completed", conclusion="success", completed_at="2024-07-26T14:26:41Z")
    job["run_id"] = 20_000_000_000 + n // 16
    job["head_branch"] = f"0.{n // 2 % TAGS}.0"
    job["name"] = f"test ({n // 2 % 8})"
    sent = github_delivery("workflow_job", payload, secret, delivery_id=str(uuid.uuid4()))
    return dict(sent.headers), sent.body


def record(headers: dict[str, str], body: bytes) -> int:
    outcome = services.github_delivery_record(
        headers=headers, body=body, content_type="application/json"
    )
    if outcome.status != 202:
        raise RuntimeError(f"delivery answered {outcome.status}: {outcome.body}")
    return int(outcome.body["position"])


class Watcher(threading.Thread):
    """Poll the projector's checkpoint on a connection of its own; note when each value shows."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            last = -1
            while not self.stop.is_set():
                row = conn.execute(
                    "SELECT position FROM releases_projectorcheckpoint WHERE name = %s",
                    [PROJECTOR],
                ).fetchone()
                position = row[0] if row else 0
                if position != last:
                    self.seen.append((time.monotonic(), position))
                    last = position
                time.sleep(0.002)

    def visible_at(self, position: int) -> float | None:
        """Return when the checkpoint first reached `position` (None if it never did)."""
        for at, reached in self.seen:
            if reached >= position:
                return at
        return None


def slow_writer(secret: str, n: int, hold_s: float, out: dict[str, Any]) -> None:
    """Append one delivery in a transaction held open for `hold_s` before it commits."""
    headers, body = delivery(n, secret)
    with transaction.atomic():
        out["position"] = record(headers, body)
        time.sleep(hold_s)
    out["committed_at"] = time.monotonic()
    connection.close()


def independent_fold() -> dict[str, tuple[str, str, int, int]]:
    """Fold every stream row into entries in memory, by the pure merge rules alone.

    Independent of the projector's reading, batching, checkpoint and writes: what those must
    not get wrong (a skipped late commit, a lost update) shows up as a difference here.
    """
    folded: dict[str, projections.Entry] = {}
    rows = StreamEvent.objects.order_by("position").values_list(*projections.StreamRow._fields)
    for position, event_id, *rest in rows.iterator(chunk_size=5000):
        entry = projections.entry_from_row(projections.StreamRow(position, str(event_id), *rest))
        if entry is not None:
            folded[entry.entry_key] = projections.merge(folded.get(entry.entry_key), entry)
    return {
        key: (e.status, e.conclusion, e.position, e.first_position) for key, e in folded.items()
    }


def main() -> None:
    secret = os.environ["BENCH_GITHUB_SECRET"]
    rate = float(os.environ.get("BENCH_RATE", "200"))
    duration = float(os.environ.get("BENCH_DURATION", "30"))
    url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    events = int(rate * duration)
    prepared = [delivery(n, secret) for n in range(events)]
    # Warm up: the first projection run and connection set-up are not what is measured.
    record(*delivery(10_000_000, secret))
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and ProjectorCheckpoint.objects.filter(
            name=PROJECTOR, position__gte=StreamEvent.objects.order_by("-position")[0].position
        ).count()
        == 0
    ):
        time.sleep(0.05)

    watcher = Watcher(url)
    watcher.start()
    committed: dict[int, float] = {}
    slow: dict[str, Any] = {}
    slow_thread = threading.Thread(
        target=slow_writer, args=(secret, 20_000_000, 2.0, slow), daemon=True
    )
    started = time.monotonic()
    behind_max = 0.0
    for n, (headers, body) in enumerate(prepared):
        due = started + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        behind_max = max(behind_max, now - due)
        if n == events // 2:
            slow_thread.start()
            time.sleep(0.05)  # let it take the lock first
        position = record(headers, body)
        committed[position] = time.monotonic()
    sent_s = time.monotonic() - started
    slow_thread.join(timeout=30)
    committed[slow["position"]] = slow["committed_at"]
    last = max(committed)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and watcher.visible_at(last) is None:
        time.sleep(0.05)
    watcher.stop.set()
    watcher.join(timeout=5)

    lags = []
    missing = []
    for position, at in committed.items():
        visible = watcher.visible_at(position)
        if visible is None:
            missing.append(position)
        else:
            lags.append(max(visible - at, 0.0) * 1000)
    lags.sort()

    def pct(share: float) -> float:
        return round(lags[min(len(lags) - 1, round(share * (len(lags) - 1)))], 1) if lags else -1

    stored = {
        e.entry_key: (e.status, e.conclusion, e.position, e.first_position)
        for e in TimelineEntry.objects.only(
            "entry_key", "status", "conclusion", "position", "first_position"
        )
    }
    folded = independent_fold()
    differing = sorted(k for k in folded.keys() | stored.keys() if folded.get(k) != stored.get(k))
    result = {
        "rate": rate,
        "events": len(committed),
        "sent_s": round(sent_s, 2),
        "achieved_rate": round(events / sent_s, 1),
        "writer_behind_max_ms": round(behind_max * 1000, 1),
        "lag_ms": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": pct(1.0)},
        "slow_writer": {"held_s": 2.0, "position": slow["position"]},
        "not_visible": len(missing),
        "entries": len(stored),
        "fold_entries": len(folded),
        "fold_differences": len(differing),
        "first_differences": differing[:5],
        "chain_problems": sum(1 for _ in stream.verify_chain()),
    }
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
