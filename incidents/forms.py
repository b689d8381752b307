"""Forms of the incident pages: filters, status, severity, notes, action items, narrative."""

from __future__ import annotations

from typing import Any

from django import forms

from incidents.models import ActionItem, Severity, Status
from incidents.postmortem import EDITABLE_SECTIONS
from releases.forms import RepositoryChoiceField, choices_of

STATUS_FILTERS = [("", "Any status"), ("open", "Open (not resolved)"), *Status.choices]
SEVERITY_FILTERS = [("", "Any severity"), *Severity.choices]
SECTION_TITLES = {
    "summary": "Summary",
    "impact": "Impact",
    "root_cause": "Root cause and contributing factors",
    "resolution": "Resolution",
    "lessons": "Lessons learned",
}


class IncidentFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False)
    severity = forms.ChoiceField(choices=SEVERITY_FILTERS, required=False)
    repository = RepositoryChoiceField(required=False)

    def __init__(self, *args: Any, repositories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices_of(self.fields["repository"]).choices = [
            ("", "Any repository"),
            *((name, name) for name in repositories),
        ]


class StatusForm(forms.Form):
    status = forms.ChoiceField(label="New status")
    note = forms.CharField(
        label="Note (why, optional)",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, allowed: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices_of(self.fields["status"]).choices = [
            (value, label) for value, label in Status.choices if value in allowed
        ]


class SeverityForm(forms.Form):
    severity = forms.ChoiceField(choices=Severity.choices)


class NoteForm(forms.Form):
    text = forms.CharField(
        label="Note", max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ActionItemForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=ActionItem.Kind.choices)
    text = forms.CharField(label="Action item", max_length=2_000)


class NarrativeForm(forms.Form):
    section = forms.ChoiceField(
        choices=[(key, SECTION_TITLES.get(key, key)) for key in EDITABLE_SECTIONS],
        widget=forms.HiddenInput,
    )
    text = forms.CharField(
        required=False,
        max_length=20_000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
