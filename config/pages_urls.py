"""URLs of the maintainers' pages: dashboard, releases, incidents, stream, settings."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import path, re_path
from django.views.generic import RedirectView

from incidents import views as incidents
from releases import views as releases

urlpatterns = [
    path("", releases.dashboard, name="dashboard"),
    # Browsers ask for it on pages that name no icon (the admin's); a 404 there is noise.
    path("favicon.ico", RedirectView.as_view(url=static("shiplog/favicon.svg"), permanent=True)),
    path("login/", releases.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("releases/", releases.release_list, name="releases"),
    # A tag never contains ':' (git refuses it), so "branch:<name>@<sha>" names a branch deploy.
    path("releases/<str:owner>/<str:name>/<path:ref>/", releases.release_page, name="release"),
    path("incidents/", incidents.incident_list, name="incidents"),
    path("incidents/<uuid:incident_id>/", incidents.incident_page, name="incident"),
    path(
        "incidents/<uuid:incident_id>/status/",
        incidents.incident_status,
        name="incident-status",
    ),
    path(
        "incidents/<uuid:incident_id>/severity/",
        incidents.incident_severity,
        name="incident-severity",
    ),
    path("incidents/<uuid:incident_id>/notes/", incidents.incident_note, name="incident-note"),
    path(
        "incidents/<uuid:incident_id>/acknowledge/",
        incidents.incident_acknowledge,
        name="incident-acknowledge",
    ),
    path(
        "incidents/<uuid:incident_id>/action-items/",
        incidents.action_item_add,
        name="action-item-add",
    ),
    path(
        "incidents/<uuid:incident_id>/action-items/<str:item_id>/done/",
        incidents.action_item_complete,
        name="action-item-done",
    ),
    path("incidents/<uuid:incident_id>/postmortem/", incidents.postmortem_page, name="postmortem"),
    path(
        "incidents/<uuid:incident_id>/postmortem.md",
        incidents.postmortem_download,
        name="postmortem-download",
    ),
    path(
        "incidents/<uuid:incident_id>/postmortem/regenerate/",
        incidents.postmortem_regenerate,
        name="postmortem-regenerate",
    ),
    re_path(
        r"^incidents/(?P<incident_id>[0-9a-f-]{36})/postmortem/sections/(?P<section>[a-z_]+)/$",
        incidents.narrative_edit,
        name="narrative-edit",
    ),
    path("lessons/", incidents.lessons, name="lessons"),
    path("stream/", releases.stream_explorer, name="stream"),
    path("stream/<int:position>/", releases.stream_event, name="stream-event"),
    path("settings/", releases.settings_index, name="settings"),
    path("settings/repositories/", releases.repository_add, name="repository-add"),
    path(
        "settings/repositories/<str:owner>/<str:name>/",
        releases.repository_settings,
        name="settings-repository",
    ),
    path(
        "settings/repositories/<str:owner>/<str:name>/secrets/",
        releases.webhook_secret_add,
        name="webhook-secret-add",
    ),
    path(
        "settings/repositories/<str:owner>/<str:name>/secrets/<int:pk>/retire/",
        releases.webhook_secret_retire,
        name="webhook-secret-retire",
    ),
    path(
        "settings/repositories/<str:owner>/<str:name>/credentials/",
        releases.ci_credential_set,
        name="ci-credential-set",
    ),
    path(
        "settings/repositories/<str:owner>/<str:name>/policy/",
        releases.policy_save,
        name="policy-save",
    ),
    path(
        "settings/repositories/<str:owner>/<str:name>/policy/check/",
        releases.policy_check,
        name="policy-check",
    ),
    path("settings/tokens/", releases.bot_token_create, name="bot-token-create"),
    path("settings/tokens/<int:pk>/revoke/", releases.bot_token_revoke, name="bot-token-revoke"),
]
