"""Maintainers' pages for releases, the stream and settings. Thin: parse, call, render.

Every page needs a signed-in person; every change is a POST (with Django's CSRF check) that
goes through a service and is allowed to maintainers only (`maintainer_required`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from django_htmx.middleware import HtmxDetails

from incidents.selectors import incident_list, incidents_for_release
from releases import policy as policy_module
from releases import selectors, services, swimlane, tokens
from releases.access import Access, access_for, maintainer_required
from releases.display import pretty_body, pretty_json, safe_headers
from releases.forms import (
    BotTokenForm,
    CICredentialForm,
    PolicyForm,
    ReleaseFilterForm,
    RepositoryForm,
    StreamFilterForm,
    WebhookSecretForm,
    day_start,
    valid_filters,
)
from releases.projections import Entry
from releases.selectors import ReleaseDetail
from releases.serializers import gate_data
from releases.throttling import LimitedLoginForm

# What to select on each platform, for the settings page (the README says the same).
GITHUB_EVENTS = (
    "Workflow runs",
    "Workflow jobs",
    "Check runs",
    "Check suites",
    "Deployments",
    "Deployment statuses",
    "Releases",
    "Pushes",
    "Branch or tag creation",
    "Branch or tag deletion",
)
CIRCLECI_EVENTS = ("Workflow Completed", "Job Completed")
LIVE_TARGET = "release-live"
# Shiplog's own acts on a release, besides incidents: retry decisions and probe results.
SHIPLOG_ACTS = frozenset({"retry", "probe"})


class HtmxHttpRequest(HttpRequest):
    """A request that django-htmx's middleware has told about htmx."""

    htmx: HtmxDetails


def _access(request: HttpRequest) -> Access:
    return access_for(request.user)


def _no_store(response: HttpResponse) -> HttpResponse:
    """Keep a page that shows a secret out of every cache."""
    response["Cache-Control"] = "no-store"
    return response


# ----------------------------------------------------------------------------- login


class LoginView(auth_views.LoginView):
    """Log a person in; too many failures for a username or address are refused with a 429."""

    authentication_form = LimitedLoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        """Show the form's errors, with 429 Too Many Requests when the limit refused it."""
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
            response["Retry-After"] = str(settings.SHIPLOG_LOGIN_WINDOW_SECONDS)
        return response


# ----------------------------------------------------------------------------- dashboard


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Show releases in flight, open incidents, recent deploys and the delivery figures."""
    readable = _access(request).readable
    context = {
        "in_flight": selectors.releases_in_flight(readable=readable),
        "open_incidents": list(incident_list(readable=readable, status="open")[:10]),
        "recent_deploys": selectors.recent_deploys(readable=readable),
        "figures": selectors.dora_figures(readable=readable, now=timezone.now()),
        "latest_position": selectors.stream_latest_position(),
    }
    return render(request, "releases/dashboard.html", context)


# ----------------------------------------------------------------------------- releases


@login_required
def release_list(request: HttpRequest) -> HttpResponse:
    """List releases, filtered by repository, state, ref kind, name and start date."""
    readable = _access(request).readable
    form = ReleaseFilterForm(
        request.GET or None, repositories=selectors.repository_names(readable=readable)
    )
    data = valid_filters(form)
    releases = selectors.release_list(
        readable=readable,
        repository=data.get("repository"),
        state=data.get("state"),
        ref_kind=data.get("kind"),
        name_contains=data.get("name"),
        since=day_start(data.get("since")),
        until=day_start(data.get("until")),
    )
    page = Paginator(releases, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "releases/list.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@dataclass(frozen=True)
class TimelineRow:
    """One line of the release page's table: an entry and how the policy treats it."""

    entry: Entry
    role: str
    outcome: str
    evidence_url: str


# Beyond this many lines the table is cut short; the swimlanes still show every attempt.
ROW_LIMIT = 250


def _outcome(entry: Entry) -> str:
    if entry.kind in {"job", "workflow_run"}:
        return swimlane.entry_outcome(entry)
    if entry.failed:
        return "failure"
    return "success" if entry.conclusion == "success" else "other"


def _timeline_rows(detail: ReleaseDetail, *, everything: bool) -> tuple[list[TimelineRow], int]:
    """Return the lines worth reading, and how many were left out (quiet successful jobs first).

    A successful job that does not deploy is quiet: the swimlanes show it, retries included.
    """
    stream_url = reverse("stream")
    rows: list[TimelineRow] = []
    left_out = 0
    for entry in detail.entries:
        role = detail.role(entry)
        outcome = _outcome(entry)
        quiet = entry.kind == "job" and outcome == "success" and role != "deploy"
        if quiet and not everything:
            left_out += 1
            continue
        rows.append(TimelineRow(entry, role, outcome, f"{stream_url}{entry.position}/"))
    rows.sort(key=lambda row: (row.entry.moment is None, row.entry.moment, row.entry.position))
    if not everything and len(rows) > ROW_LIMIT:
        left_out += len(rows) - ROW_LIMIT
        rows = rows[:ROW_LIMIT]
    return rows, left_out


def _readable_release(request: HttpRequest, owner: str, name: str, ref: str) -> ReleaseDetail:
    repository = f"{owner}/{name}"
    # Git refuses ':' in ref names, so no tag can be mistaken for a branch release's key.
    ref_key = ref if ref.startswith("branch:") else f"tag:{ref}"
    release = selectors.release_by_ref(repository=repository, ref_key=ref_key)
    if release is None or not _access(request).can_read(repository):
        raise Http404(f"no release {ref} of {repository}")
    return selectors.release_detail(release)


@login_required
def release_page(request: HtmxHttpRequest, owner: str, name: str, ref: str) -> HttpResponse:
    """Show a release: swimlanes across both platforms, the blocking chain and the gate."""
    detail = _readable_release(request, owner, name, ref)
    release = detail.release
    lanes = swimlane.layout(
        detail.entries,
        view=detail.view,
        role=detail.role,
        now=timezone.now(),
        release_name=f"{release.repository} {release.name}",
    )
    context = {
        "release": release,
        "view": detail.view,
        "gate": gate_data(detail),
        "policy_is_default": detail.policy.is_default,
        "swimlane": mark_safe(swimlane.render_svg(lanes)) if lanes else "",  # noqa: S308 - escaped
        "lanes": lanes,
        "live": detail.view.state != "deployed",
        "live_target": LIVE_TARGET,
        "incidents": incidents_for_release(
            repository=release.repository, release_key=release.ref_key
        ),
        "shiplog_acts": [
            e for e in detail.entries if e.platform == "shiplog" and e.kind in SHIPLOG_ACTS
        ],
    }
    if request.htmx and request.htmx.target == LIVE_TARGET:
        return render(request, "releases/_live.html", context)
    everything = request.GET.get("all") == "1"
    rows, left_out = _timeline_rows(detail, everything=everything)
    context.update(rows=rows, left_out=left_out, everything=everything)
    return render(request, "releases/detail.html", context)


# ----------------------------------------------------------------------------- stream


@login_required
def stream_explorer(request: HttpRequest) -> HttpResponse:
    """List stream events, newest first, filtered by repository, platform, type and time."""
    readable = _access(request).readable
    form = StreamFilterForm(
        request.GET or None, repositories=selectors.repository_names(readable=readable)
    )
    data = valid_filters(form)
    page_size = 50
    events = selectors.stream_explorer(
        readable=readable,
        repository=data.get("repository"),
        source=data.get("source"),
        event_type=data.get("type"),
        since=day_start(data.get("since")),
        until=day_start(data.get("until")),
        before=data.get("before"),
        limit=page_size + 1,
    )
    more = len(events) > page_size
    events = events[:page_size]
    query = request.GET.copy()
    query.pop("before", None)
    older = ""
    if more:
        query["before"] = str(events[-1].position)
        older = query.urlencode()
    return render(
        request,
        "releases/stream.html",
        {"form": form, "events": events, "older": older, "filtered": bool(request.GET)},
    )


@login_required
def stream_event(request: HttpRequest, position: int) -> HttpResponse:
    """Show one stream event: its columns, headers without secrets, the raw body pretty."""
    event = selectors.stream_event_get(position=position, readable=_access(request).readable)
    if event is None:
        raise Http404(f"no stream event at position {position}")
    return render(
        request,
        "releases/stream_event.html",
        {
            "event": event,
            "headers": safe_headers(event.headers),
            "data": pretty_json(event.data),
            "body": pretty_body(bytes(event.body)),
        },
    )


# ----------------------------------------------------------------------------- settings


def _settings_url(full_name: str) -> str:
    owner, name = full_name.split("/", 1)
    return reverse("settings-repository", kwargs={"owner": owner, "name": name})


def _settings_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    names = selectors.repository_names(readable=None)
    return {
        "repositories": names,
        "repository_links": [(name, _settings_url(name)) for name in names],
        "repository_form": extra.pop("repository_form", None) or RepositoryForm(),
        "token_form": extra.pop("token_form", None) or BotTokenForm(repositories=names),
        "bot_tokens": selectors.bot_token_list(),
        **extra,
    }


@login_required
def settings_index(request: HttpRequest) -> HttpResponse:
    """Show repositories and bot tokens, with the forms to add them."""
    return render(request, "settings/index.html", _settings_context(request))


@require_POST
@maintainer_required
def repository_add(request: HttpRequest) -> HttpResponse:
    """Register a repository."""
    form = RepositoryForm(request.POST)
    if not form.is_valid():
        return render(
            request, "settings/index.html", _settings_context(request, repository_form=form)
        )
    repository = services.repository_create(**form.cleaned_data)
    messages.success(request, f"{repository.full_name} is registered. Add its webhook secrets.")
    return redirect(_settings_url(repository.full_name))


def _repository_context(
    request: HttpRequest, owner: str, name: str, **extra: Any
) -> dict[str, Any]:
    found = selectors.repository_settings(full_name=f"{owner}/{name}")
    if found is None:
        raise Http404(f"no repository {owner}/{name}")
    base = settings.SHIPLOG_PUBLIC_URL.rstrip("/")
    return {
        "owner": owner,
        "name": name,
        "settings": found,
        "repository": found.repository,
        "github_url": base + reverse("github-hook"),
        "circleci_url": base + reverse("circleci-hook"),
        "github_events": GITHUB_EVENTS,
        "circleci_events": CIRCLECI_EVENTS,
        "secret_form": extra.pop("secret_form", None) or WebhookSecretForm(),
        "credential_form": extra.pop("credential_form", None)
        or CICredentialForm(prefix="credential"),
        "policy_form": extra.pop("policy_form", None)
        or PolicyForm(initial={"document": found.policy_document}),
        "probes": (found.policy.extra.get("probes", []) if found.policy else []),
        "retry": (found.policy.extra.get("retry") if found.policy else None),
        **extra,
    }


@login_required
def repository_settings(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    """Show a repository's webhook setup, secrets, policy, probes and retry settings."""
    return render(request, "settings/repository.html", _repository_context(request, owner, name))


def _repository(owner: str, name: str) -> Any:
    found = selectors.repository_settings(full_name=f"{owner}/{name}")
    if found is None:
        raise Http404(f"no repository {owner}/{name}")
    return found.repository


@require_POST
@maintainer_required
def webhook_secret_add(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    """Add a signing secret (generated if none is given); older ones stay active."""
    repository = _repository(owner, name)
    form = WebhookSecretForm(request.POST)
    if not form.is_valid():
        context = _repository_context(request, owner, name, secret_form=form)
        return render(request, "settings/repository.html", context)
    secret = form.cleaned_data["secret"] or tokens.new_webhook_secret()
    created = services.webhook_secret_add(
        repository=repository,
        platform=form.cleaned_data["platform"],
        secret=secret,
        label=form.cleaned_data["label"],
    )
    if form.cleaned_data["secret"]:
        messages.success(request, f"Added {created}. Retire the old secret once CI uses it.")
        return redirect("settings-repository", owner=owner, name=name)
    context = _repository_context(request, owner, name, new_secret=secret, new_secret_for=created)
    return _no_store(render(request, "settings/repository.html", context))


@require_POST
@maintainer_required
def webhook_secret_retire(request: HttpRequest, owner: str, name: str, pk: int) -> HttpResponse:
    """Stop accepting deliveries signed with one secret (the end of a rotation)."""
    repository = _repository(owner, name)
    secret = selectors.webhook_secret_get(repository=repository, pk=pk)
    if secret is None:
        raise Http404("no such secret")
    services.webhook_secret_retire(secret=secret)
    messages.success(request, f"Retired {secret}: deliveries signed with it are refused now.")
    return redirect("settings-repository", owner=owner, name=name)


@require_POST
@maintainer_required
def ci_credential_set(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    """Set or replace a repository's API token for a CI platform; it is never shown back."""
    repository = _repository(owner, name)
    form = CICredentialForm(request.POST, prefix="credential")
    if form.is_valid():
        try:
            credential = services.ci_credential_set(repository=repository, **form.cleaned_data)
        except ValueError as exc:
            form.add_error("token", str(exc))
        else:
            messages.success(
                request,
                f"{credential.get_platform_display()} API token set: ••••{credential.last_four}.",
            )
            return redirect("settings-repository", owner=owner, name=name)
    context = _repository_context(request, owner, name, credential_form=form)
    return render(request, "settings/repository.html", context)


@require_POST
@maintainer_required
def policy_save(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    """Validate and store the repository's policy; re-derive its releases."""
    repository = _repository(owner, name)
    form = PolicyForm(request.POST)
    if form.is_valid():
        try:
            services.policy_set(
                repository=repository,
                document=form.cleaned_data["document"],
                actor=request.user.get_username(),
            )
        except policy_module.PolicyError as exc:
            form.add_error("document", str(exc))
        else:
            messages.success(request, "Policy saved; releases were re-derived under it.")
            return redirect("settings-repository", owner=owner, name=name)
    context = _repository_context(request, owner, name, policy_form=form)
    return render(request, "settings/repository.html", context)


@require_POST
@maintainer_required
def policy_check(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    """Validate a policy document without storing it, for the editor's live check."""
    repository = _repository(owner, name)
    document = request.POST.get("document", "")
    try:
        parsed = policy_module.parse(document, repository=repository.full_name)
    except policy_module.PolicyError as exc:
        return render(request, "settings/_policy_check.html", {"error": str(exc)})
    return render(request, "settings/_policy_check.html", {"policy": parsed})


@require_POST
@maintainer_required
def bot_token_create(request: HttpRequest) -> HttpResponse:
    """Create a bot token and show its value once."""
    names = selectors.repository_names(readable=None)
    form = BotTokenForm(request.POST, repositories=names)
    if not form.is_valid():
        return render(request, "settings/index.html", _settings_context(request, token_form=form))
    repositories = selectors.repositories_named(names=form.cleaned_data["repositories"])
    bot, value = services.bot_token_create(
        name=form.cleaned_data["name"],
        repositories=repositories,
        can_write=form.cleaned_data["can_write"],
    )
    context = _settings_context(request, new_token=value, new_token_for=bot)
    return _no_store(render(request, "settings/index.html", context))


@require_POST
@maintainer_required
def bot_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke a bot token."""
    bot = selectors.bot_token_get(pk=pk)
    if bot is None:
        raise Http404("no such token")
    services.bot_token_revoke(bot=bot)
    messages.success(request, f"Revoked {bot}.")
    return redirect("settings")
