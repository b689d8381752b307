"""Benchmarks for Shiplog, run by `make bench`: one runner, one suite per comparison."""

from __future__ import annotations
