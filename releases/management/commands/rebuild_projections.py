"""Drop the release projections and rebuild them from the stream."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from releases import projector


class Command(BaseCommand):
    help = "Rebuild every projection from the stream (the stream itself is never touched)."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        count = projector.rebuild()
        elapsed = time.perf_counter() - started
        rate = count / elapsed if elapsed else 0
        self.stdout.write(
            f"rebuilt projections from {count} events in {elapsed:.1f} s ({rate:,.0f} events/s)"
        )
