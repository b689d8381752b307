"""Time each step of the GitHub hook's path in one process: run by the hook-parts suite.

Runs inside Django (production settings, the scratch database in DATABASE_URL) and prints one
`BENCH-RESULT` JSON line: per step, wall and CPU microseconds per call.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import django

django.setup()

import orjson  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench import cpu  # noqa: E402
from bench.payloads import REPOSITORY, workflow_job  # noqa: E402
from releases import selectors, services, signatures, stream  # noqa: E402
from releases.deliveries import github_delivery  # noqa: E402
from releases.encryption import decrypt  # noqa: E402
from releases.ingest import NORMALISERS  # noqa: E402
from releases.models import WebhookSecret  # noqa: E402


def timed(step: Callable[[], object], calls: int, batches: int = 5) -> dict[str, float]:
    """Return wall and CPU microseconds per call of `step`: the best of `batches` batches.

    The minimum, as `timeit` reports it, because a neighbour only ever adds time.
    """
    for _ in range(max(calls // 10, 20)):
        step()
    roots = {"worker": {os.getpid()}, "postgres": {int(os.environ["BENCH_PG_PID"])}}
    quiet = cpu.wait_for_quiet(roots, patience_s=10)
    before = cpu.sample(roots)
    per_batch = max(calls // batches, 1)
    best_wall = best_cpu = float("inf")
    for _ in range(batches):
        wall, used = time.perf_counter(), time.process_time()
        for _ in range(per_batch):
            step()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - used)
    noise = cpu.usage(before, cpu.sample(roots))
    return {
        "wall_us": round(best_wall / per_batch * 1e6, 1),
        "cpu_us": round(best_cpu / per_batch * 1e6, 1),
        "others": round(noise["others"] + noise["steal"], 3),
        "others_before": round(quiet.get("others", 0.0) + quiet.get("steal", 0.0), 3),
    }


def wsgi_environ(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Return a WSGI environ for a POST of `body` to the GitHub hook."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/hooks/github/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "CONTENT_TYPE": headers["Content-Type"],
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        if name != "Content-Type":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def steps(size: str, secret: str) -> dict[str, Callable[[], object]]:
    """Return the steps to time for one body size, in the order a request takes them."""
    delivery = github_delivery("workflow_job", workflow_job(size), secret, hook_id=421_337)
    body, headers = delivery.body, dict(delivery.headers)
    payload = orjson.loads(body)
    digest = signatures.github_digest(headers["X-Hub-Signature-256"])
    normaliser = NORMALISERS["github"]
    normalised = normaliser.normalise("workflow_job", payload)
    data = normalised.as_data()
    kept = {name: headers[name] for name in services.GITHUB_HEADERS if name in headers}
    token = bytes(
        WebhookSecret.objects.filter(platform="github").values_list("encrypted_secret", flat=True)[
            0
        ]
    )
    counter = itertools.count()
    fields = {
        "position": 1,
        "event_id": uuid.uuid4(),
        "source": "github",
        "event_type": normalised.event_type,
        "repository": REPOSITORY,
        "sha": normalised.sha,
        "branch": normalised.branch,
        "tag": "",
        "occurred_at": normalised.occurred_at,
        "recorded_at": normalised.occurred_at,
        "delivery_key": "github:1:x",
        "headers": kept,
        "body": body,
        "data": data,
        "recognition": "recognised",
        "prev_hash": stream.GENESIS_HASH,
        "hash": stream.GENESIS_HASH,
    }
    cursor = connection.cursor()
    app = WSGIHandler()

    def append() -> object:
        return stream.append(
            source="github",
            event_type=normalised.event_type,
            delivery_key=f"parts:{size}:{next(counter)}:{uuid.uuid4()}",
            repository=REPOSITORY,
            body=body,
            headers=kept,
            data=data,
            occurred_at=normalised.occurred_at,
            sha=normalised.sha,
            branch=normalised.branch,
        )

    def lock_only() -> None:
        with transaction.atomic(), connection.cursor() as locked:
            locked.execute("SELECT pg_advisory_xact_lock(%s)", [stream.APPEND_LOCK_KEY])

    def service() -> object:
        headers["X-GitHub-Delivery"] = str(uuid.uuid4())
        return services.github_delivery_record(
            headers=headers, body=body, content_type=headers["Content-Type"]
        )

    def request() -> None:
        headers["X-GitHub-Delivery"] = str(uuid.uuid4())
        environ = wsgi_environ(headers, body)
        environ["wsgi.input"] = io.BytesIO(body)
        statuses: list[str] = []

        def start_response(
            status: str, _headers: list[tuple[str, str]], _exc_info: Any = None
        ) -> Callable[[bytes], object]:
            statuses.append(status)
            return lambda _data: None

        response = app(environ, start_response)
        b"".join(response)
        response.close()
        if not statuses[0].startswith("202"):
            raise RuntimeError(f"the hook answered {statuses[0]}")

    return {
        "round trip: SELECT 1": lambda: cursor.execute("SELECT 1"),
        "connection health check (CONN_HEALTH_CHECKS)": connection.is_usable,
        "secret lookup: webhook_secret_candidates()": lambda: selectors.webhook_secret_candidates(
            platform="github", repository=REPOSITORY
        ),
        "  of which: Fernet decrypt of one secret": lambda: decrypt(token),
        "HMAC-SHA256 check of the body": lambda: signatures.matching_secret(
            body, digest, [(secret, REPOSITORY)]
        ),
        "JSON decode (orjson)": lambda: orjson.loads(body),
        "normalise()": lambda: normaliser.normalise("workflow_job", payload),
        "Normalised.as_data()": normalised.as_data,
        "stream.append(), new row, commit": append,
        "  of which: BEGIN, advisory lock, COMMIT": lock_only,
        "  of which: content_hash() (before the lock)": lambda: stream.content_hash(fields),
        "service: github_delivery_record()": service,
        "whole request: WSGI handler, middleware, hook": request,
    }


def main() -> None:
    """Time every step for both body sizes and print the result line."""
    secret = os.environ["BENCH_GITHUB_SECRET"]
    calls = int(os.environ.get("BENCH_CALLS", "1000"))
    result: dict[str, dict[str, dict[str, float]]] = {}
    for size in ("small", "large"):
        result[size] = {}
        for name, step in steps(size, secret).items():
            result[size][name] = timed(step, calls)
            print(f"  {size:<5} {name:<48} {result[size][name]}", file=sys.stderr, flush=True)
    print("BENCH-RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
