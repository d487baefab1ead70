"""Approval gates: the state machine waits on a task token; a human approves or denies with the CLI.

The token is stored with the incident and never written to a log, an audit event or a notification.
"""

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from rollguard import clock
from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.adapters.notify import Notifier
from rollguard.audit import AuditEvent, AuditLog, step_event_key
from rollguard.durations import format_duration
from rollguard.errors import RollguardError
from rollguard.incident import ExecutionState
from rollguard.store import IncidentStore


class ApprovalRequest(BaseModel):
    state: ExecutionState
    task_token: str


class ApprovalRequested(BaseModel):
    incident_id: str
    step: int
    deadline: str
    summary: str


class ApprovalError(RollguardError):
    """The approval cannot be given: unknown incident, not waiting, already decided, or the window closed."""


def _describe_step(state: ExecutionState, step: int) -> str:
    from rollguard.actions import action_for

    ladder_step = state.policy.ladder[step]
    return f"step {step + 1}: {action_for(ladder_step.action).describe(ladder_step, state)}"


def request_approval(
    request: ApprovalRequest, store: IncidentStore, audit: AuditLog, notifier: Notifier | None, stack_name: str
) -> ApprovalRequested:
    state = request.state
    gate = (
        state.progress.gate
        if state.progress and state.progress.gate.required
        else state.assessment.gate
        if state.assessment
        else None
    )
    if gate is None or not gate.required:
        raise RollguardError("an approval was requested for a step that has no approval gate")
    deadline = clock.iso(clock.now() + timedelta(seconds=gate.timeout_seconds))
    what = _describe_step(state, gate.step)
    store.renew_lock(state.target_key, state.incident_id, state.lock_ttl + gate.timeout_seconds)
    store.update(
        state.incident_id,
        task_token=request.task_token,
        status="awaiting_approval",
        awaiting_step=gate.step,
        approval_deadline=deadline,
        current_step=f"awaiting approval of {what}",
    )
    summary = (
        f"Waiting for a human to approve {what} until {deadline} "
        f"(then: {gate.on_timeout}, after {format_duration(gate.timeout_seconds)})"
    )
    audit.append(
        AuditEvent(
            incident_id=state.incident_id,
            target_key=state.target_key,
            kind="approval_requested",
            result="waiting",
            summary=summary,
            parameters={"step": gate.step, "deadline": deadline, "on_timeout": gate.on_timeout},
            # A retried task (Lambda.ServiceException after the function ran: "Handle Lambda service exceptions", Step
            # Functions Developer Guide) stores the token its context object gave it above ("SendTaskSuccess", Step
            # Functions API Reference): the request is recorded once, and on-call paged again, since the first page
            # may be the part that failed.
            event_key=step_event_key("approval_requested", gate.step),
            **state.where(),
        )
    )
    if notifier is not None:
        stack = f" --stack {stack_name}" if stack_name else ""
        text = "\n".join(
            [
                f"Rollguard incident {state.incident_id}: APPROVAL NEEDED",
                "",
                f"Alarm:    {state.alarm.name} — {state.alarm.reason}",
                f"Target:   {state.target_key} (policy {state.policy.name})",
                f"Change:   {state.assessment.summary if state.assessment else '?'}",
                f"Proposed: {what}",
                f"Deadline: {deadline}; if nobody answers: {gate.on_timeout}",
                "",
                "To approve:",
                f'  rollguard approve {state.incident_id}{stack} --reason "..."',
                "To deny:",
                f'  rollguard deny {state.incident_id}{stack} --reason "..."',
                *([f"Runbook:  {state.policy.escalate.runbook}"] if state.policy.escalate.runbook else []),
            ]
        )
        chat = {
            "version": "1.0",
            "source": "custom",
            "id": state.incident_id,
            "content": {
                "textType": "client-markdown",
                "title": f"Rollguard {state.policy.name}: approval needed",
                "description": f"*Proposed:* {what}\n*Alarm:* `{state.alarm.name}`\n*Deadline:* {deadline} "
                f"(then {gate.on_timeout})",
                "nextSteps": [
                    f'rollguard approve {state.incident_id}{stack} --reason "..."',
                    f'rollguard deny {state.incident_id}{stack} --reason "..."',
                ],
            },
        }
        notifier.publish(
            f"[Rollguard] APPROVAL NEEDED: {state.policy.name}",
            text,
            {"outcome": "approval_needed", "policy": state.policy.name, "incident_id": state.incident_id},
            chat=chat,
        )
    return ApprovalRequested(incident_id=state.incident_id, step=gate.step, deadline=deadline, summary=summary)


@dataclass
class Decision:
    incident_id: str
    approved: bool
    approver: str
    reason: str
    step: int


def decide(
    incident_id: str,
    approve: bool,
    reason: str,
    approver: str,
    store: IncidentStore,
    audit: AuditLog,
    stepfunctions: Any,
) -> Decision:
    """Resume (approve) or fail (deny) the waiting execution, once; the decision is audited with who and why."""
    incident = store.get(incident_id)
    if incident is None:
        raise ApprovalError(f"unknown incident {incident_id}")
    token = incident.get("task_token")
    if not token:
        decided = incident.get("approval_decision")
        already = f"; already {decided}" if decided else ""
        raise ApprovalError(
            f"incident {incident_id} is not waiting for approval (status {incident.get('status')}{already})"
        )
    step = int(incident.get("awaiting_step", 0))
    verdict = "approved" if approve else "denied"
    # The decision's time is when it was claimed, before the execution resumes: stamped after SendTaskSuccess, the
    # approval could read as later than the action it allowed (the audit log sorts by time).
    decided_at = clock.iso()
    if not store.claim_token(incident_id, token, decision=f"{verdict} by {approver} at {decided_at}"):
        now = store.get(incident_id) or {}
        if now.get("closed_by"):  # it closed (escalated, say) while this decision was on its way
            raise ApprovalError(
                f"incident {incident_id} is not waiting for approval (status {now.get('status')}): it closed first"
            )
        raise ApprovalError(f"incident {incident_id}: someone else decided first")
    try:
        if approve:
            stepfunctions.send_task_success(
                taskToken=token,
                output=json.dumps({"approved": True, "step": step, "approver": approver, "reason": reason}),
            )
        else:
            stepfunctions.send_task_failure(
                taskToken=token,
                error="ApprovalDenied",
                cause=f"denied by {approver}: {reason or 'no reason given'}"[:32768],
            )
    except AWS_FAILURES as exc:
        if error_code(exc) in {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}:
            raise ApprovalError(f"incident {incident_id}: the approval window has closed ({error_code(exc)})") from exc
        raise translate(exc, f"sending the {verdict} decision for incident {incident_id}") from exc
    event = AuditEvent(
        incident_id=incident_id,
        target_key=str(incident.get("target_key", "")),
        kind="approval",
        actor=approver,
        result=verdict,
        reason=reason,
        summary=f"step {step + 1} {verdict} by {approver}: {reason or 'no reason given'}",
        parameters={"step": step},
        at=decided_at,
    )
    try:
        audit.append(event)
    except RollguardError as exc:
        # The decision took effect: say so, or the approver retries a decision that is no longer theirs to make.
        resumed = "the execution resumed" if approve else "the execution was failed with ApprovalDenied"
        raise ApprovalError(
            f"incident {incident_id}: {verdict} and {resumed}, but the approval's audit event was not written "
            f"({exc}); the incident's approval_decision records it"
        ) from exc
    return Decision(incident_id, approve, approver, reason, step)
