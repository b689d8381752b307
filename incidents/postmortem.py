"""Compose a postmortem document from an incident and its releases' timelines. Pure.

Markdown is canonical; `render_html` derives the HTML. Sections a maintainer has written
(`EDITABLE_SECTIONS`) replace the generated text, so regeneration never loses them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import markdown as markdown_lib
import nh3

from incidents.lessons import Lesson
from releases.projections import Entry

EDITABLE_SECTIONS = ("summary", "impact", "root_cause", "resolution", "lessons")
PLATFORM = {"github": "GitHub Actions", "circleci": "CircleCI", "api": "API", "shiplog": "Shiplog"}


@dataclass(frozen=True)
class TimelineLine:
    """One line of the postmortem timeline."""

    at: datetime
    source: str
    text: str
    position: int | None


@dataclass(frozen=True)
class PostmortemInput:
    """Everything a postmortem is composed from."""

    title: str
    repository: str
    release_name: str
    severity: str
    status: str
    began_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str
    findings: dict[str, dict[str, Any]]
    narrative: dict[str, str]
    detected_after: timedelta | None
    timeline: Sequence[TimelineLine]
    lessons: Sequence[Lesson]
    action_items: Sequence[dict[str, Any]]
    event_url: str  # with {position}
    retries: Sequence[dict[str, Any]] = field(default_factory=list)


def _utc(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "unknown"


def _span(delta: timedelta | None) -> str:
    if delta is None:
        return "unknown"
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} seconds"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} minutes"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days {hours % 24} h"


def timeline_lines(entries: Sequence[Entry], incident_events: Sequence[Any]) -> list[TimelineLine]:
    """Return the lines worth a reader's time: refs, deploys, failures, runs, Shiplog's acts.

    Successful non-deploy jobs are counted in one line rather than listed, so a release with
    thousands of jobs still reads as a story.
    """
    lines: list[TimelineLine] = []
    quiet = 0
    for entry in entries:
        when = entry.completed_at or entry.started_at or entry.occurred_at
        if when is None:
            continue
        source = PLATFORM.get(entry.platform, entry.platform)
        if entry.kind == "tag":
            text = f"tag `{entry.tag or entry.name}` {entry.status}"
        elif entry.kind == "release":
            text = f"release `{entry.tag or entry.name}` {entry.status}"
        elif entry.kind == "workflow_run":
            state = entry.conclusion or entry.status
            attempt = f" (attempt {entry.attempt})" if entry.attempt > 1 else ""
            text = f"workflow `{entry.name}`{attempt} {state.replace('_', ' ')}"
        elif entry.kind == "job":
            if entry.conclusion == "success" and "deploy" not in entry.name:
                quiet += 1
                continue
            state = entry.conclusion or entry.status or "reported"
            text = f"job `{entry.name}` {state.replace('_', ' ')}"
            if entry.extra.get("failed_step"):
                text += f" at step “{entry.extra['failed_step'].get('name', '')}”"
        elif entry.kind == "deployment":
            text = f"deployment to `{entry.name}` {entry.status}"
        elif entry.platform == "shiplog" and entry.kind == "incident":
            continue  # incident events are listed from the incident's own stream below
        else:
            text = f"{entry.kind} `{entry.name}` {entry.conclusion or entry.status}".strip()
        lines.append(TimelineLine(when, source, text, entry.position))
    for event in incident_events:
        text = _incident_line(event.event_type, event.data)
        if text:
            lines.append(TimelineLine(event.occurred_at, "Shiplog", text, event.position))
    lines.sort(key=lambda line: (line.at, line.position or 0))
    if quiet:
        first = lines[0].at if lines else None
        if first is not None:
            lines.insert(1, TimelineLine(first, "both", f"{quiet} other jobs succeeded", None))
    return lines


def _incident_line(event_type: str, data: dict[str, Any]) -> str:
    actor = data.get("actor", "")
    who = f" ({actor})" if actor and actor != "shiplog" else ""
    match event_type.removeprefix("incident."):
        case "opened":
            return f"incident opened: {data.get('title', '')}"
        case "reopened":
            return "incident reopened"
        case "status_changed":
            return f"status {data.get('from')} → {data.get('to')}{who}"
        case "note_added":
            return f"note{who}: {data.get('text', '')}"
        case "resolved":
            return f"incident resolved: {data.get('resolution', '')}"
        case "severity_changed":
            return f"severity → {data.get('severity')}{who}"
        case "evidence_added":
            return f"evidence added: {data.get('finding', {}).get('rule', '').replace('_', ' ')}"
        case "action_item_added":
            return f"action item ({data.get('kind')}): {data.get('text', '')}"
        case _:
            return ""


def compose(data: PostmortemInput) -> str:
    """Return the postmortem as Markdown (without its revision header)."""
    out: list[str] = []
    narrative = data.narrative
    blocked = data.findings.get("deploy_blocked")
    partial = data.findings.get("partial_deploy")

    def section(title: str, key: str, generated: str) -> None:
        out.append(f"## {title}\n")
        text = narrative.get(key, "").strip()
        out.append((text or generated).strip() + "\n")

    out.append(f"# Postmortem: {data.title}\n")
    out.append(
        f"*{data.repository}* · release **{data.release_name}** · severity **{data.severity}** "
        f"· status **{data.status}**\n"
    )
    summary = " ".join(f.get("summary", "") for f in data.findings.values()).strip()
    if data.resolved_at:
        summary += f" Resolved {_utc(data.resolved_at)}."
    section("Summary", "summary", summary or data.title)

    impact = [
        f"- **From** {_utc(data.began_at)} **to** "
        f"{_utc(data.resolved_at) if data.resolved_at else 'not yet resolved'}"
    ]
    if data.began_at and data.resolved_at:
        impact.append(f"- **Duration:** {_span(data.resolved_at - data.began_at)}")
    if partial:
        details = partial.get("details", {})
        for unit in details.get("shipped", []):
            impact.append(f"- `{unit['deploy']}` on {PLATFORM.get(unit['platform'])} shipped")
        for unit in details.get("missing", []):
            impact.append(
                f"- `{unit['deploy']}` on {PLATFORM.get(unit['platform'])} "
                f"{unit['outcome'].replace('_', ' ')}: users got half a release"
            )
    elif blocked:
        impact.append(f"- `{blocked['details']['deploy']}` did not ship")
    section("Impact", "impact", "\n".join(impact))

    out.append("## Detection and resolution\n")
    out.append(f"- **Time to detect:** {_span(data.detected_after)} after the evidence arrived")
    if data.began_at:
        out.append(f"- **Opened:** {_utc(data.opened_at)}")
    if data.resolved_at and data.began_at:
        out.append(f"- **Time to resolve:** {_span(data.resolved_at - data.began_at)}")
    for retry in data.retries:
        out.append(f"- **Automatic retry:** {retry['text']}")
    out.append("")

    out.append("## Timeline (UTC)\n")
    for line in data.timeline:
        link = (
            f" ([#{line.position}]({data.event_url.format(position=line.position)}))"
            if line.position
            else ""
        )
        out.append(f"- {line.at:%Y-%m-%d %H:%M:%S} · {line.source} · {line.text}{link}")
    out.append("")

    cause: list[str] = []
    if blocked:
        cause.append(blocked["summary"])
    for rule, finding in data.findings.items():
        if rule != "deploy_blocked":
            cause.append(f"Contributing: {finding['summary']}")
    evidence = [
        item
        for f in data.findings.values()
        for item in f.get("evidence", [])
        if item.get("position")
    ]
    if evidence:
        cause.append("\nEvidence:\n")
        for item in evidence:
            cause.append(f"- [{item['why']}]({data.event_url.format(position=item['position'])})")
    section("Root cause and contributing factors", "root_cause", "\n".join(cause) or "Unknown.")

    resolution = data.resolution or "Not resolved yet."
    if data.retries:
        credited = "; ".join(retry["text"] for retry in data.retries)
        resolution += f"\n\nShiplog's automatic retry unblocked the deploy: {credited}."
    section("Resolution", "resolution", resolution)

    learned = [f"- **{lesson.title}.** {lesson.text}" for lesson in data.lessons]
    section("Lessons learned", "lessons", "\n".join(learned) or "None recorded.")

    out.append("## Action items\n")
    items = list(data.action_items)
    known = {item["text"] for item in items}
    for lesson in data.lessons:
        if lesson.action and lesson.action not in known:
            items.append({"kind": lesson.action_kind, "text": lesson.action, "done": False})
            known.add(lesson.action)
    for item in items:
        box = "x" if item.get("done") else " "
        out.append(f"- [{box}] *{item['kind']}*: {item['text']}")
    if not items:
        out.append("None yet.")
    out.append("")
    return "\n".join(out)


def render_html(markdown_text: str) -> str:
    """Render postmortem Markdown to sanitised HTML."""
    html = markdown_lib.markdown(markdown_text, extensions=["sane_lists"])
    return nh3.clean(html)


_HEADING = re.compile(r"<(/?)h([1-6])\b")


def demote_headings(html: str, levels: int = 1) -> str:
    """Return HTML with each heading `levels` lower (h1 becomes h2), to sit under a page's h1."""
    return _HEADING.sub(lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + levels, 6)}", html)
