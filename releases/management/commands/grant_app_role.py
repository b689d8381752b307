"""Create the application's least-privilege PostgreSQL role and grant it its rights."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from releases.roles import ensure_role


class Command(BaseCommand):
    help = (
        "Run as the tables' owner after `migrate`: create the role the web and worker "
        "processes connect as, allowed only SELECT and INSERT on the stream."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the role's name, e.g. shiplog_app")
        parser.add_argument(
            "--password-env",
            default="SHIPLOG_APP_DB_PASSWORD",
            help="environment variable holding the role's password (never a CLI argument)",
        )

    def handle(self, *args: Any, role: str, password_env: str, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("roles exist on PostgreSQL only; SQLite has one local user")
        ensure_role(connection, role, os.environ.get(password_env) or None)
        self.stdout.write(
            f"role {role} may SELECT and INSERT on the stream and use the projections; "
            "point DATABASE_URL at it for the web and worker processes"
        )
