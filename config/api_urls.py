"""URLs of the REST API, version 1."""

from __future__ import annotations

from django.urls import path

from incidents import api as incidents_api
from releases import api

urlpatterns = [
    path("incidents/", incidents_api.IncidentListView.as_view(), name="api-incidents"),
    path(
        "incidents/<uuid:incident_id>/",
        incidents_api.IncidentDetailView.as_view(),
        name="api-incident",
    ),
    path(
        "incidents/<uuid:incident_id>/status/",
        incidents_api.IncidentStatusView.as_view(),
        name="api-incident-status",
    ),
    path(
        "incidents/<uuid:incident_id>/notes/",
        incidents_api.IncidentNoteView.as_view(),
        name="api-incident-notes",
    ),
    path(
        "incidents/<uuid:incident_id>/action-items/",
        incidents_api.ActionItemView.as_view(),
        name="api-incident-action-items",
    ),
    path(
        "incidents/<uuid:incident_id>/postmortem.<str:fmt>",
        incidents_api.PostmortemView.as_view(),
        name="api-incident-postmortem",
    ),
    path("lessons/", incidents_api.LessonsView.as_view(), name="api-lessons"),
    path("releases/", api.ReleaseListView.as_view(), name="api-releases"),
    path(
        "releases/<str:owner>/<str:name>/<path:tag>/gate",
        api.GateView.as_view(),
        name="api-release-gate",
    ),
    path(
        "releases/<str:owner>/<str:name>/<path:tag>/",
        api.ReleaseDetailView.as_view(),
        name="api-release",
    ),
    path("stream/", api.StreamView.as_view(), name="api-stream"),
    path("events/", api.EventCreateView.as_view(), name="api-events"),
    path(
        "repositories/<str:owner>/<str:name>/credentials/",
        api.CredentialView.as_view(),
        name="api-credentials",
    ),
    path(
        "repositories/<str:owner>/<str:name>/credentials/<str:platform>",
        api.CredentialView.as_view(),
        name="api-credential",
    ),
    path(
        "repositories/<str:owner>/<str:name>/policy",
        api.PolicyView.as_view(),
        name="api-policy",
    ),
]
