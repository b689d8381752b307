"""The releases pages: dashboard, releases list, release page, stream explorer, settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from releases import projector, stream
from releases.models import BotToken, DeployPolicy, Repository, StreamEvent, WebhookSecret
from releases.selectors import dora_figures
from releases.tokens import token_hash
from tests.pages import (
    RELEASE_URL,
    blocked,
    incident_of,
    maintainer,
    maintainer_client,
    recovered,
    viewer,
    viewer_client,
)
from tests.releases import factories as f

__all__ = ["blocked", "maintainer", "maintainer_client", "recovered", "viewer", "viewer_client"]
pytestmark = pytest.mark.django_db
SETTINGS_URL = "/settings/repositories/pyodide/pyodide/"


def text(response) -> str:
    return str(response.content.decode())


# ----------------------------------------------------------------------------- dashboard


def test_the_dashboard_shows_what_is_blocked_and_the_open_incident(viewer_client, blocked):
    page = text(viewer_client.get("/"))
    in_flight = page.split('id="in-flight-heading"')[1].split("</section>")[0]
    assert ">0.26.2</a>" in in_flight
    assert "Blocked" in in_flight
    assert "Partially deployed" in in_flight
    incidents = page.split('id="incidents-heading"')[1].split("</section>")[0]
    assert "deploy-release is blocked" in incidents
    assert "Investigating" in incidents
    deploys = page.split('id="deploys-heading"')[1].split("</section>")[0]
    assert "deploy-release on CircleCI, blocked by test-packages-firefox" in deploys
    for figure in (
        "Deployment frequency",
        "Lead time, tag to deployed",
        "Change failure rate",
        "Time to restore",
        "Time blocked this month",
    ):
        assert figure in page
    assert 'hx-trigger="every 10s"' in page


def test_the_dashboard_figures_come_from_the_stream(recovered):
    """Deployed on the 29th after three days blocked: one deploy, one failure, one restore."""
    now = datetime(2024, 7, 30, 12, 0, tzinfo=UTC)
    figures = dora_figures(readable=None, now=now)
    dora = figures.dora
    assert dora.deployments == 1
    assert dora.changes == 1
    assert dora.failed_changes == 1
    assert dora.change_failure_rate == 1.0
    assert dora.restored == 1
    assert dora.lead_time is not None
    assert dora.time_to_restore is not None
    assert timedelta(days=2, hours=17) < dora.lead_time < timedelta(days=2, hours=20)
    assert timedelta(days=2, hours=15) < dora.time_to_restore < timedelta(days=2, hours=18)
    assert timedelta(days=2, hours=15) < figures.blocked_this_month < timedelta(days=2, hours=18)
    assert figures.blocked_releases_this_month == 1
    # In August nothing is blocked any more.
    august = dora_figures(readable=None, now=datetime(2024, 8, 2, tzinfo=UTC))
    assert august.blocked_this_month == timedelta(0)


def test_the_dashboard_stops_refreshing_when_nothing_is_in_flight(viewer_client, recovered):
    page = text(viewer_client.get("/"))
    assert "Nothing in flight" in page
    assert "every 10s" not in page


# ----------------------------------------------------------------------------- releases


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("", True),
        ("?state=blocked", True),
        ("?state=partially_deployed", True),
        ("?state=deployed", False),
        ("?repository=pyodide/pyodide", True),
        ("?kind=tag&name=0.26", True),
        ("?kind=branch", False),
        ("?name=0.27", False),
        ("?since=2024-07-26&until=2024-07-27", True),
        ("?since=2024-07-27", False),
        ("?since=not-a-date", True),
    ],
)
def test_the_releases_list_filters(viewer_client, blocked, query, listed):
    response = viewer_client.get("/releases/" + query)
    assert response.status_code == 200
    assert ('href="/releases/pyodide/pyodide/0.26.2/"' in text(response)) is listed


def test_the_release_page_shows_the_blocker_and_the_deploy_that_never_ran(viewer_client, blocked):
    page = text(viewer_client.get(RELEASE_URL))
    chain = page.split('id="chain-heading"')[1].split("</section>")[0]
    assert re.search(r"Blocker</span>.*<strong>test-packages-firefox</strong> on CircleCI", chain)
    assert re.search(r"Never ran</span>.*<strong>deploy-release</strong> on CircleCI", chain)
    gate = page.split('id="gate-heading"')[1].split("</section>")[0]
    assert "Not deployable" in gate
    assert "test-packages-firefox" in gate
    deploys = page.split('id="deploys-heading"')[1].split("</section>")[0]
    assert "Blocked, never ran" in deploys
    assert "Succeeded" in deploys
    assert "deploy-release is blocked" in deploys  # what Shiplog did: the incident
    svg = page.split("<svg")[1].split("</svg>")[0]
    assert "GitHub Actions · main" in svg
    assert "CircleCI · build-and-deploy" in svg
    assert "GitHub Actions · deploy-release" in svg
    assert svg.count('class="bar bar--failure bar--blocker"') == 1
    assert 'class="bar bar--never-ran bar--deploy"' in svg
    assert '<path class="chain"' in svg
    for marker in ("marker--tag", "marker--release", "marker--deploy", "marker--incident"):
        assert marker in svg
    assert "never ran" in svg
    assert "blocks the deploy" in svg
    # Polling while the release is in flight.
    assert 'id="release-live"' in page
    assert 'hx-trigger="every 5s"' in page


def test_the_live_part_is_served_alone_to_htmx(viewer_client, blocked):
    response = viewer_client.get(
        RELEASE_URL, headers={"HX-Request": "true", "HX-Target": "release-live"}
    )
    html = text(response)
    assert html.lstrip().startswith('<div id="release-live"')
    assert "<html" not in html
    assert "Everything that happened" not in html


def test_the_release_page_stops_refreshing_once_deployed(viewer_client, recovered):
    page = text(viewer_client.get(RELEASE_URL))
    assert "every 5s" not in page
    assert "Deployed" in page
    assert "Was blocked for 2 d 1" in page
    svg = page.split("<svg")[1].split("</svg>")[0]
    assert "bar--never-ran" not in svg
    assert "bar--retry" in svg  # test-packages-firefox ran again in the rerun
    assert "marker--retry" in svg
    assert 'class="band"' in svg
    assert "was blocked 2 d" in svg
    assert 'class="axis-break"' in svg  # the three quiet days are cut out


def test_the_release_page_lists_what_needs_reading_and_everything_on_request(
    viewer_client, blocked
):
    page = text(viewer_client.get(RELEASE_URL))
    assert "successful jobs not listed" in page
    rows = page.split('class="entries"')[1]
    assert "test-packages-firefox" in rows
    assert "build-core-nodylink" not in rows
    everything = text(viewer_client.get(RELEASE_URL + "?all=1")).split('class="entries"')[1]
    assert "build-core-nodylink" in everything
    position = StreamEvent.objects.get(data__name="test-packages-firefox").position
    assert f'href="/stream/{position}/"' in rows


def test_an_unknown_release_is_not_found(viewer_client, blocked):
    assert viewer_client.get("/releases/pyodide/pyodide/9.9.9/").status_code == 404
    assert viewer_client.get("/releases/acme/rocket/0.26.2/").status_code == 404


def test_a_branch_deploy_has_a_page_of_its_own(viewer_client, db):
    f.append_all(
        [
            f.event(
                "github",
                "workflow_run",
                key="gh:main",
                name="deploy-dev",
                status="completed",
                conclusion="success",
                run_id="77",
                workflow_name="deploy-dev",
                sha=f.SHA,
                branch="main",
                started_at=1,
                completed_at=5,
            )
        ]
    )
    projector.catch_up()
    url = f"/releases/pyodide/pyodide/branch:main@{f.SHA}/"
    response = viewer_client.get(url)
    assert response.status_code == 200
    assert f"main@{f.SHA[:7]}" in text(response)
    assert url in text(viewer_client.get("/releases/?kind=branch"))


# ----------------------------------------------------------------------------- stream


def test_the_stream_explorer_filters_by_platform_type_and_time(viewer_client, blocked):
    page = text(viewer_client.get("/stream/?source=circleci&type=job-completed"))
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    jobs = StreamEvent.objects.filter(source="circleci", event_type="job-completed").count()
    assert rows.count("<tr>") == jobs > 30
    assert "job-completed" in rows
    assert "workflow_job" not in rows
    assert "failure" in rows
    none = text(viewer_client.get("/stream/?source=circleci&since=2024-07-27"))
    assert "No event matches these filters" in none
    newest_first = text(viewer_client.get("/stream/"))
    positions = [int(p) for p in re.findall(r'href="/stream/(\d+)/">#', newest_first)]
    assert positions == sorted(positions, reverse=True)
    assert len(positions) == 50
    older = re.search(r'href="\?(before=\d+)" rel="next"', newest_first)
    assert older is not None
    second = text(viewer_client.get(f"/stream/?{older.group(1)}"))
    rest = [int(p) for p in re.findall(r'href="/stream/(\d+)/">#', second)]
    assert max(rest) < min(positions)


def test_one_event_shows_its_payload_pretty_and_its_headers_without_secrets(viewer_client, db):
    appended = stream.append(
        source="api",
        event_type="deploy.cdn_upload_finished",
        delivery_key="api:test:1",
        repository="pyodide/pyodide",
        body=orjson.dumps({"files": 12, "nested": {"ok": True}}),
        headers={
            "User-Agent": "bot/1.0",
            "Authorization": "Bearer shiplog_secret_value",
            "X-Hub-Signature-256": "sha256=abc",
            "X-Api-Key": "k-123",
        },
        data={"kind": "marker", "name": "cdn upload"},
        tag="0.26.2",
    )
    page = text(viewer_client.get(f"/stream/{appended.position}/"))
    assert "bot/1.0" in page
    for secret in ("shiplog_secret_value", "sha256=abc", "k-123", "Authorization"):
        assert secret not in page
    assert "&quot;files&quot;: 12,\n  &quot;nested&quot;: {\n    &quot;ok&quot;: true" in page
    assert viewer_client.get(f"/stream/{appended.position + 1}/").status_code == 404


def test_a_form_encoded_github_delivery_is_shown_decoded(viewer_client, post, github):
    delivery = github("ping", {"zen": "Keep it logically awesome.", "hook_id": 7}, form=True)
    position = post(delivery).json()["position"]
    page = text(viewer_client.get(f"/stream/{position}/"))
    assert "form-encoded" in page
    assert "&quot;zen&quot;: &quot;Keep it logically awesome.&quot;" in page


# ----------------------------------------------------------------------------- settings


def test_settings_say_exactly_how_to_connect_each_platform(viewer_client, repository, settings):
    settings.SHIPLOG_PUBLIC_URL = "https://shiplog.example.org/"
    page = text(viewer_client.get(SETTINGS_URL))
    assert "https://shiplog.example.org/hooks/github/" in page
    assert "https://shiplog.example.org/hooks/circleci/" in page
    assert "<code>application/json</code>" in page
    for event in ("Workflow runs", "Workflow jobs", "Releases", "Deployment statuses"):
        assert f"<li>{event}</li>" in page
    for event in ("Workflow Completed", "Job Completed"):
        assert f"<li>{event}</li>" in page
    assert "<code>gh/pyodide/pyodide</code>" in page
    assert viewer_client.get("/settings/repositories/acme/rocket/").status_code == 404


def test_a_maintainer_registers_a_repository(maintainer_client):
    bad = maintainer_client.post("/settings/repositories/", {"full_name": "not a repo"})
    assert "Write the repository as owner/name" in text(bad)
    response = maintainer_client.post("/settings/repositories/", {"full_name": "acme/rocket"})
    assert response["Location"] == "/settings/repositories/acme/rocket/"
    assert Repository.objects.filter(full_name="acme/rocket").exists()


def test_secrets_are_added_rotated_and_never_shown_again(maintainer_client, repository):
    given = maintainer_client.post(
        SETTINGS_URL + "secrets/",
        {"platform": "github", "label": "rotated", "secret": "a-new-secret-1234"},
        follow=True,
    )
    assert "••••1234" in text(given)
    assert "a-new-secret-1234" not in text(given)
    generated = maintainer_client.post(SETTINGS_URL + "secrets/", {"platform": "circleci"})
    assert generated["Cache-Control"] == "no-store"
    found = re.search(r'id="new-secret"[^>]*value="([^"]+)"', text(generated))
    assert found is not None
    value = found.group(1)
    assert len(value) >= 40
    assert value not in text(maintainer_client.get(SETTINGS_URL))
    stored = WebhookSecret.objects.filter(repository=repository, platform="circleci").latest("pk")
    assert stored.last_four == value[-4:]
    old = WebhookSecret.objects.filter(repository=repository, platform="github").earliest("pk")
    retired = maintainer_client.post(SETTINGS_URL + f"secrets/{old.pk}/retire/", follow=True)
    assert "deliveries signed with it are refused now" in text(retired)
    old.refresh_from_db()
    assert not old.active
    assert maintainer_client.post(SETTINGS_URL + "secrets/999999/retire/").status_code == 404
    short = maintainer_client.post(SETTINGS_URL + "secrets/", {"platform": "github", "secret": "x"})
    assert "at least 8 characters" in text(short)


def test_the_policy_editor_validates_before_it_stores(maintainer_client, repository):
    bad = maintainer_client.post(SETTINGS_URL + "policy/", {"document": "[jobs]\ncore = 3\n"})
    assert "jobs.core must be a list of non-empty strings" in text(bad)
    assert "[jobs]\ncore = 3" in text(bad)  # the maintainer's text is kept to be fixed
    assert not DeployPolicy.objects.exists()
    check = maintainer_client.post(SETTINGS_URL + "policy/check/", {"document": f.PYODIDE_POLICY})
    assert "Valid: 2 deploy jobs" in text(check)
    wrong = maintainer_client.post(
        SETTINGS_URL + "policy/check/", {"document": 'repository = "acme/rocket"\n'}
    )
    assert "this policy is for acme/rocket, not pyodide/pyodide" in text(wrong)
    saved = maintainer_client.post(
        SETTINGS_URL + "policy/", {"document": f.ADVISORY_FIREFOX}, follow=True
    )
    assert "Policy saved" in text(saved)
    assert DeployPolicy.objects.get().document == f.ADVISORY_FIREFOX
    assert StreamEvent.objects.filter(event_type="policy.changed").count() == 1
    assert "test-packages-firefox" in text(saved).split("Advisory</dt>")[1]


def test_probes_and_retries_are_shown_from_the_policy(viewer_client, repository):
    from releases.services import policy_set

    document = (
        f.PYODIDE_POLICY
        + '\n[[probes]]\nname = "console"\nurl = "https://pyodide.org/en/stable/console.html"\n'
        + "\n[retry]\nmax_attempts = 2\n"
    )
    policy_set(repository=repository, document=document, actor="test")
    page = text(viewer_client.get(SETTINGS_URL))
    probes = page.split('id="probes-heading"')[1].split("</section>")[0]
    assert "console" in probes
    assert "https://pyodide.org/en/stable/console.html" in probes
    retry = page.split('id="retry-heading"')[1].split("</section>")[0]
    assert "max_attempts" in retry


def test_bot_tokens_are_shown_once_and_can_be_revoked(maintainer_client, repository):
    response = maintainer_client.post(
        "/settings/tokens/",
        {"name": "gate-bot", "repositories": ["pyodide/pyodide"], "can_write": "on"},
    )
    assert response["Cache-Control"] == "no-store"
    found = re.search(r'id="new-token"[^>]*value="(shiplog_[^"]+)"', text(response))
    assert found is not None
    value = found.group(1)
    bot = BotToken.objects.get()
    assert bot.token_hash == token_hash(value)
    assert bot.can_write
    listing = text(maintainer_client.get("/settings/"))
    assert value not in listing
    assert f"<code>{bot.prefix}…</code>" in listing
    maintainer_client.post(f"/settings/tokens/{bot.pk}/revoke/")
    bot.refresh_from_db()
    assert bot.revoked_at is not None
    empty = maintainer_client.post("/settings/tokens/", {"name": "x"})
    assert "This field is required" in text(empty)


def test_the_incident_is_reachable_from_the_release_page(viewer_client, blocked):
    incident = incident_of(blocked)
    assert f'href="/incidents/{incident.pk}/"' in text(viewer_client.get(RELEASE_URL))


def test_ci_tokens_are_set_rotated_and_never_shown(maintainer_client, repository):
    url = SETTINGS_URL + "credentials/"
    short = maintainer_client.post(
        url, {"credential-platform": "circleci", "credential-token": "too-short"}
    )
    assert "at least 16 characters" in text(short)
    first = "cci-token-0123456789-abcd"
    page = text(
        maintainer_client.post(
            url, {"credential-platform": "circleci", "credential-token": first}, follow=True
        )
    )
    assert "CircleCI API token set: ••••abcd." in page
    assert first not in page
    second = "cci-token-9876543210-wxyz"
    page = text(
        maintainer_client.post(
            url, {"credential-platform": "circleci", "credential-token": second}, follow=True
        )
    )
    credentials = page.split('id="credentials-heading"')[1].split("</section>")[0]
    assert credentials.count('<tr><th scope="row">') == 1
    assert "••••wxyz" in credentials
    assert "••••abcd" not in credentials
    assert second not in page
    assert 'type="password"' in credentials
    assert 'autocomplete="off"' in credentials


def test_the_release_page_says_what_shiplog_decided_about_retrying(viewer_client, blocked):
    first = StreamEvent.objects.filter(event_type__startswith="retry.").first()
    assert first is not None
    page = text(viewer_client.get(RELEASE_URL))
    deploys = page.split('id="deploys-heading"')[1].split("</section>")[0]
    assert "retry: retry considered" in deploys
    assert f'href="/stream/{first.position}/"' in deploys
