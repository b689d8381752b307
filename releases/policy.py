"""Deploy policy: which jobs gate a deploy, which are advisory, which deploy. Pure.

A policy is a TOML document (see docs/policy.md). Without one, jobs (and GitHub workflows)
whose name contains "deploy" or "publish" deploy, and every other job is core.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

import tomli_w

PLATFORMS = ("github", "circleci")
Role = Literal["core", "advisory", "deploy"]
RefKind = Literal["tag", "branch", "any"]
_DEFAULT_DEPLOY = re.compile(r"deploy|publish", re.IGNORECASE)


class PolicyError(ValueError):
    """A policy document that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class DeployJob:
    """A job or workflow, on one platform, that ships the release."""

    platform: str
    name: str  # a job or workflow name; glob patterns (*, ?, [..]) allowed
    on: RefKind = "any"
    requires: tuple[str, ...] = ()  # patterns of the jobs that gate it; empty: any that failed

    @property
    def is_pattern(self) -> bool:
        """Return whether `name` is a glob rather than one exact name."""
        return any(char in self.name for char in "*?[")

    def matches(self, platform: str, *names: str) -> bool:
        """Return whether a job or workflow called any of `names` on `platform` is this one."""
        return platform == self.platform and any(
            name and fnmatchcase(name, self.name) for name in names
        )

    def applies_to(self, ref_kind: str) -> bool:
        """Return whether this deploy is expected for a release of `ref_kind`."""
        return self.on in ("any", ref_kind)


@dataclass(frozen=True, slots=True)
class Policy:
    """One repository's deploy policy."""

    core: tuple[str, ...] = ()
    advisory: tuple[str, ...] = ()
    deploy: tuple[DeployJob, ...] = ()
    branches: tuple[str, ...] = ("main", "master")
    stuck_after_minutes: int = 120
    deploy_start_minutes: int = 30
    severity: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections owned by other modules
    is_default: bool = False

    def deploy_job(self, platform: str, name: str, workflow_name: str = "") -> DeployJob | None:
        """Return the deploy job a job or workflow is, or None."""
        if self.deploy:
            for job in self.deploy:
                if job.matches(platform, name, workflow_name):
                    return job
            return None
        # A GitHub workflow is usually one purpose (deploy_release.yml), so its name counts;
        # a CircleCI workflow usually holds the whole pipeline (Pyodide's is
        # "build-and-deploy", tests included), so there only job names count.
        if platform == "github" and _DEFAULT_DEPLOY.search(workflow_name):
            return DeployJob(platform=platform, name=workflow_name)
        if _DEFAULT_DEPLOY.search(name):
            return DeployJob(platform=platform, name=name)
        return None

    def role(self, platform: str, name: str, workflow_name: str = "") -> Role:
        """Return whether a job deploys, gates the deploy (core) or is only reported."""
        if self.deploy_job(platform, name, workflow_name) is not None:
            return "deploy"
        if any(fnmatchcase(name, pattern) for pattern in self.advisory):
            return "advisory"
        if not self.core or any(fnmatchcase(name, pattern) for pattern in self.core):
            return "core"
        # Listed core patterns name the gates; a job matching none of them does not gate.
        return "advisory"

    def tracks_branch(self, branch: str) -> bool:
        """Return whether pushes to `branch` are deploys Shiplog follows."""
        return any(fnmatchcase(branch, pattern) for pattern in self.branches)

    def expected_deploys(self, ref_kind: str) -> tuple[DeployJob, ...]:
        """Return the deploy jobs a release of `ref_kind` must run, by exact name."""
        return tuple(j for j in self.deploy if j.applies_to(ref_kind) and not j.is_pattern)


DEFAULT_POLICY = Policy(is_default=True)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PolicyError(f"{where} must be a whole number of minutes above 0")
    return value


# Sections other apps own ("probes", "retry"): each registers a validator that raises
# PolicyError (or ValueError) with the key at fault.
section_validators: dict[str, Callable[[Any], object]] = {}

KNOWN_KEYS = {
    "repository",
    "jobs",
    "deploy",
    "branches",
    "limits",
    "severity",
    "retry",
    "probes",
}


def parse(document: str, *, repository: str | None = None) -> Policy:
    """Parse and validate a TOML policy document.

    Raise PolicyError naming the key at fault. When `repository` is given, the document's
    own `repository` key, if any, must agree with it.
    """
    try:
        raw = tomllib.loads(document)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from exc
    return from_mapping(raw, repository=repository)


def declared_repository(document: str) -> str:
    """Return the repository a valid policy document names, or "" if it names none."""
    parse(document)
    named = tomllib.loads(document).get("repository", "")
    return named if isinstance(named, str) else ""


def from_mapping(raw: Mapping[str, Any], *, repository: str | None = None) -> Policy:
    """Validate a decoded policy and return it."""
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise PolicyError(f"unknown key {unknown[0]!r}; expected one of {sorted(KNOWN_KEYS)}")
    named = raw.get("repository")
    if named is not None and not isinstance(named, str):
        raise PolicyError("repository must be a string such as 'owner/name'")
    if repository is not None and named is not None and named != repository:
        raise PolicyError(f"this policy is for {named}, not {repository}")
    jobs = raw.get("jobs", {})
    if not isinstance(jobs, dict):
        raise PolicyError("[jobs] must be a table with core and advisory lists")
    unknown_jobs = sorted(set(jobs) - {"core", "advisory"})
    if unknown_jobs:
        raise PolicyError(f"unknown key jobs.{unknown_jobs[0]}; expected core or advisory")
    core = _strings(jobs.get("core", []), "jobs.core")
    advisory = _strings(jobs.get("advisory", []), "jobs.advisory")
    both = sorted(set(core) & set(advisory))
    if both:
        raise PolicyError(f"job pattern {both[0]!r} is both core and advisory")
    deploys = raw.get("deploy", [])
    if not isinstance(deploys, list):
        raise PolicyError("deploy must be an array of tables: [[deploy]]")
    deploy_jobs = tuple(_deploy_job(entry, f"deploy[{i}]") for i, entry in enumerate(deploys))
    limits = raw.get("limits", {})
    if not isinstance(limits, dict):
        raise PolicyError("[limits] must be a table")
    unknown_limits = sorted(set(limits) - {"stuck_after_minutes", "deploy_start_minutes"})
    if unknown_limits:
        raise PolicyError(
            f"unknown key limits.{unknown_limits[0]}; "
            "expected stuck_after_minutes or deploy_start_minutes"
        )
    severity = raw.get("severity", {})
    if not isinstance(severity, dict) or not all(
        isinstance(v, str) and v in {"low", "medium", "high", "critical"} for v in severity.values()
    ):
        raise PolicyError("[severity] maps rule names to low, medium, high or critical")
    return Policy(
        core=core,
        advisory=advisory,
        deploy=deploy_jobs,
        branches=_strings(raw.get("branches", ["main", "master"]), "branches"),
        stuck_after_minutes=_positive_int(
            limits.get("stuck_after_minutes", 120), "limits.stuck_after_minutes"
        ),
        deploy_start_minutes=_positive_int(
            limits.get("deploy_start_minutes", 30), "limits.deploy_start_minutes"
        ),
        severity=dict(severity),
        extra=_extra_sections(raw),
    )


def _extra_sections(raw: Mapping[str, Any]) -> dict[str, Any]:
    extra = {key: raw[key] for key in ("retry", "probes") if key in raw}
    for key, value in extra.items():
        validator = section_validators.get(key)
        if validator is None:
            continue
        try:
            validator({key: value})
        except PolicyError:
            raise
        except ValueError as exc:
            raise PolicyError(str(exc)) from exc
    return extra


def _deploy_job(entry: Any, where: str) -> DeployJob:
    if not isinstance(entry, dict):
        raise PolicyError(f"{where} must be a table with platform and name")
    unknown = sorted(set(entry) - {"platform", "name", "on", "requires"})
    if unknown:
        raise PolicyError(f"unknown key {where}.{unknown[0]}")
    platform = entry.get("platform")
    if platform not in PLATFORMS:
        raise PolicyError(f"{where}.platform must be one of {', '.join(PLATFORMS)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{where}.name must name a job or workflow")
    on = entry.get("on", "any")
    if on not in ("tag", "branch", "any"):
        raise PolicyError(f"{where}.on must be tag, branch or any")
    return DeployJob(
        platform=platform,
        name=name.strip(),
        on=on,
        requires=_strings(entry.get("requires", []), f"{where}.requires"),
    )


def to_mapping(policy: Policy, *, repository: str | None = None) -> dict[str, Any]:
    """Return the policy as plain data, the inverse of `from_mapping`."""
    data: dict[str, Any] = {}
    if repository:
        data["repository"] = repository
    data["branches"] = list(policy.branches)
    data["jobs"] = {"core": list(policy.core), "advisory": list(policy.advisory)}
    data["limits"] = {
        "stuck_after_minutes": policy.stuck_after_minutes,
        "deploy_start_minutes": policy.deploy_start_minutes,
    }
    if policy.severity:
        data["severity"] = dict(policy.severity)
    deploys: list[dict[str, Any]] = []
    for job in policy.deploy:
        entry: dict[str, Any] = {"platform": job.platform, "name": job.name, "on": job.on}
        if job.requires:
            entry["requires"] = list(job.requires)
        deploys.append(entry)
    if deploys:
        data["deploy"] = deploys
    data.update(dict(policy.extra.items()))
    return data


def dumps(policy: Policy, *, repository: str | None = None) -> str:
    """Return the policy as a TOML document."""
    return tomli_w.dumps(to_mapping(policy, repository=repository))


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    """Return whether `name` matches one of the glob `patterns`."""
    return any(fnmatchcase(name, pattern) for pattern in patterns)
