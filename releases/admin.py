"""Admin: the stream read-only with filters; repositories, webhook secrets and CI tokens."""

from __future__ import annotations

from typing import Any

import orjson
from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html

from releases import policy as policy_module
from releases import services
from releases.encryption import encrypt
from releases.models import (
    BotToken,
    CICredential,
    DeployPolicy,
    Repository,
    StreamEvent,
    WebhookSecret,
)
from releases.throttling import LimitedAdminLoginForm

# The admin's login counts and limits failures as the pages' login does.
admin.site.login_form = LimitedAdminLoginForm


@admin.register(StreamEvent)
class StreamEventAdmin(admin.ModelAdmin[StreamEvent]):
    list_display = (
        "position",
        "source",
        "event_type",
        "repository",
        "tag",
        "branch",
        "recognition",
        "occurred_at",
        "recorded_at",
    )
    list_filter = ("source", "recognition", "event_type", "repository")
    search_fields = ("=delivery_key", "=sha", "=tag", "=repository")
    ordering = ("-position",)
    show_full_result_count = False
    list_per_page = 50
    exclude = ("body", "data", "headers")
    readonly_fields = (
        "position",
        "event_id",
        "source",
        "event_type",
        "repository",
        "sha",
        "branch",
        "tag",
        "occurred_at",
        "recorded_at",
        "delivery_key",
        "recognition",
        "prev_hash",
        "hash",
        "pretty_headers",
        "pretty_data",
        "pretty_body",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @staticmethod
    def _pre(value: Any) -> str:
        return format_html("<pre>{}</pre>", orjson.dumps(value, option=orjson.OPT_INDENT_2))

    @admin.display(description="headers")
    def pretty_headers(self, obj: StreamEvent) -> str:
        return self._pre(obj.headers)

    @admin.display(description="normalised fields")
    def pretty_data(self, obj: StreamEvent) -> str:
        return self._pre(obj.data)

    @admin.display(description="raw body")
    def pretty_body(self, obj: StreamEvent) -> str:
        raw = bytes(obj.body)
        try:
            return self._pre(orjson.loads(raw))
        except orjson.JSONDecodeError:
            return format_html("<pre>{}</pre>", raw.decode("utf-8", errors="replace"))


class WebhookSecretForm(forms.ModelForm[WebhookSecret]):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        min_length=8,
        help_text="Write-only. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = WebhookSecret
        fields = ("repository", "platform", "label", "active")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not self.instance.pk and not cleaned.get("secret"):
            self.add_error("secret", "A new webhook secret needs its value.")
        return cleaned

    def save(self, commit: bool = True) -> WebhookSecret:
        secret = self.cleaned_data.get("secret")
        if secret:
            self.instance.encrypted_secret = encrypt(secret)
            self.instance.last_four = secret[-4:]
        return super().save(commit=commit)


@admin.register(WebhookSecret)
class WebhookSecretAdmin(admin.ModelAdmin[WebhookSecret]):
    form = WebhookSecretForm
    list_display = ("repository", "platform", "label", "masked", "active", "created_at")
    list_filter = ("platform", "active")

    @admin.display(description="secret")
    def masked(self, obj: WebhookSecret) -> str:
        return f"••••{obj.last_four}"


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin[Repository]):
    list_display = ("full_name", "circleci_project_slug", "created_at")
    search_fields = ("full_name",)


class DeployPolicyForm(forms.ModelForm[DeployPolicy]):
    class Meta:
        model = DeployPolicy
        fields = ("repository", "document")
        widgets = {"document": forms.Textarea(attrs={"rows": 30, "cols": 100})}

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        repository = cleaned.get("repository")
        document = cleaned.get("document")
        if repository is not None and document is not None:
            try:
                policy_module.parse(document, repository=repository.full_name)
            except policy_module.PolicyError as exc:
                self.add_error("document", str(exc))
        return cleaned


@admin.register(DeployPolicy)
class DeployPolicyAdmin(admin.ModelAdmin[DeployPolicy]):
    form = DeployPolicyForm
    list_display = ("repository", "updated_at")

    def save_model(self, request: HttpRequest, obj: DeployPolicy, form: Any, change: bool) -> None:
        """Store through the service, so the change is audited and releases re-derived."""
        services.policy_set(
            repository=obj.repository,
            document=obj.document,
            actor=getattr(request.user, "username", "admin"),
        )


class BotTokenForm(forms.ModelForm[BotToken]):
    class Meta:
        model = BotToken
        fields = ("name", "repositories", "can_write", "revoked_at")


@admin.register(BotToken)
class BotTokenAdmin(admin.ModelAdmin[BotToken]):
    form = BotTokenForm
    list_display = ("name", "prefix", "can_write", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def save_model(self, request: HttpRequest, obj: BotToken, form: Any, change: bool) -> None:
        """Create new tokens through the service and show the value once."""
        if change:
            super().save_model(request, obj, form, change)
            return
        repositories = list(form.cleaned_data["repositories"])
        created, value = services.bot_token_create(
            name=obj.name, repositories=repositories, can_write=obj.can_write
        )
        obj.pk = created.pk
        obj.token_hash = created.token_hash
        obj.prefix = created.prefix
        messages.warning(
            request, f"Token for {obj.name}: {value} — copy it now, it is not shown again."
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)


class CICredentialForm(forms.ModelForm[CICredential]):
    token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        min_length=services.MIN_CI_TOKEN_LENGTH,
        help_text="Write-only: a CircleCI personal API token, or a GitHub token with "
        "Actions: write. Leave empty to keep the stored token.",
    )

    class Meta:
        model = CICredential
        fields = ("repository", "platform")

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if not self.instance.pk and not cleaned.get("token"):
            self.add_error("token", "A new CI credential needs its token.")
        return cleaned


@admin.register(CICredential)
class CICredentialAdmin(admin.ModelAdmin[CICredential]):
    form = CICredentialForm
    list_display = ("repository", "platform", "masked", "updated_at")
    list_filter = ("platform",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # A token belongs to one repository and platform; to move it, delete it and add it anew.
        return ("repository", "platform", "masked") if obj else ()

    @admin.display(description="token")
    def masked(self, obj: CICredential) -> str:
        return f"••••{obj.last_four}"

    def save_model(self, request: HttpRequest, obj: CICredential, form: Any, change: bool) -> None:
        """Store a new token through the service; without one there is nothing to change."""
        token = form.cleaned_data.get("token")
        if not token:
            return
        stored = services.ci_credential_set(
            repository=obj.repository, platform=obj.platform, token=token
        )
        obj.pk = stored.pk
        obj.encrypted_token = stored.encrypted_token
        obj.last_four = stored.last_four
        obj.created_at = stored.created_at
        obj.updated_at = stored.updated_at
