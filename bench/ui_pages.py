"""Benchmark the maintainers' pages on PostgreSQL: server time per render, median and p99.

    .venv/bin/python bench/ui_pages.py [--admin-url postgres://postgres@127.0.0.1:5432/postgres]

Targets: the release page of a release with 2,000 job attempts under 300 ms, and the
dashboard with 1,000,000 events stored under 200 ms. The big release is recorded the way
production records it (each event appended through `releases.stream.append`, then projected
by the projector, detection and retry decisions included); the million events, and the
projections a stream that size leaves behind (releases, timeline entries, incidents), are
inserted with INSERT ... SELECT generate_series. Renders go through Django's test client, as
a signed-in maintainer, so the figures are server time: middleware, views, queries, templates.

Everything happens in a scratch database, shiplog_uibench, created at the start and dropped
at the end: the stream refuses DELETE, so the database goes as a whole. A Markdown table is
printed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCRATCH = "shiplog_uibench"
BIG_REPO = "bench/big"
BIG_TAG = "v9.9.9"
BULK_REPOS = 50


# ----------------------------------------------------------------------------- the database


def scratch_url(admin_url: str) -> str:
    """Return the admin URL pointed at the scratch database."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{SCRATCH}"))


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """Create the scratch database, yield its URL, and drop it whatever happens."""
    import psycopg

    def run(statement: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(statement)

    run(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
    run(f"CREATE DATABASE {SCRATCH}")
    try:
        yield scratch_url(admin_url)
    finally:
        from django.db import connections

        connections.close_all()
        run(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


def setup_django(database_url: str) -> None:
    """Configure Django for the scratch database, with the test settings, and migrate."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ.setdefault("SHIPLOG_VAR_DIR", tempfile.mkdtemp(prefix="shiplog-uibench-"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# ----------------------------------------------------------------------------- the big release

BIG_POLICY = f"""
repository = "{BIG_REPO}"

[[deploy]]
platform = "circleci"
name = "deploy"
on = "tag"
requires = ["test-*"]

[[deploy]]
platform = "github"
name = "deploy-release"
on = "tag"
"""


def _event(source: str, kind: str, key: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """Return the keyword arguments of one append: a normalised event, as the hooks store it."""
    data: dict[str, Any] = {
        "platform": source,
        "kind": kind,
        "repository": BIG_REPO,
        "attempt": 1,
        "occurred_at": at.isoformat(),
        "extra": {},
        **fields,
    }
    return {
        "source": source,
        "event_type": f"{kind}.{fields.get('status', '')}",
        "delivery_key": f"bench:{key}",
        "repository": BIG_REPO,
        "body": b'{"bench": true}',
        "data": data,
        "occurred_at": at,
        "sha": "ab" * 20,
        "branch": data.get("branch", ""),
        "tag": data.get("tag", ""),
    }


def big_release_events(attempts: int, start: datetime) -> list[dict[str, Any]]:
    """Return a release with `attempts` job attempts, blocked at the end.

    Half on GitHub Actions: 20 workflows of 25 jobs, each workflow run twice (a re-run of
    every job). Half on CircleCI: one workflow of 100 jobs rerun from scratch 10 times;
    test-07 fails in the last run, so the deploy job never runs.
    """
    events = [_event("github", "tag", "tag", start, name=BIG_TAG, status="created", tag=BIG_TAG)]
    half = attempts // 2
    gh_jobs, gh_attempts = 25, 2
    gh_workflows = half // (gh_jobs * gh_attempts)
    for w in range(gh_workflows):
        workflow = "deploy-release" if w == 0 else f"workflow-{w:02d}"
        for attempt in range(1, gh_attempts + 1):
            run_start = start + timedelta(minutes=5 + 40 * (attempt - 1))
            for j in range(gh_jobs):
                began = run_start + timedelta(minutes=j % 10)
                events.append(
                    _event(
                        "github",
                        "job",
                        f"gh:{w}:{attempt}:{j}",
                        began + timedelta(minutes=6),
                        name=f"{workflow}-job-{j:02d}",
                        status="completed",
                        conclusion="success",
                        run_id=str(1000 + w),
                        attempt=attempt,
                        workflow_name=workflow,
                        job_id=str(100_000 + w * 1000 + attempt * 100 + j),
                        started_at=began.isoformat(),
                        completed_at=(began + timedelta(minutes=6)).isoformat(),
                        branch=BIG_TAG,
                    )
                )
            events.append(
                _event(
                    "github",
                    "workflow_run",
                    f"gh-run:{w}:{attempt}",
                    run_start + timedelta(minutes=17),
                    name=workflow,
                    status="completed",
                    conclusion="success",
                    run_id=str(1000 + w),
                    attempt=attempt,
                    workflow_name=workflow,
                    started_at=run_start.isoformat(),
                    completed_at=(run_start + timedelta(minutes=17)).isoformat(),
                    branch=BIG_TAG,
                    extra={"event": "push"},
                )
            )
    cci_jobs = 100
    cci_runs = (attempts - half) // cci_jobs
    number = 500_000
    for run in range(cci_runs):
        workflow_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-workflow-{run}"))
        run_start = start + timedelta(minutes=90 * run)
        failed_run = run == cci_runs - 1
        for j in range(cci_jobs):
            name = f"test-{j:02d}" if j < 60 else f"build-{j:02d}"
            failed = failed_run and name == "test-07"
            began = run_start + timedelta(minutes=(j % 20) * 2)
            number += 1
            events.append(
                _event(
                    "circleci",
                    "job",
                    f"cci:{run}:{j}",
                    began + timedelta(minutes=9),
                    name=name,
                    status="failed" if failed else "success",
                    conclusion="failure" if failed else "success",
                    run_id=workflow_id,
                    workflow_name="build-and-deploy",
                    pipeline_id="bench-pipeline",
                    pipeline_number=77,
                    job_id=f"{workflow_id}:{name}",
                    job_number=number,
                    started_at=began.isoformat(),
                    completed_at=(began + timedelta(minutes=9)).isoformat(),
                    url=f"https://app.circleci.com/pipelines/gh/bench/big/77/jobs/{number}",
                )
            )
        events.append(
            _event(
                "circleci",
                "workflow_run",
                f"cci-run:{run}",
                run_start + timedelta(minutes=50),
                name="build-and-deploy",
                status="failed" if failed_run else "success",
                conclusion="failure" if failed_run else "success",
                run_id=workflow_id,
                workflow_name="build-and-deploy",
                pipeline_id="bench-pipeline",
                pipeline_number=77,
                started_at=run_start.isoformat(),
                completed_at=(run_start + timedelta(minutes=50)).isoformat(),
            )
        )
    return events


def seed_big_release(attempts: int) -> float:
    """Record the big release through the one append path and project it; return seconds."""
    from releases import projector, stream
    from releases.services import policy_set, repository_create

    started = time.perf_counter()
    repository = repository_create(full_name=BIG_REPO)
    policy_set(repository=repository, document=BIG_POLICY, actor="bench")
    for kwargs in big_release_events(attempts, datetime.now(UTC) - timedelta(days=2)):
        stream.append(**kwargs)
    projector.catch_up()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- a million events


def _column_defaults(model: Any, explicit: dict[str, str]) -> tuple[list[str], list[str]]:
    """Return the columns of `model` and an SQL expression for each, `explicit` first.

    Columns not named get NULL when nullable, else an empty value of their type, so the seed
    keeps working when a projection gains a column.
    """
    columns: list[str] = []
    values: list[str] = []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.get_internal_type() == "BigAutoField":
            continue
        column = field.column
        columns.append(column)
        if column in explicit:
            values.append(explicit[column])
        elif field.null:
            values.append("NULL")
        elif field.get_internal_type() == "JSONField":
            values.append("'{}'::jsonb" if field.default is dict else "'[]'::jsonb")
        elif field.get_internal_type() in {
            "IntegerField",
            "BigIntegerField",
            "PositiveIntegerField",
            "PositiveSmallIntegerField",
        }:
            values.append(str(field.default if isinstance(field.default, int) else 0))
        elif field.get_internal_type() == "BooleanField":
            values.append("false")
        else:
            values.append("''")
    return columns, values


def seed_bulk(events: int) -> float:
    """Insert `events` stream rows and the projections such a stream leaves; return seconds."""
    from django.db import connection

    from incidents.models import Incident
    from releases.models import ProjectorCheckpoint, Release, StreamEvent, TimelineEntry

    started = time.perf_counter()
    releases = max(events // 50, 1)  # 50 events per release, as a busy project's tags go
    entries = events * 2 // 5
    incidents = max(releases // 7, 1)
    interval = f"{max(2 * 365 * 24 * 3600 // releases, 60)} seconds"

    stream_cols, stream_vals = _column_defaults(
        StreamEvent,
        {
            "event_id": "md5('bench-event-' || i)::uuid",
            "source": "CASE WHEN i % 2 = 0 THEN 'github' ELSE 'circleci' END",
            "event_type": "CASE WHEN i % 2 = 0 THEN 'workflow_job.completed' "
            "ELSE 'job-completed' END",
            "repository": f"'bench/repo-' || (i % {BULK_REPOS})",
            "sha": "md5('sha' || (i / 50))",
            "tag": "'v' || (i / 50)",
            "occurred_at": f"now() - interval '3 days' - ({events} - i) * interval '60 seconds'",
            "recorded_at": f"now() - interval '3 days' - ({events} - i) * interval '60 seconds'",
            "delivery_key": "'bench-bulk:' || i",
            "headers": "jsonb_build_object('User-Agent', 'GitHub-Hookshot/bench', "
            "'X-GitHub-Event', 'workflow_job')",
            "body": "convert_to(repeat(jsonb_build_object('workflow_job', "
            "jsonb_build_object('status', 'completed'))::text, 12), 'UTF8')",
            "data": "jsonb_build_object('kind', 'job', 'name', 'job-' || (i % 120), "
            "'status', 'completed', 'conclusion', 'success', 'platform', "
            "CASE WHEN i % 2 = 0 THEN 'github' ELSE 'circleci' END)",
            "recognition": "'recognised'",
            "prev_hash": "repeat('0', 64)",
            "hash": "md5('h' || i) || md5('g' || i)",
        },
    )
    state = (
        "CASE WHEN i % 100 < 88 THEN 'deployed' WHEN i % 100 < 93 THEN 'partially_deployed' "
        "WHEN i % 100 < 96 THEN 'blocked' WHEN i % 100 < 98 THEN 'failed' ELSE 'running' END"
    )
    start = f"(now() - interval '3 days' - ({releases} - i) * interval '{interval}')"
    release_cols, release_vals = _column_defaults(
        Release,
        {
            "repository": f"'bench/repo-' || (i % {BULK_REPOS})",
            "ref_kind": "'tag'",
            "ref_key": "'tag:v' || i",
            "tag": "'v' || i",
            "sha": "md5('sha' || i)",
            "state": state,
            "flags": f"',' || {state} || ','",
            "blocking": "CASE WHEN i % 100 BETWEEN 93 AND 95 THEN "
            """'[{"deploy": "deploy", "platform": "circleci", "blocked_by": """
            """[{"job": "test-07", "platform": "circleci", "conclusion": "failure", """
            """"url": "", "role": "core"}]}]'::jsonb ELSE '[]'::jsonb END""",
            "started_at": start,
            "tagged_at": start,
            "first_deploy_started_at": f"{start} + interval '30 minutes'",
            "deployed_at": f"CASE WHEN i % 100 < 88 THEN {start} + interval '45 minutes' END",
            "blocked_at": f"CASE WHEN i % 100 BETWEEN 88 AND 95 "
            f"THEN {start} + interval '25 minutes' END",
            "unblocked_at": f"CASE WHEN i % 100 BETWEEN 88 AND 92 "
            f"THEN {start} + interval '5 hours' END",
            "last_activity_at": f"{start} + interval '45 minutes'",
            "last_position": "i * 50",
        },
    )
    entry_cols, entry_vals = _column_defaults(
        TimelineEntry,
        {
            "entry_key": "'bench-entry:' || i",
            "repository": f"'bench/repo-' || ((i / 20) % {BULK_REPOS})",
            "release_id": f"first_release + (i / 20) % {releases}",
            "platform": "CASE WHEN i % 2 = 0 THEN 'github' ELSE 'circleci' END",
            "kind": "'job'",
            "name": "'job-' || (i % 20)",
            "workflow_name": "'build-and-deploy'",
            "run_id": "'run-' || (i / 20)",
            "job_id": "'job-' || i",
            "status": "'completed'",
            "conclusion": "'success'",
            "started_at": "now() - interval '3 days' - i * interval '1 minute'",
            "completed_at": "now() - interval '3 days' - i * interval '1 minute' "
            "+ interval '5 minutes'",
            "occurred_at": "now() - interval '3 days' - i * interval '1 minute'",
            "rank": "'4|' || i",
            "position": "i * 2",
            "first_position": "i * 2",
        },
    )
    opened = f"(now() - interval '3 days' - ({incidents} - i) * interval '{interval}' * 7)"
    incident_cols, incident_vals = _column_defaults(
        Incident,
        {
            "id": "md5('bench-incident-' || i)::uuid",
            "repository": f"'bench/repo-' || (i % {BULK_REPOS})",
            "release_key": "'tag:v' || (i * 7)",
            "release_name": "'v' || (i * 7)",
            "rule": "'deploy_blocked'",
            "title": "'bench/repo: v' || (i * 7) || ': deploy is blocked'",
            "summary": "'deploy never ran because test-07 failed.'",
            "status": "CASE WHEN i % 20 = 0 THEN 'investigating' ELSE 'resolved' END",
            "severity": "'high'",
            "began_at": opened,
            "opened_at": opened,
            "resolved_at": f"CASE WHEN i % 20 = 0 THEN NULL ELSE {opened} + interval '6 hours' END",
            "opened_position": "i * 350",
            "last_position": "i * 350",
        },
    )

    def insert(
        table: str, columns: list[str], values: list[str], count: int, pre: str = ""
    ) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {', '.join(values)} FROM {pre}generate_series(1, {count}) AS i"
            )

    insert(StreamEvent._meta.db_table, stream_cols, stream_vals, events)
    insert(Release._meta.db_table, release_cols, release_vals, releases)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT min(id) FROM {Release._meta.db_table} WHERE repository LIKE 'bench/repo-%%'"
        )
        first_release = cursor.fetchone()[0]
    entry_vals = [v.replace("first_release", str(first_release)) for v in entry_vals]
    insert(TimelineEntry._meta.db_table, entry_cols, entry_vals, entries)
    insert(Incident._meta.db_table, incident_cols, incident_vals, incidents)
    latest = StreamEvent.objects.order_by("-position").values_list("position", flat=True)[0]
    # The bulk rows are already "projected": the projector would find nothing to do.
    ProjectorCheckpoint.objects.update_or_create(name="releases", defaults={"position": latest})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Measured:
    """Server times of repeated renders of one page."""

    page: str
    renders: int
    median_ms: float
    p99_ms: float
    queries: int
    size_kb: float
    target_ms: float | None

    @property
    def verdict(self) -> str:
        """Return whether the median met the target."""
        if self.target_ms is None:
            return "—"
        return "meets" if self.median_ms < self.target_ms else "MISSES"


def measure(
    page: str,
    get: Callable[[], Any],
    *,
    renders: int,
    target_ms: float | None = None,
    warmup: int = 3,
) -> Measured:
    """Render a page `renders` times after a warm-up; return median and p99 server time."""
    from django.db import connection

    for _ in range(warmup):
        response = get()
        assert response.status_code == 200, (page, response.status_code)
    queries = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = get()
    size = len(response.content)
    times = []
    for _ in range(renders):
        began = time.perf_counter()
        response = get()
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, page
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return Measured(page, renders, statistics.median(times), p99, queries, size / 1024, target_ms)


def table(rows: list[Measured], notes: list[str]) -> str:
    """Return the measurements as a Markdown table."""
    lines = [
        "| page | renders | median | p99 | target | verdict | queries | HTML |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for row in rows:
        target = f"< {row.target_ms:.0f} ms" if row.target_ms else "—"
        lines.append(
            f"| {row.page} | {row.renders} | {row.median_ms:.1f} ms | {row.p99_ms:.1f} ms | "
            f"{target} | {row.verdict} | {row.queries} | {row.size_kb:.0f} KB |"
        )
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    """Seed, measure, print the table, drop the scratch database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to create and drop databases",
    )
    parser.add_argument("--attempts", type=int, default=2000, help="job attempts in the release")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the stream")
    parser.add_argument("--renders", type=int, default=50, help="timed renders per page")
    parser.add_argument(
        "--json", action="store_true", help="also print the figures as one BENCH-RESULT line"
    )
    args = parser.parse_args(argv)

    with scratch_database(args.admin_url) as url:
        setup_django(url)
        from django.contrib.auth.models import Group, User
        from django.test import Client

        from releases.models import StreamEvent, TimelineEntry

        user = User.objects.create_user(username="bench")  # no password: force_login only
        user.groups.add(Group.objects.get_or_create(name="maintainers")[0])
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        release_url = f"/releases/{BIG_REPO}/{BIG_TAG}/"

        seeded_release = seed_big_release(args.attempts)
        attempts = TimelineEntry.objects.filter(release__repository=BIG_REPO, kind="job").count()
        rows = [
            measure(
                f"release page, {attempts:,} job attempts (small stream)",
                lambda: client.get(release_url),
                renders=args.renders,
                target_ms=300,
            )
        ]
        seeded_bulk = seed_bulk(args.events)
        stored = StreamEvent.objects.count()
        rows += [
            measure(
                f"dashboard, {stored:,} events stored",
                lambda: client.get("/"),
                renders=args.renders,
                target_ms=200,
            ),
            measure(
                f"release page, {attempts:,} job attempts, {stored:,} events stored",
                lambda: client.get(release_url),
                renders=args.renders,
                target_ms=300,
            ),
            measure(
                "release page, live part (htmx poll)",
                lambda: client.get(
                    release_url, headers={"HX-Request": "true", "HX-Target": "release-live"}
                ),
                renders=args.renders,
            ),
            measure("releases list", lambda: client.get("/releases/"), renders=args.renders),
            measure(
                "stream explorer, newest", lambda: client.get("/stream/"), renders=args.renders
            ),
        ]
        notes = [
            f"Seeded the {attempts:,}-attempt release through stream.append and the projector "
            f"in {seeded_release:.1f} s; {args.events:,} events and their projections by "
            f"INSERT ... SELECT in {seeded_bulk:.1f} s. PostgreSQL, Django's test client, "
            "a signed-in maintainer; server time only (no network, no browser).",
        ]
        print(table(rows, notes))
        if args.json:
            print(
                "BENCH-RESULT "
                + json.dumps(
                    {
                        "rows": [dataclasses.asdict(row) for row in rows],
                        "seed_release_s": seeded_release,
                        "seed_bulk_s": seeded_bulk,
                        "events": stored,
                        "attempts": attempts,
                    }
                ),
                flush=True,
            )
        missed = [row.page for row in rows if row.verdict == "MISSES"]
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
