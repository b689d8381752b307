"""The demo: Pyodide 0.26.2 replayed through the real webhook endpoints of a running Shiplog.

`demo_prepare` registers pyodide/pyodide with signing secrets and the project's policy and
makes a demo maintainer; `demo_replay` posts the scenario's signed deliveries over HTTP, with
the story rebased to end now and its gaps shortened by a speed factor. Everything is
idempotent: a second run adds no repository, no secret, no user and no event.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from releases import projector, selectors, services, tokens
from releases.access import MAINTAINERS
from releases.deliveries import Delivery
from releases.models import DeployPolicy
from releases.scenarios.pyodide import POLICY, recovery, release_0_26_2, shift_to_end_at
from releases.scenarios.story import Step

REPOSITORY = "pyodide/pyodide"
DEMO_USERNAME = "demo"
# Only with DEBUG (the local settings): a newcomer's first login should not need the console.
DEMO_PASSWORD = "shiplog-demo"  # noqa: S105 - documented, local-only
DEFAULT_SPEED = 120.0
MAX_PAUSE_SECONDS = 8.0
GITHUB_HOOK_ID = 421_337  # what `releases.deliveries.github_delivery` signs with by default


@dataclass(frozen=True)
class DemoSetup:
    """What the demo needs to post, and the credentials to print."""

    username: str
    password: str | None  # None: the user existed and its password was left alone
    secrets: dict[str, str]


def demo_prepare(*, debug: bool) -> DemoSetup:
    """Register the demo repository, its secrets and policy, and the demo maintainer."""
    with transaction.atomic():
        repository = services.repository_create(full_name=REPOSITORY)
        signing: dict[str, str] = {}
        for platform in ("github", "circleci"):
            own = [
                secret
                for secret, owner in selectors.webhook_secret_candidates(
                    platform=platform, repository=REPOSITORY
                )
                if owner == REPOSITORY
            ]
            if own:
                signing[platform] = own[0]
                continue
            signing[platform] = tokens.new_webhook_secret()
            services.webhook_secret_add(
                repository=repository, platform=platform, secret=signing[platform], label="demo"
            )
    if not DeployPolicy.objects.filter(repository=repository).exists():
        services.policy_set(repository=repository, document=POLICY, actor="demo")
    username, password = demo_maintainer_ensure(debug=debug)
    return DemoSetup(username=username, password=password, secrets=signing)


def demo_maintainer_ensure(*, debug: bool) -> tuple[str, str | None]:
    """Create the demo maintainer; return its name and password if this call set one.

    With DEBUG its password is always the documented one; otherwise a new user gets a random
    password, printed once, and an existing user's password is never changed.
    """
    users = get_user_model()
    group, _ = Group.objects.get_or_create(name=MAINTAINERS)
    user, created = users.objects.get_or_create(username=DEMO_USERNAME)
    password: str | None = None
    if debug:
        password = DEMO_PASSWORD
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
    elif created:
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
    user.groups.add(group)
    return DEMO_USERNAME, password


def demo_acts(*, now: datetime) -> list[list[Step]]:
    """Return the Pyodide story in two acts, 26 and 29 July, rebased to end at `now`."""
    shift = shift_to_end_at(now)
    return [release_0_26_2(shift), recovery(shift)]


def delivery_key(step: Step) -> str:
    """Return the key the stream files a step's delivery under."""
    if step.platform == "github":
        return f"github:{GITHUB_HOOK_ID}:{step.delivery_id}"
    return f"circleci:{step.payload['id']}"


def demo_loaded(acts: Sequence[Sequence[Step]]) -> bool:
    """Return whether every delivery of the demo is already in the stream."""
    keys = {delivery_key(step) for act in acts for step in act}
    return selectors.deliveries_recorded(delivery_keys=keys) == keys


def pause_before(step: Step, previous: Step | None, *, speed: float, max_pause: float) -> float:
    """Return how long to wait before posting `step`: the story's gap, sped up and capped."""
    if previous is None or speed <= 0:
        return 0.0
    gap = (step.at - previous.at).total_seconds() / speed
    return min(max(gap, 0.0), max_pause)


Poster = Callable[[str, Delivery], tuple[int, dict[str, object]]]


def http_post(url: str, delivery: Delivery, *, attempts: int = 20) -> tuple[int, dict[str, object]]:
    """POST a delivery to `url` and return the status and JSON answer; wait for the server."""
    request = urllib.request.Request(url, data=delivery.body, headers=delivery.headers)  # noqa: S310
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return int(response.status), orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return int(error.code), orjson.loads(body)
            except orjson.JSONDecodeError:
                return int(error.code), {"error": body[:200].decode(errors="replace")}
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ReplayResult:
    """How a replay went: deliveries recorded, already there, refused."""

    recorded: int
    duplicates: int
    refused: list[str]


def demo_replay(
    acts: Sequence[Sequence[Step]],
    *,
    base_url: str,
    signing: dict[str, str],
    speed: float = DEFAULT_SPEED,
    max_pause: float = MAX_PAUSE_SECONDS,
    post: Poster = http_post,
    sleep: Callable[[float], None] = time.sleep,
    settle: Callable[[int], None] = lambda position: None,
    say: Callable[[str], None] = print,
) -> ReplayResult:
    """Post each step, signed, to the server at `base_url`, pausing as the story did.

    After each act but the last, `settle` is given the last position recorded, to wait until
    Shiplog has acted on it: days passed between the acts, and detection reads the state of a
    release as it is when it looks, so an act posted on the heels of the last one would hide
    it (a blocked release that is already deployed by the time anyone looks opens nothing).
    """
    recorded = duplicates = 0
    refused: list[str] = []
    previous: Step | None = None
    last_position = 0
    for number, act in enumerate(acts, start=1):
        for step in act:
            pause = pause_before(step, previous, speed=speed, max_pause=max_pause)
            if pause:
                sleep(pause)
            delivery = step.delivery(signing[step.platform])
            status, answer = post(base_url.rstrip("/") + delivery.path, delivery)
            if status == 202:
                recorded += 1
            elif status == 200:
                duplicates += 1
            else:
                refused.append(f"{step.summary}: {status} {answer.get('error', answer)}")
            position = answer.get("position")
            if isinstance(position, int):
                last_position = max(last_position, position)
            say(f"{step.at:%d %b %H:%M:%S} {step.summary} [{answer.get('status', status)}]")
            previous = step
        if number < len(acts):
            settle(last_position)
    return ReplayResult(recorded, duplicates, refused)


def settle_projections(position: int, *, wait_seconds: float = 20.0) -> None:
    """Wait for the worker to project up to `position`; project here if it does not come.

    Without a worker asked to project after each delivery, project here at once.
    """
    if not settings.SHIPLOG_PROJECT_AFTER_COMMIT:
        wait_seconds = 0.0
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if projector.checkpoint_position() >= position:
            return
        time.sleep(0.5)
    projector.catch_up()
