"""Hostile input for the API: every endpoint of the OpenAPI schema, fuzzed, never a 500.

Schemathesis generates requests from the schema Shiplog serves; each is sent anonymously and
with a write-scoped bot token, and every answer must be a non-5xx that matches the schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.wsgi import application
from releases import projector
from releases.services import bot_token_create, policy_set, repository_create
from tests.releases import factories as f

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def _keep_the_test_connection():
    """Keep Django from closing the test's connection after each WSGI request.

    Django's test client does the same; schemathesis calls the WSGI application directly.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, _keep_the_test_connection):
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=f.PYODIDE_POLICY, actor="test")
    f.append_all(f.pyodide_story())
    projector.catch_up()
    return bot_token_create(name="fuzz", repositories=[repo], can_write=True)[1]


@pytest.mark.django_db
@schema.parametrize()
# Derandomised, so a CI run is repeatable; for a wider hunt by hand, turn derandomize off and
# raise max_examples (random runs found the NUL and time-zone 500s fixed in releases/api.py).
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_endpoint_answers_without_a_server_error(case, token):
    for headers in ({}, {"Authorization": f"Bearer {token}"}):
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        # Custom events need a tag, a branch or a sha: one rule across fields that OpenAPI
        # cannot state, so "schema-valid data is accepted" does not hold by design there.
        case.validate_response(
            response, headers=headers, excluded_checks=[positive_data_acceptance]
        )
