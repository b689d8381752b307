"""The append-only stream of facts, and the repositories whose deliveries it accepts."""

from __future__ import annotations

from django.db import models


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
