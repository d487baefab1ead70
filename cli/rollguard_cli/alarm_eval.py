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
- **Metric math** ("Using math expressions with CloudWatch metrics", using-metric-math.html; PutMetricAlarm
  ``Metrics``): an alarm on an expression reads each ``MetricStat`` query's statistic per period and watches the one
  query with ``ReturnData`` true. Evaluated here: the arithmetic operators (``+ - * /``, parentheses, numbers) over
  query ids, the shape of the error-rate and unhealthy-share triggers Rollguard defines (triggers.py). A division by
  zero, or a period missing an operand, gives no datapoint there (a period that is missing, judged by
  TreatMissingData) — the sandbox's reading: the page does not say what CloudWatch's arithmetic does with a zero.
- **The anomaly detection band** (``ANOMALY_DETECTION_BAND(id, width)`` as ``ThresholdMetricId``,
  Create_Anomaly_Detection_Alarm.html; "Using CloudWatch anomaly detection", CloudWatch_Anomaly_Detection.html: the
  model is trained on up to two weeks of the metric's history and the width is its number of standard deviations).
  CloudWatch's model is not public, so the band is *modelled*: mean ± width·stddev of the watched series over
  ``BAND_TRAINING`` ending ``BAND_LAG`` before the period judged (an incident shorter than the lag does not train the
  band it is judged against, as a fortnight's model barely moves in an hour), and no band — the period not judged —
  until ``BAND_MIN_POINTS`` datapoints trained it. A band given with the data (``lower``/``upper`` in a backtest file)
  is used as given.
- **EvaluateLowSampleCountPercentile** ("Percentile-based alarms and low data samples",
  percentiles-with-low-samples.html): for a percentile statistic, a period with fewer than 10/(1-p) samples
  (p >= 0.5), or 10/p (p < 0.5), is too small to be significant; with ``ignore`` the alarm does not change state at
  an evaluation whose newest period is that small; with ``evaluate`` (the default) it is judged like any other.

One evaluation is ``decide`` (pure, on counts); ``evaluate`` judges one window of datapoints (the sandbox, once a
minute), ``replay`` a whole history (backtest: counts kept as running sums, so 14 days of 1-minute data is one pass).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
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


# The modelled anomaly band (module docstring): trained on up to two weeks, ending an hour before the period judged.
BAND_TRAINING = timedelta(days=14)
BAND_LAG = timedelta(hours=1)
BAND_MIN_POINTS = 30

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([a-z][A-Za-z0-9_]*)|([-+*/()]))")
_BAND = re.compile(r"^\s*ANOMALY_DETECTION_BAND\(\s*([a-z][A-Za-z0-9_]*)\s*(?:,\s*(\d+(?:\.\d*)?)\s*)?\)\s*$")
Expression = Any  # a parsed expression: ("num", float) | ("id", str) | (operator, left, right) | ("neg", operand)


def parse_expression(text: str) -> Expression:
    """The arithmetic subset of metric math (``100 * errors / requests``); anything else is AlarmNotEvaluable."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None:
            raise AlarmNotEvaluable(f"expression {text!r}: only + - * / ( ), numbers and query ids are evaluated")
        number, name, op = match.groups()
        tokens.append(("num", number) if number else ("id", name) if name else ("op", op))
        at = match.end()
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        token = peek()
        if token is None:
            raise AlarmNotEvaluable(f"expression {text!r} ends too soon")
        position += 1
        return token

    def sum_() -> Expression:
        node = product()
        while (token := peek()) is not None and token[1] in ("+", "-"):
            node = (take()[1], node, product())
        return node

    def product() -> Expression:
        node = unary()
        while (token := peek()) is not None and token[1] in ("*", "/"):
            node = (take()[1], node, unary())
        return node

    def unary() -> Expression:
        kind, value = take()
        if kind == "num":
            return ("num", float(value))
        if kind == "id":
            return ("id", value)
        if value == "-":
            return ("neg", unary())
        if value == "(":
            node = sum_()
            if take()[1] != ")":
                raise AlarmNotEvaluable(f"expression {text!r}: unbalanced parentheses")
            return node
        raise AlarmNotEvaluable(f"expression {text!r}: unexpected {value!r}")

    tree = sum_()
    if peek() is not None:
        raise AlarmNotEvaluable(f"expression {text!r}: unexpected {peek()[1]!r}")  # type: ignore[index]
    return tree


def compute(tree: Expression, values: Mapping[str, float | None]) -> float | None:
    """The expression's value for one period; None when an operand is missing or a division is by zero."""
    kind = tree[0]
    if kind == "num":
        return float(tree[1])
    if kind == "id":
        return values.get(tree[1])
    if kind == "neg":
        inner = compute(tree[1], values)
        return None if inner is None else -inner
    left, right = compute(tree[1], values), compute(tree[2], values)
    if left is None or right is None:
        return None
    if kind == "/":
        return None if right == 0 else left / right
    return left + right if kind == "+" else left - right if kind == "-" else left * right


def references(tree: Expression) -> set[str]:
    if tree[0] == "id":
        return {tree[1]}
    return set().union(*(references(t) for t in tree[1:] if isinstance(t, tuple)))


@dataclass(frozen=True)
class MetricQuery:
    """One item of an alarm's ``Metrics`` (MetricDataQuery): a metric's statistic, or an expression over others."""

    id: str
    return_data: bool = False
    expression: str | None = None
    namespace: str = ""
    metric_name: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = ""
    period: int | None = None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> MetricQuery:
        stat = item.get("MetricStat") or {}
        metric = stat.get("Metric") or {}
        return cls(
            id=str(item["Id"]),
            return_data=bool(item.get("ReturnData", True)),  # MetricDataQuery: ReturnData defaults to true
            expression=item.get("Expression"),
            namespace=str(metric.get("Namespace") or ""),
            metric_name=str(metric.get("MetricName") or ""),
            dimensions=tuple((str(d["Name"]), str(d["Value"])) for d in metric.get("Dimensions") or []),
            stat=str(stat.get("Stat") or ""),
            period=int(stat["Period"]) if stat.get("Period") else (int(item["Period"]) if item.get("Period") else None),
        )


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
    metrics: tuple[MetricQuery, ...] = ()  # an alarm on metric math: its Metrics, in order
    _parsed: dict[str, Expression] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.metrics:
            self._check_metrics()
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

    def _check_metrics(self) -> None:
        """The Metrics of an alarm on metric math, as PutMetricAlarm requires them: one watched query (ReturnData),
        each MetricStat's statistic computable, each expression the arithmetic subset or the band."""
        ids = [q.id for q in self.metrics]
        if len(set(ids)) != len(ids):
            raise AlarmNotEvaluable(f"alarm {self.name}: Metrics repeat an Id")
        watched = [q for q in self.metrics if q.return_data and q.id != self.threshold_metric_id]
        if len(watched) != 1:
            raise AlarmNotEvaluable(f"alarm {self.name}: Metrics need exactly one query with ReturnData true to watch")
        known: set[str] = set()
        for query in self.metrics:
            if query.expression is None:
                if not query.metric_name or not query.stat:
                    raise AlarmNotEvaluable(
                        f"alarm {self.name}: query {query.id} has neither MetricStat nor Expression"
                    )
                percentile_of(query.stat)
            elif query.id == self.threshold_metric_id:
                match = _BAND.match(query.expression)
                if match is None or match.group(1) != watched[0].id:
                    raise AlarmNotEvaluable(
                        f"alarm {self.name}: ThresholdMetricId {query.id} is not ANOMALY_DETECTION_BAND of the watched "
                        f"query {watched[0].id}"
                    )
            else:
                tree = parse_expression(query.expression)
                unknown = references(tree) - known
                if unknown:
                    raise AlarmNotEvaluable(
                        f"alarm {self.name}: expression {query.id} uses {', '.join(sorted(unknown))}, not an earlier Id"
                    )
                self._parsed[query.id] = tree
            known.add(query.id)
        if self.threshold_metric_id is not None and self.threshold_metric_id not in known:
            raise AlarmNotEvaluable(
                f"alarm {self.name}: ThresholdMetricId {self.threshold_metric_id} is not in Metrics"
            )

    @property
    def watched(self) -> MetricQuery | None:
        """The query the alarm compares (ReturnData true, not its band); None for an alarm on one metric."""
        return next((q for q in self.metrics if q.return_data and q.id != self.threshold_metric_id), None)

    @property
    def band_width(self) -> float:
        """ANOMALY_DETECTION_BAND's second argument: standard deviations (2 when left out, as CloudWatch's default)."""
        band = next((q for q in self.metrics if q.id == self.threshold_metric_id), None)
        match = _BAND.match(band.expression or "") if band is not None else None
        return float(match.group(2)) if match is not None and match.group(2) else 2.0

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
        watched = self.watched
        subject = self.statistic if watched is None else (watched.expression or f"{watched.stat} of {watched.id}")
        if self.is_band and self.metrics:
            what += f" (width {self.band_width:g})"
        return (
            f"{subject} {what} for {self.needed} of {self.evaluation_periods} × {self.period}s, "
            f"missing data: {self.treat_missing_data}"
        )

    @classmethod
    def from_describe(cls, item: Mapping[str, Any]) -> AlarmDefinition:
        """From a DescribeAlarms ``MetricAlarms`` item (as boto3 or ``aws cloudwatch describe-alarms`` gives it)."""
        name = str(item.get("AlarmName", "?"))
        queries: tuple[MetricQuery, ...] = ()
        namespace, metric_name, dims = item.get("Namespace", ""), item.get("MetricName", ""), item.get("Dimensions")
        period, statistic = item.get("Period"), item.get("Statistic") or item.get("ExtendedStatistic")
        if item.get("Metrics"):
            try:
                queries = tuple(MetricQuery.from_api(q) for q in item["Metrics"])
            except (KeyError, TypeError, ValueError) as exc:
                raise AlarmNotEvaluable(f"alarm {name}: Metrics: {type(exc).__name__}: {exc}") from None
            period = max((q.period or 0 for q in queries if q.expression is None), default=0)
            watched = next((q for q in queries if q.return_data and q.id != item.get("ThresholdMetricId")), None)
            if watched is not None and watched.expression is None:
                namespace, metric_name, statistic = watched.namespace, watched.metric_name, watched.stat
                dims = [{"Name": k, "Value": v} for k, v in watched.dimensions]
            else:  # the watched query is an expression: a backtest file's rows carry its value per period
                namespace, metric_name, statistic, dims = "", "", "Average", []
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
                metrics=queries,
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
        if alarm.metric_data_queries:
            return cls.from_describe(
                {
                    "AlarmName": alarm.name,
                    "EvaluationPeriods": alarm.evaluation_periods,
                    "DatapointsToAlarm": alarm.datapoints_to_alarm,
                    "ComparisonOperator": alarm.comparison_operator,
                    "Threshold": alarm.threshold,
                    "TreatMissingData": alarm.treat_missing_data,
                    "EvaluateLowSampleCountPercentile": getattr(alarm, "evaluate_low_sample_count_percentile", None),
                    "ThresholdMetricId": alarm.threshold_metric_id,
                    "Metrics": [moto_query(q) for q in alarm.metric_data_queries],
                }
            )
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


def moto_query(query: Any) -> dict[str, Any]:
    """moto's MetricDataQuery as the API's dictionary."""
    out: dict[str, Any] = {"Id": query.id, "ReturnData": query.return_data in (None, True, "true")}
    if query.expression:
        out["Expression"] = query.expression
    if query.metric_stat is not None:
        metric = query.metric_stat.metric
        out["MetricStat"] = {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.metric_name,
                "Dimensions": [{"Name": d.name, "Value": d.value} for d in metric.dimensions],
            },
            "Period": int(query.metric_stat.period),
            "Stat": query.metric_stat.stat,
        }
    return out


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


RawSamples = Callable[[MetricQuery], Iterable[tuple[datetime, float]]]


def observe(
    alarm: AlarmDefinition,
    raw: RawSamples,
    at: datetime,
    periods: int | None = None,
) -> list[Datapoint | None]:
    """Like ``aggregate``, for any alarm: ``raw(query)`` gives a metric's (time, value) samples (a query built from
    the alarm's own metric when it has no Metrics). An alarm on metric math gets each MetricStat's statistic per period
    and its expressions computed in order; an anomaly band alarm its band modelled from the watched series' history."""
    count = periods or alarm.evaluation_periods
    if not alarm.metrics:
        own = MetricQuery("m", True, None, alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.statistic)
        return aggregate(alarm, raw(own), at, count)
    length = timedelta(seconds=alarm.period)
    history = count
    if alarm.is_band:  # the training window too, back to the oldest sample there is
        oldest = min((t for q in alarm.metrics if q.expression is None for t, _ in raw(q)), default=at)
        history = max(count, min(int((BAND_TRAINING + BAND_LAG) / length), int((at - oldest) / length) + 1))
    first = at - history * length
    columns: dict[str, list[float | None]] = {}
    samples: dict[str, list[int]] = {}
    for query in alarm.metrics:
        if query.expression is None:
            buckets: list[list[float]] = [[] for _ in range(history)]
            for t, v in raw(query):
                if first <= t < at:
                    buckets[int((t - first) / length)].append(v)
            columns[query.id] = [reduce(query.stat, b) if b else None for b in buckets]
            samples[query.id] = [len(b) for b in buckets]
        elif query.id in alarm._parsed:
            tree = alarm._parsed[query.id]
            columns[query.id] = [compute(tree, {k: col[i] for k, col in columns.items()}) for i in range(history)]
    watched = alarm.watched
    assert watched is not None
    values = columns[watched.id]
    counts = samples.get(watched.id, [1] * history)
    points = {
        first + i * length: Datapoint(first + i * length, v, counts[i]) for i, v in enumerate(values) if v is not None
    }
    if alarm.is_band:
        points = with_band(points, alarm.period, alarm.band_width)
    return [points.get(first + i * length) for i in range(history - count, history)]


def with_band(points: Mapping[datetime, Datapoint], period: int, width: float) -> dict[datetime, Datapoint]:
    """Each point with the modelled anomaly band (module docstring) where it has none: mean ± width·stddev of the
    points in [start - BAND_TRAINING - BAND_LAG, start - BAND_LAG), with running sums (one pass over the history)."""
    ordered = sorted(points.values(), key=lambda p: p.start)
    out: dict[datetime, Datapoint] = {}
    lo = hi = 0  # the training window is ordered[lo:hi]
    total = squares = 0.0
    for point in ordered:
        while hi < len(ordered) and ordered[hi].start < point.start - BAND_LAG:
            total += ordered[hi].value
            squares += ordered[hi].value ** 2
            hi += 1
        while lo < hi and ordered[lo].start < point.start - BAND_LAG - BAND_TRAINING:
            total -= ordered[lo].value
            squares -= ordered[lo].value ** 2
            lo += 1
        n = hi - lo
        if point.lower is not None and point.upper is not None or n < BAND_MIN_POINTS:
            out[point.start] = point
            continue
        mean = total / n
        spread = width * math.sqrt(max(0.0, squares / n - mean * mean))
        out[point.start] = replace(point, lower=mean - spread, upper=mean + spread)
    return out


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
