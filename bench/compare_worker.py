"""Run the comparison suite's in-process contenders, one after the other, in one process.

Runs inside Django (production settings, the scratch database in DATABASE_URL, the scratch
Redis in REDIS_URL) and prints one `BENCH-RESULT` JSON line. `BENCH_SPEC` (JSON) says which
contenders to run on which corpus size, for how long and at most how many events:

- `raw1`, `raw4`: psycopg `INSERT ... ON CONFLICT DO NOTHING` of the stream's row, committed
  per event, on 1 and 4 connections, into `bench_raw` (the stream's columns and indexes,
  no chain, no lock): the raw limit;
- `copy`: the same rows by one COPY, committed once;
- `es1`, `es100`: the `eventsourcing` library's PostgreSQL application recorder (its totally
  ordered notification log is what the stream's positions are), 1 and 100 events a transaction;
- `inproc`: `releases.stream.append`, the function the webhook calls, one event a call;
- `bulk`: `releases.stream.append_many`, 5,000 events a transaction;
- `import`: `releases.history.history_import` from JSON Lines (parse, normalise, append_many);
- `verify`: check the stream's chain after position `after` (no timing).

Every loop stops at its event count or its deadline, whichever comes first.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import itertools
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django

django.setup()

import orjson  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench import corpus  # noqa: E402
from releases import history, stream  # noqa: E402
from releases.ingest import NORMALISERS  # noqa: E402
from releases.models import StreamEvent  # noqa: E402

DEPS = Path(__file__).resolve().parent / ".deps"
RAW_TABLE = "bench_raw"
ES_TABLE = "bench_es_events"
BULK_BATCH = history.BATCH_SIZE
ES_TOPIC = "shiplog.bench:DeliveryRecorded"
# Placeholders of the chain columns' width: the raw contender writes as many bytes, links nothing.
NO_HASH = "0" * 64
RAW_COLUMNS = [column for column in stream.COLUMNS if column != "position"]


@dataclass(frozen=True)
class Item:
    """One corpus delivery as the webhook would append it."""

    platform: str
    event_type: str
    body: bytes
    headers: dict[str, str]
    data: dict[str, Any]
    repository: str
    occurred_at: datetime | None
    sha: str
    branch: str
    tag: str


def corpus_items(size: str) -> list[Item]:
    """Return the corpus of `size`, one item per platform, normalised as the webhook does."""
    items = []
    for platform in corpus.PLATFORMS:
        payload = corpus.payload(platform, size)
        event = corpus.event_type(platform)
        normalised = NORMALISERS[platform].normalise(event, payload)
        data = normalised.as_data()
        data["repository"] = normalised.repository
        headers = (
            {"X-GitHub-Event": event, "X-GitHub-Hook-ID": "421337", "User-Agent": "GitHub-Hookshot"}
            if platform == "github"
            else {"circleci-event-type": event, "User-Agent": "CircleCI-Webhook/1.0"}
        )
        items.append(
            Item(
                platform=platform,
                event_type=normalised.event_type,
                body=orjson.dumps(payload),
                headers={**headers, "Content-Type": "application/json"},
                data=data,
                repository=normalised.repository,
                occurred_at=normalised.occurred_at,
                sha=normalised.sha,
                branch=normalised.branch,
                tag=normalised.tag,
            )
        )
    return items


def percentiles(latencies_s: list[float]) -> dict[str, float] | None:
    """Return p50/p95/p99 in milliseconds, or None without samples."""
    if len(latencies_s) < 2:
        return None
    cuts = statistics.quantiles(latencies_s, n=100, method="inclusive")
    return {
        "p50": round(cuts[49] * 1000, 3),
        "p95": round(cuts[94] * 1000, 3),
        "p99": round(cuts[98] * 1000, 3),
    }


def _result(
    events: int, elapsed: float, latencies: list[float], per: str, **extra: Any
) -> dict[str, Any]:
    return {
        "events": events,
        "elapsed_s": round(elapsed, 4),
        "rate_per_s": round(events / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": percentiles(latencies),
        "latency_per": per,
        **extra,
    }


def _key(item: Item, method: str, tag: str, number: int) -> str:
    return f"{item.platform}:bench-{method}-{tag}:{number}"


def _dsn() -> str:
    return os.environ["DATABASE_URL"]


def _raw_row(item: Item, key: str) -> tuple[Any, ...]:
    now = datetime.now(UTC)
    values = {
        "event_id": stream.event_id_for(key),
        "source": item.platform,
        "event_type": item.event_type,
        "repository": item.repository,
        "sha": item.sha,
        "branch": item.branch,
        "tag": item.tag,
        "occurred_at": item.occurred_at or now,
        "recorded_at": now,
        "delivery_key": key,
        "headers": stream.canonical_json(item.headers).decode(),
        "body": item.body,
        "data": stream.canonical_json(item.data).decode(),
        "recognition": "recognised",
        "prev_hash": NO_HASH,
        "hash": NO_HASH,
    }
    return tuple(values[column] for column in RAW_COLUMNS)


def prepare_tables() -> None:
    """Create the raw contenders' table: the stream's columns and indexes, its own positions."""
    with psycopg.connect(_dsn(), autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} "
            f"(LIKE {stream.TABLE} INCLUDING INDEXES INCLUDING CONSTRAINTS)"
        )
        identity = conn.execute(
            "SELECT is_identity FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = 'position'",
            [RAW_TABLE],
        ).fetchone()
        if identity and identity[0] != "YES":
            conn.execute(
                f"ALTER TABLE {RAW_TABLE} ALTER position ADD GENERATED BY DEFAULT AS IDENTITY"
            )


def run_raw(
    items: list[Item], tag: str, connections: int, duration_s: float, max_events: int
) -> dict[str, Any]:
    """Insert rows one per transaction on `connections` connections until time or count."""
    insert = (
        f"INSERT INTO {RAW_TABLE} ({', '.join(RAW_COLUMNS)}) "
        f"VALUES ({', '.join(['%s'] * len(RAW_COLUMNS))}) ON CONFLICT (event_id) DO NOTHING"
    )
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[BaseException] = []
    method = f"raw{connections}"
    per_connection = max_events // connections
    start = threading.Barrier(connections + 1, timeout=30)
    deadline = [0.0]

    def insert_loop(index: int) -> None:
        try:
            with psycopg.connect(_dsn(), autocommit=True) as conn:
                mine = latencies[index]
                start.wait()
                for number in range(per_connection):
                    if time.monotonic() >= deadline[0]:
                        break
                    item = items[number % len(items)]
                    began = time.perf_counter()
                    conn.execute(
                        insert, _raw_row(item, _key(item, method, f"{tag}-{index}", number))
                    )
                    mine.append(time.perf_counter() - began)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=insert_loop, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + duration_s
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join(timeout=duration_s + 60)
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    merged = list(itertools.chain.from_iterable(latencies))
    return _result(len(merged), elapsed, merged, "event", connections=connections)


def run_copy(items: list[Item], tag: str, events: int, duration_s: float) -> dict[str, Any]:
    """COPY `events` rows into the raw table in one transaction (stopping at the deadline)."""
    deadline = time.monotonic() + duration_s
    written = 0
    with psycopg.connect(_dsn()) as conn:
        began = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy(f"COPY {RAW_TABLE} ({', '.join(RAW_COLUMNS)}) FROM STDIN") as copy,
        ):
            for number in range(events):
                if number % 500 == 0 and time.monotonic() >= deadline:
                    break
                item = items[number % len(items)]
                copy.write_row(_raw_row(item, _key(item, "copy", tag, number)))
                written += 1
        elapsed = time.perf_counter() - began
    return _result(written, elapsed, [], "transaction", transactions=1)


def eventsourcing_version() -> str:
    """Return the version of the library installed under bench/.deps."""
    found = list(importlib.metadata.distributions(name="eventsourcing", path=[str(DEPS)]))
    return found[0].version if found else "not installed"


def run_eventsourcing(
    items: list[Item], tag: str, batch: int, duration_s: float, max_events: int
) -> dict[str, Any]:
    """Append through eventsourcing's PostgreSQL recorder, `batch` events a transaction."""
    # After the venv's packages, so the library runs on the psycopg Shiplog uses.
    if str(DEPS) not in sys.path:
        sys.path.append(str(DEPS))
    es_postgres = importlib.import_module("eventsourcing.postgres")
    es_persistence = importlib.import_module("eventsourcing.persistence")
    db = settings.DATABASES["default"]
    datastore = es_postgres.PostgresDatastore(
        dbname=db["NAME"],
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        pool_size=1,
    )
    try:
        recorder = es_postgres.PostgresApplicationRecorder(datastore, events_table_name=ES_TABLE)
        recorder.create_table()
        latencies: list[float] = []
        events = 0
        deadline = time.monotonic() + duration_s
        began = time.perf_counter()
        for start in range(0, max_events, batch):
            if time.monotonic() >= deadline:
                break
            stored = []
            for number in range(start, start + batch):
                item = items[number % len(items)]
                stored.append(
                    es_persistence.StoredEvent(
                        originator_id=stream.event_id_for(_key(item, f"es{batch}", tag, number)),
                        originator_version=1,
                        topic=ES_TOPIC,
                        state=item.body,
                    )
                )
            call = time.perf_counter()
            recorder.insert_events(stored)
            latencies.append(time.perf_counter() - call)
            events += len(stored)
        elapsed = time.perf_counter() - began
    finally:
        datastore.close()
    return _result(
        events, elapsed, latencies, "transaction", transactions=len(latencies), batch=batch
    )


def _stream_head() -> int:
    return StreamEvent.objects.order_by("-position").values_list("position", flat=True).first() or 0


def verify_after(after: int) -> dict[str, Any]:
    """Check the chain from the row at or before `after` to the end of the stream."""
    rows = (
        StreamEvent.objects.filter(position__gte=after)
        .order_by("position")
        .values_list(*["position", *stream.CONTENT_FIELDS, "prev_hash", "hash"], named=True)
        .iterator(chunk_size=2000)
    )
    problems: list[str] = []
    prev_hash: str | None = None
    checked = 0
    for row in rows:
        fields = row._asdict()
        if prev_hash is not None and row.prev_hash != prev_hash:
            problems.append(f"{row.position}: does not link to the row before")
        if stream.row_hash(row.prev_hash, fields) != row.hash:
            problems.append(f"{row.position}: contents do not match the hash")
        prev_hash = row.hash
        checked += 1
    return {"checked": checked, "problems": len(problems), "first": problems[:5]}


def _check_appended(method: str, tag: str, before: int, created: int) -> dict[str, Any]:
    """Check that the run stored exactly what it was told it stored, and the chain after it."""
    added = StreamEvent.objects.filter(position__gt=before)
    ours = added.filter(delivery_key__contains=f":bench-{method}-{tag}:").count()
    chain = verify_after(before)
    failed = []
    if ours != created:
        failed.append(f"stored {ours} rows, the calls said {created}")
    if added.count() != ours:
        failed.append(f"{added.count() - ours} rows from elsewhere")
    if chain["problems"]:
        failed.append(f"chain: {chain['first']}")
    return {"stored": ours, "chain_checked": chain["checked"], "failed": failed}


def run_inproc(items: list[Item], tag: str, duration_s: float, max_events: int) -> dict[str, Any]:
    """Append one event per call through `stream.append`, as the webhook does."""
    before = _stream_head()
    latencies: list[float] = []
    created = 0
    deadline = time.monotonic() + duration_s
    began = time.perf_counter()
    for number in range(max_events):
        if time.monotonic() >= deadline:
            break
        item = items[number % len(items)]
        call = time.perf_counter()
        appended = stream.append(
            source=item.platform,
            event_type=item.event_type,
            delivery_key=_key(item, "inproc", tag, number),
            repository=item.repository,
            body=item.body,
            headers=item.headers,
            data=item.data,
            occurred_at=item.occurred_at,
            sha=item.sha,
            branch=item.branch,
            tag=item.tag,
        )
        latencies.append(time.perf_counter() - call)
        created += appended.created
    elapsed = time.perf_counter() - began
    return _result(
        len(latencies),
        elapsed,
        latencies,
        "event",
        integrity=_check_appended("inproc", tag, before, created),
    )


def run_bulk(items: list[Item], tag: str, events: int, duration_s: float) -> dict[str, Any]:
    """Append `events` facts through `stream.append_many`, a batch per transaction."""
    before = _stream_head()
    latencies: list[float] = []
    created = done = 0
    deadline = time.monotonic() + duration_s
    began = time.perf_counter()
    for start in range(0, events, BULK_BATCH):
        if time.monotonic() >= deadline:
            break
        facts = []
        for number in range(start, min(start + BULK_BATCH, events)):
            item = items[number % len(items)]
            facts.append(
                stream.Fact(
                    source=item.platform,
                    event_type=item.event_type,
                    delivery_key=_key(item, "bulk", tag, number),
                    repository=item.repository,
                    body=item.body,
                    headers=item.headers,
                    data=item.data,
                    occurred_at=item.occurred_at,
                    sha=item.sha,
                    branch=item.branch,
                    tag=item.tag,
                )
            )
        call = time.perf_counter()
        appended = stream.append_many(facts)
        latencies.append(time.perf_counter() - call)
        created += sum(result.created for result in appended)
        done += len(appended)
    elapsed = time.perf_counter() - began
    return _result(
        done,
        elapsed,
        latencies,
        "transaction",
        transactions=len(latencies),
        batch=BULK_BATCH,
        integrity=_check_appended("bulk", tag, before, created),
    )


def run_import(items: list[Item], tag: str, events: int, duration_s: float) -> dict[str, Any]:
    """Import JSON Lines as `manage.py import_history` does: parse, normalise, append_many."""
    lines = []
    for number in range(events):
        item = items[number % len(items)]
        line = {
            "source": item.platform,
            "event_type": corpus.event_type(item.platform),
            "delivery_key": _key(item, "import", tag, number),
            "headers": item.headers,
            "body": item.body.decode(),
        }
        lines.append(orjson.dumps(line))
    before = _stream_head()
    deadline = time.monotonic() + duration_s
    # Checked per line: past the deadline the batch in hand is still written, then it stops.
    limited = itertools.takewhile(lambda _: time.monotonic() < deadline, lines)
    began = time.perf_counter()
    imported = history.history_import(lines=limited)
    elapsed = time.perf_counter() - began
    return _result(
        imported.stored + imported.duplicates,
        elapsed,
        [],
        "transaction",
        batch=history.BATCH_SIZE,
        integrity=_check_appended("import", tag, before, imported.stored),
    )


def main() -> None:
    """Run the contenders BENCH_SPEC names, in its order, and print the results."""
    spec = json.loads(os.environ["BENCH_SPEC"])
    if spec.get("verify_after") is not None:
        print("BENCH-RESULT " + json.dumps(verify_after(int(spec["verify_after"]))), flush=True)
        return
    size, tag = spec["size"], spec["tag"]
    duration, max_events, bulk_events = spec["duration_s"], spec["max_events"], spec["bulk_events"]
    items = corpus_items(size)
    prepare_tables()
    contenders: dict[str, Callable[[], dict[str, Any]]] = {
        "raw1": lambda: run_raw(items, tag, 1, duration, max_events),
        "raw4": lambda: run_raw(items, tag, 4, duration, max_events),
        "copy": lambda: run_copy(items, tag, bulk_events, duration * 3),
        "es1": lambda: run_eventsourcing(items, tag, 1, duration, max_events),
        "es100": lambda: run_eventsourcing(items, tag, 100, duration, max_events),
        "inproc": lambda: run_inproc(items, tag, duration, max_events),
        "bulk": lambda: run_bulk(items, tag, bulk_events, duration * 3),
        "import": lambda: run_import(items, tag, bulk_events, duration * 3),
    }
    results = []
    for method in spec["methods"]:
        connection.close()  # each contender starts on a fresh connection
        began = time.perf_counter()
        record = contenders[method]()
        record.update(method=method, size=size, wall_s=round(time.perf_counter() - began, 2))
        results.append(record)
        print(
            f"    {method:<7} {size:>3}: {record['rate_per_s']:>9,.0f} events/s"
            + (
                f"  p50 {record['latency_ms']['p50']:.2f} ms p99 {record['latency_ms']['p99']:.2f}"
                f" ms per {record['latency_per']}"
                if record["latency_ms"]
                else ""
            ),
            file=sys.stderr,
            flush=True,
        )
    print(
        "BENCH-RESULT "
        + json.dumps({"results": results, "eventsourcing": eventsourcing_version()}),
        flush=True,
    )


if __name__ == "__main__":
    main()
