"""The application's role can append and read, never rewrite or unprotect the stream."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from releases import stream
from tests.worker import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)
ROLE = "shiplog_app_test"


@pytest.fixture
def app_role():
    if connection.vendor != "postgresql":
        pytest.skip("database roles exist on PostgreSQL only")
    call_command("grant_app_role", ROLE)
    yield database_url(user=ROLE)
    with connection.cursor() as cursor:
        cursor.execute(f'REASSIGN OWNED BY "{ROLE}" TO CURRENT_USER')
        cursor.execute(f'DROP OWNED BY "{ROLE}"')
        cursor.execute(f'DROP ROLE IF EXISTS "{ROLE}"')


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE shiplog_stream SET event_type = 'x'", "permission denied"),
        ("DELETE FROM shiplog_stream", "permission denied"),
        ("TRUNCATE shiplog_stream", "permission denied"),
        ("ALTER TABLE shiplog_stream DISABLE TRIGGER USER", "must be owner"),
        ("SET session_replication_role = replica", "permission denied"),
        ("DROP TABLE shiplog_stream", "must be owner"),
    ],
)
def test_the_app_role_cannot_rewrite_or_unprotect_the_stream(app_role, statement, refusal):
    stream.append(source="api", event_type="x", delivery_key="kept", repository="a/b")
    with psycopg.connect(app_role) as conn:
        assert conn.execute("SELECT count(*) FROM shiplog_stream").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
            conn.execute(statement)


@pytest.mark.parametrize("project", ["projector.catch_up()", "projector.rebuild()"])
def test_the_app_works_as_its_role(app_role, project):
    script = (
        "from releases import stream, projector;"
        "stream.append(source='api', event_type='deploy.marker', delivery_key='as-app',"
        " repository='pyodide/pyodide', tag='0.26.2', data={'kind': 'marker', 'name': 'm'});"
        f"{project};"
        "print(list(stream.verify_chain()))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env={
            "DATABASE_URL": app_role,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
