"""CloudWatch's metric-alarm evaluation, implemented once: the sandbox's alarms (sandbox/world.py) and
``rollguard backtest`` (backtest.py) both evaluate through this module, so what a drill sees is what a backtest
predicts. It lives in the CLI package, not in the Lambda layer: nothing deployed evaluates alarms (CloudWatch does).

The semantics, each from AWS's documentation (Amazon CloudWatch User Guide unless said otherwise):

- **The statistic over each period** ("CloudWatch statistics definitions", statistics-definitions.html): Sum,
  Average, Minimum, Maximum, SampleCount, and percentiles ``pNN`` / ``pNN.N`` (here: nearest rank over the raw
  values of the period; CloudWatch's own percentiles are approximations too, so a percentile of a handful of values
  may differ from CloudWatch's in the last digit).
- **The comparison** (PutMetricAlarm, ``ComparisonOperator``, CloudWatch API Reference): ``GreaterThanThreshold``,
  ``GreaterThanOrEqualToThreshold``, ``LessThanThreshold``, ``LessThanOrEqualToThreshold``; and for an alarm on an
  anomaly detection band ("Create a CloudWatch alarm based on anomaly detection",
  Create_Anomaly_Detection_Alarm.html) ``LessThanLowerOrGreaterThanUpperThreshold``, ``LessThanLowerThreshold``,
  ``GreaterThanUpperThreshold``, the datapoint compared with the band's lower/upper value of the same period (the
  band is given as a series: CloudWatch's model that computes it is not reproduced).
- **M out of N** ("Evaluating an alarm", alarm-evaluation.html): ALARM when at least ``DatapointsToAlarm`` (M) of
  the last ``EvaluationPeriods`` (N) periods breach; M unset means M = N.
- **TreatMissingData** ("Configuring how CloudWatch alarms treat missing data", alarms-and-missing-data.html):
  ``missing`` (the default) judges the datapoints present, INSUFFICIENT_DATA when every period is missing;
  ``notBreaching`` counts a gap as good; ``breaching`` as bad; ``ignore`` keeps the current state when fewer
  datapoints than M are present. Not modelled: the wider "evaluation range" CloudWatch may read back for
  ``missing``/``ignore`` when the last N periods lack data, and the AWS/DynamoDB namespace's always-ignore rule.
- **EvaluateLowSampleCountPercentile** ("Percentile-based alarms and low data samples",
  percentiles-with-low-samples.html): for a percentile statistic, a period with fewer than 10/(1-p) samples
  (p >= 0.5), or 10/p (p < 0.5), is too small to be significant; with ``ignore`` the alarm does not change state at
  an evaluation whose newest period is that small; with ``evaluate`` (the default) it is judged like any other.

One evaluation is ``decide`` (pure, on counts); ``evaluate`` judges one window of datapoints (the sandbox, once a
minute), ``replay`` a whole history (backtest: counts kept as running sums, so 14 days of 1-minute data is one pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

THRESHOLD_OPERATORS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
BAND_OPERATORS = {
    "LessThanLowerOrGreaterThanUpperThreshold": lambda v, lo, hi: v < lo or v > hi,
    "LessThanLowerThreshold": lambda v, lo, hi: v < lo,
    "GreaterThanUpperThreshold": lambda v, lo, hi: v > hi,
}
TREAT_MISSING = ("missing", "notBreaching", "breaching", "ignore")
STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")
OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"


class AlarmNotEvaluable(ValueError):
    """An alarm definition this evaluator cannot judge (said with the field and the reason)."""


def percentile_of(statistic: str) -> float | None:
    """0.99 for ``p99``, 0.999 for ``p99.9``; None for the plain statistics."""
    if statistic in STATISTICS:
        return None
    if statistic[:1] == "p":
        try:
            value = float(statistic[1:])
        except ValueError:
            value = math.nan
        if 0 < value < 100:
            return value / 100
    raise AlarmNotEvaluable(
        f"statistic {statistic!r} is not evaluated (supported: {', '.join(STATISTICS)} and percentiles pNN)"
    )


def low_sample_minimum(percentile: float) -> float:
    """Fewer samples than this in a period make a percentile not significant (percentiles-with-low-samples.html)."""
    # rounded: 10 / (1 - 0.9) is 100.00000000000001 in floating point, and a p90 over 100 samples is significant
    return round(10 / (1 - percentile) if percentile >= 0.5 else 10 / percentile, 9)


def reduce(statistic: str, values: list[float]) -> float:
    """The statistic of one period's raw values (not empty)."""
    if statistic == "Sum":
        return float(sum(values))
    if statistic == "Average":
        return sum(values) / len(values)
    if statistic == "Minimum":
        return min(values)
    if statistic == "Maximum":
        return max(values)
    if statistic == "SampleCount":
        return float(len(values))
    p = percentile_of(statistic)
    assert p is not None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]  # nearest rank


@dataclass(frozen=True)
class AlarmDefinition:
    """What CloudWatch needs to evaluate a metric alarm: DescribeAlarms' MetricAlarm fields, snake_cased."""

    name: str
    period: int
    evaluation_periods: int
    comparison_operator: str
    threshold: float | None = None
    datapoints_to_alarm: int | None = None
    statistic: str = "Average"  # Statistic, or ExtendedStatistic (pNN)
    treat_missing_data: str = "missing"
    evaluate_low_sample_count_percentile: str = "evaluate"
    namespace: str = ""
    metric_name: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()
    threshold_metric_id: str | None = None  # an anomaly detection alarm's ANOMALY_DETECTION_BAND expression

    def __post_init__(self) -> None:
        if self.period <= 0 or self.evaluation_periods <= 0:
            raise AlarmNotEvaluable(f"alarm {self.name}: Period and EvaluationPeriods must be positive")
        if not 1 <= self.needed <= self.evaluation_periods:
            raise AlarmNotEvaluable(
                f"alarm {self.name}: DatapointsToAlarm {self.datapoints_to_alarm} is not within 1..EvaluationPeriods"
            )
        if self.comparison_operator in THRESHOLD_OPERATORS:
            if self.threshold is None:
                raise AlarmNotEvaluable(f"alarm {self.name}: {self.comparison_operator} needs a Threshold")
        elif self.comparison_operator not in BAND_OPERATORS:
            raise AlarmNotEvaluable(f"alarm {self.name}: ComparisonOperator {self.comparison_operator!r} is unknown")
        if self.treat_missing_data not in TREAT_MISSING:
            raise AlarmNotEvaluable(f"alarm {self.name}: TreatMissingData {self.treat_missing_data!r} is unknown")
        if self.evaluate_low_sample_count_percentile not in ("evaluate", "ignore"):
            raise AlarmNotEvaluable(
                f"alarm {self.name}: EvaluateLowSampleCountPercentile "
                f"{self.evaluate_low_sample_count_percentile!r} is not evaluate or ignore"
            )
        percentile_of(self.statistic)  # refuses what cannot be computed

    @property
    def needed(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def is_band(self) -> bool:
        return self.comparison_operator in BAND_OPERATORS

    @property
    def low_sample_floor(self) -> float | None:
        """The sample count under which a period does not change the state (``ignore``); None: never."""
        p = percentile_of(self.statistic)
        if p is None or self.evaluate_low_sample_count_percentile != "ignore":
            return None
        return low_sample_minimum(p)

    def with_trigger(self, threshold: float | None = None, datapoints_to_alarm: int | None = None) -> AlarmDefinition:
        """The same alarm with another threshold or M (tuning advice); the original is never changed."""
        changes: dict[str, Any] = {}
        if threshold is not None:
            changes["threshold"] = threshold
        if datapoints_to_alarm is not None:
            changes["datapoints_to_alarm"] = datapoints_to_alarm
        return replace(self, **changes)

    def describe(self) -> str:
        if self.is_band:
            side = {
                "LessThanLowerOrGreaterThanUpperThreshold": "outside",
                "LessThanLowerThreshold": "below",
                "GreaterThanUpperThreshold": "above",
            }[self.comparison_operator]
            what = f"{side} the anomaly band"
        else:
            symbol = {
                "GreaterThanThreshold": ">",
                "GreaterThanOrEqualToThreshold": ">=",
                "LessThanThreshold": "<",
                "LessThanOrEqualToThreshold": "<=",
            }[self.comparison_operator]
            what = f"{symbol} {self.threshold:g}"
        return (
            f"{self.statistic} {what} for {self.needed} of {self.evaluation_periods} × {self.period}s, "
            f"missing data: {self.treat_missing_data}"
        )

    @classmethod
    def from_describe(cls, item: Mapping[str, Any]) -> AlarmDefinition:
        """From a DescribeAlarms ``MetricAlarms`` item (as boto3 or ``aws cloudwatch describe-alarms`` gives it)."""
        name = str(item.get("AlarmName", "?"))
        metrics = item.get("Metrics") or []
        namespace, metric_name, dims = item.get("Namespace", ""), item.get("MetricName", ""), item.get("Dimensions")
        period, statistic = item.get("Period"), item.get("Statistic") or item.get("ExtendedStatistic")
        if metrics:
            # An alarm on metric math: only the anomaly-band shape (one metric + its band) is understood here.
            stats = [m for m in metrics if "MetricStat" in m]
            if len(stats) != 1 or not item.get("ThresholdMetricId"):
                raise AlarmNotEvaluable(f"alarm {name}: alarms on metric math expressions are not evaluated")
            stat = stats[0]["MetricStat"]
            metric = stat["Metric"]
            namespace, metric_name, dims = (
                metric.get("Namespace", ""),
                metric.get("MetricName", ""),
                metric.get("Dimensions"),
            )
            period, statistic = stat.get("Period"), stat.get("Stat")
        try:
            return cls(
                name=name,
                period=int(period),  # type: ignore[arg-type]
                evaluation_periods=int(item["EvaluationPeriods"]),
                comparison_operator=str(item["ComparisonOperator"]),
                threshold=None if item.get("Threshold") is None else float(item["Threshold"]),
                datapoints_to_alarm=None if item.get("DatapointsToAlarm") is None else int(item["DatapointsToAlarm"]),
                statistic=str(statistic or "Average"),
                treat_missing_data=str(item.get("TreatMissingData") or "missing"),
                evaluate_low_sample_count_percentile=str(item.get("EvaluateLowSampleCountPercentile") or "evaluate"),
                namespace=str(namespace or ""),
                metric_name=str(metric_name or ""),
                dimensions=tuple((str(d["Name"]), str(d["Value"])) for d in dims or []),
                threshold_metric_id=item.get("ThresholdMetricId"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, AlarmNotEvaluable):
                raise
            raise AlarmNotEvaluable(
                f"alarm {name}: not a metric alarm definition ({type(exc).__name__}: {exc})"
            ) from None

    @classmethod
    def from_moto(cls, alarm: Any) -> AlarmDefinition:
        """From moto's alarm model (the sandbox's CloudWatch)."""
        return cls(
            name=alarm.name,
            period=int(alarm.period),
            evaluation_periods=int(alarm.evaluation_periods),
            comparison_operator=alarm.comparison_operator,
            threshold=None if alarm.threshold is None else float(alarm.threshold),
            datapoints_to_alarm=alarm.datapoints_to_alarm,
            statistic=alarm.statistic or getattr(alarm, "extended_statistic", None) or "Average",
            treat_missing_data=alarm.treat_missing_data or "missing",
            evaluate_low_sample_count_percentile=getattr(alarm, "evaluate_low_sample_count_percentile", None)
            or "evaluate",
            namespace=alarm.namespace or "",
            metric_name=alarm.metric_name or "",
            dimensions=tuple((d.name, d.value) for d in alarm.dimensions),
        )


@dataclass(frozen=True)
class Datapoint:
    """One period's statistic; ``samples`` raw values went into it; ``lower``/``upper``: the anomaly band then."""

    start: datetime
    value: float
    samples: int = 1
    lower: float | None = None
    upper: float | None = None


def breaches(alarm: AlarmDefinition, point: Datapoint) -> bool | None:
    """Whether a datapoint breaches; None when it cannot be judged (a band alarm's period without a band)."""
    if alarm.is_band:
        if point.lower is None or point.upper is None:
            return None
        return bool(BAND_OPERATORS[alarm.comparison_operator](point.value, point.lower, point.upper))
    assert alarm.threshold is not None
    return bool(THRESHOLD_OPERATORS[alarm.comparison_operator](point.value, alarm.threshold))


def decide(alarm: AlarmDefinition, current: str, breaching: int, present: int, low_sample: bool) -> tuple[str, int]:
    """The state after one evaluation, from counts over the last N periods: ``breaching`` of the ``present``
    datapoints breach, the other N - present are missing; ``low_sample``: the newest period is too small a sample
    for a percentile with EvaluateLowSampleCountPercentile ``ignore``. Returns (state, breaching as counted)."""
    missing = alarm.evaluation_periods - present
    treat = alarm.treat_missing_data
    if treat == "breaching":
        breaching += missing
    if low_sample:
        return current, breaching
    if breaching >= alarm.needed:
        return ALARM, breaching
    if present == 0 and treat in ("missing", "ignore"):
        return (INSUFFICIENT if treat == "missing" else current), breaching
    if treat == "ignore" and present < alarm.needed:
        return current, breaching
    return OK, breaching


class Evaluation(NamedTuple):
    state: str
    breaching: int
    window: list[float | None]  # the N periods' values, oldest first; None: missing


def _judged(alarm: AlarmDefinition, point: Datapoint | None) -> bool | None:
    return None if point is None else breaches(alarm, point)


def evaluate(alarm: AlarmDefinition, window: list[Datapoint | None], current: str) -> Evaluation:
    """One evaluation over the last N periods (oldest first, None for a missing period)."""
    judged = [_judged(alarm, p) for p in window]
    newest = window[-1] if window else None
    floor = alarm.low_sample_floor
    low = floor is not None and newest is not None and newest.samples < floor
    state, breaching = decide(alarm, current, sum(1 for j in judged if j), sum(1 for j in judged if j is not None), low)
    return Evaluation(
        state, breaching, [None if p is None or j is None else p.value for p, j in zip(window, judged, strict=True)]
    )


def aggregate(
    alarm: AlarmDefinition, raw: Iterable[tuple[datetime, float]], at: datetime, periods: int | None = None
) -> list[Datapoint | None]:
    """The alarm's statistic over each of the ``periods`` (default N) periods ending at ``at``, oldest first, from
    raw (time, value) samples; None where a period has no sample."""
    length = timedelta(seconds=alarm.period)
    count = periods or alarm.evaluation_periods
    first = at - count * length
    buckets: list[list[float]] = [[] for _ in range(count)]
    for t, v in raw:
        if first <= t < at:
            buckets[int((t - first) / length)].append(v)
    return [
        Datapoint(first + i * length, reduce(alarm.statistic, values), len(values)) if values else None
        for i, values in enumerate(buckets)
    ]


def bucket(alarm: AlarmDefinition, rows: Iterable[Datapoint]) -> dict[datetime, Datapoint]:
    """Raw rows (each a sample, or an already-computed statistic of a period) grouped into the alarm's periods, aligned
    on multiples of the period since the epoch as CloudWatch aligns them; the band of a period is its rows' last."""
    length = alarm.period
    grouped: dict[datetime, list[Datapoint]] = {}
    for row in rows:
        epoch = row.start.timestamp()
        start = datetime.fromtimestamp(epoch - epoch % length, row.start.tzinfo)
        grouped.setdefault(start, []).append(row)
    out = {}
    for start, group in grouped.items():
        banded = [r for r in group if r.lower is not None and r.upper is not None]
        out[start] = Datapoint(
            start,
            reduce(alarm.statistic, [r.value for r in group]) if len(group) > 1 else group[0].value,
            sum(r.samples for r in group),
            banded[-1].lower if banded else None,
            banded[-1].upper if banded else None,
        )
    return out


@dataclass(frozen=True)
class Transition:
    at: datetime  # the evaluation: the end of the newest period judged
    state: str
    breaching: int


def index(points: Mapping[datetime, Datapoint], start: datetime, period: int, steps: int) -> list[Datapoint | None]:
    """``points`` (keyed by period start) as a list: slot i is the period starting at start + i periods."""
    slots: list[Datapoint | None] = [None] * steps
    origin = start.timestamp()
    for key, point in points.items():
        offset = key.timestamp() - origin
        if 0 <= offset < steps * period and offset % period == 0:
            slots[int(offset) // period] = point
    return slots


def replay(
    alarm: AlarmDefinition,
    points: Mapping[datetime, Datapoint] | list[Datapoint | None],
    start: datetime,
    end: datetime,
    initial: str = INSUFFICIENT,
) -> list[Transition]:
    """Every state change of ``alarm`` over [start, end]: one evaluation at the end of each period (``points`` keyed by
    period start, aligned on ``start``, or already ``index``ed), each judged by ``decide`` as ``evaluate`` would."""
    length = timedelta(seconds=alarm.period)
    n = alarm.evaluation_periods
    floor = alarm.low_sample_floor
    steps = int((end - start) / length)
    slots = points[:steps] if isinstance(points, list) else index(points, start, alarm.period, steps)
    if alarm.is_band:
        judged = [None if p is None else breaches(alarm, p) for p in slots]
    else:  # the same comparison as breaches(), without a call per datapoint (backtest replays 20,160 of them a day)
        compare, threshold = THRESHOLD_OPERATORS[alarm.comparison_operator], alarm.threshold
        judged = [None if p is None else bool(compare(p.value, threshold)) for p in slots]
    breaching = present = 0
    state = initial
    out: list[Transition] = []
    last: tuple[str, int, int, bool] | None = None
    for i in range(steps):
        j = judged[i]
        breaching += 1 if j else 0
        present += 0 if j is None else 1
        if i >= n:
            old = judged[i - n]
            breaching -= 1 if old else 0
            present -= 0 if old is None else 1
        if i + 1 < n:
            continue  # not yet N periods of history: CloudWatch's alarm would still be new
        newest = slots[i]
        low = floor is not None and newest is not None and newest.samples < floor
        inputs = (state, breaching, present, low)
        if inputs == last:
            continue  # decide is a function of these: the same inputs, the same (unchanged) state
        last = inputs
        new_state, counted = decide(alarm, state, breaching, present, low)
        if new_state != state:
            out.append(Transition(start + (i + 1) * length, new_state, counted))
            state = new_state
    return out
