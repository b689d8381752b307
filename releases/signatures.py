"""Sign and verify webhook bodies the way GitHub and CircleCI do, in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def _digest(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_github(body: bytes, secret: str) -> str:
    """Return the `X-Hub-Signature-256` value GitHub sends for `body`."""
    return f"sha256={_digest(secret, body)}"


def sign_circleci(body: bytes, secret: str) -> str:
    """Return the `circleci-signature` value CircleCI sends for `body`."""
    return f"v1={_digest(secret, body)}"


class BadSignatureHeader(ValueError):
    """The signature header is missing or not in the platform's format."""


def github_digest(header: str | None) -> str:
    """Return the hex digest from an `X-Hub-Signature-256` header."""
    if not header:
        raise BadSignatureHeader("missing X-Hub-Signature-256 header")
    scheme, _, digest = header.strip().partition("=")
    if scheme != "sha256" or not _is_sha256_hex(digest):
        raise BadSignatureHeader("X-Hub-Signature-256 must be sha256=<64 hex digits>")
    return digest.lower()


def circleci_digest(header: str | None) -> str:
    """Return the v1 hex digest from a `circleci-signature` header.

    Only v1 is read: CircleCI says to check the latest version alone, against downgrades.
    """
    if not header:
        raise BadSignatureHeader("missing circleci-signature header")
    for part in header.split(","):
        version, _, digest = part.strip().partition("=")
        if version == "v1":
            if not _is_sha256_hex(digest):
                raise BadSignatureHeader("circleci-signature v1 must be 64 hex digits")
            return digest.lower()
    raise BadSignatureHeader("circleci-signature has no v1 signature")


def matching_secret(body: bytes, digest: str, candidates: Iterable[tuple[str, T]]) -> T | None:
    """Return the tag of the first secret whose HMAC of `body` equals `digest`, else None.

    Every candidate is compared, so the time taken does not tell which one matched.
    """
    found: T | None = None
    for secret, tag in candidates:
        if hmac.compare_digest(_digest(secret, body), digest) and found is None:
            found = tag
    return found


def _is_sha256_hex(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)
