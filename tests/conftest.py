"""Fixtures shared by every test: the stream's triggers around flushes, signed deliveries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from releases import immutability
from releases.deliveries import Delivery, circleci_delivery, github_delivery
from releases.models import Repository
from releases.services import forget_cached_secrets, repository_create, webhook_secret_add
from tests.fakes.ci_servers import _circleci_server, _github_server, fake_circleci, fake_github

# Fixtures for every test module.
__all__ = ["_circleci_server", "_github_server", "fake_circleci", "fake_github"]

GITHUB_SECRET = "gh-test-secret-for-pyodide"
CIRCLECI_SECRET = "cci-test-secret-for-pyodide"
REPOSITORY = "pyodide/pyodide"


@pytest.fixture(autouse=True, scope="session")
def _flush_around_stream_triggers() -> Iterator[None]:
    """Let Django's flush (transactional tests) empty the stream between tests.

    The triggers refuse TRUNCATE and DELETE, as they must; only the test database's owner
    lifts them, for the length of the flush, which the application's role cannot do.
    """
    operations = type(connection.ops)
    original = operations.sql_flush

    def sql_flush(self: Any, style: Any, tables: Any, *args: Any, **kwargs: Any) -> list[str]:
        statements = original(self, style, tables, *args, **kwargs)
        if immutability.TABLE not in tables:
            return statements
        before, after = immutability.suspend_statements(self.connection.vendor)
        return [*before, *statements, *after]

    operations.sql_flush = sql_flush  # type: ignore[method-assign]
    yield
    operations.sql_flush = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _fresh_secret_cache() -> Iterator[None]:
    """Start every test without secrets cached by an earlier one."""
    forget_cached_secrets()
    yield
    forget_cached_secrets()


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Start every test without failed logins counted by an earlier one."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def repository(db: None) -> Repository:
    """Return pyodide/pyodide, registered with a GitHub and a CircleCI secret."""
    repo = repository_create(full_name=REPOSITORY)
    webhook_secret_add(repository=repo, platform="github", secret=GITHUB_SECRET)
    webhook_secret_add(repository=repo, platform="circleci", secret=CIRCLECI_SECRET)
    return repo


Post = Callable[[Delivery], Any]


def _post(client: Client, delivery: Delivery) -> Any:
    return client.generic(
        "POST",
        delivery.path,
        data=delivery.body,
        content_type=delivery.content_type,
        headers=delivery.headers,
    )


@pytest.fixture
def post(client: Client) -> Post:
    """Return a function that posts a delivery through the real endpoint."""
    return lambda delivery: _post(client, delivery)


@pytest.fixture
def github(repository: Repository) -> Callable[..., Delivery]:
    """Return a builder of GitHub deliveries signed with the repository's secret."""

    def build(event: str, payload: Any, **kwargs: Any) -> Delivery:
        return github_delivery(event, payload, kwargs.pop("secret", GITHUB_SECRET), **kwargs)

    return build


@pytest.fixture
def circleci(repository: Repository) -> Callable[..., Delivery]:
    """Return a builder of CircleCI deliveries signed with the repository's secret."""

    def build(payload: Any, **kwargs: Any) -> Delivery:
        return circleci_delivery(payload, kwargs.pop("secret", CIRCLECI_SECRET))

    return build
