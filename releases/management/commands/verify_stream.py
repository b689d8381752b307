"""Check the stream's hash chain and positions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from releases.models import StreamEvent
from releases.stream import verify_chain


class Command(BaseCommand):
    help = "Verify that no stream row was edited, removed, inserted or reordered."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = list(verify_chain())
        for problem in problems:
            self.stderr.write(f"position {problem.position}: {problem.reason}")
        if problems:
            raise CommandError(f"the stream's hash chain is broken in {len(problems)} place(s)")
        self.stdout.write(f"stream intact: {StreamEvent.objects.count()} events, chain verified")
