"""The numbers behind Rollguard's own metrics, computed here so that handlers only emit them (EMF).

Durations are measured from the alarm's onset, the timestamp of its transition to ALARM, not from when
Rollguard heard of it: EventBridge delivery and intake are part of what a responder waits for.
The dashboard in template.yaml charts these names; change them together.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from rollguard import clock
from rollguard.clock import parse_aws_time
from rollguard.incident import CloseResult, ExecutionState, Progress

ACTIONS = "Actions"
TIME_TO_FIRST_ACTION = "TimeToFirstAction"
TIME_TO_RECOVERY = "TimeToRecovery"
OUTCOME_METRICS = {
    "resolved": "IncidentsResolved",
    "escalated": "IncidentsEscalated",  # the escalation count: every escalation closes its incident
    "closed_no_action": "IncidentsClosedNoAction",
}


@dataclass(frozen=True)
class Measure:
    name: str
    value: float
    unit: Literal["Count", "Seconds"] = "Count"


@dataclass(frozen=True)
class Telemetry:
    """What one invocation emits: measures sharing one dimension set (Powertools' EMF has one per blob)."""

    measures: list[Measure]
    dimensions: dict[str, str] = field(default_factory=dict)


def seconds_since_onset(state_timestamp: str, now: datetime | None = None) -> float:
    elapsed = ((now or clock.now()) - parse_aws_time(state_timestamp)).total_seconds()
    # CloudWatch's and Lambda's clocks may disagree by a little; a negative duration would only mislead.
    return round(max(elapsed, 0.0), 3)


def after_action(state: ExecutionState, progress: Progress, now: datetime | None = None) -> Telemetry:
    """A step was taken: count it by action, scope and result; on the incident's first step, time to it."""
    measures = [Measure(ACTIONS, 1)]
    if state.progress is None:  # no earlier step in this execution: this is the first action
        measures.append(Measure(TIME_TO_FIRST_ACTION, seconds_since_onset(state.alarm.state_timestamp, now), "Seconds"))
    return Telemetry(measures, {"action": progress.action, "scope": progress.scope, "result": "ok"})


def failed_action(state: ExecutionState, error: Exception) -> Telemetry:
    """A step raised: count the attempt with the error's name (the name the state machine sees) as result."""
    previous = state.progress
    # The same step choice as remediation.act: the next step the last verification asked for, else the first.
    index = previous.next_step if previous and previous.next_step is not None else 0
    step = state.policy.ladder[min(index, len(state.policy.ladder) - 1)]
    dimensions = {"action": step.action, "scope": step.scope, "result": type(error).__name__}
    return Telemetry([Measure(ACTIONS, 1)], dimensions)


def after_close(state: ExecutionState, result: CloseResult, now: datetime | None = None) -> Telemetry:
    """The incident's outcome; time to recovery when it resolved (Close runs right after the recovery verdict)."""
    measures = [Measure(OUTCOME_METRICS[result.outcome], 1)]
    if result.outcome == "resolved":
        measures.append(Measure(TIME_TO_RECOVERY, seconds_since_onset(state.alarm.state_timestamp, now), "Seconds"))
    return Telemetry(measures)


class MetricSink(Protocol):
    """What ``emit`` needs of Powertools' ``Metrics`` (kept structural so this module imports no Powertools)."""

    def add_dimension(self, name: str, value: str) -> None: ...

    def add_metric(self, name: str, unit: str, value: float) -> None: ...


def emit(metrics: MetricSink, telemetry: Telemetry) -> None:
    for name, value in telemetry.dimensions.items():
        metrics.add_dimension(name=name, value=value)
    for measure in telemetry.measures:
        metrics.add_metric(name=measure.name, unit=measure.unit, value=measure.value)
