"""Register the releases app and its policy sections."""

from __future__ import annotations

from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases and the event stream"

    def ready(self) -> None:
        """Validate the `[retry]` section with the rest of the deploy policy."""
        from releases import policy
        from releases.retry import retry_policy_from

        policy.section_validators["retry"] = retry_policy_from
