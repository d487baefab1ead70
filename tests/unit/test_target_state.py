"""Where closing leaves the target, and that it stops an unverified Rollguard canary only when it should."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from rollguard.actions import Adapters
from rollguard.errors import RollbackFailed
from rollguard.incident import ActionRecord, Assessment, DeploymentRef, ExecutionState, Progress
from rollguard.target_state import leave_target

CANARY = "d-canary"


class FakeCodeDeploy:
    """The CodeDeploy adapter's read and stop, over one deployment whose status the test sets."""

    def __init__(self, status: str, stop_fails: bool = False) -> None:
        self.status, self.stop_fails, self.stops = status, stop_fails, 0

    def get(self, deployment_id: str) -> dict[str, Any]:
        return {"deploymentId": deployment_id, "status": self.status, "rollbackInfo": {}}

    def canary_end(self, deployment: dict[str, Any]) -> datetime:
        return datetime(2025, 3, 4, 12, 11, tzinfo=UTC)

    def stop(self, deployment_id: str, auto_rollback: bool) -> str:
        assert auto_rollback, "a Rollguard canary is never stopped without rollback"
        self.stops += 1
        if self.stop_fails:
            raise RollbackFailed("stopping deployment d-canary: DeploymentAlreadyCompletedException")
        return "Pending"


@pytest.fixture
def canary_state(
    make_state: Callable[..., ExecutionState],
    make_deployment: Callable[..., DeploymentRef],
    make_progress: Callable[..., Progress],
) -> Callable[[str], ExecutionState]:
    def build(judge: str) -> ExecutionState:
        bad, good = make_deployment("d-bad", 6, label="7"), make_deployment("d-good", 60, label="6")
        action = ActionRecord(step=0, action="rollback", scope="canary", started_at="t", result="ok", detail="canary")
        return make_state(
            assessment=Assessment(decision="act", reason="r", summary="s", bad=bad, last_good=good),
            progress=make_progress(judge=judge, rollback_deployment_id=CANARY, actions=[action]),
        )

    return build


def test_escalating_stops_an_unverified_canary_with_rollback(canary_state: Callable[[str], ExecutionState]) -> None:
    cd = FakeCodeDeploy("InProgress")

    left = leave_target(canary_state("slice"), Adapters(codedeploy=cd), paused=False, escalating=True)  # type: ignore[arg-type]

    assert cd.stops == 1
    assert left.halted == f"canary {CANARY} stopped with rollback (stop Pending)"
    assert "traffic returns to revision 7" in left.text


def test_while_paused_nothing_is_stopped_and_the_line_says_the_canary_still_shifts(
    canary_state: Callable[[str], ExecutionState],
) -> None:
    cd = FakeCodeDeploy("InProgress")

    left = leave_target(canary_state("slice"), Adapters(codedeploy=cd), paused=True, escalating=True)  # type: ignore[arg-type]

    assert cd.stops == 0 and not left.halted
    assert "still shifting to revision 6" in left.text and "2025-03-04T12:11:00" in left.text


def test_a_widening_canary_whose_slice_was_verified_is_left_to_finish(
    canary_state: Callable[[str], ExecutionState],
) -> None:
    cd = FakeCodeDeploy("InProgress")

    left = leave_target(canary_state("aggregate"), Adapters(codedeploy=cd), paused=False, escalating=True)  # type: ignore[arg-type]

    assert cd.stops == 0
    assert "widening to revision 6" in left.text and "leaves it running" in left.text


def test_a_stop_refused_because_the_canary_just_stopped_counts_as_done(
    canary_state: Callable[[str], ExecutionState],
) -> None:
    class StoppedMeanwhile(FakeCodeDeploy):  # the first stop went through; its answer never came back
        def stop(self, deployment_id: str, auto_rollback: bool) -> str:
            self.status = "Stopped"
            return super().stop(deployment_id, auto_rollback)

    cd = StoppedMeanwhile("InProgress", stop_fails=True)

    left = leave_target(canary_state("slice"), Adapters(codedeploy=cd), paused=False, escalating=True)  # type: ignore[arg-type]

    assert left.halted == f"canary {CANARY} stopped with rollback (stop already stopped)"


def test_a_stop_that_fails_is_said_and_does_not_fail_the_close(canary_state: Callable[[str], ExecutionState]) -> None:
    cd = FakeCodeDeploy("InProgress", stop_fails=True)

    left = leave_target(canary_state("slice"), Adapters(codedeploy=cd), paused=False, escalating=True)  # type: ignore[arg-type]

    assert not left.halted and "could NOT be stopped" in left.text


def test_a_finished_rollback_reads_as_all_traffic_on_the_good_revision(
    canary_state: Callable[[str], ExecutionState],
) -> None:
    left = leave_target(
        canary_state("aggregate"), Adapters(codedeploy=FakeCodeDeploy("Succeeded")), paused=False, escalating=False
    )  # type: ignore[arg-type]

    assert left.text.startswith("all traffic on revision 6")
