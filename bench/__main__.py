"""Run Shiplog's benchmarks: `python -m bench [SUITE ...] [--quick]` (`make bench` runs all)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import NoReturn

from bench.runner import (
    Options,
    machine_info,
    machine_markdown,
    write_results,
    write_section,
)
from bench.suites import OPT_IN, SUITES
from bench.suites.ingest import parse_case


def _exit_on_signal(signum: int, frame: object) -> NoReturn:
    # SystemExit unwinds the context managers, so scratch servers and temp dirs go too.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites, write bench/results/ and (unless --quick) docs/benchmarks.md."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help=f"one of: {', '.join(SUITES)} (default: all); opt-in: {', '.join(OPT_IN)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one short round, for development; docs untouched"
    )
    parser.add_argument("--rounds", type=int, help="rounds per case (default 3, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds of load per run")
    parser.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="SIZE:CONNS[:WORKER[:THREADS]]",
        help="ingest only this load shape (repeatable), e.g. small:16:gthread:4",
    )
    parser.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    known = {**SUITES, **OPT_IN}
    unknown = [name for name in args.suites if name not in known]
    if unknown:
        parser.error(f"unknown suite {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.rounds is not None and not 1 <= args.rounds <= 20:
        parser.error("--rounds must be between 1 and 20")
    if args.duration is not None and not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    for text in args.case:
        try:
            parse_case(text)
        except ValueError as exc:
            parser.error(f"--case {text}: {exc}")
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)

    options = Options(
        quick=args.quick, rounds=args.rounds, duration_s=args.duration, cases=tuple(args.case)
    )
    # Partial runs (quick, or chosen cases) never replace the published figures.
    write_docs = not (args.quick or args.no_docs or args.case)
    started = time.monotonic()
    print("measuring the machine", flush=True)
    machine = machine_info(measure_fsync=not args.quick)
    passed = True
    for name in args.suites or list(SUITES):
        suite = known[name]
        print(f"== {suite.title} ({name})", flush=True)
        report = suite.run(options, machine)
        passed = passed and report.passed
        # A partial run's figures are not comparable with the targets (see suites/targets.py).
        partial = bool(args.quick or args.case)
        payload = {"suite": name, "machine": machine, "partial": partial, **report.data}
        path = write_results(name, payload)
        print(f"raw figures: {path}")
        if write_docs:
            # The machine section describes the default suites' figures; an opt-in suite
            # states its own machine and leaves that section alone.
            if name in SUITES:
                write_section("machine", machine_markdown(machine))
            write_section(name, report.markdown)
        print(report.markdown)
    if write_docs:
        print("docs/benchmarks.md updated")
    print(f"done in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
