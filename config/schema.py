"""OpenAPI schema hooks: document the error answers every endpoint can give."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ERRORS = {
    "400": "The request is invalid; the body names each problem.",
    "401": "No valid bot token or session.",
    "403": "The token or user may not do this.",
    "404": "Not found, or not readable with this token.",
    "429": "Too many requests; retry later.",
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "JSON naming the problem: {'detail': ...} or one entry per invalid field.",
    "additionalProperties": True,
}


def add_error_responses(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Add the documented error answers to every operation of the schema."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    return result


class BotTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Describe bot tokens in the schema: `Authorization: Bearer <token>`."""

    target_class = "releases.authentication.BotTokenAuthentication"
    name = "botToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """Return the OpenAPI security scheme of bot tokens."""
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A bot token from `manage.py bot_token create`, scoped to "
            "repositories, read or write.",
        }


def paginated(name: str, item: Any) -> Any:
    """Return the schema of a page of `item`s as the list endpoints answer it."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )
