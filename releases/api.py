"""The REST API for CI bots and the UI: releases, their timelines, the gate, the stream."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.http import Http404
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import paginated
from releases import policy as policy_module
from releases import selectors, services
from releases.access import Access, access_for
from releases.models import Repository
from releases.serializers import (
    CustomEventSerializer,
    PolicySerializer,
    ReleaseSerializer,
    StreamEventSerializer,
    entry_data,
    gate_data,
    release_data,
    stream_event_data,
)

API_HEADERS = ("Content-Type", "User-Agent", "Idempotency-Key")


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        """Return the page size asked for; refuse one that is not a number from 1 to 200."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError as exc:
            raise ValidationError({"page_size": f"must be a whole number, not {raw!r}"}) from exc
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": f"must be between 1 and {self.max_page_size}"})
        return size


class ShiplogAPIView(APIView):
    permission_classes = [IsAuthenticated]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Refuse query parameters the database cannot hold before any query runs."""
        for key, values in request.query_params.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                raise ValidationError({key.replace("\x00", ""): "must not contain NUL characters"})
        super().initial(request, *args, **kwargs)

    def access(self) -> Access:
        """Return what the caller may read and write."""
        return access_for(self.request.user)

    def readable_repository(self, owner: str, name: str, tag: str) -> str:
        """Return `owner/name`, or 404 (as for a missing release) if the caller may not read it."""
        repository = f"{owner}/{name}"
        if not self.access().can_read(repository):
            raise _no_release(repository, tag)
        return repository


def _no_release(repository: str, tag: str) -> NotFound:
    return NotFound(f"no release {tag} of {repository} that this token may read")


def _datetime_param(request: Request, name: str) -> Any:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
        if value is not None:
            # A time without a zone is UTC. PostgreSQL refuses some offsets Python accepts
            # (+23:13); UTC it always takes.
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        value = None
    if value is None:
        raise ValidationError({name: f"must be an ISO 8601 date-time, not {raw!r}"})
    return value


class ReleaseListView(ShiplogAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("repository", str, description="owner/name"),
            OpenApiParameter("state", str, description="any state or flag, e.g. blocked"),
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=paginated("ReleasePage", ReleaseSerializer(many=True)),
    )
    def get(self, request: Request) -> Response:
        """List releases the caller may read, newest first."""
        state = request.query_params.get("state")
        valid = {"pending", "running", "blocked", "failed", "partially_deployed", "deployed"}
        if state and state not in valid:
            raise ValidationError({"state": f"must be one of {', '.join(sorted(valid))}"})
        releases = selectors.release_list(
            readable=self.access().readable,
            repository=request.query_params.get("repository"),
            state=state,
            since=_datetime_param(request, "since"),
            until=_datetime_param(request, "until"),
        )
        pages = Pages()
        page = pages.paginate_queryset(releases, request, view=self)
        return pages.get_paginated_response([release_data(release) for release in page or []])


class ReleaseDetailView(ShiplogAPIView):
    @extend_schema(
        responses=inline_serializer(
            "ReleaseDetail",
            {
                "release": ReleaseSerializer(),
                "timeline": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request: Request, owner: str, name: str, tag: str) -> Response:
        """Return a release, its state and its timeline across both platforms."""
        repository = self.readable_repository(owner, name, tag)
        timeline = selectors.release_timeline_get(repository=repository, tag=tag)
        if timeline is None:
            raise _no_release(repository, tag)
        return Response(
            {
                "release": release_data(timeline.release),
                "timeline": [entry_data(e, timeline.role(e)) for e in timeline.entries],
            }
        )


class GateView(ShiplogAPIView):
    @extend_schema(
        responses=inline_serializer(
            "Gate",
            {
                "deployable": serializers.BooleanField(),
                "state": serializers.CharField(),
                "blocking": serializers.ListField(child=serializers.DictField()),
                "advisory_failures": serializers.ListField(child=serializers.DictField()),
                "pending": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request: Request, owner: str, name: str, tag: str) -> Response:
        """Answer "may this release deploy now?" under the repository's policy."""
        repository = self.readable_repository(owner, name, tag)
        detail = selectors.release_detail_get(repository=repository, tag=tag)
        if detail is None:
            raise _no_release(repository, tag)
        return Response(gate_data(detail))


class StreamView(ShiplogAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="return events after this position"),
            OpenApiParameter("limit", int, description="at most this many (1-500, default 50)"),
            OpenApiParameter("repository", str),
            OpenApiParameter("source", str),
            OpenApiParameter("type", str),
        ],
        responses=inline_serializer(
            "StreamPage",
            {
                "events": StreamEventSerializer(many=True),
                "next_after": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        """Return stream events in position order; follow with `after=<next_after>`."""
        after = _int_param(request, "after", 0, 0, 2**63 - 1)
        limit = _int_param(request, "limit", 50, 1, 500)
        events = selectors.stream_page_rows(
            readable=self.access().readable,
            after=after,
            limit=limit,
            repository=request.query_params.get("repository"),
            source=request.query_params.get("source"),
            event_type=request.query_params.get("type"),
        )
        return Response(
            {
                "events": [stream_event_data(event) for event in events],
                "next_after": events[-1]["position"] if events else after,
            }
        )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({name: f"must be a whole number, not {raw!r}"}) from exc
    if not low <= value <= high:
        raise ValidationError({name: f"must be between {low} and {high}"})
    return value


class EventCreateView(ShiplogAPIView):
    @extend_schema(
        request=CustomEventSerializer,
        responses={
            201: inline_serializer(
                "EventRecorded",
                {
                    "status": serializers.CharField(),
                    "position": serializers.IntegerField(),
                    "event_id": serializers.UUIDField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        """Record a custom event (deploy marker, probe result, annotation) in the stream."""
        incoming = dict(request.data) if isinstance(request.data, dict) else request.data
        if isinstance(incoming, dict) and "idempotency_key" not in incoming:
            header = request.headers.get("Idempotency-Key")
            if header:
                incoming["idempotency_key"] = header
        serializer = CustomEventSerializer(data=incoming)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data
        if not self.access().can_write(fields["repository"]):
            raise PermissionDenied(f"this token may not write to {fields['repository']}")
        appended = services.custom_event_record(
            fields=fields,
            body=request.body,
            headers={h: request.headers[h] for h in API_HEADERS if h in request.headers},
            actor=getattr(request.user, "username", ""),
        )
        return Response(
            {
                "status": "recorded" if appended.created else "duplicate",
                "position": appended.position,
                "event_id": str(appended.event_id),
            },
            status=status.HTTP_201_CREATED if appended.created else status.HTTP_200_OK,
        )


class PolicyView(ShiplogAPIView):
    def repository(self, owner: str, name: str, *, write: bool) -> Repository:
        """Return the repository if the caller may read (or write) it."""
        full_name = f"{owner}/{name}"
        access = self.access()
        if not access.can_read(full_name):
            raise NotFound(f"no repository {full_name} that this token may read")
        if write and not access.can_write(full_name):
            raise PermissionDenied(f"this token may not change the policy of {full_name}")
        try:
            return Repository.objects.get(full_name=full_name)
        except Repository.DoesNotExist:
            if write:
                return services.repository_create(full_name=full_name)
            raise Http404(f"no repository {full_name}") from None

    @extend_schema(responses=PolicySerializer)
    def get(self, request: Request, owner: str, name: str) -> Response:
        """Return the repository's deploy policy as TOML (the default if none is set)."""
        repo = self.repository(owner, name, write=False)
        stored = getattr(repo, "policy", None)
        document = (
            stored.document
            if stored is not None
            else policy_module.dumps(policy_module.DEFAULT_POLICY, repository=repo.full_name)
        )
        return Response({"repository": repo.full_name, "document": document})

    @extend_schema(request=PolicySerializer, responses=PolicySerializer)
    def put(self, request: Request, owner: str, name: str) -> Response:
        """Replace the repository's deploy policy; invalid TOML is refused with the reason."""
        repo = self.repository(owner, name, write=True)
        serializer = PolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = serializer.validated_data["document"]
        try:
            services.policy_set(
                repository=repo, document=document, actor=getattr(request.user, "username", "")
            )
        except policy_module.PolicyError as exc:
            raise ValidationError({"document": [str(exc)]}) from exc
        return Response({"repository": repo.full_name, "document": document})


class CredentialSerializer(serializers.Serializer[dict[str, Any]]):
    token = serializers.CharField(
        write_only=True,
        min_length=16,
        max_length=500,
        trim_whitespace=True,
        help_text="The API token; never shown again, only its last four characters.",
    )


def _credential_data(credential: Any) -> dict[str, Any]:
    return {
        "platform": credential.platform,
        "last_four": credential.last_four,
        "updated_at": credential.updated_at,
    }


class CredentialView(PolicyView):
    @extend_schema(
        responses=inline_serializer("Credentials", {"credentials": serializers.ListField()})
    )
    def get(self, request: Request, owner: str, name: str, platform: str = "") -> Response:
        """List the repository's CI API credentials by platform and last four characters."""
        repo = self.repository(owner, name, write=True)
        return Response({"credentials": [_credential_data(c) for c in repo.ci_credentials.all()]})

    @extend_schema(request=CredentialSerializer)
    def put(self, request: Request, owner: str, name: str, platform: str = "") -> Response:
        """Set or replace the CircleCI or GitHub API token the retry worker uses."""
        if platform not in {"github", "circleci"}:
            raise NotFound("credentials are for github or circleci")
        repo = self.repository(owner, name, write=True)
        serializer = CredentialSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            credential = services.ci_credential_set(
                repository=repo, platform=platform, token=serializer.validated_data["token"]
            )
        except ValueError as exc:
            raise ValidationError({"token": [str(exc)]}) from exc
        return Response(_credential_data(credential))
