"""Reads for the releases app."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery

from releases import policy as policy_module
from releases.encryption import UndecryptableSecret, decrypt
from releases.ingest.circleci_api import EVENT_TYPE as API_EVENT_TYPE
from releases.metrics import (
    DoraFigures,
    IncidentFacts,
    ReleaseFacts,
    dora,
    month_start,
    time_blocked,
)
from releases.models import (
    BotToken,
    CICredential,
    DeployPolicy,
    KnownTag,
    Release,
    ReleaseState,
    Repository,
    Source,
    StreamEvent,
    TimelineEntry,
    WebhookSecret,
)
from releases.policy import Policy
from releases.projections import Entry, ReleaseView, derive

logger = logging.getLogger(__name__)
# The environment's default secret is tagged with this instead of a repository name.
ENV_DEFAULT = ""


def webhook_secret_candidates(*, platform: str, repository: str | None) -> list[tuple[str, str]]:
    """Return (secret, repository) pairs a delivery's signature may be checked against.

    With a claimed repository, only that repository's active secrets (and the environment's
    default) qualify, so a signature made with another repository's secret never verifies.
    Without one (a ping from an organisation hook, an unparseable body), every active secret
    of the platform does, and the one that matches says which repository sent it.
    """
    secrets = WebhookSecret.objects.filter(platform=platform, active=True)
    if repository is not None:
        secrets = secrets.filter(repository__full_name=repository)
    candidates: list[tuple[str, str]] = []
    for encrypted, full_name in secrets.values_list("encrypted_secret", "repository__full_name"):
        try:
            candidates.append((decrypt(bytes(encrypted)), full_name))
        except UndecryptableSecret:
            continue
    default = {
        "github": settings.SHIPLOG_GITHUB_WEBHOOK_SECRET,
        "circleci": settings.SHIPLOG_CIRCLECI_WEBHOOK_SECRET,
    }[platform]
    if default:
        candidates.append((default, ENV_DEFAULT))
    return candidates


def repository_for_circleci_slug(slug: str) -> str:
    """Return the repository registered for an opaque CircleCI project slug, or ""."""
    if not slug:
        return ""
    found = (
        Repository.objects.filter(circleci_project_slug=slug)
        .values_list("full_name", flat=True)
        .first()
    )
    return found or ""


def _narrowed(
    queryset: QuerySet[Any],
    *,
    readable: frozenset[str] | None,
    readable_field: str = "repository",
    **lookups: Any,
) -> QuerySet[Any]:
    """Return `queryset` limited to the repositories the caller may read and to each lookup.

    A lookup left blank (None, "" or 0) is a filter the caller did not ask for: it is skipped.
    """
    if readable is not None:
        queryset = queryset.filter(**{f"{readable_field}__in": readable})
    return queryset.filter(**{lookup: value for lookup, value in lookups.items() if value})


def release_list(
    *,
    readable: frozenset[str] | None,
    repository: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    ref_kind: str | None = None,
    name_contains: str | None = None,
) -> QuerySet[Release]:
    """Return releases, newest first, that the caller may read, filtered as asked.

    `state` matches any state that applies (a release can be blocked and partially deployed).
    """
    releases = _narrowed(
        Release.objects.order_by("-started_at", "-pk"),
        readable=readable,
        repository=repository,
        started_at__gte=since,
        started_at__lt=until,
        ref_kind=ref_kind,
    )
    if state:
        releases = releases.filter(Q(state=state) | Q(flags__contains=f",{state},"))
    if name_contains:
        releases = releases.filter(
            Q(tag__contains=name_contains) | Q(branch__contains=name_contains)
        )
    return releases


def release_get(*, repository: str, tag: str) -> Release | None:
    """Return the release of `repository` at `tag`, or None."""
    return Release.objects.filter(repository=repository, ref_key=f"tag:{tag}").first()


@dataclass(frozen=True)
class ReleaseTimeline:
    """A release with its entries in stream order and the policy that gives their roles."""

    release: Release
    entries: list[Entry]
    policy: Policy

    def role(self, entry: Entry) -> str:
        """Return how the policy treats an entry: deploy, core, advisory, or ''."""
        if entry.kind not in {"job", "workflow_run"}:
            return ""
        return self.policy.role(entry.platform, entry.name, entry.workflow_name)


@dataclass(frozen=True)
class ReleaseDetail(ReleaseTimeline):
    """A release with its entries, its policy, and the state derived from them."""

    view: ReleaseView


def link_retries(entries: list[Entry]) -> list[Entry]:
    """Mark the runs a Shiplog retry started with the position of the retry that caused them.

    A CircleCI rerun is a new workflow id (the accepted retry names it); a GitHub re-run is
    the next attempt of the same run.
    """
    caused: dict[tuple[str, int | None], int] = {}
    for entry in entries:
        if entry.platform == "shiplog" and entry.kind == "retry" and entry.status == "accepted":
            if entry.extra.get("new_run_id"):
                caused[(str(entry.extra["new_run_id"]), None)] = entry.position
            elif entry.extra.get("run_id"):
                caused[(str(entry.extra["run_id"]), -1)] = entry.position
    if not caused:
        return entries
    latest_attempt: dict[str, int] = {}
    for entry in entries:
        if entry.kind == "workflow_run" and entry.platform == "github":
            latest_attempt[entry.run_id] = max(latest_attempt.get(entry.run_id, 0), entry.attempt)
    linked = []
    for entry in entries:
        cause = caused.get((entry.run_id, None))
        if cause is None and entry.attempt > 1 and entry.platform == "github":
            cause = caused.get((entry.run_id, -1))
        if cause is not None and entry.kind in {"job", "workflow_run"}:
            entry = replace(entry, extra={**entry.extra, "caused_by": cause})
        linked.append(entry)
    return linked


def _fast_rows(rows: QuerySet[Any, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Return the tuples of a values_list query, decoded by psycopg's C loaders if possible.

    A release with thousands of job attempts is read on every page view and every poll.
    Django decodes each timestamp and JSON value in Python; psycopg's own loaders (compiled
    with psycopg[binary]) give the same values, timestamps in UTC, in a fraction of the time.
    Only this cursor's loaders change.
    """
    if connection.vendor != "postgresql":
        return list(rows)
    from psycopg.types.datetime import TimestamptzLoader
    from psycopg.types.json import JsonbLoader

    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.cursor.adapters.register_loader("jsonb", JsonbLoader)
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _entries(release: Release) -> list[Entry]:
    """Return a release's timeline entries in stream order, retries linked to their runs."""
    from releases.projector import ENTRY_FIELDS

    rows = (
        TimelineEntry.objects.filter(release=release)
        .order_by("first_position", "entry_key")
        .values_list("entry_key", *ENTRY_FIELDS)
    )
    return link_retries([Entry(*row) for row in _fast_rows(rows)])


def release_detail(release: Release) -> ReleaseDetail:
    """Return a release with its timeline in stream order and its state under today's policy."""
    from releases.projector import policies_for

    policy = policies_for([release.repository])[release.repository]
    tagged = (
        KnownTag.objects.filter(repository=release.repository, tag=release.tag)
        .values_list("tagged_at", flat=True)
        .first()
    )
    return _derived(ReleaseTimeline(release, _entries(release), policy), tagged)


def _derived(timeline: ReleaseTimeline, tagged_at: datetime | None) -> ReleaseDetail:
    view = derive(timeline.release.ref_kind, timeline.entries, timeline.policy, tagged_at=tagged_at)
    return ReleaseDetail(timeline.release, timeline.entries, timeline.policy, view)


@lru_cache(maxsize=32)
def _parsed_policy(repository: str, document: str) -> Policy:
    """Return a stored policy document parsed, the default if it no longer parses.

    Parsing is pure, and the API reads the same few documents on every request.
    """
    try:
        return policy_module.parse(document)
    except policy_module.PolicyError:
        logger.warning("stored policy for %s no longer parses; using defaults", repository)
        return policy_module.DEFAULT_POLICY


def _release_by_tag(repository: str, tag: str) -> Release | None:
    """Return the release of `repository` at `tag` with its policy and tag time, in one query.

    Annotated with `policy_document` (None without a stored policy) and `known_tagged_at`.
    """
    policy = DeployPolicy.objects.filter(repository__full_name=OuterRef("repository"))
    known = KnownTag.objects.filter(repository=OuterRef("repository"), tag=OuterRef("tag"))
    return (
        Release.objects.filter(repository=repository, ref_key=f"tag:{tag}")
        .annotate(
            policy_document=Subquery(policy.values("document")[:1]),
            known_tagged_at=Subquery(known.values("tagged_at")[:1]),
        )
        .first()
    )


# The details of the releases a projection batch has just refreshed, while the reactions to
# that batch run in its transaction: the projector derived them a moment ago from the same rows.
_refreshed: ContextVar[Mapping[int, ReleaseDetail] | None] = ContextVar("refreshed", default=None)


@contextmanager
def refreshed_details(details: Mapping[int, ReleaseDetail]) -> Iterator[None]:
    """Let `release_details` answer from `details` inside this block."""
    token = _refreshed.set(details)
    try:
        yield
    finally:
        _refreshed.reset(token)


def release_details(releases: Iterable[Release]) -> dict[int, ReleaseDetail]:
    """Return `release_detail` of each release, by id, with a handful of queries for all.

    Detection and the retry policy read every release a projection batch touched; one query
    per release each would cost them more than the projection itself. Inside
    `refreshed_details`, the projector's own results serve.
    """
    from releases.projector import matching_pair_values, policies_for, release_entries

    known = _refreshed.get() or {}
    details: dict[int, ReleaseDetail] = {}
    chosen: dict[int, Release] = {}
    for release in releases:
        if release.pk in known:
            details[release.pk] = replace(known[release.pk], release=release)
        else:
            chosen[release.pk] = release
    if not chosen:
        return details
    grouped = release_entries(chosen)
    policies = policies_for({release.repository for release in chosen.values()})
    tagged = {
        (repository, tag): tagged_at
        for repository, tag, tagged_at in matching_pair_values(
            KnownTag.objects.all(),
            "repository",
            "tag",
            {(release.repository, release.tag) for release in chosen.values()},
            "tagged_at",
        )
    }
    for pk, release in chosen.items():
        entries = link_retries(grouped[pk])
        policy = policies[release.repository]
        details[pk] = ReleaseDetail(
            release=release,
            entries=entries,
            policy=policy,
            view=derive(
                release.ref_kind,
                entries,
                policy,
                tagged_at=tagged.get((release.repository, release.tag)),
            ),
        )
    return details


def release_timeline_get(*, repository: str, tag: str) -> ReleaseTimeline | None:
    """Return the release of `repository` at `tag` with its timeline, or None; two queries."""
    release = _release_by_tag(repository, tag)
    if release is None:
        return None
    document = release.policy_document  # type: ignore[attr-defined]
    policy = (
        policy_module.DEFAULT_POLICY if document is None else _parsed_policy(repository, document)
    )
    return ReleaseTimeline(release, _entries(release), policy)


def release_detail_get(*, repository: str, tag: str) -> ReleaseDetail | None:
    """Return the release of `repository` at `tag` as `release_detail` does, or None."""
    timeline = release_timeline_get(repository=repository, tag=tag)
    if timeline is None:
        return None
    return _derived(timeline, timeline.release.known_tagged_at)  # type: ignore[attr-defined]


def stream_page(
    *,
    readable: frozenset[str] | None,
    after: int = 0,
    limit: int = 50,
    repository: str | None = None,
    source: str | None = None,
    event_type: str | None = None,
) -> list[StreamEvent]:
    """Return up to `limit` stream events after position `after`, in position order."""
    events = stream_page_query(
        readable=readable,
        after=after,
        repository=repository,
        source=source,
        event_type=event_type,
    )
    return list(events.defer("body")[:limit])


def stream_page_query(
    *,
    readable: frozenset[str] | None,
    after: int,
    repository: str | None,
    source: str | None,
    event_type: str | None,
) -> QuerySet[StreamEvent]:
    """Return the stream events after position `after` the caller may read, in order."""
    return _narrowed(
        StreamEvent.objects.filter(position__gt=after).order_by("position"),
        readable=readable,
        repository=repository,
        source=source,
        event_type=event_type,
    )


STREAM_PAGE_FIELDS = (
    "position",
    "event_id",
    "source",
    "event_type",
    "repository",
    "sha",
    "branch",
    "tag",
    "occurred_at",
    "recorded_at",
    "recognition",
    "data",
)


def stream_page_rows(
    *,
    readable: frozenset[str] | None,
    after: int = 0,
    limit: int = 50,
    repository: str | None = None,
    source: str | None = None,
    event_type: str | None = None,
) -> list[dict[str, Any]]:
    """Return what `stream_page` returns, as dicts of the API's fields, without models.

    The same query and order, reading only the columns the API shows.
    """
    events = stream_page_query(
        readable=readable,
        after=after,
        repository=repository,
        source=source,
        event_type=event_type,
    )
    rows = _fast_rows(events.values_list(*STREAM_PAGE_FIELDS)[:limit])
    return [dict(zip(STREAM_PAGE_FIELDS, row, strict=True)) for row in rows]


def ci_credential_token(*, repository: Repository, platform: str) -> str | None:
    """Return a repository's decrypted API token for `platform`, or None when none is stored.

    For outbound calls only: hand it straight to a client. Never log it, store it, put it in
    an event, an exception or a task's arguments (tasks take the repository's id instead).
    Raise UndecryptableSecret when no configured key decrypts it.
    """
    encrypted = (
        CICredential.objects.filter(repository=repository, platform=platform)
        .values_list("encrypted_token", flat=True)
        .first()
    )
    return None if encrypted is None else decrypt(bytes(encrypted))


def ci_credential_exists(*, repository: Repository, platform: str) -> bool:
    """Return whether a repository has an API token stored for `platform`."""
    return CICredential.objects.filter(repository=repository, platform=platform).exists()


class Revision(NamedTuple):
    """The commit, branch and tag a workflow ran for; "" where unknown."""

    sha: str
    branch: str
    tag: str


def circleci_workflow_revision(*, repository: str, workflow_id: str) -> Revision:
    """Return what the stream has recorded about the commit, branch and tag of a workflow."""
    rows = (
        StreamEvent.objects.filter(
            repository=repository, source=Source.CIRCLECI, data__run_id=workflow_id
        )
        .order_by("position")
        .values_list("sha", "branch", "tag")[:500]
    )
    sha = branch = tag = ""
    for row_sha, row_branch, row_tag in rows:
        sha, branch, tag = sha or row_sha, branch or row_branch, tag or row_tag
    return Revision(sha, branch, tag)


def circleci_workflows_to_enrich(*, since: datetime) -> list[tuple[int, str]]:
    """Return (repository id, workflow id) of the CircleCI workflows worth reading from the API.

    Those of releases active since `since`, in repositories that have a CircleCI token, whose
    release is not deployed yet or which were never read: from webhooks alone a release can
    look deployed when its CircleCI deploy job never ran, which only the API tells. In a
    stable order, so that a pass cut short by a rate limit resumes alike.
    """
    with_token = dict(
        CICredential.objects.filter(platform=CICredential.Platform.CIRCLECI).values_list(
            "repository__full_name", "repository_id"
        )
    )
    if not with_token:
        return []
    found = (
        TimelineEntry.objects.filter(
            platform="circleci",
            kind__in=["workflow_run", "job"],
            repository__in=list(with_token),
            release__isnull=False,
            release__last_activity_at__gte=since,
        )
        .exclude(run_id="")
        .values_list("repository", "run_id", "release__state")
        .distinct()
    )
    workflows: dict[tuple[str, str], bool] = {}
    for repository, run_id, state in found:
        deployed = state == ReleaseState.DEPLOYED
        workflows[(repository, run_id)] = workflows.get((repository, run_id), True) and deployed
    settled = {key for key, deployed in workflows.items() if deployed}
    if settled:
        read = StreamEvent.objects.filter(
            event_type=API_EVENT_TYPE,
            repository__in={repository for repository, _ in settled},
            data__run_id__in=[run_id for _, run_id in settled],
        ).values_list("repository", "data__run_id")
        settled &= set(read)
    return [
        (with_token[repository], run_id)
        for repository, run_id in sorted(workflows)
        if (repository, run_id) not in settled
    ]


# ----------------------------------------------------------------------------- pages

IN_FLIGHT = ("running", "blocked", "partially_deployed", "pending", "failed")


def repository_names(*, readable: frozenset[str] | None) -> list[str]:
    """Return the registered repositories the caller may read, by name."""
    names = Repository.objects.order_by("full_name").values_list("full_name", flat=True)
    return list(_narrowed(names, readable=readable, readable_field="full_name"))


def release_by_ref(*, repository: str, ref_key: str) -> Release | None:
    """Return the release of `repository` with this key (tag:<name> or branch:<name>@<sha>)."""
    return Release.objects.filter(repository=repository, ref_key=ref_key).first()


def releases_in_flight(*, readable: frozenset[str] | None, limit: int = 12) -> list[Release]:
    """Return releases not yet deployed everywhere, most recently active first."""
    releases = Release.objects.filter(state__in=IN_FLIGHT).order_by("-started_at", "-pk")
    return list(_narrowed(releases, readable=readable)[:limit])


def recent_deploys(*, readable: frozenset[str] | None, limit: int = 8) -> list[Release]:
    """Return the releases whose deploy started most recently, shipped or not."""
    releases = Release.objects.exclude(first_deploy_started_at=None).order_by(
        "-first_deploy_started_at", "-pk"
    )
    return list(_narrowed(releases, readable=readable)[:limit])


@dataclass(frozen=True)
class DeliveryFigures:
    """The dashboard's figures: DORA's four keys and time blocked this calendar month."""

    dora: DoraFigures
    blocked_this_month: timedelta
    blocked_releases_this_month: int
    month: datetime


RELEASE_FACTS = (
    "repository",
    "ref_key",
    "state",
    "flags",
    "started_at",
    "tagged_at",
    "deployed_at",
    "blocked_at",
    "unblocked_at",
)


def _release_facts(releases: QuerySet[Release], fields: tuple[str, ...]) -> list[ReleaseFacts]:
    """Return the facts the figures read, fetching only `fields` (the rest stay empty)."""
    facts = []
    for row in _fast_rows(releases.values_list(*fields)):
        values = dict(zip(fields, row, strict=True))
        values["flags"] = tuple(flag for flag in values.get("flags", "").split(",") if flag)
        facts.append(ReleaseFacts(**values))
    return facts


def dora_figures(
    *, readable: frozenset[str] | None, now: datetime, days: int = 30
) -> DeliveryFigures:
    """Return DORA's four keys over the last `days`, and the time blocked this month."""
    from incidents.models import Incident  # incidents builds on releases, not the reverse

    since = now - timedelta(days=days)
    releases = _narrowed(Release.objects.all(), readable=readable)
    incidents = _narrowed(Incident.objects.all(), readable=readable)
    window = _release_facts(
        releases.filter(Q(started_at__gte=since) | Q(deployed_at__gte=since)), RELEASE_FACTS
    )
    incident_facts = [
        IncidentFacts(*row)
        for row in _fast_rows(
            incidents.filter(Q(opened_at__gte=since) | Q(resolved_at__gte=since)).values_list(
                "repository", "release_key", "opened_at", "began_at", "resolved_at"
            )
        )
    ]
    month = month_start(now)
    blocked = _release_facts(
        releases.filter(blocked_at__lt=now).filter(
            Q(unblocked_at__isnull=True) | Q(unblocked_at__gte=month)
        ),
        ("repository", "ref_key", "state", "blocked_at", "unblocked_at"),
    )
    return DeliveryFigures(
        dora=dora(window, incident_facts, now=now, days=days),
        blocked_this_month=time_blocked(blocked, start=month, end=now),
        blocked_releases_this_month=len(blocked),
        month=month,
    )


def stream_explorer(
    *,
    readable: frozenset[str] | None,
    repository: str | None = None,
    source: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[StreamEvent]:
    """Return up to `limit` stream events, newest first, below position `before` if given."""
    events = _narrowed(
        StreamEvent.objects.order_by("-position"),
        readable=readable,
        repository=repository,
        source=source,
        event_type=event_type,
        occurred_at__gte=since,
        occurred_at__lt=until,
        position__lt=before,
    )
    return list(events.defer("body", "headers", "prev_hash", "hash")[:limit])


def stream_event_get(*, position: int, readable: frozenset[str] | None) -> StreamEvent | None:
    """Return one stream event if the caller may read it."""
    event = StreamEvent.objects.filter(position=position).first()
    if event is None or (readable is not None and event.repository not in readable):
        return None
    return event


def stream_latest_position() -> int:
    """Return the newest position in the stream (0 when it is empty), without counting rows."""
    latest = StreamEvent.objects.order_by("-position").values_list("position", flat=True)
    return next(iter(latest[:1]), 0)


@dataclass(frozen=True)
class RepositorySettings:
    """A repository's configuration as its settings page shows it; secrets never included."""

    repository: Repository
    secrets: list[WebhookSecret]
    policy_document: str
    policy_is_default: bool
    policy: Policy | None
    policy_error: str
    probe_results: list[TimelineEntry]
    credentials: list[CICredential]


def repository_settings(*, full_name: str) -> RepositorySettings | None:
    """Return what the settings page shows for one repository, or None if it is unknown."""
    from releases import policy as policy_module

    repository = Repository.objects.filter(full_name=full_name).first()
    if repository is None:
        return None
    stored = DeployPolicy.objects.filter(repository=repository).first()
    document = (
        stored.document
        if stored is not None
        else policy_module.dumps(policy_module.DEFAULT_POLICY, repository=full_name)
    )
    parsed: Policy | None = None
    error = ""
    try:
        parsed = policy_module.parse(document)
    except policy_module.PolicyError as exc:
        error = str(exc)
    probes = TimelineEntry.objects.filter(repository=full_name, kind="probe").order_by("-position")[
        :10
    ]
    return RepositorySettings(
        repository=repository,
        secrets=list(repository.secrets.order_by("platform", "-created_at")),
        policy_document=document,
        policy_is_default=stored is None,
        policy=parsed,
        policy_error=error,
        probe_results=list(probes),
        credentials=list(repository.ci_credentials.order_by("platform")),
    )


def bot_token_list() -> list[BotToken]:
    """Return every bot token, newest first, with the repositories each may reach."""
    return list(BotToken.objects.prefetch_related("repositories").order_by("-created_at"))


def deliveries_recorded(*, delivery_keys: Iterable[str]) -> set[str]:
    """Return which of these delivery keys the stream already holds."""
    keys = list(delivery_keys)
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(
            StreamEvent.objects.filter(delivery_key__in=chunk).values_list(
                "delivery_key", flat=True
            )
        )
    return found


def repositories_named(*, names: Iterable[str]) -> list[Repository]:
    """Return the registered repositories with these names."""
    return list(Repository.objects.filter(full_name__in=list(names)))


def webhook_secret_get(*, repository: Repository, pk: int) -> WebhookSecret | None:
    """Return one of a repository's webhook secrets (its record; the value stays encrypted)."""
    return WebhookSecret.objects.filter(pk=pk, repository=repository).first()


def bot_token_get(*, pk: int) -> BotToken | None:
    """Return one bot token's record (its value was never stored)."""
    return BotToken.objects.filter(pk=pk).first()
