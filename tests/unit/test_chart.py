"""The SVG chart: scales, ticks, marker placement, and where the drawing puts things."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from rollguard_cli.chart import (
    MIN_MARKER_GAP,
    LinearScale,
    Marker,
    nice_step,
    place_markers,
    render_svg,
    time_ticks,
    value_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_a_linear_scale_maps_ends_and_middle_and_may_run_backwards() -> None:
    x = LinearScale(100, 200, 0, 500)
    y = LinearScale(0, 25, 300, 20)  # SVG y grows downwards: the top value maps to the smaller y

    assert (x(100), x(150), x(200)) == (0, 250, 500)
    assert (y(0), y(25), y(5)) == (300, 20, 244)


def test_a_degenerate_scale_puts_everything_in_the_middle() -> None:
    assert LinearScale(5, 5, 0, 100)(5) == 50


@pytest.mark.parametrize(
    ("span", "target", "step"), [(22, 5, 5), (1, 5, 0.2), (300, 5, 100), (0.07, 4, 0.02), (0, 5, 1)]
)
def test_nice_steps_are_one_two_or_five_times_a_power_of_ten(span: float, target: int, step: float) -> None:
    assert nice_step(span, target) == pytest.approx(step)


def test_value_ticks_cover_the_range_with_round_values() -> None:
    assert value_ticks(0, 22) == [0, 5, 10, 15, 20, 25]
    ticks = value_ticks(-3, 7)
    assert ticks[0] <= -3 and ticks[-1] >= 7
    assert all(b - a == pytest.approx(ticks[1] - ticks[0]) for a, b in zip(ticks, ticks[1:], strict=False))


def test_time_ticks_fall_on_round_clock_times_inside_the_window() -> None:
    ticks = time_ticks(minutes(0.5), minutes(25.5))
    assert ticks[0] == minutes(5) and ticks[-1] == minutes(25)
    assert all((b - a) == timedelta(minutes=5) for a, b in zip(ticks, ticks[1:], strict=False))
    assert time_ticks(minutes(0), minutes(6)) == [minutes(n) for n in range(7)]


def test_markers_close_in_time_are_nudged_apart_and_their_labels_take_separate_lanes() -> None:
    x = LinearScale(T0.timestamp(), minutes(30).timestamp(), 0, 900)  # 30 px a minute
    alarm = Marker(T0 + timedelta(minutes=10), "alarm", "ALARM T+0")
    action = Marker(T0 + timedelta(minutes=10, seconds=2), "action", "1. canary rollback T+2s")
    later = Marker(minutes(25), "recovery", "recovered")

    placed = place_markers([later, action, alarm], x, right=900)

    assert [p.marker for p in placed] == [alarm, action, later]  # in time order
    assert placed[1].x - placed[0].x >= MIN_MARKER_GAP  # 1 px apart in time, still two visible lines
    assert placed[0].lane != placed[1].lane  # their labels would overlap on one line
    assert placed[2].lane == 0  # far enough to share the first lane again


def test_a_label_that_would_leave_the_chart_is_drawn_to_the_left_of_its_marker() -> None:
    x = LinearScale(0, 100, 0, 500)
    near_edge = Marker(datetime.fromtimestamp(99, UTC), "end", "escalated T+5m02s")
    assert place_markers([near_edge], x, right=500)[0].anchor == "end"


def _chart(**overrides: object) -> ET.Element:
    points = [(minutes(i), v) for i, v in enumerate([1, 1, 20, 18, 18, 1, 1])]
    args: dict[str, object] = {
        "threshold": 5.0,
        "threshold_label": "threshold > 5",
        "markers": [Marker(minutes(3), "alarm", "ALARM"), Marker(minutes(4), "action", "1. rollback")],
        "impact": (minutes(2), minutes(5)),
        "start": minutes(0),
        "end": minutes(6),
        "y_label": "Checkout/ErrorRate",
        "width": 900,
        "height": 400,
    }
    args.update(overrides)
    return ET.fromstring(render_svg(points if "points" not in args else args.pop("points"), **args))  # type: ignore[arg-type]


def _find(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def test_the_series_spans_the_plot_and_values_land_on_their_scale() -> None:
    root = _chart()
    (series,) = _find(root, "series")
    coords = [tuple(map(float, pair.split(","))) for pair in series.get("points", "").split()]
    (threshold,) = _find(root, "threshold")
    zero_y = float(next(e for e in _find(root, "axis")).get("y1", "nan"))

    assert len(coords) == 7
    assert coords[0][0] == 64 and coords[-1][0] == 900 - 110  # first and last minute on the plot's edges
    xs = [c[0] for c in coords]
    assert all(b - a == pytest.approx(xs[1] - xs[0]) for a, b in zip(xs, xs[1:], strict=False))  # one per minute
    # y is linear in the value: 20 sits four times as far above zero as the threshold 5.
    peak_y, threshold_y = coords[2][1], float(threshold.get("y1", "nan"))
    assert zero_y - peak_y == pytest.approx(4 * (zero_y - threshold_y), abs=1)
    assert threshold.get("data-value") == "5"


def test_markers_and_the_impact_window_sit_at_their_times() -> None:
    root = _chart()
    (series,) = _find(root, "series")
    coords = [tuple(map(float, pair.split(","))) for pair in series.get("points", "").split()]
    (alarm,) = _find(root, "marker-alarm")
    (action,) = _find(root, "marker-action")
    (impact,) = _find(root, "impact")

    assert abs(float(alarm.find(f"{SVG}line").get("x1", "nan")) - coords[3][0]) <= 1  # type: ignore[union-attr]
    assert abs(float(action.find(f"{SVG}line").get("x1", "nan")) - coords[4][0]) <= 1  # type: ignore[union-attr]
    assert float(impact.get("x", "nan")) == pytest.approx(coords[2][0], abs=0.1)
    assert float(impact.get("x", "0")) + float(impact.get("width", "0")) == pytest.approx(coords[5][0], abs=0.1)


def test_missing_datapoints_break_the_line_instead_of_bridging_the_silence() -> None:
    points = [(minutes(0), 1.0), (minutes(1), 1.0), (minutes(4), 9.0), (minutes(5), 9.0)]
    root = _chart(points=points)
    assert len(_find(root, "series")) == 2
    assert len(_find(root, "datapoint")) == 4


def test_a_chart_without_datapoints_says_so_and_still_shows_threshold_and_markers() -> None:
    root = _chart(points=[])
    assert _find(root, "no-data") and _find(root, "threshold") and _find(root, "marker-alarm")
    assert not _find(root, "series")


def test_the_chart_scales_to_its_container_instead_of_a_fixed_pixel_size() -> None:
    root = _chart()
    assert root.get("viewBox") == "0 0 900 400"  # the drawing's coordinates ...
    assert root.get("width") == "100%" and root.get("height") is None  # ... not its size on the page
    style = root.get("style", "")
    assert "max-width: 900px" in style and "height: auto" in style  # never wider than drawn; keeps its proportions


def test_the_y_axis_title_is_drawn_along_the_plot_and_shrinks_when_long() -> None:
    (title,) = _find(_chart(y_axis="Sum of HTTPCode_Target_5XX_Count (count)"), "y-axis-title")
    assert title.text == "Sum of HTTPCode_Target_5XX_Count (count)"
    assert "rotate(-90)" in title.get("transform", "")
    (long,) = _find(_chart(y_axis="x" * 80), "y-axis-title")
    assert 8 <= float(long.get("font-size", "0")) < 11
    assert not _find(_chart(), "y-axis-title")  # no unit given: no title invented
