"""The only writer of the stream: `append`. Also the chain check that proves nothing was edited.

`append_many` is the bulk path (importing history): many facts in one transaction under the
same lock, written with one COPY on PostgreSQL, each linked to the one before exactly as
`append` links them.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, taken inside the
`shiplog_stream_append` function (`releases.append_sql`), on SQLite by its single writer
(transactions start IMMEDIATE). Serialising costs little (one fsync per commit is the ceiling
either way) and buys two properties the rest of Shiplog relies on:

- each row's hash covers the hash of the row before it, so the stream is a hash chain;
- positions are handed out in commit order, so a reader that has seen position N has seen
  every row below N, and "position > checkpoint" never skips a row that commits late.

A row's hash is sha256 of "<previous hash>:<position>:<content hash>", the content hash being
sha256 over the row's other fields. Only the first two depend on the rows before, so the
content hash is computed before the lock is taken and the link inside it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from releases import append_sql
from releases.append_sql import APPEND_LOCK_KEY, GENESIS_HASH
from releases.models import Recognition, Source, StreamEvent

__all__ = [
    "APPEND_LOCK_KEY",
    "GENESIS_HASH",
    "Appended",
    "Fact",
    "append",
    "append_many",
    "verify_chain",
]

EVENT_ID_NAMESPACE = uuid.UUID("8a6f1c52-3f0e-4c43-9d0b-5d7f0f3f1e10")
TABLE = StreamEvent._meta.db_table
COLUMNS = [field.attname for field in StreamEvent._meta.concrete_fields]
# The fields the content hash covers, in order: all but the position and the chain itself.
CONTENT_FIELDS = (
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
)
_SQLITE_CLAIM = (
    f"SELECT (SELECT position FROM {TABLE} WHERE event_id = %s), "
    f"(SELECT hash FROM {TABLE} ORDER BY position DESC LIMIT 1), "
    f"(SELECT MAX(position) FROM {TABLE})"
)
_SQLITE_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)


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


def _hash_input(value: Any) -> bytes:
    if isinstance(value, datetime):
        return _timestamp(value).encode()
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return canonical_json(value)
    return str(value).encode()


def content_hash(fields: Mapping[str, Any]) -> str:
    """Return the hash of a row's contents: every field but its position and chain link."""
    digest = hashlib.sha256()
    for name in CONTENT_FIELDS:
        raw = _hash_input(fields[name])
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()


def chain_hash(prev_hash: str, position: int, content: str) -> str:
    """Return a row's chain hash from the hash before it, its position and its content hash."""
    return hashlib.sha256(f"{prev_hash}:{position}:{content}".encode()).hexdigest()


def row_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """Return the chain hash of one row (with its position), given the hash of the row before."""
    return chain_hash(prev_hash, fields["position"], content_hash(fields))


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
    headers_json = canonical_json(fields["headers"])
    data_json = canonical_json(fields["data"])
    # The JSON is serialised once, for the hash and for the INSERT alike.
    content = content_hash({**fields, "headers": headers_json, "data": data_json})
    if connection.vendor == "postgresql":
        appended = _append_postgres(fields, content, headers_json, data_json)
    else:
        appended = _append_sqlite(fields, content, headers_json, data_json)
    if appended.created:
        transaction.on_commit(_request_projection)
    return appended


def _append_postgres(
    fields: dict[str, Any], content: str, headers_json: bytes, data_json: bytes
) -> Appended:
    # Outside a transaction this is one autocommit statement: the lock is held only while the
    # function runs and the commit is flushed. Inside the caller's, it joins it (and the lock
    # is held until the caller commits, as the caller's writes must commit with the fact).
    with connection.cursor() as cursor:
        cursor.execute(
            append_sql.CALL,
            [
                fields["event_id"],
                fields["source"],
                fields["event_type"],
                fields["repository"],
                fields["sha"],
                fields["branch"],
                fields["tag"],
                fields["occurred_at"],
                fields["recorded_at"],
                fields["delivery_key"],
                headers_json.decode(),
                fields["body"],
                data_json.decode(),
                fields["recognition"],
                content,
            ],
        )
        position, created = cursor.fetchone()
    return Appended(position=position, event_id=fields["event_id"], created=created)


def _append_sqlite(
    fields: dict[str, Any], content: str, headers_json: bytes, data_json: bytes
) -> Appended:
    with transaction.atomic(), connection.cursor() as cursor:
        event_id = fields["event_id"]
        cursor.execute(_SQLITE_CLAIM, [event_id.hex])
        existing, head_hash, last = cursor.fetchone()
        if existing is not None:
            return Appended(position=existing, event_id=event_id, created=False)
        position = (last or 0) + 1
        prev_hash = head_hash or GENESIS_HASH
        row = {
            **fields,
            "event_id": event_id.hex,
            "occurred_at": connection.ops.adapt_datetimefield_value(fields["occurred_at"]),
            "recorded_at": connection.ops.adapt_datetimefield_value(fields["recorded_at"]),
            "headers": headers_json.decode(),
            "data": data_json.decode(),
            "position": position,
            "prev_hash": prev_hash,
            "hash": chain_hash(prev_hash, position, content),
        }
        cursor.execute(_SQLITE_INSERT, [row[column] for column in COLUMNS])
    return Appended(position=position, event_id=event_id, created=True)


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact for `append_many`: the arguments `append` takes."""

    source: Source | str
    event_type: str
    delivery_key: str
    repository: str = ""
    body: bytes = b""
    headers: Mapping[str, str] | None = None
    data: Mapping[str, Any] | None = None
    recognition: Recognition | str = Recognition.RECOGNISED
    occurred_at: datetime | None = None
    sha: str = ""
    branch: str = ""
    tag: str = ""


@dataclass(slots=True)
class _Prepared:
    """A fact with everything that does not depend on the chain head computed."""

    fields: dict[str, Any]
    headers_json: str
    data_json: str
    content: str


def _prepare(fact: Fact, recorded_at: datetime) -> _Prepared:
    fields: dict[str, Any] = {
        "event_id": event_id_for(fact.delivery_key),
        "source": str(fact.source),
        "event_type": fact.event_type,
        "repository": fact.repository,
        "sha": fact.sha,
        "branch": fact.branch,
        "tag": fact.tag,
        "occurred_at": fact.occurred_at or recorded_at,
        "recorded_at": recorded_at,
        "delivery_key": fact.delivery_key,
        "headers": dict(fact.headers or {}),
        "body": bytes(fact.body),
        "data": dict(fact.data or {}),
        "recognition": str(fact.recognition),
    }
    headers_json = canonical_json(fields["headers"])
    data_json = canonical_json(fields["data"])
    content = content_hash({**fields, "headers": headers_json, "data": data_json})
    return _Prepared(fields, headers_json.decode(), data_json.decode(), content)


def append_many(facts: Iterable[Fact]) -> list[Appended]:
    """Append facts in order, in one transaction, skipping delivery keys already stored.

    Return one `Appended` per fact, in the order given: a key already in the stream, or
    earlier in `facts`, gets the position of the row that holds it and `created=False`.
    The new rows take contiguous positions and are chained exactly as `append` chains them.
    Joins the caller's transaction like `append`; either every new fact is stored or none.
    """
    recorded_at = timezone.now()
    prepared = [_prepare(fact, recorded_at) for fact in facts]
    first_of: dict[uuid.UUID, _Prepared] = {}
    for item in prepared:
        first_of.setdefault(item.fields["event_id"], item)
    positions: dict[uuid.UUID, int] = {}
    created: set[uuid.UUID] = set()
    if first_of:
        with transaction.atomic(), connection.cursor() as cursor:
            postgres = connection.vendor == "postgresql"
            if postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])
            # Read after the lock is granted, so that no append can slip in between.
            positions.update(_stored_positions(cursor, list(first_of), postgres=postgres))
            new = [item for key, item in first_of.items() if key not in positions]
            if new:
                cursor.execute(f"SELECT hash FROM {TABLE} ORDER BY position DESC LIMIT 1")
                head = cursor.fetchone()
                prev_hash = head[0] if head else GENESIS_HASH
                claimed = _claim_positions(cursor, len(new), postgres=postgres)
                rows = []
                for item, position in zip(new, claimed, strict=True):
                    link = chain_hash(prev_hash, position, item.content)
                    rows.append(_row(item, position, prev_hash, link, postgres=postgres))
                    positions[item.fields["event_id"]] = position
                    created.add(item.fields["event_id"])
                    prev_hash = link
                _write_rows(cursor, rows, postgres=postgres)
    results = []
    for item in prepared:
        event_id = item.fields["event_id"]
        # Only the first fact with a key stores it; a repeat later in the batch does not.
        first = first_of[event_id] is item and event_id in created
        results.append(Appended(position=positions[event_id], event_id=event_id, created=first))
    if created:
        transaction.on_commit(_request_projection)
    return results


def _stored_positions(
    cursor: Any, event_ids: list[uuid.UUID], *, postgres: bool
) -> dict[uuid.UUID, int]:
    """Return the positions of those of `event_ids` already in the stream."""
    found: dict[uuid.UUID, int] = {}
    if postgres:
        cursor.execute(
            f"SELECT event_id, position FROM {TABLE} WHERE event_id = ANY(%s)", [event_ids]
        )
        found.update((event_id, position) for event_id, position in cursor.fetchall())
        return found
    # SQLite stores UUIDs as 32 hex digits; chunks stay under its limit on parameters.
    for start in range(0, len(event_ids), 500):
        chunk = [event_id.hex for event_id in event_ids[start : start + 500]]
        marks = ", ".join(["%s"] * len(chunk))
        cursor.execute(f"SELECT event_id, position FROM {TABLE} WHERE event_id IN ({marks})", chunk)
        found.update((uuid.UUID(event_id), position) for event_id, position in cursor.fetchall())
    return found


def _claim_positions(cursor: Any, count: int, *, postgres: bool) -> list[int]:
    """Return `count` new positions in increasing order; the lock makes them contiguous."""
    if postgres:
        # The sequence `append` draws from, so that the two paths never hand out one twice.
        cursor.execute(
            f"SELECT nextval(pg_get_serial_sequence('{TABLE}', 'position')) "
            "FROM generate_series(1, %s)",
            [count],
        )
        return sorted(position for (position,) in cursor.fetchall())
    cursor.execute(f"SELECT MAX(position) FROM {TABLE}")
    last = cursor.fetchone()[0] or 0
    return list(range(last + 1, last + 1 + count))


def _row(item: _Prepared, position: int, prev_hash: str, link: str, *, postgres: bool) -> list[Any]:
    fields = item.fields
    row = {
        **fields,
        "headers": item.headers_json,
        "data": item.data_json,
        "position": position,
        "prev_hash": prev_hash,
        "hash": link,
    }
    if not postgres:
        row["event_id"] = fields["event_id"].hex
        row["occurred_at"] = connection.ops.adapt_datetimefield_value(fields["occurred_at"])
        row["recorded_at"] = connection.ops.adapt_datetimefield_value(fields["recorded_at"])
    return [row[column] for column in COLUMNS]


def _write_rows(cursor: Any, rows: list[list[Any]], *, postgres: bool) -> None:
    if postgres:
        # COPY: one statement streams every row, no per-row round trip or statement parse.
        with cursor.copy(f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cursor.executemany(_SQLITE_INSERT, rows)


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
            *CONTENT_FIELDS,
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
