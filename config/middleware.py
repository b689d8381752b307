"""Security headers for every response: a Content-Security-Policy without 'unsafe-inline'."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def content_security_policy(directives: dict[str, str]) -> str:
    """Return a Content-Security-Policy header value from its directives."""
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    """Send `SHIPLOG_CSP` on every response that does not set its own policy.

    Every page keeps its CSS and JavaScript in static files, so nothing needs
    'unsafe-inline' or 'unsafe-eval', and no page may be framed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = content_security_policy(settings.SHIPLOG_CSP)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.header)
        return response
