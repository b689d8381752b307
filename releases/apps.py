"""Register the releases app and its policy sections."""

from __future__ import annotations

from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = "Releases and the event stream"

    def ready(self) -> None:
        """Validate `[retry]` policies, consider reruns after each batch, count failed logins."""
        import config.schema  # noqa: F401 - registers the bot token scheme with the schema
        import releases.throttling  # noqa: F401 - counts failed logins from Django's signals
        from releases import policy, projector
        from releases.retry import retry_policy_from
        from releases.unblock import consider_after_batch

        policy.section_validators["retry"] = retry_policy_from
        if consider_after_batch not in projector.after_batch_hooks:
            projector.after_batch_hooks.append(consider_after_batch)
