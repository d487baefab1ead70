"""Safety brakes, checked before every action: the pause switch, freeze windows, a cooldown per target, a cap
on actions per target per hour, and a deployment rolled back at most once. A brake that holds is a reason to
escalate, never a silent no-op."""

from datetime import datetime, timedelta
from typing import Any

from rollguard import clock
from rollguard.durations import format_duration
from rollguard.policy import Brakes


def _automated_actions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("kind") == "action" and e.get("result") == "ok"]


def brake_reason(
    *,
    brakes: Brakes,
    now: datetime,
    incident_id: str,
    target_key: str,
    pause: dict[str, Any] | None,
    recent_events: list[dict[str, Any]],
    rolls_back: str | None,
) -> str | None:
    """Why the next action must not run, or None. ``recent_events``: audit events on the target in the last
    hour or cooldown (whichever is longer); ``rolls_back``: the deployment id the action would roll back."""
    if pause is not None:
        return f"Rollguard is paused ({pause.get('reason')}; by {pause.get('by')} at {pause.get('at')})"
    for window in brakes.freeze:
        if window.start <= now < window.end:
            return (
                f"freeze window {window.start.isoformat()} – {window.end.isoformat()}: {window.reason or 'no reason'}"
            )
    actions = _automated_actions(recent_events)
    cooldown_start = clock.iso(now - timedelta(seconds=brakes.cooldown))
    others = [e for e in actions if e["incident_id"] != incident_id and e["at"] >= cooldown_start]
    if others:
        last = others[-1]
        return (
            f"cooldown: Rollguard acted on {target_key} at {last['at']} (incident {last['incident_id']}); "
            f"no other incident may act for {format_duration(brakes.cooldown)} after an action"
        )
    hour_ago = clock.iso(now - timedelta(hours=1))
    in_the_hour = [e for e in actions if e["at"] >= hour_ago]
    if len(in_the_hour) >= brakes.max_actions_per_hour:
        return (
            f"{len(in_the_hour)} automated actions on {target_key} in the last hour "
            f"(cap: max_actions_per_hour {brakes.max_actions_per_hour})"
        )
    if rolls_back and brakes.rollback_once:
        for event in actions:
            ids = event.get("parameters", {}).get("deployment_ids", [])
            if event["incident_id"] != incident_id and ids[:1] == [rolls_back]:
                return f"deployment {rolls_back} was already rolled back once, by incident {event['incident_id']}"
    return None


def history_window(brakes: Brakes) -> timedelta:
    return max(timedelta(hours=1), timedelta(seconds=brakes.cooldown))
