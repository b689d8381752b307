"""Run Shiplog on one machine: a Celery worker with beat, the web server, and the demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from releases.management.commands.demo import load_demo


class Command(BaseCommand):
    help = "Start a Celery worker (with beat) and the web server on localhost; load the demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port to serve on")
        parser.add_argument(
            "--demo-speed",
            type=float,
            default=0.0,
            help="replay the demo this many times faster than it happened (0: at once)",
        )
        parser.add_argument("--no-demo", action="store_true", help="do not load the demo")

    def handle(
        self, *args: Any, addr: str, demo_speed: float, no_demo: bool, **options: Any
    ) -> None:
        for folder in ("processed", "control"):
            settings.BROKER_DIR.joinpath(folder).mkdir(parents=True, exist_ok=True)
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
        if not no_demo:
            loader = threading.Thread(
                target=self._load_demo, args=(addr, demo_speed), name="demo", daemon=True
            )
            loader.start()
        try:
            call_command("runserver", addr, use_reloader=False)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()

    def _load_demo(self, addr: str, speed: float) -> None:
        """Wait for the web server, then post the demo to it over HTTP, as CI would."""
        host, _, port = addr.rpartition(":")
        host = "127.0.0.1" if host in {"", "0.0.0.0", "[::]"} else host  # noqa: S104
        url = f"http://{host}:{port}"
        try:
            _wait_for(host, int(port))
            load_demo(url=url, speed=speed, max_pause=8.0, say=self._say)
        except Exception as exc:  # the server keeps running without its demo
            self.stderr.write(f"The demo could not be loaded: {exc}")
        finally:
            connection.close()

    def _say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()


def _wait_for(host: str, port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the web server did not listen on {host}:{port} within {seconds:g} s")


def _broker() -> str:
    url = str(settings.CELERY_BROKER_URL)
    return "filesystem (no server)" if url.startswith("filesystem") else url.split("@")[-1]
