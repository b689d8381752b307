"""The ceiling: a bare Django view that checks a GitHub signature and parses the JSON, no DB.

Served by the same gunicorn and the same production middleware as Shiplog (see
`bench.ceiling_settings`), so Shiplog / ceiling is what the hook's own work costs.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from releases import signatures


@csrf_exempt
def verify_only(request: HttpRequest) -> JsonResponse:
    """Verify X-Hub-Signature-256 and decode the body; store nothing."""
    if request.method != "POST":
        return JsonResponse({"status": "rejected", "error": "POST only"}, status=405)
    try:
        digest = signatures.github_digest(request.headers.get("X-Hub-Signature-256"))
    except signatures.BadSignatureHeader as exc:
        return JsonResponse({"status": "rejected", "error": str(exc)}, status=401)
    body = request.body
    secret = settings.SHIPLOG_GITHUB_WEBHOOK_SECRET
    if signatures.matching_secret(body, digest, [(secret, "")]) is None:
        return JsonResponse({"status": "rejected", "error": "bad signature"}, status=401)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return JsonResponse({"status": "rejected", "error": str(exc)}, status=400)
    # Answer in the shape Shiplog does, so the load generator parses the same bytes.
    return JsonResponse(
        {
            "status": "verified",
            "action": payload.get("action") if isinstance(payload, dict) else None,
            "event_id": request.headers.get("X-GitHub-Delivery", ""),
        },
        status=202,
    )


urlpatterns = [path("hooks/github/", verify_only)]
