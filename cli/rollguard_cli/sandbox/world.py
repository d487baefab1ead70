"""The simulated world: a service whose error rate depends on which version its Lambda alias routes how much
traffic to, timers on the virtual clock (CodeDeploy's traffic shifts run on them), and CloudWatch's alarm
evaluation (M of N datapoints, missing data) through the one evaluator backtest uses too (alarm_eval.py).

Nothing here knows about Rollguard's handlers: the world reads the alias (the truth of who serves traffic, as
on Lambda) and publishes metrics and alarm events the way AWS would.
"""

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollguard_cli.alarm_eval import AlarmDefinition, MetricQuery, evaluate, moto_query, observe
from rollguard_cli.sandbox.clock import VirtualClock

PERIOD = 60
# (revision label, time, the configuration the service has loaded: profile name → document) → error rate
ErrorModel = Callable[[str, datetime, dict[str, Any]], float]
# A CloudWatch metric: (namespace, metric name, its dimensions as a set of (name, value)). CloudWatch treats each
# unique combination of dimensions as a separate metric ("Amazon CloudWatch concepts", Dimensions): an alarm reads the
# one metric whose dimensions are exactly its own.
MetricKey = tuple[str, str, frozenset[tuple[str, str]]]


def moto_time(moment: datetime) -> datetime:
    """moto keeps naive UTC datetimes; mixing in aware ones breaks its comparisons."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def aws_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass(frozen=True)
class SliceMetricSpec:
    """Per-revision metrics the service publishes besides Lambda's own (a policy's ``verify.slice``): errors and
    requests with the fixed ``dimensions`` plus ``version_dimension`` per revision, and their aggregate with the fixed
    dimensions only (what an alarm on the service as a whole reads, as on Lambda's per-alias metrics)."""

    namespace: str
    errors_metric: str
    requests_metric: str
    dimensions: tuple[tuple[str, str], ...]
    version_dimension: str


@dataclass
class ServiceSpec:
    """A Lambda-backed service behind an alias, deployed by a CodeDeploy deployment group."""

    application: str = "checkout"
    deployment_group: str = "checkout-prod"
    function: str = "checkout"
    alias: str = "live"
    requests_per_minute: int = 1000
    metric_namespace: str = "Checkout"
    # What the service loads through its AppConfig agent (the Lambda extension).
    appconfig_application: str = "checkout"
    appconfig_environment: str = "prod"
    appconfig_profiles: tuple[str, ...] = ("checkout-flags", "checkout-settings")
    # More per-revision metrics to publish (a policy's verify.slice), and their aggregate; None: Lambda's own only.
    slice_metrics: SliceMetricSpec | None = None


@dataclass(order=True)
class _Timer:
    at: datetime
    seq: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


@dataclass
class World:
    clock: VirtualClock
    service: ServiceSpec
    error_rate: ErrorModel
    cloudwatch: Any = None  # boto3 client, set by the sandbox
    publish: Callable[[dict[str, Any]], None] | None = None  # EventBridge's default bus
    # The service's traffic split, read from its Lambda alias (set by the sandbox): {version: share}.
    read_routing: Callable[[], dict[str, float]] | None = None
    history: list[tuple[datetime, dict[str, float]]] = field(default_factory=list)
    timers: list[_Timer] = field(default_factory=list)
    datapoints: dict[MetricKey, list[tuple[datetime, float]]] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Callable[[], None]] = field(default_factory=list)  # work due outside any AWS request (retries)
    cloudwatch_backend: Any = None
    # Called after each alarm evaluation (CodeDeploy polls its deployments' alarms).
    after_alarms: Callable[[], None] | None = None
    # Reads the deployed document of a profile, as the service's AppConfig agent would (set by the sandbox).
    read_config: Callable[[str], Any] | None = None
    loaded_config: dict[str, Any] = field(default_factory=dict)
    # The service behind an Application Load Balancer (sandbox/load_balancer.py), when the sandbox has one.
    traffic: Any = None
    # Called with "alias" or "listener" once the service's traffic split changed (a new entry in ``history`` or in
    # ``traffic.history``), on the changer's thread: a drill streams those changes into its timeline through this.
    watchers: list[Callable[[str], None]] = field(default_factory=list)
    _next_period: datetime | None = None
    _timer_at: datetime | None = None  # while a timer runs, "now" is the moment it was due
    _seq: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------- traffic, as the alias says

    def now(self) -> datetime:
        """The sandbox clock, except while a timer runs: then the moment it was due (sync may run late)."""
        return self._timer_at or self.clock.now()

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.history[-1][1]) if self.history else {}

    def on_alias_changed(self) -> None:
        """The alias was created or updated (by CodeDeploy or anyone): traffic follows it from now on."""
        if self.read_routing is not None:
            with self._lock:
                routing = {k: v for k, v in self.read_routing().items() if v > 0}
                if not self.history or self.history[-1][1] != routing:
                    self.history.append((self.now(), routing))
                    for watch in self.watchers:
                        watch("alias")

    def on_listener_changed(self) -> None:
        """An ELBv2 listener or rule was created or modified: the load balancer's traffic follows it from now on."""
        if self.traffic is not None:
            with self._lock:
                if self.traffic.record(self.now()):
                    for watch in self.watchers:
                        watch("listener")

    # ------------------------------------------------------------- timers on the virtual clock

    def schedule(self, at: datetime, action: Callable[[], None]) -> _Timer:
        with self._lock:
            self._seq += 1
            timer = _Timer(at, self._seq, action)
            self.timers.append(timer)
            return timer

    def cancel(self, timer: object) -> None:
        assert isinstance(timer, _Timer)
        timer.cancelled = True

    # ------------------------------------------------------------- time passing

    def sync(self) -> None:
        """Bring the world up to the clock: traffic shifts, one datapoint per period, alarm evaluation."""
        with self._lock:
            now = self.clock.now()
            if self._next_period is None:
                self._next_period = now.replace(second=0, microsecond=0) + timedelta(seconds=PERIOD)
            while True:
                self.timers = [t for t in self.timers if not t.cancelled]
                due = min((t for t in self.timers if t.at <= now), default=None)
                boundary = self._next_period
                if due is not None and due.at <= boundary:
                    self.timers.remove(due)
                    self._timer_at = due.at
                    try:
                        due.action()
                    finally:
                        self._timer_at = None
                    continue
                if boundary > now:
                    break
                self._emit_period(boundary - timedelta(seconds=PERIOD), boundary)
                self._evaluate_alarms(boundary)
                if self.after_alarms is not None:
                    self.after_alarms()
                self._poll_config()
                self._next_period = boundary + timedelta(seconds=PERIOD)

    def weights_during(self, start: datetime, end: datetime) -> dict[str, float]:
        """Time-weighted traffic shares over [start, end)."""
        spans: dict[str, float] = {}
        current: dict[str, float] = {}
        cursor = start
        for at, weights in self.history:
            if at <= start:
                current = weights
                continue
            if at >= end:
                break
            for k, v in current.items():
                spans[k] = spans.get(k, 0.0) + v * (at - cursor).total_seconds()
            current, cursor = weights, at
        for k, v in current.items():
            spans[k] = spans.get(k, 0.0) + v * (end - cursor).total_seconds()
        total = (end - start).total_seconds()
        return {k: v / total for k, v in spans.items() if v > 0}

    def _poll_config(self) -> None:
        """The agent polls (every 45 s by default): a change reaches the service at the next minute boundary
        here, so a period is served with the configuration loaded at its start."""
        if self.read_config is not None:
            for profile in self.service.appconfig_profiles:
                document = self.read_config(profile)
                if document is not None:
                    self.loaded_config[profile] = document

    def _emit_period(self, start: datetime, end: datetime) -> None:
        svc = self.service
        mid = start + (end - start) / 2
        config = dict(self.loaded_config)
        total_requests = total_errors = 0.0
        metric_data = []
        per_version: dict[str, tuple[float, float]] = {}
        for label, share in self.weights_during(start, end).items():
            requests = round(svc.requests_per_minute * share * PERIOD / 60)
            errors = round(requests * self.error_rate(label, mid, config))
            total_requests += requests
            total_errors += errors
            per_version[label] = (requests, errors)
            dims = [
                {"Name": "FunctionName", "Value": svc.function},
                {"Name": "Resource", "Value": f"{svc.function}:{svc.alias}"},
                {"Name": "ExecutedVersion", "Value": label},
            ]
            metric_data += [
                {
                    "MetricName": "Invocations",
                    "Dimensions": dims,
                    "Timestamp": start,
                    "Value": requests,
                    "Unit": "Count",
                },
                {"MetricName": "Errors", "Dimensions": dims, "Timestamp": start, "Value": errors, "Unit": "Count"},
            ]
        if metric_data:
            self.put_metrics("AWS/Lambda", metric_data)
        if total_requests:
            rate = 100.0 * total_errors / total_requests
            self.put_metrics(
                svc.metric_namespace,
                [
                    {
                        "MetricName": "ErrorRate",
                        "Dimensions": [{"Name": "Service", "Value": svc.function}],
                        "Timestamp": start,
                        "Value": rate,
                        "Unit": "Percent",
                    }
                ],
            )
        if svc.slice_metrics is not None and per_version:
            self._emit_slice(svc.slice_metrics, start, per_version, metric_data)
        if self.traffic is not None:
            load_balancer_data = self.traffic.period(start, end)
            if load_balancer_data:
                self.put_metrics("AWS/ApplicationELB", load_balancer_data)

    def _emit_slice(
        self,
        spec: SliceMetricSpec,
        start: datetime,
        per_version: dict[str, tuple[float, float]],
        lambda_data: list[dict[str, Any]],
    ) -> None:
        """The ``SliceMetricSpec`` metrics of one period: per version (unless they are Lambda's own, sent already)
        and their sum over versions, with the fixed dimensions only."""
        fixed = [{"Name": k, "Value": v} for k, v in spec.dimensions]
        sent = {(d["MetricName"], frozenset((x["Name"], x["Value"]) for x in d["Dimensions"])) for d in lambda_data}
        total = (sum(r for r, _ in per_version.values()), sum(e for _, e in per_version.values()))
        data = []
        for label, (requests, errors) in [*per_version.items(), ("", total)]:
            dims = [*fixed, {"Name": spec.version_dimension, "Value": label}] if label else fixed
            for name, value in ((spec.requests_metric, requests), (spec.errors_metric, errors)):
                if spec.namespace == "AWS/Lambda" and (name, frozenset((d["Name"], d["Value"]) for d in dims)) in sent:
                    continue
                data.append(
                    {"MetricName": name, "Dimensions": dims, "Timestamp": start, "Value": value, "Unit": "Count"}
                )
        if data:
            self.put_metrics(spec.namespace, data)

    def put_metrics(self, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        """PutMetricData as the service would, and the same datapoints kept for alarm evaluation (moto evaluates
        none), each under its own metric: namespace, name and exact dimensions."""
        for datum in metric_data:
            dims = frozenset((d["Name"], d["Value"]) for d in datum.get("Dimensions", []))
            key = (namespace, datum["MetricName"], dims)
            self.datapoints.setdefault(key, []).append((datum["Timestamp"], float(datum["Value"])))
        for i in range(0, len(metric_data), 1000):  # PutMetricData takes up to 1,000 metrics a request
            self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=metric_data[i : i + 1000])

    # ------------------------------------------------------------- CloudWatch alarm evaluation

    def _evaluate_alarms(self, at: datetime) -> None:
        for alarm in list(self.cloudwatch_backend.alarms.values()):
            if not alarm.metric_name and not alarm.metric_data_queries:
                continue  # a composite alarm: CloudWatch judges its rule, which the sandbox does not model
            definition = AlarmDefinition.from_moto(alarm)
            window = observe(definition, self.samples, at)
            state, breaching, values = evaluate(definition, window, alarm.state_value)
            previous = alarm.state_value
            if state == previous:
                continue
            side, against = ("outside", "the band") if definition.is_band else ("greater than", "the threshold")
            reason = (
                f"Threshold Crossed: {breaching} out of the last {alarm.evaluation_periods} datapoints "
                f"were {side if state == 'ALARM' else 'not ' + side} {against}"
                + ("" if definition.is_band else f" ({alarm.threshold})")
            )
            reason_data = json.dumps(
                {
                    "version": "1.0",
                    "queryDate": aws_time(at),
                    "statistic": alarm.statistic,
                    "period": alarm.period,
                    "threshold": alarm.threshold,
                    "recentDatapoints": [v for v in values if v is not None],
                }
            )
            self.outbox.append(transition(alarm, state, reason, reason_data, at))

    def samples(self, query: MetricQuery) -> list[tuple[datetime, float]]:
        """The raw datapoints of the one metric a query names (its namespace, name and exact dimensions)."""
        return self.datapoints.get((query.namespace, query.metric_name, frozenset(query.dimensions)), [])

    def enqueue(self, event: dict[str, Any]) -> None:
        """An event for EventBridge; queued because it may arise inside an AWS request being answered."""
        with self._lock:
            self.outbox.append(event)

    def later(self, call: Callable[[], None]) -> None:
        """Run ``call`` at the next delivery, outside any in-flight AWS request (a timer may fire inside one)."""
        with self._lock:
            self.calls.append(call)

    def deliver(self) -> None:
        """Hand queued events to EventBridge and run the queued calls (outside any in-flight AWS request)."""
        while True:
            with self._lock:
                if not self.outbox and not self.calls:
                    return
                event, call = (self.outbox.pop(0), None) if self.outbox else (None, self.calls.pop(0))
            if event is not None and self.publish is not None:
                self.publish(event)
            if call is not None:
                call()


def transition(alarm: Any, state: str, reason: str, reason_data: str, at: datetime) -> dict[str, Any]:
    """Move moto's ``alarm`` to ``state`` at ``at``; the "CloudWatch Alarm State Change" event CloudWatch emits for it
    on the default bus of the alarm's own account and region."""
    old = {
        "value": alarm.state_value,
        "reason": alarm.state_reason,
        "reasonData": alarm.state_reason_data or "{}",
        "timestamp": aws_time(alarm.state_updated_timestamp),
    }
    alarm.update_state(reason, reason_data, state)
    alarm.state_updated_timestamp = moto_time(at)
    new = {"value": state, "reason": reason, "reasonData": reason_data, "timestamp": aws_time(at)}
    return _state_change_event(alarm, old, new, at)


def _state_change_event(alarm: Any, previous: dict[str, Any], state: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": alarm.alarm_arn.split(":")[4],
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": alarm.region_name,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "state": state,
            "previousState": previous,
            "configuration": {
                "description": alarm.description or "",
                "metrics": _event_metrics(alarm),
            },
        },
    }


def _event_metrics(alarm: Any) -> list[dict[str, Any]]:
    """The alarm's metrics as the state-change event carries them ("Alarm events and EventBridge",
    cloudwatch-and-eventbridge.html): the one metric, or each query of a metric-math or anomaly detection alarm (read
    from moto as the API writes them, alarm_eval.moto_query, then in the event's camelCase)."""
    if not alarm.metric_data_queries:
        return [
            {
                "id": str(uuid.uuid4()),
                "metricStat": {
                    "metric": {
                        "namespace": alarm.namespace,
                        "name": alarm.metric_name,
                        "dimensions": {d.name: d.value for d in alarm.dimensions},
                    },
                    "period": alarm.period,
                    "stat": alarm.statistic,
                },
                "returnData": True,
            }
        ]
    out = []
    for query, api in ((q, moto_query(q)) for q in alarm.metric_data_queries):
        item: dict[str, Any] = {"id": api["Id"], "returnData": api["ReturnData"]}
        if "Expression" in api:
            item |= {"expression": api["Expression"], "label": query.label or query.id}
        if "MetricStat" in api:
            stat = api["MetricStat"]
            metric = stat["Metric"]
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            item["metricStat"] = {
                "metric": {"namespace": metric["Namespace"], "name": metric["MetricName"], "dimensions": dimensions},
                "period": stat["Period"],
                "stat": stat["Stat"],
            }
        out.append(item)
    return out
