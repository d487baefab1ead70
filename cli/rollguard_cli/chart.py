"""An SVG line chart of an alarm's metric, drawn in Python so that the HTML report needs no script,
library or network: the metric, the threshold, the impact window, and a marker per event.

Everything is placed through ``LinearScale``; lines that must read as exact (threshold, markers) are drawn
with ``crispEdges`` so they keep their colour to the pixel (the headless-browser test relies on that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Literal

MarkerKind = Literal["alarm", "action", "recovery", "end"]

COLORS = {
    "series": "#1f6feb",
    "threshold": "#d1242f",
    "alarm": "#e36209",
    "action": "#8250df",
    "recovery": "#1a7f37",
    "end": "#57606a",
    "impact": "#fbe3e4",
    "band": "#dbe9fb",
    "grid": "#e4e8ec",
    "text": "#24292f",
}

CHAR_WIDTH = 6.4  # average width of an 11px sans-serif character: enough to keep labels from overlapping
LANE_HEIGHT = 15
MIN_MARKER_GAP = 6  # px: markers closer in time than this are nudged apart so each stays visible


@dataclass(frozen=True)
class LinearScale:
    """Maps [lo, hi] onto [out_lo, out_hi] (out_hi may be smaller: SVG's y grows downwards)."""

    lo: float
    hi: float
    out_lo: float
    out_hi: float

    def __call__(self, value: float) -> float:
        if self.hi == self.lo:
            return (self.out_lo + self.out_hi) / 2
        return self.out_lo + (value - self.lo) * (self.out_hi - self.out_lo) / (self.hi - self.lo)


def nice_step(span: float, target: int) -> float:
    """A round step (1, 2 or 5 × 10^k) giving about ``target`` intervals over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def value_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: the first at or below lo, the last at or above hi."""
    step = nice_step(hi - lo, target)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value < hi + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


_TIME_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800]


def time_ticks(start: datetime, end: datetime, target: int = 8) -> list[datetime]:
    """Ticks on round clock times (every 1, 2, 5, 10, 15, 30 minutes, 1 h …) inside [start, end]."""
    seconds = (end - start).total_seconds()
    step = next((s for s in _TIME_STEPS if seconds / s <= target), _TIME_STEPS[-1])
    first = math.ceil(start.timestamp() / step) * step
    return [
        datetime.fromtimestamp(t, UTC)
        for t in range(int(first), int(end.timestamp()) + 1, step)
        if t >= start.timestamp()
    ]


@dataclass(frozen=True)
class Marker:
    at: datetime
    kind: MarkerKind
    label: str


@dataclass(frozen=True)
class PlacedMarker:
    marker: Marker
    x: float
    lane: int
    anchor: Literal["start", "end"]


def place_markers(markers: list[Marker], x: LinearScale, right: float) -> list[PlacedMarker]:
    """x positions (nudged apart when too close) and a label lane for each marker, so no label overlaps."""
    placed: list[PlacedMarker] = []
    lane_ends: list[float] = []  # per lane, where its last label ends
    previous_x = -math.inf
    for marker in sorted(markers, key=lambda m: m.at):
        pos = max(x(marker.at.timestamp()), previous_x + MIN_MARKER_GAP)
        previous_x = pos
        width = len(marker.label) * CHAR_WIDTH
        anchor: Literal["start", "end"] = "start" if pos + 4 + width <= right else "end"
        left_edge = pos + 4 if anchor == "start" else pos - 4 - width
        lane = next((i for i, end in enumerate(lane_ends) if end + 8 <= left_edge), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(0.0)
        lane_ends[lane] = left_edge + width
        placed.append(PlacedMarker(marker, pos, lane, anchor))
    return placed


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def render_svg(
    points: list[tuple[datetime, float]],
    *,
    threshold: float | None,
    threshold_label: str,
    markers: list[Marker],
    impact: tuple[datetime, datetime | None] | None = None,
    impacts: list[tuple[datetime, datetime]] | None = None,
    band: list[tuple[datetime, float, float]] | None = None,
    period: int = 60,
    start: datetime | None = None,
    end: datetime | None = None,
    y_label: str = "",
    y_axis: str = "",
    width: int = 960,
    height: int = 400,
    svg_id: str = "metric-chart",
) -> str:
    """The chart as one ``<svg>`` element. Times are x, values y; a gap in the data is a gap in the line.

    ``width`` × ``height`` is the drawing's coordinate system (its viewBox), not its size on the page: the element is
    as wide as its container and never wider than ``width`` px, so it shrinks to fit a narrow window and keeps its
    proportions. ``y_axis`` names what the values measure (the statistic, metric and unit), drawn along the Y axis.
    ``impacts`` shades more windows like ``impact`` (a backtest's labelled incidents); ``band`` is an anomaly detection
    band, (time, lower, upper) per period, drawn under the series. Over more than a day the time axis shows dates.
    """
    times = [t for t, _ in points] + [m.at for m in markers]
    t0 = start or (min(times) if times else datetime.now(UTC))
    t1 = end or (max(times) if times else t0 + timedelta(minutes=15))
    t0, t1 = min([t0, *times]), max([t1, *times])
    if t1 <= t0:
        t1 = t0 + timedelta(seconds=period)
    shaded = ([impact] if impact is not None else []) + list(impacts or [])
    values = [v for _, v in points] + ([threshold] if threshold is not None else [])
    values += [bound for _, lo, hi in band or [] for bound in (lo, hi)]
    lo = min([0.0, *values])
    hi = max([*values, 1.0]) * 1.1
    ticks = value_ticks(lo, hi)

    left, right_margin, bottom = 64, 110, 64
    plot_right = width - right_margin
    x = LinearScale(t0.timestamp(), t1.timestamp(), left, plot_right)
    placed = place_markers(markers, x, float(width - 4))
    lanes = max((p.lane for p in placed), default=-1) + 1
    top = 14 + lanes * LANE_HEIGHT + 8
    plot_bottom = height - bottom
    y = LinearScale(ticks[0], ticks[-1], plot_bottom, top)

    parts: list[str] = [
        f'<svg id="{escape(svg_id)}" xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet" style="display: block; max-width: {width}px; height: auto" '
        f'role="img" font-family="Helvetica, Arial, sans-serif" font-size="11" '
        f'aria-label="{escape(y_axis or y_label)} with threshold and incident markers">',
        f"<title>{escape(y_axis or y_label)}</title>",
        f'<rect class="background" x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for begin, finish in shaded:
        x0, x1 = x(begin.timestamp()), x((finish or t1).timestamp())
        parts.append(
            f'<rect class="impact" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{plot_bottom - top}" fill="{COLORS["impact"]}"/>'
        )
    if band:
        upper = [f"{x(t.timestamp()):.1f},{y(hi):.1f}" for t, _, hi in band]
        lower = [f"{x(t.timestamp()):.1f},{y(lo):.1f}" for t, lo, _ in reversed(band)]
        parts.append(f'<polygon class="band" points="{" ".join(upper + lower)}" fill="{COLORS["band"]}"/>')
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{plot_right}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{COLORS["grid"]}" shape-rendering="crispEdges"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="{COLORS["text"]}">{_fmt(tick)}</text>'
        )
    clock_format = "%H:%M" if (t1 - t0) <= timedelta(days=1) else "%b %d"
    for tick_time in time_ticks(t0, t1):
        tx = x(tick_time.timestamp())
        parts.append(
            f'<line class="tick" x1="{tx:.1f}" x2="{tx:.1f}" y1="{plot_bottom}" y2="{plot_bottom + 5}" '
            f'stroke="{COLORS["text"]}"/><text x="{tx:.1f}" y="{plot_bottom + 18}" text-anchor="middle" '
            f'fill="{COLORS["text"]}">{tick_time.strftime(clock_format)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{plot_right}" y1="{plot_bottom}" y2="{plot_bottom}" '
        f'stroke="{COLORS["text"]}" shape-rendering="crispEdges"/>'
        f'<text x="{left}" y="{plot_bottom + 34}" fill="{COLORS["text"]}">UTC · {escape(y_label)}</text>'
    )
    if y_axis:
        parts.append(_y_axis_title(y_axis, top, plot_bottom))
    if threshold is not None:
        ty = round(y(threshold))
        parts.append(
            f'<line class="threshold" data-value="{_fmt(threshold)}" x1="{left}" x2="{plot_right}" '
            f'y1="{ty}" y2="{ty}" stroke="{COLORS["threshold"]}" stroke-width="2" stroke-dasharray="10 4" '
            f'shape-rendering="crispEdges"/><text class="threshold-label" x="{plot_right + 6}" y="{ty + 4}" '
            f'fill="{COLORS["threshold"]}">{escape(threshold_label)}</text>'
        )
    for segment in _segments(points, period):
        coords = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in segment)
        parts.append(
            f'<polyline class="series" points="{coords}" fill="none" stroke="{COLORS["series"]}" '
            f'stroke-width="2.5" stroke-linejoin="round"/>'
        )
    for t, v in points:
        parts.append(
            f'<circle class="datapoint" data-at="{t.isoformat()}" data-value="{_fmt(v)}" '
            f'cx="{x(t.timestamp()):.1f}" cy="{y(v):.1f}" r="3" fill="{COLORS["series"]}"/>'
        )
    if not points:
        parts.append(
            f'<text class="no-data" x="{(left + plot_right) / 2:.1f}" y="{(top + plot_bottom) / 2:.1f}" '
            f'text-anchor="middle" fill="{COLORS["end"]}">no datapoints in this window</text>'
        )
    for p in placed:
        color = COLORS[p.marker.kind]
        label_y = 14 + p.lane * LANE_HEIGHT + 10
        mx = round(p.x)
        text_x = mx + 4 if p.anchor == "start" else mx - 4
        parts.append(
            f'<g class="marker marker-{p.marker.kind}" data-at="{p.marker.at.isoformat()}">'
            f'<line x1="{mx}" x2="{mx}" y1="{label_y - 10}" y2="{plot_bottom}" stroke="{color}" stroke-width="2" '
            f'shape-rendering="crispEdges"/>'
            f'<text x="{text_x}" y="{label_y}" text-anchor="{p.anchor}" fill="{color}" font-weight="bold">'
            f"{escape(p.marker.label)}</text></g>"
        )
    kinds: set[str] = {m.kind for m in markers}
    parts.append(_legend(left, height - 12, threshold is not None, bool(shaded), kinds, bool(band)))
    parts.append("</svg>")
    return "".join(parts)


def _y_axis_title(text: str, top: float, bottom: float) -> str:
    """Rotated along the left edge, centred on the plot; a smaller font (down to 8px) when it is long."""
    room = bottom - top
    size = max(8.0, min(11.0, 11 * room / max(len(text) * CHAR_WIDTH, 1)))
    middle = (top + bottom) / 2
    return (
        f'<text class="y-axis-title" transform="translate(14 {middle:.1f}) rotate(-90)" text-anchor="middle" '
        f'font-size="{size:.1f}" fill="{COLORS["text"]}">{escape(text)}</text>'
    )


def _segments(points: list[tuple[datetime, float]], period: int) -> list[list[tuple[datetime, float]]]:
    """Split where a period or more is missing: a line across silence would invent data."""
    segments: list[list[tuple[datetime, float]]] = []
    for t, v in sorted(points):
        if segments and (t - segments[-1][-1][0]).total_seconds() <= period * 1.5:
            segments[-1].append((t, v))
        else:
            segments.append([(t, v)])
    return segments


def _legend(x0: int, y0: int, threshold: bool, impact: bool, kinds: set[str], band: bool = False) -> str:
    items = [("series", "metric")]
    if band:
        items.append(("band", "anomaly band"))
    if threshold:
        items.append(("threshold", "threshold"))
    if impact:
        items.append(("impact", "impact window"))
    names = {"alarm": "alarm", "action": "action", "recovery": "recovery", "end": "closed"}
    items += [(kind, text) for kind, text in names.items() if kind in kinds]
    out = ['<g class="legend">']
    cursor = float(x0)
    for kind, text in items:
        out.append(
            f'<rect x="{cursor:.0f}" y="{y0 - 8}" width="14" height="8" fill="{COLORS[kind]}"/>'
            f'<text x="{cursor + 18:.0f}" y="{y0}" fill="{COLORS["text"]}">{text}</text>'
        )
        cursor += 18 + len(text) * CHAR_WIDTH + 16
    out.append("</g>")
    return "".join(out)
