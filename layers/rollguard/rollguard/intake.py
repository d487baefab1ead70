"""Intake: one alarm event in, at most one remediation execution out.

Garbage is rejected with a reason (never retried into a crash loop); alarms no policy claims are
dropped; the first ALARM for a target opens an incident and starts its execution; later alarms for
the same target are recorded on the open incident.
"""

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from rollguard import clock
from rollguard.accounts import ACCOUNT_ID, REGION, Members, locate, refused, target_key
from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.alarm_event import STATE_CHANGE, AlarmStateChange, Origin, correlation_id, foreign, shown
from rollguard.audit import AuditEvent, AuditLog
from rollguard.incident import CLOSED, AlarmRef, IncidentInput, IncidentItem
from rollguard.policy import PolicyFile
from rollguard.store import IncidentStore

logger = logging.getLogger(__name__)
_ACCOUNT = re.compile(ACCOUNT_ID)
_REGION = re.compile(REGION)


class IntakeResult(BaseModel):
    status: Literal["opened", "joined", "duplicate", "ignored", "rejected"]
    reason: str
    incident_id: str | None = None
    execution_arn: str | None = None


@dataclass
class IntakeDeps:
    policies: PolicyFile
    store: IncidentStore
    audit: AuditLog
    stepfunctions: Any
    state_machine_arn: str
    origin: Origin  # the stack's account and region: events from elsewhere are rejected, unless
    members: Members = Members()  # a policy names their account and region (rollguard.accounts)


def incident_id_for(policy_name: str, event_id: str, at: str) -> str:
    """Readable, unique and a valid execution name (<= 80 chars): policy, UTC time, event hash."""
    stamp = at.replace("-", "").replace(":", "")[:15] + "Z"
    return f"{policy_name}-{stamp}-{hashlib.sha256(event_id.encode()).hexdigest()[:6]}"


def _describe_validation(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "<event>"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {str(first['msg']).removeprefix('Value error, ')}{more}"


def read_alarm_event(
    raw: Any, origin: Origin, elsewhere: Callable[[str, str], str | None] | None = None
) -> AlarmStateChange | IntakeResult:
    """The event if this stack may act on it, else why not (rejected or ignored): never an exception. ``elsewhere``
    judges an event of another account or region (alarm_event.foreign)."""
    if not isinstance(raw, dict):
        return _rejected(f"event is a {type(raw).__name__}, not a JSON object")
    detail_type = raw.get("detail-type")
    if detail_type != STATE_CHANGE:
        return _ignored(f"detail-type {shown(detail_type)} is not {STATE_CHANGE!r}")
    try:
        event = AlarmStateChange.model_validate(raw)
    except ValidationError as exc:
        return _rejected(f"malformed alarm state change event {shown(raw.get('id', '?'))}: {_describe_validation(exc)}")
    problem = foreign(event, origin, elsewhere)
    return _rejected(problem) if problem else event


def handle_alarm_event(raw: Any, deps: IntakeDeps) -> IntakeResult:
    def elsewhere(account: str, region: str) -> str | None:
        return refused(account, region, deps.policies, deps.origin, deps.members)

    event = read_alarm_event(raw, deps.origin, elsewhere)
    if isinstance(event, IntakeResult):
        if event.status == "rejected" and isinstance(raw, dict):
            _record_refusal(raw, event, deps)
        return event

    alarm = event.detail
    if alarm.state.value != "ALARM":
        return _ignored(f"alarm {alarm.alarmName} moved to {alarm.state.value}; only ALARM is acted on")
    policy = deps.policies.match(alarm.alarmName, event.account, event.region, deps.origin)
    if policy is None:
        where = "" if event.account == deps.origin.account else f" in account {event.account}"
        return _ignored(f"no policy claims alarm {alarm.alarmName}{where}")

    now = clock.iso()
    incident_id = incident_id_for(policy.name, event.id, now)
    location = locate(policy.target, deps.origin, deps.members)
    key = target_key(policy.target, location)
    alarm_ref = AlarmRef(
        name=alarm.alarmName,
        arn=event.alarm_arn,
        region=event.region,
        account=event.account,
        state=alarm.state.value,
        reason=alarm.state.reason,
        state_timestamp=alarm.state.timestamp,
        event_id=event.id,
        composite=alarm.composite,
    )
    received = AuditEvent(
        incident_id=incident_id,
        target_key=key,
        kind="alarm_received",
        summary=f"{alarm.alarmName} → ALARM: {alarm.state.reason}"[:500],
        parameters={"alarm": alarm.alarmName, "event_id": event.id, "state_timestamp": alarm.state.timestamp},
        event_key=f"alarm#{event.id}",  # stable: a redelivered event is recognised, not counted twice
        **({} if location is None else location.model_dump()),
    )
    execution_input = IncidentInput(
        incident_id=incident_id,
        opened_at=now,
        target_key=key,
        policy=policy,
        alarm=alarm_ref,
        lock_ttl=deps.policies.defaults.lock_ttl,
        location=location,
    ).model_dump(mode="json", exclude_none=False)
    incident = IncidentItem(
        incident_id=incident_id,
        target_key=key,
        policy=policy.name,
        status="starting",
        opened_at=now,
        alarm=alarm.alarmName,
        alarm_count=1,
        current_step="opening",
        execution_input=execution_input,
    )
    opened = deps.store.open_or_join(incident, deps.policies.defaults.lock_ttl, received, event_id=event.id)

    if opened.opened:
        started = _start(deps, incident_id, execution_input)
        logger.info("opened incident %s for %s (policy %s)", incident_id, key, policy.name)
        return IntakeResult(
            status="opened",
            reason=f"{alarm.alarmName} opened an incident on {key}",
            incident_id=incident_id,
            execution_arn=started,
        )

    # The store recorded the alarm on the incident it joined (audit event, alarm count and event id in one
    # transaction), or found it recorded already (fresh False).
    joined_id = opened.incident_id
    fresh = opened.fresh
    arn: str | None = None
    if opened.status == "starting":
        # The incident's execution failed to start earlier: a redelivery of that event or any later alarm
        # retries the start (same execution name, so at most one execution).
        current = opened.incident or deps.store.incident(joined_id)
        if current and current.execution_input is not None:
            arn = _start(deps, joined_id, current.execution_input)
    if not fresh and opened.status in CLOSED:
        # A replay of the event that opened an incident now closed: on its record, and nothing reopened.
        deps.audit.append(
            received.model_copy(
                update={
                    "incident_id": joined_id,
                    "kind": "alarm_replayed",
                    "summary": f"event {event.id} delivered again after the incident closed; not reopened",
                    "event_key": f"alarm#{event.id}#replayed",
                }
            )
        )
    if not fresh:
        return IntakeResult(
            status="duplicate",
            reason=f"event {event.id} was already recorded",
            incident_id=joined_id,
            execution_arn=arn,
        )
    logger.info("alarm %s joined open incident %s", alarm.alarmName, joined_id)
    return IntakeResult(
        status="joined",
        reason=f"{alarm.alarmName} recorded on open incident {joined_id}",
        incident_id=joined_id,
        execution_arn=arn,
    )


def _start(deps: IntakeDeps, incident_id: str, execution_input: dict[str, Any]) -> str:
    try:
        response = deps.stepfunctions.start_execution(
            stateMachineArn=deps.state_machine_arn, name=incident_id, input=json.dumps(execution_input)
        )
        arn = str(response["executionArn"])
    except AWS_FAILURES as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            # Leave the incident "starting" and the lock held: the retried event (or the next alarm) starts it.
            raise translate(exc, f"starting the remediation of incident {incident_id}") from exc
        arn = f"{deps.state_machine_arn.replace(':stateMachine:', ':execution:')}:{incident_id}"
    deps.store.update(incident_id, status="open", execution_arn=arn, current_step="assessing")
    return arn


def _record_refusal(raw: dict[str, Any], result: IntakeResult, deps: IntakeDeps) -> None:
    """An alarm of an account or region this stack does not act for is kept on the audit trail, under the sender:
    query the audit table's by_target index for ``account:<id>/<region>``. Only a CloudWatch alarm event with a well
    formed envelope is recorded (anything else was never an alarm), once per event id (a redelivery finds it)."""
    account, region, event_id = raw.get("account"), raw.get("region"), correlation_id(raw)
    if raw.get("source") != "aws.cloudwatch" or event_id is None:
        return
    if not (isinstance(account, str) and _ACCOUNT.fullmatch(account) and isinstance(region, str)):
        return
    if not _REGION.fullmatch(region):
        return
    if (account, region) == (deps.origin.account, deps.origin.region):
        return  # a malformed event of this stack's own: logged and counted, as always
    detail: dict[str, Any] = raw["detail"] if isinstance(raw.get("detail"), dict) else {}
    deps.audit.append(
        AuditEvent(
            incident_id=f"refused#{account}",
            target_key=f"account:{account}/{region}",
            kind="alarm_refused",
            result="rejected",
            reason=result.reason[:1000],
            summary=f"alarm {shown(detail.get('alarmName'))} from account {shown(account)}: not acted on"[:500],
            parameters={"event_id": event_id, "alarm": shown(detail.get("alarmName"), 255)},
            event_key=f"alarm#{event_id}",
            account=account,
            region=region,
        )
    )


def _rejected(reason: str) -> IntakeResult:
    logger.error("rejected event: %s", reason)
    return IntakeResult(status="rejected", reason=reason)


def _ignored(reason: str) -> IntakeResult:
    logger.info("ignored event: %s", reason)
    return IntakeResult(status="ignored", reason=reason)
