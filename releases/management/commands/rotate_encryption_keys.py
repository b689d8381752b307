"""Re-encrypt every stored secret with the newest of SHIPLOG_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from releases import services


class Command(BaseCommand):
    help = (
        "Re-encrypt webhook secrets and CI tokens with the first (newest) key in "
        "SHIPLOG_ENCRYPTION_KEYS. Add the new key in front, run this, then drop the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = services.stored_secrets_rotate()
        for label, count in report.rotated.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        unreadable = {label: pks for label, pks in report.undecryptable.items() if pks}
        for label, pks in unreadable.items():
            self.stderr.write(
                f"{label}: no configured key decrypts rows {', '.join(map(str, pks))}; "
                "they were left as they are"
            )
        if unreadable:
            raise CommandError("some secrets could not be re-encrypted: keep the old key for now")
