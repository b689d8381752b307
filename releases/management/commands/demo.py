"""Replay the Pyodide 0.26.2 demo through a running Shiplog's real webhook endpoints."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from releases import demo


class Command(BaseCommand):
    help = (
        "Post the Pyodide 0.26.2 story, signed, to a running Shiplog: the release goes blocked, "
        "the incident opens, the rerun deploys, the postmortem appears."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--speed",
            type=float,
            default=demo.DEFAULT_SPEED,
            help="how many times faster than it happened (0: post as fast as possible)",
        )
        parser.add_argument(
            "--max-pause",
            type=float,
            default=demo.MAX_PAUSE_SECONDS,
            help="the longest wait between two deliveries, in seconds",
        )
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="the running Shiplog to post to"
        )

    def handle(self, *args: Any, speed: float, max_pause: float, url: str, **options: Any) -> None:
        if speed < 0:
            raise CommandError("--speed must be 0 or more")
        result = load_demo(url=url, speed=speed, max_pause=max_pause, say=self.stdout.write)
        if result is not None and result.refused:
            raise CommandError("some deliveries were refused:\n" + "\n".join(result.refused))


def load_demo(*, url: str, speed: float, max_pause: float, say: Any) -> demo.ReplayResult | None:
    """Prepare the demo, print the credentials, and replay it unless it is already loaded."""
    setup = demo.demo_prepare(debug=settings.DEBUG)
    if setup.password:
        say(f"Demo maintainer: username {setup.username!r}, password {setup.password!r}")
    else:
        say(
            f"Demo maintainer: {setup.username!r} (exists; its password is unchanged: "
            f"manage.py changepassword {setup.username})"
        )
    acts = demo.demo_acts(now=timezone.now())
    count = sum(len(act) for act in acts)
    if demo.demo_loaded(acts):
        say(
            f"The demo is already in the stream ({count} deliveries): nothing to replay. "
            "To watch it again, start on an empty database: "
            "SHIPLOG_VAR_DIR=var/watch make run DEMO_SPEED=120"
        )
        return None
    say(f"Replaying Pyodide 0.26.2: {count} signed deliveries to {url} (speed {speed:g})")
    result = demo.demo_replay(
        acts,
        base_url=url,
        signing=setup.secrets,
        speed=speed,
        max_pause=max_pause,
        settle=demo.settle_projections,
        # Step by step only for someone watching; at full speed the summary says enough.
        say=say if speed > 0 else (lambda line: None),
    )
    say(
        f"Demo loaded: {result.recorded} recorded, {result.duplicates} already there, "
        f"{len(result.refused)} refused. Open {url.rstrip('/')}/ and log in as {setup.username}."
    )
    return result
