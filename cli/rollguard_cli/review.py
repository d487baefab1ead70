"""Incident review: where incidents come from, and the facts a reviewer needs from each.

A *source* is either a drill's ``--out`` folder (``FolderSource``) or a deployed stack (``StackSource``:
its CloudFormation outputs name the Incidents and Audit tables; the alarm's metric is read from
CloudWatch). Both hand back the same things — incident records, audit events, the alarm's metric — so
``rollguard incidents``, ``timeline`` and ``report`` work the same on either.

``Review`` derives the times everyone asks about, all measured from the alarm's *onset* (the timestamp of
its transition to ALARM): time to first action (mitigation started), time to recovery (the verdict that
resolved the incident), and from the metric, when the impact began and ended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field
from rollguard.adapters.cloudwatch import CloudWatch
from rollguard.adapters.dynamo import from_item
from rollguard.alarm_event import parse_aws_time
from rollguard.audit import AuditLog
from rollguard.clock import iso
from rollguard.durations import format_duration
from rollguard.errors import RollguardError
from rollguard.incident import IncidentItem

from rollguard_cli.boundary import OperatorError

# How much of the metric before the alarm a review shows: enough to see the change that tripped it.
LEAD_IN = timedelta(minutes=15)

INCIDENT_FILE = "incident.json"
AUDIT_FILE = "audit-events.json"
METRIC_FILE = "metric.json"


class ReviewError(OperatorError):
    """Something the operator must fix (a wrong id, folder or stack); one ``error:`` line, exit 2 (boundary.py)."""


class MetricElsewhere(RollguardError):
    """The alarm's metric is in another account than the one the report reads (the review goes on without it)."""


def member_account_of(record: IncidentItem) -> str | None:
    """The member account an incident's target is in (its execution input's location, rollguard.accounts)."""
    location = (record.execution_input or {}).get("location") or {}
    return str(location["account"]) if location.get("role_arn") else None


class MetricSeries(BaseModel):
    """The alarm's metric over the incident: its definition and [timestamp, value] datapoints, oldest first."""

    alarm: str
    label: str
    namespace: str | None = None  # None for a metric-math alarm: its series is an expression
    metric_name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    statistic: str = ""
    unit: str | None = None  # the alarm's Unit; None when its definition names none (CloudWatch does not say then)
    period: int = 60
    threshold: float | None = None
    comparison: str | None = None
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    start: str
    end: str
    datapoints: list[tuple[str, float]] = Field(default_factory=list)

    def points(self) -> list[tuple[datetime, float]]:
        return [(parse_aws_time(t), v) for t, v in self.datapoints]

    def breaches(self, value: float) -> bool:
        if self.threshold is None or self.comparison is None:
            return False
        return {
            "GreaterThanThreshold": value > self.threshold,
            "GreaterThanOrEqualToThreshold": value >= self.threshold,
            "LessThanThreshold": value < self.threshold,
            "LessThanOrEqualToThreshold": value <= self.threshold,
        }.get(self.comparison, False)


_SYMBOL = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": "≥",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "≤",
}


def comparison_symbol(comparison: str | None) -> str:
    return _SYMBOL.get(comparison or "", comparison or "?")


def _aligned(moment: datetime, period: int, up: bool) -> datetime:
    """Period boundaries: CloudWatch buckets from StartTime, so an unaligned start shifts every bucket."""
    epoch = moment.timestamp()
    floor = epoch - epoch % period
    return datetime.fromtimestamp(floor + (period if up and floor < epoch else 0), UTC)


def read_alarm_metric(cloudwatch: Any, alarm_name: str, start: datetime, end: datetime) -> MetricSeries | None:
    """The alarm's definition (DescribeAlarms) and its metric between ``start`` and ``end`` (GetMetricData).

    None for a composite alarm, which has no metric of its own. A metric-math alarm is read through its own
    queries (on AWS; moto has no metric math), and its returned expression is the series.
    """
    alarm = CloudWatch(cloudwatch).alarm(alarm_name)
    if alarm.composite:
        return None
    if alarm.metric_stat:
        stat = alarm.metric_stat
        metric = stat["Metric"]
        dims = ", ".join(f"{d['Name']}={d['Value']}" for d in metric.get("Dimensions", []))
        label = f"{metric['Namespace']}/{metric['MetricName']}" + (f" ({dims})" if dims else "")
        queries = [{"Id": "alarm_metric", "MetricStat": stat, "ReturnData": True}]
        statistic = str(stat["Stat"])
        identity: dict[str, Any] = {
            "namespace": metric["Namespace"],
            "metric_name": metric["MetricName"],
            "dimensions": {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
        }
    else:
        queries = alarm.watched_queries()  # the series compared, without an anomaly band's query
        returned: dict[str, Any] = next((q for q in queries if q["ReturnData"]), {})
        label = str(returned.get("Label") or returned.get("Expression") or "metric math")
        statistic = "expression"
        identity = {}
    period = alarm.period
    first, last = _aligned(start, period, up=False), _aligned(end, period, up=True)
    points: dict[str, list[tuple[datetime, float]]] = {}
    pages = cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, StartTime=first, EndTime=last, ScanBy="TimestampAscending"
    )
    for page in pages:
        for result in page["MetricDataResults"]:
            points.setdefault(result["Id"], []).extend(zip(result["Timestamps"], result["Values"], strict=True))
    returned_id = next((q["Id"] for q in queries if q.get("ReturnData", True)), "alarm_metric")
    series = sorted(points.get(returned_id, []))
    return MetricSeries(
        alarm=alarm_name,
        label=label,
        **identity,
        statistic=statistic,
        period=period,
        threshold=alarm.threshold,
        comparison=alarm.comparison,
        evaluation_periods=alarm.evaluation_periods,
        datapoints_to_alarm=alarm.datapoints_to_alarm,
        unit=alarm.unit,
        start=iso(first),
        end=iso(last),
        datapoints=[(iso(t), float(v)) for t, v in series],
    )


# ---------------------------------------------------------------- what the audit trail says


def timeline_onset(audit: list[dict[str, Any]]) -> datetime | None:
    """What a timeline measures T from: the alarm's state change, else the first audit event."""
    onset_text = next(
        (e["parameters"]["state_timestamp"] for e in audit if e["kind"] == "alarm_received"),
        audit[0]["at"] if audit else None,
    )
    return parse_aws_time(onset_text) if onset_text else None


def timeline_line(at: str, kind: str, summary: str, onset: datetime | None) -> str:
    """One line of a timeline: a drill's, printed at the end or streamed as it runs, and ``timeline --follow``'s."""
    offset = (parse_aws_time(at) - onset).total_seconds() if onset else 0.0
    sign = "-" if offset < 0 else "+"
    return f"  T{sign}{format_duration(abs(offset)):>6}  {kind:<16} {summary}"


def event_line(event: dict[str, Any], onset: datetime | None) -> str:
    return timeline_line(event["at"], event["kind"], event["summary"], onset)


def alarm_onset(events: list[dict[str, Any]]) -> datetime | None:
    """When the alarm that opened the incident went to ALARM (its state timestamp, not our receipt)."""
    for event in events:
        if event.get("kind") == "alarm_received":
            stamp = event.get("parameters", {}).get("state_timestamp")
            if stamp:
                return parse_aws_time(stamp)
    return None


@dataclass(frozen=True)
class Step:
    """One action and the verdicts of its verification window(s) (a window extended once has two)."""

    action: dict[str, Any]
    verifications: list[dict[str, Any]]

    @property
    def started(self) -> datetime:
        return parse_aws_time(self.action.get("parameters", {}).get("started_at") or self.action["at"])

    @property
    def verdict(self) -> dict[str, Any] | None:
        return self.verifications[-1] if self.verifications else None

    @property
    def title(self) -> str:
        p = self.action.get("parameters", {})
        number = int(p["step"]) + 1 if isinstance(p.get("step"), int) else "?"
        return f"step {number}: {self.what}"

    @property
    def what(self) -> str:
        """``canary rollback``, ``full rollback``; other actions (flag_off, config_revert …) have no real scope."""
        p = self.action.get("parameters", {})
        action = str(p.get("action", "?"))
        return f"{p.get('scope', '')} {action}".strip() if action == "rollback" else action


@dataclass(frozen=True)
class Gate:
    """An approval gate of one ladder step: Rollguard's request and the human's decision (None: nobody answered)."""

    step: int
    requested: dict[str, Any]
    decision: dict[str, Any] | None

    @property
    def verdict(self) -> str | None:
        """``approved`` or ``denied``; None when no decision was recorded (the gate timed out, or is still open)."""
        return str(self.decision.get("result")) if self.decision else None

    @property
    def approver(self) -> str:
        """The human's IAM ARN, as the approval audit event's actor."""
        return str(self.decision.get("actor", "")) if self.decision else ""

    @property
    def decided(self) -> datetime | None:
        return parse_aws_time(self.decision["at"]) if self.decision else None

    @property
    def waited(self) -> float | None:
        """Seconds from the request to the decision."""
        if self.decided is None:
            return None
        return (self.decided - parse_aws_time(self.requested["at"])).total_seconds()


@dataclass(frozen=True)
class Impact:
    """When the metric was on the wrong side of the threshold around the alarm; end None = still breaching."""

    start: datetime
    end: datetime | None
    peak: float
    peak_at: datetime


class Review:
    """An incident and everything known about it, with the derived times."""

    def __init__(
        self,
        record: IncidentItem,
        events: list[dict[str, Any]],
        metric: MetricSeries | None,
        metric_note: str = "",
    ):
        self.record = record
        self.metric_note = metric_note
        self.events = sorted(events, key=lambda e: (e.get("at", ""), e.get("event_key", "")))
        self.metric = metric
        self.opened = parse_aws_time(record.opened_at) if record.opened_at else None
        onset = alarm_onset(self.events)
        self.onset: datetime | None = onset or self.opened
        self.assessment = next((e for e in self.events if e.get("kind") == "assessed"), None)
        self.closing = next((e for e in self.events if e.get("kind") == "incident_closed"), None)
        self.steps = self._pair_steps()
        self.gates = self._pair_gates()
        self.outcome = self.closing["result"] if self.closing else record.status
        self.closed = parse_aws_time(self.closing["at"]) if self.closing else None
        done = [s for s in self.steps if s.action.get("result") == "ok"]
        self.first_action: datetime | None = done[0].started if done else None
        recovered = [v for v in self.events if v.get("kind") == "verification" and v.get("result") == "recovered"]
        self.recovered: datetime | None = (
            parse_aws_time(recovered[-1]["at"]) if recovered and self.outcome == "resolved" else None
        )
        self.impact = self._impact()

    def _pair_steps(self) -> list[Step]:
        actions = [e for e in self.events if e.get("kind") == "action"]
        steps = []
        for i, action in enumerate(actions):
            until = actions[i + 1]["at"] if i + 1 < len(actions) else "~"  # "~" sorts after any timestamp
            step_no = action.get("parameters", {}).get("step")
            verdicts = [
                v
                for v in self.events
                if v.get("kind") == "verification"
                and v.get("parameters", {}).get("step") == step_no
                and action["at"] <= v["at"] <= until
            ]
            steps.append(Step(action, verdicts))
        return steps

    def _pair_gates(self) -> list[Gate]:
        """Each approval request with the first decision on the same step after it."""
        gates = []
        for request in (e for e in self.events if e.get("kind") == "approval_requested"):
            step = request.get("parameters", {}).get("step")
            decision = next(
                (
                    e
                    for e in self.events
                    if e.get("kind") == "approval"
                    and e.get("parameters", {}).get("step") == step
                    and e["at"] >= request["at"]
                ),
                None,
            )
            gates.append(Gate(step if isinstance(step, int) else -1, request, decision))
        return gates

    @property
    def member_account(self) -> str | None:
        """The member account the target is in (the execution input's location), or None at home."""
        return member_account_of(self.record)

    @property
    def region(self) -> str | None:
        """The incident's region: the alarm's (in the execution input), else the execution ARN's."""
        alarm = (self.record.execution_input or {}).get("alarm") or {}
        if isinstance(alarm, dict) and alarm.get("region"):
            return str(alarm["region"])
        parts = (self.record.execution_arn or "").split(":")
        return parts[3] if len(parts) > 3 and parts[3] else None

    def _impact(self) -> Impact | None:
        if self.metric is None or self.onset is None:
            return None
        points = self.metric.points()
        if not points:
            return None
        period = timedelta(seconds=self.metric.period)
        before = [(t, v) for t, v in points if t < self.onset]
        # The impact began after the last healthy datapoint before the alarm.
        healthy = [t for t, v in before if not self.metric.breaches(v)]
        breaching_before = [t for t, v in before if self.metric.breaches(v) and (not healthy or t > healthy[-1])]
        after = [(t, v) for t, v in points if t >= self.onset]
        breaching_after = [t for t, v in after if self.metric.breaches(v)]
        if not breaching_before and not breaching_after:
            return None
        start = breaching_before[0] if breaching_before else breaching_after[0]
        last_breach = max(breaching_before + breaching_after)
        end = None if last_breach == points[-1][0] else last_breach + period
        window = [(t, v) for t, v in points if t >= start and (end is None or t < end)]
        peak_at, peak = max(window, key=lambda p: p[1]) if window else (start, 0.0)
        return Impact(start, end, peak, peak_at)

    def since_onset(self, moment: datetime | None) -> float | None:
        if moment is None or self.onset is None:
            return None
        return (moment - self.onset).total_seconds()

    @property
    def time_to_first_action(self) -> float | None:
        return self.since_onset(self.first_action)

    @property
    def time_to_recovery(self) -> float | None:
        return self.since_onset(self.recovered)

    @property
    def time_to_detect(self) -> float | None:
        """From the first breaching datapoint to the alarm: what the alarm's M-of-N rule costs."""
        if self.impact is None or self.onset is None:
            return None
        return (self.onset - self.impact.start).total_seconds()

    def offset(self, moment: datetime) -> str:
        """``T+5m02s`` relative to the onset."""
        seconds = self.since_onset(moment)
        if seconds is None:
            return ""
        if abs(seconds) < 0.05:
            return "T+0"
        return f"T{'-' if seconds < 0 else '+'}{span(abs(seconds))}"


def span(seconds: float | None) -> str:
    """A short duration for people: ``1.5s``, ``5m02s``, ``2h03m``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    whole = int(round(seconds))
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# ---------------------------------------------------------------- sources


class Source(Protocol):
    def describe(self) -> str: ...

    def incidents(self, since: datetime | None = None, target: str | None = None) -> list[IncidentItem]: ...

    def incident(self, incident_id: str) -> IncidentItem: ...

    def audit(self, incident_id: str) -> list[dict[str, Any]]: ...

    def metric(self, record: IncidentItem, events: list[dict[str, Any]]) -> MetricSeries | None: ...


def load_review(source: Source, incident_id: str) -> Review:
    from botocore.exceptions import ClientError
    from rollguard.errors import RollguardError

    record = source.incident(incident_id)
    events = source.audit(incident_id)
    try:
        metric, note = source.metric(record, events), ""
    except (RollguardError, ClientError) as exc:
        # The alarm may have been deleted or renamed since: the review is still worth having without its chart.
        metric, note = None, f"the alarm's metric could not be read: {exc}"
    return Review(record, events, metric, metric_note=note)


def newest_first(records: list[IncidentItem], since: datetime | None, target: str | None) -> list[IncidentItem]:
    cutoff = iso(since) if since else ""
    kept = [r for r in records if r.opened_at >= cutoff and (target is None or r.target_key == target)]
    # The id breaks a tie (two drills' simulated clocks can open incidents in the same millisecond), so a stack and a
    # folder of the same incidents list them in the same order.
    return sorted(kept, key=lambda r: (r.opened_at, r.incident_id), reverse=True)


class FolderSource:
    """``rollguard drill NAME --out DIR`` folders: DIR itself, or every folder directly inside it."""

    def __init__(self, root: Path):
        self.root = root
        if not root.is_dir():
            raise ReviewError(f"{root} is not a folder (write one with: rollguard drill NAME --out {root})")
        candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
        self.folders = {}
        for folder in candidates:
            if (folder / AUDIT_FILE).is_file():
                events = self._read(folder / AUDIT_FILE)
                if events:
                    self.folders[events[0]["incident_id"]] = folder
        if not self.folders:
            raise ReviewError(f"no drill output in {root}: expected {AUDIT_FILE} in it or in a folder inside it")

    def describe(self) -> str:
        return f"drill output in {self.root}"

    @staticmethod
    def _read(path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReviewError(f"cannot read {path}: {exc}") from exc

    def _folder(self, incident_id: str) -> Path:
        if incident_id not in self.folders:
            known = ", ".join(sorted(self.folders))
            raise ReviewError(f"no incident {incident_id} in {self.root} (it holds: {known})")
        return self.folders[incident_id]

    def incidents(self, since: datetime | None = None, target: str | None = None) -> list[IncidentItem]:
        return newest_first([self.incident(i) for i in self.folders], since, target)

    def incident(self, incident_id: str) -> IncidentItem:
        folder = self._folder(incident_id)
        if (folder / INCIDENT_FILE).is_file():
            return IncidentItem.model_validate(self._read(folder / INCIDENT_FILE))
        return _record_from_audit(self.audit(incident_id))  # folders written before incident.json existed

    def audit(self, incident_id: str) -> list[dict[str, Any]]:
        return list(self._read(self._folder(incident_id) / AUDIT_FILE))

    def metric(self, record: IncidentItem, events: list[dict[str, Any]]) -> MetricSeries | None:
        path = self._folder(record.incident_id) / METRIC_FILE
        return MetricSeries.model_validate(self._read(path)) if path.is_file() else None


def _record_from_audit(events: list[dict[str, Any]]) -> IncidentItem:
    first = events[0]
    closing = next((e for e in events if e["kind"] == "incident_closed"), None)
    alarm = next((e["parameters"].get("alarm", "") for e in events if e["kind"] == "alarm_received"), "")
    return IncidentItem(
        incident_id=first["incident_id"],
        policy=first["incident_id"].rsplit("-", 2)[0],  # ids are <policy>-<UTC time>-<hash>
        target_key=first["target_key"],
        alarm=alarm,
        status=closing["result"] if closing else "open",
        opened_at=first["at"],
        closed_at=closing["at"] if closing else None,
        outcome_reason=closing["reason"] if closing else "",
    )


def stack_outputs(cloudformation: Any, stack: str, required: tuple[str, ...]) -> dict[str, str]:
    """A deployed Rollguard stack's outputs (table names, topic, state machine), checked for ``required``."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise ReviewError(f"cannot read stack {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [name for name in required if name not in outputs]
    if missing:
        raise ReviewError(f"stack {stack} has no output {', '.join(missing)}: is it a Rollguard stack?")
    return outputs


class StackSource:
    """A deployed Rollguard stack: tables named by its outputs, the alarm's metric read live."""

    REQUIRED_OUTPUTS = ("IncidentsTableName", "AuditTableName")

    def __init__(self, stack: str, session: Any):
        self.stack = stack
        self._session = session
        self._clients: dict[str, Any] = {}
        self.outputs = self._outputs()

    def describe(self) -> str:
        return f"stack {self.stack} ({self.outputs['IncidentsTableName']}, {self.outputs['AuditTableName']})"

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    def _outputs(self) -> dict[str, str]:
        return stack_outputs(self._client("cloudformation"), self.stack, self.REQUIRED_OUTPUTS)

    def incidents(self, since: datetime | None = None, target: str | None = None) -> list[IncidentItem]:
        ddb = self._client("dynamodb")
        table = self.outputs["IncidentsTableName"]
        # DynamoDB rejects an empty string in a key condition: with no --since, leave the bound out.
        values: dict[str, Any] = {":since": {"S": iso(since)}} if since else {}
        if target:
            # The by_target index answers "this target's incidents over time" without a scan.
            values[":t"] = {"S": target}
            pages = ddb.get_paginator("query").paginate(
                TableName=table,
                IndexName="by_target",
                KeyConditionExpression="target_key = :t" + (" AND opened_at >= :since" if since else ""),
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
            )
        else:
            # Across targets there is no key to query by; incidents are few, so a (filtered) scan is cheap.
            scan: dict[str, Any] = {"TableName": table}
            if since:
                scan.update(FilterExpression="opened_at >= :since", ExpressionAttributeValues=values)
            pages = ddb.get_paginator("scan").paginate(**scan)
        records = [IncidentItem.model_validate(from_item(item)) for page in pages for item in page["Items"]]
        return newest_first(records, since, target)

    def incident(self, incident_id: str) -> IncidentItem:
        item = (
            self._client("dynamodb")
            .get_item(TableName=self.outputs["IncidentsTableName"], Key={"incident_id": {"S": incident_id}})
            .get("Item")
        )
        if not item:
            raise ReviewError(f"no incident {incident_id} in {self.outputs['IncidentsTableName']}")
        return IncidentItem.model_validate(from_item(item))

    def audit(self, incident_id: str) -> list[dict[str, Any]]:
        return AuditLog(self._client("dynamodb"), self.outputs["AuditTableName"]).for_incident(incident_id)

    def metric(self, record: IncidentItem, events: list[dict[str, Any]]) -> MetricSeries | None:
        """The alarm's metric, read with the operator's credentials in the alarm's region. An alarm of a member
        account is not read: it is not in this account, and an alarm of the same name here would be another's."""
        onset = alarm_onset(events) or (parse_aws_time(record.opened_at) if record.opened_at else None)
        if not record.alarm or onset is None:
            return None
        member = member_account_of(record)
        if member is not None:
            raise MetricElsewhere(
                f"alarm {record.alarm} is in member account {member}; the report reads metrics in this account only"
            )
        end = parse_aws_time(record.closed_at) if record.closed_at else datetime.now(UTC)
        region = ((record.execution_input or {}).get("location") or {}).get("region")
        cloudwatch = self._session.client("cloudwatch", region_name=region) if region else self._client("cloudwatch")
        return read_alarm_metric(cloudwatch, record.alarm, onset - LEAD_IN, end)
