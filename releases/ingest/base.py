"""The normaliser interface, the normalised fact, and validated reads of untrusted JSON.

Normalisers are pure: no ORM, no HTTP, no clock. They take the event type and the decoded
payload of one delivery and return a `Normalised`, or raise `UnrecognisedEvent` (a type Shiplog
does not know: stored and acknowledged) or `MalformedPayload` (a body that does not have the
shape its type promises: stored, flagged and answered 400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar


class UnrecognisedEvent(Exception):
    """The delivery is of a type Shiplog does not interpret (yet)."""


class MalformedPayload(Exception):
    """The delivery's body does not have the shape its type promises."""


class Kind(StrEnum):
    WORKFLOW_RUN = "workflow_run"  # a GitHub workflow run attempt, a CircleCI workflow
    JOB = "job"  # a GitHub workflow job, a CircleCI job
    CHECK_RUN = "check_run"
    CHECK_SUITE = "check_suite"
    DEPLOYMENT = "deployment"
    DEPLOYMENT_STATUS = "deployment_status"
    RELEASE = "release"
    TAG = "tag"  # a tag created or deleted (push of refs/tags/*, create/delete of a tag)
    PUSH = "push"  # a branch push, created or deleted
    PING = "ping"


class Conclusion(StrEnum):
    """Outcomes in one vocabulary for both platforms; the platform's own word stays in status."""

    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    NEUTRAL = "neutral"
    ACTION_REQUIRED = "action_required"
    STALE = "stale"
    ERROR = "error"
    UNAUTHORIZED = "unauthorized"
    INFRASTRUCTURE_FAIL = "infrastructure_fail"


@dataclass(frozen=True, slots=True)
class Normalised:
    """The fields Shiplog reads from one delivery, the same for every platform."""

    platform: str  # "github" or "circleci"
    event_type: str  # "workflow_run.completed", "job-completed", "push", ...
    kind: Kind
    repository: str = ""  # canonical "owner/name"; "" when the payload does not say
    name: str = ""  # workflow, job, environment or release name
    status: str = ""  # the platform's status word, lower case ("in_progress", "failed")
    conclusion: str = ""  # a Conclusion value once terminal, else ""
    attempt: int = 1  # GitHub run_attempt; CircleCI reruns are new workflow ids instead
    run_id: str = ""  # GitHub workflow run id; CircleCI workflow id
    workflow_name: str = ""
    pipeline_id: str = ""  # CircleCI pipeline id (GitHub: the check suite id)
    pipeline_number: int | None = None  # CircleCI pipeline number; GitHub run number
    job_id: str = ""
    job_number: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    occurred_at: datetime | None = None  # the platform's clock for this delivery
    url: str = ""
    sha: str = ""
    branch: str = ""
    tag: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        """Return the fields as JSON-ready values (datetimes in ISO 8601, UTC)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.astimezone(UTC).isoformat()
        data["kind"] = str(self.kind)
        data["extra"] = dict(self.extra)
        return data


class Normaliser:
    """Read one CI platform's deliveries. One module per platform implements it."""

    platform: ClassVar[str]

    def normalise(self, event_type: str, payload: Any) -> Normalised:
        """Return the normalised fact for a decoded delivery of `event_type`."""
        raise NotImplementedError(".normalise() must be overridden")


_MISSING = object()
_TAG_REF = re.compile(r"^refs/tags/(.+)$")
_BRANCH_REF = re.compile(r"^refs/heads/(.+)$")
# Git object names: SHA-1, or SHA-256 for repositories that use it.
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# GitHub owners are at most 39 characters and names at most 100, from this alphabet.
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,39}/[A-Za-z0-9_.-]{1,100}")


def quoted(text: str) -> str:
    """Return `text` quoted for an error message, cut short: messages are stored and answered."""
    return repr(text if len(text) <= 60 else f"{text[:57]}...")


def _checked_text(value: str, where: str) -> str:
    # PostgreSQL can store NUL in neither text columns nor jsonb: such a body is kept as
    # malformed instead of failing the insert (and being retried for ever).
    if "\x00" in value:
        raise MalformedPayload(f"{where} must not contain NUL characters")
    return value


class Reader:
    """Validated, path-aware reads of untrusted JSON: never a bare payload["a"]["b"].

    Every failed read raises `MalformedPayload` naming the path and what was expected.
    """

    __slots__ = ("_path", "_value")

    def __init__(self, value: Any, path: str = "") -> None:
        self._value = value
        self._path = path

    @property
    def raw(self) -> Any:
        """Return the wrapped value as it is."""
        return self._value

    def _where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _get(self, key: str, required: bool) -> Any:
        if not isinstance(self._value, dict):
            raise MalformedPayload(f"{self._path or 'body'} must be a JSON object")
        value = self._value.get(key, _MISSING)
        if value is _MISSING and required:
            raise MalformedPayload(f"{self._where(key)} is missing")
        return value

    def has(self, key: str) -> bool:
        """Return whether the object has `key` (null counts as present)."""
        return isinstance(self._value, dict) and key in self._value

    def obj(self, key: str) -> Reader:
        """Return a reader for the required object at `key`."""
        value = self._get(key, required=True)
        if not isinstance(value, dict):
            raise MalformedPayload(f"{self._where(key)} must be an object")
        return Reader(value, self._where(key))

    def opt_obj(self, key: str) -> Reader | None:
        """Return a reader for the object at `key`, or None when absent or null."""
        value = self._get(key, required=False)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, dict):
            raise MalformedPayload(f"{self._where(key)} must be an object or null")
        return Reader(value, self._where(key))

    def items(self, key: str) -> list[Reader]:
        """Return readers for the items of the list at `key` (absent or null: empty)."""
        value = self._get(key, required=False)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            raise MalformedPayload(f"{self._where(key)} must be a list")
        return [Reader(item, f"{self._where(key)}[{i}]") for i, item in enumerate(value)]

    def text(self, key: str) -> str:
        """Return the required string at `key`."""
        value = self._get(key, required=True)
        if not isinstance(value, str):
            raise MalformedPayload(f"{self._where(key)} must be a string")
        return _checked_text(value, self._where(key))

    def opt_text(self, key: str) -> str:
        """Return the string at `key`, or "" when absent or null."""
        value = self._get(key, required=False)
        if value is _MISSING or value is None:
            return ""
        if not isinstance(value, str):
            raise MalformedPayload(f"{self._where(key)} must be a string or null")
        return _checked_text(value, self._where(key))

    def texts(self, key: str) -> list[str]:
        """Return the strings of the list at `key` (absent or null: empty)."""
        values = []
        for item in self.items(key):
            if not isinstance(item.raw, str):
                raise MalformedPayload(f"{item._path} must be a string")
            values.append(_checked_text(item.raw, item._path))
        return values

    def sha(self, key: str) -> str:
        """Return the required git object name (40 or 64 hex digits) at `key`, lower case."""
        return _checked_sha(self.text(key), self._where(key))

    def opt_sha(self, key: str) -> str:
        """Return the git object name at `key`, or "" when absent, null or empty."""
        text = self.opt_text(key)
        return _checked_sha(text, self._where(key)) if text else ""

    def repository(self, key: str) -> str:
        """Return the required canonical repository name (`owner/name`) at `key`."""
        text = self.text(key)
        if not is_repository_name(text):
            raise MalformedPayload(f"{self._where(key)} must be a repository name owner/name")
        return text

    def integer(self, key: str) -> int:
        """Return the required integer at `key`."""
        value = self._get(key, required=True)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedPayload(f"{self._where(key)} must be an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        """Return the integer at `key`, or None when absent or null."""
        value = self._get(key, required=False)
        if value is _MISSING or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedPayload(f"{self._where(key)} must be an integer or null")
        return value

    def id(self, key: str) -> str:
        """Return the required identifier at `key` (a string or an integer) as a string."""
        value = self._get(key, required=True)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise MalformedPayload(f"{self._where(key)} must be an id (string or integer)")
        return _checked_text(str(value), self._where(key))

    def opt_id(self, key: str) -> str:
        """Return the identifier at `key` as a string, or "" when absent or null."""
        value = self._get(key, required=False)
        if value is _MISSING or value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MalformedPayload(f"{self._where(key)} must be an id (string or integer)")
        return _checked_text(str(value), self._where(key))

    def opt_bool(self, key: str) -> bool | None:
        """Return the boolean at `key`, or None when absent or null."""
        value = self._get(key, required=False)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, bool):
            raise MalformedPayload(f"{self._where(key)} must be true or false")
        return value

    def opt_instant(self, key: str) -> datetime | None:
        """Return the ISO 8601 timestamp or Unix time in seconds at `key`, or None.

        GitHub's push payloads give the repository's `pushed_at` as Unix seconds where every
        other payload has ISO 8601.
        """
        value = self._get(key, required=False)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError) as exc:
                raise MalformedPayload(f"{self._where(key)} is not a valid Unix time") from exc
        return self.opt_datetime(key)

    def opt_datetime(self, key: str) -> datetime | None:
        """Return the ISO 8601 timestamp at `key` as aware UTC, or None when absent or null."""
        text = self.opt_text(key)
        if not text:
            return None
        return parse_timestamp(text, self._where(key))

    def datetime(self, key: str) -> datetime:
        """Return the required ISO 8601 timestamp at `key` as aware UTC."""
        return parse_timestamp(self.text(key), self._where(key))


def parse_timestamp(text: str, where: str) -> datetime:
    """Parse an ISO 8601 timestamp with a zone (Z or an offset) into aware UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise MalformedPayload(
            f"{where} must be an ISO 8601 timestamp, not {quoted(text)}"
        ) from exc
    if value.tzinfo is None:
        raise MalformedPayload(f"{where} must carry a time zone, not {quoted(text)}")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        # 0001-01-01T00:00:00+01:00 parses, but is before the first representable instant.
        raise MalformedPayload(f"{where} is out of range: {quoted(text)}") from exc


def _checked_sha(text: str, where: str) -> str:
    sha = text.lower()
    if not _SHA.fullmatch(sha):
        raise MalformedPayload(
            f"{where} must be a git commit SHA (40 hex digits), not {quoted(text)}"
        )
    return sha


def is_repository_name(text: str) -> bool:
    """Return whether `text` is a canonical repository name, `owner/name`."""
    return _REPOSITORY.fullmatch(text) is not None


def split_ref(ref: str) -> tuple[str, str]:
    """Return (branch, tag) for a git ref such as refs/heads/main or refs/tags/0.26.2."""
    if match := _TAG_REF.match(ref):
        return "", match.group(1)
    if match := _BRANCH_REF.match(ref):
        return match.group(1), ""
    return ref, ""
