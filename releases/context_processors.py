"""Template context every page shares: whether the signed-in person may act."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from releases.access import is_maintainer


def roles(request: HttpRequest) -> dict[str, Any]:
    """Return `can_act`: true for maintainers and superusers, asked at most once per page."""
    return {"can_act": SimpleLazyObject(lambda: is_maintainer(request.user))}
