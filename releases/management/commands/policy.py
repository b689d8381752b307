"""Export and import deploy policies as TOML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from releases import policy as policy_module
from releases import services
from releases.models import DeployPolicy


class Command(BaseCommand):
    help = "policy export <owner/name> prints a policy; policy import <file> stores one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="print a repository's policy as TOML")
        export.add_argument("repository", help="owner/name")
        imported = actions.add_parser("import", help="validate and store a policy file")
        imported.add_argument("file", type=Path)
        imported.add_argument(
            "--repository", help="owner/name, if the file does not say (repository = ...)"
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "export":
            name = options["repository"]
            stored = DeployPolicy.objects.filter(repository__full_name=name).first()
            if stored is not None:
                self.stdout.write(stored.document, ending="")
            else:
                self.stdout.write(
                    policy_module.dumps(policy_module.DEFAULT_POLICY, repository=name), ending=""
                )
            return
        path: Path = options["file"]
        try:
            document = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        try:
            declared = policy_module.declared_repository(document)
        except policy_module.PolicyError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        name = options.get("repository") or declared
        if not name:
            raise CommandError(f"{path} does not say repository = 'owner/name'; pass --repository")
        repository = services.repository_create(full_name=name)
        try:
            services.policy_set(repository=repository, document=document, actor="manage.py")
        except policy_module.PolicyError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        self.stdout.write(f"policy for {name} imported from {path}")
