"""The API benchmark's plan check finds a whole-stream scan wherever it sits in a plan."""

from __future__ import annotations

from typing import Any

from bench.api_worker import plan_summary


def _node(node_type: str, relation: str | None = None, *children: dict[str, Any]):
    node: dict[str, Any] = {"Node Type": node_type, "Plans": list(children)}
    if relation:
        node["Relation Name"] = relation
    return node


def _explained(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Plan": plan, "Execution Time": 0.5, "Planning Time": 0.1}]


def test_a_seq_scan_of_the_stream_deep_in_a_plan_is_found():
    plan = _node(
        "Limit",
        None,
        _node(
            "Nested Loop",
            None,
            _node("Index Scan", "releases_release"),
            _node("Seq Scan", "shiplog_stream"),
        ),
    )
    summary = plan_summary(_explained(plan))
    assert summary["stream_seq_scan"] is True
    assert summary["top_node"] == "Limit"
    assert summary["seq_scans"] == ["shiplog_stream"]
    assert summary["relations"] == ["releases_release", "shiplog_stream"]


def test_an_index_scan_of_the_stream_or_a_seq_scan_elsewhere_passes():
    plan = _node(
        "Nested Loop",
        None,
        _node("Index Scan", "shiplog_stream"),
        _node("Seq Scan", "releases_bottoken"),
    )
    summary = plan_summary(_explained(plan))
    assert summary["stream_seq_scan"] is False
    assert summary["seq_scans"] == ["releases_bottoken"]
