"""Whatever JSON arrives, a normaliser answers with a fact or one of its two refusals.

A verified body is untrusted all the same: any other exception would be a 500 for bad input,
and a fact that the stream cannot hold would be a failed insert retried for ever.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from unittest import mock

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releases.ingest import NORMALISERS, MalformedPayload, Normalised, UnrecognisedEvent
from releases.ingest.base import Reader, is_repository_name
from tests.fixtures import DELETE, changed, event_type, load, names

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FIXTURES = [(platform, name) for platform in ("github", "circleci") for name in names(platform)]
EVENT_TYPES = sorted({(platform, event_type(name)) for platform, name in FIXTURES})
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

# Values the normalisers parse or match (timestamps, SHAs, refs, URLs) and what breaks them.
tricky = st.sampled_from(
    [
        "",
        "2024-07-26T13:54:52Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2024-07-26T13:54:52",
        "7e7cadb9cd3863d5bc5e5620532bea369a135552",
        "7E7CADB9CD3863D5BC5E5620532BEA369A135552",
        "0" * 40,
        "refs/tags/0.26.2",
        "refs/heads/main",
        "https://github.com/pyodide/pyodide",
        "git@github.com:pyodide/pyodide.git",
        "pyodide/pyodide",
        "completed",
        "release",
        "a\x00b",
        "x" * 300,
        2**63,
        -1,
        10**12,
    ]
)
scalars = (
    st.none()
    | st.booleans()
    # orjson reads integers up to 64 bits; bigger ones arrive as floats.
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | tricky
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _key_vocabulary() -> list[str]:
    keys: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            keys.update(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for platform, name in FIXTURES:
        walk(load(platform, name))
    return sorted(keys)


# Objects made of the keys the fixtures use reach deeper than objects of random keys.
KEYS = st.sampled_from(_key_vocabulary())
plausible_objects = st.recursive(
    st.dictionaries(KEYS, scalars, max_size=5),
    lambda children: st.dictionaries(
        KEYS, children | scalars | st.lists(children, max_size=2), max_size=4
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: str = "") -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "." in key or "[" in key:
                continue
            path = f"{prefix}.{key}" if prefix else key
            found.append(path)
            found.extend(_paths(item, path))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            path = f"{prefix}[{index}]"
            found.append(path)
            found.extend(_paths(item, path))
    return found


def _read_paths(platform: str, name: str) -> list[str]:
    """Return the paths a normaliser reads in a fixture, recorded by spying on the Reader."""
    seen: set[str] = set()
    read = Reader._get

    def recording(self: Reader, key: str, required: bool) -> Any:
        seen.add(self._where(key))
        return read(self, key, required)

    with mock.patch.object(Reader, "_get", recording):
        NORMALISERS[platform].normalise(event_type(name), load(platform, name))
    return sorted(seen)


# Mutations aim at the fields the normalisers read as often as at any other.
READ_PATHS = {fixture: _read_paths(*fixture) for fixture in FIXTURES}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _outcome(platform: str, event: str, payload: Any) -> Normalised | Exception:
    try:
        return NORMALISERS[platform].normalise(event, payload)
    except (UnrecognisedEvent, MalformedPayload) as refusal:
        return refusal


def _assert_storable(normalised: Normalised) -> None:
    """Check the promises the stream relies on: its columns and jsonb can hold the fact."""
    data = normalised.as_data()
    orjson.dumps(data)  # the hash chain serialises it this way
    assert len(normalised.event_type) <= 100
    assert normalised.sha == "" or SHA.fullmatch(normalised.sha)
    assert normalised.repository == "" or is_repository_name(normalised.repository)
    assert not any("\x00" in text for text in _strings(data))
    for moment in (normalised.started_at, normalised.completed_at, normalised.occurred_at):
        assert moment is None or moment.utcoffset() is not None


@FUZZ
@given(target=st.sampled_from(EVENT_TYPES), payload=json_values)
def test_any_json_value_gives_a_fact_or_a_refusal(target, payload):
    platform, event = target
    outcome = _outcome(platform, event, payload)
    if isinstance(outcome, Normalised):
        _assert_storable(outcome)


@FUZZ
@given(target=st.sampled_from(EVENT_TYPES), payload=plausible_objects)
def test_any_object_of_known_keys_gives_a_fact_or_a_refusal(target, payload):
    platform, event = target
    outcome = _outcome(platform, event, payload)
    if isinstance(outcome, Normalised):
        _assert_storable(outcome)


@FUZZ
@given(data=st.data(), fixture=st.sampled_from(FIXTURES))
def test_a_fixture_with_fields_deleted_or_replaced_gives_a_fact_or_a_refusal(data, fixture):
    platform, name = fixture
    payload = load(platform, name)
    read_paths = READ_PATHS[fixture]
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        # A path read before an earlier mutation may be gone: pick among those still there.
        paths = _paths(payload)
        still_read = [path for path in read_paths if path in paths]
        if not paths:
            break
        choices = st.sampled_from(paths)
        if still_read:
            read = st.sampled_from(still_read)
            choices = st.one_of(read, read, read, choices)
        path = data.draw(choices, label="path")
        value = data.draw(st.just(DELETE) | tricky | json_values, label="value")
        payload = changed(payload, path, value, in_place=True)  # load() made a fresh copy
    outcome = _outcome(platform, event_type(name), payload)
    if isinstance(outcome, Normalised):
        _assert_storable(outcome)


@FUZZ
@given(event=st.text(max_size=30), payload=json_values)
def test_any_event_name_gives_a_fact_or_a_refusal(event, payload):
    for platform in NORMALISERS:
        outcome = _outcome(platform, event, payload)
        if isinstance(outcome, Normalised):
            _assert_storable(outcome)


# One value of every JSON type, and the strings that once broke a normaliser.
SWEEP_VALUES = [
    DELETE,
    None,
    True,
    0,
    2**63,
    1.5,
    "",
    "x",
    "a\x00b",
    "0001-01-01T00:00:00+01:00",
    [],
    {},
]


def test_every_field_a_normaliser_reads_replaced_by_every_kind_of_value():
    """The single mutations, exhaustively: each read path of each fixture, each kind of value."""
    for platform, name in FIXTURES:
        raw = orjson.dumps(load(platform, name))
        for path in READ_PATHS[platform, name]:
            for value in SWEEP_VALUES:
                payload = changed(orjson.loads(raw), path, value, in_place=True)
                outcome = _outcome(platform, event_type(name), payload)
                if isinstance(outcome, Normalised):
                    _assert_storable(outcome)


def test_every_fixture_is_storable_as_it_is():
    for platform, name in FIXTURES:
        outcome = _outcome(platform, event_type(name), load(platform, name))
        assert isinstance(outcome, Normalised), (name, outcome)
        _assert_storable(outcome)
