"""Limit failed logins per username and client address, counted in Django's cache.

A person who gets their password wrong a few times is refused for the rest of the window, from
that address, before any password is checked; so is an address that fails for many usernames
(password spraying). A successful login clears the count of its username and address. Both
login forms (the pages' and the admin's) check the limit; every failure Django reports, from
any form, is counted through the `user_login_failed` signal.

The counts live in the configured cache: Redis in production, so every web process shares
them. A cache that cannot be reached lets logins through (with a warning) rather than lock
everyone out.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.http import HttpRequest

logger = logging.getLogger(__name__)

THROTTLED = "throttled"


def client_address(request: HttpRequest) -> str:
    """Return the client's address, read through the trusted proxies in front of Shiplog.

    Each proxy appends the address it received the request from to X-Forwarded-For, so with
    N trusted proxies the client is the Nth entry from the right; anything further left was
    written by the client and proves nothing.
    """
    proxies = settings.SHIPLOG_TRUSTED_PROXIES
    if proxies:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return str(hops[-proxies])
    return str(request.META.get("REMOTE_ADDR", ""))


def _key(*parts: str) -> str:
    # Usernames may hold any character; a digest keeps the key short and valid for any cache.
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return f"login-failures:{digest}"


def _keys(request: HttpRequest, username: str) -> tuple[str, str]:
    address = client_address(request)
    return _key("user", username.casefold(), address), _key("address", address)


def login_refused(request: HttpRequest, username: str) -> bool:
    """Return whether logins as `username` from this client are refused for now."""
    user_key, address_key = _keys(request, username)
    try:
        counts = cache.get_many([user_key, address_key])
    except Exception as exc:  # an unreachable cache must not lock everyone out
        logger.warning("login limits unavailable, not enforced (%s)", type(exc).__name__)
        return False
    user_failures: int = counts.get(user_key, 0)
    address_failures: int = counts.get(address_key, 0)
    return (
        user_failures >= settings.SHIPLOG_LOGIN_FAILURES_PER_USER
        or address_failures >= settings.SHIPLOG_LOGIN_FAILURES_PER_ADDRESS
    )


def _count(key: str) -> None:
    window = settings.SHIPLOG_LOGIN_WINDOW_SECONDS
    # The window opens with the first failure: `add` sets the expiry only if the key is new.
    cache.add(key, 0, timeout=window)
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=window)


def login_failure_record(request: HttpRequest, username: str) -> None:
    """Count one failed login for the username and for the client's address."""
    try:
        for key in _keys(request, username):
            _count(key)
    except Exception as exc:
        logger.warning("could not count a failed login (%s)", type(exc).__name__)


def login_success_record(request: HttpRequest, username: str) -> None:
    """Forget the username's failures from this address once its owner gets in."""
    user_key, _ = _keys(request, username)
    try:
        cache.delete(user_key)
    except Exception as exc:
        logger.warning("could not clear failed logins (%s)", type(exc).__name__)


@receiver(user_login_failed, dispatch_uid="shiplog-login-failed")
def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = credentials.get("username")
    if request is not None and isinstance(username, str):
        login_failure_record(request, username)


@receiver(user_logged_in, dispatch_uid="shiplog-logged-in")
def _on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None:
        login_success_record(request, user.get_username())


class LoginLimitMixin(AuthenticationForm):
    """Refuse a login form once its username or address has failed too often, unchecked."""

    request: HttpRequest | None

    def clean(self) -> dict[str, Any]:
        """Refuse a limited login before its password is checked; otherwise check it."""
        username = self.cleaned_data.get("username")
        if self.request is not None and username and login_refused(self.request, username):
            minutes = max(1, settings.SHIPLOG_LOGIN_WINDOW_SECONDS // 60)
            raise ValidationError(
                "Too many failed logins. Try again in %(minutes)d minutes.",
                code=THROTTLED,
                params={"minutes": minutes},
            )
        return super().clean()

    @property
    def throttled(self) -> bool:
        """Return whether the form was refused by the limit."""
        return any(error.code == THROTTLED for error in self.errors.as_data().get("__all__", []))


class LimitedLoginForm(LoginLimitMixin, AuthenticationForm):
    """The pages' login form, with the limit."""


class LimitedAdminLoginForm(LoginLimitMixin, AdminAuthenticationForm):
    """The admin's login form (staff only), with the limit."""
