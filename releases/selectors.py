"""Reads for the releases app."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db.models import Q, QuerySet

from releases.encryption import UndecryptableSecret, decrypt
from releases.ingest.circleci_api import EVENT_TYPE as API_EVENT_TYPE
from releases.models import (
    CICredential,
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


def release_list(
    *,
    readable: frozenset[str] | None,
    repository: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Release]:
    """Return releases, newest first, that the caller may read, filtered as asked.

    `state` matches any state that applies (a release can be blocked and partially deployed).
    """
    releases = Release.objects.order_by("-started_at", "-pk")
    if readable is not None:
        releases = releases.filter(repository__in=readable)
    if repository:
        releases = releases.filter(repository=repository)
    if state:
        releases = releases.filter(Q(state=state) | Q(flags__contains=f",{state},"))
    if since:
        releases = releases.filter(started_at__gte=since)
    if until:
        releases = releases.filter(started_at__lt=until)
    return releases


def release_get(*, repository: str, tag: str) -> Release | None:
    """Return the release of `repository` at `tag`, or None."""
    return Release.objects.filter(repository=repository, ref_key=f"tag:{tag}").first()


@dataclass(frozen=True)
class ReleaseDetail:
    """A release with its entries, its policy, and the state derived from them."""

    release: Release
    entries: list[Entry]
    policy: Policy
    view: ReleaseView

    def role(self, entry: Entry) -> str:
        """Return how the policy treats an entry: deploy, core, advisory, or ''."""
        if entry.kind not in {"job", "workflow_run"}:
            return ""
        return self.policy.role(entry.platform, entry.name, entry.workflow_name)


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


def release_detail(release: Release) -> ReleaseDetail:
    """Return a release with its timeline in stream order and its state under today's policy."""
    from releases.projector import ENTRY_FIELDS, entry_from_model, policies_for

    models = (
        TimelineEntry.objects.filter(release=release)
        .order_by("first_position", "entry_key")
        .only("entry_key", *ENTRY_FIELDS)
    )
    entries = link_retries([entry_from_model(model) for model in models])
    policy = policies_for([release.repository])[release.repository]
    tagged = (
        KnownTag.objects.filter(repository=release.repository, tag=release.tag)
        .values_list("tagged_at", flat=True)
        .first()
    )
    return ReleaseDetail(
        release=release,
        entries=entries,
        policy=policy,
        view=derive(release.ref_kind, entries, policy, tagged_at=tagged),
    )


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
    events = StreamEvent.objects.filter(position__gt=after).order_by("position")
    if readable is not None:
        events = events.filter(repository__in=readable)
    if repository:
        events = events.filter(repository=repository)
    if source:
        events = events.filter(source=source)
    if event_type:
        events = events.filter(event_type=event_type)
    return list(events.defer("body")[:limit])


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
