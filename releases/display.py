"""Turn stored facts into text for the pages: payloads pretty-printed, headers without secrets.

Pure: bytes and mappings in, strings out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

# A header whose name says it carries a credential is never shown, whatever its value.
SECRET_HEADER = re.compile(
    r"signature|secret|token|authorization|cookie|api[-_]?key|password|credential", re.I
)
MAX_SHOWN_BYTES = 512 * 1024


def safe_headers(headers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return the headers safe to show, sorted by name; credentials are left out."""
    return sorted(
        (str(name), str(value)) for name, value in headers.items() if not SECRET_HEADER.search(name)
    )


def pretty_json(value: Any) -> str:
    """Return a JSON value indented for reading, keys in their stored order."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


@dataclass(frozen=True)
class ShownBody:
    """A raw body as a page shows it."""

    text: str
    kind: str  # json, form (a GitHub form-encoded delivery), text, empty
    size: int
    truncated: bool


def pretty_body(body: bytes) -> ShownBody:
    """Return a raw body pretty-printed: JSON indented, a form's `payload` decoded."""
    size = len(body)
    if not body:
        return ShownBody("", "empty", 0, False)
    kind = "text"
    text: str | None = None
    try:
        text, kind = pretty_json(orjson.loads(body)), "json"
    except orjson.JSONDecodeError:
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
            payload = form.get("payload", [])
            if len(payload) == 1:
                text, kind = pretty_json(orjson.loads(payload[0])), "form"
        except (UnicodeDecodeError, ValueError, orjson.JSONDecodeError):
            text = None
    if text is None:
        text = body[:MAX_SHOWN_BYTES].decode("utf-8", errors="replace")
        return ShownBody(text, kind, size, size > MAX_SHOWN_BYTES)
    truncated = len(text) > MAX_SHOWN_BYTES
    return ShownBody(text[:MAX_SHOWN_BYTES], kind, size, truncated)
