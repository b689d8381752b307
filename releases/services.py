"""Writes for the releases app: recording webhook deliveries and configuring repositories."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.db import transaction
from django.utils import timezone

from releases import policy as policy_module
from releases import signatures, stream, tokens
from releases.ci_clients import CircleCIClient, PermanentFailure, RateLimited, TransientFailure
from releases.encryption import UndecryptableSecret, encrypt, rotate
from releases.ingest import (
    NORMALISERS,
    MalformedPayload,
    Normalised,
    UnrecognisedEvent,
    circleci_api,
)
from releases.ingest.base import Reader
from releases.models import (
    BotToken,
    CICredential,
    DeployPolicy,
    Recognition,
    Release,
    Repository,
    Source,
    WebhookSecret,
)
from releases.policy import Policy
from releases.selectors import (
    Revision,
    ci_credential_token,
    circleci_workflow_revision,
    circleci_workflows_to_enrich,
    repository_for_circleci_slug,
    webhook_secret_candidates,
)

logger = logging.getLogger(__name__)

# Headers kept with each delivery, as received. Signatures are left out on purpose: they are
# derived from the secret and useless once verified.
GITHUB_HEADERS = (
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-GitHub-Hook-Installation-Target-Type",
    "X-GitHub-Hook-Installation-Target-ID",
    "X-GitHub-Enterprise-Version",
    "X-GitHub-Enterprise-Host",
    "User-Agent",
    "Content-Type",
)
CIRCLECI_HEADERS = ("circleci-event-type", "User-Agent", "Content-Type")
JSON_TYPES = {"application/json"}
FORM_TYPE = "application/x-www-form-urlencoded"


class DeliveryRejected(Exception):
    """A delivery Shiplog will not store; the message names the problem for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class DeliveryOutcome:
    """The answer to a delivery that reached the stream (or was already in it)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _decode_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"body is not valid JSON: {exc}") from exc


def _decode_github(body: bytes, media_type: str) -> Any:
    if media_type == FORM_TYPE:
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload(
                "form body is not valid application/x-www-form-urlencoded"
            ) from exc
        values = form.get("payload")
        if not values or len(values) != 1:
            raise MalformedPayload("form body must have exactly one payload field")
        return _decode_json(values[0].encode())
    return _decode_json(body)


def _claimed_github_repository(payload: Any) -> str | None:
    repo = payload.get("repository") if isinstance(payload, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) and name else None


def _claimed_circleci_repository(payload: Any) -> str | None:
    """Return the repository a CircleCI body claims, read leniently before verification."""
    try:
        normalised = NORMALISERS["circleci"].normalise(str(payload.get("type", "")), payload)
    except (MalformedPayload, UnrecognisedEvent, AttributeError):
        return None
    if normalised.repository:
        return normalised.repository
    return repository_for_circleci_slug(str(normalised.extra.get("project_slug", ""))) or None


# Reading and decrypting the secrets costs more than the rest of a delivery's checks, and
# they change rarely, so each process keeps them briefly. A new secret is seen at once (a
# mismatch reads them again); a retired one is refused within the TTL.
SECRET_CACHE_SECONDS = 10.0
_secret_cache: dict[tuple[str, str | None], tuple[float, list[tuple[str, str]]]] = {}


def _candidates(platform: str, claimed: str | None, *, fresh: bool) -> list[tuple[str, str]]:
    key = (platform, claimed)
    now = time.monotonic()
    cached = _secret_cache.get(key)
    if not fresh and cached is not None and now - cached[0] < SECRET_CACHE_SECONDS:
        return cached[1]
    candidates = webhook_secret_candidates(platform=platform, repository=claimed)
    if len(_secret_cache) > 10_000:
        _secret_cache.clear()
    _secret_cache[key] = (now, candidates)
    return candidates


def forget_cached_secrets() -> None:
    """Drop the cached secrets (after a secret is retired, and between tests)."""
    _secret_cache.clear()


def _verify(platform: str, body: bytes, digest: str, claimed: str | None) -> str:
    """Return the repository whose secret signed `body`, or raise a 401 rejection."""
    matched = None
    for fresh in (False, True):
        candidates = _candidates(platform, claimed, fresh=fresh)
        if candidates:
            matched = signatures.matching_secret(body, digest, candidates)
        if matched is not None:
            break
    if matched is None:
        if not candidates:
            where = f"repository {claimed}" if claimed else "any repository"
            raise DeliveryRejected(401, f"no {platform} webhook secret is configured for {where}")
        raise DeliveryRejected(401, "signature does not match the body with any active secret")
    return claimed or matched


def _record(
    *,
    platform: Source,
    event_name: str,
    delivery_key: str,
    repository: str,
    body: bytes,
    headers: dict[str, str],
    payload: Any,
    decode_error: MalformedPayload | None,
) -> DeliveryOutcome:
    normalised: Normalised | None = None
    problem: str | None = None
    recognition = Recognition.RECOGNISED
    if decode_error is not None:
        recognition, problem = Recognition.MALFORMED, str(decode_error)
    else:
        try:
            normalised = NORMALISERS[platform].normalise(event_name, payload)
        except UnrecognisedEvent as exc:
            recognition, problem = Recognition.UNRECOGNISED, str(exc)
        except MalformedPayload as exc:
            recognition, problem = Recognition.MALFORMED, str(exc)
    if normalised is not None:
        repository = normalised.repository or repository
        data = normalised.as_data()
        data["repository"] = repository
        appended = stream.append(
            source=platform,
            event_type=normalised.event_type,
            delivery_key=delivery_key,
            repository=repository,
            body=body,
            headers=headers,
            data=data,
            occurred_at=normalised.occurred_at,
            sha=normalised.sha,
            branch=normalised.branch,
            tag=normalised.tag,
        )
    else:
        appended = stream.append(
            source=platform,
            event_type=event_name,
            delivery_key=delivery_key,
            repository=repository,
            body=body,
            headers=headers,
            data={"problem": problem},
            recognition=recognition,
        )
    answer: dict[str, Any] = {
        "status": "recorded" if appended.created else "duplicate",
        "position": appended.position,
        "event_id": str(appended.event_id),
    }
    if recognition == Recognition.MALFORMED:
        answer.update(status="malformed", error=problem, recorded=appended.created)
        return DeliveryOutcome(400, answer)
    if recognition == Recognition.UNRECOGNISED:
        answer["note"] = f"stored but not interpreted: {problem}"
    return DeliveryOutcome(202 if appended.created else 200, answer)


def github_delivery_record(
    *, headers: Mapping[str, str], body: bytes, content_type: str
) -> DeliveryOutcome:
    """Verify a GitHub delivery and append it to the stream unless it is already there."""
    media_type = _media_type(content_type)
    if media_type not in JSON_TYPES and media_type != FORM_TYPE:
        raise DeliveryRejected(
            415, f"content type must be application/json or {FORM_TYPE}, not {media_type!r}"
        )
    required = {}
    for name in ("X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID"):
        value = headers.get(name, "").strip()
        if not value:
            raise DeliveryRejected(400, f"missing {name} header")
        if len(value) > 200:
            raise DeliveryRejected(400, f"{name} header is longer than 200 characters")
        required[name] = value
    try:
        digest = signatures.github_digest(headers.get("X-Hub-Signature-256"))
    except signatures.BadSignatureHeader as exc:
        raise DeliveryRejected(401, str(exc)) from exc
    payload: Any = None
    decode_error: MalformedPayload | None = None
    try:
        payload = _decode_github(body, media_type)
    except MalformedPayload as exc:
        decode_error = exc
    repository = _verify("github", body, digest, _claimed_github_repository(payload))
    return _record(
        platform=Source.GITHUB,
        event_name=required["X-GitHub-Event"],
        delivery_key=f"github:{required['X-GitHub-Hook-ID']}:{required['X-GitHub-Delivery']}",
        repository=repository,
        body=body,
        headers={name: headers[name] for name in GITHUB_HEADERS if name in headers},
        payload=payload,
        decode_error=decode_error,
    )


def circleci_delivery_record(
    *, headers: Mapping[str, str], body: bytes, content_type: str
) -> DeliveryOutcome:
    """Verify a CircleCI delivery and append it to the stream unless it is already there."""
    media_type = _media_type(content_type)
    if media_type not in JSON_TYPES:
        raise DeliveryRejected(415, f"content type must be application/json, not {media_type!r}")
    event_name = headers.get("circleci-event-type", "").strip()
    if not event_name:
        raise DeliveryRejected(400, "missing circleci-event-type header")
    if len(event_name) > 100:
        raise DeliveryRejected(400, "circleci-event-type header is longer than 100 characters")
    try:
        digest = signatures.circleci_digest(headers.get("circleci-signature"))
    except signatures.BadSignatureHeader as exc:
        raise DeliveryRejected(401, str(exc)) from exc
    payload: Any = None
    decode_error: MalformedPayload | None = None
    try:
        payload = _decode_json(body)
    except MalformedPayload as exc:
        decode_error = exc
    repository = _verify("circleci", body, digest, _claimed_circleci_repository(payload))
    # CircleCI has no delivery header: the body's id is the key, and a body without one is
    # keyed by its own hash so that a redelivery of the same bytes is still a duplicate.
    event_key = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(event_key, str | int) or isinstance(event_key, bool) or event_key == "":
        event_key = "sha256-" + hashlib.sha256(body).hexdigest()
    return _record(
        platform=Source.CIRCLECI,
        event_name=event_name,
        delivery_key=f"circleci:{event_key}",
        repository=repository,
        body=body,
        headers={name: headers[name] for name in CIRCLECI_HEADERS if name in headers},
        payload=payload,
        decode_error=decode_error,
    )


def repository_create(*, full_name: str, circleci_project_slug: str = "") -> Repository:
    """Register a repository by its canonical owner/name."""
    repository, _ = Repository.objects.get_or_create(
        full_name=full_name, defaults={"circleci_project_slug": circleci_project_slug}
    )
    return repository


def webhook_secret_add(
    *, repository: Repository, platform: str, secret: str, label: str = ""
) -> WebhookSecret:
    """Store a new active signing secret for a repository, encrypted; older ones stay active."""
    if len(secret) < 8:
        raise ValueError("a webhook secret must be at least 8 characters long")
    created = WebhookSecret.objects.create(
        repository=repository,
        platform=platform,
        label=label,
        encrypted_secret=encrypt(secret),
        last_four=secret[-4:],
    )
    logger.info("added a %s webhook secret for %s", platform, repository)
    return created


def webhook_secret_retire(*, secret: WebhookSecret) -> None:
    """Stop accepting deliveries signed with `secret` (the last step of a rotation)."""
    secret.active = False
    secret.save(update_fields=["active"])
    forget_cached_secrets()


def custom_event_record(
    *, fields: dict[str, Any], body: bytes, headers: Mapping[str, str], actor: str
) -> stream.Appended:
    """Append a bot's own event (a deploy marker, a probe result, an annotation).

    With an idempotency key, a retried request appends nothing new.
    """
    key = fields.get("idempotency_key") or str(uuid.uuid4())
    occurred_at = fields.get("occurred_at")
    data = {
        "platform": "api",
        "kind": fields["kind"],
        "name": fields["name"],
        "status": fields.get("status", ""),
        "conclusion": fields.get("conclusion", ""),
        "url": fields.get("url", ""),
        "repository": fields["repository"],
        "sha": fields.get("sha", ""),
        "branch": fields.get("branch", ""),
        "tag": fields.get("tag", ""),
        "occurred_at": occurred_at.isoformat() if occurred_at else None,
        "extra": {"type": fields["type"], "details": fields.get("details", {}), "actor": actor},
    }
    return stream.append(
        source=Source.API,
        event_type=fields["type"],
        delivery_key=f"api:{fields['repository']}:{key}",
        repository=fields["repository"],
        body=body,
        headers=headers,
        data=data,
        occurred_at=occurred_at,
        sha=data["sha"],
        branch=data["branch"],
        tag=data["tag"],
    )


def policy_set(*, repository: Repository, document: str, actor: str) -> Policy:
    """Validate and store a repository's deploy policy, and re-derive its releases' states.

    The change is also appended to the stream, so the audit trail says who changed what.
    """
    parsed = policy_module.parse(document, repository=repository.full_name)
    with transaction.atomic():
        DeployPolicy.objects.update_or_create(
            repository=repository, defaults={"document": document}
        )
        digest = hashlib.sha256(document.encode()).hexdigest()
        stream.append(
            source=Source.SHIPLOG,
            event_type="policy.changed",
            delivery_key=f"shiplog:policy:{repository.full_name}:{uuid.uuid4()}",
            repository=repository.full_name,
            body=document.encode(),
            data={"kind": "policy", "actor": actor, "sha256": digest},
        )
    from releases.projector import refresh_releases

    refresh_releases(
        set(Release.objects.filter(repository=repository.full_name).values_list("pk", flat=True))
    )
    return parsed


def bot_token_create(
    *, name: str, repositories: list[Repository], can_write: bool = False
) -> tuple[BotToken, str]:
    """Create a bot token and return it with its secret value, which is never shown again."""
    if not repositories:
        raise ValueError("a bot token must be scoped to at least one repository")
    value = tokens.new_token()
    bot = BotToken.objects.create(
        name=name,
        prefix=tokens.display_prefix(value),
        token_hash=tokens.token_hash(value),
        can_write=can_write,
    )
    bot.repositories.set(repositories)
    logger.info("created bot token %s for %s", bot.prefix, ", ".join(map(str, repositories)))
    return bot, value


def bot_token_revoke(*, bot: BotToken) -> None:
    """Stop accepting a bot token."""
    if bot.revoked_at is None:
        bot.revoked_at = timezone.now()
        bot.save(update_fields=["revoked_at"])


# Real CircleCI and GitHub tokens are 36 characters or more; a short one would be all but
# given away by the last four characters that the admin shows.
MIN_CI_TOKEN_LENGTH = 16


def ci_credential_set(*, repository: Repository, platform: str, token: str) -> CICredential:
    """Store a repository's API token for a CI platform, encrypted, replacing any earlier one."""
    if platform not in CICredential.Platform.values:
        raise ValueError(f"platform must be one of {', '.join(CICredential.Platform.values)}")
    token = token.strip()
    if len(token) < MIN_CI_TOKEN_LENGTH:
        raise ValueError(f"a CI token must be at least {MIN_CI_TOKEN_LENGTH} characters long")
    credential, created = CICredential.objects.update_or_create(
        repository=repository,
        platform=platform,
        defaults={"encrypted_token": encrypt(token), "last_four": token[-4:]},
    )
    logger.info(
        "%s the %s API token of %s", "stored" if created else "replaced", platform, repository
    )
    return credential


@dataclass(frozen=True)
class RotationReport:
    """What a key rotation did: rows re-encrypted, and rows no configured key can read."""

    rotated: dict[str, int]
    undecryptable: dict[str, list[int]]


# Every encrypted column: (model, field). A new secret-holding model belongs here.
ENCRYPTED_FIELDS: tuple[tuple[type[WebhookSecret] | type[CICredential], str], ...] = (
    (WebhookSecret, "encrypted_secret"),
    (CICredential, "encrypted_token"),
)


def stored_secrets_rotate() -> RotationReport:
    """Re-encrypt every stored secret (webhook secrets, CI tokens) with the newest key.

    Rows that no configured key decrypts are left as they are and reported, so that one lost
    key does not stop the others from moving; retire the old key only when none is reported.
    """
    rotated: dict[str, int] = {}
    undecryptable: dict[str, list[int]] = {}
    for model, field_name in ENCRYPTED_FIELDS:
        label = model._meta.label
        rotated[label] = 0
        undecryptable[label] = []
        with transaction.atomic():
            rows = model.objects.select_for_update().order_by("pk").values_list("pk", field_name)
            for pk, encrypted in rows:
                try:
                    fresh = rotate(bytes(encrypted))
                except UndecryptableSecret:
                    undecryptable[label].append(pk)
                    continue
                # update(), not save(): re-encrypting is not a change of the secret, so
                # updated_at stays as it was.
                model.objects.filter(pk=pk).update(**{field_name: fresh})
                rotated[label] += 1
    logger.info("re-encrypted stored secrets with the newest key: %s", rotated)
    return RotationReport(rotated=rotated, undecryptable=undecryptable)


def _pipeline_revision(client: CircleCIClient, workflow: Any) -> Revision:
    """Return the commit, branch and tag of a workflow's pipeline, from the API."""
    pipeline_id = Reader(workflow, "workflow").opt_id("pipeline_id")
    if not pipeline_id:
        return Revision("", "", "")
    vcs = Reader(client.get_pipeline(pipeline_id), "pipeline").opt_obj("vcs")
    if vcs is None:
        return Revision("", "", "")
    return Revision(vcs.opt_text("revision"), vcs.opt_text("branch"), vcs.opt_text("tag"))


def circleci_workflow_enrich(*, repository: Repository, workflow_id: str) -> int:
    """Record a CircleCI workflow's jobs as its API lists them, blocked and never-run ones too.

    Appends one event per job and status seen, so reading the same workflow again adds only
    what changed; returns how many were added. Does nothing without a CircleCI token for the
    repository. Raises the client's RateLimited, TransientFailure and PermanentFailure, and
    MalformedPayload for an answer without the documented shape, for the caller to judge.
    """
    token = ci_credential_token(repository=repository, platform=CICredential.Platform.CIRCLECI)
    if token is None:
        return 0
    with CircleCIClient(token) as client:
        workflow = client.get_workflow(workflow_id)
        items = client.workflow_jobs(workflow_id)
        revision = circleci_workflow_revision(
            repository=repository.full_name, workflow_id=workflow_id
        )
        if not any(revision):
            revision = _pipeline_revision(client, workflow)
    facts = circleci_api.normalise_workflow_jobs(
        repository=repository.full_name,
        workflow=workflow,
        items=items,
        sha=revision.sha,
        branch=revision.branch,
        tag=revision.tag,
    )
    added = 0
    with transaction.atomic():
        for fact, item in zip(facts, items, strict=True):
            appended = stream.append(
                source=Source.CIRCLECI,
                event_type=circleci_api.EVENT_TYPE,
                delivery_key=f"circleci-api:{workflow_id}:{fact['job_id']}:{fact['status']}",
                repository=repository.full_name,
                # The raw answer the fact was read from: the workflow and this job's item.
                body=orjson.dumps({"workflow": workflow, "job": item}),
                data=fact,
                occurred_at=datetime.fromisoformat(fact["occurred_at"])
                if fact["occurred_at"]
                else None,
                sha=revision.sha,
                branch=revision.branch,
                tag=revision.tag,
            )
            added += appended.created
    if added:
        logger.info("recorded %d job states of CircleCI workflow %s", added, workflow_id)
    return added


@dataclass
class EnrichmentRun:
    """What one pass over recent CircleCI workflows did."""

    workflows: int = 0
    appended: int = 0
    postponed: int = 0  # left for the next pass: rate limited or unreachable
    failed: int = 0  # refused for good (token, permission, not found, bad answer)


ENRICHMENT_WINDOW = timedelta(days=7)


def circleci_workflows_enrich_recent(*, now: datetime | None = None) -> EnrichmentRun:
    """Read from the API the CircleCI workflows of releases active this week.

    Which workflows: see `circleci_workflows_to_enrich` (releases not deployed yet, and
    workflows never read). A rate limit or an unreachable API postpones the rest of that
    repository's workflows to the next pass; a refused token does too. Other refusals skip
    only the workflow.
    """
    since = (now or timezone.now()) - ENRICHMENT_WINDOW
    pending = circleci_workflows_to_enrich(since=since)
    repositories = Repository.objects.in_bulk({repository_id for repository_id, _ in pending})
    run = EnrichmentRun()
    paused: set[int] = set()
    for repository_id, workflow_id in pending:
        if repository_id in paused:
            run.postponed += 1
            continue
        repository = repositories[repository_id]
        run.workflows += 1
        try:
            run.appended += circleci_workflow_enrich(repository=repository, workflow_id=workflow_id)
        except (RateLimited, TransientFailure) as exc:
            logger.warning(
                "CircleCI workflow %s of %s postponed to the next pass: %s",
                workflow_id,
                repository,
                exc,
            )
            paused.add(repository_id)
            run.postponed += 1
        except (PermanentFailure, MalformedPayload, UndecryptableSecret) as exc:
            logger.error(
                "CircleCI workflow %s of %s not filled in: %s", workflow_id, repository, exc
            )
            run.failed += 1
            if isinstance(exc, UndecryptableSecret) or (
                isinstance(exc, PermanentFailure) and exc.status in (401, 403)
            ):
                paused.add(repository_id)
    return run
