"""Contract tests: alarms on metric math and on an anomaly detection band in the sandbox (alarm_eval.py through
world.py, GetMetricData's expressions in moto_ext.py), through plain boto3. PutMetricAlarm's ``Metrics`` and
``ThresholdMetricId`` ("Create a CloudWatch alarm based on anomaly detection"); GetMetricData computes the
expressions and returns only the queries with ReturnData ("GetMetricData", "Using math expressions with CloudWatch
metrics")."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from rollguard_cli.sandbox.runner import Sandbox

STAT = {"Metric": {"Namespace": "Shop", "MetricName": "Errors"}, "Period": 60, "Stat": "Sum"}
REQUESTS = {"Metric": {"Namespace": "Shop", "MetricName": "Requests"}, "Period": 60, "Stat": "Sum"}
RATIO = [
    {"Id": "errors", "MetricStat": STAT, "ReturnData": False},
    {"Id": "requests", "MetricStat": REQUESTS, "ReturnData": False},
    {"Id": "rate", "Expression": "100 * errors / requests", "ReturnData": True},
]


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(error_model=lambda label, at, config: 0.0) as sandbox:
        yield sandbox


def serve(sb: Sandbox, minutes: int, errors: float, requests: float = 1000) -> None:
    """Plain PutMetricData, one datapoint of each per minute, then the minute passes."""
    cw = sb.client("cloudwatch")
    for _ in range(minutes):
        at = sb.clock.now().replace(second=0, microsecond=0)
        for name, value in (("Errors", errors), ("Requests", requests)):
            sb.world.put_metrics("Shop", [{"MetricName": name, "Timestamp": at, "Value": value, "Unit": "Count"}])
        sb.advance(60)
    cw.describe_alarms()  # a read brings the world up to the clock


def state(sb: Sandbox, name: str) -> str:
    return str(sb.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def put(sb: Sandbox, name: str, **params: Any) -> None:
    sb.client("cloudwatch").put_metric_alarm(AlarmName=name, EvaluationPeriods=3, DatapointsToAlarm=2, **params)


def test_an_alarm_on_a_ratio_goes_to_alarm_and_back(sb: Sandbox) -> None:
    put(sb, "ratio", Metrics=RATIO, ComparisonOperator="GreaterThanThreshold", Threshold=5.0)
    serve(sb, 4, errors=10)
    assert state(sb, "ratio") == "OK"
    serve(sb, 3, errors=200)
    assert state(sb, "ratio") == "ALARM"
    serve(sb, 3, errors=10)
    assert state(sb, "ratio") == "OK"


def test_get_metric_data_computes_the_expression_and_returns_only_return_data(sb: Sandbox) -> None:
    serve(sb, 3, errors=50)
    end: datetime = sb.clock.now().replace(second=0, microsecond=0)
    result = sb.client("cloudwatch").get_metric_data(
        MetricDataQueries=RATIO, StartTime=end - timedelta(minutes=3), EndTime=end, ScanBy="TimestampAscending"
    )["MetricDataResults"]
    assert [r["Id"] for r in result] == ["rate"]
    assert result[0]["Values"] == [5.0, 5.0, 5.0]


def test_an_anomaly_band_alarm_fires_once_its_model_trained_and_the_series_leaves_the_band(sb: Sandbox) -> None:
    band = {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(rate, 2)", "ReturnData": True}
    put(
        sb, "baseline", Metrics=[*RATIO, band], ThresholdMetricId="band", ComparisonOperator="GreaterThanUpperThreshold"
    )
    serve(sb, 3, errors=200)  # no model yet: nothing to compare with, so no datapoint is judged
    assert state(sb, "baseline") != "ALARM"
    serve(sb, 95, errors=10)  # over an hour of 1%: the band trains
    assert state(sb, "baseline") == "OK"
    serve(sb, 2, errors=200)
    assert state(sb, "baseline") == "ALARM"
