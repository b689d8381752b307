"""Raw secrets never leave the place they are given: the whole demo, searched for them.

Real-looking secrets are set the ways people set them: webhook signing secrets by the demo's
own preparation, a bot token from the settings page, a CircleCI API token through the API by
that bot, a GitHub API token through the settings form. Then the Pyodide 0.26.2 demo runs end
to end: its deliveries are posted, signed, to the real webhook endpoints; Celery tasks run (in
process) as a worker would run them, and the beat schedule's tasks after each act; the retry
worker calls the fake CircleCI with the token to rerun the blocked deploy; the CI APIs answer
some calls with an error that quotes the token back, as a hostile or careless API might.

Everything produced is then searched for every raw value: each log record (every logger at
DEBUG, SQL statements and their parameters included), whatever reached stdout and stderr, every
row of every table (the stream's raw bodies, headers and normalised data among them), the
arguments of every task, every page a maintainer can open (each stream event and the admin's
pages too) and every API answer, with their headers and cookies, postmortems included.

Only the two answers whose purpose is to show a new secret once (the bot token page, which
the test reads the token from) are left out, and the test checks that they do show it, so
that the search is known to find what it looks for.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from celery.signals import before_task_publish, task_prerun
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.utils import timezone

from config.celery import app
from incidents.models import Incident, PostmortemRevision
from releases import demo, services, tasks
from releases.access import MAINTAINERS
from releases.models import Release, StreamEvent
from releases.scenarios.pyodide import BUILD_AND_DEPLOY_WORKFLOW, POLICY, RERUN_WORKFLOW
from tests.fakes.ci_servers import Reply
from tests.pages import person

pytestmark = pytest.mark.django_db(transaction=True)

REPOSITORY = "pyodide/pyodide"
RETRY_ON = POLICY + '\n[jobs]\nadvisory = ["test-packages-firefox"]\n\n[retry]\nenabled = true\n'


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@pytest.fixture
def worker(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Run every task in process as it is requested; yield the (name, arguments) of each."""
    settings.SHIPLOG_PROJECT_AFTER_COMMIT = True
    # A worker imports every app's tasks as it starts. (This also sets Django up again, which
    # reconfigures logging: it must come before the log levels are lowered.)
    app.loader.import_default_modules()
    monkeypatch.setattr(tasks, "_next_allowed", 0.0)
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    monkeypatch.setitem(app.conf, "task_eager_propagates", True)
    seen: list[tuple[str, Any]] = []

    def on_run(sender: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
        seen.append((sender.name, {"args": args, "kwargs": kwargs}))

    def on_publish(sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
        seen.append((str(sender), {"body": body, "headers": headers}))

    task_prerun.connect(on_run, weak=False)
    before_task_publish.connect(on_publish, weak=False)
    yield seen
    task_prerun.disconnect(on_run)
    before_task_publish.disconnect(on_publish)


def beat() -> None:
    """Run each task of the beat schedule once, as the scheduler would."""
    for entry in app.conf.beat_schedule.values():
        app.tasks[entry["task"]].apply_async()


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every logger at DEBUG, SQL statements with their parameters included."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False


def _text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _answer(response: Any) -> str:
    """Return all of an answer a client sees: status, headers, cookies, body."""
    return "\n".join(
        [
            str(response.status_code),
            str(dict(response.headers)),
            response.cookies.output(),
            b"".join(response).decode("utf-8", errors="replace")
            if response.streaming
            else response.content.decode("utf-8", errors="replace"),
        ]
    )


def test_no_raw_secret_is_found_anywhere_after_the_whole_demo(
    fake_circleci, fake_github, worker, everything_logged, capfd
):
    produced: dict[str, str] = {}  # where -> what was found there

    # -- the secrets, set as people set them ------------------------------------------------
    repository = services.repository_create(full_name=REPOSITORY)
    services.policy_set(repository=repository, document=RETRY_ON, actor="test")
    setup = demo.demo_prepare(debug=False)  # generates both webhook secrets, and a password
    maintainer = person("mara", MAINTAINERS)
    ui = Client()
    ui.force_login(maintainer)
    created = ui.post(
        "/settings/tokens/",
        {"name": "release-bot", "repositories": [REPOSITORY], "can_write": "on"},
    )
    bot_token = created.context["new_token"]
    assert bot_token in _answer(created)  # shown once: the search finds what it looks for
    bot = Client(headers={"Authorization": f"Bearer {bot_token}"})
    circle_token = "CCIPAT_" + _random(string.ascii_letters + string.digits, 40)
    stored = bot.generic(
        "PUT",
        f"/api/v1/repositories/{REPOSITORY}/credentials/circleci",
        orjson.dumps({"token": circle_token}),
        content_type="application/json",
    )
    assert stored.status_code == 200
    produced["answer to PUT credentials/circleci"] = _answer(stored)
    github_token = "ghp_" + _random(string.ascii_letters + string.digits, 36)
    form = ui.post(
        f"/settings/repositories/{REPOSITORY}/credentials/",
        {"credential-platform": "github", "credential-token": github_token},
    )
    assert form.status_code == 302
    produced["answer to the credentials form"] = _answer(form)
    raw = {
        "GitHub webhook secret": setup.secrets["github"],
        "CircleCI webhook secret": setup.secrets["circleci"],
        "bot token": bot_token,
        "CircleCI API token": circle_token,
        "GitHub API token": github_token,
        "demo maintainer's password": setup.password,
    }
    assert all(value and len(value) >= 16 for value in raw.values())

    # -- the CI APIs: the rerun is accepted; other calls are refused quoting the token --------
    fake_circleci.add_workflow({"id": BUILD_AND_DEPLOY_WORKFLOW.id, "name": "build-and-deploy"}, [])
    fake_circleci.script(
        "POST",
        f"/workflow/{BUILD_AND_DEPLOY_WORKFLOW.id}/rerun",
        Reply(202, {"workflow_id": RERUN_WORKFLOW.id}),
    )
    echo = Reply(401, {"message": f"Invalid token {circle_token}"})
    for workflow in (BUILD_AND_DEPLOY_WORKFLOW.id, RERUN_WORKFLOW.id):
        fake_circleci.script("GET", f"/workflow/{workflow}", echo, echo, echo)
        fake_circleci.script("GET", f"/workflow/{workflow}/job", echo, echo, echo)
    bad = Reply(401, {"message": f"Bad credentials: {github_token}"})
    fake_github.script(
        "GET", f"/repos/{REPOSITORY}/hooks/{demo.GITHUB_HOOK_ID}/deliveries", bad, bad, bad
    )

    # -- the demo, through the real endpoints, with the worker and the beat --------------------
    hooks = Client()

    def post(url: str, delivery: Any) -> tuple[int, dict[str, object]]:
        response = hooks.generic(
            "POST",
            delivery.path,
            data=delivery.body,
            content_type=delivery.content_type,
            headers=delivery.headers,
        )
        produced[f"answer to {delivery.path} {delivery.headers}"] = _answer(response)
        return response.status_code, response.json()

    result = demo.demo_replay(
        demo.demo_acts(now=timezone.now()),
        base_url="http://testserver/",
        signing=setup.secrets,
        speed=0,
        post=post,
        settle=lambda position: beat(),
        say=lambda line: None,
    )
    assert result.refused == []
    beat()
    noted = bot.post(
        "/api/v1/events/",
        {"repository": REPOSITORY, "type": "deploy.cdn", "name": "cdn", "tag": "0.26.2"},
        content_type="application/json",
    )
    assert noted.status_code == 201
    beat()

    # The story happened, the worker used the tokens: what follows searches a real run.
    release = Release.objects.get(repository=REPOSITORY, tag="0.26.2")
    assert release.state == "deployed"
    incident = Incident.objects.get(repository=REPOSITORY)
    assert incident.status == "resolved"
    assert PostmortemRevision.objects.filter(incident=incident).exists()
    [rerun] = fake_circleci.calls("POST", f"/workflow/{BUILD_AND_DEPLOY_WORKFLOW.id}/rerun")
    assert rerun.headers["circle-token"] == circle_token
    assert any(c.headers.get("circle-token") == circle_token for c in fake_circleci.calls("GET"))
    assert any(
        c.headers.get("authorization") == f"Bearer {github_token}" for c in fake_github.calls()
    )
    assert {name for name, _ in worker} >= {
        "releases.tasks.project_stream",
        "releases.tasks.execute_retry",
        "incidents.tasks.generate_postmortem",
    }

    # -- every page a maintainer can open, every API answer -----------------------------------
    positions = list(StreamEvent.objects.order_by("position").values_list("position", flat=True))
    pages = [
        "/",
        "/releases/",
        "/releases/pyodide/pyodide/0.26.2/",
        "/releases/pyodide/pyodide/0.26.2/?all=1",
        "/incidents/",
        f"/incidents/{incident.pk}/",
        f"/incidents/{incident.pk}/postmortem/",
        f"/incidents/{incident.pk}/postmortem.md",
        "/lessons/",
        "/stream/",
        "/settings/",
        f"/settings/repositories/{REPOSITORY}/",
        *(f"/stream/{position}/" for position in positions),
    ]
    for url in pages:
        response = ui.get(url)
        assert response.status_code == 200, url
        produced[f"page {url}"] = _answer(response)
    staff = Client()
    staff.force_login(person("root", is_staff=True, is_superuser=True))
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for url in [
            base,
            *(f"{base}{pk}/change/" for pk in model._default_manager.values_list("pk", flat=True)),
        ]:
            response = staff.get(url)
            assert response.status_code == 200, url
            produced[f"admin {url}"] = _answer(response)
    api = [
        "/api/v1/releases/",
        "/api/v1/releases/pyodide/pyodide/0.26.2/",
        "/api/v1/releases/pyodide/pyodide/0.26.2/gate",
        "/api/v1/incidents/",
        f"/api/v1/incidents/{incident.pk}/",
        f"/api/v1/incidents/{incident.pk}/postmortem.md",
        f"/api/v1/incidents/{incident.pk}/postmortem.html",
        "/api/v1/lessons/",
        f"/api/v1/repositories/{REPOSITORY}/policy",
        f"/api/v1/repositories/{REPOSITORY}/credentials/",
        "/api/schema/",
        *(f"/api/v1/stream/?limit=500&after={after}" for after in (0, *positions[499::500])),
    ]
    for caller, client in (("bot", bot), ("maintainer", ui)):
        for url in api:
            response = client.get(url)
            assert response.status_code == 200, (caller, url)
            produced[f"API {url} as {caller}"] = _answer(response)

    # -- everything stored, logged, printed and queued -----------------------------------------
    for model in apps.get_models():
        for row in model._default_manager.values():
            where = f"{model._meta.db_table} row {row.get('id', row.get('pk', ''))}"
            produced[where] = " ".join(_text(value) for value in row.values())
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for number, record in enumerate(everything_logged.records):
        produced[f"log record {number} ({record.name})"] = formatter.format(record) + repr(
            record.__dict__
        )
    out, err = capfd.readouterr()
    produced["stdout"], produced["stderr"] = out, err
    for number, (name, arguments) in enumerate(worker):
        produced[f"task {number} {name}"] = repr(arguments)
    assert len(everything_logged.records) > 1000  # SQL included: the net was cast wide
    assert any(where.startswith(StreamEvent._meta.db_table) for where in produced)

    leaks = [
        f"the {secret} is in {where}"
        for secret, value in raw.items()
        for where, text in produced.items()
        if value in text
    ]
    assert leaks == [], "\n".join(leaks)
