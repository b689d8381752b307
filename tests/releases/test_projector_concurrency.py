"""The projector never skips an event whose transaction commits late."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction

from releases import projector, stream
from releases.models import StreamEvent, TimelineEntry
from tests.releases import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def _job(name: str, minutes: float = 1) -> dict[str, Any]:
    return f.cci_job(name, "success", number=int(minutes * 1000), minutes=minutes)


def _in_thread(target, *args):
    def run():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_slow_writer_delays_the_projector_but_nothing_is_skipped():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time; nothing can commit late")
    stream.append(**_job("build-core"))
    projector.catch_up()
    holding = threading.Event()

    def slow_writer():
        with transaction.atomic():
            stream.append(**_job("slow-job", 2))
            holding.set()
            time.sleep(1.5)

    slow = _in_thread(slow_writer)
    holding.wait(5)
    # This append takes its position only after the slow one commits.
    fast = _in_thread(lambda: stream.append(**_job("fast-job", 3)))
    time.sleep(0.3)
    projector.catch_up()
    assert set(TimelineEntry.objects.values_list("name", flat=True)) == {"build-core"}
    slow.join()
    fast.join()
    projector.catch_up()
    assert set(TimelineEntry.objects.values_list("name", flat=True)) == {
        "build-core",
        "slow-job",
        "fast-job",
    }


def test_concurrent_writers_and_a_running_projector_lose_nothing():
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers")
    writers_done = threading.Event()

    def writer(n: int):
        for i in range(40):
            stream.append(**_job(f"job-{n}-{i}", n + i / 100))

    def project_while_writing():
        while not writers_done.is_set():
            projector.catch_up(batch_size=7)

    reader = _in_thread(project_while_writing)
    writers = [_in_thread(writer, n) for n in range(4)]
    for thread in writers:
        thread.join()
    writers_done.set()
    reader.join()
    projector.catch_up()
    assert TimelineEntry.objects.count() == 160
    assert (
        projector.checkpoint_position()
        == StreamEvent.objects.order_by("-position").values_list("position", flat=True)[0]
    )
