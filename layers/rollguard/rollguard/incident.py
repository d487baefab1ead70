"""The incident: its item in the Incidents table, and what flows through the remediation state machine.

``IncidentItem`` is the one model of the DynamoDB item: the intake writes it through ``IncidentStore``, the functions
update its attributes as the incident goes, the CLI reads it back. The other models are the execution state: every
task receives the whole state and returns one of them; the state machine stores them under ``$.assessment`` and
``$.progress``. Each carries a one-line ``summary`` for the Step Functions console.
"""

import json
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rollguard.accounts import Location
from rollguard.journal import Change
from rollguard.policy import Policy


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AlarmRef(_Model):
    name: str
    arn: str
    region: str
    account: str
    state: str
    reason: str = ""
    state_timestamp: str
    event_id: str
    composite: bool = False


class IncidentInput(_Model):
    incident_id: str
    opened_at: str
    target_key: str
    policy: Policy
    alarm: AlarmRef
    # How long the target's lock outlives the incident's last sign of life (the policy file's defaults.lock_ttl);
    # every step renews it for the time it will wait, so it never expires under a live incident.
    lock_ttl: int = 7200
    # Where the target lives when it is not in the stack's own account and region (rollguard.accounts.locate).
    location: Location | None = None

    def where(self) -> dict[str, str | None]:
        """The audit fields that say where a step acted: the target's account, region and assumed role, when it is
        away from home (AuditEvent.account); none at home."""
        if self.location is None:
            return {}
        return {"account": self.location.account, "region": self.location.region, "role_arn": self.location.role_arn}


class DeploymentRef(_Model):
    deployment_id: str
    status: str
    revision: dict[str, Any]
    revision_label: str
    create_time: str
    complete_time: str | None = None
    compute_platform: str
    creator: str = "user"
    description: str = ""


class Gate(_Model):
    """Whether the step about to run needs a human's approval (read by the state machine's Choice states)."""

    required: bool = False
    step: int = 0
    timeout_seconds: int = 900
    on_timeout: str = "escalate"


MAX_CHANGES_KEPT = 10


class Assessment(_Model):
    # escalate: Rollguard cannot tell what changed (the change journal may be missing events), so a human decides.
    decision: Literal["act", "no_action", "escalate"]
    reason: str
    summary: str
    bad: DeploymentRef | None = None
    last_good: DeploymentRef | None = None
    in_flight: bool = False
    # In scope before the alarm, newest first, the newest MAX_CHANGES_KEPT of changes_in_scope: the state machine's
    # state is capped (policy.POLICY_STATE_BUDGET says how), and no ladder reverts more (its at most 10 steps).
    changes: list[Change] = Field(default_factory=list)
    changes_in_scope: int = 0
    gate: Gate = Field(default_factory=Gate)  # for the first step


class ActionRecord(_Model):
    step: int
    action: str
    scope: str
    started_at: str
    result: str
    deployment_ids: list[str] = Field(default_factory=list)
    detail: str = ""
    verdict: str | None = None
    effect: dict[str, Any] = Field(default_factory=dict)  # what the action's module needs to verify or undo it


Route = Literal["act", "wait_again", "resolve", "escalate"]


class Progress(_Model):
    step: int
    action: str
    scope: str
    summary: str
    wait_seconds: int
    judge: Literal["slice", "aggregate"]
    rollback_deployment_id: str | None = None
    stop_pending: str | None = None  # stopped with rollback, answered Pending: its rollback's id is read later
    full_rollback_done: bool = False
    extended: bool = False
    actions: list[ActionRecord] = Field(default_factory=list)
    reverted: list[str] = Field(default_factory=list)  # change ids undone by revert_recent_change steps
    verdict: str | None = None
    reason: str = ""
    next: Route | None = None
    next_step: int | None = None
    gate: Gate = Field(default_factory=Gate)  # for next_step


class TaskError(_Model):
    Error: str = "States.Unknown"
    Cause: str | None = ""  # Step Functions omits it when the failure gave none


# A person's reason travels in the incident's state (the state's size is capped: policy.POLICY_STATE_BUDGET).
REASON_MAX = 1024


class ApprovalDecision(_Model):
    approved: bool
    step: int
    approver: str
    reason: str = ""


class SkipStep(_Model):
    step: int


class ExecutionState(IncidentInput):
    assessment: Assessment | None = None
    progress: Progress | None = None
    error: TaskError | None = None
    approval: ApprovalDecision | None = None  # the latest approval, set by SendTaskSuccess
    skip_step: SkipStep | None = None  # nobody approved and on_timeout is skip


class RemediationTask(_Model):
    """The Remediation function's input: which of the state machine's tasks invokes it (Assess or Act) and the
    execution's state, passed whole (``"state.$": "$"``)."""

    task: Literal["assess", "act"]
    state: ExecutionState


Outcome = Literal["resolved", "escalated", "closed_no_action"]
CLOSED: frozenset[str] = frozenset(get_args(Outcome))  # the statuses of a closed incident


class CloseRequest(_Model):
    state: ExecutionState
    outcome: Outcome
    execution_arn: str | None = None  # $$.Execution.Id, for the console link
    reason: str | None = None  # set by the state machine where the state alone does not say why


class CloseResult(_Model):
    incident_id: str
    outcome: Outcome
    reason: str
    summary: str
    notified: bool
    closed_by: str = "state machine"  # who settled the outcome first (the state machine or the watchdog)


class IncidentItem(_Model):
    """One item of the Incidents table (key ``incident_id``), under the attribute names it is stored with: deployed
    tables hold these names, so renaming one is a data migration.

    The intake writes the opening attributes (``incident_id`` … ``execution_input``); the others are set as the
    incident goes (``IncidentStore.update`` refuses a name that is not a field here) and are absent until then.
    ``execution_input`` is the state machine input, stored as JSON text so that a failed start can be retried as is,
    and parsed here (None when it is not valid JSON).
    """

    incident_id: str
    # The intake always writes these; a reader (the watchdog, the CLI) tolerates an item without them.
    target_key: str = ""
    policy: str = ""  # the policy's name
    status: str = "unknown"  # starting → open ⇄ awaiting_approval → one of CLOSED
    opened_at: str = ""
    alarm: str = ""  # the name of the alarm that opened it
    alarm_count: int = 1  # alarms recorded on it, the first included
    current_step: str = ""
    execution_input: dict[str, Any] | None = None
    # While it runs.
    execution_arn: str | None = None
    suspect_deployment: str | None = None  # Assess's suspect; "" when it found none
    task_token: str | None = None  # only while a step waits for approval
    awaiting_step: int | None = None
    approval_deadline: str | None = None
    approval_decision: str | None = None  # "<approved|denied> by <who> at <when>"
    # shift_traffic: the forward weights found before the first shift, written once (IncidentStore.remember).
    traffic_before: dict[str, int] | None = None
    # Once it closed (IncidentStore.settle), and whom closing told.
    closed_by: str | None = None
    closed_at: str | None = None
    outcome_reason: str | None = None
    notified_at: str | None = None
    stakeholders_notified_at: str | None = None

    @field_validator("execution_input", mode="before")
    @classmethod
    def _parsed(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return None
        return value

    def stored(self) -> dict[str, Any]:
        """The item's attributes as stored (before the DynamoDB codec): the state machine input as JSON text, and
        no attribute for what is not set yet."""
        attributes = self.model_dump(mode="json", exclude_none=True)
        if self.execution_input is not None:
            attributes["execution_input"] = json.dumps(self.execution_input)
        return attributes

    @property
    def policy_doc(self) -> dict[str, Any]:
        """The policy as it was when the incident opened (plain data: later policy versions may differ)."""
        return dict((self.execution_input or {}).get("policy") or {})
