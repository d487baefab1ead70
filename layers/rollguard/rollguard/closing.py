"""Closing an incident: the final audit event, the incident's outcome, the lock released, people told."""

import json
from typing import Any, cast

from rollguard import clock, console
from rollguard.actions import Adapters
from rollguard.adapters.notify import Notifier
from rollguard.audit import AuditEvent, AuditLog
from rollguard.control import Control
from rollguard.incident import CloseRequest, CloseResult, ExecutionState, Outcome
from rollguard.store import IncidentStore
from rollguard.target_state import leave_target

_HEADLINE = {
    "resolved": "RESOLVED",
    "escalated": "ESCALATED — action needed",
    "closed_no_action": "CLOSED without action",
}


def closing_reason(state: ExecutionState, outcome: Outcome) -> str:
    if state.error is not None:
        raw = state.error.Cause or ""
        try:
            cause = json.loads(raw)
            detail = cause.get("errorMessage", raw) if isinstance(cause, dict) else raw
        except json.JSONDecodeError:
            detail = raw
        if state.error.Error == "ApprovalDenied" and not detail:
            detail = "a human denied the gated step (the approval audit event says who and why)"
        return f"{state.error.Error}: {detail or 'no cause given'}"
    if state.progress is not None and state.progress.reason:
        return state.progress.reason
    if state.assessment is not None:
        return state.assessment.reason
    return outcome


def _links(state: ExecutionState, execution_arn: str | None) -> list[tuple[str, str]]:
    """The console pages of the incident: the target's in its own region (and, in a member account, a console URL
    cannot name the account: the link says which to sign in to), the execution's in the stack's region."""
    region = state.alarm.region
    member = state.location.member_account if state.location else None
    where = f" ({member})" if member else ""
    links = [(f"Alarm{where}", console.alarm_url(region, state.alarm.name))]
    if execution_arn:
        links.append(("Execution", console.execution_url(execution_arn.split(":")[3], execution_arn)))
    bad = state.assessment.bad if state.assessment else None
    ecs = state.policy.target.ecs_rolling
    if bad is not None and ecs is not None:  # ECS's own deployment: no CodeDeploy page, the service's instead
        links.append((f"Deployments{where}", console.ecs_deployments_url(region, ecs.cluster, ecs.service)))
    elif bad is not None:
        links.append((f"Deployment{where}", console.deployment_url(region, bad.deployment_id)))
    return links


_NEXT = {
    "resolved": "Nothing urgent; review the incident and fix forward (the rollback or revert stays until you do).",
    "escalated": "A human decides: Rollguard has stopped acting on this target.",
    "closed_no_action": "Investigate the alarm; Rollguard found no recent change it may undo.",
}


def compose_message(
    state: ExecutionState, outcome: Outcome, reason: str, execution_arn: str | None = None, target_state: str = ""
) -> str:
    """Plain text for email; every fact an on-call engineer needs to pick the incident up."""
    shadow = state.policy.mode == "shadow"
    lines = [
        f"Rollguard incident {state.incident_id}: {_HEADLINE[outcome]}{' [SHADOW]' if shadow else ''}",
        "",
    ]
    if shadow:
        lines += ["SHADOW MODE: nothing was changed; the actions below are what Rollguard would have done.", ""]
    lines += [
        f"Why:      {reason}",
        f"Alarm:    {state.alarm.name} ({state.alarm.state} at {state.alarm.state_timestamp})",
        f"          {state.alarm.reason}",
        f"Target:   {state.target_key} (policy {state.policy.name})",
        *([f"Left as:  {target_state}"] if target_state else []),
    ]
    if state.assessment is not None:
        lines.append(f"Change:   {state.assessment.summary}")
    for action in state.progress.actions if state.progress else []:
        lines.append(
            f"Action:   step {action.step + 1} {action.action} {action.scope} at {action.started_at}: "
            f"{action.detail} → {action.verdict or action.result}"
        )
    lines.append(f"Next:     {_NEXT[outcome]}")
    if state.policy.escalate.runbook:
        lines.append(f"Runbook:  {state.policy.escalate.runbook}")
    lines += ["Links:", *(f"  {name:<11} {url}" for name, url in _links(state, execution_arn))]
    return "\n".join(lines)


def compose_chat(
    state: ExecutionState, outcome: Outcome, reason: str, execution_arn: str | None = None, target_state: str = ""
) -> dict[str, Any]:
    """The same facts as an AWS Chatbot custom notification (version 1.0), for Slack/Teams/Chime channels."""
    shadow = " [SHADOW]" if state.policy.mode == "shadow" else ""
    actions = [
        f"• step {a.step + 1} `{a.action} {a.scope}` → *{a.verdict or a.result}*: {a.detail}"
        for a in (state.progress.actions if state.progress else [])
    ]
    description = "\n".join(
        [
            f"*Why:* {reason}",
            f"*Alarm:* `{state.alarm.name}` — {state.alarm.reason}",
            f"*Target:* `{state.target_key}` (policy `{state.policy.name}`)",
            *([f"*Left as:* {target_state}"] if target_state else []),
            *([f"*Change:* {state.assessment.summary}"] if state.assessment else []),
            *actions,
        ]
    )
    steps = [_NEXT[outcome], *([f"Runbook: {state.policy.escalate.runbook}"] if state.policy.escalate.runbook else [])]
    steps += [f"{name}: {url}" for name, url in _links(state, execution_arn)]
    return {
        "version": "1.0",
        "source": "custom",
        "id": state.incident_id,
        "content": {
            "textType": "client-markdown",
            "title": f"Rollguard {state.policy.name}: {_HEADLINE[outcome]}{shadow}",
            "description": description[:8000],
            "nextSteps": steps,
            "keywords": [outcome, state.policy.name, *(["shadow"] if shadow else [])],
        },
        "metadata": {
            "threadId": state.incident_id,
            "summary": f"{_HEADLINE[outcome]}: {reason}"[:200],
            "eventType": "RollguardIncidentClosed",
            "additionalContext": {"incident_id": state.incident_id, "outcome": outcome},
        },
    }


def close(
    request: CloseRequest,
    audit: AuditLog,
    store: IncidentStore,
    notifier: Notifier | None,
    stakeholders: Notifier | None = None,
    closed_by: str = "state machine",
    adapters: Adapters | None = None,
    control: Control | None = None,
) -> CloseResult:
    """Outcome, audit, lock, then people: on-call (``notifier``) and, when configured, the stakeholder topic.

    Every step is safe to repeat, so a retried Close, or the watchdog after a Close that died half-way, finishes
    what is missing and changes nothing that was done: the first closer's outcome stands (``store.settle``), the
    closing audit event is written once with that outcome, the lock is released only if this incident holds it,
    and people are told once (``notified_at``, ``stakeholders_notified_at``)."""
    state = request.state
    paused = bool(control.paused()) if control is not None else False
    target = leave_target(state, adapters or Adapters(), paused, escalating=request.outcome == "escalated")
    reason = request.reason or closing_reason(state, request.outcome)
    if target.halted:
        reason = f"{reason}; {target.halted}"
    settled = store.settle(state.incident_id, request.outcome, closed_by, reason)
    outcome = cast(Outcome, settled["status"])
    reason = str(settled.get("outcome_reason") or reason)
    first = settled.get("closed_by") == closed_by
    released = store.release_lock(state.target_key, state.incident_id)
    audit.append(
        AuditEvent(
            incident_id=state.incident_id,
            target_key=state.target_key,
            kind="incident_closed",
            result=outcome,
            reason=reason,
            summary=f"{_HEADLINE[outcome]}: {reason}",
            event_key="incident_closed",  # one per incident: whoever closes it again finds it written
            parameters={
                "lock_released": released,
                "actions": len(state.progress.actions) if state.progress else 0,
                "closed_by": settled.get("closed_by"),
                "target_state": target.text,
            },
            **state.where(),
        )
    )
    notified = bool(settled.get("notified_at"))
    if notifier is not None:
        message = _message(state, outcome, reason, request.execution_arn, target.text)
        # Each topic is told once, and marked as told at once: a retry after the stakeholder topic failed does not
        # page on-call a second time.
        for mark, topic in (("notified_at", notifier), ("stakeholders_notified_at", stakeholders)):
            if topic is not None and not settled.get(mark):
                topic.publish(*message[:3], chat=message[3])
                store.update(state.incident_id, **{mark: clock.iso()})
        notified = True
    summary = f"{_HEADLINE[outcome]}: {reason}"
    if not first:
        summary = f"already closed by the {settled.get('closed_by')} ({outcome}); finished what was missing"
    return CloseResult(
        incident_id=state.incident_id,
        outcome=outcome,
        reason=reason,
        notified=notified,
        summary=summary[:500],
        closed_by=str(settled.get("closed_by")),
    )


def _message(
    state: ExecutionState, outcome: Outcome, reason: str, execution_arn: str | None, target_state: str
) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """Subject, text, message attributes and the chat payload of the closing notification."""
    shadow = "[SHADOW] " if state.policy.mode == "shadow" else ""
    subject = f"[Rollguard] {shadow}{_HEADLINE[outcome]}: {state.policy.name}"
    attributes: dict[str, Any] = {
        "outcome": outcome,
        "policy": state.policy.name,
        "incident_id": state.incident_id,
        "mode": state.policy.mode or "enforce",
    }
    text = compose_message(state, outcome, reason, execution_arn, target_state)
    return subject, text, attributes, compose_chat(state, outcome, reason, execution_arn, target_state)
