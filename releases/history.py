"""Import past CI events into the stream from JSON Lines (`manage.py import_history`).

Each line is one JSON object with the fields `releases.stream.append` takes:

- `source` (required): "github", "circleci", "api" or "shiplog";
- `event_type` (required) and `delivery_key` (required; the key a redelivery would have, e.g.
  "github:<hook id>:<delivery id>", so that importing what a webhook already delivered, or
  importing the same file twice, stores nothing twice);
- the body, at most one of: `body` (text, stored as UTF-8), `body_json` (any JSON value,
  stored as compact JSON) or `body_base64` (bytes);
- optional `repository`, `sha`, `branch`, `tag`, `headers` (an object of strings),
  `occurred_at` (ISO 8601 with a UTC offset), `data` (an object) and `recognition`.

When a GitHub or CircleCI line has no `data`, its body is read by the same normaliser the
webhook uses, which fills in `data`, `recognition` and (unless the line gives them) the
repository, time, commit, branch and tag: imported history projects like live deliveries.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from releases import stream
from releases.ingest import NORMALISERS, MalformedPayload, Normalised, UnrecognisedEvent
from releases.models import Recognition, Source, StreamEvent

BATCH_SIZE = 5000
REQUIRED = ("source", "event_type", "delivery_key")
TEXT_FIELDS = ("source", "event_type", "delivery_key", "repository", "sha", "branch", "tag")
BODY_FIELDS = ("body", "body_json", "body_base64")
KNOWN = {*TEXT_FIELDS, *BODY_FIELDS, "headers", "occurred_at", "data", "recognition"}
# The database's own limits, checked here so a long value names its line instead of failing
# the batch's COPY (and SQLite, which enforces no length, stores the same as PostgreSQL).
MAX_LENGTH: dict[str, int | None] = {
    name: getattr(StreamEvent._meta.get_field(name), "max_length", None) for name in TEXT_FIELDS
}


class HistoryLineError(ValueError):
    """A line that cannot be imported; `line` is its 1-based number in the file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class HistoryImported:
    """What an import did: lines read, facts newly stored, facts already in the stream."""

    lines: int
    stored: int
    duplicates: int


def _text(obj: dict[str, Any], name: str, line: int) -> str:
    value = obj.get(name, "")
    if not isinstance(value, str):
        raise HistoryLineError(line, f"{name!r} must be a string, not {type(value).__name__}")
    limit = MAX_LENGTH[name]
    if limit is not None and len(value) > limit:
        raise HistoryLineError(line, f"{name!r} is longer than {limit} characters")
    return value


def _body(obj: dict[str, Any], line: int) -> bytes:
    given = [name for name in BODY_FIELDS if name in obj]
    if len(given) > 1:
        raise HistoryLineError(line, f"give at most one of {', '.join(BODY_FIELDS)}")
    if not given:
        return b""
    name, value = given[0], obj[given[0]]
    if name == "body_json":
        return orjson.dumps(value)
    if not isinstance(value, str):
        raise HistoryLineError(line, f"{name!r} must be a string, not {type(value).__name__}")
    if name == "body":
        return value.encode()
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise HistoryLineError(line, f"'body_base64' is not valid base64 ({exc})") from exc


def _occurred_at(obj: dict[str, Any], line: int) -> datetime | None:
    value = obj.get("occurred_at")
    if value is None:
        return None
    if not isinstance(value, str):
        raise HistoryLineError(line, "'occurred_at' must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HistoryLineError(line, f"'occurred_at' is not ISO 8601: {value!r}") from exc
    if parsed.tzinfo is None:
        raise HistoryLineError(line, "'occurred_at' needs a UTC offset (e.g. Z or +00:00)")
    return parsed


def _normalised(source: str, event_type: str, body: bytes) -> Normalised:
    """Return the webhook normaliser's reading of `body`."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"body is not JSON: {exc}") from exc
    return NORMALISERS[source].normalise(event_type, payload)


def fact_from_line(text: str | bytes, *, line: int) -> stream.Fact:
    """Return the fact one line of the import file describes, or raise HistoryLineError."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise HistoryLineError(line, f"not a JSON object ({exc})") from exc
    if not isinstance(obj, dict):
        raise HistoryLineError(line, f"not a JSON object but a {type(obj).__name__}")
    unknown = sorted(set(obj) - KNOWN)
    if unknown:
        raise HistoryLineError(line, f"unknown field(s) {', '.join(map(repr, unknown))}")
    for name in REQUIRED:
        if not obj.get(name):
            raise HistoryLineError(line, f"{name!r} is missing or empty")
    text_fields = {name: _text(obj, name, line) for name in TEXT_FIELDS}
    if text_fields["source"] not in Source.values:
        raise HistoryLineError(
            line, f"'source' must be one of {', '.join(Source.values)}, not {obj['source']!r}"
        )
    headers = obj.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
    ):
        raise HistoryLineError(line, "'headers' must be an object of strings")
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise HistoryLineError(line, "'data' must be an object")
    recognition = obj.get("recognition", Recognition.RECOGNISED)
    if recognition not in Recognition.values:
        raise HistoryLineError(
            line, f"'recognition' must be one of {', '.join(Recognition.values)}"
        )
    body = _body(obj, line)
    occurred_at = _occurred_at(obj, line)
    source = text_fields["source"]
    if data is None and source in NORMALISERS:
        try:
            normalised = _normalised(source, text_fields["event_type"], body)
        except UnrecognisedEvent as exc:
            data, recognition = {"problem": str(exc)}, Recognition.UNRECOGNISED
        except MalformedPayload as exc:
            data, recognition = {"problem": str(exc)}, Recognition.MALFORMED
        else:
            # Given fields win: the file may know better (an opaque CircleCI slug's owner).
            for name in ("repository", "sha", "branch", "tag"):
                text_fields[name] = text_fields[name] or getattr(normalised, name)
            occurred_at = occurred_at or normalised.occurred_at
            data = normalised.as_data()
            data["repository"] = text_fields["repository"]
    return stream.Fact(
        source=source,
        event_type=text_fields["event_type"],
        delivery_key=text_fields["delivery_key"],
        repository=text_fields["repository"],
        body=body,
        headers=headers,
        data=data or {},
        recognition=recognition,
        occurred_at=occurred_at,
        sha=text_fields["sha"],
        branch=text_fields["branch"],
        tag=text_fields["tag"],
    )


def _batches(lines: Iterable[str | bytes], size: int) -> Iterator[tuple[int, list[stream.Fact]]]:
    """Yield (lines read so far, facts) per batch; blank lines are skipped."""
    batch: list[stream.Fact] = []
    number = 0
    for number, text in enumerate(lines, start=1):
        if text.strip():
            batch.append(fact_from_line(text, line=number))
        if len(batch) >= size:
            yield number, batch
            batch = []
    if batch:
        yield number, batch


def history_import(
    *,
    lines: Iterable[str | bytes],
    batch_size: int = BATCH_SIZE,
    progress: Callable[[HistoryImported], None] | None = None,
) -> HistoryImported:
    """Append every line's fact to the stream, `batch_size` per transaction, in file order.

    A line that cannot be read raises HistoryLineError before its batch is written, so
    nothing of that batch is stored; earlier batches stay, and importing the file again
    after the line is fixed skips them as duplicates.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    read = stored = duplicates = 0
    for read, facts in _batches(lines, batch_size):
        appended = stream.append_many(facts)
        created = sum(1 for result in appended if result.created)
        stored += created
        duplicates += len(appended) - created
        if progress is not None:
            progress(HistoryImported(read, stored, duplicates))
    return HistoryImported(lines=read, stored=stored, duplicates=duplicates)
