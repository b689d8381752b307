"""Apply the stream to the release projections, in batches, from a stored checkpoint.

Why "position > checkpoint" is safe here: appends are serialised (see `releases.stream`), so
positions are handed out in commit order and no row can commit below a position a reader has
already seen. The checkpoint advances in the same transaction as the projection rows, so a
crash between the two is impossible; re-applying a batch is harmless because merges are
idempotent.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar, cast

import orjson
from django.db import connection, transaction
from django.db.models import Field, Model, Q, QuerySet

from releases import policy as policy_module
from releases.models import (
    DeployPolicy,
    KnownTag,
    ProjectorCheckpoint,
    Release,
    StreamEvent,
    TimelineEntry,
)
from releases.policy import Policy
from releases.projections import (
    Entry,
    ReleaseKey,
    ReleaseView,
    StreamRow,
    TagFact,
    derive,
    entry_from_row,
    merge,
    merge_tag,
    release_key,
    tag_facts,
)
from releases.roles import TRUNCATABLE

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=Model)

NAME = "releases"
ENTRY_FIELDS = [f for f in Entry.__dataclass_fields__ if f != "entry_key"]
ROW_FIELDS = list(StreamRow._fields)


class Projection:
    """Another app's projection, fed the same batches under the same checkpoint."""

    def apply(self, rows: Sequence[StreamRow]) -> None:
        """Fold a batch of stream rows into the projection."""
        raise NotImplementedError(".apply() must be overridden")

    def reset(self) -> None:
        """Delete everything the projection holds, before a rebuild."""
        raise NotImplementedError(".reset() must be overridden")


# Registered by other apps in AppConfig.ready(): the incidents app's projection, and its
# detection, which is a reaction (it appends events), so a rebuild never runs it.
projections: list[Projection] = []
after_batch_hooks: list[Callable[[set[int]], None]] = []


def postgres_fast_path() -> bool:
    """Return whether reads and writes take the PostgreSQL-only statements.

    Elsewhere (SQLite, the embedded default) the ORM does the same work with the same result;
    `portable_only` forces that path on PostgreSQL too, so tests can compare the two.
    """
    return connection.vendor == "postgresql" and not portable_only


# Set by tests to run the portable path on PostgreSQL.
portable_only = False


@contextmanager
def _binary_cursor() -> Iterator[Any]:
    """Yield a psycopg cursor that binds parameters on the server and may send them binary.

    Django's cursors bind on the client: every array would be quoted into the SQL text and
    parsed back by the server, which costs more than the statements' work.
    """
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def matching_pairs(
    queryset: QuerySet[M], first: str, second: str, pairs: Iterable[tuple[str, str]]
) -> list[M]:
    """Return the rows whose (first, second) fields are one of `pairs`.

    Two IN lists and a check in Python: a long OR of pairs costs more to build than to run.
    """
    wanted = set(pairs)
    if not wanted:
        return []
    rows = queryset.filter(
        **{f"{first}__in": {a for a, _ in wanted}, f"{second}__in": {b for _, b in wanted}}
    )
    return [row for row in rows if (getattr(row, first), getattr(row, second)) in wanted]


def matching_pair_values(
    queryset: QuerySet[Any], first: str, second: str, pairs: Iterable[tuple[str, str]], *fields: str
) -> list[tuple[Any, ...]]:
    """Return `fields` of the rows whose (first, second) are one of `pairs`, as tuples.

    The tuples start with `first` and `second`, then `fields`; no model instances are built.
    """
    wanted = set(pairs)
    if not wanted:
        return []
    rows = queryset.filter(
        **{f"{first}__in": {a for a, _ in wanted}, f"{second}__in": {b for _, b in wanted}}
    ).values_list(first, second, *fields)
    return [row for row in fast_rows(rows) if (row[0], row[1]) in wanted]


def fast_rows(rows: QuerySet[Any, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Return the tuples of a values_list query, decoded by psycopg's loaders on PostgreSQL."""
    from releases.selectors import _fast_rows  # selectors import this module

    return _fast_rows(rows) if postgres_fast_path() else list(rows)


def entry_from_model(model: TimelineEntry) -> Entry:
    return Entry(entry_key=model.entry_key, **{name: getattr(model, name) for name in ENTRY_FIELDS})


def _model_from_entry(entry: Entry, release_id: int | None) -> TimelineEntry:
    values = {name: getattr(entry, name) for name in ENTRY_FIELDS}
    values["extra"] = dict(entry.extra)
    return TimelineEntry(entry_key=entry.entry_key, release_id=release_id, **values)


def policies_for(repositories: Iterable[str]) -> dict[str, Policy]:
    """Return each repository's parsed policy, the default where it has none."""
    found = dict(
        DeployPolicy.objects.filter(repository__full_name__in=set(repositories)).values_list(
            "repository__full_name", "document"
        )
    )
    result: dict[str, Policy] = {}
    for repository in repositories:
        document = found.get(repository)
        if document is None:
            result[repository] = policy_module.DEFAULT_POLICY
            continue
        try:
            result[repository] = policy_module.parse(document)
        except policy_module.PolicyError:
            logger.warning("stored policy for %s no longer parses; using defaults", repository)
            result[repository] = policy_module.DEFAULT_POLICY
    return result


_READ_ROWS = (
    "SELECT position, event_id::text, source, event_type, repository, sha, branch, tag, "
    f"occurred_at, data::text FROM {StreamEvent._meta.db_table} "
    "WHERE position > %s ORDER BY position LIMIT %s"
)


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson refuses integers beyond 64 bits, which the json module (and so the ORM) reads.
        return json.loads(text)


def read_rows(after: int, limit: int) -> list[StreamRow]:
    """Return up to `limit` stream rows after `after`, in position order, without bodies."""
    if postgres_fast_path():
        # The normalised fields as text, decoded by orjson: the ORM's JSON and datetime
        # conversions cost more than the rest of a rebuild's reading.
        with _binary_cursor() as cursor:
            cursor.execute(_READ_ROWS, [after, limit], binary=True)
            return [
                StreamRow(p, e, s, t, r, sha, b, tag, at, _json(d))
                for p, e, s, t, r, sha, b, tag, at, d in cursor.fetchall()
            ]
    rows = (
        StreamEvent.objects.filter(position__gt=after)
        .order_by("position")
        .values_list(*ROW_FIELDS)[:limit]
    )
    return [StreamRow(p, str(e), *rest) for p, e, *rest in rows]


def _stored_entries(keys: Iterable[str]) -> dict[str, tuple[int | None, Entry]]:
    """Return the stored entries with these keys, each with the release it belongs to."""
    wanted = list(keys)
    if not wanted:
        return {}
    rows = TimelineEntry.objects.filter(entry_key__in=wanted).values_list(
        "entry_key", "release_id", *ENTRY_FIELDS
    )
    return {row[0]: (row[1], Entry(row[0], *row[2:])) for row in fast_rows(rows)}


def apply_rows(rows: Sequence[StreamRow], *, details: dict[int, Any] | None = None) -> set[int]:
    """Fold `rows` into the projections and return the ids of the releases they touched.

    `details`, if given, receives the `ReleaseDetail` of each release refreshed.
    """
    incoming: dict[str, Entry] = {}
    facts: dict[tuple[str, str], TagFact] = {}
    for row in rows:
        if not row.repository:
            continue
        entry = entry_from_row(row)
        if entry is not None:
            incoming[entry.entry_key] = merge(incoming.get(entry.entry_key), entry)
        for fact in tag_facts(row, entry):
            tag_key = (fact.repository, fact.tag)
            facts[tag_key] = merge_tag(facts.get(tag_key), fact)
    if not incoming and not facts:
        return set()

    previous_release: dict[str, int | None] = {}
    entries: dict[str, Entry] = {}
    before: dict[str, tuple[int | None, Entry]] = _stored_entries(incoming)
    for entry_key, (release_id, stored) in before.items():
        previous_release[entry_key] = release_id
        entries[entry_key] = stored
    for entry_key, entry in incoming.items():
        entries[entry_key] = merge(entries.get(entry_key), entry)

    changed_tags = _store_tags(facts)
    for entry_key, (release_id, stored) in _entries_to_reassign(
        changed_tags, exclude=entries.keys()
    ).items():
        previous_release[entry_key] = release_id
        entries[entry_key] = stored
        before[entry_key] = (release_id, stored)

    repositories = {entry.repository for entry in entries.values()}
    policies = policies_for(repositories)
    tags, tags_by_sha = _tags_for(entries.values())
    keys: dict[str, ReleaseKey | None] = {
        key: release_key(
            entry,
            tags=tags[entry.repository],
            tags_by_sha=tags_by_sha[entry.repository],
            policy=policies[entry.repository],
        )
        for key, entry in entries.items()
    }
    release_ids = _release_ids({k for k in keys.values() if k is not None})
    placed: dict[str, tuple[int | None, Entry]] = {}
    for entry_key, entry in entries.items():
        release = keys[entry_key]
        placed[entry_key] = (release_ids[release] if release is not None else None, entry)
    # A redelivery, or an entry a new tag leaves where it was, is stored as it is already.
    _write_entries({k: v for k, v in placed.items() if before.get(k) != v})
    touched = set(release_ids.values())
    touched |= {rid for rid in previous_release.values() if rid is not None}
    touched |= {
        pk
        for _, _, pk in matching_pair_values(
            Release.objects.filter(ref_kind=Release.RefKind.TAG),
            "repository",
            "tag",
            changed_tags,
            "pk",
        )
    }
    refresh_releases(touched, policies=policies, fresh=placed, details=details)
    return touched


_ENTRY_TABLE = TimelineEntry._meta.db_table


def _columns(model: type[Model], names: Iterable[str]) -> list[tuple[str, Field[Any, Any]]]:
    """Return (column, field) of each named concrete field."""
    found = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, Field)
        assert field.column is not None
        found.append((field.column, field))
    return found


_ENTRY_COLUMNS = _columns(TimelineEntry, ("entry_key", "release", *ENTRY_FIELDS))


def _array_type(field: Field[Any, Any]) -> str:
    """Return the PostgreSQL array type a column's values are sent as (JSON goes as text)."""
    kind = field.get_internal_type()
    if kind in {"BigIntegerField", "ForeignKey", "PositiveIntegerField", "IntegerField"}:
        return "bigint[]"
    if kind == "DateTimeField":
        return "timestamptz[]"
    return "text[]"


def _cast(column: str, field: Field[Any, Any]) -> str:
    kind = field.get_internal_type()
    if kind == "JSONField":
        return f"{column}::jsonb"
    if kind == "PositiveIntegerField":
        return f"{column}::integer"
    return column


_UPSERT_ENTRIES = (
    f"INSERT INTO {_ENTRY_TABLE} ({', '.join(c for c, _ in _ENTRY_COLUMNS)}) "
    f"SELECT {', '.join(_cast(c, f) for c, f in _ENTRY_COLUMNS)} FROM unnest("
    + ", ".join(f"%b::{_array_type(f)}" for _, f in _ENTRY_COLUMNS)
    + f") AS v({', '.join(c for c, _ in _ENTRY_COLUMNS)}) "
    "ON CONFLICT (entry_key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in _ENTRY_COLUMNS[1:])
)


def _as_columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Return rows as one list per column, as `unnest` takes them."""
    return [list(column) for column in zip(*rows, strict=True)]


def _write_entries(placed: Mapping[str, tuple[int | None, Entry]]) -> None:
    """Insert or update these entries, each in the release it now belongs to."""
    if not placed:
        return
    if not postgres_fast_path():
        TimelineEntry.objects.bulk_create(
            [_model_from_entry(entry, release_id) for release_id, entry in placed.values()],
            update_conflicts=True,
            unique_fields=["entry_key"],
            update_fields=["release", *ENTRY_FIELDS],
            batch_size=1000,
        )
        return
    # One statement per chunk, a column per array: the ORM's per-object preparation cost
    # more than the database's work.
    items = list(placed.values())
    for start in range(0, len(items), 20_000):
        chunk = items[start : start + 20_000]
        columns = _as_columns(_entry_values(e, release_id) for release_id, e in chunk)
        with _binary_cursor() as cursor:
            cursor.execute(_UPSERT_ENTRIES, columns)


def _store_tags(facts: dict[tuple[str, str], TagFact]) -> set[tuple[str, str]]:
    """Merge tag facts into KnownTag and return the (repository, tag) pairs that changed."""
    if not facts:
        return set()
    stored: dict[tuple[str, str], TagFact] = {
        (repository, tag): TagFact(repository, tag, sha, rank, tagged_at)
        for repository, tag, sha, rank, tagged_at in matching_pair_values(
            KnownTag.objects.all(), "repository", "tag", facts, "sha", "rank", "tagged_at"
        )
    }
    changed: list[TagFact] = []
    for key, fact in facts.items():
        before = stored.get(key)
        after = merge_tag(before, fact)
        if after != before:
            changed.append(after)
    KnownTag.objects.bulk_create(
        [
            KnownTag(
                repository=f.repository, tag=f.tag, sha=f.sha, rank=f.rank, tagged_at=f.tagged_at
            )
            for f in changed
        ],
        update_conflicts=True,
        unique_fields=["repository", "tag"],
        update_fields=["sha", "rank", "tagged_at"],
    )
    return {(f.repository, f.tag) for f in changed}


def _entries_to_reassign(
    changed_tags: set[tuple[str, str]], exclude: Iterable[str]
) -> dict[str, tuple[int | None, Entry]]:
    """Return stored entries whose release may change now that these tags are known."""
    if not changed_tags:
        return {}
    known = matching_pair_values(KnownTag.objects.all(), "repository", "tag", changed_tags, "sha")
    fields = ("entry_key", "release_id", *ENTRY_FIELDS)
    by_branch = matching_pair_values(
        TimelineEntry.objects.all(), "repository", "branch", changed_tags, *fields
    )
    # Entries without a branch are picked out here, not in SQL: given `branch = ''`, the
    # planner may walk every branchless entry of the repository by the branch index instead
    # of the few with these commits.
    by_sha = [
        row
        for row in matching_pair_values(
            TimelineEntry.objects.all(),
            "repository",
            "sha",
            {(repository, sha) for repository, _, sha in known if sha},
            *fields,
        )
        if row[2 + fields.index("branch")] == ""
    ]
    skip = set(exclude)
    found: dict[str, tuple[int | None, Entry]] = {}
    for row in [*by_branch, *by_sha]:
        key = row[2]
        if key not in skip:
            found[key] = (row[3], Entry(key, *row[4:]))
    return found


def _tags_for(
    entries: Iterable[Entry],
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, list[str]]]]:
    """Return the known tags that could claim these entries, by repository."""
    branches: dict[str, set[str]] = defaultdict(set)
    shas: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry.tag:
            continue
        if entry.branch:
            branches[entry.repository].add(entry.branch)
        elif entry.sha:
            shas[entry.repository].add(entry.sha)
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    tags_by_sha: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    query = Q(pk__in=[])
    for repository in set(branches) | set(shas):
        query |= Q(repository=repository, tag__in=branches[repository])
        query |= Q(repository=repository, sha__in=shas[repository])
    if branches or shas:
        for repository, tag, sha in KnownTag.objects.filter(query).values_list(
            "repository", "tag", "sha"
        ):
            tags[repository][tag] = sha
            if sha and sha in shas[repository]:
                tags_by_sha[repository][sha].append(tag)
    return tags, tags_by_sha


def _release_ids(keys: set[ReleaseKey]) -> dict[ReleaseKey, int]:
    """Return the id of each release, creating the ones that do not exist yet."""
    if not keys:
        return {}
    pairs = {(k.repository, k.ref_key) for k in keys}
    found = {
        (repository, ref_key): pk
        for repository, ref_key, pk in matching_pair_values(
            Release.objects.all(), "repository", "ref_key", pairs, "pk"
        )
    }
    missing = [k for k in keys if (k.repository, k.ref_key) not in found]
    if missing:
        Release.objects.bulk_create(
            [
                Release(
                    repository=k.repository,
                    ref_kind=k.ref_kind,
                    ref_key=k.ref_key,
                    tag=k.name if k.ref_kind == "tag" else "",
                    branch=k.name if k.ref_kind == "branch" else "",
                    sha=k.sha,
                )
                for k in missing
            ],
            ignore_conflicts=True,
        )
        found.update(
            {
                (repository, ref_key): pk
                for repository, ref_key, pk in matching_pair_values(
                    Release.objects.all(),
                    "repository",
                    "ref_key",
                    {(k.repository, k.ref_key) for k in missing},
                    "pk",
                )
            }
        )
    return {k: found[(k.repository, k.ref_key)] for k in keys}


_RELEASE_FIELDS = [
    "state",
    "flags",
    "blocking",
    "started_at",
    "tagged_at",
    "first_deploy_started_at",
    "deployed_at",
    "blocked_at",
    "unblocked_at",
    "last_activity_at",
    "last_position",
]
_RELEASE_COLUMNS = _columns(Release, _RELEASE_FIELDS)
_UPDATE_RELEASES = (
    f"UPDATE {Release._meta.db_table} AS r SET "
    + ", ".join(f"{c} = {_cast('v.' + c, f)}" for c, f in _RELEASE_COLUMNS)
    + " FROM unnest(%b::bigint[], "
    + ", ".join(f"%b::{_array_type(f)}" for _, f in _RELEASE_COLUMNS)
    + f") AS v(id, {', '.join(c for c, _ in _RELEASE_COLUMNS)}) WHERE r.id = v.id"
)


def _write_releases(releases: Sequence[Release]) -> None:
    """Store the derived fields of these releases."""
    if not releases:
        return
    if not postgres_fast_path():
        Release.objects.bulk_update(releases, _RELEASE_FIELDS, batch_size=500)
        return
    columns = _as_columns(_release_values(r) for r in releases)
    with _binary_cursor() as cursor:
        cursor.execute(_UPDATE_RELEASES, columns)


def _release_values(release: Release) -> tuple[Any, ...]:
    """Return a release's id and derived fields, as `_RELEASE_FIELDS` orders them."""
    return (
        release.pk,
        *(
            orjson.dumps(release.blocking).decode()
            if name == "blocking"
            else getattr(release, name)
            for name in _RELEASE_FIELDS
        ),
    )


def release_entries(
    release_ids: Iterable[int], *, fresh: Mapping[str, tuple[int | None, Entry]] | None = None
) -> dict[int, list[Entry]]:
    """Return the entries of each release in stream order (first position, then key).

    `fresh` holds entries just written, with their releases: they are taken from it rather
    than read back, and stored rows with the same keys are left unread.
    """
    ids = list(release_ids)
    grouped: dict[int, list[Entry]] = {pk: [] for pk in ids}
    if not ids:
        return grouped
    stored = TimelineEntry.objects.filter(release_id__in=ids)
    if fresh:
        stored = stored.exclude(entry_key__in=list(fresh))
    for row in fast_rows(stored.values_list("release_id", "entry_key", *ENTRY_FIELDS)):
        grouped[row[0]].append(Entry(*row[1:]))
    for release_id, entry in (fresh or {}).values():
        if release_id in grouped:
            grouped[release_id].append(entry)
    for entries in grouped.values():
        entries.sort(key=_stream_order)
    return grouped


def _stream_order(entry: Entry) -> tuple[int, str]:
    return (entry.first_position, entry.entry_key)


def refresh_releases(
    release_ids: set[int],
    *,
    policies: dict[str, Policy] | None = None,
    fresh: Mapping[str, tuple[int | None, Entry]] | None = None,
    details: dict[int, Any] | None = None,
) -> None:
    """Recompute the derived state of these releases from their entries.

    `fresh`: entries the caller has just written, so they need not be read back. `details`,
    if given, receives each refreshed release's `ReleaseDetail`, as `release_detail` would
    read it now.
    """
    from releases.selectors import ReleaseDetail, link_retries

    if not release_ids:
        return
    releases = {r.pk: r for r in Release.objects.filter(pk__in=release_ids)}
    policies = dict(policies or {})
    missing = {r.repository for r in releases.values()} - set(policies)
    policies.update(policies_for(missing))
    grouped = release_entries(releases, fresh=fresh)
    tagged = {
        (repository, tag): tagged_at
        for repository, tag, tagged_at in matching_pair_values(
            KnownTag.objects.all(),
            "repository",
            "tag",
            {(r.repository, r.tag) for r in releases.values() if r.tag},
            "tagged_at",
        )
    }
    empty: list[int] = []
    for pk, release in releases.items():
        entries = grouped.get(pk, [])
        if not entries:
            empty.append(pk)
            continue
        view = derive(
            release.ref_kind,
            entries,
            policies[release.repository],
            tagged_at=tagged.get((release.repository, release.tag)),
        )
        _set_derived(release, view, entries)
        if details is not None:
            linked = link_retries(entries)
            if linked is not entries:
                view = derive(
                    release.ref_kind,
                    linked,
                    policies[release.repository],
                    tagged_at=tagged.get((release.repository, release.tag)),
                )
            details[pk] = ReleaseDetail(release, linked, policies[release.repository], view)
    _write_releases([r for pk, r in releases.items() if pk not in empty])
    if empty:
        # A branch release whose entries all moved to a tag release no longer exists.
        Release.objects.filter(pk__in=empty).delete()


def _set_derived(release: Release, view: ReleaseView, entries: Sequence[Entry]) -> None:
    """Copy a release's derived state (`view`, from `entries`) onto the model."""
    release.state = view.state
    release.flags = f",{','.join(view.flags)},"
    release.blocking = [
        {
            "deploy": outcome.deploy.name,
            "platform": outcome.deploy.platform,
            "blocked_by": [
                {
                    "job": b.job,
                    "platform": b.platform,
                    "conclusion": b.conclusion,
                    "url": b.url,
                    "role": b.role,
                }
                for b in outcome.blocked_by
            ],
        }
        for outcome in view.blocking_chain
    ]
    release.started_at = view.started_at
    release.tagged_at = view.tagged_at
    release.first_deploy_started_at = view.first_deploy_started_at
    release.deployed_at = view.deployed_at
    release.blocked_at = view.blocked_at
    release.unblocked_at = view.unblocked_at
    release.last_activity_at = view.last_activity_at
    release.last_position = max(entry.position for entry in entries)


def catch_up(*, batch_size: int = 5000, max_batches: int | None = None, react: bool = True) -> int:
    """Apply every committed event past the checkpoint; return how many were read.

    Only one projector runs at a time: the checkpoint row is locked for each batch, and a
    second caller that finds it locked leaves the work to the first.
    """
    ProjectorCheckpoint.objects.get_or_create(name=NAME)
    applied = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            checkpoint = (
                ProjectorCheckpoint.objects.select_for_update(skip_locked=True)
                .filter(name=NAME)
                .first()
            )
            if checkpoint is None:
                return applied
            rows = read_rows(checkpoint.position, batch_size)
            if not rows:
                return applied
            details: dict[int, Any] = {}
            touched = apply_rows(rows, details=details if react else None)
            for projection in projections:
                projection.apply(rows)
            if react:
                from releases.selectors import refreshed_details

                # The reactions read the releases just refreshed: hand them what was derived.
                with refreshed_details(details):
                    for hook in after_batch_hooks:
                        hook(touched)
            checkpoint.position = rows[-1].position
            checkpoint.save(update_fields=["position", "updated_at"])
        applied += len(rows)
        batches += 1
    return applied


def rebuild(*, batch_size: int | None = None) -> int:
    """Drop every projection and rebuild it from the whole stream; return the events read.

    Reactions (detection) do not run: replaying history must not append to it. On PostgreSQL
    the stream is folded in one pass (`bulk_rebuild`); elsewhere it is caught up in batches.
    """
    if postgres_fast_path():
        return bulk_rebuild(chunk_size=batch_size or 5_000)
    with transaction.atomic():
        TimelineEntry.objects.all().delete()
        Release.objects.all().delete()
        KnownTag.objects.all().delete()
        for projection in projections:
            projection.reset()
        ProjectorCheckpoint.objects.update_or_create(name=NAME, defaults={"position": 0})
    return catch_up(batch_size=batch_size or 5000, react=False)


_READ_ALL = (
    "SELECT position, event_id::text, source, event_type, repository, sha, branch, tag, "
    f"occurred_at, data::text FROM {StreamEvent._meta.db_table} ORDER BY position"
)
# The values of the normalised fields that entries keep and that repeat across entries.
_SHARED_FIELDS = (
    "platform",
    "kind",
    "name",
    "workflow_name",
    "status",
    "conclusion",
    "sha",
    "branch",
    "tag",
    "pipeline_id",
    "run_id",
)
_PROJECTION_TABLES = (_ENTRY_TABLE, Release._meta.db_table, KnownTag._meta.db_table)
# The application's role may TRUNCATE exactly these (see `releases.roles`).
assert set(_PROJECTION_TABLES) == set(TRUNCATABLE)


def bulk_rebuild(*, chunk_size: int = 5_000, max_held: int = 60_000) -> int:
    """Rebuild the projections from the whole stream in one pass; return the events read.

    PostgreSQL only. The same rules as `catch_up`, applied once: every delivery folded into
    its entry and every tag fact merged in memory, then each entry placed by the tags known
    at the end, each release derived once, and everything written with COPY. One
    transaction: readers see the old projections until the new ones are complete.

    At most `max_held` entries stay in memory: beyond that, the least recently delivered
    are set aside in a temporary table, and the entries are then merged, placed and
    derived from it in order, a key and then a release at a time (`_copy_spilled`).
    """
    with transaction.atomic():
        ProjectorCheckpoint.objects.get_or_create(name=NAME)
        # Wait for a running projector rather than rebuilding under it.
        checkpoint = ProjectorCheckpoint.objects.select_for_update().get(name=NAME)
        with connection.cursor() as cursor:
            # TRUNCATE refuses a table with foreign key checks still pending in this
            # transaction (Django defers them all): run them now, and defer again after.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {', '.join(_PROJECTION_TABLES)}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for projection in projections:
            projection.reset()
        # The fold makes millions of objects and no cycles: the collector would walk every
        # one of them, again and again, as the fold grows.
        collecting = gc.isenabled()
        gc.disable()
        try:
            entries, facts, read, last, spilled = _fold_stream(chunk_size, max_held)
            if spilled:
                _spill(list(entries.values()))
                entries.clear()
                _copy_spilled(facts)
            else:
                _copy_projections(entries, facts)
            _copy_tags(facts)
        finally:
            if collecting:
                gc.enable()
        checkpoint.position = last
        checkpoint.save(update_fields=["position", "updated_at"])
    return read


def _fold_stream(
    chunk_size: int, max_held: int
) -> tuple[dict[str, Entry], dict[tuple[str, str], TagFact], int, int, bool]:
    """Read the whole stream once; return its entries, tag facts, count and last position.

    The last value says whether entries were set aside (`_spill`): the entries returned are
    then only those still held. The other projections are fed each chunk as it is read, as
    `catch_up` feeds them.
    """
    import psycopg

    entries: dict[str, Entry] = {}
    facts: dict[tuple[str, str], TagFact] = {}
    read = last = 0
    spilled = False
    # One copy of each repeated value (names, statuses, commits) rather than one per entry:
    # the fold holds every entry of the stream at once.
    shared = sys.intern
    connection.ensure_connection()
    # A server-side cursor: the stream is never held in memory, only its fold.
    with psycopg.ServerCursor(connection.connection, "shiplog_rebuild") as cursor:
        cursor.itersize = chunk_size
        cursor.execute(_READ_ALL, binary=True)
        while chunk := cursor.fetchmany(chunk_size):
            rows: list[StreamRow] = []
            for p, e, s, t, r, sha, b, tag, at, d in chunk:
                data = _json(d)
                for name in _SHARED_FIELDS:
                    value = data.get(name)
                    if value.__class__ is str:
                        data[name] = shared(value)
                rows.append(
                    StreamRow(p, e, s, t, shared(r), shared(sha), shared(b), shared(tag), at, data)
                )
            for row in rows:
                if not row.repository:
                    continue
                entry = entry_from_row(row)
                if entry is not None:
                    key = entry.entry_key
                    existing = entries.pop(key, None)
                    # Re-inserted, so the dict's order is the order of last delivery.
                    entries[key] = entry if existing is None else merge(existing, entry)
                for fact in tag_facts(row, entry):
                    tag_key = (fact.repository, fact.tag)
                    facts[tag_key] = merge_tag(facts.get(tag_key), fact)
            for projection in projections:
                projection.apply(rows)
            read += len(rows)
            last = rows[-1].position
            if len(entries) > max_held:
                # Deliveries of one entry come close together: the entries delivered
                # least recently are the least likely to see another.
                cold = list(itertools.islice(entries, len(entries) - max_held // 2))
                # The server cursor must not be mid-fetch while COPY runs: it is not.
                _spill([entries.pop(key) for key in cold])
                spilled = True
    return entries, facts, read, last, spilled


def _copy_projections(entries: dict[str, Entry], facts: dict[tuple[str, str], TagFact]) -> None:
    """Place the entries in releases by the final tags, derive the releases, COPY it all."""
    repositories = {entry.repository for entry in entries.values()}
    policies = policies_for(repositories)
    tags, tags_by_sha = _tag_maps(facts)

    members: dict[ReleaseKey, list[Entry]] = {}
    placed: list[tuple[Entry, ReleaseKey | None]] = []
    for entry in entries.values():
        repository = entry.repository
        key = release_key(
            entry,
            tags=tags[repository],
            tags_by_sha=tags_by_sha[repository],
            policy=policies[repository],
        )
        placed.append((entry, key))
        if key is not None:
            members.setdefault(key, []).append(entry)

    # Ids in the order the incremental path would create them: by the release's first entry.
    for group in members.values():
        group.sort(key=_stream_order)
    order = sorted(members, key=lambda k: _stream_order(members[k][0]))
    release_ids = dict(zip(order, _reserve_ids(Release, len(order)), strict=True))
    _copy(
        _COPY_RELEASES,
        (_release_row(release_ids[key], key, members[key], policies, facts) for key in order),
    )
    members.clear()
    _copy_entries(
        [_entry_values(entry, release_ids[key] if key else None) for entry, key in placed]
    )


def _copy_tags(facts: dict[tuple[str, str], TagFact]) -> None:
    _copy(
        f"COPY {KnownTag._meta.db_table} (repository, tag, sha, rank, tagged_at) FROM STDIN",
        ((f.repository, f.tag, f.sha, f.rank, f.tagged_at) for f in facts.values()),
    )


def _tag_maps(
    facts: Mapping[tuple[str, str], TagFact],
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, list[str]]]]:
    """Return every known tag's commit, and the tags at each commit, by repository."""
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    tags_by_sha: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (repository, tag), fact in facts.items():
        tags[repository][tag] = fact.sha
        if fact.sha:
            tags_by_sha[repository][fact.sha].append(tag)
    return tags, tags_by_sha


_SPILL_TABLE = "shiplog_rebuild_entries"
_ENTRY_SELECT = ", ".join(
    f"{column}::text" if name == "extra" else column
    for name, (column, _) in zip(
        ("entry_key", *ENTRY_FIELDS),
        _columns(TimelineEntry, ("entry_key", *ENTRY_FIELDS)),
        strict=True,
    )
)
_EXTRA_AT = 1 + ENTRY_FIELDS.index("extra")


def _spill(entries: Sequence[Entry]) -> None:
    """Set these (partly merged) entries aside in a temporary table, created on first use."""
    with _binary_cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_SPILL_TABLE} ON COMMIT DROP AS "
            f"SELECT {_ENTRY_SELECT.replace('::text', '')} FROM {_ENTRY_TABLE} WITH NO DATA"
        )
    _copy(f"COPY {_SPILL_TABLE} FROM STDIN", (_entry_values(entry) for entry in entries))


def _entry_values(entry: Entry, *release: int | None) -> tuple[Any, ...]:
    """Return an entry's column values, as `_ENTRY_SELECT` reads them (extra as JSON text).

    After entry_key comes the release's id, if given.
    """
    values: list[Any] = [entry.entry_key, *release]
    for name in ENTRY_FIELDS:
        value = getattr(entry, name)
        values.append(orjson.dumps(dict(value)).decode() if name == "extra" else value)
    return tuple(values)


def _read_entries(query: str, chunk_size: int, name: str) -> Iterator[list[tuple[Any, ...]]]:
    """Yield the rows of `query` in chunks of `chunk_size`, from a server-side cursor."""
    import psycopg
    from psycopg.types.datetime import TimestamptzLoader

    connection.ensure_connection()
    with psycopg.ServerCursor(connection.connection, name) as cursor:
        # Timestamps as psycopg reads them (in UTC here), not through Django's loader.
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(query)
        while chunk := cursor.fetchmany(chunk_size):
            yield chunk


class _Whereabouts(NamedTuple):
    """The fields of an entry that `release_key` reads."""

    repository: str
    tag: str
    branch: str
    sha: str


_WHEREABOUTS_AT = tuple(1 + ENTRY_FIELDS.index(name) for name in _Whereabouts._fields)


def _entry_from_values(row: Sequence[Any], start: int = 0) -> Entry:
    values = list(row[start:])
    values[_EXTRA_AT] = orjson.loads(values[_EXTRA_AT])
    return Entry(*values)


def _copy_spilled(facts: dict[tuple[str, str], TagFact], chunk_size: int = 20_000) -> None:
    """Merge, place and store the set-aside entries, then derive and store their releases.

    Two ordered reads keep memory bounded: the entries by key, so the parts of each one
    come together, then the stored entries by release, one release at a time.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT repository FROM {_SPILL_TABLE}")
        policies = policies_for([row[0] for row in cursor.fetchall()])
    tags, tags_by_sha = _tag_maps(facts)
    release_ids: dict[ReleaseKey, int] = {}
    spare: list[int] = []

    def place(values: Sequence[Any]) -> tuple[Any, ...]:
        """Return an entry's row for `_copy_entries`, from its `_ENTRY_SELECT` values."""
        where = _Whereabouts(*(values[i] for i in _WHEREABOUTS_AT))
        repository = where.repository
        key = release_key(
            cast(Entry, where),
            tags=tags[repository],
            tags_by_sha=tags_by_sha[repository],
            policy=policies[repository],
        )
        release_id = None if key is None else release_ids.get(key)
        if key is not None and release_id is None:
            if not spare:
                spare.extend(reversed(_reserve_ids(Release, 1000)))
            release_id = release_ids[key] = spare.pop()
        return (values[0], release_id, *values[1:])

    # Most entries were set aside whole: their rows go back as they came, untouched. Only
    # an entry set aside in parts is decoded, merged and encoded again.
    held: Sequence[Any] | None = None
    merged: Entry | None = None
    for chunk in _read_entries(
        f'SELECT {_ENTRY_SELECT} FROM {_SPILL_TABLE} ORDER BY entry_key COLLATE "C"',
        chunk_size,
        "shiplog_rebuild_spilled",
    ):
        placed: list[tuple[Any, ...]] = []
        for row in chunk:
            if held is not None and held[0] == row[0]:
                merged = merge(merged or _entry_from_values(held), _entry_from_values(row))
                continue
            if held is not None:
                placed.append(place(held if merged is None else _entry_values(merged)))
            held, merged = row, None
        _copy_entries(placed)
    if held is not None:
        _copy_entries([place(held if merged is None else _entry_values(merged))])

    keys = {release_id: key for key, release_id in release_ids.items()}
    rows: list[tuple[Any, ...]] = []
    group: list[Entry] = []
    group_id: int | None = None
    for chunk in _read_entries(
        f"SELECT release_id, {_ENTRY_SELECT} FROM {_ENTRY_TABLE} "
        'WHERE release_id IS NOT NULL ORDER BY release_id, first_position, entry_key COLLATE "C"',
        chunk_size,
        "shiplog_rebuild_placed",
    ):
        for row in chunk:
            if row[0] != group_id:
                if group_id is not None:
                    rows.append(_release_row(group_id, keys[group_id], group, policies, facts))
                group, group_id = [], row[0]
            group.append(_entry_from_values(row, 1))
    if group_id is not None:
        rows.append(_release_row(group_id, keys[group_id], group, policies, facts))
    _copy(_COPY_RELEASES, rows)


def _copy(statement: str, rows: Iterable[Sequence[Any]]) -> None:
    """Write `rows` with one `COPY … FROM STDIN` statement."""
    with _binary_cursor() as cursor, cursor.copy(statement) as copy:
        for values in rows:
            copy.write_row(values)


_COPY_ENTRIES = f"COPY {_ENTRY_TABLE} ({', '.join(c for c, _ in _ENTRY_COLUMNS)}) FROM STDIN"


def _copy_entries(rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        _copy(_COPY_ENTRIES, rows)


_RELEASE_KEY_COLUMNS = ("id", "repository", "ref_kind", "ref_key", "tag", "branch", "sha")
_COPY_RELEASES = (
    f"COPY {Release._meta.db_table} ({', '.join(_RELEASE_KEY_COLUMNS)}, "
    f"{', '.join(c for c, _ in _RELEASE_COLUMNS)}) FROM STDIN"
)


def _release_row(
    release_id: int,
    key: ReleaseKey,
    entries: list[Entry],
    policies: Mapping[str, Policy],
    facts: Mapping[tuple[str, str], TagFact],
) -> tuple[Any, ...]:
    """Derive a release from its entries; return its row for `_COPY_RELEASES`."""
    # The stream's order, as Python compares keys (the database's collation may not).
    entries.sort(key=_stream_order)
    tag = key.name if key.ref_kind == "tag" else ""
    release = Release(
        repository=key.repository,
        ref_kind=key.ref_kind,
        ref_key=key.ref_key,
        tag=tag,
        branch=key.name if key.ref_kind == "branch" else "",
        sha=key.sha,
    )
    known = facts.get((key.repository, tag)) if tag else None
    view = derive(
        key.ref_kind,
        entries,
        policies[key.repository],
        tagged_at=known.tagged_at if known is not None else None,
    )
    _set_derived(release, view, entries)
    release.pk = release_id
    return (
        release_id,
        release.repository,
        release.ref_kind,
        release.ref_key,
        release.tag,
        release.branch,
        release.sha,
        *_release_values(release)[1:],
    )


def _reserve_ids(model: type[Model], count: int) -> list[int]:
    """Return `count` fresh ids from the sequence behind `model`'s primary key."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def checkpoint_position() -> int:
    """Return the position the projector has applied up to."""
    found = ProjectorCheckpoint.objects.filter(name=NAME).values_list("position", flat=True)
    return next(iter(found), 0)
