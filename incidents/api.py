"""The incidents API: list, detail with evidence and timeline, status changes, postmortems."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from config.schema import paginated
from incidents import selectors, services
from incidents.models import Incident, Status
from incidents.postmortem import render_html
from releases.api import Pages, ShiplogAPIView


class IncidentSerializer(serializers.ModelSerializer[Incident]):
    class Meta:
        model = Incident
        fields = [
            "id",
            "repository",
            "release_name",
            "rule",
            "title",
            "summary",
            "status",
            "severity",
            "began_at",
            "opened_at",
            "acknowledged_at",
            "resolved_at",
            "resolution",
            "postmortem_revision",
        ]


class StatusChangeSerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(Status.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")


class NoteSerializer(serializers.Serializer[dict[str, Any]]):
    text = serializers.CharField(max_length=10_000)


class ActionItemSerializer(serializers.Serializer[dict[str, Any]]):
    kind = serializers.ChoiceField(["detective", "preventive", "corrective"])
    text = serializers.CharField(max_length=2_000)


def _detail(incident: Incident) -> dict[str, Any]:
    data = dict(IncidentSerializer(incident).data)
    data["evidence"] = incident.evidence
    data["findings"] = incident.details.get("findings", {})
    data["timeline"] = [
        {
            "position": event.position,
            "type": event.event_type,
            "occurred_at": event.occurred_at,
            "actor": event.actor,
            "data": {k: v for k, v in event.data.items() if k not in {"markdown", "finding"}},
        }
        for event in incident.events.all()
    ]
    data["action_items"] = [
        {"id": item.item_id, "kind": item.kind, "text": item.text, "done": item.done}
        for item in incident.action_items.all()
    ]
    return data


class IncidentView(ShiplogAPIView):
    def incident(self, incident_id: str, *, write: bool = False) -> Incident:
        """Return the incident if the caller may read it (and act on it, for writes)."""
        incident = Incident.objects.filter(pk=incident_id).first()
        access = self.access()
        if incident is None or not access.can_read(incident.repository):
            raise NotFound(f"no incident {incident_id} that this token may read")
        if write and not access.can_write(incident.repository):
            raise PermissionDenied(f"this token may not act on {incident.repository}")
        return incident

    def actor(self) -> str:
        """Return who is acting, for the incident's timeline."""
        return str(getattr(self.request.user, "username", "") or "api")


class IncidentListView(IncidentView):
    @extend_schema(
        parameters=[
            OpenApiParameter("repository", str),
            OpenApiParameter("status", str, description="a status, or open"),
            OpenApiParameter("rule", str),
            OpenApiParameter("release", str),
        ],
        responses=paginated("IncidentPage", IncidentSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        """List incidents the caller may read, newest first."""
        status = request.query_params.get("status")
        if status and status not in {*Status.values, "open"}:
            raise ValidationError({"status": f"must be open or one of {', '.join(Status.values)}"})
        incidents = selectors.incident_list(
            readable=self.access().readable,
            repository=request.query_params.get("repository"),
            status=status,
            rule=request.query_params.get("rule"),
            release=request.query_params.get("release"),
        )
        pages = Pages()
        page = pages.paginate_queryset(incidents, request, view=self)
        return pages.get_paginated_response(IncidentSerializer(page, many=True).data)


class IncidentDetailView(IncidentView):
    @extend_schema(responses=inline_serializer("IncidentDetail", {"id": serializers.UUIDField()}))
    def get(self, request: Request, incident_id: str) -> Response:
        """Return an incident with its evidence, findings, timeline and action items."""
        return Response(_detail(self.incident(incident_id)))


class IncidentStatusView(IncidentView):
    @extend_schema(request=StatusChangeSerializer, responses=IncidentSerializer)
    def post(self, request: Request, incident_id: str) -> Response:
        """Move the incident to a new status, with an optional note."""
        incident = self.incident(incident_id, write=True)
        serializer = StatusChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            changed = services.incident_status_change(
                incident_id=incident.pk,
                status=serializer.validated_data["status"],
                note=serializer.validated_data["note"],
                actor=self.actor(),
            )
        except services.InvalidChange as exc:
            raise ValidationError({"status": [str(exc)]}) from exc
        return Response(_detail(changed))


class IncidentNoteView(IncidentView):
    @extend_schema(request=NoteSerializer, responses=IncidentSerializer)
    def post(self, request: Request, incident_id: str) -> Response:
        """Add a note to the incident's timeline."""
        incident = self.incident(incident_id, write=True)
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changed = services.incident_note_add(
            incident_id=incident.pk, text=serializer.validated_data["text"], actor=self.actor()
        )
        return Response(_detail(changed), status=201)


class ActionItemView(IncidentView):
    @extend_schema(request=ActionItemSerializer, responses=IncidentSerializer)
    def post(self, request: Request, incident_id: str) -> Response:
        """Add a detective, preventive or corrective action item."""
        incident = self.incident(incident_id, write=True)
        serializer = ActionItemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changed = services.action_item_add(
            incident_id=incident.pk, actor=self.actor(), **serializer.validated_data
        )
        return Response(_detail(changed), status=201)


class PostmortemView(IncidentView):
    @extend_schema(responses={(200, "text/markdown"): str, (200, "text/html"): str})
    def get(self, request: Request, incident_id: str, fmt: str) -> HttpResponse:
        """Return the latest postmortem revision as Markdown or HTML."""
        if fmt not in {"md", "html"}:
            raise NotFound("postmortems are served as .md or .html")
        incident = self.incident(incident_id)
        latest = incident.postmortems.order_by("-revision").first()
        if latest is None:
            raise NotFound("this incident has no postmortem yet")
        if fmt == "md":
            response = HttpResponse(latest.markdown, content_type="text/markdown; charset=utf-8")
            filename = f"postmortem-{incident.repository.replace('/', '-')}-"
            filename += f"{incident.release_name}-r{latest.revision}.md"
            response["Content-Disposition"] = f'inline; filename="{filename}"'
            return response
        return HttpResponse(render_html(latest.markdown), content_type="text/html; charset=utf-8")


class LessonsView(IncidentView):
    @extend_schema(parameters=[OpenApiParameter("repository", str)])
    def get(self, request: Request) -> Response:
        """Return lessons learned across incidents, with counts and evidence."""
        summaries = selectors.lessons_across(
            readable=self.access().readable, repository=request.query_params.get("repository")
        )
        return Response(
            {
                "lessons": [
                    {
                        "key": s.key,
                        "title": s.title,
                        "count": s.count,
                        "subjects": s.subjects,
                        "action": s.action,
                        "incidents": s.incidents,
                    }
                    for s in summaries
                ]
            }
        )
