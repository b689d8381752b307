"""Pure projection logic: stream events to timeline entries, tags, and release state.

Nothing here touches the database. The projector (`releases.projector`) feeds batches of
events through these functions and stores what they return, so every rule about ordering,
merging and state lives in one place and is tested without I/O.

Order-insensitivity: an entry's fields come from the delivery that ranks highest (terminal
over running over queued, then the platform's clock, then event id), never from whichever
arrived last; a release's membership is a function of the entry and the tags known so far,
recomputed when a tag becomes known; a release's state is a function of its entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from releases.policy import DeployJob, Policy, matches_any

FAILED = frozenset(
    {"failure", "timed_out", "cancelled", "error", "unauthorized", "infrastructure_fail"}
)
TERMINAL_STATUSES = frozenset({"completed", "success", "failure", "error", "inactive"})
_STATUS_RANK = {
    "created": 0,
    "requested": 1,
    "queued": 1,
    "pending": 1,
    "waiting": 2,
    "in_progress": 3,
    "running": 3,
}
# Statuses of a job that never ran and will not run as things stand (CircleCI's API words).
NEVER_RAN = frozenset({"blocked", "not_run"})
# Check runs that mirror events Shiplog already has from the platforms' own webhooks.
_MIRRORED_CHECK_APPS = frozenset({"github-actions", "circleci-checks"})


class StreamRow(NamedTuple):
    """The columns of a stream row that projections read (never the raw body)."""

    position: int
    event_id: str
    source: str
    event_type: str
    repository: str
    sha: str
    branch: str
    tag: str
    occurred_at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """One timeline entry: a run attempt, a job attempt, a deployment, or a marker."""

    entry_key: str
    repository: str
    platform: str
    kind: str
    name: str = ""
    workflow_name: str = ""
    run_id: str = ""
    attempt: int = 1
    pipeline_id: str = ""
    pipeline_number: int | None = None
    job_id: str = ""
    job_number: int | None = None
    status: str = ""
    conclusion: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    occurred_at: datetime | None = None
    url: str = ""
    sha: str = ""
    branch: str = ""
    tag: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    rank: str = ""
    position: int = 0
    first_position: int = 0

    @property
    def terminal(self) -> bool:
        """Return whether this entry has reached its end."""
        return bool(self.conclusion) or self.status in TERMINAL_STATUSES

    @property
    def failed(self) -> bool:
        """Return whether this entry ended in a failure of any kind."""
        return self.conclusion in FAILED

    @property
    def moment(self) -> datetime | None:
        """Return when this entry started, or failing that when it happened."""
        return self.started_at or self.occurred_at or self.completed_at


@dataclass(frozen=True, slots=True)
class TagFact:
    """What one event says about a tag: that it exists, and maybe its commit and time."""

    repository: str
    tag: str
    sha: str = ""
    rank: str = ""
    tagged_at: datetime | None = None


def _stamp(value: datetime | None) -> str:
    # isoformat, not strftime: the same text ("%Y-%m-%dT%H:%M:%S.%f" for any year after 999)
    # at a fraction of the cost, and a rebuild stamps every event.
    if not value:
        return ""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _rank(status: str, terminal: bool, occurred_at: datetime | None, event_id: str) -> str:
    level = 4 if terminal else _STATUS_RANK.get(status, 1)
    return f"{level}|{_stamp(occurred_at)}|{event_id}"


def _entry_key(row: StreamRow, data: Mapping[str, Any]) -> str | None:
    platform = str(data.get("platform") or row.source)
    kind = str(data.get("kind", ""))
    if row.source in {"api", "shiplog"}:
        # Shiplog's own facts (incidents, retries) join a release's timeline when they name
        # it; the rest (policy changes, say) are not part of any release's story.
        placed = row.tag or row.sha or row.branch
        return f"{row.source}:event:{row.event_id}" if placed else None
    if kind == "workflow_run":
        return f"{platform}:run:{data.get('run_id')}:{data.get('attempt') or 1}"
    if kind == "job":
        return f"{platform}:job:{data.get('job_id')}"
    if kind in {"deployment", "deployment_status"}:
        return f"{platform}:deployment:{data.get('job_id')}"
    if kind == "release":
        return f"{platform}:release:{data.get('job_id')}"
    if kind == "tag":
        return f"{platform}:tag:{data.get('tag')}:{data.get('status')}"
    if kind == "push":
        return f"{platform}:push:{data.get('branch')}:{data.get('sha')}:{data.get('status')}"
    if kind == "check_run":
        app = str((data.get("extra") or {}).get("app", ""))
        return None if app in _MIRRORED_CHECK_APPS else f"{platform}:check:{data.get('job_id')}"
    return None


_EXTRA_KEYS = (
    "failed_step",
    "event",
    "environment",
    "environment_url",
    "deployment_id",
    "app",
    "dependencies",
    "description",
    "caused_by",
    "retry_of",
    "note",
    "reason",
    "decision",
    "new_run_id",
    "run_id",
    "rerun_of",
    "api",
    "attempt",
    "blocker",
    "not_before",
    "latency_ms",
    "error",
)


def entry_from_row(row: StreamRow) -> Entry | None:
    """Return the timeline entry one stream event contributes to, or None."""
    data = row.data
    key = _entry_key(row, data)
    if key is None:
        return None
    kind = str(data.get("kind", ""))
    if kind == "deployment_status":
        kind = "deployment"
    if row.source in {"api", "shiplog"}:
        kind = str(data.get("kind") or "marker")
    status = str(data.get("status", ""))
    conclusion = str(data.get("conclusion", ""))
    extra_in = data.get("extra") or {}
    extra = {k: extra_in[k] for k in _EXTRA_KEYS if k in extra_in and extra_in[k] not in ("", None)}
    occurred_at = _parse(data.get("occurred_at")) or row.occurred_at
    terminal = bool(conclusion) or status in TERMINAL_STATUSES
    if kind == "deployment" and data.get("kind") == "deployment":
        terminal = False  # the deployment itself is created; only statuses end it
    return Entry(
        entry_key=key,
        repository=row.repository,
        platform=str(data.get("platform") or row.source),
        kind=kind,
        name=str(data.get("name", "")),
        workflow_name=str(data.get("workflow_name", "")),
        run_id=str(data.get("run_id", "")),
        attempt=int(data.get("attempt") or 1),
        pipeline_id=str(data.get("pipeline_id", "")),
        pipeline_number=data.get("pipeline_number"),
        job_id=str(data.get("job_id", "")),
        job_number=data.get("job_number"),
        status=status,
        conclusion=conclusion,
        started_at=_parse(data.get("started_at")),
        completed_at=_parse(data.get("completed_at")),
        occurred_at=occurred_at,
        url=str(data.get("url", "")),
        sha=row.sha or str(data.get("sha", "")),
        branch=row.branch or str(data.get("branch", "")),
        tag=row.tag or str(data.get("tag", "")),
        extra=extra,
        rank=_rank(status, terminal, occurred_at, str(row.event_id)),
        position=row.position,
        first_position=row.position,
    )


def merge(existing: Entry | None, incoming: Entry) -> Entry:
    """Combine two deliveries about the same entry; the higher-ranked one wins.

    Fields the winner lacks (a start time, a URL, a commit) are taken from the other, so a
    `completed` that arrives before its `in_progress` loses nothing.
    """
    if existing is None:
        return incoming
    winner, other = (incoming, existing) if incoming.rank > existing.rank else (existing, incoming)
    # Every field spelled out rather than `dataclasses.replace`, which costs twice as much,
    # and a rebuild merges every redelivery in the stream.
    return Entry(
        entry_key=winner.entry_key,
        repository=winner.repository,
        platform=winner.platform,
        kind=winner.kind,
        name=winner.name,
        workflow_name=winner.workflow_name or other.workflow_name,
        run_id=winner.run_id,
        attempt=winner.attempt,
        pipeline_id=winner.pipeline_id or other.pipeline_id,
        pipeline_number=winner.pipeline_number
        if winner.pipeline_number is not None
        else other.pipeline_number,
        job_id=winner.job_id,
        job_number=winner.job_number if winner.job_number is not None else other.job_number,
        status=winner.status,
        conclusion=winner.conclusion,
        started_at=winner.started_at or other.started_at,
        completed_at=winner.completed_at or other.completed_at,
        occurred_at=winner.occurred_at,
        url=winner.url or other.url,
        sha=winner.sha or other.sha,
        branch=winner.branch or other.branch,
        tag=winner.tag or other.tag,
        extra={**other.extra, **winner.extra},
        rank=winner.rank,
        position=winner.position,
        first_position=min(existing.first_position, incoming.first_position),
    )


def tag_facts(row: StreamRow, entry: Entry | None) -> list[TagFact]:
    """Return what one event says about tags of its repository."""
    data = row.data
    tag = row.tag or str(data.get("tag", ""))
    started_by_release = (
        entry is not None
        and entry.platform == "github"
        and entry.kind == "workflow_run"
        and entry.extra.get("event") == "release"
        and entry.branch
    )
    if not tag and not started_by_release:
        return []  # most events: no stamp to format
    facts: list[TagFact] = []
    rank = f"{_stamp(row.occurred_at)}|{row.event_id}"
    kind = data.get("kind")
    if kind == "tag" and tag and data.get("status") != "deleted":
        facts.append(TagFact(row.repository, tag, row.sha, rank, row.occurred_at))
    elif tag:
        facts.append(TagFact(row.repository, tag, row.sha if row.source != "github" else "", rank))
    if started_by_release:
        assert entry is not None
        # A run started by a published release names the tag as its head branch.
        facts.append(TagFact(row.repository, entry.branch, entry.sha, rank))
    return facts


def merge_tag(existing: TagFact | None, incoming: TagFact) -> TagFact:
    """Combine two facts about one tag: a known commit beats none; a later move wins."""
    if existing is None:
        return incoming
    if incoming.sha and (not existing.sha or incoming.rank > existing.rank):
        sha, rank = incoming.sha, incoming.rank
    else:
        sha, rank = existing.sha, existing.rank
    tagged = [t for t in (existing.tagged_at, incoming.tagged_at) if t is not None]
    return TagFact(existing.repository, existing.tag, sha, rank, min(tagged) if tagged else None)


class ReleaseKey(NamedTuple):
    """Which release an entry belongs to: (repository, ref kind, tag or branch, sha)."""

    repository: str
    ref_kind: str
    name: str
    sha: str

    @property
    def ref_key(self) -> str:
        """Return the unique key of the release within its repository."""
        return f"tag:{self.name}" if self.ref_kind == "tag" else f"branch:{self.name}@{self.sha}"


def release_key(
    entry: Entry,
    *,
    tags: Mapping[str, str],
    tags_by_sha: Mapping[str, Sequence[str]],
    policy: Policy,
) -> ReleaseKey | None:
    """Return the release an entry joins, given the tags known in its repository.

    By tag; by a GitHub head branch that is a known tag; by commit for a pipeline that names
    no branch (CircleCI tag pipelines carry neither branch nor tag); else by deploy branch.
    """
    repo = entry.repository
    if entry.tag:
        return ReleaseKey(repo, "tag", entry.tag, "")
    if entry.branch and entry.branch in tags:
        return ReleaseKey(repo, "tag", entry.branch, "")
    if not entry.branch and entry.sha and entry.sha in tags_by_sha:
        return ReleaseKey(repo, "tag", max(tags_by_sha[entry.sha]), "")
    if entry.branch and entry.sha and policy.tracks_branch(entry.branch):
        return ReleaseKey(repo, "branch", entry.branch, entry.sha)
    return None


@dataclass(frozen=True, slots=True)
class Blocker:
    """A failed job that keeps a deploy job from running."""

    job: str
    platform: str
    conclusion: str
    url: str
    role: str
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeployOutcome:
    """Where one deploy job stands: success, failed, running, blocked or not_run."""

    deploy: DeployJob
    outcome: str
    entry: Entry | None
    blocked_by: tuple[Blocker, ...] = ()


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """A release's derived state, from its entries and its repository's policy."""

    state: str
    flags: tuple[str, ...]
    deploys: tuple[DeployOutcome, ...]
    blocking_chain: tuple[DeployOutcome, ...]
    gate_blocking: tuple[Entry, ...]
    advisory_failures: tuple[Entry, ...]
    pending: tuple[Entry, ...]
    started_at: datetime | None
    tagged_at: datetime | None
    first_deploy_started_at: datetime | None
    deployed_at: datetime | None
    blocked_at: datetime | None
    unblocked_at: datetime | None
    last_activity_at: datetime | None

    @property
    def deployable(self) -> bool:
        """Return the gate's answer: nothing core has failed and nothing core is pending."""
        return not self.gate_blocking and not self.pending


STATE_ORDER = ("blocked", "failed", "partially_deployed", "running", "deployed", "pending")


def _attempt_order(entry: Entry) -> tuple[Any, ...]:
    return (entry.attempt, entry.job_number or 0, _stamp(entry.moment), entry.rank)


def latest_attempts(entries: Iterable[Entry], kind: str) -> list[Entry]:
    """Return the latest attempt of each job (or run) by platform, workflow and name.

    A CircleCI rerun is a new workflow with the same name in the same pipeline, and new
    job numbers; a GitHub re-run is the next run_attempt of the same run.
    """
    latest: dict[tuple[str, str, str], Entry] = {}
    for entry in entries:
        if entry.kind != kind:
            continue
        group = (entry.platform, entry.workflow_name if kind == "job" else "", entry.name)
        current = latest.get(group)
        if current is None or _attempt_order(entry) > _attempt_order(current):
            latest[group] = entry
    return sorted(latest.values(), key=lambda e: (e.platform, e.workflow_name, e.name))


def _required(deploy: DeployJob, entry: Entry | None, jobs: Sequence[Entry]) -> list[Entry]:
    """Return the jobs that gate `deploy`, from the policy or the platform's own graph."""
    same_platform = [j for j in jobs if j.platform == deploy.platform and j is not entry]
    dependencies = entry.extra.get("dependencies") if entry is not None else None
    if dependencies:
        by_name = {j.name: j for j in same_platform}
        by_id = {j.job_id: j for j in same_platform}
        seen: dict[str, Entry] = {}
        todo = list(dependencies)
        while todo:
            ref = str(todo.pop())
            job = by_id.get(ref) or by_name.get(ref)
            if job is None or job.entry_key in seen:
                continue
            seen[job.entry_key] = job
            todo.extend(job.extra.get("dependencies") or [])
        return list(seen.values())
    if deploy.requires:
        return [j for j in same_platform if matches_any(j.name, deploy.requires)]
    # Without a graph, a deploy is gated by the jobs of its own workflow: neither platform
    # lets one workflow's jobs hold back another's. A deploy that never reported has no
    # known workflow, so every job on its platform may be what held it back.
    workflow = ""
    if entry is not None:
        workflow = entry.name if entry.kind == "workflow_run" else entry.workflow_name
    if workflow:
        return [j for j in same_platform if j.workflow_name == workflow]
    return same_platform


def derive(
    ref_kind: str, entries: Sequence[Entry], policy: Policy, tagged_at: datetime | None = None
) -> ReleaseView:
    """Return the state of a release from its entries, under `policy`."""
    jobs = latest_attempts(entries, "job")
    runs = latest_attempts(entries, "workflow_run")
    all_jobs = [e for e in entries if e.kind == "job"]

    deploy_jobs: dict[tuple[str, str], DeployJob] = {
        (d.platform, d.name): d for d in policy.expected_deploys(ref_kind)
    }
    for item in (*runs, *jobs):
        # A run's name is its workflow's name: ask as a workflow, so that the default policy's
        # rule for CircleCI (workflow names do not deploy) holds for runs as it does for jobs.
        name = "" if item.kind == "workflow_run" else item.name
        found = policy.deploy_job(item.platform, name, item.workflow_name or item.name)
        if found is not None and found.applies_to(ref_kind):
            deploy_jobs.setdefault((found.platform, found.name), found)

    outcomes: list[DeployOutcome] = []
    for deploy in sorted(deploy_jobs.values(), key=lambda d: (d.platform, d.name)):
        outcomes.append(_deploy_outcome(deploy, runs, jobs, all_jobs, policy))

    deploy_entries = {o.entry.entry_key for o in outcomes if o.entry is not None}
    non_deploy_jobs = [
        j
        for j in jobs
        if j.entry_key not in deploy_entries
        and policy.deploy_job(j.platform, j.name, j.workflow_name) is None
    ]
    # The gate asks about the jobs that gate a deploy; a job after the release (a workflow
    # started by the published release, say) gates nothing, even if it failed.
    if outcomes:
        gating: set[str] = set()
        for outcome in outcomes:
            gating.update(job.entry_key for job in _required(outcome.deploy, outcome.entry, jobs))
        gates = [j for j in non_deploy_jobs if j.entry_key in gating]
    else:
        gates = non_deploy_jobs
    gate_blocking = tuple(
        j for j in gates if j.failed and policy.role(j.platform, j.name) == "core"
    )
    advisory_failures = tuple(
        j for j in gates if j.failed and policy.role(j.platform, j.name) == "advisory"
    )
    pending = tuple(
        j for j in gates if not j.terminal and policy.role(j.platform, j.name) == "core"
    )

    flags: set[str] = set()
    kinds = {o.outcome for o in outcomes}
    if outcomes and kinds == {"success"}:
        flags.add("deployed")
    else:
        if "success" in kinds and kinds & {"failed", "blocked", "not_run"}:
            flags.add("partially_deployed")
        if "blocked" in kinds:
            flags.add("blocked")
        if "failed" in kinds or (not outcomes and any(j.failed for j in jobs + runs)):
            flags.add("failed")
        # A job that never ran is waiting on nothing that is not already counted: its
        # upstream job is either running itself or has failed.
        if "running" in kinds or any(
            not e.terminal and e.status not in NEVER_RAN for e in jobs + runs
        ):
            flags.add("running")
    state = next((s for s in STATE_ORDER if s in flags), "pending")
    if state == "pending" and entries and any(e.kind in {"job", "workflow_run"} for e in entries):
        state = "running" if not outcomes else state

    moments = [m for m in (e.moment for e in entries) if m is not None]
    activity = [m for e in entries for m in (e.completed_at, e.occurred_at) if m is not None]
    deploy_starts = [
        o.entry.started_at for o in outcomes if o.entry is not None and o.entry.started_at
    ]
    deployed_at = None
    if "deployed" in flags:
        ends = [o.entry.completed_at for o in outcomes if o.entry and o.entry.completed_at]
        deployed_at = max(ends) if ends else None
    blocked_at, unblocked_at = _blocked_window(outcomes, all_jobs, policy)
    return ReleaseView(
        state=state,
        flags=tuple(s for s in STATE_ORDER if s in flags),
        deploys=tuple(outcomes),
        blocking_chain=tuple(o for o in outcomes if o.outcome == "blocked"),
        gate_blocking=gate_blocking,
        advisory_failures=advisory_failures,
        pending=pending,
        started_at=min(moments) if moments else None,
        tagged_at=tagged_at or (min(moments) if moments else None),
        first_deploy_started_at=min(deploy_starts) if deploy_starts else None,
        deployed_at=deployed_at,
        blocked_at=blocked_at,
        unblocked_at=unblocked_at,
        last_activity_at=max(activity) if activity else None,
    )


def _deploy_outcome(
    deploy: DeployJob,
    runs: Sequence[Entry],
    jobs: Sequence[Entry],
    all_jobs: Sequence[Entry],
    policy: Policy,
) -> DeployOutcome:
    run = next((r for r in runs if deploy.matches(r.platform, r.name)), None)
    members = [j for j in jobs if deploy.matches(j.platform, j.name, j.workflow_name)]
    entry = run or (members[0] if len(members) == 1 else None)
    results = [run] if run is not None else members
    ran = [r for r in results if r.status not in NEVER_RAN]
    if ran:
        if all(r.conclusion == "success" for r in ran) and ran[0].terminal:
            return DeployOutcome(deploy, "success", entry)
        if any(r.failed for r in ran):
            return DeployOutcome(deploy, "failed", entry)
        if any(not r.terminal for r in ran):
            return DeployOutcome(deploy, "running", entry)
        return DeployOutcome(
            deploy, "failed" if any(r.conclusion for r in ran) else "running", entry
        )
    # Never ran. CircleCI reports terminal events only, so a blocked job is simply absent.
    gates = _required(deploy, entry, [j for j in jobs if j.kind == "job"])
    blockers = tuple(
        Blocker(
            job=g.name,
            platform=g.platform,
            conclusion=g.conclusion,
            url=g.url,
            role=policy.role(g.platform, g.name),
            completed_at=g.completed_at,
        )
        for g in gates
        if g.failed and policy.deploy_job(g.platform, g.name, g.workflow_name) is None
    )
    if blockers:
        return DeployOutcome(deploy, "blocked", entry, blockers)
    platform_runs = [r for r in runs if r.platform == deploy.platform]
    if platform_runs and all(r.terminal for r in platform_runs):
        return DeployOutcome(deploy, "not_run", entry)
    return DeployOutcome(deploy, "running" if platform_runs or all_jobs else "pending", entry)


def _blocked_window(
    outcomes: Sequence[DeployOutcome], all_jobs: Sequence[Entry], policy: Policy
) -> tuple[datetime | None, datetime | None]:
    """Return when the release became blocked and when (if ever) every deploy ran again."""
    starts: list[datetime] = []
    ends: list[datetime | None] = []
    for outcome in outcomes:
        deploy = outcome.deploy
        if outcome.outcome == "blocked":
            times = [b.completed_at for b in outcome.blocked_by if b.completed_at]
            if times:
                starts.append(min(times))
                ends.append(None)
            continue
        began = outcome.entry.started_at if outcome.entry else None
        if began is None:
            continue
        gates = _required(deploy, outcome.entry, all_jobs)
        earlier = [
            g.completed_at
            for g in gates
            if g.failed and g.completed_at is not None and g.completed_at <= began
        ]
        if earlier:
            starts.append(min(earlier))
            ends.append(began)
    if not starts:
        return None, None
    return min(starts), (None if any(e is None for e in ends) else max(e for e in ends if e))
