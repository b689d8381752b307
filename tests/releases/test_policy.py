"""Deploy policy: validation with clear errors, roles, TOML round trips, import and export."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from releases import policy
from releases.models import DeployPolicy, StreamEvent
from tests.releases import factories as f


def test_without_a_policy_deploy_and_publish_jobs_deploy_and_the_rest_is_core():
    default = policy.DEFAULT_POLICY
    assert default.role("github", "deploy-pyodide-py-pypi") == "deploy"
    assert default.role("circleci", "publish-docs") == "deploy"
    assert default.role("github", "build", workflow_name="deploy-release") == "deploy"
    assert default.role("circleci", "test-packages-firefox") == "core"
    # A CircleCI workflow holds the whole pipeline: its name does not make its tests deploys.
    assert default.role("circleci", "test-core-node", workflow_name="build-and-deploy") == "core"
    assert default.role("circleci", "deploy-release", workflow_name="build-and-deploy") == "deploy"


def test_advisory_jobs_never_gate_and_listed_core_patterns_name_the_gates():
    parsed = policy.parse(
        '[jobs]\ncore = ["build-*", "test-core-*"]\nadvisory = ["test-packages-firefox"]\n'
    )
    assert parsed.role("circleci", "build-core") == "core"
    assert parsed.role("circleci", "test-packages-firefox") == "advisory"
    assert parsed.role("circleci", "benchmark") == "advisory"


def test_explicit_deploy_jobs_are_expected_per_ref_kind():
    parsed = policy.parse(
        f.PYODIDE_POLICY + '\n[[deploy]]\nplatform = "circleci"\n'
        'name = "deploy-dev"\non = "branch"\n'
    )
    assert [d.name for d in parsed.expected_deploys("tag")] == ["deploy-release", "deploy-release"]
    assert [d.name for d in parsed.expected_deploys("branch")] == ["deploy-dev"]
    assert parsed.deploy[0].requires[:2] == ("check-release-version", "test-core-firefox")


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ("jobs = [", "not valid TOML"),
        ("colour = 'blue'", "unknown key 'colour'"),
        ("[jobs]\ncore = 3", "jobs.core must be a list of non-empty strings"),
        ("[jobs]\nsometimes = ['x']", "unknown key jobs.sometimes"),
        ("[jobs]\ncore = ['a']\nadvisory = ['a']", "job pattern 'a' is both core and advisory"),
        ("[[deploy]]\nplatform = 'jenkins'\nname = 'x'", "deploy[0].platform must be one of"),
        ("[[deploy]]\nplatform = 'github'", "deploy[0].name must name a job or workflow"),
        ("[[deploy]]\nplatform = 'github'\nname = 'x'\non = 'friday'", "deploy[0].on must be"),
        ("[limits]\nstuck_after_minutes = 0", "limits.stuck_after_minutes must be a whole"),
        ("[limits]\nstuck_after = 5", "unknown key limits.stuck_after"),
        ("[severity]\nrelease_stuck = 'apocalyptic'", "[severity] maps rule names"),
        ("repository = 'a/b'", "this policy is for a/b, not pyodide/pyodide"),
    ],
)
def test_invalid_policies_are_refused_with_the_reason(document, error):
    with pytest.raises(policy.PolicyError, match=error.replace("[", r"\[").replace("(", r"\(")):
        policy.parse(document, repository="pyodide/pyodide")


def test_a_policy_survives_a_toml_round_trip():
    parsed = policy.parse(f.ADVISORY_FIREFOX)
    again = policy.parse(policy.dumps(parsed, repository=f.REPO), repository=f.REPO)
    assert again == parsed


@pytest.mark.django_db
def test_policy_import_and_export_commands(tmp_path):
    path = tmp_path / "pyodide.toml"
    path.write_text(f.ADVISORY_FIREFOX)
    out = io.StringIO()
    call_command("policy", "import", str(path), stdout=out)
    assert "imported" in out.getvalue()
    assert DeployPolicy.objects.get().document == f.ADVISORY_FIREFOX
    assert StreamEvent.objects.filter(event_type="policy.changed").count() == 1
    exported = io.StringIO()
    call_command("policy", "export", f.REPO, stdout=exported)
    assert exported.getvalue() == f.ADVISORY_FIREFOX


@pytest.mark.django_db
def test_importing_an_invalid_policy_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("repository = 'pyodide/pyodide'\n[jobs]\ncore = 3\n")
    with pytest.raises(CommandError, match=r"bad.toml: jobs.core must be a list"):
        call_command("policy", "import", str(path))
    assert not DeployPolicy.objects.exists()


@pytest.mark.django_db
def test_exporting_a_repository_without_a_policy_prints_the_defaults():
    out = io.StringIO()
    call_command("policy", "export", "someone/else", stdout=out)
    assert policy.parse(out.getvalue()) == policy.from_mapping(
        policy.to_mapping(policy.DEFAULT_POLICY)
    )
