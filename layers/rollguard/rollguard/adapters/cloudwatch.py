"""CloudWatch: the alarm's definition and state, and metric values over a window."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rollguard.adapters.aws_errors import AWS_FAILURES, translate
from rollguard.errors import TargetNotFound, VerificationFailed


@dataclass(frozen=True)
class AlarmInfo:
    name: str
    state: str
    composite: bool
    threshold: float | None = None
    comparison: str | None = None
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    treat_missing_data: str = "missing"
    metric_stat: dict[str, Any] | None = None  # a GetMetricData MetricStat, when the alarm has one metric
    metrics: list[dict[str, Any]] = field(default_factory=list)  # metric-math alarms: the query list
    unit: str | None = None  # the alarm's Unit, when its definition names one (most leave it out)
    threshold_metric_id: str | None = None  # an anomaly detection alarm: the ANOMALY_DETECTION_BAND query's Id

    @property
    def on_band(self) -> bool:
        """Compared with an anomaly detection band, not a static threshold (PutMetricAlarm ComparisonOperator)."""
        return self.comparison in BAND_COMPARISONS

    def watched_queries(self) -> list[dict[str, Any]]:
        """GetMetricData queries for the series the alarm compares: its one metric, or its Metrics without the band,
        only the watched query returned (PutMetricAlarm Metrics: ReturnData true on the watched one; MetricDataQuery's
        ReturnData defaults to true). CloudWatch computes the metric math itself ("Using math expressions with
        CloudWatch metrics": GetMetricData)."""
        if self.metric_stat:
            return [{"Id": "alarm_metric", "MetricStat": self.metric_stat, "ReturnData": True}]
        queries = [dict(q) for q in self.metrics if q.get("Id") != self.threshold_metric_id]
        watched = next((q["Id"] for q in queries if q.get("ReturnData", True)), None)
        return [{**q, "ReturnData": q["Id"] == watched} for q in queries]

    @property
    def period(self) -> int:
        if self.metric_stat:
            return int(self.metric_stat["Period"])
        return max((int(m.get("MetricStat", {}).get("Period", 60)) for m in self.metrics), default=60)


BAND_COMPARISONS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
_BREACHES = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def breaches(alarm: AlarmInfo, value: float) -> bool:
    if alarm.threshold is None or alarm.comparison not in _BREACHES:
        raise VerificationFailed(f"alarm {alarm.name} has no static threshold ({alarm.comparison}) to compare with")
    return bool(_BREACHES[alarm.comparison](value, alarm.threshold))


def sum_query(
    query_id: str, namespace: str, metric: str, dimensions: dict[str, str], period: int = 60
) -> dict[str, Any]:
    """One GetMetricData query: the Sum of a metric with exactly these dimensions, per ``period`` seconds."""
    return {
        "Id": query_id,
        "ReturnData": True,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": period,
            "Stat": "Sum",
        },
    }


class CloudWatch:
    def __init__(self, client: Any):
        self._cw = client

    def alarm(self, name: str) -> AlarmInfo:
        try:
            response = self._cw.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading alarm {name}") from exc
        for composite in response.get("CompositeAlarms", []):
            return AlarmInfo(name=name, state=composite["StateValue"], composite=True)
        for metric in response.get("MetricAlarms", []):
            stat = None
            if metric.get("MetricName"):
                stat = {
                    "Metric": {
                        "Namespace": metric["Namespace"],
                        "MetricName": metric["MetricName"],
                        "Dimensions": metric.get("Dimensions", []),
                    },
                    "Period": metric["Period"],
                    "Stat": metric.get("Statistic") or metric.get("ExtendedStatistic", "Average"),
                }
            return AlarmInfo(
                name=name,
                state=metric["StateValue"],
                composite=False,
                threshold=metric.get("Threshold"),
                comparison=metric.get("ComparisonOperator"),
                evaluation_periods=int(metric.get("EvaluationPeriods", 1)),
                datapoints_to_alarm=int(metric.get("DatapointsToAlarm") or metric.get("EvaluationPeriods", 1)),
                treat_missing_data=metric.get("TreatMissingData", "missing"),
                metric_stat=stat,
                metrics=metric.get("Metrics", []),
                unit=metric.get("Unit"),
                threshold_metric_id=metric.get("ThresholdMetricId"),
            )
        raise TargetNotFound(f"alarm {name} does not exist (deleted after it fired?)")

    def values(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, list[float]]:
        """GetMetricData: values per query id, newest first."""
        out: dict[str, list[float]] = {q["Id"]: [] for q in queries}
        try:
            for page in self._cw.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
            ):
                for result in page["MetricDataResults"]:
                    out[result["Id"]].extend(float(v) for v in result.get("Values", []))
        except AWS_FAILURES as exc:
            raise translate(exc, "reading metrics for verification", otherwise=VerificationFailed) from exc
        return out
