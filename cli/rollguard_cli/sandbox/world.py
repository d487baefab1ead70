"""The simulated world: a service whose error rate depends on which revision serves how much traffic,
CodeDeploy's traffic shifting, and CloudWatch's alarm evaluation (M of N datapoints, missing data).

Nothing here knows about Rollguard's handlers: the world only reacts to CodeDeploy API calls (through
moto_ext) and publishes metrics and alarm events the way AWS would.
"""

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rollguard_cli.sandbox.clock import VirtualClock

PERIOD = 60
# (revision label, time, the configuration the service has loaded: profile name → document) → error rate
ErrorModel = Callable[[str, datetime, dict[str, Any]], float]


def _moto_time(moment: datetime) -> datetime:
    """moto keeps naive UTC datetimes; mixing in aware ones breaks its comparisons."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def aws_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


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


@dataclass
class _Shift:
    at: datetime
    weights: dict[str, float]
    deployment_id: str | None = None
    status: str | None = None


@dataclass
class World:
    clock: VirtualClock
    service: ServiceSpec
    error_rate: ErrorModel
    cloudwatch: Any = None  # boto3 client, set by the sandbox
    publish: Callable[[dict[str, Any]], None] | None = None  # EventBridge's default bus
    weights: dict[str, float] = field(default_factory=dict)
    history: list[tuple[datetime, dict[str, float]]] = field(default_factory=list)
    pending: list[_Shift] = field(default_factory=list)
    datapoints: dict[tuple[str, str], list[tuple[datetime, float]]] = field(default_factory=dict)
    alarm_states: dict[str, str] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    codedeploy_backend: Any = None
    cloudwatch_backend: Any = None
    # Reads the deployed document of a profile, as the service's AppConfig agent would (set by the sandbox).
    read_config: Callable[[str], Any] | None = None
    loaded_config: dict[str, Any] = field(default_factory=dict)
    _next_period: datetime | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------- CodeDeploy reacting to API calls

    def on_deployment_created(self, deployment: Any, label: str) -> None:
        """A new deployment starts shifting traffic to ``label`` according to its configuration."""
        with self._lock:
            now = self.clock.now()
            config = str(deployment.deployment_config_name)
            deployment.status = "InProgress"
            deployment.create_time = deployment.start_time = _moto_time(now)
            canary = re.search(r"Canary(\d+)Percent(\d+)Minutes", config)
            if canary:
                share = int(canary.group(1)) / 100
                interval = int(canary.group(2)) * 60
                self._apply(now, self._blend(label, share))
                self.pending.append(
                    _Shift(now + timedelta(seconds=interval), {label: 1.0}, deployment.deployment_id, "Succeeded")
                )
            else:
                self._apply(now, {label: 1.0})
                self.pending.append(
                    _Shift(now + timedelta(seconds=PERIOD), {label: 1.0}, deployment.deployment_id, "Succeeded")
                )
            deployment.world_weights_before = dict(self.history[-2][1]) if len(self.history) > 1 else {}
            self.enqueue(_codedeploy_event(deployment, "START", now))

    def on_deployment_stopped(self, deployment: Any) -> None:
        with self._lock:
            deployment.status = "Stopped"
            deployment.complete_time = _moto_time(self.clock.now())
            self.pending = [p for p in self.pending if p.deployment_id != deployment.deployment_id]
            self.enqueue(_codedeploy_event(deployment, "STOP", self.clock.now()))

    def on_rollback(self, stopped: Any, rollback: Any) -> None:
        """CodeDeploy's automatic rollback: traffic back to where it was before ``stopped`` began."""
        with self._lock:
            now = self.clock.now()
            before = getattr(stopped, "world_weights_before", {}) or dict(self.weights)
            rollback.status = "Succeeded"
            rollback.create_time = rollback.start_time = rollback.complete_time = _moto_time(now)
            self._apply(now, before)

    def _blend(self, label: str, share: float) -> dict[str, float]:
        blended = {k: v * (1 - share) for k, v in self.weights.items() if k != label}
        blended[label] = share + self.weights.get(label, 0.0) * (1 - share)
        return blended

    def _apply(self, at: datetime, weights: dict[str, float]) -> None:
        self.weights = {k: v for k, v in weights.items() if v > 0}
        self.history.append((at, dict(self.weights)))

    # ------------------------------------------------------------- time passing

    def sync(self) -> None:
        """Bring the world up to the clock: traffic shifts, one datapoint per period, alarm evaluation."""
        with self._lock:
            now = self.clock.now()
            if self._next_period is None:
                self._next_period = now.replace(second=0, microsecond=0) + timedelta(seconds=PERIOD)
            while True:
                due = sorted((p for p in self.pending if p.at <= now), key=lambda p: p.at)
                boundary = self._next_period
                if due and due[0].at <= boundary:
                    self._complete(due[0])
                    continue
                if boundary > now:
                    break
                self._emit_period(boundary - timedelta(seconds=PERIOD), boundary)
                self._evaluate_alarms(boundary)
                self._poll_config()
                self._next_period = boundary + timedelta(seconds=PERIOD)

    def _complete(self, shift: _Shift) -> None:
        self.pending.remove(shift)
        self._apply(shift.at, shift.weights)
        if shift.deployment_id and self.codedeploy_backend is not None:
            deployment = self.codedeploy_backend.deployments.get(shift.deployment_id)
            if deployment is not None and deployment.status == "InProgress":
                deployment.status, deployment.complete_time = shift.status or "Succeeded", _moto_time(shift.at)
                self.enqueue(_codedeploy_event(deployment, "SUCCESS", shift.at))

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
        for label, share in self.weights_during(start, end).items():
            requests = round(svc.requests_per_minute * share * PERIOD / 60)
            errors = round(requests * self.error_rate(label, mid, config))
            total_requests += requests
            total_errors += errors
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
            self.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=metric_data)
        if total_requests:
            rate = 100.0 * total_errors / total_requests
            self.datapoints.setdefault((svc.metric_namespace, "ErrorRate"), []).append((start, rate))
            self.cloudwatch.put_metric_data(
                Namespace=svc.metric_namespace,
                MetricData=[
                    {
                        "MetricName": "ErrorRate",
                        "Dimensions": [{"Name": "Service", "Value": svc.function}],
                        "Timestamp": start,
                        "Value": rate,
                        "Unit": "Percent",
                    }
                ],
            )

    # ------------------------------------------------------------- CloudWatch alarm evaluation

    def _evaluate_alarms(self, at: datetime) -> None:
        for alarm in list(self.cloudwatch_backend.alarms.values()):
            if not alarm.metric_name:
                continue
            values = self.datapoints.get((alarm.namespace, alarm.metric_name), [])
            state, breaching, window = evaluate(alarm, values, at)
            previous = alarm.state_value
            if state == previous:
                continue
            reason = (
                f"Threshold Crossed: {breaching} out of the last {alarm.evaluation_periods} datapoints "
                f"were {'greater than' if state == 'ALARM' else 'not greater than'} the threshold "
                f"({alarm.threshold})"
            )
            reason_data = json.dumps(
                {
                    "version": "1.0",
                    "queryDate": aws_time(at),
                    "statistic": alarm.statistic,
                    "period": alarm.period,
                    "threshold": alarm.threshold,
                    "recentDatapoints": [v for v in window if v is not None],
                }
            )
            old = {
                "value": previous,
                "reason": alarm.state_reason,
                "reasonData": alarm.state_reason_data or "{}",
                "timestamp": aws_time(alarm.state_updated_timestamp),
            }
            alarm.update_state(reason, reason_data, state)
            alarm.state_updated_timestamp = _moto_time(at)
            self.outbox.append(
                _state_change_event(
                    alarm,
                    old,
                    {"value": state, "reason": reason, "reasonData": reason_data, "timestamp": aws_time(at)},
                    at,
                )
            )

    def enqueue(self, event: dict[str, Any]) -> None:
        """An event for EventBridge; queued because it may arise inside an AWS request being answered."""
        with self._lock:
            self.outbox.append(event)

    def deliver(self) -> None:
        """Hand queued events to EventBridge (outside any in-flight AWS request)."""
        while True:
            with self._lock:
                if not self.outbox:
                    return
                event = self.outbox.pop(0)
            if self.publish is not None:
                self.publish(event)


_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def evaluate(alarm: Any, values: list[tuple[datetime, float]], at: datetime) -> tuple[str, int, list[float | None]]:
    """CloudWatch's rule: ALARM when at least DatapointsToAlarm of the last EvaluationPeriods periods breach;
    missing periods are treated per TreatMissingData (missing, ignore, breaching, notBreaching)."""
    period = timedelta(seconds=alarm.period)
    by_start = dict(values)
    window: list[float | None] = []
    for i in range(alarm.evaluation_periods, 0, -1):
        window.append(by_start.get(at - i * period))
    needed = alarm.datapoints_to_alarm or alarm.evaluation_periods
    compare = _COMPARE[alarm.comparison_operator]
    treat = alarm.treat_missing_data or "missing"
    breaching = sum(1 for v in window if v is not None and compare(v, alarm.threshold))
    present = sum(1 for v in window if v is not None)
    missing = len(window) - present
    if treat == "breaching":
        breaching += missing
    if breaching >= needed:
        return "ALARM", breaching, window
    if present == 0 and treat in {"missing", "ignore"}:
        return ("INSUFFICIENT_DATA" if treat == "missing" else alarm.state_value), breaching, window
    if treat == "ignore" and present < needed:
        return alarm.state_value, breaching, window
    return "OK", breaching, window


def _codedeploy_event(deployment: Any, state: str, at: datetime) -> dict[str, Any]:
    """CodeDeploy's "Deployment State-change Notification" as EventBridge delivers it."""
    app, group = deployment.application_name, deployment.deployment_group_name
    return {
        "account": "123456789012",
        "region": "us-east-1",
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "version": "0",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "id": str(uuid.uuid4()),
        "resources": [
            f"arn:aws:codedeploy:us-east-1:123456789012:application:{app}",
            f"arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:{app}/{group}",
        ],
        "detail": {
            "instanceGroupId": deployment.deployment_group.deployment_group_id,
            "region": "us-east-1",
            "application": app,
            "deploymentId": deployment.deployment_id,
            "state": state,
            "deploymentGroup": group,
        },
    }


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
                "metrics": [
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
                ],
            },
        },
    }
