"""Safety brakes: each one holds with a reason; none holds when there is nothing to fear."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rollguard.brakes import brake_reason
from rollguard.policy import Brakes, FreezeWindow

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TARGET = "codedeploy:checkout/checkout-prod"
DEFAULT = Brakes()


def action(minutes_ago: int, incident: str = "other", deployment: str = "d-1") -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "kind": "action",
        "result": "ok",
        "incident_id": incident,
        "at": at,
        "parameters": {"deployment_ids": [deployment, "d-rollback"]},
    }


def reason(
    brakes: Brakes = DEFAULT,
    events: list[dict[str, Any]] | None = None,
    pause: Any = None,
    rolls_back: str | None = None,
) -> str | None:
    return brake_reason(
        brakes=brakes,
        now=NOW,
        incident_id="this",
        target_key=TARGET,
        pause=pause,
        recent_events=events or [],
        rolls_back=rolls_back,
    )


def test_nothing_holds_a_first_action() -> None:
    assert reason() is None


def test_the_pause_switch_holds_and_says_who_paused_and_why() -> None:
    text = reason(pause={"reason": "migration", "by": "arn:aws:iam::1:user/ann", "at": "2026-11-26T11:00:00Z"})
    assert text == "Rollguard is paused (migration; by arn:aws:iam::1:user/ann at 2026-11-26T11:00:00Z)"


def test_a_freeze_window_holds_inside_and_not_outside() -> None:
    window = FreezeWindow(start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1), reason="holiday freeze")
    assert "freeze window" in (reason(Brakes(freeze=[window])) or "") and "holiday freeze" in (
        reason(Brakes(freeze=[window])) or ""
    )
    later = FreezeWindow(start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=2))
    assert reason(Brakes(freeze=[later])) is None


def test_another_incidents_action_inside_the_cooldown_holds() -> None:
    assert (reason(events=[action(10)]) or "").startswith("cooldown: Rollguard acted on")
    assert reason(events=[action(40)]) is None, "the default cooldown is 30 minutes"
    assert reason(events=[action(10, incident="this")]) is None, "an incident's own steps are not a cooldown"


def test_the_hourly_cap_counts_every_automated_action_on_the_target() -> None:
    events = [action(m, incident="this") for m in (5, 15, 25)]
    assert "3 automated actions" in (reason(events=events) or "")
    assert reason(Brakes(max_actions_per_hour=4), events=events) is None


@pytest.mark.parametrize(("once", "held"), [(True, True), (False, False)])
def test_a_deployment_is_rolled_back_once(once: bool, held: bool) -> None:
    brakes = Brakes(cooldown=60, rollback_once=once)
    text = reason(brakes, events=[action(120, deployment="d-7")], rolls_back="d-7")
    assert (text is not None and "already rolled back once" in text) is held


def test_a_freeze_window_needs_a_timezone_and_an_order() -> None:
    with pytest.raises(ValueError, match="timezone"):
        FreezeWindow(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="end after it starts"):
        FreezeWindow(start=NOW, end=NOW - timedelta(hours=1))
