"""The only writer of the stream: `append`. Also the chain check that proves nothing was edited.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by its
single writer (transactions start IMMEDIATE). Serialising costs little (one fsync per commit
is the ceiling either way) and buys two properties the rest of Shiplog relies on:

- each row's hash covers the hash of the row before it, so the stream is a hash chain;
- positions are handed out in commit order, so a reader that has seen position N has seen
  every row below N, and "position > checkpoint" never skips a row that commits late.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from releases.models import Recognition, Source, StreamEvent

# An arbitrary constant: the advisory lock key that serialises appends on PostgreSQL.
APPEND_LOCK_KEY = 0x5348_4950_4C4F_47  # "SHIPLOG"
EVENT_ID_NAMESPACE = uuid.UUID("8a6f1c52-3f0e-4c43-9d0b-5d7f0f3f1e10")
GENESIS_HASH = "0" * 64
TABLE = StreamEvent._meta.db_table
COLUMNS = [field.attname for field in StreamEvent._meta.concrete_fields]
_JSON_COLUMNS = {"headers", "data"}
_POSTGRES_CLAIM = (
    "SELECT pg_advisory_xact_lock(%s); "
    f"SELECT (SELECT position FROM {TABLE} WHERE event_id = %s), "
    f"(SELECT hash FROM {TABLE} ORDER BY position DESC LIMIT 1), "
    f"nextval(pg_get_serial_sequence('{TABLE}', 'position'))"
)
_SQLITE_CLAIM = (
    f"SELECT (SELECT position FROM {TABLE} WHERE event_id = %s), "
    f"(SELECT hash FROM {TABLE} ORDER BY position DESC LIMIT 1), "
    f"(SELECT MAX(position) FROM {TABLE})"
)
_POSTGRES_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES "
    f"({', '.join('%s::jsonb' if c in _JSON_COLUMNS else '%s' for c in COLUMNS)})"
)
_SQLITE_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)


def _insert_params(fields: Mapping[str, Any], *, postgres: bool) -> list[Any]:
    """Return the INSERT's parameters; JSON goes in as the same canonical text that is hashed."""
    params: list[Any] = []
    for column in COLUMNS:
        value = fields[column]
        if column in _JSON_COLUMNS:
            value = canonical_json(value).decode()
        elif isinstance(value, uuid.UUID):
            value = value if postgres else value.hex
        elif isinstance(value, datetime) and not postgres:
            value = connection.ops.adapt_datetimefield_value(value)
        params.append(value)
    return params


@dataclass(frozen=True, slots=True)
class Appended:
    """What `append` did: the event's position and whether this call stored it."""

    position: int
    event_id: uuid.UUID
    created: bool


def event_id_for(delivery_key: str) -> uuid.UUID:
    """Return the event id for a delivery key: the same key always gives the same id."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, delivery_key)


def canonical_json(value: Any) -> bytes:
    """Serialise `value` the one way the hash chain expects."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def row_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """Return the chain hash of one row, given the hash of the row before it."""
    digest = hashlib.sha256(prev_hash.encode())
    for name in (
        "position",
        "event_id",
        "source",
        "event_type",
        "repository",
        "sha",
        "branch",
        "tag",
        "occurred_at",
        "recorded_at",
        "delivery_key",
        "headers",
        "body",
        "data",
        "recognition",
    ):
        value = fields[name]
        if isinstance(value, datetime):
            raw = _timestamp(value).encode()
        elif isinstance(value, bytes | memoryview):
            raw = bytes(value)
        elif isinstance(value, dict | list):
            raw = canonical_json(value)
        else:
            raw = str(value).encode()
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()


def append(
    *,
    source: Source | str,
    event_type: str,
    delivery_key: str,
    repository: str = "",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
    recognition: Recognition | str = Recognition.RECOGNISED,
    occurred_at: datetime | None = None,
    sha: str = "",
    branch: str = "",
    tag: str = "",
) -> Appended:
    """Append one fact to the stream unless its delivery key is already there.

    Runs in its own transaction, or joins the caller's so that the fact and whatever the
    caller writes with it commit together.
    """
    event_id = event_id_for(delivery_key)
    recorded_at = timezone.now()
    fields: dict[str, Any] = {
        "event_id": event_id,
        "source": str(source),
        "event_type": event_type,
        "repository": repository,
        "sha": sha,
        "branch": branch,
        "tag": tag,
        "occurred_at": occurred_at or recorded_at,
        "recorded_at": recorded_at,
        "delivery_key": delivery_key,
        "headers": dict(headers or {}),
        "body": body,
        "data": dict(data or {}),
        "recognition": str(recognition),
    }
    postgres = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cursor:
        if postgres:
            # One round trip: the lock, then (in a new statement, so with a snapshot taken
            # after the lock) the duplicate check, the chain head and the next position.
            # A concurrent append of the same key has either committed by then, and is seen,
            # or not started; the unique index on event_id is only a second guard.
            cursor.execute(_POSTGRES_CLAIM, [APPEND_LOCK_KEY, event_id])
            cursor.nextset()
            existing, head_hash, position = cursor.fetchone()
        else:
            cursor.execute(_SQLITE_CLAIM, [event_id.hex])
            existing, head_hash, last = cursor.fetchone()
            position = (last or 0) + 1
        if existing is not None:
            return Appended(position=existing, event_id=event_id, created=False)
        prev_hash = head_hash or GENESIS_HASH
        fields["position"] = position
        fields["prev_hash"] = prev_hash
        fields["hash"] = row_hash(prev_hash, fields)
        cursor.execute(
            _POSTGRES_INSERT if postgres else _SQLITE_INSERT,
            _insert_params(fields, postgres=postgres),
        )
        transaction.on_commit(_request_projection)
    return Appended(position=position, event_id=event_id, created=True)


def _request_projection() -> None:
    from releases.tasks import request_projection  # the tasks module imports the projector

    request_projection()


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """One place where the stream does not match its hash chain."""

    position: int
    reason: str


def verify_chain(batch_size: int = 5000) -> Iterator[ChainProblem]:
    """Yield every row whose hash, link or position breaks the chain, in position order."""
    prev_hash = GENESIS_HASH
    prev_position = 0
    rows = (
        StreamEvent.objects.order_by("position")
        .values_list(
            "position",
            "event_id",
            "source",
            "event_type",
            "repository",
            "sha",
            "branch",
            "tag",
            "occurred_at",
            "recorded_at",
            "delivery_key",
            "headers",
            "body",
            "data",
            "recognition",
            "prev_hash",
            "hash",
            named=True,
        )
        .iterator(chunk_size=batch_size)
    )
    for row in rows:
        fields = row._asdict()
        if row.position <= prev_position:
            yield ChainProblem(row.position, f"position does not follow {prev_position}")
        if row.prev_hash != prev_hash:
            yield ChainProblem(
                row.position,
                f"links to {row.prev_hash[:12]}… but the row before it hashes to "
                f"{prev_hash[:12]}… (a row was removed, inserted or reordered)",
            )
        expected = row_hash(row.prev_hash, fields)
        if expected != row.hash:
            yield ChainProblem(row.position, "contents do not match the row's hash (edited)")
        if event_id_for(row.delivery_key) != row.event_id:
            yield ChainProblem(row.position, "event id does not match its delivery key")
        prev_hash = row.hash
        prev_position = row.position
