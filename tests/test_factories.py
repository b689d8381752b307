"""The test factories write the way production does."""

from __future__ import annotations

import pytest

from releases import stream
from releases.ingest import NORMALISERS
from releases.models import StreamEvent
from tests.factories import PYODIDE_SHA, StreamEventFactory
from tests.fixtures import load

pytestmark = pytest.mark.django_db


def test_stream_rows_are_appended_in_order_and_chained():
    first, second = StreamEventFactory.create_batch(2)
    assert second.position > first.position
    assert second.prev_hash == first.hash
    assert second.occurred_at > first.occurred_at
    assert (first.repository, first.sha) == ("pyodide/pyodide", PYODIDE_SHA)
    assert list(stream.verify_chain()) == []


def test_a_delivery_key_already_in_the_stream_returns_its_row_unchanged():
    first = StreamEventFactory.create(delivery_key="github:1:same", tag="0.26.2")
    again = StreamEventFactory.create(delivery_key="github:1:same", tag="something else")
    assert again.position == first.position
    assert again.tag == "0.26.2"
    assert StreamEvent.objects.count() == 1


def test_a_row_can_be_made_from_a_normalised_fact():
    normalised = NORMALISERS["circleci"].normalise(
        "job-completed", load("circleci", "job-completed.tag")
    )
    row = StreamEventFactory.create(normalised=normalised)
    assert (row.source, row.event_type) == ("circleci", "job-completed")
    assert row.occurred_at == normalised.occurred_at
    assert (row.sha, row.tag) == (PYODIDE_SHA, "")
    assert row.data["job_number"] == 108413


def test_a_stream_row_cannot_be_built_without_appending_it():
    with pytest.raises(TypeError, match="cannot be built unsaved"):
        StreamEventFactory.build()
