"""Bot tokens: random, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "shiplog_"


def new_token() -> str:
    """Return a new random token; 256 bits of entropy make a fast hash safe to store."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """Return the part of a token safe to show again, to tell tokens apart."""
    return token[: len(PREFIX) + 4]


def new_webhook_secret() -> str:
    """Return a new random webhook signing secret, for a platform's webhook settings."""
    return secrets.token_urlsafe(32)
