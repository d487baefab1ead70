"""CloudWatch's metric-alarm semantics, as one table: the evaluator the sandbox and backtest share (alarm_eval.py).

Each row is an alarm, the last N periods (oldest first: a number is a datapoint, None a missing period), the state
before, and the state CloudWatch's documented rules give; the pages are cited in alarm_eval's docstring.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rollguard_cli.alarm_eval import (
    AlarmDefinition,
    AlarmNotEvaluable,
    Datapoint,
    aggregate,
    bucket,
    evaluate,
    low_sample_minimum,
    reduce,
    replay,
)

T0 = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)


def alarm(**fields: Any) -> AlarmDefinition:
    """checkout-5xx-rate as the drills define it: > 5 for 2 of 3 one-minute periods."""
    base: dict[str, Any] = {
        "name": "a",
        "period": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 5.0,
    }
    return AlarmDefinition(**{**base, **fields})


def window(*values: float | None, samples: int = 1) -> list[Datapoint | None]:
    return [None if v is None else Datapoint(T0 + i * MINUTE, v, samples) for i, v in enumerate(values)]


A, OK, NO_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"  # the three alarm states

# (id, alarm fields, window, state before, expected state, expected breaching count)
TABLE: list[tuple[str, dict[str, Any], tuple[float | None, ...], str, str, int]] = [
    # M of N
    ("2 of 3 breach", {}, (9, 1, 8), OK, A, 2),
    ("1 of 3 breach", {}, (1, 9, 2), A, OK, 1),
    ("equal is not greater", {}, (5, 5, 5), OK, OK, 0),
    ("M unset means N: 2 of 3 is not enough", {"datapoints_to_alarm": None}, (9, 9, 1), OK, OK, 2),
    ("M unset means N: 3 of 3", {"datapoints_to_alarm": None}, (9, 9, 9), OK, A, 3),
    ("1 of 1", {"evaluation_periods": 1, "datapoints_to_alarm": 1}, (6,), OK, A, 1),
    # comparison operators
    (">=", {"comparison_operator": "GreaterThanOrEqualToThreshold"}, (5, 5, 1), OK, A, 2),
    ("<", {"comparison_operator": "LessThanThreshold", "threshold": 100}, (50, 150, 20), OK, A, 2),
    ("<= at the threshold", {"comparison_operator": "LessThanOrEqualToThreshold"}, (5, 9, 5), OK, A, 2),
    ("< not met", {"comparison_operator": "LessThanThreshold"}, (5, 9, 5), A, OK, 0),
    # TreatMissingData: missing (the default) judges what is present
    ("missing: 2 present breach", {"treat_missing_data": "missing"}, (9, None, 8), OK, A, 2),
    ("missing: 1 of 2 present", {"treat_missing_data": "missing"}, (9, None, 1), A, OK, 1),
    ("missing: all missing", {"treat_missing_data": "missing"}, (None, None, None), OK, NO_DATA, 0),
    ("missing: one good datapoint is OK", {"treat_missing_data": "missing"}, (None, None, 1), A, OK, 0),
    # ignore keeps the state when fewer than M are present
    ("ignore: all missing keeps OK", {"treat_missing_data": "ignore"}, (None, None, None), OK, OK, 0),
    ("ignore: all missing keeps ALARM", {"treat_missing_data": "ignore"}, (None, None, None), A, A, 0),
    (
        "ignore: all missing keeps INSUFFICIENT",
        {"treat_missing_data": "ignore"},
        (None, None, None),
        NO_DATA,
        NO_DATA,
        0,
    ),
    ("ignore: 1 present < M keeps ALARM", {"treat_missing_data": "ignore"}, (None, None, 1), A, A, 0),
    ("ignore: 2 present breach", {"treat_missing_data": "ignore"}, (9, None, 8), NO_DATA, A, 2),
    ("ignore: 2 present good", {"treat_missing_data": "ignore"}, (1, None, 2), NO_DATA, OK, 0),
    # breaching: each gap is a breach
    ("breaching: 1 + 2 gaps", {"treat_missing_data": "breaching"}, (9, None, None), OK, A, 3),
    ("breaching: all missing", {"treat_missing_data": "breaching"}, (None, None, None), OK, A, 3),
    ("breaching: 1 gap is not enough", {"treat_missing_data": "breaching"}, (1, None, 2), OK, OK, 1),
    ("breaching: no gap", {"treat_missing_data": "breaching"}, (1, 2, 3), A, OK, 0),
    # notBreaching: each gap is good
    ("notBreaching: 1 + 2 gaps", {"treat_missing_data": "notBreaching"}, (9, None, None), A, OK, 1),
    ("notBreaching: all missing", {"treat_missing_data": "notBreaching"}, (None, None, None), NO_DATA, OK, 0),
    ("notBreaching: 2 present breach", {"treat_missing_data": "notBreaching"}, (9, None, 8), OK, A, 2),
]


@pytest.mark.parametrize(
    ("fields", "values", "before", "state", "breaching"), [r[1:] for r in TABLE], ids=[r[0] for r in TABLE]
)
def test_the_semantics_table(
    fields: dict[str, Any], values: tuple[float | None, ...], before: str, state: str, breaching: int
) -> None:
    definition = alarm(**fields)
    result = evaluate(definition, window(*values), before)
    assert (result.state, result.breaching) == (state, breaching)
    # replay judges a history exactly as evaluate judges its last window
    points = {p.start: p for p in window(*values) if p is not None}
    changes = replay(definition, points, T0, T0 + len(values) * MINUTE, initial=before)
    assert (changes[-1].state if changes else before) == state


def test_the_window_reports_gaps_as_none() -> None:
    assert evaluate(alarm(), window(9, None, 8), OK).window == [9, None, 8]


# ---------------------------------------------------------------- anomaly detection band


def banded(*rows: tuple[float, float, float] | None) -> list[Datapoint | None]:
    return [None if r is None else Datapoint(T0 + i * MINUTE, r[0], 1, r[1], r[2]) for i, r in enumerate(rows)]


BAND = [
    ("outside: above", "LessThanLowerOrGreaterThanUpperThreshold", [(12, 0, 10), (11, 0, 10), (5, 0, 10)], A, 2),
    ("outside: below", "LessThanLowerOrGreaterThanUpperThreshold", [(-1, 0, 10), (-2, 0, 10), (5, 0, 10)], A, 2),
    (
        "outside: one each side",
        "LessThanLowerOrGreaterThanUpperThreshold",
        [(-1, 0, 10), (11, 0, 10), (5, 0, 10)],
        A,
        2,
    ),
    (
        "outside: on the edges is inside",
        "LessThanLowerOrGreaterThanUpperThreshold",
        [(0, 0, 10), (10, 0, 10), (5, 0, 10)],
        OK,
        0,
    ),
    ("above only ignores below", "GreaterThanUpperThreshold", [(-1, 0, 10), (-2, 0, 10), (11, 0, 10)], OK, 1),
    ("below only ignores above", "LessThanLowerThreshold", [(11, 0, 10), (-2, 0, 10), (-3, 0, 10)], A, 2),
    ("the band moves with time", "GreaterThanUpperThreshold", [(15, 0, 20), (15, 0, 10), (15, 0, 12)], A, 2),
]


@pytest.mark.parametrize(("operator", "rows", "state", "breaching"), [b[1:] for b in BAND], ids=[b[0] for b in BAND])
def test_anomaly_band_operators(
    operator: str, rows: list[tuple[float, float, float]], state: str, breaching: int
) -> None:
    definition = alarm(comparison_operator=operator, threshold=None, threshold_metric_id="ad1")
    result = evaluate(definition, banded(*rows), OK)
    assert (result.state, result.breaching) == (state, breaching)


def test_a_period_without_a_band_counts_as_missing() -> None:
    definition = alarm(comparison_operator="GreaterThanUpperThreshold", threshold=None, treat_missing_data="breaching")
    points = [Datapoint(T0, 50), Datapoint(T0 + MINUTE, 50), Datapoint(T0 + 2 * MINUTE, 1, 1, 0, 10)]
    assert evaluate(definition, list(points), OK)[:2] == ("ALARM", 2)


# ---------------------------------------------------------------- statistics and low samples


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        ("Sum", 15.0),
        ("Average", 3.0),
        ("Minimum", 1.0),
        ("Maximum", 5.0),
        ("SampleCount", 5.0),
        ("p50", 3.0),
        ("p80", 4.0),
        ("p99", 5.0),
        ("p0.1", 1.0),
    ],
)
def test_statistics(statistic: str, expected: float) -> None:
    assert reduce(statistic, [5.0, 1.0, 4.0, 2.0, 3.0]) == expected


@pytest.mark.parametrize(("percentile", "minimum"), [(0.99, 1000), (0.9, 100), (0.5, 20), (0.1, 100), (0.25, 40)])
def test_the_low_sample_minimum_is_10_over_the_distance_to_the_nearest_end(percentile: float, minimum: float) -> None:
    assert low_sample_minimum(percentile) == pytest.approx(minimum)


LOW = [
    # (EvaluateLowSampleCountPercentile, samples in each period, state before, expected)
    ("evaluate", 5, OK, A),  # judged no matter how few samples
    ("ignore", 5, OK, OK),  # p90 needs 100 samples: the state does not change
    ("ignore", 5, A, A),
    ("ignore", 100, OK, A),  # enough samples: judged
]


@pytest.mark.parametrize(("mode", "samples", "before", "state"), LOW)
def test_evaluate_low_sample_count_percentile(mode: str, samples: int, before: str, state: str) -> None:
    definition = alarm(statistic="p90", evaluate_low_sample_count_percentile=mode)
    assert evaluate(definition, window(9, 9, 9, samples=samples), before).state == state


def test_low_samples_do_not_matter_to_plain_statistics() -> None:
    definition = alarm(statistic="Average", evaluate_low_sample_count_percentile="ignore")
    assert evaluate(definition, window(9, 9, 9, samples=1), OK).state == A


def test_aggregate_applies_the_statistic_per_period_and_leaves_gaps() -> None:
    raw = [(T0, 1.0), (T0 + timedelta(seconds=30), 3.0), (T0 + 2 * MINUTE, 7.0), (T0 - MINUTE, 100.0)]
    points = aggregate(alarm(statistic="Sum"), raw, T0 + 3 * MINUTE)
    assert [(p.value, p.samples) if p else None for p in points] == [(4.0, 2), None, (7.0, 1)]


def test_bucket_aligns_periods_on_the_epoch() -> None:
    five = alarm(period=300, statistic="Maximum")
    rows = [Datapoint(T0 + timedelta(minutes=m), float(m)) for m in (1, 4, 5, 9)]
    assert {k: (v.value, v.samples) for k, v in bucket(five, rows).items()} == {
        T0: (4.0, 2),
        T0 + timedelta(minutes=5): (9.0, 2),
    }


def test_replay_lists_each_state_change_at_the_end_of_its_period() -> None:
    values = [1, 9, 9, 9, 1, 1, 1]
    points = {T0 + i * MINUTE: Datapoint(T0 + i * MINUTE, v) for i, v in enumerate(values)}
    changes = replay(alarm(), points, T0, T0 + len(values) * MINUTE)
    assert [(c.at, c.state) for c in changes] == [(T0 + 3 * MINUTE, "ALARM"), (T0 + 6 * MINUTE, "OK")]


# ---------------------------------------------------------------- definitions


def test_a_describe_alarms_item_is_read() -> None:
    item = {
        "AlarmName": "checkout-p99",
        "Namespace": "Checkout",
        "MetricName": "Latency",
        "Dimensions": [{"Name": "Service", "Value": "checkout"}],
        "ExtendedStatistic": "p99",
        "Period": 60,
        "EvaluationPeriods": 5,
        "DatapointsToAlarm": 3,
        "Threshold": 800.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "EvaluateLowSampleCountPercentile": "ignore",
    }
    definition = AlarmDefinition.from_describe(item)
    assert (definition.statistic, definition.needed, definition.low_sample_floor) == ("p99", 3, pytest.approx(1000))
    assert definition.dimensions == (("Service", "checkout"),)
    assert definition.describe() == "p99 > 800 for 3 of 5 × 60s, missing data: notBreaching"


def test_an_anomaly_alarm_reads_its_metric_from_metrics() -> None:
    item = {
        "AlarmName": "latency-band",
        "EvaluationPeriods": 3,
        "ComparisonOperator": "GreaterThanUpperThreshold",
        "ThresholdMetricId": "ad1",
        "Metrics": [
            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "L"}, "Period": 300, "Stat": "p90"}},
            {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"},
        ],
    }
    definition = AlarmDefinition.from_describe(item)
    assert (definition.is_band, definition.period, definition.statistic) == (True, 300, "p90")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"comparison_operator": "Bigger"}, "ComparisonOperator 'Bigger' is unknown"),
        ({"threshold": None}, "needs a Threshold"),
        ({"datapoints_to_alarm": 4}, "DatapointsToAlarm 4 is not within"),
        ({"treat_missing_data": "zero"}, "TreatMissingData 'zero' is unknown"),
        ({"statistic": "tm99"}, "statistic 'tm99' is not evaluated"),
        ({"evaluate_low_sample_count_percentile": "skip"}, "is not evaluate or ignore"),
    ],
)
def test_what_cannot_be_evaluated_is_refused_with_its_reason(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(AlarmNotEvaluable, match=reason):
        alarm(**fields)


STAT = {"Metric": {"Namespace": "N", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ([{"Id": "e", "Expression": "m1/m2"}], "uses m1, m2, not an earlier Id"),
        ([{"Id": "m1", "MetricStat": STAT, "ReturnData": False}, {"Id": "e", "Expression": "RATE(m1)"}], "only"),
        (
            [{"Id": "m1", "MetricStat": STAT, "ReturnData": False}, {"Id": "e", "Expression": "(m1 * 2"}],
            "ends too soon",
        ),
        ([{"Id": "m1", "MetricStat": STAT}, {"Id": "e", "Expression": "m1"}], "exactly one query with ReturnData"),
        ([{"Id": "m1", "MetricStat": STAT}, {"Id": "m1", "MetricStat": STAT}], "repeat an Id"),
    ],
)
def test_metric_math_outside_the_evaluated_subset_is_refused(metrics: list[dict[str, Any]], reason: str) -> None:
    item = {
        "AlarmName": "ratio",
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 1,
        "Metrics": metrics,
    }
    with pytest.raises(AlarmNotEvaluable, match=reason):
        AlarmDefinition.from_describe(item)
