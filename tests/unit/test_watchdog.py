"""The watchdog's decisions (the closing itself is covered by the state machine tests)."""

from rollguard.incident import IncidentItem
from rollguard.watchdog import on_execution_ended


class NoStore:
    def incident(self, incident_id: str) -> IncidentItem | None:
        raise AssertionError("not reached")


def test_a_succeeded_execution_needs_nothing() -> None:
    result = on_execution_ended({"detail": {"status": "SUCCEEDED"}}, NoStore(), None, None)  # type: ignore[arg-type]
    assert result.status == "ignored" and "SUCCEEDED" in result.reason


def test_an_execution_that_is_not_an_incident_is_named_and_ignored() -> None:
    event = {"detail": {"status": "FAILED", "name": "someone-elses", "input": '{"hello": 1}'}}
    result = on_execution_ended(event, NoStore(), None, None)  # type: ignore[arg-type]
    assert result.status == "ignored" and "someone-elses is not a Rollguard incident" in result.reason
