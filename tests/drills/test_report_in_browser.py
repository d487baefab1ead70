"""The HTML report of the bad-deploy drill, as headless Chromium renders it: the chart must be there, with
the metric, the threshold and a marker for the alarm, each action and the recovery.

Two independent looks: the pixels of a screenshot (the chart's colours are exact because its lines are
drawn with crispEdges), and the DOM Chromium built from the file (the SVG elements and their classes).
"""

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from rollguard_cli.chart import COLORS
from rollguard_cli.main import main

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1200, 900
LINE = 150  # px: a marker line crosses the plot, far longer than any text or legend swatch of its colour


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: `make test` installs Debian's package (apt-get install chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def report(drill_runs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`rollguard report <id> --from D --format html --out FILE`, then a screenshot and the DOM of FILE."""
    out = drill_runs["bad-deploy"]["out"]
    incident_id = json.loads((out / "drill.json").read_text())["incident_id"]
    work = tmp_path_factory.mktemp("browser")
    html = work / "report.html"
    assert main(["report", incident_id, "--from", str(out), "--format", "html", "--out", str(html)]) == 0
    png = work / "report.png"
    chromium(f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", html.as_uri(), profile=work / "profile-1")
    dom = chromium("--dump-dom", html.as_uri(), profile=work / "profile-2").stdout
    metric = json.loads((out / "metric.json").read_text())
    return {"png": png, "dom": dom, "metric": metric, "html": html, "work": work}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def pixels_of(image: Image.Image, kind: str) -> list[tuple[int, int]]:
    wanted = rgb(COLORS[kind])
    width, height = image.size
    data = image.load()
    assert data is not None
    return [(x, y) for y in range(height) for x in range(width) if data[x, y] == wanted]


def long_columns(points: list[tuple[int, int]], length: int = LINE) -> list[int]:
    """x of the columns holding at least ``length`` pixels (vertical lines), one per line (2 px wide)."""
    counts: dict[int, int] = {}
    for x, _ in points:
        counts[x] = counts.get(x, 0) + 1
    columns = sorted(x for x, n in counts.items() if n >= length)
    return [x for i, x in enumerate(columns) if i == 0 or x - columns[i - 1] > 1]


def test_the_screenshot_shows_the_metric_crossing_the_threshold_and_every_marker(report: dict[str, Any]) -> None:
    image = Image.open(report["png"]).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)

    red = pixels_of(image, "threshold")
    rows: dict[int, int] = {}
    for _, y in red:
        rows[y] = rows.get(y, 0) + 1
    threshold_y, run = max(rows.items(), key=lambda kv: kv[1])
    assert run >= 400, "no dashed horizontal threshold line across the plot"

    blue = pixels_of(image, "series")
    xs, ys = [x for x, _ in blue], [y for _, y in blue]
    assert len(blue) >= 500, "the metric's line is missing"
    assert max(xs) - min(xs) >= 600, "the metric should span the chart's width"
    assert min(ys) < threshold_y - 50 < threshold_y + 20 < max(ys), "the metric should cross the threshold"

    (alarm,) = long_columns(pixels_of(image, "alarm"))
    actions = long_columns(pixels_of(image, "action"))
    (recovery,) = long_columns(pixels_of(image, "recovery"))
    assert len(actions) == 2, f"expected a marker per action (canary, then full rollback), found {actions}"
    assert alarm < actions[0] < actions[1] < recovery, "markers are in time order, left to right"
    assert min(xs) < alarm and recovery <= max(xs) + 120


NARROW = 400  # px: a phone, or a browser window beside a terminal


def test_in_a_narrow_window_the_whole_chart_fits_and_nothing_of_it_is_cut_off(report: dict[str, Any]) -> None:
    """Chromium's windows are at least 500 px wide, so the report is shown in a 400 px iframe: the chart must
    shrink into it (a fixed-width SVG would be cut at the frame's edge, losing the recovery marker on the right).
    Three device pixels per CSS pixel, as on a phone, keep the chart's thin lines whole pixels of their colour."""
    work = report["work"]
    frame = work / "narrow.html"
    frame.write_text(
        '<!DOCTYPE html><html><body style="margin:0;background:#000">'
        f'<iframe src="{report["html"].as_uri()}" width="{NARROW}" height="1800" style="border:0;display:block">'
        "</iframe></body></html>"
    )
    png = work / "narrow.png"
    chromium(
        f"--screenshot={png}",
        "--window-size=600,1800",
        "--force-device-scale-factor=3",
        frame.as_uri(),
        profile=work / "profile-3",
    )
    scale = 3
    image = Image.open(png).convert("RGB").crop((0, 0, NARROW * scale, 1800 * scale))

    blue = pixels_of(image, "series")
    assert len(blue) >= 500, "the metric's line is missing in the narrow window"
    xs = [x for x, _ in blue]
    assert max(xs) - min(xs) >= NARROW * scale // 2, "the metric should still span the chart's width"
    markers = {kind: long_columns(pixels_of(image, kind)) for kind in ("alarm", "action", "recovery")}
    assert len(markers["alarm"]) == 1 and len(markers["action"]) == 2 and len(markers["recovery"]) == 1, markers
    assert markers["recovery"][0] < (NARROW - 10) * scale, "the last marker is inside the frame, not cut off"


def test_the_screenshot_is_not_blank_where_the_chart_is(report: dict[str, Any]) -> None:
    image = Image.open(report["png"]).convert("RGB")
    coloured = pixels_of(image, "series") + pixels_of(image, "threshold")
    left, top = min(x for x, _ in coloured), min(y for _, y in coloured)
    right, bottom = max(x for x, _ in coloured), max(y for _, y in coloured)
    region = image.crop((left, top, right + 1, bottom + 1))
    colours = region.getcolors(maxcolors=1 << 16) or []
    white = sum(n for n, c in colours if c == (255, 255, 255))
    assert len(colours) > 20 and white < 0.97 * region.size[0] * region.size[1]


class Elements(HTMLParser):
    """Every element Chromium serialised, with its attributes, and whether it sits inside the chart."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str], bool]] = []
        self._svg_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "svg" and attributes.get("id") == "metric-chart":
            self._svg_depth = 1
        elif self._svg_depth and tag not in {"line", "circle", "rect", "polyline"}:
            self._svg_depth += 1
        self.found.append((tag, attributes, self._svg_depth > 0))

    def handle_endtag(self, tag: str) -> None:
        if self._svg_depth and tag not in {"line", "circle", "rect", "polyline"}:
            self._svg_depth -= 1

    def in_chart(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a, inside in self.found if inside and t == tag and cls in a.get("class", "").split()]


def test_the_rendered_dom_holds_the_svg_chart_with_threshold_and_markers(report: dict[str, Any]) -> None:
    dom = Elements()
    dom.feed(report["dom"])
    metric = report["metric"]

    assert [a for t, a, _ in dom.found if t == "svg" and a.get("id") == "metric-chart"], "no chart in the DOM"
    (threshold,) = dom.in_chart("line", "threshold")
    assert threshold["data-value"] == "5"
    assert len(dom.in_chart("g", "marker-alarm")) == 1
    assert len(dom.in_chart("g", "marker-action")) == 2
    assert len(dom.in_chart("g", "marker-recovery")) == 1
    assert dom.in_chart("polyline", "series")
    assert len(dom.in_chart("circle", "datapoint")) == len(metric["datapoints"])
    assert not [t for t, _, _ in dom.found if t == "script"]
