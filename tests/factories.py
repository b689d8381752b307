"""Factories for test data. Stream rows go through `releases.stream.append`, the only writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from factory.base import Factory
from factory.declarations import LazyAttribute, LazyFunction, Sequence

from releases import stream
from releases.ingest.base import Normalised
from releases.models import Recognition, Source, StreamEvent

PYODIDE_SHA = "7e7cadb9cd3863d5bc5e5620532bea369a135552"
TAG_PUSHED_AT = datetime(2024, 7, 26, 13, 54, 52, tzinfo=UTC)


class StreamEventFactory(Factory[StreamEvent]):
    """Append one fact to the stream and return its row.

    The table refuses UPDATE and DELETE, so there is no `build`: a row exists only once
    appended. A `delivery_key` already in the stream returns the row it names, unchanged, as
    a redelivery would. Pass `normalised=` to take the columns and data from a normalised fact.
    """

    class Meta:
        model = StreamEvent

    normalised: Normalised | None = None
    source = Source.GITHUB
    event_type = "workflow_run.completed"
    delivery_key = Sequence(lambda n: f"test:{n}")
    repository = "pyodide/pyodide"
    sha = PYODIDE_SHA
    branch = ""
    tag = ""
    occurred_at = Sequence(lambda n: TAG_PUSHED_AT + timedelta(seconds=n))
    headers = LazyFunction(dict)
    data = LazyAttribute(lambda row: {"event_type": row.event_type})
    body = LazyAttribute(lambda row: orjson.dumps(row.data))
    recognition = Recognition.RECOGNISED

    @classmethod
    def _build(cls, model_class: type[StreamEvent], *args: Any, **kwargs: Any) -> StreamEvent:
        raise TypeError("stream rows cannot be built unsaved: use create(), which appends")

    @classmethod
    def _create(cls, model_class: type[StreamEvent], *args: Any, **kwargs: Any) -> StreamEvent:
        normalised: Normalised | None = kwargs.pop("normalised", None)
        if normalised is not None:
            data = normalised.as_data()
            kwargs.update(
                source=normalised.platform,
                event_type=normalised.event_type,
                repository=normalised.repository or kwargs["repository"],
                sha=normalised.sha,
                branch=normalised.branch,
                tag=normalised.tag,
                occurred_at=normalised.occurred_at or kwargs["occurred_at"],
                data=data,
                body=orjson.dumps(data),
            )
        appended = stream.append(**kwargs)
        return model_class.objects.get(position=appended.position)
