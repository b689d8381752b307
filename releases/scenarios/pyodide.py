"""Pyodide 0.26.2, "The REPL is down" (July 2024), as the webhooks both CI platforms sent.

The demo, the tests and the benchmarks replay it. Names, ids, the job graph and the times of
the tag and the failure come from the public record (pyodide/pyodide at tag 0.26.2, issue
#4964; see /work/shared/scenarios/pyodide-0.26.2.md). Numeric ids, UUIDs, job durations and
minutes the record does not give are invented, and deterministic: a replay delivers the same
bytes, so a second replay records nothing new. Lines marked (inference) read the history; they
are not statements from the project.

    for step in release_0_26_2() + recovery():
        client.post(..., step.delivery(secret))
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from releases.scenarios.payloads import ZERO_SHA as NO_COMMIT
from releases.scenarios.payloads import (
    CircleCIPipeline,
    CircleCIProject,
    CircleCIWorkflow,
    Commit,
    GitHubOrganization,
    GitHubRepository,
    GitHubUser,
    Person,
    Workflow,
    WorkflowJob,
    WorkflowRun,
    create_event,
    push_event,
    release_event,
    tag_pipeline_vcs,
)
from releases.scenarios.story import (
    Environment,
    JobPlan,
    Step,
    Story,
    circleci_job,
    rerun_from_failed,
    stable_id,
    tell_circleci_workflow,
    tell_github_run,
)

TAG = "0.26.2"
SHA = "7e7cadb9cd3863d5bc5e5620532bea369a135552"
BRANCH = "0.26.X"


def utc(text: str) -> datetime:
    """Return a UTC moment written as "2024-07-26 13:54:52"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- who and what

HOODMANE = GitHubUser("hoodmane", 1550871)
RYANKING13 = GitHubUser("ryanking13", 24893111)
HOOD_CHATHAM = Person("Hood Chatham", "hoodmane@users.noreply.github.com", "hoodmane")

REPOSITORY = GitHubRepository(
    organization=GitHubOrganization(
        "pyodide", 41433011, "Python in the browser and Node.js, on WebAssembly"
    ),
    name="pyodide",
    id=122663163,
    description=(
        "Pyodide is a Python distribution for the browser and Node.js based on WebAssembly"
    ),
    homepage="https://pyodide.org/en/stable/",
    language="Python",
    license=("mpl-2.0", "Mozilla Public License 2.0", "MPL-2.0", "MDc6TGljZW5zZTE0"),
    created_at=utc("2018-02-23 22:35:29"),
    topics=("python", "webassembly", "emscripten", "scientific-computing", "browser"),
    stars=11934,
    forks=802,
    open_issues=421,
    size=62415,
)

# "Version 0.26.2", committed by Hood Chatham at 15:54:30 +0200 on branch 0.26.X.
VERSION_COMMIT = Commit(
    sha=SHA,
    tree="3a9d2f0c6e1b4a8d7f5c2e9b0a6d3f1c8e4b7a25",
    message="Version 0.26.2",
    at=datetime(2024, 7, 26, 15, 54, 30, tzinfo=timezone(timedelta(hours=2))),
    author=HOOD_CHATHAM,
    committer=HOOD_CHATHAM,
    modified=(
        "docs/project/changelog.md",
        "pyodide-build/pyodide_build/__init__.py",
        "src/js/version.ts",
        "src/py/pyodide/__init__.py",
    ),
)

# ----------------------------------------------------------------------------- the clock

TAG_PUSHED_AT = utc("2024-07-26 13:54:52")
RELEASE_PUBLISHED_AT = utc("2024-07-26 14:55:01")  # by hand, about an hour later (inference)
RERUN_AT = utc("2024-07-29 08:17:00")
# The repository's latest push on 29 July: PR #4967 "Increase duckdb test timeout" merged to
# main on the 28th (the minute is invented).
LATEST_PUSH_ON_29TH = utc("2024-07-28 13:02:41")

# ----------------------------------------------------------------------------- GitHub Actions

MAIN = Workflow(
    4270431,
    "main",
    ".github/workflows/main.yml",
    utc("2019-11-07 16:03:10"),
    utc("2024-06-11 08:14:52"),
)
DEPLOY_RELEASE = Workflow(
    36100813,
    "deploy-release",
    ".github/workflows/deploy_release.yml",
    utc("2022-09-22 09:41:27"),
    utc("2024-03-02 19:05:31"),
)
UPDATE_CROSS_BUILD = Workflow(
    82361170,
    "Update cross-build metadata file",
    ".github/workflows/update_cross_build_releases.yml",
    utc("2024-01-17 05:48:03"),
    utc("2024-05-30 11:26:44"),
)

# `main` runs on the tag push: head_branch is the tag's name, the event `push`.
MAIN_ON_TAG = WorkflowRun(
    repository=REPOSITORY,
    workflow=MAIN,
    id=10111856238,
    number=14872,
    event="push",
    head_branch=TAG,
    commit=VERSION_COMMIT,
    check_suite_id=26939516210,
    created_at=utc("2024-07-26 13:54:56"),
    actor=HOODMANE,
    display_title="Version 0.26.2",
)
# Both run on `release: published`, on the release's tag.
DEPLOY_RELEASE_RUN = WorkflowRun(
    repository=REPOSITORY,
    workflow=DEPLOY_RELEASE,
    id=10112687345,
    number=61,
    event="release",
    head_branch=TAG,
    commit=VERSION_COMMIT,
    check_suite_id=26941277718,
    created_at=utc("2024-07-26 14:55:04"),
    actor=HOODMANE,
    display_title=TAG,
)
UPDATE_CROSS_BUILD_RUN = replace(
    DEPLOY_RELEASE_RUN,
    workflow=UPDATE_CROSS_BUILD,
    id=10112687402,
    number=23,
    check_suite_id=26941277790,
)
UPDATE_CROSS_BUILD_RERUN = replace(
    UPDATE_CROSS_BUILD_RUN,
    attempt=2,
    started_at=utc("2024-07-29 09:02:10"),
    triggering_actor=RYANKING13,
)

CHECKOUT = ("Set up job", "Run actions/checkout@v4")
BUILD_STEPS = (*CHECKOUT, "Cache ccache output", "Install dependencies", "Build", "Store artifacts")
TEST_STEPS = (*CHECKOUT, "Download build artifacts", "Install test requirements", "Run tests")
PYPI_STEPS = (*CHECKOUT, "Run actions/setup-python@v5", "Build the package", "Publish to PyPI")
CROSS_BUILD_STEPS = (
    *CHECKOUT,
    "Download xbuildenv",
    "Update cross-build metadata",
    "Create Pull Request",
)


def _plan(
    run: WorkflowRun,
    job: tuple[int, str, int],
    times: tuple[str, str, str],
    steps: tuple[str, ...],
    *,
    conclusion: str = "success",
    failed_step: str = "",
    environment: Environment | None = None,
) -> JobPlan:
    """Return a job of `run`: (id, name, runner), (queued, started, completed) on its day."""
    job_id, name, runner = job
    day = (run.started_at or run.created_at).date().isoformat()
    queued, started, completed = (utc(f"{day} {time}") for time in times)
    return JobPlan(
        WorkflowJob(run=run, id=job_id, name=name, runner_id=runner),
        queued,
        started,
        completed,
        (*steps, "Complete job"),
        conclusion=conclusion,
        failed_step=failed_step,
        environment=environment,
    )


def main_jobs() -> list[JobPlan]:
    """Return the jobs of `main` on the tag: all of them pass."""
    python_steps = (*CHECKOUT, "Run actions/setup-python@v5", "Install requirements", "Run tests")
    return [
        _plan(MAIN_ON_TAG, (28043187950, "get_python_version", 3),
              ("13:54:58", "13:55:05", "13:55:31"), (*CHECKOUT, "Read the Python version")),
        _plan(MAIN_ON_TAG, (28043187951, "test-python", 8),
              ("13:55:33", "13:55:40", "14:03:12"), python_steps),
        _plan(MAIN_ON_TAG, (28043188001, "build-core (ubuntu-latest)", 21),
              ("13:55:33", "13:55:41", "14:17:48"), BUILD_STEPS),
        _plan(MAIN_ON_TAG, (28043188002, "build-core (macos-14)", 56),
              ("13:55:33", "13:55:44", "14:12:09"), BUILD_STEPS),
        _plan(MAIN_ON_TAG, (28043947380, "test-core", 37),
              ("14:18:02", "14:18:09", "14:30:55"), TEST_STEPS),
        _plan(MAIN_ON_TAG, (28043947381, "test-bun", 40),
              ("14:18:02", "14:18:10", "14:24:02"), TEST_STEPS),
        _plan(MAIN_ON_TAG, (28043947382, "test-deno", 44),
              ("14:18:02", "14:18:10", "14:25:37"), TEST_STEPS),
    ]  # fmt: skip


def deploy_release_jobs() -> list[JobPlan]:
    """Return the two PyPI jobs of `deploy-release`, environment PyPi: both ship."""
    return [
        _plan(DEPLOY_RELEASE_RUN, (28045931120, "deploy-pyodide-build-pypi", 14),
              ("14:55:09", "14:55:14", "14:57:48"), PYPI_STEPS,
              environment=Environment(
                  "PyPi", 1698447521, 3401778934, "https://pypi.org/p/pyodide-build")),
        _plan(DEPLOY_RELEASE_RUN, (28045931077, "deploy-pyodide-py-pypi", 12),
              ("14:55:09", "14:55:31", "14:58:02"), PYPI_STEPS,
              environment=Environment(
                  "PyPi", 1698447530, 3401779012, "https://pypi.org/p/pyodide-py")),
    ]  # fmt: skip


def update_cross_build_jobs(run: WorkflowRun) -> list[JobPlan]:
    """Return the one job of `Update cross-build metadata file`.

    It downloads xbuildenv-0.26.2.tar.bz2 from the GitHub release, which only CircleCI's
    deploy-release uploads: on 26 July there is nothing to download and the job fails; after
    the rerun has deployed, it passes and opens the pull request that became #4971, at 09:03
    (inference).
    """
    if run.attempt == 1:
        return [
            _plan(run, (28045931164, "update_cross_build_releases", 17),
                  ("14:55:09", "14:55:27", "14:55:58"), CROSS_BUILD_STEPS,
                  conclusion="failure", failed_step="Download xbuildenv"),
        ]  # fmt: skip
    return [
        _plan(run, (28163340517, "update_cross_build_releases", 19),
              ("09:02:12", "09:02:20", "09:03:30"), CROSS_BUILD_STEPS),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- CircleCI

PROJECT = CircleCIProject(
    slug="gh/pyodide/pyodide",
    id="e2b7c4d1-6a39-4f85-9c0e-3d8a1b5f7e26",
    name="pyodide",
    organization_id="a3f81c2d-0b67-4e94-8d5a-6c2e9f1b4a73",
    organization_name="pyodide",
    webhook_id="9b0f2c8e-5d41-4a7b-8e36-1f4c2a9d7b05",
    webhook_name="shiplog",
    repository_url=REPOSITORY.html_url,
)
# The tag's pipeline. Its vcs block has a null branch, null commit fields and no `tag` key:
# Shiplog joins it to the release by SHA.
TAG_PIPELINE = CircleCIPipeline(
    project=PROJECT,
    id=stable_id("circleci", "pipeline", PROJECT.slug, 7578),
    number=7578,
    created_at=utc("2024-07-26 13:54:55.642"),
    vcs=tag_pipeline_vcs(PROJECT, SHA),
)
BUILD_AND_DEPLOY_WORKFLOW = CircleCIWorkflow(
    TAG_PIPELINE,
    "403d102b-8063-48c2-a32c-bcede2efee93",
    "build-and-deploy",
    utc("2024-07-26 13:54:55.811"),
)
# A rerun from failed is a new workflow in the same pipeline.
RERUN_WORKFLOW = CircleCIWorkflow(
    TAG_PIPELINE,
    stable_id("circleci", "workflow", BUILD_AND_DEPLOY_WORKFLOW.id, "rerun-from-failed"),
    "build-and-deploy",
    RERUN_AT,
)

# `build-and-deploy` at tag 0.26.2: each job, the jobs it requires, how long it ran (mm:ss,
# invented). Every job runs on tags. The only tests that gate deploy-release are Firefox's.
BUILD_AND_DEPLOY = (
    circleci_job("check-release-version", [], "0:48"),
    circleci_job("build-core", [], "28:12"),
    circleci_job("build-core-nodylink", [], "26:40"),
    circleci_job("build-libraries", ["build-core"], "11:53"),
    circleci_job("build-packages-no-numpy-dependents", ["build-core", "build-libraries"], "34:37"),
    circleci_job("build-packages-opencv-python", ["build-packages-no-numpy-dependents"], "19:21"),
    circleci_job(
        "build-packages-numpy-dependents", ["build-packages-no-numpy-dependents"], "29:46"
    ),
    circleci_job(
        "build-packages",
        ["build-packages-numpy-dependents", "build-packages-opencv-python"],
        "5:58",
    ),
    circleci_job("test-core-chrome", ["build-core"], "13:42"),
    circleci_job("test-core-firefox", ["build-core"], "15:58"),
    circleci_job("test-core-node", ["build-core"], "9:37"),
    circleci_job("test-core-safari", ["build-core"], "18:04"),
    circleci_job("test-core-chrome-nodylink", ["build-core-nodylink"], "12:11"),
    circleci_job("test-core-firefox-nodylink", ["build-core-nodylink"], "13:26"),
    circleci_job("test-core-node-nodylink", ["build-core-nodylink"], "8:49"),
    circleci_job("test-core-chrome-webworker", ["test-core-chrome"], "7:55"),
    circleci_job("test-core-firefox-webworker", ["test-core-firefox"], "9:02"),
    *(
        circleci_job(
            f"test-packages-{browser}-no-numpy-dependents",
            ["build-packages-no-numpy-dependents"],
            duration,
        )
        for browser, duration in (
            ("chrome", "16:48"),
            ("firefox", "19:13"),
            ("node", "14:02"),
            ("safari", "21:30"),
        )
    ),
    *(
        circleci_job(
            f"test-packages-{browser}",
            [f"test-packages-{browser}-no-numpy-dependents", "build-packages"],
            duration,
        )
        for browser, duration in (
            ("chrome", "24:51"),
            ("firefox", "34:03"),
            ("node", "22:17"),
            ("safari", "29:40"),
        )
    ),
    circleci_job("test-js", ["build-core"], "4:51"),
    circleci_job("benchmark-stack-size", ["build-core"], "3:58"),
    circleci_job("benchmark", ["build-packages"], "12:20"),
    circleci_job("create-xbuild-env", ["build-packages"], "7:45"),
    circleci_job("test-cmdline-runner", ["build-packages"], "10:09"),
    circleci_job("build-pyodide-debug", ["build-packages"], "8:56"),
    circleci_job("build-test-pyc-packages", ["build-packages"], "6:37"),
    circleci_job(
        "deploy-release",
        [
            "check-release-version",
            "test-core-firefox",
            "test-packages-firefox",
            "build-pyodide-debug",
            "create-xbuild-env",
            "build-test-pyc-packages",
        ],
        "8:03",
    ),
)
# The project's real graph as a Shiplog policy: CircleCI's deploy-release requires every job
# its `requires:` names; GitHub Actions' deploy-release workflow deploys the PyPI half.
POLICY = """\
repository = "pyodide/pyodide"

[[deploy]]
platform = "circleci"
name = "deploy-release"
on = "tag"
requires = ["check-release-version", "test-core-firefox", "test-packages-firefox",
            "build-pyodide-debug", "create-xbuild-env", "build-test-pyc-packages"]

[[deploy]]
platform = "github"
name = "deploy-release"
on = "tag"
"""
# packages/duckdb/test_duckdb.py::test_duckdb_with_pandas[firefox] timed out in this job.
FAILED_JOB = "test-packages-firefox"
FAILED_JOB_NUMBER = 108413
BLOCKED_JOB = "deploy-release"


# ----------------------------------------------------------------------------- the story


def _shifted(steps: list[Step], shift: timedelta | None) -> list[Step]:
    return [step.shifted(shift) for step in steps] if shift else steps


def release_0_26_2(shift: timedelta | None = None) -> list[Step]:
    """Return the deliveries of 26 July 2024 in order: the tag, both CIs, the release.

    `shift` moves every moment of the story (the demo rebases it to end near now).
    """
    story = Story()

    # 13:54 UTC: hoodmane pushes the lightweight tag 0.26.2 onto "Version 0.26.2".
    story.github(
        TAG_PUSHED_AT,
        "push",
        push_event(
            REPOSITORY,
            ref=f"refs/tags/{TAG}",
            before=NO_COMMIT,
            after=SHA,
            base_ref=f"refs/heads/{BRANCH}",
            commits=[],
            head_commit=VERSION_COMMIT,
            pushed_at=TAG_PUSHED_AT,
            pusher=HOOD_CHATHAM,
            sender=HOODMANE,
        ),
        f"GitHub: tag {TAG} pushed on {SHA[:8]} ({BRANCH})",
        f"refs/tags/{TAG}",
    )
    story.github(
        TAG_PUSHED_AT,
        "create",
        create_event(REPOSITORY, ref=TAG, ref_type="tag", pushed_at=TAG_PUSHED_AT, sender=HOODMANE),
        f"GitHub: tag {TAG} created",
        TAG,
    )

    # GitHub Actions runs `main` on the tag push; it passes.
    tell_github_run(
        story,
        MAIN_ON_TAG,
        main_jobs(),
        sender=HOODMANE,
        pushed_at=TAG_PUSHED_AT,
        why=f"push of {TAG}",
    )

    # CircleCI runs build-and-deploy in tag pipeline 7578. The duckdb + pandas test times out
    # in Firefox, test-packages-firefox (job 108413) fails, and deploy-release, which requires
    # it, never runs. CircleCI reports terminal jobs only: nothing arrives for deploy-release,
    # and no tarballs, npm package or CDN files are published; the workflow fails.
    tell_circleci_workflow(
        story,
        BUILD_AND_DEPLOY_WORKFLOW,
        BUILD_AND_DEPLOY,
        statuses={FAILED_JOB: "failed"},
        numbered=(FAILED_JOB, FAILED_JOB_NUMBER),
        why=f"tag {TAG}",
    )

    # Meanwhile, about an hour after the tag, a maintainer publishes the GitHub release by
    # hand, as the release procedure says (inference: the record does not say who or when).
    story.github(
        RELEASE_PUBLISHED_AT,
        "release",
        release_event(
            REPOSITORY,
            "published",
            id=167613458,
            tag=TAG,
            target_commitish="main",
            created_at=VERSION_COMMIT.at,
            published_at=RELEASE_PUBLISHED_AT,
            author=HOODMANE,
            body="See the [changelog](https://pyodide.org/en/stable/project/changelog.html).",
            pushed_at=TAG_PUSHED_AT,
        ),
        f"GitHub: release {TAG} published by hand",
        167613458,
    )
    # The release starts GitHub Actions' deploy-release, which ships both PyPI packages
    # whether or not CircleCI deploys: half of the release goes out.
    tell_github_run(
        story,
        DEPLOY_RELEASE_RUN,
        deploy_release_jobs(),
        sender=HOODMANE,
        pushed_at=TAG_PUSHED_AT,
        why=f"release {TAG} published",
    )
    # And `Update cross-build metadata file`, which finds no xbuildenv to download.
    tell_github_run(
        story,
        UPDATE_CROSS_BUILD_RUN,
        update_cross_build_jobs(UPDATE_CROSS_BUILD_RUN),
        sender=HOODMANE,
        pushed_at=TAG_PUSHED_AT,
        why=f"release {TAG} published",
    )
    return _shifted(story.steps(), shift)


def recovery(shift: timedelta | None = None) -> list[Step]:
    """Return the deliveries of 29 July 2024 in order: the rerun that deployed 0.26.2.

    `shift` moves every moment of the story, as for `release_0_26_2`.
    """
    story = Story()

    # ~08:17 UTC: a rerun from failed of build-and-deploy, in the same pipeline 7578 under a
    # new workflow id. test-packages-firefox passes this time and deploy-release runs: the
    # release tarballs, npm and the CDN files appear, and the REPL works again (inference:
    # the record bounds the restoration by 09:03 the same day).
    tell_circleci_workflow(
        story,
        RERUN_WORKFLOW,
        BUILD_AND_DEPLOY,
        only=rerun_from_failed(BUILD_AND_DEPLOY, [FAILED_JOB]),
        numbered=(FAILED_JOB, 108652),
        why="rerun from failed",
    )
    # 09:02: ryanking13 re-runs `Update cross-build metadata file`; the asset exists now, and
    # the job opens the pull request that becomes #4971 (inference).
    tell_github_run(
        story,
        UPDATE_CROSS_BUILD_RERUN,
        update_cross_build_jobs(UPDATE_CROSS_BUILD_RERUN),
        sender=RYANKING13,
        pushed_at=LATEST_PUSH_ON_29TH,
        why="re-run after the deploy",
    )
    return _shifted(story.steps(), shift)


def the_whole_story(shift: timedelta | None = None) -> list[Step]:
    """Return every delivery of the incident, from the tag to the recovery."""
    return release_0_26_2(shift) + recovery(shift)


def shift_to_end_at(moment: datetime) -> timedelta:
    """Return the shift that makes the story's last delivery happen at `moment`, to the minute."""
    last = recovery()[-1].at
    return (moment - last).total_seconds() // 60 * timedelta(minutes=1)
