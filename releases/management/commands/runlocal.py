"""Run Shiplog on one machine: a Celery worker with beat, and the web server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Start a Celery worker (with beat) and the web server on localhost."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port to serve on")

    def handle(self, *args: Any, addr: str, **options: Any) -> None:
        settings.BROKER_DIR.joinpath("processed").mkdir(parents=True, exist_ok=True)
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "config",
                "worker",
                "--beat",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
            ],
            env=os.environ.copy(),
        )
        self.stdout.write(f"Celery worker started (pid {worker.pid}, broker {_broker()})")
        self.stdout.write(self.style.SUCCESS(f"Shiplog is running at http://{addr}/"))
        try:
            call_command("runserver", addr, use_reloader=False)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()


def _broker() -> str:
    url = str(settings.CELERY_BROKER_URL)
    return "filesystem (no server)" if url.startswith("filesystem") else url.split("@")[-1]
