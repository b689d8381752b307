"""Route URLs to the hooks, the API, the admin and the pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from releases import hooks

urlpatterns = [
    path("hooks/github/", hooks.github_hook, name="github-hook"),
    path("hooks/circleci/", hooks.circleci_hook, name="circleci-hook"),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file of its own, and the template
    # keeps its styles in a static file, so the docs page needs no exception to the CSP.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="api/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
    path("", include("config.pages_urls")),
]

handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
