"""Import past CI events into the stream from a JSON Lines file (format: releases.history)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from releases.history import BATCH_SIZE, HistoryImported, HistoryLineError, history_import


class Command(BaseCommand):
    help = (
        "Append the events of a JSON Lines file (one object per line with the fields "
        "stream.append takes; see README) to the stream, skipping those already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the .jsonl file, or - for standard input")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"events per transaction (default {BATCH_SIZE})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        name = options["file"]
        done = HistoryImported(0, 0, 0)

        def progress(so_far: HistoryImported) -> None:
            nonlocal done
            done = so_far
            if options["verbosity"] > 1:
                self.stdout.write(f"line {so_far.lines}: {so_far.stored} stored")

        try:
            with (
                # Bytes: a line that is not UTF-8 is then reported with its number.
                open(sys.stdin.fileno(), "rb", closefd=False)
                if name == "-"
                else Path(name).open("rb")
            ) as lines:
                result = history_import(
                    lines=lines, batch_size=options["batch_size"], progress=progress
                )
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc}") from exc
        except HistoryLineError as exc:
            raise CommandError(
                f"{name}, {exc}. Nothing of its batch was stored; {done.stored} events from "
                f"earlier batches were (importing the file again skips them)."
            ) from exc
        self.stdout.write(
            f"{result.stored} events stored, {result.duplicates} already in the stream "
            f"({result.lines} lines read)"
        )
