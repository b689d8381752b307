"""Create, list and revoke CI bot tokens."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from releases import services
from releases.models import BotToken


class Command(BaseCommand):
    help = "Manage bot tokens. `create` prints the new token as its last line, once."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="create a token")
        create.add_argument(
            "--repository", action="append", required=True, help="owner/name (repeatable)"
        )
        create.add_argument("--write", action="store_true", help="may also write")
        create.add_argument("--name", default="ci-bot", help="what the token is for")
        actions.add_parser("list", help="list tokens (never their values)")
        revoke = actions.add_parser("revoke", help="revoke a token by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "create":
            repositories = [
                services.repository_create(full_name=name) for name in options["repository"]
            ]
            bot, value = services.bot_token_create(
                name=options["name"], repositories=repositories, can_write=options["write"]
            )
            scope = "read and write" if bot.can_write else "read"
            self.stderr.write(
                f"Created {bot.name} ({scope}) for {', '.join(options['repository'])}. "
                "Store it now: it is not shown again."
            )
            self.stdout.write(value)
        elif action == "list":
            for bot in BotToken.objects.prefetch_related("repositories"):
                repos = ", ".join(r.full_name for r in bot.repositories.all())
                state = "revoked" if bot.revoked_at else ("write" if bot.can_write else "read")
                self.stdout.write(f"{bot.prefix}…  {bot.name}  {state}  {repos}")
        else:
            found = BotToken.objects.filter(prefix=options["prefix"]).first()
            if found is None:
                raise CommandError(f"no token with prefix {options['prefix']}")
            services.bot_token_revoke(bot=found)
            self.stdout.write(f"revoked {found}")
