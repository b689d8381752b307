"""Route URLs to the hooks, the API, the admin and the pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from releases import hooks

urlpatterns = [
    path("hooks/github/", hooks.github_hook, name="github-hook"),
    path("hooks/circleci/", hooks.circleci_hook, name="circleci-hook"),
    path("admin/", admin.site.urls),
]
