"""The stream: one append path, idempotent, append-only in the database, hash-chained."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC

import pytest
from django.db import DatabaseError, connection, transaction

from releases import stream
from releases.models import StreamEvent


def _append(key: str, **kwargs):
    return stream.append(
        source="api",
        event_type="annotation",
        delivery_key=key,
        repository="pyodide/pyodide",
        body=b'{"note": "CDN upload finished"}',
        **kwargs,
    )


@pytest.mark.django_db
def test_append_stores_the_fact_and_hands_out_increasing_positions():
    first = _append("api:one")
    second = _append("api:two", tag="0.26.2")
    assert first.created
    assert second.created
    assert second.position > first.position
    row = StreamEvent.objects.get(position=second.position)
    assert row.tag == "0.26.2"
    assert bytes(row.body) == b'{"note": "CDN upload finished"}'
    assert row.recorded_at.tzinfo is not None


@pytest.mark.django_db
def test_appending_the_same_delivery_key_twice_stores_one_row():
    first = _append("api:same")
    again = _append("api:same")
    assert not again.created
    assert again.position == first.position
    assert StreamEvent.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE shiplog_stream SET event_type = 'rewritten'",
        "UPDATE shiplog_stream SET body = NULL WHERE position > 0",
        "DELETE FROM shiplog_stream",
        "DELETE FROM shiplog_stream WHERE position > 0",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(statement):
    _append("api:kept")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert StreamEvent.objects.get().event_type == "annotation"


@pytest.mark.django_db
def test_the_database_refuses_truncate_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; DELETE without WHERE is refused above")
    _append("api:kept")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE shiplog_stream")
    assert StreamEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_orm_cannot_edit_or_delete_a_stored_fact_either():
    _append("api:kept")
    row = StreamEvent.objects.get()
    row.event_type = "rewritten"
    with pytest.raises(DatabaseError), transaction.atomic():
        row.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        StreamEvent.objects.all().delete()
    assert StreamEvent.objects.get().event_type == "annotation"


@pytest.mark.django_db
def test_an_intact_stream_verifies_and_each_row_links_to_the_one_before():
    rows = [_append(f"api:{n}") for n in range(5)]
    assert list(stream.verify_chain()) == []
    stored = list(StreamEvent.objects.order_by("position"))
    assert stored[0].prev_hash == stream.GENESIS_HASH
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.hash
    assert [r.position for r in stored] == [r.position for r in rows]


@pytest.mark.django_db
def test_event_ids_are_derived_from_delivery_keys():
    appended = _append("api:deterministic")
    assert appended.event_id == stream.event_id_for("api:deterministic")


@pytest.mark.django_db
def test_each_hash_is_the_documented_formula_an_auditor_can_recompute():
    # Recomputed here with hashlib alone, so a change to the chain's format fails this test.
    _append("api:first")
    _append("api:second", headers={"X-Request": "b"}, data={"z": 1, "a": [1, 2]})
    prev = stream.GENESIS_HASH
    for row in StreamEvent.objects.order_by("position"):
        content = hashlib.sha256()
        for value in (
            str(row.event_id),
            row.source,
            row.event_type,
            row.repository,
            row.sha,
            row.branch,
            row.tag,
            row.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
            row.recorded_at.astimezone(UTC).isoformat(timespec="microseconds"),
            row.delivery_key,
            json.dumps(row.headers, sort_keys=True, separators=(",", ":")),
            bytes(row.body),
            json.dumps(row.data, sort_keys=True, separators=(",", ":")),
            row.recognition,
        ):
            raw = value if isinstance(value, bytes) else value.encode()
            content.update(len(raw).to_bytes(8, "big") + raw)
        link = f"{prev}:{row.position}:{content.hexdigest()}"
        assert row.hash == hashlib.sha256(link.encode()).hexdigest()
        prev = row.hash


@pytest.mark.django_db(transaction=True)
def test_a_fact_appended_in_a_transaction_that_rolls_back_is_not_stored():
    def abandon() -> None:
        with transaction.atomic():
            _append("api:abandoned")
            raise RuntimeError("the caller gave up")

    with pytest.raises(RuntimeError):
        abandon()
    kept = _append("api:kept")
    assert kept.created
    assert list(StreamEvent.objects.values_list("delivery_key", flat=True)) == ["api:kept"]
    assert list(stream.verify_chain()) == []


@pytest.mark.django_db(transaction=True)
def test_an_append_outside_a_transaction_is_committed_at_once():
    _append("api:alone")
    # Seen from another connection, so it was committed, not merely written.
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT delivery_key FROM shiplog_stream")
            assert cursor.fetchall() == [("api:alone",)]
    finally:
        other.close()
