"""The orjson renderer gives the bytes DRF's JSONRenderer gives."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from config.renderers import FastJSONRenderer

CASES = {
    "timeline entry": {
        "platform": "circleci",
        "started": datetime(2024, 7, 3, 12, 0, 5, 123456, tzinfo=UTC),
        "completed": datetime(2024, 7, 3, 12, 9, tzinfo=UTC),
        "occurred": None,
        "details": {"caused_by": 17, "nested": [1, 2.5, True, None]},
    },
    "other zones and dates": [
        datetime(2024, 7, 3, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 7, 3, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
        datetime(2024, 1, 3, 12, 0, tzinfo=ZoneInfo("Europe/London")),
        datetime(2024, 7, 3, 12, 0, tzinfo=ZoneInfo("Europe/London")),
        datetime(2024, 1, 3, 12, 0, tzinfo=timezone(timedelta(0), "GMT")),
        datetime(2024, 7, 3, 12, 0),  # noqa: DTZ001  a naive one, as DRF would meet it
        time(12, 30, 1, 250),
        date(2024, 7, 3),
        timedelta(minutes=90),
    ],
    "text": {
        "unicode": "déploiement 🚀 \u00a0",
        "separators": "a\u2028b\u2029c",
        "controls": 'tab\tnew\nline\r\x00\x1f\x7f "quoted" back\\slash </script>',
    },
    "numbers": [0, -1, 2**63 - 1, 1.5, 16200.0, 0.1, Decimal("2.50")],
    "objects": OrderedDict(id=uuid.UUID("12345678-1234-5678-1234-567812345678"), t=(1, 2)),
    "lazy": {"detail": gettext_lazy("Not found.")},
    "too big for orjson": {"n": 2**70},
    "keys that are not strings": {1: "one"},
    "empty": [],
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_the_fast_renderer_writes_what_drf_writes(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_an_indented_answer_is_still_indented():
    data = {"a": [1, 2]}
    media_type = "application/json; indent=2"
    rendered = FastJSONRenderer().render(data, media_type, {})
    assert rendered == JSONRenderer().render(data, media_type, {})
    assert b"\n" in rendered


def test_no_data_renders_as_no_bytes():
    assert FastJSONRenderer().render(None) == b""
