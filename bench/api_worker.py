"""Shiplog's side of the API benchmark, run inside Django by `bench/suites/api.py`.

    python bench/api_worker.py seed --events N           (DJANGO_SETTINGS_MODULE: test settings)
    python bench/api_worker.py explain --spec FILE       (production settings)

`seed` fills the stream with `N` events and the projections such a stream leaves behind
(`bench.ui_pages.seed_bulk`), then records one release of about 200 timeline entries in one
of those repositories through the real append and projector, gives the repository a deploy
policy under which that release is blocked, and creates a read-only bot token for it.
`explain` requests each endpoint through Django's test client with that token, captures the
SQL it runs, and returns `EXPLAIN (ANALYZE, BUFFERS)` of every SELECT. Each prints one
`BENCH-RESULT` JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT_MARK = "BENCH-RESULT "
STREAM_TABLE = "shiplog_stream"
TARGET_TAG = "v99.0.0-api"
# Timeline pages are capped by the issue at 200 entries: 1 tag, 5 GitHub runs with 120 job
# attempts, 1 CircleCI workflow with 70 jobs.
GITHUB_WORKFLOWS, GITHUB_JOBS, CIRCLECI_JOBS = 4, 24, 70
MAX_CURSORS = 1000


def target_policy(repository: str) -> str:
    """Return a deploy policy under which the target release's failed test blocks its deploy."""
    return f"""
repository = "{repository}"

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


def _event(
    repository: str, source: str, kind: str, key: str, at: datetime, **fields: Any
) -> dict[str, Any]:
    """Return the keyword arguments of one append: a normalised event, as the hooks store it."""
    data: dict[str, Any] = {
        "platform": source,
        "kind": kind,
        "repository": repository,
        "attempt": 1,
        "occurred_at": at.isoformat(),
        "extra": {},
        **fields,
    }
    return {
        "source": source,
        "event_type": f"{kind}.{fields.get('status', '')}",
        "delivery_key": f"bench-api:{key}",
        "repository": repository,
        "body": b'{"bench": true}',
        "data": data,
        "occurred_at": at,
        "sha": "cd" * 20,
        "branch": data.get("branch", ""),
        "tag": data.get("tag", ""),
    }


def target_release_events(repository: str, start: datetime) -> list[dict[str, Any]]:
    """Return the events of a release of about 200 entries whose CircleCI test-07 failed.

    GitHub Actions: `GITHUB_WORKFLOWS` workflows of `GITHUB_JOBS` jobs, the first re-run once.
    CircleCI: one workflow of `CIRCLECI_JOBS` jobs, test-07 failed, so `deploy` never ran.
    """
    events = [
        _event(
            repository,
            "github",
            "tag",
            "tag",
            start,
            name=TARGET_TAG,
            status="created",
            tag=TARGET_TAG,
        )
    ]
    for w in range(GITHUB_WORKFLOWS):
        workflow = "deploy-release" if w == 0 else f"workflow-{w:02d}"
        for attempt in (1, 2) if w == 1 else (1,):
            run_start = start + timedelta(minutes=5 + 40 * (attempt - 1))
            for j in range(GITHUB_JOBS):
                began = run_start + timedelta(minutes=j % 10)
                events.append(
                    _event(
                        repository,
                        "github",
                        "job",
                        f"gh:{w}:{attempt}:{j}",
                        began + timedelta(minutes=6),
                        name=f"{workflow}-job-{j:02d}",
                        status="completed",
                        conclusion="success",
                        run_id=str(7000 + w),
                        attempt=attempt,
                        workflow_name=workflow,
                        job_id=str(700_000 + w * 1000 + attempt * 100 + j),
                        started_at=began.isoformat(),
                        completed_at=(began + timedelta(minutes=6)).isoformat(),
                        branch=TARGET_TAG,
                        url=f"https://github.com/{repository}/actions/runs/{7000 + w}",
                    )
                )
            events.append(
                _event(
                    repository,
                    "github",
                    "workflow_run",
                    f"gh-run:{w}:{attempt}",
                    run_start + timedelta(minutes=17),
                    name=workflow,
                    status="completed",
                    conclusion="success",
                    run_id=str(7000 + w),
                    attempt=attempt,
                    workflow_name=workflow,
                    started_at=run_start.isoformat(),
                    completed_at=(run_start + timedelta(minutes=17)).isoformat(),
                    branch=TARGET_TAG,
                    extra={"event": "push"},
                )
            )
    workflow_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-api-workflow-{repository}"))
    run_start = start + timedelta(minutes=90)
    for j in range(CIRCLECI_JOBS):
        name = f"test-{j:02d}" if j < 50 else f"build-{j:02d}"
        failed = name == "test-07"
        began = run_start + timedelta(minutes=(j % 20) * 2)
        number = 900_000 + j
        events.append(
            _event(
                repository,
                "circleci",
                "job",
                f"cci:{j}",
                began + timedelta(minutes=9),
                name=name,
                status="failed" if failed else "success",
                conclusion="failure" if failed else "success",
                run_id=workflow_id,
                workflow_name="build-and-deploy",
                pipeline_id="bench-api-pipeline",
                pipeline_number=99,
                job_id=f"{workflow_id}:{name}",
                job_number=number,
                started_at=began.isoformat(),
                completed_at=(began + timedelta(minutes=9)).isoformat(),
                url=f"https://app.circleci.com/pipelines/gh/{repository}/99/jobs/{number}",
            )
        )
    events.append(
        _event(
            repository,
            "circleci",
            "workflow_run",
            "cci-run",
            run_start + timedelta(minutes=50),
            name="build-and-deploy",
            status="failed",
            conclusion="failure",
            run_id=workflow_id,
            workflow_name="build-and-deploy",
            pipeline_id="bench-api-pipeline",
            pipeline_number=99,
            started_at=run_start.isoformat(),
            completed_at=(run_start + timedelta(minutes=50)).isoformat(),
        )
    )
    return events


def seed(events: int) -> dict[str, Any]:
    """Seed the stream, the target release and a read-only token; return what the load needs."""
    import django

    django.setup()
    from django.db import connection

    from bench.ui_pages import BULK_REPOS, seed_bulk
    from releases import projector, stream
    from releases.models import StreamEvent, TimelineEntry
    from releases.services import bot_token_create, policy_set, repository_create

    # A repository of the bulk seed, so the token's stream is one fiftieth of the whole.
    repository = f"bench/repo-{7 % BULK_REPOS}"
    bulk_s = seed_bulk(events)
    started = time.perf_counter()
    repo = repository_create(full_name=repository)
    policy_set(repository=repo, document=target_policy(repository), actor="bench")
    for kwargs in target_release_events(repository, datetime.now(UTC) - timedelta(days=1)):
        stream.append(**kwargs)
    projector.catch_up()
    _bot, token = bot_token_create(name="bench-api", repositories=[repo], can_write=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    release_s = time.perf_counter() - started
    positions = list(
        StreamEvent.objects.filter(repository=repository)
        .order_by("position")
        .values_list("position", flat=True)
    )
    # Every 50th position of the repository: each cursor starts a real, full page.
    pages = positions[::50]
    step = max(len(pages) // MAX_CURSORS, 1)
    return {
        "repository": repository,
        "tag": TARGET_TAG,
        "token": token,
        "events": StreamEvent.objects.count(),
        "repository_events": len(positions),
        "timeline_entries": TimelineEntry.objects.filter(
            release__repository=repository, release__tag=TARGET_TAG
        ).count(),
        "cursors": [0, *pages[::step][:MAX_CURSORS]],
        "seed_bulk_s": round(bulk_s, 1),
        "seed_release_s": round(release_s, 1),
    }


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Return a plan node and every node under it."""
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def plan_summary(document: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the facts the report shows about one `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`.

    `stream_seq_scan` is whether any node, however deep, reads the stream table in full.
    """
    top = document[0]
    nodes = _nodes(top["Plan"])
    return {
        "top_node": top["Plan"]["Node Type"],
        "relations": sorted({n["Relation Name"] for n in nodes if "Relation Name" in n}),
        "seq_scans": sorted({n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"}),
        "stream_seq_scan": any(
            n["Node Type"] == "Seq Scan" and n.get("Relation Name") == STREAM_TABLE for n in nodes
        ),
        "execution_ms": top.get("Execution Time"),
        "planning_ms": top.get("Planning Time"),
        "shared_hit": top["Plan"].get("Shared Hit Blocks", 0),
        "shared_read": top["Plan"].get("Shared Read Blocks", 0),
    }


def explain(spec: dict[str, Any]) -> dict[str, Any]:
    """Request each endpoint twice; EXPLAIN (ANALYZE, BUFFERS) the second request's SELECTs.

    The second request is the steady state the load sees: the first may also record the
    token's last use, a write that happens at most once a minute per token.
    """
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"Authorization": f"Bearer {spec['token']}"}
    endpoints: dict[str, list[dict[str, Any]]] = {}
    for name, paths in spec["paths"].items():
        endpoints[name] = []
        for path in paths:
            client.get(path, headers=headers)
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, headers=headers)
            queries = []
            for query in captured.captured_queries:
                sql = query["sql"]
                if not sql.lstrip().upper().startswith("SELECT"):
                    queries.append({"sql": sql, "explained": False})
                    continue
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
                    raw = cursor.fetchone()[0]
                    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                    text = "\n".join(row[0] for row in cursor.fetchall())
                document = raw if isinstance(raw, list) else json.loads(raw)
                queries.append(
                    {"sql": sql, "explained": True, **plan_summary(document), "plan": text}
                )
            endpoints[name].append(
                {
                    "path": path,
                    "status": response.status_code,
                    "bytes": len(response.content),
                    "queries": queries,
                }
            )
    return {"endpoints": endpoints}


def main(argv: list[str] | None = None) -> int:
    """Run one command and print its result as one BENCH-RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed")
    seeding.add_argument("--events", type=int, default=1_000_000)
    explaining = commands.add_parser("explain")
    explaining.add_argument("--spec", type=Path, required=True, help="JSON: token and paths")
    args = parser.parse_args(argv)
    if args.command == "seed":
        result = seed(args.events)
    else:
        result = explain(json.loads(args.spec.read_text()))
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
