"""Maintainers' pages for incidents, postmortems and lessons. Thin: parse, call, render.

Every change is a POST with Django's CSRF check, allowed to maintainers only, and goes
through `incidents.services`, which appends it to the stream.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from incidents import selectors, services
from incidents.forms import (
    SECTION_TITLES,
    ActionItemForm,
    IncidentFilterForm,
    NarrativeForm,
    NoteForm,
    SeverityForm,
    StatusForm,
)
from incidents.models import Incident, Status
from incidents.postmortem import EDITABLE_SECTIONS
from releases.access import access_for, maintainer_required
from releases.forms import valid_filters
from releases.selectors import repository_names


def _incident(request: HttpRequest, incident_id: str) -> Incident:
    incident = selectors.incident_get(
        incident_id=incident_id, readable=access_for(request.user).readable
    )
    if incident is None:
        raise Http404(f"no incident {incident_id}")
    return incident


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


def _allowed(incident: Incident) -> list[str]:
    return sorted(services.TRANSITIONS[Status(incident.status)])


@login_required
def incident_list(request: HttpRequest) -> HttpResponse:
    """List incidents, filtered by status, severity and repository."""
    readable = access_for(request.user).readable
    form = IncidentFilterForm(request.GET or None, repositories=repository_names(readable=readable))
    incidents = selectors.incident_list(readable=readable, **valid_filters(form))
    page = Paginator(incidents, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request, "incidents/list.html", {"form": form, "page": page, "query": query.urlencode()}
    )


def _page_context(incident: Incident, **forms: Any) -> dict[str, Any]:
    return {
        "page": selectors.incident_page(incident),
        "incident": incident,
        "status_form": forms.get("status_form") or StatusForm(allowed=_allowed(incident)),
        "severity_form": forms.get("severity_form")
        or SeverityForm(initial={"severity": incident.severity}),
        "note_form": forms.get("note_form") or NoteForm(prefix="note"),
        "item_form": forms.get("item_form") or ActionItemForm(prefix="item"),
    }


@login_required
def incident_page(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Show an incident: timeline, notes, status and severity, action items, releases."""
    incident = _incident(request, incident_id)
    return render(request, "incidents/detail.html", _page_context(incident))


def _invalid(request: HttpRequest, incident: Incident, **forms: Any) -> HttpResponse:
    return render(request, "incidents/detail.html", _page_context(incident, **forms))


def _done(request: HttpRequest, incident: Incident, text: str) -> HttpResponse:
    messages.success(request, text)
    return redirect("incident", incident_id=incident.pk)


def _refused(request: HttpRequest, incident: Incident, error: Exception) -> HttpResponse:
    messages.error(request, str(error))
    return redirect("incident", incident_id=incident.pk)


@require_POST
@maintainer_required
def incident_status(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Move the incident to another status, with an optional note."""
    incident = _incident(request, incident_id)
    form = StatusForm(request.POST, allowed=_allowed(incident))
    if not form.is_valid():
        return _invalid(request, incident, status_form=form)
    try:
        services.incident_status_change(
            incident_id=incident.pk, actor=_actor(request), **form.cleaned_data
        )
    except services.InvalidChange as exc:
        return _refused(request, incident, exc)
    return _done(request, incident, f"Status changed to {form.cleaned_data['status']}.")


@require_POST
@maintainer_required
def incident_severity(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Change the incident's severity."""
    incident = _incident(request, incident_id)
    form = SeverityForm(request.POST)
    if not form.is_valid():
        return _invalid(request, incident, severity_form=form)
    try:
        services.incident_severity_change(
            incident_id=incident.pk, severity=form.cleaned_data["severity"], actor=_actor(request)
        )
    except services.InvalidChange as exc:
        return _refused(request, incident, exc)
    return _done(request, incident, f"Severity changed to {form.cleaned_data['severity']}.")


@require_POST
@maintainer_required
def incident_note(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Add a note to the incident's timeline."""
    incident = _incident(request, incident_id)
    form = NoteForm(request.POST, prefix="note")
    if not form.is_valid():
        return _invalid(request, incident, note_form=form)
    try:
        services.incident_note_add(
            incident_id=incident.pk, text=form.cleaned_data["text"], actor=_actor(request)
        )
    except services.InvalidChange as exc:
        return _refused(request, incident, exc)
    return _done(request, incident, "Note added.")


@require_POST
@maintainer_required
def incident_acknowledge(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Record that a maintainer has seen the incident."""
    incident = _incident(request, incident_id)
    services.incident_acknowledge(incident_id=incident.pk, actor=_actor(request))
    return _done(request, incident, "Acknowledged.")


@require_POST
@maintainer_required
def action_item_add(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Add a detective, preventive or corrective action item."""
    incident = _incident(request, incident_id)
    form = ActionItemForm(request.POST, prefix="item")
    if not form.is_valid():
        return _invalid(request, incident, item_form=form)
    try:
        services.action_item_add(
            incident_id=incident.pk, actor=_actor(request), **form.cleaned_data
        )
    except services.InvalidChange as exc:
        return _refused(request, incident, exc)
    return _done(request, incident, "Action item added.")


@require_POST
@maintainer_required
def action_item_complete(request: HttpRequest, incident_id: str, item_id: str) -> HttpResponse:
    """Mark an action item done."""
    incident = _incident(request, incident_id)
    try:
        services.action_item_complete(
            incident_id=incident.pk, item_id=item_id, actor=_actor(request)
        )
    except services.InvalidChange as exc:
        return _refused(request, incident, exc)
    return _done(request, incident, "Action item done.")


# ----------------------------------------------------------------------------- postmortems


def _postmortem_context(incident: Incident, revision: int | None, **extra: Any) -> dict[str, Any]:
    page = selectors.postmortem_page(incident, revision=revision)
    forms = extra.pop("forms", {})
    sections = [
        {
            "key": key,
            "title": SECTION_TITLES.get(key, key),
            "form": forms.get(key)
            or NarrativeForm(
                initial={"section": key, "text": page.narrative.get(key, "")},
                prefix=key,
            ),
            "written": bool(page.narrative.get(key, "").strip()),
        }
        for key in EDITABLE_SECTIONS
    ]
    return {"page": page, "incident": incident, "sections": sections, **extra}


@login_required
def postmortem_page(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Show the postmortem (any revision), with its editable narrative sections."""
    incident = _incident(request, incident_id)
    try:
        revision = int(request.GET["revision"]) if request.GET.get("revision") else None
    except ValueError as exc:
        raise Http404("a revision is a number") from exc
    context = _postmortem_context(incident, revision)
    if revision is not None and context["page"].revision is None:
        raise Http404(f"no revision {revision}")
    return render(request, "incidents/postmortem.html", context)


@require_POST
@maintainer_required
def postmortem_regenerate(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Compose the postmortem again from the stream; maintainers' sections are kept."""
    incident = _incident(request, incident_id)
    before = incident.postmortem_revision
    revision = services.postmortem_generate(incident_id=incident.pk, actor=_actor(request))
    if revision > before:
        messages.success(request, f"Postmortem revision {revision} written.")
    else:
        messages.info(request, "Nothing changed since the last revision.")
    return redirect("postmortem", incident_id=incident.pk)


@require_POST
@maintainer_required
def narrative_edit(request: HttpRequest, incident_id: str, section: str) -> HttpResponse:
    """Store a maintainer's text for one section and write the postmortem again with it."""
    incident = _incident(request, incident_id)
    if section not in EDITABLE_SECTIONS:
        raise Http404(f"no section {section}")
    form = NarrativeForm(request.POST, prefix=section)
    if not form.is_valid() or form.cleaned_data["section"] != section:
        context = _postmortem_context(incident, None, forms={section: form})
        return render(request, "incidents/postmortem.html", context)
    try:
        services.narrative_edit(
            incident_id=incident.pk,
            section=section,
            text=form.cleaned_data["text"],
            actor=_actor(request),
        )
    except services.InvalidChange as exc:
        messages.error(request, str(exc))
        return redirect("postmortem", incident_id=incident.pk)
    revision = services.postmortem_generate(incident_id=incident.pk, actor=_actor(request))
    title = SECTION_TITLES.get(section, section)
    messages.success(request, f"{title} saved; revision {revision} uses it.")
    return redirect("postmortem", incident_id=incident.pk)


@login_required
def postmortem_download(request: HttpRequest, incident_id: str) -> HttpResponse:
    """Download the postmortem's Markdown (the latest revision, or ?revision=N)."""
    incident = _incident(request, incident_id)
    try:
        revision = int(request.GET["revision"]) if request.GET.get("revision") else None
    except ValueError as exc:
        raise Http404("a revision is a number") from exc
    page = selectors.postmortem_page(incident, revision=revision)
    if page.revision is None:
        raise Http404("this incident has no postmortem yet")
    stem = f"postmortem-{incident.repository}-{incident.release_name}-r{page.revision.revision}"
    filename = re.sub(r"[^A-Za-z0-9._-]+", "-", stem) + ".md"
    response = HttpResponse(page.revision.markdown, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def lessons(request: HttpRequest) -> HttpResponse:
    """Show lessons learned across incidents, most frequent first."""
    readable = access_for(request.user).readable
    repository = request.GET.get("repository") or None
    return render(
        request,
        "incidents/lessons.html",
        {
            "lessons": selectors.lessons_across(readable=readable, repository=repository),
            "repositories": repository_names(readable=readable),
            "repository": repository or "",
        },
    )
