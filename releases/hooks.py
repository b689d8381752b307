"""Webhook endpoints: read the raw request, hand it to one service, answer in JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from releases.services import (
    DeliveryOutcome,
    DeliveryRejected,
    circleci_delivery_record,
    github_delivery_record,
)

logger = logging.getLogger(__name__)

Recorder = Callable[..., DeliveryOutcome]


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": "rejected", "error": message}, status=status)


def _read_body(request: HttpRequest) -> bytes:
    """Read the raw body, refusing more than GitHub's 25 MB cap before and while reading.

    Django's own `request.body` would refuse anything over DATA_UPLOAD_MAX_MEMORY_SIZE
    (2.5 MB); only these views accept the larger bodies.
    """
    limit = settings.SHIPLOG_MAX_WEBHOOK_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise DeliveryRejected(400, "Content-Length must be a whole number") from exc
    if declared > limit:
        raise DeliveryRejected(413, f"body is larger than the {limit} byte limit")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise DeliveryRejected(413, f"body is larger than the {limit} byte limit")
    return body


def _receive(request: HttpRequest, record: Recorder) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, f"method {request.method} is not allowed; webhooks are POSTed")
        response["Allow"] = "POST"
        return response
    try:
        body = _read_body(request)
        headers: Mapping[str, str] = request.headers
        outcome = record(
            headers=headers, body=body, content_type=request.META.get("CONTENT_TYPE", "")
        )
    except DeliveryRejected as exc:
        return _error(exc.status, exc.message)
    except (OperationalError, InterfaceError) as exc:
        # The sender keeps the delivery and tries again; nothing was half-stored.
        logger.warning("database unavailable while recording a delivery: %s", type(exc).__name__)
        response = _error(503, "the event store is unavailable; retry later")
        response["Retry-After"] = "30"
        return response
    except DatabaseError:
        logger.exception("database error while recording a delivery")
        response = _error(503, "the event store could not record this delivery; retry later")
        response["Retry-After"] = "30"
        return response
    return JsonResponse(outcome.body, status=outcome.status)


@csrf_exempt
def github_hook(request: HttpRequest) -> JsonResponse:
    """Record one GitHub webhook delivery."""
    return _receive(request, github_delivery_record)


@csrf_exempt
def circleci_hook(request: HttpRequest) -> JsonResponse:
    """Record one CircleCI outbound webhook delivery."""
    return _receive(request, circleci_delivery_record)
