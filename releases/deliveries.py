"""Build signed webhook deliveries exactly as GitHub and CircleCI send them.

The demo, the benchmarks and the tests all post through the real endpoints with these.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from releases.signatures import sign_circleci, sign_github


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery: where it goes, its headers and its raw body."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        """Return the Content-Type header."""
        return self.headers["Content-Type"]

    def django_headers(self) -> dict[str, str]:
        """Return the headers as keyword arguments for Django's test client."""
        return {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in self.headers.items()
            if name != "Content-Type"
        }


def github_delivery(
    event: str,
    payload: Any,
    secret: str,
    *,
    delivery_id: str | None = None,
    hook_id: int | str = 421_337,
    form: bool = False,
) -> Delivery:
    """Return a GitHub delivery of `payload`, signed with `secret`."""
    raw = orjson.dumps(payload)
    body = urlencode({"payload": raw.decode()}).encode() if form else raw
    return Delivery(
        path="/hooks/github/",
        headers={
            "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
            "User-Agent": "GitHub-Hookshot/shiplog",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": str(hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": "1",
            "X-Hub-Signature-256": sign_github(body, secret),
        },
        body=body,
    )


def circleci_delivery(payload: Any, secret: str) -> Delivery:
    """Return a CircleCI delivery of `payload` (its `type` is the event type)."""
    body = orjson.dumps(payload)
    event = payload.get("type", "") if isinstance(payload, dict) else ""
    return Delivery(
        path="/hooks/circleci/",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "CircleCI-Webhook/1.0",
            "circleci-event-type": str(event),
            "circleci-signature": sign_circleci(body, secret),
        },
        body=body,
    )
