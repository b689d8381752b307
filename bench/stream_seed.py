"""Seed a scratch stream with many releases of real-shaped deliveries, fast, chain intact.

Each release is 50 deliveries built from the recorded fixtures in `tests/fixtures/`: GitHub's
tag push, `workflow_run` (requested, in_progress, completed) and eight `workflow_job`s
(queued, in_progress, completed), and CircleCI's `job-completed` for 21 jobs and its
`workflow-completed`. Every tenth release has a CircleCI test fail, so its deploy never runs
(blocked, half deployed: detection has work to do).

Normalising a million bodies would take minutes, so each of the 50 deliveries is normalised
once, as a template whose per-release values (ids, tag, commit, date) carry a marker; a
release's rows are the templates with the marker and the date replaced, in the body and in
the normalised fields alike. `check_sample` normalises a sample of the seeded bodies with the
real normalisers and compares, so a template that drifts from its body cannot go unnoticed.
Rows go in with COPY, their hashes chained by `releases.stream.row_hash`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
REPOSITORY = "pyodide/pyodide"
EVENTS_PER_RELEASE = 50
MARK = "42424242"
# The tag and commit carry a marker of their own, so that many copies can share one release.
REF_MARK = "53535353"
FIRST_DAY = date(2021, 1, 4)
FIXTURE_DAY = "2024-07-26T"
# The tag push's `repository.pushed_at` is epoch seconds (GitHub's push payloads say so).
FIXTURE_PUSHED_AT = 1722002092
RELEASES_PER_DAY = 20
# Releases in flight together: their deliveries interleave in the stream.
INTERLEAVE = 8
HOOK_ID = "421337"
GITHUB_JOBS = [
    "build-core",
    "build-packages",
    "test-core-chrome",
    "test-core-firefox",
    "test-packages-chrome",
    "test-packages-node",
    "build-docs",
    "deploy-pypi",
]
CIRCLECI_JOBS = [
    *(f"build-{n}" for n in ("core", "packages", "debug", "xbuild-env", "pyc", "docs")),
    *(f"test-{n}" for n in ("core-chrome", "core-firefox", "core-node", "core-safari")),
    *(f"test-packages-{n}" for n in ("chrome", "firefox", "node", "safari")),
    *(f"test-{n}" for n in ("pyodide-py", "cli", "wheels", "lockfile", "tsc", "version")),
    "deploy-release",
]
FAILING_JOB = "test-packages-firefox"
POLICY = f"""
repository = "{REPOSITORY}"

[[deploy]]
platform = "circleci"
name = "deploy-release"
on = "tag"

[[deploy]]
platform = "github"
name = "deploy-pypi"
on = "tag"
"""


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((FIXTURES / name).read_bytes())
    return loaded


def _num(slot: int, part: int = 0) -> int:
    """Return a per-release numeric id: the marker, then the slot; the marker is replaced."""
    return int(f"{MARK}{slot:02d}{part}")


def _uuid(slot: int, part: int = 0) -> str:
    return f"{MARK}-{slot:04d}-4{part:03d}-8000-000000000000"


TAG = f"v{REF_MARK}"
SHA = REF_MARK + "f" * 32


@dataclass(frozen=True)
class Template:
    """One delivery of a release, with the marker where per-release values go."""

    slot: int
    source: str
    event_type: str
    delivery_key: str
    headers: bytes  # canonical JSON
    body: bytes
    data: bytes  # canonical JSON of the normalised fields
    sha: str
    branch: str
    tag: str
    occurred_at: datetime
    recognition: str


def _github_headers(event: str, slot: int) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": _uuid(slot, 1),
        "X-GitHub-Hook-ID": HOOK_ID,
        "User-Agent": "GitHub-Hookshot/5c5b3c1",
        "Content-Type": "application/json",
    }


def _circleci_headers(event: str) -> dict[str, str]:
    return {
        "circleci-event-type": event,
        "User-Agent": "CircleCI-Webhook/1.0",
        "Content-Type": "application/json",
    }


def _tag_push() -> dict[str, Any]:
    body = _fixture("github/push.tag_created.json")
    body["ref"] = f"refs/tags/{TAG}"
    body["after"] = SHA
    body["head_commit"]["id"] = SHA
    return body


def _run(status_file: str, slot: int) -> dict[str, Any]:
    body = _fixture(f"github/workflow_run.{status_file}.json")
    run = body["workflow_run"]
    run.update(
        id=_num(90),
        name="ci",
        head_branch=TAG,
        head_sha=SHA,
        run_number=_num(91),
        check_suite_id=_num(92),
        event="push",
    )
    run["head_commit"]["id"] = SHA
    run["url"] = f"https://api.github.com/repos/{REPOSITORY}/actions/runs/{_num(90)}"
    run["html_url"] = f"https://github.com/{REPOSITORY}/actions/runs/{_num(90)}"
    body["workflow"]["name"] = "ci"
    return body


def _job(status_file: str, index: int) -> dict[str, Any]:
    body = _fixture(f"github/workflow_job.{status_file}.json")
    job = body["workflow_job"]
    job_id = _num(60 + index)
    job.update(
        id=job_id,
        run_id=_num(90),
        workflow_name="ci",
        head_branch=TAG,
        head_sha=SHA,
        name=GITHUB_JOBS[index],
        url=f"https://api.github.com/repos/{REPOSITORY}/actions/jobs/{job_id}",
        html_url=f"https://github.com/{REPOSITORY}/actions/runs/{_num(90)}/job/{job_id}",
    )
    job["run_url"] = f"https://api.github.com/repos/{REPOSITORY}/actions/runs/{_num(90)}"
    return body


def _cci(body: dict[str, Any], delivery: int) -> dict[str, Any]:
    body["id"] = _uuid(delivery, 2)
    body["pipeline"]["id"] = _uuid(0, 3)
    body["pipeline"]["number"] = _num(93)
    body["pipeline"]["vcs"]["revision"] = SHA
    body["workflow"]["id"] = _uuid(0, 4)
    body["workflow"]["url"] = (
        f"https://app.circleci.com/pipelines/github/{REPOSITORY}/{_num(93)}/workflows/{_uuid(0, 4)}"
    )
    return body


def _cci_job(index: int, name: str, failed: bool) -> dict[str, Any]:
    body = _cci(_fixture("circleci/job-completed.tag.json"), 30 + index)
    body["job"].update(
        id=_uuid(30 + index, 5),
        name=name,
        status="failed" if failed else "success",
        number=_num(30 + index, 6),
    )
    return body


def _cci_workflow(failed: bool) -> dict[str, Any]:
    body = _cci(_fixture("circleci/workflow-completed.tag.json"), 70)
    body["workflow"]["status"] = "failed" if failed else "success"
    return body


def _deliveries(failing: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """Return one release's 50 deliveries as (source, event header, body)."""
    out: list[tuple[str, str, dict[str, Any]]] = [("github", "push", _tag_push())]
    for status in ("requested", "in_progress", "completed"):
        out.append(("github", "workflow_run", _run(status, 0)))
    for index in range(len(GITHUB_JOBS)):
        for status in ("queued", "in_progress", "completed.success"):
            out.append(("github", "workflow_job", _job(status, index)))
    for index, name in enumerate(CIRCLECI_JOBS):
        if failing and name == "deploy-release":
            # The deploy never runs, so CircleCI never reports it; another job takes its slot.
            name = "test-lint"
        out.append(
            ("circleci", "job-completed", _cci_job(index, name, failing and name == FAILING_JOB))
        )
    out.append(("circleci", "workflow-completed", _cci_workflow(failing)))
    assert len(out) == EVENTS_PER_RELEASE
    return out


def templates(*, failing: bool) -> list[Template]:
    """Return the 50 templates of one release, normalised once by the real normalisers."""
    from releases.ingest import NORMALISERS
    from releases.stream import canonical_json

    made: list[Template] = []
    for slot, (source, event, payload) in enumerate(_deliveries(failing)):
        body = orjson.dumps(payload)
        normalised = NORMALISERS[source].normalise(event, orjson.loads(body))
        data = normalised.as_data()
        data["repository"] = normalised.repository or REPOSITORY
        if source == "github":
            headers = _github_headers(event, slot)
            key = f"github:{HOOK_ID}:{headers['X-GitHub-Delivery']}"
        else:
            headers = _circleci_headers(event)
            key = f"circleci:{payload['id']}"
        assert normalised.occurred_at is not None
        made.append(
            Template(
                slot=slot,
                source=source,
                event_type=normalised.event_type,
                delivery_key=key,
                headers=canonical_json(headers),
                body=body,
                data=canonical_json(data),
                sha=normalised.sha,
                branch=normalised.branch,
                tag=normalised.tag,
                occurred_at=normalised.occurred_at,
                recognition="recognised",
            )
        )
    return made


@dataclass
class Row:
    """One stream row ready for COPY, JSON columns as canonical text."""

    position: int
    event_id: uuid.UUID
    source: str
    event_type: str
    repository: str
    sha: str
    branch: str
    tag: str
    occurred_at: datetime
    recorded_at: datetime
    delivery_key: str
    headers: bytes
    body: bytes
    data: bytes
    recognition: str
    prev_hash: str = ""
    hash: str = ""


def _release_value(number: int) -> str:
    return str(10_000_000 + number)


def release_rows(
    number: int,
    template: list[Template],
    day_shift: timedelta,
    new_day: str,
    *,
    ref_number: int | None = None,
) -> list[tuple[datetime, int, Template, Row]]:
    """Return one copy's rows (positions not yet given), keyed for interleaving.

    The copy's ids come from `number`; its tag and commit from `ref_number` (default: the
    same), so copies with one `ref_number` are reruns within one release.
    """
    from releases.stream import event_id_for

    value = _release_value(number)
    ref = _release_value(number if ref_number is None else ref_number)
    mark, new_mark = MARK.encode(), value.encode()
    ref_mark, new_ref = REF_MARK.encode(), ref.encode()
    old_day, day = FIXTURE_DAY.encode(), new_day.encode()
    old_epoch = b'"pushed_at":%d' % FIXTURE_PUSHED_AT
    epoch = b'"pushed_at":%d' % (FIXTURE_PUSHED_AT + int(day_shift.total_seconds()))
    rows = []
    for t in template:
        occurred = t.occurred_at + day_shift
        key = t.delivery_key.replace(MARK, value)
        text_fields = [
            getattr(t, name).replace(MARK, value).replace(REF_MARK, ref)
            for name in ("sha", "branch", "tag")
        ]
        rows.append(
            (
                occurred,
                t.slot,
                t,
                Row(
                    position=0,
                    event_id=event_id_for(key),
                    source=t.source,
                    event_type=t.event_type,
                    repository=REPOSITORY,
                    sha=text_fields[0],
                    branch=text_fields[1],
                    tag=text_fields[2],
                    occurred_at=occurred,
                    recorded_at=occurred + timedelta(seconds=1),
                    delivery_key=key,
                    headers=t.headers.replace(mark, new_mark),
                    body=t.body.replace(mark, new_mark)
                    .replace(ref_mark, new_ref)
                    .replace(old_day, day)
                    .replace(old_epoch, epoch),
                    data=t.data.replace(mark, new_mark)
                    .replace(ref_mark, new_ref)
                    .replace(old_day, day),
                    recognition=t.recognition,
                ),
            )
        )
    return rows


def generate(
    releases: int, *, first: int = 0, seed: int = 7, one_release: bool = False
) -> Iterator[Row]:
    """Yield the rows of `releases` releases in stream order (positions and hashes unset).

    Releases `first`.. `first + releases - 1`; INTERLEAVE of them at a time are in flight,
    their deliveries merged by the platforms' clocks, a few swapped out of order. With
    `one_release`, they are all copies (reruns) within release `first`, on its day, and the
    test fails in every one of them.
    """
    rng = random.Random(seed + first)
    normal, failing = templates(failing=False), templates(failing=True)
    fixture_day = datetime.fromisoformat(FIXTURE_DAY + "00:00:00+00:00")
    for start in range(first, first + releases, INTERLEAVE):
        group: list[tuple[datetime, int, Template, Row]] = []
        for number in range(start, min(start + INTERLEAVE, first + releases)):
            day = datetime.combine(
                FIRST_DAY + timedelta(days=(first if one_release else number) // RELEASES_PER_DAY),
                datetime.min.time(),
                UTC,
            )
            # Whole days only: the body's clocks move by replacing their date.
            shift = day - fixture_day
            rows = release_rows(
                number,
                failing if number % 10 == 9 or one_release else normal,
                shift,
                day.strftime("%Y-%m-%dT"),
                ref_number=first if one_release else None,
            )
            group.extend(rows)
        group.sort(key=lambda item: (item[0], item[1]))
        ordered = [item[3] for item in group]
        # Webhooks arrive out of order: swap a few neighbours (a `completed` before its
        # `in_progress`, a job before its run).
        for _ in range(len(ordered) // 25):
            i = rng.randrange(len(ordered) - 1)
            ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
        yield from ordered


def chain(rows: Iterator[Row], *, after_position: int, after_hash: str) -> Iterator[Row]:
    """Give rows positions after `after_position` and chain their hashes with `row_hash`."""
    from releases.stream import row_hash

    prev = after_hash
    position = after_position
    for row in rows:
        position += 1
        row.position = position
        row.prev_hash = prev
        row.hash = row_hash(prev, row.__dict__)
        prev = row.hash
        yield row


COLUMNS = (
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
    "delivery_key",
    "headers",
    "body",
    "data",
    "recognition",
    "prev_hash",
    "hash",
)


def copy_rows(conn: Any, releases: int, *, first: int = 0, one_release: bool = False) -> int:
    """Append `releases` releases to the stream with COPY; return the rows written.

    `conn` is a psycopg connection. The chain continues from the stream's last row, and the
    position sequence is moved past the last position, so later appends carry on from it.
    """
    with conn.cursor() as cursor:
        cursor.execute("SELECT position, hash FROM shiplog_stream ORDER BY position DESC LIMIT 1")
        head = cursor.fetchone()
        from releases.stream import GENESIS_HASH

        last, last_hash = (head[0], head[1]) if head else (0, GENESIS_HASH)
        written = 0
        with cursor.copy(f"COPY shiplog_stream ({', '.join(COLUMNS)}) FROM STDIN") as copy_:
            rows = generate(releases, first=first, one_release=one_release)
            for row in chain(rows, after_position=last, after_hash=last_hash):
                copy_.write_row(
                    (
                        row.position,
                        row.event_id,
                        row.source,
                        row.event_type,
                        row.repository,
                        row.sha,
                        row.branch,
                        row.tag,
                        row.occurred_at,
                        row.recorded_at,
                        row.delivery_key,
                        row.headers.decode(),
                        row.body,
                        row.data.decode(),
                        row.recognition,
                        row.prev_hash,
                        row.hash,
                    )
                )
                written += 1
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('shiplog_stream', 'position'), "
            "(SELECT max(position) FROM shiplog_stream))"
        )
    conn.commit()
    return written


def check_sample(positions: list[int]) -> list[str]:
    """Return the problems found normalising these seeded rows' bodies (empty: none).

    Runs inside Django: each body goes through the real normaliser, as a webhook would, and
    must give the seeded row's normalised fields, commit, branch, tag and clock.
    """
    from releases.ingest import NORMALISERS
    from releases.models import StreamEvent

    problems: list[str] = []
    for event in StreamEvent.objects.filter(position__in=positions):
        event_name = event.headers.get("X-GitHub-Event") or event.headers["circleci-event-type"]
        normalised = NORMALISERS[event.source].normalise(
            event_name, orjson.loads(bytes(event.body))
        )
        data = normalised.as_data()
        data["repository"] = normalised.repository or REPOSITORY
        if orjson.loads(orjson.dumps(data)) != event.data:
            problems.append(f"{event.position}: data differs from the body's normalisation")
        if (normalised.sha, normalised.branch, normalised.tag) != (
            event.sha,
            event.branch,
            event.tag,
        ):
            problems.append(f"{event.position}: sha/branch/tag differ")
        if normalised.occurred_at != event.occurred_at:
            problems.append(f"{event.position}: occurred_at differs")
    return problems


def sample_positions(total: int, count: int = 200, seed: int = 3) -> list[int]:
    """Return `count` positions spread over 1..total."""
    rng = random.Random(seed)
    return sorted(rng.sample(range(1, total + 1), min(count, total)))
