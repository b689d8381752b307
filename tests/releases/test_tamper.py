"""Tamper evidence: an edit made behind the application's back shows up in verify_stream."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from releases import stream
from releases.immutability import suspend_statements
from releases.models import StreamEvent

pytestmark = pytest.mark.django_db


def _stream_of(count: int) -> list[int]:
    return [
        stream.append(
            source="api",
            event_type="deploy.marker",
            delivery_key=f"k{n}",
            repository="a/b",
            body=f'{{"n": {n}}}'.encode(),
            tag="0.26.2",
        ).position
        for n in range(count)
    ]


def _behind_the_apps_back(statement: str, params: list[Any]) -> None:
    """Run SQL as the owner with the stream's triggers lifted, as an attacker with access would."""
    before, after = suspend_statements(connection.vendor)
    with connection.cursor() as cursor:
        for sql in before:
            cursor.execute(sql)
        cursor.execute(statement, params)
        for sql in after:
            cursor.execute(sql)


def test_an_intact_stream_verifies():
    _stream_of(3)
    out = io.StringIO()
    call_command("verify_stream", stdout=out)
    assert "stream intact: 3 events, chain verified" in out.getvalue()


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("UPDATE shiplog_stream SET tag = %s WHERE position = %s", "contents do not match"),
        ("UPDATE shiplog_stream SET body = %s WHERE position = %s", "contents do not match"),
        ("DELETE FROM shiplog_stream WHERE position = %s", "a row was removed"),
    ],
)
def test_an_altered_or_removed_row_is_reported(statement, reason):
    positions = _stream_of(4)
    target = positions[1]
    if statement.startswith("UPDATE") and "tag" in statement:
        _behind_the_apps_back(statement, ["0.26.3", target])
    elif statement.startswith("UPDATE"):
        _behind_the_apps_back(statement, [b'{"n": 99}', target])
    else:
        _behind_the_apps_back(statement, [target])
    problems = list(stream.verify_chain())
    assert problems
    assert any(reason in p.reason for p in problems)
    err = io.StringIO()
    with pytest.raises(CommandError, match="hash chain is broken"):
        call_command("verify_stream", stderr=err)
    assert f"position {target if 'UPDATE' in statement else positions[2]}:" in err.getvalue()


def test_a_row_inserted_out_of_band_is_reported():
    _stream_of(2)
    row = StreamEvent.objects.order_by("position").first()
    assert row is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO shiplog_stream (position, event_id, source, event_type, repository, sha,"
            " branch, tag, occurred_at, recorded_at, delivery_key, headers, body, data,"
            " recognition, prev_hash, hash) SELECT position + 1000, %s, source, event_type,"
            " repository, sha, branch, tag, occurred_at, recorded_at, 'forged', headers, body,"
            " data, recognition, hash, hash FROM shiplog_stream WHERE position = %s",
            [
                stream.event_id_for("forged").hex
                if connection.vendor == "sqlite"
                else stream.event_id_for("forged"),
                row.position,
            ],
        )
    problems = list(stream.verify_chain())
    assert any("edited" in p.reason or "removed" in p.reason for p in problems)
