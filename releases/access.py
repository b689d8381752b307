"""Who may read and write which repository: bot tokens, maintainers and viewers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from releases.authentication import BotUser

MAINTAINERS = "maintainers"
VIEWERS = "viewers"


@dataclass(frozen=True)
class Access:
    """The repositories a caller may read and write; None means every repository."""

    readable: frozenset[str] | None
    writable: frozenset[str] | None

    def can_read(self, repository: str) -> bool:
        """Return whether the caller may read `repository`."""
        return self.readable is None or repository in self.readable

    def can_write(self, repository: str) -> bool:
        """Return whether the caller may act on `repository`."""
        return self.writable is None or repository in self.writable


NOBODY = Access(readable=frozenset(), writable=frozenset())


def is_maintainer(user: Any) -> bool:
    """Return whether a signed-in person may act (maintainers and superusers)."""
    if not getattr(user, "is_authenticated", False) or isinstance(user, BotUser):
        return False
    return bool(user.is_superuser or user.groups.filter(name=MAINTAINERS).exists())


def access_for(user: Any) -> Access:
    """Return what `user` (a person, a bot, or anonymous) may read and write."""
    if isinstance(user, BotUser):
        names = user.repositories
        return Access(readable=names, writable=names if user.token.can_write else frozenset())
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return NOBODY
    if is_maintainer(user):
        return Access(readable=None, writable=None)
    return Access(readable=None, writable=frozenset())


def maintainer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let maintainers through; send anonymous people to log in and refuse everyone else."""

    @wraps(view)
    def check(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_maintainer(request.user):
            raise PermissionDenied("only maintainers can change this")
        return view(request, *args, **kwargs)

    return login_required(check)
