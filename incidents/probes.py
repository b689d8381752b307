"""Probes: public URLs checked after each deploy and every few minutes, per repository.

Configured in the deploy policy as `[[probes]]` tables. Pure helpers here; the checking
itself (HTTP) is in `incidents.services.probes_run`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from releases.projections import Entry

_PLACEHOLDER = re.compile(r"\{(tag|version|repository|sha)\}")


class ProbeConfigError(ValueError):
    """A `[[probes]]` table that cannot be used."""


@dataclass(frozen=True)
class Probe:
    """One URL to check for each release."""

    name: str
    url: str  # may contain {tag}, {version} (the tag without a leading v), {repository}, {sha}
    expect_status: int = 200
    every_minutes: int = 5
    failures_to_open: int = 2
    timeout_seconds: float = 10.0

    def url_for(self, *, tag: str, repository: str, sha: str) -> str:
        """Return the URL for one release."""
        values = {
            "tag": tag,
            "version": tag.removeprefix("v"),
            "repository": repository,
            "sha": sha,
        }
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.url)


def probes_from(policy_extra: Mapping[str, Any]) -> list[Probe]:
    """Return the probes a policy configures, validating each."""
    raw = policy_extra.get("probes", [])
    if not isinstance(raw, list):
        raise ProbeConfigError("probes must be an array of tables: [[probes]]")
    probes = []
    for i, table in enumerate(raw):
        where = f"probes[{i}]"
        if not isinstance(table, dict):
            raise ProbeConfigError(f"{where} must be a table with name and url")
        name, url = table.get("name"), table.get("url")
        if not isinstance(name, str) or not name:
            raise ProbeConfigError(f"{where}.name must be a non-empty string")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ProbeConfigError(f"{where}.url must be an http(s) URL")
        numbers: dict[str, Any] = {}
        for key, low, high in (
            ("expect_status", 100, 599),
            ("every_minutes", 1, 1440),
            ("failures_to_open", 1, 100),
        ):
            value = table.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ProbeConfigError(f"{where}.{key} must be a whole number from {low} to {high}")
            numbers[key] = value
        probes.append(Probe(name=name, url=url, **numbers))
    return probes


def consecutive_failures(entries: Sequence[Entry], probe_name: str) -> list[Entry]:
    """Return the probe's latest results that failed in a row (latest last)."""
    results = sorted(
        (e for e in entries if e.kind == "probe" and e.name == probe_name),
        key=lambda e: (e.occurred_at is None, e.occurred_at, e.position),
    )
    failing: list[Entry] = []
    for entry in reversed(results):
        if entry.conclusion == "success":
            break
        failing.append(entry)
    return list(reversed(failing))
