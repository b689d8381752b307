"""The soak's checks that read Shiplog's database, run inside `manage.py shell` on its settings.

`python manage.py shell -c "from bench.chaos.check import main; main()"` with CHAOS_CHECK set
to "stream" (the acknowledged deliveries, duplicates, the hash chain, reruns) or "snapshot"
(the projection tables, written to CHAOS_SNAPSHOT), prints one `BENCH-RESULT` JSON line.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Max, Model

from bench.server import RESULT_MARK
from incidents.models import ActionItem, Incident, IncidentEvent, PostmortemRevision
from releases.models import (
    KnownTag,
    ProjectorCheckpoint,
    Release,
    RetryAttempt,
    StreamEvent,
    TimelineEntry,
)
from releases.stream import verify_chain


def stream_checks(acks: dict[str, list[Any]]) -> dict[str, Any]:
    """Return what the stream says about the acknowledged deliveries and the reruns.

    `acks` maps each acknowledged delivery key to the [event_id, position] pairs its 2xx
    answers named (a redelivery answers with the first delivery's event).
    """
    stored: dict[str, list[tuple[str, int]]] = {}
    rows = StreamEvent.objects.filter(delivery_key__in=list(acks)).values_list(
        "delivery_key", "event_id", "position"
    )
    for key, event_id, position in rows.iterator(chunk_size=5000):
        stored.setdefault(key, []).append((str(event_id), position))
    missing = [key for key in acks if key not in stored]
    twice = [key for key, found in stored.items() if len(found) > 1]
    mismatched = [
        key
        for key, answers in acks.items()
        if key in stored
        and len(stored[key]) == 1
        and any((str(e), int(p)) != stored[key][0] for e, p in answers)
    ]
    duplicate_keys = (
        StreamEvent.objects.values("delivery_key")
        .annotate(n=Count("position"))
        .filter(n__gt=1)
        .count()
    )
    problems = [f"#{p.position}: {p.reason}" for p in verify_chain()]
    sources = Counter(StreamEvent.objects.values_list("source", flat=True).iterator(5000))
    types = Counter(
        StreamEvent.objects.filter(source="shiplog")
        .values_list("event_type", flat=True)
        .iterator(5000)
    )
    attempts = list(
        RetryAttempt.objects.values(
            "idempotency_key", "api", "target", "status", "attempt", "tries"
        ).order_by("idempotency_key")
    )
    return {
        "acknowledged": len(acks),
        "missing": len(missing),
        "missing_examples": missing[:5],
        "stored_twice": len(twice),
        "stored_twice_examples": twice[:5],
        "answer_mismatch": len(mismatched),
        "answer_mismatch_examples": mismatched[:5],
        "duplicate_delivery_keys": duplicate_keys,
        "chain_problems": len(problems),
        "chain_problem_examples": problems[:5],
        "stream_rows": sum(sources.values()),
        "stream_by_source": dict(sources),
        "shiplog_events": dict(types),
        "max_position": StreamEvent.objects.aggregate(m=Max("position"))["m"] or 0,
        "checkpoint": ProjectorCheckpoint.objects.filter(name="releases")
        .values_list("position", flat=True)
        .first()
        or 0,
        "retry_attempts": attempts,
        "blocked_releases": Release.objects.filter(flags__contains=",blocked,").count(),
        "releases": Release.objects.count(),
        "incidents": Incident.objects.count(),
    }


def _fields(model: type[Model]) -> list[str]:
    """Return the columns that a rebuild must reproduce: all but surrogate keys and clocks."""
    names = []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.name == "id" and model is not Incident:
            continue  # an autoincrement id differs after a rebuild; the natural key does not
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if field.name == "release":
            names += ["release__repository", "release__ref_key"]
            continue
        names.append(field.attname)
    return names


SNAPSHOT_MODELS: tuple[type[Model], ...] = (
    Release,
    TimelineEntry,
    KnownTag,
    Incident,
    IncidentEvent,
    ActionItem,
    PostmortemRevision,
)


def projection_snapshot() -> dict[str, list[str]]:
    """Return every projection row as canonical JSON, sorted: order-insensitive and diffable."""
    snapshot = {}
    for model in SNAPSHOT_MODELS:
        rows = model._default_manager.values(*_fields(model)).iterator(chunk_size=5000)
        snapshot[model.__name__] = sorted(
            json.dumps(row, cls=DjangoJSONEncoder, sort_keys=True) for row in rows
        )
    return snapshot


def main() -> None:
    """Run the check named by CHAOS_CHECK and print its result."""
    what = os.environ["CHAOS_CHECK"]
    if what == "stream":
        acks = json.loads(Path(os.environ["CHAOS_ACKS"]).read_text())
        result: dict[str, Any] = stream_checks(acks)
    elif what == "snapshot":
        snapshot = projection_snapshot()
        Path(os.environ["CHAOS_SNAPSHOT"]).write_text(json.dumps(snapshot))
        result = {name: len(rows) for name, rows in snapshot.items()}
    else:
        raise SystemExit(f"unknown CHAOS_CHECK {what!r}")
    print(RESULT_MARK + json.dumps(result, cls=DjangoJSONEncoder))
