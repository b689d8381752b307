"""Draw a release's timeline as swimlanes, server-side, in SVG. Pure: entries in, markup out.

One lane per platform and workflow, one row per job, one bar per job attempt coloured by its
conclusion (and hatched or outlined, so colour is never the only signal). Markers above the
lanes show the tag push, the published release, deploys, probes, retries and incidents. The
blocking chain is drawn on top: the failed job that blocks a deploy, and the deploy job that
never ran, joined by an arrow. Long quiet stretches (a three-day wait for a rerun) are cut
out of the time axis and shown as a break, so both ends of a story stay readable.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

from releases.metrics import duration_text
from releases.projections import FAILED, Entry, ReleaseView, latest_attempts

PLATFORM_NAMES = {"github": "GitHub Actions", "circleci": "CircleCI"}
LABEL_WIDTH = 250
CHART_WIDTH = 880
RIGHT_PAD = 20
MARKER_AREA = 64
MARKER_LEVELS = (12, 26, 40)
MARKER_UNLABELLED = 54
LANE_HEADER = 22
ROW_HEIGHT = 18
BAR_HEIGHT = 12
AXIS_HEIGHT = 26
GAP_WIDTH = 36
MIN_BAR = 3.0
# A quiet stretch longer than this, and longer than a quarter of the busy time, is cut out.
MIN_CUT = timedelta(hours=1)
TICK_STEPS_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
MIN_TICK_SPACING = 72
CHAR_WIDTH = 6.2
INCIDENT_MARKS = {"opened", "reopened", "resolved", "status changed", "severity changed"}


# ----------------------------------------------------------------------------- time scale


@dataclass(frozen=True, slots=True)
class Segment:
    """A busy stretch of the time axis, drawn to scale from pixel `x`."""

    start: datetime
    end: datetime
    x: float
    width: float

    @property
    def seconds(self) -> float:
        """Return the stretch's length in seconds (at least one)."""
        return max((self.end - self.start).total_seconds(), 1.0)

    def x_of(self, moment: datetime) -> float:
        """Return the pixel of `moment`, clamped to this stretch."""
        offset = (moment - self.start).total_seconds() / self.seconds
        return self.x + self.width * min(max(offset, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class TimeScale:
    """Map moments to pixels across busy stretches, with fixed-width breaks between them."""

    segments: tuple[Segment, ...]

    @classmethod
    def build(
        cls,
        spans: Iterable[tuple[datetime, datetime]],
        *,
        x: float = 0.0,
        width: float = CHART_WIDTH,
        min_cut: timedelta = MIN_CUT,
        gap_width: float = GAP_WIDTH,
    ) -> TimeScale:
        """Return a scale over `spans`, cutting out quiet stretches longer than `min_cut`."""
        ordered = sorted((start, max(start, end)) for start, end in spans)
        if not ordered:
            raise ValueError("a time scale needs at least one span")
        clusters: list[list[datetime]] = [[ordered[0][0], ordered[0][1]]]
        for start, end in ordered[1:]:
            current = clusters[-1]
            if start - current[1] <= min_cut:
                current[1] = max(current[1], end)
            else:
                clusters.append([start, end])
        busy = sum(((end - start) for start, end in clusters), timedelta(0))
        # A gap that is short next to the busy time reads better to scale than as a break.
        merged: list[list[datetime]] = [clusters[0]]
        for start, end in clusters[1:]:
            if start - merged[-1][1] <= busy / 4:
                merged[-1][1] = end
            else:
                merged.append([start, end])
        if all(start == end for start, end in merged) and len(merged) == 1:
            start = merged[0][0]
            merged = [[start - timedelta(seconds=30), start + timedelta(seconds=30)]]
        drawable = width - gap_width * (len(merged) - 1)
        total = sum(max((end - start).total_seconds(), 60.0) for start, end in merged)
        segments: list[Segment] = []
        cursor = x
        for start, end in merged:
            share = drawable * max((end - start).total_seconds(), 60.0) / total
            segments.append(Segment(start, end, cursor, share))
            cursor += share + gap_width
        return cls(tuple(segments))

    @property
    def start(self) -> datetime:
        """Return the first moment drawn."""
        return self.segments[0].start

    @property
    def end(self) -> datetime:
        """Return the last moment drawn."""
        return self.segments[-1].end

    def segment_of(self, moment: datetime) -> Segment:
        """Return the stretch `moment` falls in (or the one before the break it falls in)."""
        index = bisect_right([s.start for s in self.segments], moment) - 1
        return self.segments[max(index, 0)]

    def x(self, moment: datetime) -> float:
        """Return the pixel of `moment`."""
        return self.segment_of(moment).x_of(moment)

    def breaks(self) -> list[tuple[float, timedelta]]:
        """Return where each break is drawn, and how much time it leaves out."""
        return [
            (before.x + before.width, after.start - before.end)
            for before, after in zip(self.segments, self.segments[1:], strict=False)
        ]

    def ticks(self) -> list[tuple[float, str]]:
        """Return axis ticks: a pixel and a label, the date on the first of each stretch."""
        found: list[tuple[float, str]] = []
        for segment in self.segments:
            step = next(
                (
                    minutes
                    for minutes in TICK_STEPS_MINUTES
                    if segment.width * minutes * 60 / segment.seconds >= MIN_TICK_SPACING
                ),
                TICK_STEPS_MINUTES[-1],
            )
            first = segment.start.replace(second=0, microsecond=0)
            minute_of_day = first.hour * 60 + first.minute
            first += timedelta(minutes=(-minute_of_day) % step)
            moment = first
            labelled_day = False
            while moment <= segment.end:
                text = f"{moment:%H:%M}"
                if not labelled_day:
                    text = f"{moment:%d %b} {text}"
                    labelled_day = True
                found.append((segment.x_of(moment), text))
                moment += timedelta(minutes=step)
        return found


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True, slots=True)
class Bar:
    """One job attempt, or a deploy job that never ran (`ghost`)."""

    x: float
    y: float
    width: float
    outcome: str  # success, failure, running, other, never_ran
    title: str
    label: str = ""
    blocker: bool = False
    retry: bool = False
    deploy: bool = False
    ghost: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One job's row, and how the policy treats the job."""

    y: float
    label: str
    role: str
    blocker: bool = False
    never_ran: bool = False


@dataclass(frozen=True, slots=True)
class Lane:
    """A platform and workflow: its header and its job rows."""

    y: float
    height: float
    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class Marker:
    """Something that happened at one moment: a tag, a release, a deploy, a retry..."""

    x: float
    kind: str  # tag, release, deploy, probe, retry, incident
    label: str
    title: str
    level: int  # which row of labels; -1: no room for a label, the title says it all
    failed: bool = False
    anchor_end: bool = False  # the label reads leftwards, near the right edge


@dataclass(frozen=True, slots=True)
class Arrow:
    """The blocking chain: from the failed job to the deploy job it kept from running."""

    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class Band:
    """A stretch of time shaded across the lanes (the release was blocked)."""

    x: float
    width: float
    label: str


@dataclass(frozen=True)
class Swimlane:
    """Everything the SVG draws, with pixel positions."""

    width: float
    height: float
    lanes: tuple[Lane, ...]
    bars: tuple[Bar, ...]
    markers: tuple[Marker, ...]
    arrows: tuple[Arrow, ...]
    bands: tuple[Band, ...]
    ticks: tuple[tuple[float, str], ...]
    breaks: tuple[tuple[float, str], ...]
    attempts: int
    summary: str
    blockers: tuple[str, ...] = field(default=())
    never_ran: tuple[str, ...] = field(default=())


def entry_outcome(entry: Entry) -> str:
    """Return how a job or run attempt stands: success, failure, running or other."""
    if not entry.terminal:
        return "running"
    if entry.conclusion == "success":
        return "success"
    if entry.conclusion in FAILED:
        return "failure"
    return "other"


def _span_of(entry: Entry, now: datetime) -> tuple[datetime, datetime] | None:
    start = entry.started_at or entry.occurred_at or entry.completed_at
    if start is None:
        return None
    end = entry.completed_at if entry.terminal else now
    return start, max(start, end or start)


def _platform(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "unknown"


def _marks(
    entries: Sequence[Entry], view: ReleaseView
) -> list[tuple[datetime, str, str, str, bool]]:
    """Return (moment, kind, label, title, failed) for everything worth a marker."""
    marks: list[tuple[datetime, str, str, str, bool]] = []
    runs_seen: set[tuple[str, str]] = set()
    runs = sorted(
        (e for e in entries if e.kind == "workflow_run" and e.moment is not None),
        key=lambda e: (e.moment, e.position),
    )
    for run in runs:
        key = (run.platform, run.name)
        again = run.attempt > 1 or key in runs_seen
        runs_seen.add(key)
        if again and run.moment is not None:
            what = f"re-run (attempt {run.attempt})" if run.attempt > 1 else "rerun"
            marks.append(
                (
                    run.moment,
                    "retry",
                    "retry",
                    f"{_platform(run.platform)}: {run.name} {what}",
                    False,
                )
            )
    for entry in entries:
        moment = entry.occurred_at or entry.completed_at or entry.started_at
        if moment is None:
            continue
        if entry.kind == "tag" and entry.status != "deleted":
            marks.append((moment, "tag", "tag", f"tag {entry.tag or entry.name} pushed", False))
        elif entry.kind == "release":
            what = entry.status or "published"
            marks.append((moment, "release", "release", f"release {entry.tag} {what}", False))
        elif entry.kind == "deployment":
            env = entry.name or str(entry.extra.get("environment", ""))
            failed = entry.failed or entry.status in {"failure", "error"}
            state = entry.status or entry.conclusion
            title = f"{_platform(entry.platform)} deployment to {env}: {state}"
            marks.append((moment, "deploy", "deployment", title, failed))
        elif entry.kind == "probe":
            failed = entry.conclusion != "success"
            title = f"probe {entry.name}: {entry.status} ({'failed' if failed else 'passed'})"
            marks.append((moment, "probe", "probe", title, failed))
        elif entry.kind == "retry":
            title = f"Shiplog retry: {entry.name} {entry.conclusion or entry.status}".strip()
            marks.append((moment, "retry", "retry", title, entry.failed))
        elif (
            entry.platform == "shiplog"
            and entry.kind == "incident"
            and entry.name in INCIDENT_MARKS
        ):
            marks.append((moment, "incident", "incident", f"incident {entry.name}", False))
    for outcome in view.deploys:
        if outcome.outcome == "success" and outcome.entry and outcome.entry.completed_at:
            title = f"{_platform(outcome.deploy.platform)} {outcome.deploy.name} deployed"
            marks.append((outcome.entry.completed_at, "deploy", "deployed", title, False))
    marks.sort(key=lambda mark: mark[0])
    return marks


def layout(
    entries: Sequence[Entry],
    *,
    view: ReleaseView,
    role: Callable[[Entry], str],
    now: datetime,
    release_name: str = "",
) -> Swimlane | None:
    """Return the swimlanes of a release, or None if nothing in it can be placed in time."""
    jobs = [e for e in entries if e.kind == "job"]
    spans: dict[str, tuple[datetime, datetime]] = {}
    for job in jobs:
        span = _span_of(job, now)
        if span is not None:
            spans[job.entry_key] = span
    marks = _marks(entries, view)
    if not spans and not marks:
        return None
    latest = {e.entry_key for e in latest_attempts(jobs, "job")}
    blocked_deploys = [
        o for o in view.deploys if o.outcome in {"blocked", "not_run"} and o.entry is None
    ]
    blocker_names = {(b.platform, b.job) for o in view.blocking_chain for b in o.blocked_by}
    blocker_ends = [
        spans[j.entry_key][1]
        for j in jobs
        if (j.platform, j.name) in blocker_names and j.entry_key in latest and j.entry_key in spans
    ]

    chart_end_candidates = [end for _, end in spans.values()] + [m[0] for m in marks]
    chart_end = max(chart_end_candidates)
    time_spans = [*spans.values(), *((m[0], m[0]) for m in marks), (chart_end, chart_end)]
    if blocked_deploys and blocker_ends:
        # Room after the blocker for the deploy that never ran, in proportion to the story.
        first = min(start for start, _ in time_spans)
        room = max(timedelta(minutes=10), (max(blocker_ends) - first) * 0.15)
        time_spans.append((max(blocker_ends), max(blocker_ends) + room))
    scale = TimeScale.build(time_spans, x=LABEL_WIDTH, width=CHART_WIDTH)

    # Lanes: platform and workflow, in the order they started; rows: jobs, likewise.
    lane_rows: dict[tuple[str, str], dict[str, list[Entry]]] = {}
    firsts: dict[tuple[str, str], datetime] = {}
    for job in sorted(jobs, key=lambda j: (spans.get(j.entry_key, (scale.end,))[0], j.position)):
        lane_key = (job.platform, job.workflow_name)
        lane_rows.setdefault(lane_key, {}).setdefault(job.name, []).append(job)
        if job.entry_key in spans:
            firsts.setdefault(lane_key, spans[job.entry_key][0])
    ghosts_by_lane: dict[tuple[str, str], list[str]] = {}
    for outcome in blocked_deploys:
        lane_key = (outcome.deploy.platform, "")
        for blocker in outcome.blocked_by:
            found = next(
                (j for j in jobs if j.platform == blocker.platform and j.name == blocker.job), None
            )
            if found is not None:
                lane_key = (found.platform, found.workflow_name)
                break
        ghosts_by_lane.setdefault(lane_key, []).append(outcome.deploy.name)
        lane_rows.setdefault(lane_key, {})
        firsts.setdefault(lane_key, scale.end)

    lanes: list[Lane] = []
    bars: list[Bar] = []
    arrows: list[Arrow] = []
    y = float(MARKER_AREA)
    blocker_positions: dict[str, tuple[float, float]] = {}
    ghost_positions: dict[str, tuple[float, float]] = {}
    order = sorted(lane_rows, key=lambda key: (firsts.get(key, scale.end), key))
    attempts = 0
    for lane_key in order:
        platform, workflow = lane_key
        lane_y = y
        y += LANE_HEADER
        rows: list[Row] = []
        for name, attempts_of_job in lane_rows[lane_key].items():
            row_role = role(attempts_of_job[-1])
            is_blocker = (platform, name) in blocker_names
            rows.append(Row(y, name, row_role, blocker=is_blocker))
            ordered = sorted(attempts_of_job, key=lambda j: (j.attempt, j.job_number or 0))
            for index, job in enumerate(ordered):
                span = spans.get(job.entry_key)
                if span is None:
                    continue
                attempts += 1
                x1, x2 = scale.x(span[0]), scale.x(span[1])
                result = entry_outcome(job)
                blocks = is_blocker and job.entry_key in latest and job.failed
                retry = index > 0
                duration = duration_text(span[1] - span[0]) if job.terminal else "running"
                title = (
                    f"{name} on {_platform(platform)}"
                    + (f" ({workflow})" if workflow else "")
                    + f": {result.replace('_', ' ')}"
                    + (f" ({job.conclusion})" if job.conclusion not in {"", "success"} else "")
                    + f", {duration}, started {_when(span[0])}"
                    + (f", attempt {index + 1}" if retry else "")
                    + (f", job #{job.job_number}" if job.job_number else "")
                    + (", blocks the deploy" if blocks else "")
                    + (f", {row_role}" if row_role else "")
                )
                bar = Bar(
                    x=x1,
                    y=y + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                    width=max(x2 - x1, MIN_BAR),
                    outcome=result,
                    title=title,
                    blocker=blocks,
                    retry=retry,
                    deploy=row_role == "deploy",
                )
                bars.append(bar)
                if blocks:
                    blocker_positions[name] = (bar.x + bar.width, bar.y + BAR_HEIGHT / 2)
            y += ROW_HEIGHT
        for ghost in ghosts_by_lane.get(lane_key, []):
            rows.append(Row(y, ghost, "deploy", never_ran=True))
            start = max(blocker_ends) if blocker_ends else scale.end
            # A little after the blocker, so the arrow from it has room to land.
            x1 = scale.x(start) + (14 if blocker_ends else 0)
            # It has not run to this day: the ghost reaches the end of the chart.
            x2 = scale.x(scale.end)
            bars.append(
                Bar(
                    x=x1,
                    y=y + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                    width=max(x2 - x1, 40.0),
                    outcome="never_ran",
                    title=f"{ghost} on {_platform(platform)} never ran: a job it requires failed",
                    label="never ran",
                    deploy=True,
                    ghost=True,
                )
            )
            ghost_positions[ghost] = (x1, y + ROW_HEIGHT / 2)
            y += ROW_HEIGHT
        lanes.append(
            Lane(
                lane_y,
                y - lane_y,
                f"{_platform(platform)} · {workflow or 'no workflow reported'}",
                tuple(rows),
            )
        )
        y += 6

    for outcome in view.blocking_chain:
        target = ghost_positions.get(outcome.deploy.name)
        if target is None:
            continue
        for blocker in outcome.blocked_by:
            source = blocker_positions.get(blocker.job)
            if source is not None:
                arrows.append(Arrow(source[0], source[1], target[0], target[1]))

    markers = _place_markers(
        [
            (scale.x(moment), kind, label, title, failed)
            for moment, kind, label, title, failed in marks
        ],
        right=LABEL_WIDTH + CHART_WIDTH + RIGHT_PAD,
    )
    bands: list[Band] = []
    if view.blocked_at is not None:
        until = view.unblocked_at or scale.end
        x1, x2 = scale.x(view.blocked_at), scale.x(until)
        state = "blocked" if view.unblocked_at is None else "was blocked"
        bands.append(
            Band(x1, max(x2 - x1, 2.0), f"{state} {duration_text(until - view.blocked_at)}")
        )

    chain = [
        f"{b.job} ({b.conclusion or 'failed'}) blocks {o.deploy.name} "
        f"on {_platform(o.deploy.platform)}"
        for o in view.blocking_chain
        for b in o.blocked_by
    ]
    summary = (
        f"Timeline of {release_name or 'the release'}: {len(lanes)} lanes, {attempts} job "
        f"attempts from {_when(scale.start)} to {_when(scale.end)}; state {view.state}."
        + (f" Blocking chain: {'; '.join(chain)}." if chain else "")
    )
    return Swimlane(
        width=LABEL_WIDTH + CHART_WIDTH + RIGHT_PAD,
        height=y + AXIS_HEIGHT,
        lanes=tuple(lanes),
        bars=tuple(bars),
        markers=tuple(markers),
        arrows=tuple(arrows),
        bands=tuple(bands),
        ticks=tuple(scale.ticks()),
        breaks=tuple((x, duration_text(left_out)) for x, left_out in scale.breaks()),
        attempts=attempts,
        summary=summary,
        blockers=tuple(sorted({b.job for o in view.blocking_chain for b in o.blocked_by})),
        never_ran=tuple(o.deploy.name for o in blocked_deploys),
    )


def _place_markers(
    raw: Sequence[tuple[float, str, str, str, bool]], *, right: float
) -> list[Marker]:
    """Merge markers of a kind that coincide, and stack labels on three rows without overlap.

    A label near the right edge reads leftwards; one with no room keeps its title only.
    """
    merged: list[tuple[float, str, str, list[str], bool, int]] = []
    for x, kind, label, title, failed in raw:
        last = merged[-1] if merged else None
        if last is not None and last[1] == kind and x - last[0] < 4:
            same = last[2] == label
            merged[-1] = (
                last[0],
                kind,
                label if same else kind,
                [*last[3], title],
                last[4] or failed,
                last[5] + 1,
            )
        else:
            merged.append((x, kind, label, [title], failed, 1))
    ends = [-1e9] * len(MARKER_LEVELS)
    starts = [1e9] * len(MARKER_LEVELS)
    placed: list[Marker] = []
    for x, kind, label, titles, failed, count in merged:
        text = f"{label} \N{MULTIPLICATION SIGN}{count}" if count > 1 else label
        width = len(text) * CHAR_WIDTH + 10
        anchor_end = x + width > right
        left, end = (x - width, x) if anchor_end else (x, x + width)
        level = next(
            (i for i in range(len(MARKER_LEVELS)) if left >= ends[i] + 4 or end <= starts[i] - 4),
            -1,
        )
        if level >= 0:
            ends[level] = max(ends[level], end)
            starts[level] = min(starts[level], left)
        placed.append(
            Marker(
                x,
                kind,
                text if level >= 0 else "",
                "; ".join(titles),
                level,
                failed,
                anchor_end,
            )
        )
    return placed


# ----------------------------------------------------------------------------- SVG

LEGEND = (
    ("success", "succeeded"),
    ("failure", "failed"),
    ("running", "running"),
    ("other", "cancelled or skipped"),
    ("never_ran", "never ran"),
)


def _a(value: object) -> str:
    return escape(str(value), quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}"


def _label_position(x: float, text: str, right: float, end_x: float) -> tuple[float, str]:
    """Return where a label starts, reading leftwards from `end_x` if it would overflow."""
    if x + len(text) * CHAR_WIDTH > right:
        return end_x, ' text-anchor="end"'
    return x, ""


def render_svg(lanes: Swimlane) -> str:
    """Return the swimlanes as an SVG element (classes only: the stylesheet colours it)."""
    top = MARKER_AREA
    bottom = lanes.height - AXIS_HEIGHT
    out: list[str] = [
        f'<svg class="swimlane" xmlns="http://www.w3.org/2000/svg" width="{_n(lanes.width)}" '
        f'height="{_n(lanes.height)}" viewBox="0 0 {_n(lanes.width)} {_n(lanes.height)}" '
        'role="img" aria-labelledby="swimlane-title swimlane-desc">',
        '<title id="swimlane-title">Release timeline</title>',
        f'<desc id="swimlane-desc">{_a(lanes.summary)}</desc>',
        "<defs>"
        '<pattern id="hatch-failure" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect class="hatch-bg" width="6" height="6"/>'
        '<line class="hatch-line" x1="0" y1="0" x2="0" y2="6"/></pattern>'
        '<marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path class="arrowhead" '
        'd="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
    ]
    for index, lane in enumerate(lanes.lanes):
        stripe = " lane--odd" if index % 2 else ""
        out.append(
            f'<g class="lane{stripe}"><rect class="lane-bg" x="0" y="{_n(lane.y)}" '
            f'width="{_n(lanes.width)}" height="{_n(lane.height)}"/>'
            f'<text class="lane-title" x="6" y="{_n(lane.y + 15)}">{_a(lane.title)}</text>'
        )
        for row in lane.rows:
            classes = "row-label"
            prefix = ""
            if row.blocker:
                classes += " row-label--blocker"
                prefix = "⚠ "
            elif row.never_ran:
                classes += " row-label--never-ran"
                prefix = "⊘ "
            suffix = f" · {row.role}" if row.role in {"deploy", "advisory"} else ""
            text = f"{prefix}{row.label}{suffix}"
            if len(text) > 38:
                text = text[:36] + "…"
            out.append(
                f'<text class="{classes}" x="{LABEL_WIDTH - 8}" y="{_n(row.y + 13)}" '
                f'text-anchor="end">{_a(text)}<title>{_a(row.label)}</title></text>'
            )
        out.append("</g>")
    for band in lanes.bands:
        label_x, anchor = _label_position(band.x + 4, band.label, lanes.width, band.x + band.width)
        out.append(
            f'<g class="band"><rect x="{_n(band.x)}" y="{top}" width="{_n(band.width)}" '
            f'height="{_n(bottom - top)}"/><title>{_a(band.label)}</title>'
            f'<text x="{_n(label_x)}" y="{top + 15}"{anchor}>{_a(band.label)}</text></g>'
        )
    label_end = 0.0
    for x, label in lanes.ticks:
        out.append(f'<line class="tick" x1="{_n(x)}" y1="{top}" x2="{_n(x)}" y2="{_n(bottom)}"/>')
        label_x, anchor = _label_position(x + 2, label, lanes.width, x - 2)
        left = label_x - len(label) * CHAR_WIDTH if anchor else label_x
        if left < label_end + 6:
            continue  # the previous label is in the way; the line alone marks the time
        label_end = left + len(label) * CHAR_WIDTH
        out.append(
            f'<text class="tick-label" x="{_n(label_x)}" y="{_n(bottom + 16)}"{anchor}>'
            f"{_a(label)}</text>"
        )
    for x, left_out in lanes.breaks:
        mid = x + GAP_WIDTH / 2
        out.append(
            f'<g class="axis-break"><rect x="{_n(x + 4)}" y="{top}" width="{GAP_WIDTH - 8}" '
            f'height="{_n(bottom - top)}"/><text x="{_n(mid)}" y="{_n(bottom + 16)}" '
            f'text-anchor="middle">⋯</text><title>{_a(left_out)} left out</title></g>'
        )
    for bar in lanes.bars:
        classes = f"bar bar--{bar.outcome.replace('_', '-')}"
        if bar.blocker:
            classes += " bar--blocker"
        if bar.retry:
            classes += " bar--retry"
        if bar.deploy:
            classes += " bar--deploy"
        out.append(
            f'<g class="{classes}"><rect x="{_n(bar.x)}" y="{_n(bar.y)}" '
            f'width="{_n(bar.width)}" height="{BAR_HEIGHT}" rx="2"/>'
            f"<title>{_a(bar.title)}</title>"
        )
        if bar.label:
            out.append(f'<text x="{_n(bar.x + 4)}" y="{_n(bar.y + 10)}">{_a(bar.label)}</text>')
        elif bar.retry and bar.width > 14:
            out.append(f'<text x="{_n(bar.x + 2)}" y="{_n(bar.y + 10)}">↻</text>')
        out.append("</g>")
    for arrow in lanes.arrows:
        out.append(
            f'<path class="chain" d="M{_n(arrow.x1)},{_n(arrow.y1)} '
            f"C{_n(arrow.x1 + 10)},{_n(arrow.y1)} {_n(arrow.x1 + 4)},{_n(arrow.y2)} "
            f'{_n(arrow.x2)},{_n(arrow.y2)}" marker-end="url(#arrowhead)"/>'
        )
    for marker in lanes.markers:
        y = MARKER_LEVELS[marker.level] if marker.level >= 0 else MARKER_UNLABELLED
        classes = f"marker marker--{marker.kind}" + (" marker--failed" if marker.failed else "")
        out.append(
            f'<g class="{classes}"><line x1="{_n(marker.x)}" y1="{y + 4}" x2="{_n(marker.x)}" '
            f'y2="{_n(bottom)}"/><circle cx="{_n(marker.x)}" cy="{y}" r="4"/>'
            f"<title>{_a(marker.title)}</title>"
        )
        if marker.label:
            x = marker.x - 7 if marker.anchor_end else marker.x + 7
            anchor = ' text-anchor="end"' if marker.anchor_end else ""
            out.append(f'<text x="{_n(x)}" y="{y + 4}"{anchor}>{_a(marker.label)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
