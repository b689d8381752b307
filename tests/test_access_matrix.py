"""Every URL, every actor: who gets what, read from one table.

The table has one row per URL pattern the resolver knows (the admin's rows are derived from
the models it registers), so a new URL without a row fails `test_every_url_has_a_row`. Each
row names the request to make and the outcome for five actors:

- anonymous: no session, no token;
- viewer: signed in, in `viewers` (reads everything, changes nothing);
- maintainer: signed in, in `maintainers` (reads and acts);
- bot_b: a write-scoped bot token of repository A (acme/rocket) used on repository B's
  (pyodide/pyodide) release, incident, policy and credentials, or filtering lists by B;
- bot_a: the same token on A's own resources, the control that shows the refusals above are
  about the repository and not about the token being useless.

Every request runs inside a savepoint that is rolled back, so one row's write never changes
what the next row sees. Every response, whatever its status, must carry the security headers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import orjson
import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Incident
from releases import projector
from releases.access import MAINTAINERS, VIEWERS
from releases.deliveries import circleci_delivery, github_delivery
from releases.models import BotToken, Repository, StreamEvent
from releases.services import (
    bot_token_create,
    ci_credential_set,
    forget_cached_secrets,
    policy_set,
    repository_create,
    webhook_secret_add,
)
from tests.pages import person
from tests.releases import factories as f

pytestmark = pytest.mark.django_db

REPO_A = "acme/rocket"
REPO_B = f.REPO
ACTORS = ("anonymous", "viewer", "maintainer", "bot_b", "bot_a")

# Outcomes. A number is the exact status. The words:
LOGIN = "login"  # 302 to the login page, asking to come back
ADMIN_LOGIN = "admin-login"  # 302 to the admin's login page
DONE = "done"  # 302 somewhere other than a login page: the action went through
WITHOUT_B = "200 without B"  # 200, and nothing of repository B in the answer
WITH_A = "200 with A"  # 200, and repository A's data in the answer

PAGE = (LOGIN, 200, 200, LOGIN, LOGIN)
PAGE_ACTION = (LOGIN, 403, DONE, LOGIN, LOGIN)
API_READ = (401, 200, 200, 404, 200)
API_LIST = (401, 200, 200, WITHOUT_B, WITH_A)


@dataclass(frozen=True)
class Call:
    """One request: method, URL template (filled from the target repository), body."""

    method: str
    url: str
    data: dict[str, Any] = field(default_factory=dict)
    json: bool = False  # send `data` as JSON (the API) rather than a form
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """The calls a URL pattern is tried with, and the outcome for each actor."""

    calls: tuple[Call, ...]
    expect: tuple[Any, ...]  # one outcome per actor, in ACTORS order

    def __post_init__(self) -> None:
        assert len(self.expect) == len(ACTORS)


def row(method: str, url: str, expect: tuple[Any, ...], **data: Any) -> Row:
    """Return a row of one call, sent as a form."""
    return Row((Call(method, url, data),), expect)


def api(method: str, url: str, expect: tuple[Any, ...], **data: Any) -> Row:
    """Return a row of one API call, sent as JSON."""
    return Row((Call(method, url, data, json=True),), expect)


# The placeholders: {repo} {owner} {name} {tag} {incident} {item} {position} {secret} {token}
# are the target repository's (B for every actor but bot_a, which targets A).
INCIDENT = "incidents/{incident}"
SETTINGS = "settings/repositories/{owner}/{name}"
CUSTOM_EVENT = {"repository": "{repo}", "type": "deploy.marker", "name": "cdn", "tag": "{tag}"}

# A delivery signed with a secret no repository has: only the signature should refuse it.
PING = {"zen": "hi", "repository": {"full_name": REPO_B}, "type": "ping"}
FORGED = {
    "github": github_delivery("ping", PING, "not-the-secret").headers,
    "circleci": circleci_delivery(PING, "not-the-secret").headers,
}

TABLE: dict[str, Row] = {
    # Webhooks authenticate by signature alone: a session or a bot token gives nothing there.
    "hooks/github/": Row(
        (Call("POST", "hooks/github/", PING, json=True, headers=FORGED["github"]),),
        (401, 401, 401, 401, 401),
    ),
    "hooks/circleci/": Row(
        (Call("POST", "hooks/circleci/", PING, json=True, headers=FORGED["circleci"]),),
        (401, 401, 401, 401, 401),
    ),
    # The API: sessions for people, bearer tokens for bots; a bot sees only its repositories.
    "api/v1/incidents/": api("GET", "api/v1/incidents/?repository={repo}", API_LIST),
    "api/v1/incidents/<uuid:incident_id>/": api("GET", f"api/v1/{INCIDENT}/", API_READ),
    "api/v1/incidents/<uuid:incident_id>/status/": api(
        "POST", f"api/v1/{INCIDENT}/status/", (401, 403, 200, 404, 200), status="resolved"
    ),
    "api/v1/incidents/<uuid:incident_id>/notes/": api(
        "POST", f"api/v1/{INCIDENT}/notes/", (401, 403, 201, 404, 201), text="looking"
    ),
    "api/v1/incidents/<uuid:incident_id>/action-items/": api(
        "POST",
        f"api/v1/{INCIDENT}/action-items/",
        (401, 403, 201, 404, 201),
        kind="preventive",
        text="pin firefox",
    ),
    "api/v1/incidents/<uuid:incident_id>/postmortem.<str:fmt>": Row(
        (Call("GET", f"api/v1/{INCIDENT}/postmortem.md"),),
        API_READ,
    ),
    "api/v1/lessons/": api("GET", "api/v1/lessons/?repository={repo}", API_LIST),
    "api/v1/releases/": api("GET", "api/v1/releases/?repository={repo}", API_LIST),
    "api/v1/releases/<str:owner>/<str:name>/<path:tag>/gate": api(
        "GET", "api/v1/releases/{repo}/{tag}/gate", API_READ
    ),
    "api/v1/releases/<str:owner>/<str:name>/<path:tag>/": api(
        "GET", "api/v1/releases/{repo}/{tag}/", API_READ
    ),
    "api/v1/stream/": api("GET", "api/v1/stream/?repository={repo}&limit=500", API_LIST),
    "api/v1/events/": api("POST", "api/v1/events/", (401, 403, 201, 403, 201), **CUSTOM_EVENT),
    "api/v1/repositories/<str:owner>/<str:name>/credentials/": api(
        "GET", "api/v1/repositories/{repo}/credentials/", (401, 403, 200, 404, 200)
    ),
    "api/v1/repositories/<str:owner>/<str:name>/credentials/<str:platform>": api(
        "PUT",
        "api/v1/repositories/{repo}/credentials/circleci",
        (401, 403, 200, 404, 200),
        token="circle-token-0123456789abcdef",
    ),
    "api/v1/repositories/<str:owner>/<str:name>/policy": api(
        "GET", "api/v1/repositories/{repo}/policy", API_READ
    ),
    # The schema and its docs page describe the API, not its data: public on purpose.
    "api/schema/": row("GET", "api/schema/", (200, 200, 200, 200, 200)),
    "api/docs/": row("GET", "api/docs/", (200, 200, 200, 200, 200)),
    # The pages: sessions only, so a bearer token is as good as nothing.
    "": row("GET", "", PAGE),
    "favicon.ico": row("GET", "favicon.ico", (301, 301, 301, 301, 301)),
    "login/": row("GET", "login/", (200, DONE, DONE, 200, 200)),
    "logout/": row("POST", "logout/", (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN)),
    "releases/": row("GET", "releases/?repository={repo}", PAGE),
    "releases/<str:owner>/<str:name>/<path:ref>/": row("GET", "releases/{repo}/{tag}/", PAGE),
    "incidents/": row("GET", "incidents/", PAGE),
    "incidents/<uuid:incident_id>/": row("GET", f"{INCIDENT}/", PAGE),
    "incidents/<uuid:incident_id>/status/": row(
        "POST", f"{INCIDENT}/status/", PAGE_ACTION, status="resolved"
    ),
    "incidents/<uuid:incident_id>/severity/": row(
        "POST", f"{INCIDENT}/severity/", PAGE_ACTION, severity="low"
    ),
    "incidents/<uuid:incident_id>/notes/": row(
        "POST", f"{INCIDENT}/notes/", PAGE_ACTION, **{"note-text": "looking"}
    ),
    "incidents/<uuid:incident_id>/acknowledge/": row(
        "POST", f"{INCIDENT}/acknowledge/", PAGE_ACTION
    ),
    "incidents/<uuid:incident_id>/action-items/": row(
        "POST",
        f"{INCIDENT}/action-items/",
        PAGE_ACTION,
        **{"item-kind": "preventive", "item-text": "pin firefox"},
    ),
    "incidents/<uuid:incident_id>/action-items/<str:item_id>/done/": row(
        "POST", f"{INCIDENT}/action-items/{{item}}/done/", PAGE_ACTION
    ),
    "incidents/<uuid:incident_id>/postmortem/": row("GET", f"{INCIDENT}/postmortem/", PAGE),
    "incidents/<uuid:incident_id>/postmortem.md": row("GET", f"{INCIDENT}/postmortem.md", PAGE),
    "incidents/<uuid:incident_id>/postmortem/regenerate/": row(
        "POST", f"{INCIDENT}/postmortem/regenerate/", PAGE_ACTION
    ),
    r"^incidents/(?P<incident_id>[0-9a-f-]{36})/postmortem/sections/(?P<section>[a-z_]+)/$": row(
        "POST",
        f"{INCIDENT}/postmortem/sections/summary/",
        PAGE_ACTION,
        **{"summary-section": "summary", "summary-text": "Firefox timed out."},
    ),
    "lessons/": row("GET", "lessons/", PAGE),
    "stream/": row("GET", "stream/?repository={repo}", PAGE),
    "stream/<int:position>/": row("GET", "stream/{position}/", PAGE),
    "settings/": row("GET", "settings/", PAGE),
    "settings/repositories/": row(
        "POST", "settings/repositories/", PAGE_ACTION, full_name="acme/new"
    ),
    "settings/repositories/<str:owner>/<str:name>/": row("GET", f"{SETTINGS}/", PAGE),
    "settings/repositories/<str:owner>/<str:name>/secrets/": row(
        "POST",
        f"{SETTINGS}/secrets/",
        PAGE_ACTION,
        platform="github",
        secret="a-long-enough-secret",
    ),
    "settings/repositories/<str:owner>/<str:name>/secrets/<int:pk>/retire/": row(
        "POST", f"{SETTINGS}/secrets/{{secret}}/retire/", PAGE_ACTION
    ),
    "settings/repositories/<str:owner>/<str:name>/credentials/": row(
        "POST",
        f"{SETTINGS}/credentials/",
        PAGE_ACTION,
        **{"credential-platform": "github", "credential-token": "ghp_0123456789abcdef"},
    ),
    "settings/repositories/<str:owner>/<str:name>/policy/": row(
        "POST", f"{SETTINGS}/policy/", PAGE_ACTION, document="[jobs]\n"
    ),
    # The live check renders a fragment rather than redirecting.
    "settings/repositories/<str:owner>/<str:name>/policy/check/": row(
        "POST", f"{SETTINGS}/policy/check/", (LOGIN, 403, 200, LOGIN, LOGIN), document="[jobs]\n"
    ),
    "settings/tokens/": row(
        "POST",
        "settings/tokens/",
        (LOGIN, 403, 200, LOGIN, LOGIN),  # 200: the page that shows the new token once
        name="ci",
        repositories=["{repo}"],
    ),
    "settings/tokens/<int:pk>/revoke/": row("POST", "settings/tokens/{token}/revoke/", PAGE_ACTION),
}

# More calls to the patterns above: other methods and formats, and one repository's secret
# reached through another's settings URL.
EXTRA: dict[str, Row] = {
    "PUT policy": api(
        "PUT", "api/v1/repositories/{repo}/policy", (401, 403, 200, 404, 200), document="[jobs]\n"
    ),
    "postmortem as HTML": row("GET", f"api/v1/{INCIDENT}/postmortem.html", API_READ),
    "webhook GET": row("GET", "hooks/circleci/", (405, 405, 405, 405, 405)),
    "retire another repository's secret": row(
        "POST", f"{SETTINGS}/secrets/{{other_secret}}/retire/", (LOGIN, 403, 404, LOGIN, LOGIN)
    ),
}


def routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield every URL pattern the resolver knows, as its route string, with its pattern."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            assert isinstance(pattern, URLPattern)
            yield prefix + str(pattern.pattern), pattern


# ----------------------------------------------------------------------------- the admin
# Staff only, whatever else a person may do; bot tokens carry no session, so none get in.
ADMIN_DENIED = (ADMIN_LOGIN,) * len(ACTORS)


def admin_rows(world: World) -> dict[str, Row]:
    """Return a row for each admin URL: the site's own views and each registered model's."""
    rows = {
        "admin/": row("GET", "admin/", ADMIN_DENIED),
        # Everyone may see the admin's login form; people who are not staff are told so there.
        "admin/login/": row("GET", "admin/login/", (200, 200, 200, 200, 200)),
        # Logging out of the admin without being in it leads back to the admin's front door.
        "admin/logout/": row("POST", "admin/logout/", (DONE,) * len(ACTORS)),
        "admin/password_change/": row("GET", "admin/password_change/", ADMIN_DENIED),
        "admin/password_change/done/": row("GET", "admin/password_change/done/", ADMIN_DENIED),
        "admin/autocomplete/": row("GET", "admin/autocomplete/", ADMIN_DENIED),
        "admin/jsi18n/": row("GET", "admin/jsi18n/", ADMIN_DENIED),
        "admin/r/<path:content_type_id>/<path:object_id>/": row(
            "GET", f"admin/r/{world.user_type}/{world.maintainer.pk}/", ADMIN_DENIED
        ),
        "admin/^(?P<app_label>auth|releases)/$": row("GET", "admin/releases/", ADMIN_DENIED),
        "admin/(?P<url>.*)$": row("GET", "admin/no-such-page/", ADMIN_DENIED),
        "admin/auth/user/<id>/password/": row(
            "GET", f"admin/auth/user/{world.maintainer.pk}/password/", ADMIN_DENIED
        ),
    }
    for model in admin.site._registry:
        base = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        pk = model._default_manager.values_list("pk", flat=True).first()
        assert pk is not None, f"the world has no {model.__name__} to try the admin on"
        rows[base] = row("GET", base, ADMIN_DENIED)
        rows[base + "add/"] = row("GET", base + "add/", ADMIN_DENIED)
        for view in ("history/", "delete/", "change/", ""):
            rows[f"{base}<path:object_id>/{view}"] = row("GET", f"{base}{pk}/{view}", ADMIN_DENIED)
    return rows


# ----------------------------------------------------------------------------- the world


@dataclass
class Target:
    """One repository's resources, to fill the URL templates."""

    repo: str
    tag: str
    incident: str
    item: str
    position: int
    secret: int
    token: int
    other_secret: int = 0  # the other repository's spare secret

    def fill(self, text: str) -> str:
        owner, name = self.repo.split("/")
        return text.format(owner=owner, name=name, **vars(self))


@dataclass
class World:
    a: Target
    b: Target
    maintainer: User
    viewer: User
    bot_value: str
    user_type: int


def _story_in(repository: str) -> list[dict[str, Any]]:
    """Return the 0.26.2 story's events as if they had happened in `repository`."""
    events = f.pyodide_story()
    for kwargs in events:
        kwargs["repository"] = repository
        kwargs["data"]["repository"] = repository
        kwargs["delivery_key"] = f"{repository}:{kwargs['delivery_key']}"
    return events


def _target(repository: Repository) -> Target:
    """Give a repository a blocked release, its incident, a postmortem and spare credentials."""
    name = repository.full_name
    policy = f.PYODIDE_POLICY.replace(f'"{f.REPO}"', f'"{name}"')
    policy_set(repository=repository, document=policy, actor="test")
    f.append_all(_story_in(name))
    projector.catch_up()
    incident = Incident.objects.get(repository=name)
    incident_services.action_item_add(
        incident_id=incident.pk, kind="detective", text="alert on it", actor="test", item_id="i1"
    )
    incident_services.postmortem_generate(incident_id=incident.pk)
    # Spares, so that retiring or revoking one does not disarm the actors.
    spare_secret = webhook_secret_add(
        repository=repository, platform="github", secret="spare-s3cret"
    )
    ci_credential_set(repository=repository, platform="circleci", token="circle-token-" + "0" * 20)
    spare_token, _ = bot_token_create(name=f"spare {name}", repositories=[repository])
    first = StreamEvent.objects.filter(repository=name).order_by("position").first()
    assert first is not None
    return Target(
        repo=name,
        tag=f.TAG,
        incident=str(incident.pk),
        item="i1",
        position=first.position,
        secret=spare_secret.pk,
        token=spare_token.pk,
    )


@pytest.fixture
def world(db: None) -> World:
    a = _target(repository_create(full_name=REPO_A))
    b = _target(repository_create(full_name=REPO_B))
    a.other_secret, b.other_secret = b.secret, a.secret
    _, value = bot_token_create(
        name="rocket-ci", repositories=[Repository.objects.get(full_name=REPO_A)], can_write=True
    )
    return World(
        a=a,
        b=b,
        maintainer=person("mara", MAINTAINERS),
        viewer=person("vic", VIEWERS),
        bot_value=value,
        user_type=ContentType.objects.get_for_model(User).pk,
    )


def client_for(actor: str, world: World) -> Client:
    """Return a client acting as `actor`."""
    if actor in {"bot_a", "bot_b"}:
        return Client(headers={"Authorization": f"Bearer {world.bot_value}"})
    client = Client()
    if actor != "anonymous":
        client.force_login(world.maintainer if actor == "maintainer" else world.viewer)
    return client


def _fill_data(data: dict[str, Any], target: Target) -> dict[str, Any]:
    filled: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list):
            filled[key] = [target.fill(v) for v in value]
        else:
            filled[key] = target.fill(value) if isinstance(value, str) else value
    return filled


def send(client: Client, call: Call, target: Target) -> Any:
    """Make one call as if it were the first: its writes and its cookies are undone after."""
    url = "/" + target.fill(call.url)
    data = _fill_data(call.data, target)
    cookies = client.cookies  # a logout would otherwise end the session for the next rows
    client.cookies = SimpleCookie(cookies)
    with transaction.atomic():
        if call.json:
            response = client.generic(
                call.method,
                url,
                orjson.dumps(data),
                content_type="application/json",
                headers=call.headers,
            )
        elif call.method == "GET":
            response = client.get(url, headers=call.headers)
        else:
            response = client.post(url, data, headers=call.headers)
        transaction.set_rollback(True)
    client.cookies = cookies
    forget_cached_secrets()
    return response


def mismatch(expected: Any, response: Any, world: World) -> str | None:
    """Return what is wrong with `response` for the outcome `expected`, or None."""
    status = response.status_code
    location = response.get("Location", "")
    body = response.content.decode(errors="replace")
    if expected == LOGIN:
        ok = status == 302 and location.startswith("/login/")
    elif expected == ADMIN_LOGIN:
        ok = status == 302 and location.startswith("/admin/login/?next=")
    elif expected == DONE:
        ok = status == 302 and "login/" not in location
    elif expected == WITHOUT_B:
        ok = status == 200 and world.b.repo not in body and world.b.incident not in body
    elif expected == WITH_A:
        ok = status == 200 and world.a.repo in body
    else:
        ok = status == expected
    if ok:
        return None
    return f"expected {expected}, got {status} {location} {body[:160]!r}"


def test_every_url_has_a_row(world):
    """A URL added without deciding who may use it fails here."""
    known = {**TABLE, **admin_rows(world)}
    missing = [route for route, _ in routes() if route not in known]
    assert missing == [], f"add a row to TABLE for: {missing}"
    stale = sorted(set(known) - {route for route, _ in routes()})
    assert stale == [], f"rows for URLs that no longer exist: {stale}"


@pytest.mark.parametrize("actor", ACTORS)
def test_each_actor_gets_what_the_table_says_at_every_url(world, actor):
    column = ACTORS.index(actor)
    client = client_for(actor, world)
    target = world.a if actor == "bot_a" else world.b
    wrong: list[str] = []
    rows = {**TABLE, **admin_rows(world), **EXTRA}
    for entry in rows.values():
        for call in entry.calls:
            response = send(client, call, target)
            problem = mismatch(entry.expect[column], response, world)
            if problem:
                wrong.append(f"{call.method} {target.fill(call.url)!r}: {problem}")
            policy = response.get("Content-Security-Policy", "")
            if "unsafe" in policy or "frame-ancestors 'none'" not in policy:
                wrong.append(f"{call.method} {call.url}: Content-Security-Policy {policy!r}")
            if response.get("X-Frame-Options") != "DENY":
                wrong.append(f"{call.method} {call.url}: no X-Frame-Options: DENY")
            if response.get("X-Content-Type-Options") != "nosniff":
                wrong.append(f"{call.method} {call.url}: no X-Content-Type-Options: nosniff")
    assert wrong == [], "\n".join(wrong)


def test_the_admin_lets_staff_in(world):
    """The control for the admin's rows: a superuser is let into every admin URL they list."""
    client = Client()
    client.force_login(person("root", is_staff=True, is_superuser=True))
    wrong = []
    for route, entry in admin_rows(world).items():
        for call in entry.calls:
            response = send(client, call, world.b)
            location = response.get("Location", "")
            refused = "/login/" in location and route != "admin/logout/"
            if response.status_code >= 500 or refused:
                wrong.append(f"{route}: {response.status_code} {location}")
    assert wrong == [], "\n".join(wrong)


def test_a_revoked_or_unknown_token_is_refused_everywhere_in_the_api(world):
    BotToken.objects.filter(name="rocket-ci").update(revoked_at=timezone.now())
    revoked = client_for("bot_a", world)
    unknown = Client(headers={"Authorization": "Bearer shiplog_" + uuid.uuid4().hex})
    for route, entry in TABLE.items():
        if not route.startswith("api/v1/"):
            continue
        for call in entry.calls:
            for client in (revoked, unknown):
                assert send(client, call, world.a).status_code == 401, (route, call.method)
