"""Bulk appends and `manage.py import_history`: one chain, no duplicates, all or nothing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from releases import stream
from releases.history import HistoryLineError, fact_from_line, history_import
from releases.models import Recognition, StreamEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _fact(key: str, **kwargs: object) -> stream.Fact:
    return stream.Fact(
        source="api",
        event_type="annotation",
        delivery_key=key,
        repository="pyodide/pyodide",
        body=f'{{"note": "{key}"}}'.encode(),
        **kwargs,  # type: ignore[arg-type]
    )


def _line(key: str, **fields: object) -> str:
    return json.dumps({"source": "api", "event_type": "annotation", "delivery_key": key, **fields})


def _positions() -> list[int]:
    return list(StreamEvent.objects.order_by("position").values_list("position", flat=True))


@pytest.mark.django_db
def test_a_batch_takes_contiguous_positions_and_the_chain_verifies():
    before = stream.append(source="api", event_type="annotation", delivery_key="api:single")
    results = stream.append_many(
        [_fact(f"api:bulk:{n}", headers={"X-N": str(n)}, data={"n": n}) for n in range(7)]
    )
    assert all(result.created for result in results)
    assert [r.position for r in results] == list(range(before.position + 1, before.position + 8))
    assert list(stream.verify_chain()) == []
    row = StreamEvent.objects.get(position=results[3].position)
    assert (row.headers, row.data, bytes(row.body)) == (
        {"X-N": "3"},
        {"n": 3},
        b'{"note": "api:bulk:3"}',
    )


@pytest.mark.django_db
def test_bulk_rows_hash_exactly_as_single_appends_do():
    # The same fact appended one way and the other gives the same content hash, so the
    # two paths cannot drift apart in format.
    occurred = datetime(2024, 7, 26, 14, 26, 41, tzinfo=UTC)
    single = stream.append(
        source="api", event_type="annotation", delivery_key="api:a", occurred_at=occurred
    )
    (bulk,) = stream.append_many(
        [
            stream.Fact(
                source="api", event_type="annotation", delivery_key="api:b", occurred_at=occurred
            )
        ]
    )
    rows = {row.position: row for row in StreamEvent.objects.all()}
    assert rows[bulk.position].prev_hash == rows[single.position].hash
    assert list(stream.verify_chain()) == []


@pytest.mark.django_db
def test_duplicates_within_and_across_batches_are_skipped():
    first = stream.append_many([_fact("api:x"), _fact("api:y"), _fact("api:x")])
    assert [r.created for r in first] == [True, True, False]
    assert first[2].position == first[0].position
    second = stream.append_many([_fact("api:y"), _fact("api:z")])
    assert [r.created for r in second] == [False, True]
    assert second[0].position == first[1].position
    assert StreamEvent.objects.count() == 3
    assert _positions() == list(range(_positions()[0], _positions()[0] + 3))
    assert list(stream.verify_chain()) == []


@pytest.mark.django_db
def test_a_batch_of_nothing_new_stores_nothing():
    stream.append(source="api", event_type="annotation", delivery_key="api:old")
    assert [r.created for r in stream.append_many([_fact("api:old")])] == [False]
    assert stream.append_many([]) == []
    assert StreamEvent.objects.count() == 1


@pytest.mark.django_db
def test_bulk_and_single_appends_interleave_in_one_chain():
    for n in range(3):
        stream.append(source="api", event_type="annotation", delivery_key=f"api:one:{n}")
        stream.append_many([_fact(f"api:many:{n}:{m}") for m in range(4)])
    again = stream.append(source="api", event_type="annotation", delivery_key="api:many:1:2")
    assert not again.created
    assert StreamEvent.objects.count() == 15
    assert list(stream.verify_chain()) == []


@pytest.mark.django_db(transaction=True)
def test_a_bulk_append_in_a_transaction_that_rolls_back_stores_nothing():
    def abandon() -> None:
        with transaction.atomic():
            stream.append_many([_fact("api:gone:1"), _fact("api:gone:2")])
            raise RuntimeError("the caller gave up")

    with pytest.raises(RuntimeError):
        abandon()
    assert StreamEvent.objects.count() == 0
    stream.append_many([_fact("api:gone:1")])
    assert list(stream.verify_chain()) == []


@pytest.mark.django_db
def test_import_history_reads_text_base64_and_json_bodies(tmp_path):
    raw = bytes(range(256))
    path = tmp_path / "history.jsonl"
    path.write_text(
        "\n".join(
            [
                _line("api:text", body="plain text", occurred_at="2024-07-26T14:26:41Z"),
                "",
                _line("api:b64", body_base64=base64.b64encode(raw).decode(), tag="0.26.2"),
                _line("api:json", body_json={"a": [1, 2]}, headers={"X-Source": "backfill"}),
            ]
        )
        + "\n"
    )
    call_command("import_history", str(path))
    rows = {row.delivery_key: row for row in StreamEvent.objects.all()}
    assert bytes(rows["api:text"].body) == b"plain text"
    assert rows["api:text"].occurred_at == datetime(2024, 7, 26, 14, 26, 41, tzinfo=UTC)
    assert bytes(rows["api:b64"].body) == raw
    assert rows["api:b64"].tag == "0.26.2"
    assert bytes(rows["api:json"].body) == b'{"a":[1,2]}'
    assert rows["api:json"].headers == {"X-Source": "backfill"}
    assert list(stream.verify_chain()) == []


@pytest.mark.django_db
def test_imported_webhook_bodies_are_normalised_as_the_webhook_would():
    body = (FIXTURES / "github" / "workflow_job.completed.failure.json").read_text()
    fact = fact_from_line(
        json.dumps(
            {
                "source": "github",
                "event_type": "workflow_job",
                "delivery_key": "github:backfill:1",
                "body": body,
            }
        ),
        line=1,
    )
    assert fact.recognition == Recognition.RECOGNISED
    assert fact.repository == "pyodide/pyodide"
    assert fact.sha
    assert fact.data is not None
    assert fact.data["event_type"].startswith("workflow_job")
    unknown = fact_from_line(
        _line("github:backfill:2", source="github", event_type="sponsorship", body="{}"),
        line=2,
    )
    assert unknown.recognition == Recognition.UNRECOGNISED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object but a list"),
        (json.dumps({"source": "api", "event_type": "x"}), "'delivery_key' is missing"),
        (_line("api:bad", source="jenkins"), "'source' must be one of"),
        (_line("api:bad", body="a", body_base64="YQ=="), "give at most one of"),
        (_line("api:bad", body_base64="not base64!"), "not valid base64"),
        (_line("api:bad", occurred_at="2024-07-26T14:26:41"), "needs a UTC offset"),
        (_line("api:bad", headers={"X-N": 1}), "'headers' must be an object of strings"),
        (_line("api:bad", event_type="x" * 101), "longer than 100 characters"),
        (_line("api:bad", colour="red"), "unknown field(s) 'colour'"),
    ],
)
def test_a_bad_line_is_named_and_nothing_of_its_batch_is_stored(tmp_path, bad, message):
    path = tmp_path / "history.jsonl"
    good = [_line(f"api:good:{n}") for n in range(5)]
    # Batches of 3: lines 1-3 commit; line 5 is bad, so lines 4-6 store nothing.
    path.write_text("\n".join([*good[:4], bad, good[4]]) + "\n")
    with pytest.raises(CommandError) as caught:
        call_command("import_history", str(path), "--batch-size", "3")
    assert ", line 5: " in str(caught.value)
    assert message in str(caught.value)
    assert sorted(StreamEvent.objects.values_list("delivery_key", flat=True)) == [
        "api:good:0",
        "api:good:1",
        "api:good:2",
    ]
    path.write_text("\n".join(good) + "\n")
    call_command("import_history", str(path), "--batch-size", "3")
    assert StreamEvent.objects.count() == 5
    assert list(stream.verify_chain()) == []


@pytest.mark.django_db
def test_a_line_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_bytes(_line("api:ok").encode() + b"\n" + b'{"source": "\xff"}\n')
    with pytest.raises(CommandError, match="line 2: not a JSON object"):
        call_command("import_history", str(path))
    assert StreamEvent.objects.count() == 0


@pytest.mark.django_db
def test_importing_the_same_file_twice_stores_each_event_once(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(_line(f"api:{n}") for n in range(10)) + "\n")
    first = history_import(lines=path.read_text().splitlines(), batch_size=4)
    second = history_import(lines=path.read_text().splitlines(), batch_size=4)
    assert (first.stored, first.duplicates) == (10, 0)
    assert (second.stored, second.duplicates) == (0, 10)
    assert StreamEvent.objects.count() == 10


def test_history_line_error_names_the_line():
    assert str(HistoryLineError(12, "oops")) == "line 12: oops"


@pytest.mark.django_db(transaction=True)
def test_bulk_and_single_appends_from_two_threads_keep_one_chain():
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers itself; the advisory lock is PostgreSQL's")
    errors: list[BaseException] = []

    def bulk() -> None:
        try:
            for batch in range(10):
                stream.append_many([_fact(f"api:t:bulk:{batch}:{n}") for n in range(50)])
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    def single() -> None:
        try:
            for n in range(100):
                stream.append(source="api", event_type="annotation", delivery_key=f"api:t:{n}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=bulk), threading.Thread(target=single)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert StreamEvent.objects.count() == 600
    assert list(stream.verify_chain()) == []
