"""rollguard.telemetry: what the act and close handlers emit, computed without AWS or Powertools."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rollguard import telemetry
from rollguard.errors import RollbackFailed
from rollguard.incident import CloseResult, ExecutionState, Progress

from tests.unit.builders import ONSET


class Recorder:
    """Stands in for Powertools' Metrics: remembers what emit() added."""

    def __init__(self) -> None:
        self.dimensions: dict[str, str] = {}
        self.metrics: list[tuple[str, str, float]] = []

    def add_dimension(self, name: str, value: str) -> None:
        self.dimensions[name] = value

    def add_metric(self, name: str, unit: str, value: float) -> None:
        self.metrics.append((name, unit, value))


def test_seconds_since_onset_reads_cloudwatch_timestamps() -> None:
    assert telemetry.seconds_since_onset("2025-03-04T12:00:00.000+0000", ONSET + timedelta(seconds=7.25)) == 7.25
    assert telemetry.seconds_since_onset("2025-03-04T12:00:00Z", ONSET + timedelta(minutes=10)) == 600


def test_seconds_since_onset_never_goes_negative_on_clock_skew() -> None:
    assert telemetry.seconds_since_onset("2025-03-04T12:00:02.000+0000", ONSET) == 0


def test_the_first_action_carries_time_to_first_action(
    make_state: Callable[..., ExecutionState], make_progress: Callable[..., Progress]
) -> None:
    state = make_state()  # the fixture's alarm went to ALARM at ONSET; no step taken yet
    result = telemetry.after_action(state, make_progress(scope="canary"), now=ONSET + timedelta(seconds=42))

    recorder = Recorder()
    telemetry.emit(recorder, result)

    assert recorder.dimensions == {"action": "rollback", "scope": "canary", "result": "ok"}
    assert recorder.metrics == [("Actions", "Count", 1), ("TimeToFirstAction", "Seconds", 42)]


def test_later_actions_are_counted_but_not_timed_again(
    make_state: Callable[..., ExecutionState], make_progress: Callable[..., Progress]
) -> None:
    earlier: dict[str, Any] = make_progress(next="act", next_step=1).model_dump()
    state = make_state(progress=earlier)
    result = telemetry.after_action(state, make_progress(step=1, scope="full"), now=ONSET + timedelta(minutes=5))

    assert [m.name for m in result.measures] == ["Actions"]
    assert result.dimensions["scope"] == "full"


def test_a_failed_action_is_counted_under_the_step_it_tried_and_the_error_name(
    make_state: Callable[..., ExecutionState], make_progress: Callable[..., Progress]
) -> None:
    first = telemetry.failed_action(make_state(), RollbackFailed("rejected"))
    widening = telemetry.failed_action(
        make_state(progress=make_progress(next="act", next_step=1).model_dump()), RollbackFailed("rejected")
    )

    assert first.dimensions == {"action": "rollback", "scope": "canary", "result": "RollbackFailed"}
    assert widening.dimensions["scope"] == "full"
    assert [m.name for m in first.measures] == ["Actions"]


def _closed(outcome: str) -> CloseResult:
    return CloseResult.model_validate(
        {"incident_id": "i", "outcome": outcome, "reason": "r", "summary": "s", "notified": True}
    )


def test_a_resolved_incident_reports_its_time_to_recovery(make_state: Callable[..., ExecutionState]) -> None:
    result = telemetry.after_close(make_state(), _closed("resolved"), now=ONSET + timedelta(minutes=10, seconds=2))

    assert [(m.name, m.unit, m.value) for m in result.measures] == [
        ("IncidentsResolved", "Count", 1),
        ("TimeToRecovery", "Seconds", 602),
    ]
    assert result.dimensions == {}


def test_escalations_and_no_action_closes_have_no_recovery_time(make_state: Callable[..., ExecutionState]) -> None:
    escalated = telemetry.after_close(make_state(), _closed("escalated"))
    untouched = telemetry.after_close(make_state(), _closed("closed_no_action"))

    assert [m.name for m in escalated.measures] == ["IncidentsEscalated"]
    assert [m.name for m in untouched.measures] == ["IncidentsClosedNoAction"]
