"""Apply the stream to the release projections, in batches, from a stored checkpoint.

Why "position > checkpoint" is safe here: appends are serialised (see `releases.stream`), so
positions are handed out in commit order and no row can commit below a position a reader has
already seen. The checkpoint advances in the same transaction as the projection rows, so a
crash between the two is impossible; re-applying a batch is harmless because merges are
idempotent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from django.db import transaction
from django.db.models import Model, Q, QuerySet

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
    StreamRow,
    TagFact,
    derive,
    entry_from_row,
    merge,
    merge_tag,
    release_key,
    tag_facts,
)

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


def read_rows(after: int, limit: int) -> list[StreamRow]:
    """Return up to `limit` stream rows after `after`, in position order, without bodies."""
    rows = (
        StreamEvent.objects.filter(position__gt=after)
        .order_by("position")
        .values_list(*ROW_FIELDS)[:limit]
    )
    return [StreamRow(p, str(e), *rest) for p, e, *rest in rows]


def apply_rows(rows: Sequence[StreamRow]) -> set[int]:
    """Fold `rows` into the projections and return the ids of the releases they touched."""
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

    stored = TimelineEntry.objects.filter(entry_key__in=list(incoming)).only(
        "entry_key", "release_id", *ENTRY_FIELDS
    )
    previous_release: dict[str, int | None] = {}
    entries: dict[str, Entry] = {}
    for model in stored:
        previous_release[model.entry_key] = model.release_id
        entries[model.entry_key] = entry_from_model(model)
    for entry_key, entry in incoming.items():
        entries[entry_key] = merge(entries.get(entry_key), entry)

    changed_tags = _store_tags(facts)
    for model in _entries_to_reassign(changed_tags, exclude=entries.keys()):
        previous_release[model.entry_key] = model.release_id
        entries[model.entry_key] = entry_from_model(model)

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
    TimelineEntry.objects.bulk_create(
        [
            _model_from_entry(entry, release_ids[keys[key]] if keys[key] else None)  # type: ignore[index]
            for key, entry in entries.items()
        ],
        update_conflicts=True,
        unique_fields=["entry_key"],
        update_fields=["release", *ENTRY_FIELDS],
        batch_size=1000,
    )
    touched = set(release_ids.values())
    touched |= {rid for rid in previous_release.values() if rid is not None}
    touched |= {
        release.pk
        for release in matching_pairs(
            Release.objects.filter(ref_kind=Release.RefKind.TAG).only("pk", "repository", "tag"),
            "repository",
            "tag",
            changed_tags,
        )
    }
    refresh_releases(touched, policies=policies)
    return touched


def _store_tags(facts: dict[tuple[str, str], TagFact]) -> set[tuple[str, str]]:
    """Merge tag facts into KnownTag and return the (repository, tag) pairs that changed."""
    if not facts:
        return set()
    stored: dict[tuple[str, str], TagFact] = {}
    for known in matching_pairs(KnownTag.objects.all(), "repository", "tag", facts):
        stored[(known.repository, known.tag)] = TagFact(
            known.repository, known.tag, known.sha, known.rank, known.tagged_at
        )
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
) -> Iterable[TimelineEntry]:
    """Return stored entries whose release may change now that these tags are known."""
    if not changed_tags:
        return []
    known = matching_pairs(KnownTag.objects.all(), "repository", "tag", changed_tags)
    entries = TimelineEntry.objects.only("entry_key", "release_id", *ENTRY_FIELDS)
    by_branch = matching_pairs(entries, "repository", "branch", changed_tags)
    by_sha = matching_pairs(
        entries.filter(branch=""),
        "repository",
        "sha",
        {(k.repository, k.sha) for k in known if k.sha},
    )
    skip = set(exclude)
    unique = {model.entry_key: model for model in [*by_branch, *by_sha]}
    return [model for key, model in unique.items() if key not in skip]


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
    lookup = Release.objects.only("pk", "repository", "ref_key")
    found = {
        (r.repository, r.ref_key): r.pk
        for r in matching_pairs(lookup, "repository", "ref_key", pairs)
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
                (r.repository, r.ref_key): r.pk
                for r in matching_pairs(lookup, "repository", "ref_key", pairs)
            }
        )
    return {k: found[(k.repository, k.ref_key)] for k in keys}


def refresh_releases(release_ids: set[int], *, policies: dict[str, Policy] | None = None) -> None:
    """Recompute the derived state of these releases from their entries."""
    if not release_ids:
        return
    releases = {r.pk: r for r in Release.objects.filter(pk__in=release_ids)}
    policies = dict(policies or {})
    missing = {r.repository for r in releases.values()} - set(policies)
    policies.update(policies_for(missing))
    grouped: dict[int, list[Entry]] = defaultdict(list)
    positions: dict[int, int] = defaultdict(int)
    for model in TimelineEntry.objects.filter(release_id__in=releases).only(
        "entry_key", "release_id", *ENTRY_FIELDS
    ):
        assert model.release_id is not None
        grouped[model.release_id].append(entry_from_model(model))
        positions[model.release_id] = max(positions[model.release_id], model.position)
    tagged = {
        (k.repository, k.tag): k.tagged_at
        for k in matching_pairs(
            KnownTag.objects.all(),
            "repository",
            "tag",
            {(r.repository, r.tag) for r in releases.values() if r.tag},
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
        release.last_position = positions[pk]
    Release.objects.bulk_update(
        [r for pk, r in releases.items() if pk not in empty],
        [
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
        ],
        batch_size=500,
    )
    if empty:
        # A branch release whose entries all moved to a tag release no longer exists.
        Release.objects.filter(pk__in=empty).delete()


def catch_up(*, batch_size: int = 2000, max_batches: int | None = None, react: bool = True) -> int:
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
            touched = apply_rows(rows)
            for projection in projections:
                projection.apply(rows)
            if react:
                for hook in after_batch_hooks:
                    hook(touched)
            checkpoint.position = rows[-1].position
            checkpoint.save(update_fields=["position", "updated_at"])
        applied += len(rows)
        batches += 1
    return applied


def rebuild(*, batch_size: int = 5000) -> int:
    """Drop every projection and rebuild it from the whole stream.

    Reactions (detection) do not run: replaying history must not append to it.
    """
    with transaction.atomic():
        TimelineEntry.objects.all().delete()
        Release.objects.all().delete()
        KnownTag.objects.all().delete()
        for projection in projections:
            projection.reset()
        ProjectorCheckpoint.objects.update_or_create(name=NAME, defaults={"position": 0})
    return catch_up(batch_size=batch_size, react=False)


def checkpoint_position() -> int:
    """Return the position the projector has applied up to."""
    found = ProjectorCheckpoint.objects.filter(name=NAME).values_list("position", flat=True)
    return next(iter(found), 0)
