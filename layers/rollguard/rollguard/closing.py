"""Closing an incident: the final audit event, the incident's outcome, the lock released, people told."""

import json
from typing import Any
from urllib.parse import quote

from rollguard import clock
from rollguard.adapters.notify import Notifier
from rollguard.audit import AuditEvent, AuditLog
from rollguard.incident import CloseRequest, CloseResult, ExecutionState, Outcome
from rollguard.store import IncidentStore

_HEADLINE = {
    "resolved": "RESOLVED",
    "escalated": "ESCALATED — action needed",
    "closed_no_action": "CLOSED without action",
}


def closing_reason(state: ExecutionState, outcome: Outcome) -> str:
    if state.error is not None:
        try:
            cause = json.loads(state.error.Cause)
            detail = cause.get("errorMessage", state.error.Cause) if isinstance(cause, dict) else state.error.Cause
        except json.JSONDecodeError:
            detail = state.error.Cause
        return f"{state.error.Error}: {detail}"
    if state.progress is not None and state.progress.reason:
        return state.progress.reason
    if state.assessment is not None:
        return state.assessment.reason
    return outcome


def compose_message(state: ExecutionState, outcome: Outcome, reason: str) -> str:
    """Plain text for email; every fact an on-call engineer needs to pick the incident up."""
    cd = state.policy.target.codedeploy
    lines = [
        f"Rollguard incident {state.incident_id}: {_HEADLINE[outcome]}",
        "",
        f"Why:      {reason}",
        f"Alarm:    {state.alarm.name} ({state.alarm.state} at {state.alarm.state_timestamp})",
        f"          {state.alarm.reason}",
        f"Target:   CodeDeploy {cd.application}/{cd.deployment_group} (policy {state.policy.name})",
    ]
    if state.assessment is not None:
        lines.append(f"Change:   {state.assessment.summary}")
    for action in state.progress.actions if state.progress else []:
        lines.append(
            f"Action:   step {action.step + 1} {action.action} {action.scope} at {action.started_at}: "
            f"{action.detail} → {action.verdict or action.result}"
        )
    nexts = {
        "resolved": "Nothing; review the incident and fix forward.",
        "escalated": "A human decides: the automation has stopped acting on this target.",
        "closed_no_action": "Investigate the alarm; Rollguard found nothing it may undo.",
    }
    lines.append(f"Next:     {nexts[outcome]}")
    if state.policy.escalate.runbook:
        lines.append(f"Runbook:  {state.policy.escalate.runbook}")
    region = state.alarm.region
    lines.append(
        f"Alarm:    https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#alarmsV2:alarm/{quote(state.alarm.name, safe='')}"
    )
    return "\n".join(lines)


def close(request: CloseRequest, audit: AuditLog, store: IncidentStore, notifier: Notifier | None) -> CloseResult:
    state, outcome = request.state, request.outcome
    reason = closing_reason(state, outcome)
    released = store.release_lock(state.target_key, state.incident_id)
    audit.append(
        AuditEvent(
            incident_id=state.incident_id,
            target_key=state.target_key,
            kind="incident_closed",
            result=outcome,
            reason=reason,
            summary=f"{_HEADLINE[outcome]}: {reason}",
            event_key="incident_closed",
            parameters={"lock_released": released, "actions": len(state.progress.actions) if state.progress else 0},
        )
    )
    store.update(
        state.incident_id, status=outcome, closed_at=clock.iso(), current_step="closed", outcome_reason=reason[:1000]
    )
    notified = False
    if notifier is not None:
        subject = f"[Rollguard] {_HEADLINE[outcome]}: {state.policy.name}"
        attributes: dict[str, Any] = {"outcome": outcome, "policy": state.policy.name, "incident_id": state.incident_id}
        notifier.publish(subject, compose_message(state, outcome, reason), attributes)
        notified = True
    return CloseResult(
        incident_id=state.incident_id,
        outcome=outcome,
        reason=reason,
        notified=notified,
        summary=f"{_HEADLINE[outcome]}: {reason}"[:500],
    )
