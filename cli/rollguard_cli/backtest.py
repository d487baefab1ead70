"""``rollguard backtest``: what a policy would have done over past metric history.

Each policy's trigger alarms are replayed with the evaluator the sandbox uses (alarm_eval.py) over their metric
history — from a file, or read from CloudWatch with GetMetricData — and every would-be firing (a transition to ALARM)
is classified the way Assess would: a change in the policy's scope within ``trigger.require_change_within`` before it
(a CodeDeploy deployment, a flag or configuration change) means Rollguard would have acted, with the ladder's first
step; none means the incident would close without action, which is noise for on-call. With labelled incident
windows, each firing inside one is a true positive (precision), each incident with a firing inside it is detected
(recall), after the time from its start to the first firing (time to detect).

One model (``PolicyBacktest``), three renderings: the text table, ``--json`` and the HTML page (report.py's).
Tuning advice replays threshold alarms at other thresholds and datapoints to alarm; it never changes a policy.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollguard.durations import format_duration

from rollguard_cli.alarm_eval import (
    ALARM,
    AlarmDefinition,
    AlarmNotEvaluable,
    Datapoint,
    bucket,
    index,
    replay,
    with_band,
)
from rollguard_cli.boundary import OperatorError

if TYPE_CHECKING:
    from rollguard.policy import Policy

# GetMetricData returns at most 100,800 datapoints a request ("GetMetricData", CloudWatch API Reference).
MAX_DATAPOINTS_PER_REQUEST = 100_800
# How long CloudWatch keeps data at each resolution (same page): a period needs data at a resolution dividing it.
RETENTION = ((3600, timedelta(days=455)), (300, timedelta(days=63)), (60, timedelta(days=15)), (1, timedelta(hours=3)))
TUNING_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)
CHART_BUCKETS = 720  # the HTML chart draws at most this many points: each the maximum of its span


@dataclass(frozen=True)
class ChangeRow:
    at: datetime
    scope: str  # codedeploy:APP/GROUP, ecs:CLUSTER/SERVICE or appconfig:APP/ENV (rollguard.journal's scope keys)
    change_id: str
    kind: str  # deploy, flag or config
    description: str = ""


@dataclass(frozen=True)
class IncidentWindow:
    start: datetime
    end: datetime
    policy: str | None = None  # None: an incident of every policy


@dataclass
class AlarmHistory:
    definition: AlarmDefinition
    points: dict[datetime, Datapoint]
    _slots: dict[tuple[datetime, int], list[Datapoint | None]] = field(default_factory=dict, repr=False)

    def slots(self, start: datetime, steps: int) -> list[Datapoint | None]:
        """The points indexed by period from ``start`` (alarm_eval.index), once: tuning replays them 15 times."""
        if (start, steps) not in self._slots:
            self._slots[(start, steps)] = index(self.points, start, self.definition.period, steps)
        return self._slots[(start, steps)]


@dataclass(frozen=True)
class Firing:
    alarm: str
    at: datetime
    cleared: datetime | None  # None: still in ALARM at the end of the history
    change: ChangeRow | None  # the newest change in scope within require_change_within before it

    @property
    def would_act(self) -> bool:
        return self.change is not None


@dataclass(frozen=True)
class Score:
    firings: int
    would_act: int
    noise: int
    alarm_minutes: float
    incidents: int | None = None  # None: no incident windows were given
    detected: int | None = None
    precision: float | None = None
    recall: float | None = None
    time_to_detect_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class TuningRow:
    alarm: str
    threshold: float
    datapoints_to_alarm: int
    evaluation_periods: int
    current: bool
    score: Score


@dataclass
class PolicyBacktest:
    policy: str
    first_step: str
    require_change_within_s: int
    scopes: list[str]
    alarms: list[AlarmHistory]
    firings: list[Firing]
    score: Score
    incidents: list[IncidentWindow]
    tuning: list[TuningRow]


@dataclass
class Backtest:
    policy_file: str
    source: str
    start: datetime
    end: datetime
    results: list[PolicyBacktest]


# ---------------------------------------------------------------- the replay


def policy_scopes(policy: Policy) -> list[str]:
    """The change journal's scope keys of what the policy protects (rollguard.journal)."""
    from rollguard.journal import appconfig_scope, codedeploy_scope

    target, scopes = policy.target, []
    if target.codedeploy is not None:
        scopes.append(codedeploy_scope(target.codedeploy.application, target.codedeploy.deployment_group))
    if target.ecs is not None:
        scopes.append(f"ecs:{target.ecs.cluster}/{target.ecs.service}")
    if target.appconfig is not None:
        scopes.append(appconfig_scope(target.appconfig.application, target.appconfig.environment))
    return scopes


def firings_of(
    history: AlarmHistory, start: datetime, end: datetime, changes: list[ChangeRow], within: timedelta
) -> list[Firing]:
    """Each transition to ALARM over [start, end], with the change in scope that Assess would blame."""
    definition = history.definition
    aligned = _floor(start, definition.period)
    steps = int((end - aligned).total_seconds()) // definition.period
    transitions = replay(definition, history.slots(aligned, steps), aligned, end)
    out: list[Firing] = []
    for i, t in enumerate(transitions):
        if t.state != ALARM:
            continue
        cleared = transitions[i + 1].at if i + 1 < len(transitions) else None
        blamed = [c for c in changes if t.at - within <= c.at <= t.at]
        out.append(Firing(definition.name, t.at, cleared, max(blamed, key=lambda c: c.at) if blamed else None))
    return out


def score(firings: list[Firing], end: datetime, incidents: list[IncidentWindow] | None) -> Score:
    minutes = sum(((f.cleared or end) - f.at).total_seconds() for f in firings) / 60
    acted = sum(1 for f in firings if f.would_act)
    base = Score(len(firings), acted, len(firings) - acted, round(minutes, 1))
    if incidents is None:
        return base
    inside = [f for f in firings if any(w.start <= f.at <= w.end for w in incidents)]
    detect = []
    for window in incidents:
        first = min((f.at for f in firings if window.start <= f.at <= window.end), default=None)
        if first is not None:
            detect.append((first - window.start).total_seconds())
    return Score(
        base.firings,
        base.would_act,
        base.noise,
        base.alarm_minutes,
        incidents=len(incidents),
        detected=len(detect),
        precision=round(len(inside) / len(firings), 3) if firings else None,
        recall=round(len(detect) / len(incidents), 3) if incidents else None,
        time_to_detect_s=detect,
    )


def tuning(
    history: AlarmHistory,
    start: datetime,
    end: datetime,
    changes: list[ChangeRow],
    within: timedelta,
    incidents: list[IncidentWindow] | None,
) -> list[TuningRow]:
    """The alarm replayed at a few other thresholds (x0.5 … x2) and every M of its N (at most 5): a trade-off table
    for a person to read. Anomaly band alarms get none (their band is CloudWatch's model, not a number to move)."""
    alarm = history.definition
    if alarm.is_band or alarm.threshold is None:
        return []
    thresholds = sorted({alarm.threshold * f for f in TUNING_FACTORS} if alarm.threshold else {0.0})
    ms = sorted({*range(1, min(alarm.evaluation_periods, 5) + 1), alarm.needed})
    rows = []
    for threshold in thresholds:
        for m in ms:
            # replace() keeps the history's slots: the same datapoints, indexed once
            variant = replace(history, definition=alarm.with_trigger(threshold=threshold, datapoints_to_alarm=m))
            found = firings_of(variant, start, end, changes, within)
            current = threshold == alarm.threshold and m == alarm.needed
            rows.append(
                TuningRow(alarm.name, threshold, m, alarm.evaluation_periods, current, score(found, end, incidents))
            )
    return rows


def run_backtest(
    policies: list[Policy],
    histories: dict[str, AlarmHistory],
    start: datetime,
    end: datetime,
    changes: list[ChangeRow],
    incidents: list[IncidentWindow] | None,
) -> list[PolicyBacktest]:
    from rollguard.actions import action_for

    results = []
    for policy in policies:
        alarms = [h for name, h in sorted(histories.items()) if policy.matches(name)]
        if not alarms:
            raise OperatorError(
                f"policy {policy.name}: no alarm with history matches its trigger {', '.join(policy.alarm_patterns)}"
            )
        scopes = policy_scopes(policy)
        in_scope = [c for c in changes if c.scope in scopes]
        within = timedelta(seconds=policy.trigger.require_change_within)
        mine = None if incidents is None else [w for w in incidents if w.policy in (None, policy.name)]
        firings = sorted((f for h in alarms for f in firings_of(h, start, end, in_scope, within)), key=lambda f: f.at)
        results.append(
            PolicyBacktest(
                policy=policy.name,
                first_step=action_for(policy.ladder[0].action).describe(policy.ladder[0]),
                require_change_within_s=policy.trigger.require_change_within,
                scopes=scopes,
                alarms=alarms,
                firings=firings,
                score=score(firings, end, mine),
                incidents=mine or [],
                tuning=[row for h in alarms for row in tuning(h, start, end, in_scope, within, mine)],
            )
        )
    return results


def _floor(moment: datetime, seconds: int) -> datetime:
    epoch = moment.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


# ---------------------------------------------------------------- files


def parse_time(text: str, where: str) -> datetime:
    """ISO 8601 with a zone (``2025-03-04T12:00:00Z``, ``…+02:00``) or seconds since the epoch."""
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise OperatorError(f"{where}: {text!r} is not a time (ISO 8601 with a zone, or epoch seconds)") from None
    if moment.tzinfo is None:
        raise OperatorError(f"{where}: {text!r} has no time zone: add Z for UTC")
    return moment.astimezone(UTC)


def read_rows(path: Path, required: tuple[str, ...], key: str) -> list[tuple[str, dict[str, Any]]]:
    """The rows of a CSV file (with a header) or a JSON file (a list of objects, or ``{key: [...]}``), each with
    where it came from (``FILE: line N`` / ``FILE: KEY[i]``) for the error that names it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OperatorError(f"cannot read {path}: {exc}") from exc
    rows: list[tuple[str, dict[str, Any]]]
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OperatorError(f"{path}: not JSON: {exc}") from exc
        items = doc.get(key) if isinstance(doc, dict) else doc
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise OperatorError(f"{path}: expected a list of objects, or an object with {key!r}: a list of objects")
        rows = [(f"{path}: {key}[{i}]", item) for i, item in enumerate(items)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise OperatorError(f"{path}: empty; expected a header line with {', '.join(required)}")
        rows = [(f"{path}: line {reader.line_num}", dict(row)) for row in reader]
        if None in (reader.fieldnames or []):
            raise OperatorError(f"{path}: the header has an empty column name")
    for where, row in rows:
        if None in row:  # a CSV line with more cells than the header
            raise OperatorError(f"{where}: more values than the header has columns")
        lacking = [name for name in required if row.get(name) in (None, "")]
        if lacking:
            raise OperatorError(f"{where}: no {', '.join(lacking)} (needs {', '.join(required)})")
    return rows


def _number(row: dict[str, Any], name: str, where: str) -> float | None:
    raw = row.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise OperatorError(f"{where}: {name} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise OperatorError(f"{where}: {name} {raw!r} is not a finite number")
    return value


def read_alarm_definitions(path: Path) -> dict[str, AlarmDefinition]:
    """DescribeAlarms' output (``aws cloudwatch describe-alarms > FILE``): its ``MetricAlarms``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OperatorError(f"cannot read alarm definitions from {path}: {exc}") from exc
    items = doc.get("MetricAlarms") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise OperatorError(f"{path}: no MetricAlarms list (the output of aws cloudwatch describe-alarms)")
    return _definitions(items, str(path))


def _definitions(items: list[Any], where: str) -> dict[str, AlarmDefinition]:
    out = {}
    for item in items:
        if not isinstance(item, dict):
            raise OperatorError(f"{where}: MetricAlarms holds something that is not an object")
        try:
            definition = AlarmDefinition.from_describe(item)
        except AlarmNotEvaluable as exc:
            raise OperatorError(f"{where}: {exc}") from None
        out[definition.name] = definition
    return out


def defined_alarms(policies: list[Policy]) -> dict[str, AlarmDefinition]:
    """The alarms the policies define (trigger.define), as ``rollguard triggers emit`` declares them: the same
    PutMetricAlarm parameters, read the way a DescribeAlarms item is."""
    from rollguard_cli.triggers import alarm_properties

    return {
        d.name: d
        for d in (
            AlarmDefinition.from_describe(alarm_properties(policy, k))
            for policy in policies
            for k in range(len(policy.trigger.define))
        )
    }


def read_metrics_file(
    path: Path, definitions: dict[str, AlarmDefinition] | None, defined: dict[str, AlarmDefinition] | None = None
) -> tuple[dict[str, AlarmHistory], datetime, datetime]:
    """Datapoints (``timestamp,alarm,value`` and optionally ``samples``, ``lower``, ``upper``) grouped into each
    alarm's periods; a JSON file may carry the definitions too (``MetricAlarms``); ``defined``: the alarms the policies
    define, whose rows carry the watched series' value (for a ratio, the computed percentage). A band alarm's rows
    without lower/upper get the band modelled from the series (alarm_eval.with_band). Returns the histories and the
    window they cover."""
    known = dict(definitions or {})
    if path.suffix.lower() == ".json" and definitions is None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OperatorError(f"cannot read {path}: {exc}") from exc
        if isinstance(doc, dict) and isinstance(doc.get("MetricAlarms"), list):
            known = _definitions(doc["MetricAlarms"], str(path))
    known |= defined or {}
    if not known:
        raise OperatorError(
            f"{path}: no alarm definitions: give --alarms FILE (aws cloudwatch describe-alarms output) or put "
            "MetricAlarms in the JSON metrics file"
        )
    raw: dict[str, list[Datapoint]] = {}
    for where, row in read_rows(path, ("timestamp", "alarm", "value"), "datapoints"):
        name = str(row["alarm"])
        if name not in known:
            raise OperatorError(f"{where}: alarm {name!r} has no definition (known: {', '.join(sorted(known))})")
        at = parse_time(str(row["timestamp"]), where)
        value = _number(row, "value", where)
        samples = _number(row, "samples", where)
        if samples is not None and (samples < 1 or samples != int(samples)):
            raise OperatorError(f"{where}: samples {row['samples']!r} is not a whole number of at least 1")
        assert value is not None
        raw.setdefault(name, []).append(
            Datapoint(at, value, int(samples or 1), _number(row, "lower", where), _number(row, "upper", where))
        )
    if not raw:
        raise OperatorError(f"{path}: no datapoints")
    histories = {name: _history(known[name], bucket(known[name], rows)) for name, rows in raw.items()}
    start = min(p for h in histories.values() for p in h.points)
    end = max(p + timedelta(seconds=h.definition.period) for h in histories.values() for p in h.points)
    return histories, start, end


def _history(definition: AlarmDefinition, points: dict[datetime, Datapoint]) -> AlarmHistory:
    if definition.is_band and not any(p.upper is not None for p in points.values()):
        points = with_band(points, definition.period, definition.band_width)
    return AlarmHistory(definition, points)


def read_changes_file(path: Path) -> list[ChangeRow]:
    """``timestamp,scope,id`` and optionally ``kind`` (deploy, flag, config; default: deploy for codedeploy/ecs
    scopes, config for appconfig) and ``description``."""
    out = []
    for where, row in read_rows(path, ("timestamp", "scope", "id"), "changes"):
        scope = str(row["scope"])
        if not scope.startswith(("codedeploy:", "ecs:", "appconfig:")):
            raise OperatorError(
                f"{where}: scope {scope!r} is not codedeploy:APP/GROUP, ecs:CLUSTER/SERVICE or appconfig:APP/ENV"
            )
        kind = str(row.get("kind") or ("config" if scope.startswith("appconfig:") else "deploy"))
        if kind not in ("deploy", "flag", "config"):
            raise OperatorError(f"{where}: kind {kind!r} is not deploy, flag or config")
        at = parse_time(str(row["timestamp"]), where)
        out.append(ChangeRow(at, scope, str(row["id"]), kind, str(row.get("description") or "")))
    return out


def read_incidents_file(path: Path, policy_names: Iterable[str]) -> list[IncidentWindow]:
    """``start,end`` and optionally ``policy`` (default: an incident of every policy)."""
    names = set(policy_names)
    out = []
    for where, row in read_rows(path, ("start", "end"), "incidents"):
        start, end = parse_time(str(row["start"]), where), parse_time(str(row["end"]), where)
        if end < start:
            raise OperatorError(f"{where}: end {row['end']} is before start {row['start']}")
        policy = str(row.get("policy") or "") or None
        if policy is not None and policy not in names:
            raise OperatorError(f"{where}: no policy {policy!r} in the policy file")
        out.append(IncidentWindow(start, end, policy))
    return out


# ---------------------------------------------------------------- from a stack


def retention_for(period: int) -> timedelta:
    """How far back CloudWatch has data at ``period``: the longest retention of a resolution that divides it."""
    return next(kept for resolution, kept in RETENTION if period % resolution == 0)


def find_alarms(cloudwatch: Any, patterns: list[str]) -> list[dict[str, Any]]:
    """The metric alarms the trigger names (literal names, or globs read by prefix), from DescribeAlarms, paginated."""
    found: dict[str, dict[str, Any]] = {}
    paginator = cloudwatch.get_paginator("describe_alarms")
    literal = [p for p in patterns if not any(ch in p for ch in "*?[")]
    for i in range(0, len(literal), 100):  # AlarmNames takes up to 100 names
        for page in paginator.paginate(AlarmNames=literal[i : i + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
            for item in page.get("MetricAlarms", []):
                found[item["AlarmName"]] = item
            for item in page.get("CompositeAlarms", []):
                raise OperatorError(f"alarm {item['AlarmName']} is a composite alarm: backtest replays metric alarms")
    for pattern in (p for p in patterns if p not in literal):
        prefix = pattern[: min(pattern.index(ch) for ch in "*?[" if ch in pattern)]
        kwargs: dict[str, Any] = {"AlarmNamePrefix": prefix} if prefix else {}
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"], **kwargs):
            for item in page.get("MetricAlarms", []):
                if fnmatch.fnmatchcase(item["AlarmName"], pattern):
                    found[item["AlarmName"]] = item
    missing = [name for name in literal if name not in found]
    if missing:
        raise OperatorError(f"no alarm {', '.join(missing)} in this account and region (DescribeAlarms)")
    return list(found.values())


def read_metric_history(
    cloudwatch: Any, alarm: AlarmDefinition, start: datetime, end: datetime
) -> dict[datetime, Datapoint]:
    """The alarm's statistic per period over [start, end) from GetMetricData (and SampleCount, when a percentile
    alarm ignores low samples), in requests of at most 100,800 datapoints, each paginated with NextToken."""
    metric = {
        "Namespace": alarm.namespace,
        "MetricName": alarm.metric_name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in alarm.dimensions],
    }
    queries: list[dict[str, Any]] = [
        {"Id": "v", "MetricStat": {"Metric": metric, "Period": alarm.period, "Stat": alarm.statistic}}
    ]
    if alarm.metrics:  # metric math: the alarm's own queries, CloudWatch computing them; the band left out
        queries = [_query(q, q == alarm.watched) for q in alarm.metrics if q.id != alarm.threshold_metric_id]
    if alarm.low_sample_floor is not None:
        queries.append({"Id": "n", "MetricStat": {"Metric": metric, "Period": alarm.period, "Stat": "SampleCount"}})
    span = timedelta(seconds=alarm.period * (MAX_DATAPOINTS_PER_REQUEST // len(queries)))
    values: dict[str, dict[datetime, float]] = {"v": {}, "n": {}}
    paginator = cloudwatch.get_paginator("get_metric_data")
    cursor = start
    while cursor < end:
        upto = min(end, cursor + span)
        for page in paginator.paginate(
            MetricDataQueries=queries, StartTime=cursor, EndTime=upto, ScanBy="TimestampAscending"
        ):
            for result in page["MetricDataResults"]:
                key = "n" if result["Id"] == "n" else "v"  # the watched query, whatever its Id
                for at, value in zip(result["Timestamps"], result["Values"], strict=True):
                    values[key][at.astimezone(UTC)] = float(value)
        cursor = upto
    return {
        at: Datapoint(at, value, int(values["n"].get(at, 1)) if len(queries) > 1 else 1)
        for at, value in values["v"].items()
    }


def _query(query: Any, returned: bool) -> dict[str, Any]:
    """An alarm's MetricQuery as a GetMetricData query."""
    if query.expression is not None:
        return {"Id": query.id, "Expression": query.expression, "ReturnData": returned}
    metric = {
        "Namespace": query.namespace,
        "MetricName": query.metric_name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in query.dimensions],
    }
    return {
        "Id": query.id,
        "MetricStat": {"Metric": metric, "Period": query.period, "Stat": query.stat},
        "ReturnData": returned,
    }


def read_stack(
    session: Any, stack: str, policies: list[Policy], days: int
) -> tuple[dict[str, AlarmHistory], list[ChangeRow], datetime, datetime]:
    """The policies' alarms (DescribeAlarms) and their history (GetMetricData) over the last ``days`` days, and the
    changes in their scopes: CodeDeploy's deployments and the stack's change journal (its ChangesTableName)."""
    from rollguard import clock
    from rollguard.adapters.codedeploy import CodeDeploy
    from rollguard.journal import Journal

    from rollguard_cli.review import stack_outputs

    outputs = stack_outputs(session.client("cloudformation"), stack, ("ChangesTableName",))
    cloudwatch = session.client("cloudwatch")
    end = _floor(clock.now(), 60)
    start = end - timedelta(days=days)
    items = find_alarms(cloudwatch, sorted({p for policy in policies for p in policy.alarm_patterns}))
    histories = {}
    for name, definition in _definitions(items, "DescribeAlarms").items():
        if definition.is_band and not definition.metrics:
            raise OperatorError(f"alarm {name}: a band comparison without its ANOMALY_DETECTION_BAND query in Metrics")
        kept = retention_for(definition.period)
        if timedelta(days=days) > kept:
            raise OperatorError(
                f"alarm {name} has a {definition.period}s period: CloudWatch keeps data at that resolution "
                f"{format_duration(kept.total_seconds())}; give --days {max(1, kept.days)} or less"
            )
        aligned = _floor(start, definition.period)
        # A band alarm's band is modelled from the history read (alarm_eval.with_band): CloudWatch's model is not public
        histories[name] = _history(definition, read_metric_history(cloudwatch, definition, aligned, end))
    changes: dict[tuple[str, str], ChangeRow] = {}
    codedeploy = CodeDeploy(session.client("codedeploy"))
    for policy in policies:
        target = policy.target.codedeploy
        if target is not None:
            for ref in codedeploy.deployments(target.application, target.deployment_group, since=start):
                scope = policy_scopes(policy)[0]
                at = parse_time(ref.create_time, "CodeDeploy")
                changes[(scope, ref.deployment_id)] = ChangeRow(
                    at, scope, ref.deployment_id, "deploy", f"revision {ref.revision_label} ({ref.status})"
                )
    journal = Journal(session.client("dynamodb"), outputs["ChangesTableName"])
    scopes = sorted({s for policy in policies for s in policy_scopes(policy)})
    for change in journal.changes(scopes, clock.iso(start), clock.iso(end)):
        changes.setdefault(
            (change.scope_key, change.change_id),
            ChangeRow(change.started, change.scope_key, change.change_id, change.kind, change.describe()),
        )
    return histories, sorted(changes.values(), key=lambda c: c.at), start, end


# ---------------------------------------------------------------- renderings


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ttd(score: Score) -> str:
    if not score.time_to_detect_s:
        return "-"
    median = statistics.median(score.time_to_detect_s)
    return f"median {format_duration(median)}, max {format_duration(max(score.time_to_detect_s))}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


SUMMARY_HEADER = [
    "policy",
    "alarms",
    "firings",
    "would act",
    "noise",
    "alarm-min",
    "precision",
    "recall",
    "time to detect",
]
TUNING_HEADER = ["alarm", "threshold", "M of N", "firings", "would act", "noise", "alarm-min", "precision", "recall"]
FIRING_HEADER = ["fired", "for", "alarm", "outcome"]


def summary_row(result: PolicyBacktest) -> list[str]:
    s = result.score
    alarms = ", ".join(h.definition.name for h in result.alarms)
    return [result.policy, alarms, *_score_cells(s), _ttd(s)]


def _score_cells(s: Score) -> list[str]:
    """firings, would act, noise, alarm-min, precision, recall: the columns the summary and tuning tables share."""
    return [str(s.firings), str(s.would_act), str(s.noise), f"{s.alarm_minutes:g}", _pct(s.precision), _pct(s.recall)]


def firing_row(result: PolicyBacktest, firing: Firing) -> list[str]:
    lasted = (
        "still in ALARM" if firing.cleared is None else format_duration((firing.cleared - firing.at).total_seconds())
    )
    if firing.change is not None:
        age = format_duration((firing.at - firing.change.at).total_seconds())
        what = firing.change.description or firing.change.kind
        outcome = f"would act: {result.first_step} — {firing.change.change_id} ({what}) {age} before"
    else:
        window = format_duration(result.require_change_within_s)
        outcome = f"noise: closed without action (no change in {', '.join(result.scopes) or 'scope'} within {window})"
    return [_iso(firing.at) or "", lasted, firing.alarm, outcome]


def tuning_row(row: TuningRow) -> list[str]:
    s = row.score
    mark = " (current)" if row.current else ""
    return [
        row.alarm,
        f"{row.threshold:g}{mark}",
        f"{row.datapoints_to_alarm} of {row.evaluation_periods}",
        *_score_cells(s),
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def title(backtest: Backtest) -> str:
    span = backtest.end - backtest.start
    days = f"{span.days}d" if span % timedelta(days=1) == timedelta(0) else format_duration(span.total_seconds())
    return (
        f"Backtest of {backtest.policy_file} over {_iso(backtest.start)} – {_iso(backtest.end)} ({days}, "
        f"{backtest.source})"
    )


def render_text(backtest: Backtest) -> str:
    out = [title(backtest), ""]
    out += _table(SUMMARY_HEADER, [summary_row(r) for r in backtest.results])
    for result in backtest.results:
        out += ["", f"{result.policy}: {len(result.firings)} would-be firings (first step: {result.first_step})"]
        for history in result.alarms:
            out.append(f"  {history.definition.name}: {history.definition.describe()}")
        if result.firings:
            out += ["  " + line for line in _table(FIRING_HEADER, [firing_row(result, f) for f in result.firings])]
        if result.tuning:
            out += [
                "",
                f"{result.policy}: tuning advice — firings at other thresholds and datapoints to alarm "
                "(nothing is changed: edit the alarm yourself if a row suits you better)",
            ]
            out += ["  " + line for line in _table(TUNING_HEADER, [tuning_row(r) for r in result.tuning])]
    return "\n".join(out) + "\n"


def _score_json(s: Score) -> dict[str, Any]:
    return {
        "firings": s.firings,
        "would_act": s.would_act,
        "noise": s.noise,
        "alarm_minutes": s.alarm_minutes,
        "incidents": s.incidents,
        "detected": s.detected,
        "precision": s.precision,
        "recall": s.recall,
        "time_to_detect_s": s.time_to_detect_s,
    }


def to_json(backtest: Backtest) -> dict[str, Any]:
    return {
        "policy_file": backtest.policy_file,
        "source": backtest.source,
        "start": _iso(backtest.start),
        "end": _iso(backtest.end),
        "policies": [
            {
                "policy": r.policy,
                "first_step": r.first_step,
                "require_change_within_s": r.require_change_within_s,
                "scopes": r.scopes,
                "alarms": [
                    {"name": h.definition.name, "definition": h.definition.describe(), "datapoints": len(h.points)}
                    for h in r.alarms
                ],
                "summary": _score_json(r.score),
                "firings": [
                    {
                        "alarm": f.alarm,
                        "at": _iso(f.at),
                        "cleared": _iso(f.cleared),
                        "would_act": f.would_act,
                        "step": r.first_step if f.would_act else None,
                        "change": None
                        if f.change is None
                        else {
                            "at": _iso(f.change.at),
                            "scope": f.change.scope,
                            "id": f.change.change_id,
                            "kind": f.change.kind,
                            "description": f.change.description,
                        },
                    }
                    for f in r.firings
                ],
                "tuning": [
                    {
                        "alarm": t.alarm,
                        "threshold": t.threshold,
                        "datapoints_to_alarm": t.datapoints_to_alarm,
                        "evaluation_periods": t.evaluation_periods,
                        "current": t.current,
                    }
                    | _score_json(t.score)
                    for t in r.tuning
                ],
            }
            for r in backtest.results
        ],
    }


def _downsample(points: dict[datetime, Datapoint], start: datetime, end: datetime) -> tuple[list[Any], list[Any], int]:
    """At most CHART_BUCKETS points, each the maximum of its span (a spike stays visible), the band's widest."""
    span = max(60, math.ceil((end - start).total_seconds() / CHART_BUCKETS / 60) * 60)
    groups: dict[datetime, list[Datapoint]] = {}
    for at, point in sorted(points.items()):
        groups.setdefault(start + (at - start) // timedelta(seconds=span) * timedelta(seconds=span), []).append(point)
    series = [(at, max(p.value for p in group)) for at, group in groups.items()]
    band = [
        (at, min(p.lower for p in group if p.lower is not None), max(p.upper for p in group if p.upper is not None))
        for at, group in groups.items()
        if any(p.lower is not None and p.upper is not None for p in group)
    ]
    return series, band, span


def render_html_page(backtest: Backtest) -> str:
    """report.py's page (its renderer and CSS) with one chart per alarm: report.chart's style, each would-be firing a
    marker (action: would act; alarm: noise), the labelled incidents shaded."""
    from rollguard_cli.chart import Marker, render_svg
    from rollguard_cli.report import Chart, Para, Report, Section, Table, render_html

    sections = [Section("summary", "Summary", [Table(SUMMARY_HEADER, [summary_row(r) for r in backtest.results])])]
    for number, result in enumerate(backtest.results):
        blocks: list[Any] = [Para(f"First step when a change is in scope: {result.first_step}.")]
        for n, history in enumerate(result.alarms):
            definition = history.definition
            series, band, span = _downsample(history.points, backtest.start, backtest.end)
            markers = [
                Marker(f.at, "action" if f.would_act else "alarm", "act" if f.would_act else "noise")
                for f in result.firings
                if f.alarm == definition.name
            ]
            svg = render_svg(
                series,
                threshold=None if definition.is_band else definition.threshold,
                threshold_label=f"threshold {definition.threshold:g}" if definition.threshold is not None else "",
                markers=markers,
                impacts=[(w.start, w.end) for w in result.incidents],
                band=band,
                period=span,
                start=backtest.start,
                end=backtest.end,
                y_label=definition.name,
                y_axis=f"{definition.statistic} of {definition.metric_name or definition.name}",
                svg_id=f"chart-{number}-{n}",
            )
            note = f", each point the maximum of {format_duration(span)}" if span > definition.period else ""
            blocks.append(Chart(svg, f"{definition.name}: {definition.describe()}{note}."))
        if result.firings:
            blocks.append(Table(FIRING_HEADER, [firing_row(result, f) for f in result.firings]))
        if result.tuning:
            blocks.append(
                Para("Tuning advice: firings at other thresholds and datapoints to alarm. Nothing is changed.")
            )
            blocks.append(Table(TUNING_HEADER, [tuning_row(r) for r in result.tuning]))
        sections.append(Section(f"policy-{number}", result.policy, blocks))
    report = Report(
        title=f"Backtest of {backtest.policy_file}", subtitle=title(backtest), outcome="backtest", sections=sections
    )
    return render_html(report)


# ---------------------------------------------------------------- the command


def add_parser(commands: Any) -> None:
    from rollguard_cli.boundary import add_aws_options
    from rollguard_cli.review_commands import positive_int

    parser = commands.add_parser(
        "backtest", help="replay policies' trigger alarms over metric history: how often each would have acted"
    )
    parser.add_argument("--policy", required=True, metavar="FILE", help="the policy file to replay")
    parser.add_argument("--name", metavar="POLICY", help="replay only this policy (default: every policy in FILE)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--metrics", metavar="FILE", help="metric history: CSV or JSON rows of timestamp, alarm, value (see README)"
    )
    source.add_argument(
        "--stack", metavar="NAME", help="a deployed Rollguard stack: alarms, metrics and changes read from AWS"
    )
    parser.add_argument(
        "--days", type=positive_int, metavar="N", help="with --stack: replay the last N days (within retention)"
    )
    parser.add_argument(
        "--alarms", metavar="FILE", help="with --metrics: alarm definitions (aws cloudwatch describe-alarms output)"
    )
    parser.add_argument("--changes", metavar="FILE", help="changes (deployments, flag and config pushes): CSV or JSON")
    parser.add_argument(
        "--incidents", metavar="FILE", help="labelled incident windows (start, end[, policy]) for precision and recall"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of the table")
    parser.add_argument("--html", metavar="OUT", help="also write an HTML page with a chart per alarm (a new file)")
    add_aws_options(parser, "with --stack: the stack's region (default: your AWS configuration's)")
    parser.set_defaults(func=command)


def command(args: Any) -> int:
    from rollguard.policy import load_policy_file

    from rollguard_cli.boundary import check_out_file

    if args.stack is not None and args.days is None:
        raise OperatorError("--stack needs --days N: how many days of history to replay")
    if args.stack is None and args.days is not None:
        raise OperatorError("--days is for --stack; a --metrics file covers the time its rows cover")
    if args.stack is not None and args.alarms is not None:
        raise OperatorError("--alarms is for --metrics; with --stack the alarms are read with DescribeAlarms")
    if args.html:
        check_out_file(Path(args.html), "--html")
    path = Path(args.policy)
    if not path.is_file():
        raise OperatorError(f"--policy {path}: no such file")
    document = load_policy_file(path)  # an invalid file is one error line (PolicyFileInvalid, at the boundary)
    policies = [p.with_defaults(document.defaults) for p in document.policies]
    if args.name is not None:
        policies = [p for p in policies if p.name == args.name]
        if not policies:
            names = ", ".join(p.name for p in document.policies)
            raise OperatorError(f"no policy {args.name!r} in {path} (it has: {names})")
    changes = read_changes_file(Path(args.changes)) if args.changes else []
    if args.metrics is not None:
        definitions = read_alarm_definitions(Path(args.alarms)) if args.alarms else None
        histories, start, end = read_metrics_file(Path(args.metrics), definitions, defined_alarms(policies))
        source = f"metrics from {args.metrics}"
    else:
        import boto3

        histories, found, start, end = read_stack(
            boto3.Session(region_name=args.region), args.stack, policies, args.days
        )
        changes += found
        source = f"stack {args.stack}"
    incidents = read_incidents_file(Path(args.incidents), [p.name for p in policies]) if args.incidents else None
    results = run_backtest(policies, histories, start, end, changes, incidents)
    backtest = Backtest(str(path), source, start, end, results)
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(render_html_page(backtest), encoding="utf-8")
    if args.json:
        print(json.dumps(to_json(backtest), indent=2))
    else:
        print(render_text(backtest), end="")
        if args.html:
            print(f"\nwrote {args.html}")
    return 0
