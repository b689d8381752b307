"""Stored facts as the stream explorer shows them: headers without secrets, payloads pretty."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from releases.display import MAX_SHOWN_BYTES, pretty_body, safe_headers


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("X-GitHub-Event", True),
        ("X-GitHub-Delivery", True),
        ("User-Agent", True),
        ("Content-Type", True),
        ("circleci-event-type", True),
        ("X-Hub-Signature-256", False),
        ("X-Hub-Signature", False),
        ("circleci-signature", False),
        ("Authorization", False),
        ("Cookie", False),
        ("X-Api-Key", False),
        ("X-Shiplog-Token", False),
        ("Circle-Token", False),
        ("X-Webhook-Secret", False),
    ],
)
def test_headers_that_carry_credentials_are_never_shown(name, shown):
    assert (name in dict(safe_headers({name: "value"}))) is shown


def test_headers_are_sorted_by_name():
    assert [name for name, _ in safe_headers({"b": "1", "A": "2", "c": "3"})] == ["A", "b", "c"]


@pytest.mark.parametrize(
    ("body", "kind", "text"),
    [
        (b"", "empty", ""),
        (b'{"a":1,"b":[true,null]}', "json", '{\n  "a": 1,\n  "b": [\n    true,\n    null\n  ]\n}'),
        (urlencode({"payload": '{"zen":"ok"}'}).encode(), "form", '{\n  "zen": "ok"\n}'),
        (b"not json at all", "text", "not json at all"),
        (b"\xff\xfe oops", "text", "\ufffd\ufffd oops"),
        (b"payload=not-json", "text", "payload=not-json"),
    ],
)
def test_bodies_are_pretty_printed_when_they_can_be(body, kind, text):
    shown = pretty_body(body)
    assert (shown.kind, shown.text, shown.size, shown.truncated) == (kind, text, len(body), False)


def test_a_huge_body_is_cut_short_and_says_so():
    body = b"x" * (MAX_SHOWN_BYTES + 10)
    shown = pretty_body(body)
    assert shown.truncated
    assert len(shown.text) == MAX_SHOWN_BYTES
    assert shown.size == MAX_SHOWN_BYTES + 10
