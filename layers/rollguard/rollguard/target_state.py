"""Where the target is left when an incident closes, said in one line, and nothing of Rollguard's left moving
unless the line says so (issue 9). Each action that ran says what it leaves (its module's ``leave``): an
unverified slice is undone on escalation where the action can be undone (a canary stopped with rollback, a traffic
shift moved back, a zonal shift cancelled), unless Rollguard is paused; what stays is said, with when it ends.
"""

from dataclasses import dataclass

from rollguard.actions import Adapters, action_for
from rollguard.errors import RollguardError
from rollguard.incident import ExecutionState


@dataclass(frozen=True)
class TargetState:
    text: str  # "all traffic on revision 6 (Rollguard deployment d-2 Succeeded)"
    halted: str = ""  # what Rollguard stopped or undid while closing, for the closing reason


def leave_target(state: ExecutionState, adapters: Adapters, paused: bool, escalating: bool) -> TargetState:
    """Never fails the close: what cannot be read or undone is said instead (a human takes it from there)."""
    progress = state.progress
    if progress is None or not progress.actions:
        return TargetState("unchanged: Rollguard took no action")
    if state.policy.mode == "shadow":
        return TargetState("unchanged: shadow mode")
    latest = {}
    for record in progress.actions:  # each action once, as its latest step left it
        if record.result == "ok":
            latest[record.action] = record
    texts, halted = [], []
    for name, record in latest.items():
        try:
            left = action_for(name).leave(record, state, adapters, paused, escalating)
        except RollguardError as exc:
            deployment = progress.rollback_deployment_id if name == "rollback" else None
            texts.append(
                f"unknown: {type(exc).__name__}: {exc}"
                + (f"; Rollguard deployment {deployment} may still be shifting traffic" if deployment else "")
            )
            continue
        if left is not None:
            texts.append(left.text)
            if left.halted:
                halted.append(left.halted)
    if not texts:
        return TargetState(f"as the last step left it: {progress.actions[-1].detail}")
    return TargetState("; ".join(texts), halted="; ".join(halted))
