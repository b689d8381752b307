"""Account for CPU during a run: the whole machine, the benchmark's own processes, the rest.

The machine may be shared (other sessions, CI), so every run records how much of its CPU went
to anything else; a figure measured beside a busy neighbour says so instead of passing as clean.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


@dataclass(frozen=True)
class Sample:
    """Cumulative CPU counters at one moment, in seconds; `ours` by group of processes."""

    at: float
    machine_busy: float
    machine_steal: float
    ours: dict[str, float]


def _machine() -> tuple[float, float]:
    """Return (busy, steal) CPU seconds of all cores since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / TICKS_PER_S, steal / TICKS_PER_S


def _trees(roots: dict[str, set[int]]) -> dict[str, float]:
    """Return the CPU seconds used so far by the live processes under each group's roots."""
    parents: dict[int, int] = {}
    used: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # ended while being read
        # The command name may hold spaces and parentheses: fields follow the last ")".
        rest = raw[raw.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(rest[1])
        used[pid] = int(rest[11]) + int(rest[12])
    group_of = {pid: group for group, pids in roots.items() for pid in pids}
    totals = dict.fromkeys(roots, 0)
    for pid, ticks in used.items():
        ancestor = pid
        for _ in range(32):
            if ancestor in group_of:
                totals[group_of[ancestor]] += ticks
                break
            ancestor = parents.get(ancestor, 0)
            if ancestor <= 1:
                break
    return {group: ticks / TICKS_PER_S for group, ticks in totals.items()}


def _children() -> float:
    """Return the CPU seconds of waited-for children (wrk, once it has ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sample(roots: dict[str, set[int]]) -> Sample:
    """Read the counters now; `roots` name the long-running servers of the benchmark.

    Children this process has waited for (the load generator, once it has ended) count as
    the group "client".
    """
    busy, steal = _machine()
    return Sample(time.monotonic(), busy, steal, {**_trees(roots), "client": _children()})


def usage(before: Sample, after: Sample) -> dict[str, float]:
    """Return the shares of the machine's CPU (0..1 of all cores) used between two samples."""
    capacity = max((after.at - before.at) * CORES, 1e-9)
    machine = (after.machine_busy - before.machine_busy) / capacity
    groups = {
        group: max(after.ours.get(group, 0.0) - used, 0.0) / capacity
        for group, used in before.ours.items()
    }
    ours = sum(groups.values())
    return {
        "machine": round(machine, 3),
        "ours": round(ours, 3),
        "others": round(max(machine - ours, 0.0), 3),
        "steal": round((after.machine_steal - before.machine_steal) / capacity, 3),
        **{f"ours_{group}": round(share, 3) for group, share in groups.items()},
    }


def wait_for_quiet(
    roots: dict[str, set[int]], *, threshold: float = 0.15, patience_s: float = 60
) -> dict[str, float]:
    """Wait (at most `patience_s`) until the rest of the machine uses under `threshold` of it.

    Return the last measurement, whether or not it got quiet.
    """
    deadline = time.monotonic() + patience_s
    measured: dict[str, float] = {}
    # At least one measurement, however little patience is left.
    for _ in range(int(patience_s) + 1):
        before = sample(roots)
        time.sleep(1)
        measured = usage(before, sample(roots))
        if measured["others"] + measured["steal"] < threshold or time.monotonic() >= deadline:
            break
    return measured
