"""The watchdog: an execution that FAILED, TIMED_OUT or was ABORTED still ends in an escalation, so
nothing dies silently (EventBridge "Step Functions Execution Status Change")."""

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from rollguard.actions import Adapters
from rollguard.adapters.notify import Notifier
from rollguard.audit import AuditLog
from rollguard.closing import close
from rollguard.control import Control
from rollguard.incident import CLOSED, CloseRequest, CloseResult, ExecutionState
from rollguard.store import IncidentStore

DEAD = {"FAILED", "TIMED_OUT", "ABORTED"}


class WatchdogResult(BaseModel):
    status: str
    reason: str
    closed: CloseResult | None = None


def on_execution_ended(
    event: dict[str, Any],
    store: IncidentStore,
    audit: AuditLog,
    notifier: Notifier | None,
    adapters_for: Callable[[ExecutionState], Adapters] | None = None,
    control: Control | None = None,
) -> WatchdogResult:
    """``adapters_for`` makes what closing may read and undo on the incident's target (where it lives is in the
    execution's input)."""
    detail = event.get("detail") or {}
    status = str(detail.get("status", ""))
    if status not in DEAD:
        return WatchdogResult(status="ignored", reason=f"execution status {status or '?'} needs nothing")
    try:
        state = ExecutionState.model_validate(json.loads(detail.get("input") or "{}"))
    except (ValidationError, json.JSONDecodeError) as exc:
        return WatchdogResult(
            status="ignored",
            reason=f"execution {detail.get('name')} is not a Rollguard incident: {str(exc).splitlines()[0]}",
        )
    incident = store.incident(state.incident_id)
    if incident is not None and incident.status in CLOSED and incident.notified_at:
        return WatchdogResult(
            status="ignored",
            reason=f"incident {state.incident_id} was already closed ({incident.status}) before the execution {status}",
        )
    why = f"the remediation execution {status}"
    if detail.get("error") or detail.get("cause"):
        why += f": {detail.get('error') or ''} {detail.get('cause') or ''}".rstrip()
    # Closing is idempotent: after a Close that died half-way this finishes it with its outcome, not a second one.
    result = close(
        CloseRequest(state=state, outcome="escalated", execution_arn=detail.get("executionArn"), reason=why[:2000]),
        audit,
        store,
        notifier,
        closed_by="watchdog",
        adapters=adapters_for(state) if adapters_for else None,
        control=control,
    )
    if result.closed_by != "watchdog":
        return WatchdogResult(status="completed", reason=result.summary, closed=result)
    return WatchdogResult(status="escalated", reason=why, closed=result)
