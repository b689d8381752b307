"""The soak's workload: many releases across a few repositories, told as signed deliveries.

Each release is a tag push, GitHub Actions' `main` run on the tag and its `deploy-release` run
(which ships the PyPI half, with a deployment), and CircleCI's `build-and-deploy` workflow
(build, test-core, test-browser, deploy). In every fifth release the advisory `test-browser`
fails, CircleCI's `deploy` never runs, the release is blocked, and the repository's retry
policy makes Shiplog rerun the workflow from failed through the (fake) CircleCI API: the
Pyodide 0.26.2 story, many times over.

Deliveries are built with the scenario builders (`releases.scenarios`), so every body has the
shape the platforms document and the same seed always gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from releases.deliveries import Delivery
from releases.scenarios import pyodide
from releases.scenarios.payloads import (
    ZERO_SHA,
    CircleCIPipeline,
    CircleCIWorkflow,
    GitHubOrganization,
    WorkflowJob,
    push_event,
    tag_pipeline_vcs,
)
from releases.scenarios.story import (
    Environment,
    JobPlan,
    Step,
    Story,
    circleci_job,
    stable_id,
    tell_circleci_workflow,
    tell_github_run,
)

OWNER = "chaos"
NAMES = ("alpha", "beta", "gamma", "delta")
REDELIVERED_SHARE = 0.10
OUT_OF_ORDER_SHARE = 0.05
BLOCKED_EVERY = 5  # one release in five is blocked by its advisory browser test
GRAPH = (
    circleci_job("build", [], "6:10"),
    circleci_job("test-core", ["build"], "9:30"),
    circleci_job("test-browser", ["build"], "12:40"),
    circleci_job("deploy", ["build", "test-core", "test-browser"], "3:05"),
)
ADVISORY_JOB = "test-browser"
CHECKOUT = ("Set up job", "Run actions/checkout@v4")


def repositories() -> list[str]:
    """Return the repositories the soak registers."""
    return [f"{OWNER}/{name}" for name in NAMES]


def hook_id(repository: str) -> int:
    """Return the GitHub hook id of a repository (one hook per repository)."""
    return 710_000 + repositories().index(repository)


def policy(repository: str) -> str:
    """Return the deploy policy of a soak repository: the browser test advisory, retry on."""
    return f"""\
repository = "{repository}"

[jobs]
core = []
advisory = ["{ADVISORY_JOB}"]

[[deploy]]
platform = "circleci"
name = "deploy"
on = "tag"
requires = ["build", "test-core", "{ADVISORY_JOB}"]

[[deploy]]
platform = "github"
name = "deploy-release"
on = "tag"

[retry]
enabled = true
max_attempts = 2
"""


@dataclass(frozen=True)
class Item:
    """One delivery to send: its dedupe key, the signed request, and why it is in the run."""

    key: str  # Shiplog's delivery key: "github:<hook>:<id>" or "circleci:<body id>"
    delivery: Delivery
    kind: str  # "original", "redelivery" or "late" (sent out of order)


@dataclass(frozen=True)
class Workload:
    """The deliveries in the order the senders take them, and what they should lead to."""

    items: list[Item]
    releases: int
    blocked_workflows: list[str]  # the CircleCI workflows Shiplog should rerun from failed

    @property
    def unique(self) -> int:
        """Return how many distinct deliveries the run sends."""
        return len({item.key for item in self.items})


def _release_steps(repository: str, number: int, tagged_at: datetime, *, blocked: bool):
    """Return the steps of one release, and its CircleCI workflow id."""
    owner, name = repository.split("/")
    index = NAMES.index(name)
    repo = replace(
        pyodide.REPOSITORY,
        organization=GitHubOrganization(owner, 9_100_000, "Shiplog's soak"),
        name=name,
        id=9_200_000 + index,
    )
    tag = f"1.{number // 100}.{number % 100}"
    sha = stable_id("sha", repository, tag).replace("-", "")[:32] + f"{number:08x}"
    commit = replace(pyodide.VERSION_COMMIT, sha=sha, message=f"Version {tag}", at=tagged_at)
    serial = index * 1_000_000 + number  # unique across the run: ids derive from it
    story = Story()
    story.github(
        tagged_at,
        "push",
        push_event(
            repo,
            ref=f"refs/tags/{tag}",
            before=ZERO_SHA,
            after=sha,
            base_ref="refs/heads/main",
            commits=[],
            head_commit=commit,
            pushed_at=tagged_at,
            pusher=pyodide.HOOD_CHATHAM,
            sender=pyodide.HOODMANE,
        ),
        f"GitHub: tag {tag} pushed on {repository}",
        repository,
        f"refs/tags/{tag}",
    )
    main_run = replace(
        pyodide.MAIN_ON_TAG,
        repository=repo,
        id=20_000_000_000 + serial * 10,
        number=number,
        head_branch=tag,
        commit=commit,
        check_suite_id=30_000_000_000 + serial * 10,
        created_at=tagged_at + timedelta(seconds=4),
        display_title=f"Version {tag}",
    )
    deploy_run = replace(
        pyodide.DEPLOY_RELEASE_RUN,
        repository=repo,
        id=main_run.id + 1,
        number=number,
        head_branch=tag,
        commit=commit,
        check_suite_id=main_run.check_suite_id + 1,
        created_at=tagged_at + timedelta(minutes=30),
        display_title=tag,
    )

    def plan(run, job_id, job_name, start, minutes, steps, environment=None) -> JobPlan:
        begin = run.created_at + timedelta(seconds=start)
        return JobPlan(
            WorkflowJob(run=run, id=job_id, name=job_name, runner_id=7),
            begin - timedelta(seconds=3),
            begin,
            begin + timedelta(minutes=minutes),
            (*steps, "Complete job"),
            environment=environment,
        )

    job_base = 40_000_000_000 + serial * 10
    tell_github_run(
        story,
        main_run,
        [
            plan(main_run, job_base, "test-python", 5, 7, (*CHECKOUT, "Run tests")),
            plan(main_run, job_base + 1, "build-core", 6, 12, (*CHECKOUT, "Build")),
        ],
        sender=pyodide.HOODMANE,
        pushed_at=tagged_at,
        why=f"push of {tag}",
    )
    environment = Environment(
        "PyPi", 50_000_000 + serial, 60_000_000 + serial, f"https://pypi.org/p/{name}"
    )
    tell_github_run(
        story,
        deploy_run,
        [
            plan(
                deploy_run,
                job_base + 2,
                "deploy-pypi",
                5,
                3,
                (*CHECKOUT, "Publish to PyPI"),
                environment,
            )
        ],
        sender=pyodide.HOODMANE,
        pushed_at=tagged_at,
        why=f"release {tag}",
    )
    project = replace(
        pyodide.PROJECT,
        slug=f"gh/{repository}",
        id=stable_id("circleci", "project", repository),
        name=name,
        organization_name=owner,
        repository_url=repo.html_url,
    )
    pipeline = CircleCIPipeline(
        project=project,
        id=stable_id("circleci", "pipeline", repository, tag),
        number=number,
        created_at=tagged_at + timedelta(seconds=3),
        vcs=tag_pipeline_vcs(project, sha),
    )
    workflow = CircleCIWorkflow(
        pipeline,
        stable_id("circleci", "workflow", repository, tag),
        "build-and-deploy",
        tagged_at + timedelta(seconds=4),
    )
    tell_circleci_workflow(
        story,
        workflow,
        GRAPH,
        statuses={ADVISORY_JOB: "failed"} if blocked else {},
        numbered=("build", 100_000 + number * 10),
        why=f"tag {tag}",
    )
    return story.steps(), workflow.id


def _item(step: Step, secrets: dict[tuple[str, str], str], repository: str, kind: str) -> Item:
    secret = secrets[(repository, step.platform)]
    if step.platform == "github":
        hook = hook_id(repository)
        return Item(f"github:{hook}:{step.delivery_id}", step.delivery(secret, hook_id=hook), kind)
    return Item(f"circleci:{step.delivery_id}", step.delivery(secret), kind)


def build(
    total: int, secrets: dict[tuple[str, str], str], *, now: datetime, seed: int = 8
) -> Workload:
    """Return `total` deliveries: 85% once in order, 5% late, 10% redeliveries of earlier ones.

    `secrets` maps (repository, platform) to the signing secret. Releases are spread over the
    six hours before `now`, so every failure is in the past when Shiplog decides on a rerun.
    """
    rng = random.Random(seed)
    redeliveries = round(total * REDELIVERED_SHARE)
    wanted = total - redeliveries
    per_release = 22  # about: tag push, two GitHub runs with their jobs, one CircleCI workflow
    count = wanted // per_release + 1
    names = repositories()
    start = now - timedelta(hours=6)
    spacing = timedelta(hours=5) / count
    timed: list[tuple[datetime, int, Step, str]] = []
    blocked_workflows: dict[int, str] = {}
    for number in range(count):
        repository = names[number % len(names)]
        blocked = number % BLOCKED_EVERY == BLOCKED_EVERY - 1
        steps, workflow_id = _release_steps(
            repository, number, start + spacing * number, blocked=blocked
        )
        if blocked:
            blocked_workflows[number] = workflow_id
        timed.extend((step.at, number, step, repository) for step in steps)
    timed.sort(key=lambda row: (row[0], row[1]))
    timed = timed[:wanted]
    releases = {number for _, number, _, _ in timed}
    # A blocked release counts only if its workflow's end made the cut.
    finished = {number for _, number, step, _ in timed if step.event_type == "workflow-completed"}
    originals = [_item(step, secrets, repository, "original") for _, _, step, repository in timed]

    # Late: a delivery held back and sent some way after the ones that followed it.
    order = list(originals)
    late = rng.sample(range(len(order)), round(total * OUT_OF_ORDER_SHARE))
    for index in sorted(late, reverse=True):
        item = order.pop(index)
        order.insert(min(len(order), index + rng.randint(50, 2000)), replace(item, kind="late"))
    # Redeliveries: the same delivery (id and bytes) again, some time after the first.
    for _ in range(redeliveries):
        index = rng.randrange(len(order))
        item = order[index]
        order.insert(
            min(len(order), index + rng.randint(1, 3000)), replace(item, kind="redelivery")
        )
    return Workload(
        items=order,
        releases=len(releases),
        blocked_workflows=[wid for number, wid in blocked_workflows.items() if number in finished],
    )
