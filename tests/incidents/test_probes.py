"""Probes: a release's public URLs checked on a local server; failures open an incident."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.utils import timezone

from incidents import services
from incidents.models import Incident
from incidents.probes import probes_from
from releases import policy, projector
from releases.models import Release, StreamEvent
from releases.services import policy_set, repository_create
from tests.releases import factories as f

pytestmark = pytest.mark.django_db


class _CDN(BaseHTTPRequestHandler):
    """A CDN that serves the files it has, and 404 for the rest."""

    files: set[str] = set()
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        status = 200 if self.path in self.files else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def cdn():
    _CDN.files = set()
    _CDN.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CDN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _policy_with_probe(cdn: str) -> str:
    return (
        f.PYODIDE_POLICY
        + f"""
[[probes]]
name = "pyodide.mjs on the CDN"
url = "{cdn}/pyodide/v{{version}}/full/pyodide.mjs"
failures_to_open = 2
every_minutes = 5
"""
    )


def test_a_probe_failing_twice_joins_the_release_incident_and_recovery_is_recorded(cdn):
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=_policy_with_probe(cdn), actor="test")
    f.append_all(f.pyodide_story())
    projector.catch_up()
    now = timezone.now()
    assert services.probes_run(now=now) == 1
    assert _CDN.seen == ["/pyodide/v0.26.2/full/pyodide.mjs"]
    assert services.probes_run(now=now + timedelta(minutes=1)) == 0  # not due yet
    assert services.probes_run(now=now + timedelta(minutes=5)) == 1
    incident = Incident.objects.get()
    probe = incident.details["findings"]["probe_failing"]
    assert "failed 2 times in a row" in probe["summary"]
    assert probe["details"]["url"].endswith("/pyodide/v0.26.2/full/pyodide.mjs")
    results = StreamEvent.objects.filter(event_type="probe.result")
    assert [r.data["status"] for r in results] == ["404", "404"]

    _CDN.files.add("/pyodide/v0.26.2/full/pyodide.mjs")
    assert services.probes_run(now=now + timedelta(minutes=10)) == 1
    latest = StreamEvent.objects.filter(event_type="probe.result").last()
    assert latest is not None
    assert latest.data["conclusion"] == "success"


def test_the_same_minute_records_one_result_however_often_the_task_runs(cdn):
    repo = repository_create(full_name=f.REPO)
    policy_set(repository=repo, document=_policy_with_probe(cdn), actor="test")
    f.append_all(f.pyodide_story())
    projector.catch_up()
    now = timezone.now().replace(second=5)
    release = Release.objects.get(ref_key=f"tag:{f.TAG}")
    probe = probes_from({"probes": [{"name": "mjs", "url": f"{cdn}/x"}]})[0]
    with httpx.Client() as http:
        services._record_probe(http, probe, release, now)
        services._record_probe(http, probe, release, now.replace(second=50))
    assert StreamEvent.objects.filter(event_type="probe.result").count() == 1


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('name = "x"\nurl = "ftp://x"', r"probes\[0\].url must be an http\(s\) URL"),
        ('url = "https://x"', r"probes\[0\].name must be a non-empty string"),
        ('name = "x"\nurl = "https://x"\nexpect_status = 1000', "expect_status must be"),
    ],
)
def test_invalid_probe_tables_are_refused_with_the_reason(table, error):
    with pytest.raises(policy.PolicyError, match=error):
        policy.parse(f"[[probes]]\n{table}\n")
