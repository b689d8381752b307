"""Authenticate CI bots by `Authorization: Bearer <token>`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from releases.models import BotToken
from releases.tokens import token_hash


@dataclass(frozen=True)
class BotUser:
    """The user a bot token authenticates as: never staff, scoped by its token."""

    token: BotToken
    # The names of the repositories the token may reach, read with the token itself.
    repositories: frozenset[str] = frozenset()
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    is_anonymous: bool = False

    @property
    def username(self) -> str:
        """Return a name for logs and audit events."""
        return f"bot:{self.token.name}"


class BotTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[BotUser, BotToken] | None:
        """Return the bot a bearer token belongs to, None without one, or refuse a bad one."""
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Authorization must be 'Bearer <token>'")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("the bearer token has characters no token has") from exc
        # One query, the token joined to its repositories (a row each), on every request:
        # nothing is cached, so a revoked token is refused from the next request on.
        rows = list(
            BotToken.objects.filter(token_hash=token_hash(token), revoked_at__isnull=True).annotate(
                repository_name=F("repositories__full_name")
            )
        )
        if not rows:
            raise AuthenticationFailed("invalid or revoked bot token")
        bot = rows[0]
        names = frozenset(row.repository_name for row in rows if row.repository_name)
        now = timezone.now()
        if bot.last_used_at is None or now - bot.last_used_at > timedelta(minutes=1):
            BotToken.objects.filter(pk=bot.pk).update(last_used_at=now)
        return BotUser(bot, names), bot

    def authenticate_header(self, request: Request) -> str:
        """Return the WWW-Authenticate value that makes a missing token a 401."""
        return 'Bearer realm="shiplog"'
