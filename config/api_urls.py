"""URLs of the REST API, version 1."""

from __future__ import annotations

from django.urls import path

from releases import api

urlpatterns = [
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
        "repositories/<str:owner>/<str:name>/policy",
        api.PolicyView.as_view(),
        name="api-policy",
    ),
]
