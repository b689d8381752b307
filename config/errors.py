"""Error pages: JSON for the API and the hooks, HTML for people."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

MACHINE_PREFIXES = ("/api/", "/hooks/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer an unknown URL."""
    if request.path.startswith(MACHINE_PREFIXES):
        return JsonResponse({"detail": f"no such endpoint: {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Answer an unexpected failure without a traceback."""
    if request.path.startswith(MACHINE_PREFIXES):
        return JsonResponse({"detail": "internal error; it has been logged"}, status=500)
    return defaults.server_error(request)
