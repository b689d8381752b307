"""Forms of the releases pages: filters, repositories, secrets, policies and bot tokens."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django import forms

from releases.models import CICredential, ReleaseState, Source, WebhookSecret

STATE_CHOICES = [("", "Any state"), *ReleaseState.choices]
SOURCE_CHOICES = [("", "Any source"), *Source.choices]
KIND_CHOICES = [("", "Tags and branches"), ("tag", "Tags"), ("branch", "Branch deploys")]


class DateInput(forms.DateInput):
    input_type = "date"


class RepositoryChoiceField(forms.ChoiceField):
    """A repository filter: offers the known ones, accepts any (an unknown one matches none)."""

    def valid_value(self, value: Any) -> bool:
        return True


def choices_of(field: forms.Field) -> forms.ChoiceField:
    """Return a form's choice field, to set its choices at run time."""
    assert isinstance(field, forms.ChoiceField)
    return field


def _repository_choices(names: list[str]) -> list[tuple[str, str]]:
    return [("", "Any repository"), *((name, name) for name in names)]


def valid_filters(form: forms.Form) -> dict[str, Any]:
    """Return the filters that validated; a bad one is shown as an error and left out."""
    if not form.is_bound:
        return {}
    form.is_valid()
    return {name: value for name, value in form.cleaned_data.items() if value not in ("", None)}


def day_start(value: Any) -> datetime | None:
    """Return the first moment (UTC) of a date from a filter form, or None."""
    return datetime.combine(value, time.min, tzinfo=UTC) if value else None


class ReleaseFilterForm(forms.Form):
    repository = RepositoryChoiceField(required=False)
    state = forms.ChoiceField(choices=STATE_CHOICES, required=False)
    kind = forms.ChoiceField(label="Ref", choices=KIND_CHOICES, required=False)
    name = forms.CharField(label="Tag or branch contains", required=False, max_length=100)
    since = forms.DateField(label="Started on or after", required=False, widget=DateInput)
    until = forms.DateField(label="Started before", required=False, widget=DateInput)

    def __init__(self, *args: Any, repositories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices_of(self.fields["repository"]).choices = _repository_choices(repositories)


class StreamFilterForm(forms.Form):
    repository = RepositoryChoiceField(required=False)
    source = forms.ChoiceField(label="Platform", choices=SOURCE_CHOICES, required=False)
    type = forms.CharField(
        label="Event type",
        required=False,
        max_length=100,
        help_text="Exact, e.g. workflow_job.completed or job-completed",
    )
    since = forms.DateField(label="Happened on or after", required=False, widget=DateInput)
    until = forms.DateField(label="Happened before", required=False, widget=DateInput)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, repositories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices_of(self.fields["repository"]).choices = _repository_choices(repositories)


class RepositoryForm(forms.Form):
    full_name = forms.RegexField(
        label="Repository (owner/name)",
        regex=r"^[\w.-]+/[\w.-]+$",
        max_length=200,
        error_messages={"invalid": "Write the repository as owner/name, e.g. pyodide/pyodide."},
    )
    circleci_project_slug = forms.CharField(
        label="CircleCI project slug (only for GitHub App or GitLab projects)",
        required=False,
        max_length=200,
        help_text="circleci/<org id>/<project id>; leave empty for gh/owner/name projects.",
    )


class WebhookSecretForm(forms.Form):
    platform = forms.ChoiceField(choices=WebhookSecret.Platform.choices)
    label = forms.CharField(required=False, max_length=100, help_text="e.g. rotated 2026-11")
    secret = forms.CharField(
        label="Secret",
        required=False,
        min_length=8,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to have Shiplog generate one and show it to you once.",
    )


class CICredentialForm(forms.Form):
    platform = forms.ChoiceField(label="Platform", choices=CICredential.Platform.choices)
    token = forms.CharField(
        label="API token",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="A CircleCI personal API token, or a GitHub token with Actions: write. "
        "Stored encrypted; only its last four characters are ever shown.",
    )


class PolicyForm(forms.Form):
    document = forms.CharField(
        label="Deploy and retry policy (TOML)",
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        strip=False,
    )


class BotTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who uses it, e.g. deploy-gate-bot")
    repositories = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    can_write = forms.BooleanField(
        label="May write (record events, change policies, act on incidents)", required=False
    )

    def __init__(self, *args: Any, repositories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices_of(self.fields["repositories"]).choices = [(name, name) for name in repositories]
