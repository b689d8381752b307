"""Turn raw CI deliveries into normalised facts: one module per platform, pure functions."""

from __future__ import annotations

from releases.ingest.base import (
    MalformedPayload,
    Normalised,
    Normaliser,
    UnrecognisedEvent,
)
from releases.ingest.circleci import CircleCINormaliser
from releases.ingest.github import GitHubNormaliser

NORMALISERS: dict[str, Normaliser] = {
    "github": GitHubNormaliser(),
    "circleci": CircleCINormaliser(),
}

__all__ = [
    "NORMALISERS",
    "MalformedPayload",
    "Normalised",
    "Normaliser",
    "UnrecognisedEvent",
]
