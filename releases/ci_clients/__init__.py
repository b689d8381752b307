"""Outbound calls to the CircleCI and GitHub APIs: one module per platform, one vocabulary."""

from __future__ import annotations

from releases.ci_clients.base import (
    CIClientError,
    PermanentFailure,
    RateLimited,
    Success,
    TransientFailure,
)
from releases.ci_clients.circleci import CircleCIClient
from releases.ci_clients.github import DispatchResult, GitHubClient

__all__ = [
    "CIClientError",
    "CircleCIClient",
    "DispatchResult",
    "GitHubClient",
    "PermanentFailure",
    "RateLimited",
    "Success",
    "TransientFailure",
]
