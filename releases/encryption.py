"""Encrypt secrets at rest with keys from the environment, rotatable with MultiFernet."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class UndecryptableSecret(Exception):
    """A stored secret was encrypted with a key that is no longer configured."""


@cache
def _fernet() -> MultiFernet:
    keys = list(getattr(settings, "SHIPLOG_ENCRYPTION_KEYS", []))
    if not keys:
        # Without configured keys, derive one from SECRET_KEY so a local install works; the
        # production settings require SHIPLOG_ENCRYPTION_KEYS.
        digest = hashlib.sha256(f"shiplog-encryption:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> bytes:
    """Return `plaintext` encrypted with the newest key."""
    return _fernet().encrypt(plaintext.encode())


def decrypt(token: bytes) -> str:
    """Return the plaintext of a token made by `encrypt`, with any configured key."""
    try:
        return _fernet().decrypt(bytes(token)).decode()
    except InvalidToken as exc:
        raise UndecryptableSecret("no configured key decrypts this secret") from exc


def rotate(token: bytes) -> bytes:
    """Return `token` re-encrypted with the newest key."""
    try:
        return _fernet().rotate(bytes(token))
    except InvalidToken as exc:
        raise UndecryptableSecret("no configured key decrypts this secret") from exc
