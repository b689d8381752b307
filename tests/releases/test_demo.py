"""The demo: Pyodide 0.26.2 posted, signed, to a running Shiplog; idempotent from end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from incidents.models import Incident
from releases import demo, projector
from releases.access import is_maintainer
from releases.models import DeployPolicy, Release, Repository, StreamEvent, WebhookSecret
from releases.scenarios.story import Step

NOW = datetime(2026, 11, 26, 17, 30, tzinfo=UTC)


def test_the_roles_exist_after_migrating(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"maintainers", "viewers"}


@pytest.mark.django_db
def test_preparing_twice_registers_everything_once():
    first = demo.demo_prepare(debug=True)
    again = demo.demo_prepare(debug=True)
    assert first == again
    assert first.username == "demo"
    assert first.password == "shiplog-demo"
    assert Repository.objects.get().full_name == "pyodide/pyodide"
    assert WebhookSecret.objects.count() == 2
    assert set(first.secrets) == {"github", "circleci"}
    assert "deploy-release" in DeployPolicy.objects.get().document
    assert StreamEvent.objects.filter(event_type="policy.changed").count() == 1
    user = User.objects.get(username="demo")
    assert is_maintainer(user)
    assert not user.is_staff
    assert user.check_password("shiplog-demo")


@pytest.mark.django_db
def test_outside_debug_the_demo_password_is_random_and_never_reset():
    setup = demo.demo_prepare(debug=False)
    assert setup.password
    assert setup.password != demo.DEMO_PASSWORD
    user = User.objects.get(username="demo")
    assert user.check_password(setup.password)
    again = demo.demo_prepare(debug=False)
    assert again.password is None
    user.refresh_from_db()
    assert user.check_password(setup.password)


@pytest.mark.django_db
def test_debug_puts_the_documented_password_back():
    user = User.objects.create_user(username="demo", password="changed-by-someone")
    demo.demo_maintainer_ensure(debug=True)
    user.refresh_from_db()
    assert user.check_password("shiplog-demo")


@pytest.mark.django_db
def test_existing_secrets_of_the_repository_sign_the_demo(repository):
    from tests.conftest import CIRCLECI_SECRET, GITHUB_SECRET

    setup = demo.demo_prepare(debug=True)
    assert setup.secrets == {"github": GITHUB_SECRET, "circleci": CIRCLECI_SECRET}
    assert WebhookSecret.objects.count() == 2


def step_at(minutes: float) -> Step:
    return Step(NOW + timedelta(minutes=minutes), "github", "ping", {}, "x", "a step")


@pytest.mark.parametrize(
    ("previous", "step", "speed", "pause"),
    [
        (None, 10, 120, 0.0),
        (0, 10, 0, 0.0),
        (0, 10, 120, 5.0),
        (0, 10, 60, 8.0),
        (0, 3 * 24 * 60, 120, 8.0),
        (10, 10, 120, 0.0),
    ],
)
def test_pauses_follow_the_story_sped_up_and_capped(previous, step, speed, pause):
    before = step_at(previous) if previous is not None else None
    assert demo.pause_before(step_at(step), before, speed=speed, max_pause=8.0) == pause


def test_at_the_default_speed_the_demo_takes_a_couple_of_minutes():
    acts = demo.demo_acts(now=NOW)
    steps = [step for act in acts for step in act]
    total = sum(
        demo.pause_before(step, previous, speed=demo.DEFAULT_SPEED, max_pause=8.0)
        for previous, step in zip([None, *steps], steps, strict=False)
    )
    assert 45 < total < 150
    assert steps[-1].at <= NOW


@pytest.mark.django_db
def test_the_replay_posts_both_acts_and_lets_shiplog_act_in_between(client, settings):
    setup = demo.demo_prepare(debug=True)
    acts = demo.demo_acts(now=NOW)
    settled: list[int] = []
    paused: list[float] = []

    def post(url, delivery):
        assert url.startswith("http://shiplog.test/hooks/")
        response = client.generic(
            "POST",
            delivery.path,
            data=delivery.body,
            content_type=delivery.content_type,
            headers=delivery.headers,
        )
        return response.status_code, response.json()

    def settle(position):
        settled.append(position)
        demo.settle_projections(position)

    result = demo.demo_replay(
        acts,
        base_url="http://shiplog.test/",
        signing=setup.secrets,
        speed=600,
        post=post,
        sleep=paused.append,
        settle=settle,
        say=lambda line: None,
    )
    assert result.recorded == sum(len(act) for act in acts)
    assert result.refused == []
    assert len(settled) == 1
    last_of_first_act = StreamEvent.objects.get(delivery_key=demo.delivery_key(acts[0][-1]))
    assert settled == [last_of_first_act.position]
    assert paused
    assert max(paused) <= demo.MAX_PAUSE_SECONDS
    # Between the acts, Shiplog saw the release blocked and opened the incident.
    opened = StreamEvent.objects.get(event_type="incident.opened")
    rerun = StreamEvent.objects.filter(source="circleci").order_by("position").last()
    assert rerun is not None
    assert opened.position < rerun.position
    projector.catch_up()
    release = Release.objects.get(tag="0.26.2")
    assert release.state == "deployed"
    assert Incident.objects.get().status == "resolved"
    # The story ends now: this month's figures are about it.
    assert release.deployed_at is not None
    assert NOW - timedelta(hours=1) < release.deployed_at <= NOW
    assert demo.demo_loaded(acts)
    again = demo.demo_replay(
        acts, base_url="http://shiplog.test", signing=setup.secrets, speed=0, post=post
    )
    assert (again.recorded, again.duplicates) == (0, result.recorded)


@pytest.mark.django_db(transaction=True)
def test_the_demo_command_posts_over_http_to_a_running_server(live_server):
    out = StringIO()
    call_command("demo", "--url", live_server.url, "--speed", "0", stdout=out)
    said = out.getvalue()
    assert "Demo maintainer: username 'demo', password 'shiplog-demo'" not in said  # DEBUG off
    assert "Demo maintainer: username 'demo', password '" in said
    assert "Demo loaded: 88 recorded, 0 already there, 0 refused." in said
    assert StreamEvent.objects.filter(headers__has_key="X-GitHub-Delivery").count() > 40
    projector.catch_up()
    assert Release.objects.get(tag="0.26.2").state == "deployed"
    assert Incident.objects.get().status == "resolved"
    out = StringIO()
    call_command("demo", "--url", live_server.url, stdout=out)
    assert "already in the stream (88 deliveries): nothing to replay" in out.getvalue()
    assert "password is unchanged" in out.getvalue()
