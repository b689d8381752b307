"""The append-only stream of facts, and the repositories whose deliveries it accepts."""

from __future__ import annotations

from django.db import models
from django.urls import reverse


class Source(models.TextChoices):
    GITHUB = "github", "GitHub"
    CIRCLECI = "circleci", "CircleCI"
    API = "api", "API"
    SHIPLOG = "shiplog", "Shiplog"


class Recognition(models.TextChoices):
    RECOGNISED = "recognised", "Recognised"
    UNRECOGNISED = "unrecognised", "Unrecognised type"
    MALFORMED = "malformed", "Malformed body"


class StreamEvent(models.Model):
    """One immutable fact. The database refuses UPDATE, DELETE and TRUNCATE on this table.

    Rows are written only by `releases.stream.append`; each carries the hash of the row before
    it, so that an edit made behind the application's back shows up in `verify_stream`.
    """

    position = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True, editable=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    event_type = models.CharField(max_length=100)
    repository = models.CharField(max_length=200, blank=True)
    sha = models.CharField(max_length=64, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField(help_text="When it happened, on the platform's clock.")
    recorded_at = models.DateTimeField(help_text="When Shiplog recorded it.")
    delivery_key = models.CharField(max_length=300)
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    data = models.JSONField(default=dict, help_text="The normalised fields.")
    recognition = models.CharField(
        max_length=16, choices=Recognition.choices, default=Recognition.RECOGNISED
    )
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "shiplog_stream"
        ordering = ["position"]
        indexes = [models.Index(fields=["repository", "position"], name="stream_repo_pos")]

    def __str__(self) -> str:
        return f"#{self.position} {self.source} {self.event_type} {self.repository}"


class Repository(models.Model):
    """A repository whose CI deliveries Shiplog accepts, by its canonical `owner/name`."""

    full_name = models.CharField(max_length=200, unique=True)
    circleci_project_slug = models.CharField(
        max_length=200,
        blank=True,
        help_text="Only for CircleCI GitHub App or GitLab projects, whose opaque slug "
        "(circleci/<org id>/<project id>) does not name the repository.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "repositories"
        ordering = ["full_name"]

    def __str__(self) -> str:
        return self.full_name


class WebhookSecret(models.Model):
    """A signing secret, encrypted at rest. Several may be active at once during a rotation."""

    class Platform(models.TextChoices):
        GITHUB = "github", "GitHub"
        CIRCLECI = "circleci", "CircleCI"

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="secrets")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    label = models.CharField(max_length=100, blank=True)
    encrypted_secret = models.BinaryField(editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["repository", "platform", "-created_at"]
        indexes = [models.Index(fields=["repository", "platform", "active"])]

    def __str__(self) -> str:
        return f"{self.repository} {self.platform} secret …{self.last_four}"


class ReleaseState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    BLOCKED = "blocked", "Blocked"
    FAILED = "failed", "Failed"
    PARTIALLY_DEPLOYED = "partially_deployed", "Partially deployed"
    DEPLOYED = "deployed", "Deployed"


class Release(models.Model):
    """Projection: a repository plus a tag, or a deploy branch at one commit.

    Rebuilt from the stream by the projector; nothing else writes it.
    """

    class RefKind(models.TextChoices):
        TAG = "tag", "Tag"
        BRANCH = "branch", "Branch"

    repository = models.CharField(max_length=200)
    ref_kind = models.CharField(max_length=8, choices=RefKind.choices)
    ref_key = models.CharField(max_length=320, help_text="tag:<name> or branch:<name>@<sha>")
    tag = models.CharField(max_length=255, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    sha = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        max_length=24, choices=ReleaseState.choices, default=ReleaseState.PENDING
    )
    flags = models.CharField(
        max_length=120,
        blank=True,
        help_text="Every state that applies, comma-delimited: ,blocked,partially_deployed,",
    )
    blocking = models.JSONField(default=list, help_text="The blocking chain.")
    tagged_at = models.DateTimeField(null=True)
    first_deploy_started_at = models.DateTimeField(null=True)
    deployed_at = models.DateTimeField(null=True)
    blocked_at = models.DateTimeField(null=True)
    unblocked_at = models.DateTimeField(null=True)
    started_at = models.DateTimeField(null=True, help_text="The first thing that happened.")
    last_activity_at = models.DateTimeField(null=True)
    last_position = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "ref_key"], name="release_unique_ref")
        ]
        indexes = [
            models.Index(fields=["repository", "-started_at"], name="release_repo_started"),
            models.Index(fields=["state", "-started_at"], name="release_state_started"),
            models.Index(fields=["-started_at"], name="release_started"),
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.name}"

    def get_absolute_url(self) -> str:
        """Return the release's page: /releases/<owner>/<name>/<tag or branch:name@sha>/."""
        owner, name = self.repository.split("/", 1)
        ref = self.tag if self.ref_kind == self.RefKind.TAG else self.ref_key
        return reverse("release", kwargs={"owner": owner, "name": name, "ref": ref})

    @property
    def flag_list(self) -> list[str]:
        """Return every state that applies, most pressing first."""
        return [flag for flag in self.flags.split(",") if flag]

    @property
    def name(self) -> str:
        """Return the tag, or branch@short-sha for a branch deploy."""
        return self.tag if self.ref_kind == self.RefKind.TAG else f"{self.branch}@{self.sha[:7]}"


class TimelineEntry(models.Model):
    """Projection: one workflow run attempt, job attempt, deployment or marker.

    Order-insensitive: whichever delivery ranks highest (terminal over running, then the
    platform's clock, then event id) supplies the fields, however the deliveries arrived.
    """

    entry_key = models.CharField(max_length=400, unique=True)
    repository = models.CharField(max_length=200)
    release = models.ForeignKey(
        Release, null=True, on_delete=models.SET_NULL, related_name="entries"
    )
    platform = models.CharField(max_length=16)
    kind = models.CharField(max_length=24)
    name = models.CharField(max_length=300, blank=True)
    workflow_name = models.CharField(max_length=300, blank=True)
    run_id = models.CharField(max_length=100, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    pipeline_id = models.CharField(max_length=100, blank=True)
    pipeline_number = models.BigIntegerField(null=True)
    job_id = models.CharField(max_length=100, blank=True)
    job_number = models.BigIntegerField(null=True)
    status = models.CharField(max_length=40, blank=True)
    conclusion = models.CharField(max_length=40, blank=True)
    started_at = models.DateTimeField(null=True)
    completed_at = models.DateTimeField(null=True)
    occurred_at = models.DateTimeField(null=True)
    url = models.URLField(max_length=1000, blank=True)
    sha = models.CharField(max_length=64, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    tag = models.CharField(max_length=255, blank=True)
    extra = models.JSONField(default=dict)
    rank = models.CharField(max_length=120, help_text="Sort key of the delivery that won.")
    position = models.BigIntegerField(help_text="Stream position of the delivery that won.")
    first_position = models.BigIntegerField(help_text="Lowest stream position merged in.")

    class Meta:
        indexes = [
            models.Index(fields=["release", "first_position"], name="entry_release_pos"),
            models.Index(fields=["repository", "sha"], name="entry_repo_sha"),
            models.Index(fields=["repository", "branch"], name="entry_repo_branch"),
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.kind} {self.name}"


class KnownTag(models.Model):
    """Projection: a tag the stream has mentioned, and the commit it points at if known."""

    repository = models.CharField(max_length=200)
    tag = models.CharField(max_length=255)
    sha = models.CharField(max_length=64, blank=True)
    rank = models.CharField(max_length=120, blank=True)
    tagged_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "tag"], name="known_tag_unique")
        ]
        indexes = [models.Index(fields=["repository", "sha"], name="known_tag_sha")]

    def __str__(self) -> str:
        return f"{self.repository} {self.tag}"


class ProjectorCheckpoint(models.Model):
    """The last stream position a projector has applied, advanced with its effects."""

    name = models.CharField(max_length=100, primary_key=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class DeployPolicy(models.Model):
    """A repository's deploy policy, stored as the TOML its maintainers edit."""

    repository = models.OneToOneField(Repository, on_delete=models.CASCADE, related_name="policy")
    document = models.TextField(help_text="The policy as TOML; see docs/policy.md.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deploy policies"

    def __str__(self) -> str:
        return f"policy for {self.repository}"


class BotToken(models.Model):
    """A CI bot's API token: shown once, stored hashed, scoped to repositories."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, editable=False, help_text="Identifies the token.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    repositories = models.ManyToManyField(Repository, related_name="bot_tokens")
    can_write = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        """Return whether the token is still accepted."""
        return self.revoked_at is None


class CICredential(models.Model):
    """An API token for a CI platform, encrypted at rest; one per repository and platform.

    The token is written through `releases.services.ci_credential_set` and read back only by
    `releases.selectors.ci_credential_token`; nothing here ever shows more than its last four.
    """

    class Platform(models.TextChoices):
        GITHUB = "github", "GitHub"
        CIRCLECI = "circleci", "CircleCI"

    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="ci_credentials"
    )
    platform = models.CharField(max_length=16, choices=Platform.choices)
    encrypted_token = models.BinaryField(editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "CI credential"
        ordering = ["repository", "platform"]
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "platform"], name="ci_credential_one_per_platform"
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository} {self.platform} token ••••{self.last_four}"


class RetryAttempt(models.Model):
    """The exactly-once guard of one rerun Shiplog asked for: its key, state and outcome.

    Created in the same transaction as the `retry.requested` event that records the decision
    (an outbox: a broker outage delays the rerun and loses nothing), and moved on under a row
    lock, so a task delivered twice or two workers at once call the CI platform once.
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        IN_FLIGHT = "in_flight", "Calling the CI platform"
        ACCEPTED = "accepted", "Accepted"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Outcome unknown"

    idempotency_key = models.CharField(max_length=400, unique=True)
    repository = models.CharField(max_length=200)
    release_key = models.CharField(max_length=320)
    tag = models.CharField(max_length=255, blank=True)
    sha = models.CharField(max_length=64, blank=True)
    platform = models.CharField(max_length=16)
    deploy = models.CharField(max_length=300)
    api = models.CharField(max_length=60)
    target = models.CharField(max_length=100)
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REQUESTED)
    not_before = models.DateTimeField()
    tries = models.PositiveIntegerField(default=0, help_text="Calls that failed transiently.")
    result = models.JSONField(default=dict)
    requested_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "not_before"], name="retry_due")]

    def __str__(self) -> str:
        return f"{self.api} {self.target} attempt {self.attempt} ({self.status})"
