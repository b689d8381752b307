"""Tell a release as the deliveries both CI platforms send it: steps, in the order they happened.

A story is told lane by lane (a GitHub workflow run with its jobs, a CircleCI workflow from its
job graph); `Story.steps()` interleaves the lanes by time. Every id is derived from names, so
telling the same story twice gives the same deliveries, byte for byte.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from releases.deliveries import Delivery, circleci_delivery, github_delivery
from releases.scenarios.payloads import (
    CircleCIWorkflow,
    Deployment,
    GitHubUser,
    Payload,
    WorkflowJob,
    WorkflowRun,
    deployment_event,
    deployment_status_event,
    job_completed_event,
    job_steps,
    running_steps,
    workflow_completed_event,
    workflow_job_event,
    workflow_run_event,
)

# Fixed, so that ids derived from names are the same on every machine and every replay.
NAMESPACE = uuid.UUID("5d7f3a52-8c1e-4e0b-9a6f-2b4c8d1e7f30")
# How long a CircleCI job waits for an executor once its requirements are done.
CIRCLECI_QUEUE = timedelta(seconds=20)
# A webhook leaves a little after the moment it reports.
CIRCLECI_JOB_LAG = timedelta(milliseconds=83, microseconds=412)
CIRCLECI_WORKFLOW_LAG = timedelta(milliseconds=127, microseconds=905)


def stable_id(*names: object) -> str:
    """Return a UUID that depends only on `names`."""
    return str(uuid.uuid5(NAMESPACE, "/".join(str(name) for name in names)))


@dataclass(frozen=True)
class Step:
    """One delivery of a story: what a platform sent, and when."""

    at: datetime
    platform: str  # "github" or "circleci"
    event_type: str  # X-GitHub-Event, or circleci-event-type
    payload: Payload  # the decoded body, not yet signed
    delivery_id: str  # X-GitHub-Delivery; for CircleCI the body's own `id`
    summary: str  # one line of the story, for people

    def delivery(self, secret: str, **options: Any) -> Delivery:
        """Return the delivery signed with `secret`, exactly as the platform would send it."""
        if self.platform == "github":
            return github_delivery(
                self.event_type, self.payload, secret, delivery_id=self.delivery_id, **options
            )
        return circleci_delivery(self.payload, secret)

    def shifted(self, delta: timedelta) -> Step:
        """Return the step moved in time by `delta`, every moment in its payload too.

        Ids stay as they are, so a shifted replay is still the same deliveries to the stream.
        """
        return replace(self, at=self.at + delta, payload=shift_times(self.payload, delta))


# A moment as GitHub and CircleCI write them: Z or an offset, with or without fractions.
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$")


def _shift_text(text: str, delta: timedelta) -> str:
    match = _MOMENT.match(text)
    if match is None:
        return text
    fraction, zone = match.groups()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")) + delta
    shifted = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        shifted += "." + f"{moment.microsecond:06d}"[: len(fraction)]
    # Adding a timedelta keeps the offset, so the zone is written back as it was.
    return shifted + zone


def shift_times(value: Any, delta: timedelta, key: str = "") -> Any:
    """Return a payload with every moment in it moved by `delta`, in the format it was written.

    Moments are ISO 8601 strings, and Unix times under keys ending in `_at` (a push payload's
    `repository.pushed_at`); nothing else changes.
    """
    if isinstance(value, dict):
        return {name: shift_times(item, delta, name) for name, item in value.items()}
    if isinstance(value, list):
        return [shift_times(item, delta, key) for item in value]
    if isinstance(value, str):
        return _shift_text(value, delta)
    if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_at"):
        return value + int(delta.total_seconds())
    return value


class Story:
    """Collect the steps of a story as it is told."""

    def __init__(self) -> None:
        self._steps: list[Step] = []

    def github(
        self, at: datetime, event: str, payload: Payload, summary: str, *key: object
    ) -> None:
        """Add a GitHub delivery; `key` names it among the deliveries of its event."""
        identity = stable_id("github", event, payload.get("action", ""), *key)
        self._steps.append(Step(at, "github", event, payload, identity, summary))

    def circleci(self, at: datetime, payload: Payload, summary: str) -> None:
        """Add a CircleCI delivery; its body carries its own id."""
        self._steps.append(Step(at, "circleci", payload["type"], payload, payload["id"], summary))

    def steps(self) -> list[Step]:
        """Return the steps in the order they happened (a stable sort: ties keep their order)."""
        return sorted(self._steps, key=lambda step: step.at)


# ----------------------------------------------------------------------------- GitHub Actions


@dataclass(frozen=True)
class Environment:
    """The deployment GitHub Actions records for a job with an `environment:`."""

    name: str
    deployment_id: int
    status_id: int
    url: str


@dataclass(frozen=True)
class JobPlan:
    """When a GitHub Actions job was queued, started and finished, and how it ended."""

    job: WorkflowJob
    queued_at: datetime
    started_at: datetime
    completed_at: datetime
    steps: tuple[str, ...]
    conclusion: str = "success"
    failed_step: str = ""
    environment: Environment | None = None


def tell_github_run(
    story: Story,
    run: WorkflowRun,
    jobs: Iterable[JobPlan],
    *,
    sender: GitHubUser,
    pushed_at: datetime,
    why: str,
) -> None:
    """Tell a workflow run attempt: requested, in progress, its jobs, completed.

    The run starts with its first job and completes a few seconds after its last; it fails
    when a job fails.
    """
    jobs = sorted(jobs, key=lambda plan: plan.queued_at)
    name = f"{run.workflow.name} #{run.number}" + (
        f" (attempt {run.attempt})" if run.attempt > 1 else ""
    )
    requested_at = run.started_at or run.created_at
    started_at = min(plan.started_at for plan in jobs)
    completed_at = max(plan.completed_at for plan in jobs) + timedelta(seconds=6)
    failed = any(plan.conclusion == "failure" for plan in jobs)
    conclusion = "failure" if failed else "success"

    def run_event(action: str, status: str, at: datetime, outcome: str | None = None) -> None:
        payload = workflow_run_event(
            run,
            action,
            status=status,
            conclusion=outcome,
            updated_at=at,
            sender=sender,
            pushed_at=pushed_at,
        )
        summary = f"GitHub Actions: {name} {action}" + (f", {outcome}" if outcome else "")
        story.github(at, "workflow_run", payload, f"{summary} ({why})", run.id, run.attempt)

    run_event("requested", "queued", requested_at)
    run_event("in_progress", "in_progress", started_at)
    for plan in jobs:
        _tell_github_job(story, plan, sender=sender, pushed_at=pushed_at)
    run_event("completed", "completed", completed_at, conclusion)


def _tell_github_job(
    story: Story, plan: JobPlan, *, sender: GitHubUser, pushed_at: datetime
) -> None:
    job, run = plan.job, plan.job.run
    running = run.payload(status="in_progress", conclusion=None, updated_at=plan.started_at)
    deployment = (
        Deployment(
            job=job,
            id=plan.environment.deployment_id,
            environment=plan.environment.name,
            created_at=plan.queued_at + timedelta(seconds=1),
            creator=run.actor,
        )
        if plan.environment
        else None
    )

    def job_event(action: str, at: datetime, **state: Any) -> None:
        attached = (
            deployment.payload(updated_at=at) if deployment and action != "completed" else None
        )
        payload = workflow_job_event(
            job,
            action,
            job_payload=job.payload(created_at=plan.queued_at, **state),
            sender=sender,
            pushed_at=pushed_at,
            deployment=attached,
        )
        outcome = state.get("conclusion")
        summary = f"GitHub Actions: job {job.name} {action}" + (f", {outcome}" if outcome else "")
        story.github(at, "workflow_job", payload, summary, job.id, run.attempt)

    job_event(
        "queued",
        plan.queued_at,
        status="queued",
        conclusion=None,
        started_at=plan.queued_at,
        completed_at=None,
        steps=[],
    )
    if deployment and plan.environment:
        story.github(
            deployment.created_at,
            "deployment",
            deployment_event(deployment, run_payload=running, sender=sender, pushed_at=pushed_at),
            f"GitHub: deployment to {deployment.environment} created for {job.name}",
            deployment.id,
        )
    job_event(
        "in_progress",
        plan.started_at,
        status="in_progress",
        conclusion=None,
        started_at=plan.started_at,
        completed_at=None,
        steps=running_steps(plan.steps[0], plan.started_at),
    )
    job_event(
        "completed",
        plan.completed_at,
        status="completed",
        conclusion=plan.conclusion,
        started_at=plan.started_at,
        completed_at=plan.completed_at,
        steps=job_steps(
            list(plan.steps), plan.started_at, plan.completed_at, failed=plan.failed_step
        ),
    )
    if deployment and plan.environment:
        state = "success" if plan.conclusion == "success" else "failure"
        story.github(
            plan.completed_at,
            "deployment_status",
            deployment_status_event(
                deployment,
                status_id=plan.environment.status_id,
                state=state,
                at=plan.completed_at,
                environment_url=plan.environment.url,
                check_run=job.check_run_payload(
                    status="completed",
                    conclusion=plan.conclusion,
                    started_at=plan.started_at,
                    completed_at=plan.completed_at,
                ),
                run_payload=running,
                sender=sender,
                pushed_at=pushed_at,
            ),
            f"GitHub: deployment to {deployment.environment} {state} for {job.name}",
            plan.environment.status_id,
        )


# ----------------------------------------------------------------------------- CircleCI


@dataclass(frozen=True)
class CircleCIJob:
    """A job of a CircleCI workflow: the jobs it `requires:`, and how long it runs."""

    name: str
    requires: tuple[str, ...]
    duration: timedelta


def circleci_job(name: str, requires: Iterable[str], duration: str) -> CircleCIJob:
    """Return a job of a workflow graph; `duration` is minutes and seconds, "28:12"."""
    minutes, seconds = duration.split(":")
    return CircleCIJob(name, tuple(requires), timedelta(minutes=int(minutes), seconds=int(seconds)))


@dataclass(frozen=True)
class JobRun:
    """A job that ran, and how it ended."""

    name: str
    started_at: datetime
    stopped_at: datetime
    status: str


def run_graph(
    graph: Iterable[CircleCIJob],
    started_at: datetime,
    *,
    statuses: Mapping[str, str],
    only: Iterable[str] | None = None,
) -> list[JobRun]:
    """Return the jobs that ran, in the order they started.

    A job starts once every job it requires has succeeded; one whose requirement failed is
    blocked and never runs, and CircleCI sends nothing for it. `statuses` gives the jobs that
    did not succeed. `only` limits a rerun from failed to its jobs; the others it requires
    succeeded in the workflow before.
    """
    jobs = {job.name: job for job in graph}
    rerun = set(jobs) if only is None else set(only)
    runs: list[JobRun] = []
    ends: dict[str, datetime | None] = {}  # when each job succeeded; None: failed or blocked

    def end(name: str) -> datetime | None:
        if name not in rerun:
            return started_at  # succeeded before this rerun
        if name not in ends:
            requirements = [end(required) for required in jobs[name].requires]
            if None in requirements:
                ends[name] = None
            else:
                begin = max([started_at, *(m for m in requirements if m)]) + CIRCLECI_QUEUE
                run = JobRun(
                    name, begin, begin + jobs[name].duration, statuses.get(name, "success")
                )
                runs.append(run)
                ends[name] = run.stopped_at if run.status == "success" else None
        return ends[name]

    for name in jobs:
        end(name)
    return sorted(runs, key=lambda run: (run.started_at, run.name))


def tell_circleci_workflow(
    story: Story,
    workflow: CircleCIWorkflow,
    graph: Iterable[CircleCIJob],
    *,
    statuses: Mapping[str, str] | None = None,
    numbered: tuple[str, int],
    only: Iterable[str] | None = None,
    why: str,
) -> list[JobRun]:
    """Tell a workflow: a job-completed per job that ran, then workflow-completed.

    Job numbers count up in the order jobs started, `numbered` fixing one of them; the
    workflow fails if any job failed, and stops with its last job. Return the jobs that ran.
    """
    statuses = statuses or {}
    runs = run_graph(graph, workflow.created_at, statuses=statuses, only=only)
    anchor, anchor_number = numbered
    first_number = anchor_number - [run.name for run in runs].index(anchor)
    stopped_at = max(run.stopped_at for run in runs)
    for number, run in enumerate(runs, start=first_number):
        payload = job_completed_event(
            stable_id("circleci", "job-completed", workflow.id, run.name),
            workflow,
            job_id=stable_id("circleci", "job", workflow.id, run.name),
            name=run.name,
            number=number,
            status=run.status,
            started_at=run.started_at,
            stopped_at=run.stopped_at,
            happened_at=run.stopped_at + CIRCLECI_JOB_LAG,
            workflow_stopped_at=stopped_at if run.stopped_at == stopped_at else None,
        )
        summary = f"CircleCI: job {run.name} #{number} {run.status}"
        story.circleci(run.stopped_at + CIRCLECI_JOB_LAG, payload, summary)
    status = "failed" if any(run.status != "success" for run in runs) else "success"
    payload = workflow_completed_event(
        stable_id("circleci", "workflow-completed", workflow.id),
        workflow,
        status=status,
        stopped_at=stopped_at,
        happened_at=stopped_at + CIRCLECI_WORKFLOW_LAG,
    )
    summary = (
        f"CircleCI: workflow {workflow.name} of pipeline {workflow.pipeline.number} {status} "
        f"({why})"
    )
    story.circleci(stopped_at + CIRCLECI_WORKFLOW_LAG, payload, summary)
    return runs


def rerun_from_failed(graph: Iterable[CircleCIJob], failed: Iterable[str]) -> list[str]:
    """Return the jobs a rerun from failed runs: the failed ones and every job they blocked."""
    jobs = list(graph)
    again = set(failed)
    changed = True
    while changed:
        blocked = {job.name for job in jobs if again.intersection(job.requires)} - again
        again |= blocked
        changed = bool(blocked)
    return [job.name for job in jobs if job.name in again]
