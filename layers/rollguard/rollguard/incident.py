"""What flows through the remediation state machine: the incident and what each step learned.

Every task receives the whole execution state and returns one of these models; the state machine
stores them under ``$.assessment`` and ``$.progress``. Each carries a one-line ``summary`` for the
Step Functions console.
"""

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

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


class Assessment(_Model):
    # escalate: Rollguard cannot tell what changed (the change journal may be missing events), so a human decides.
    decision: Literal["act", "no_action", "escalate"]
    reason: str
    summary: str
    bad: DeploymentRef | None = None
    last_good: DeploymentRef | None = None
    in_flight: bool = False
    changes: list[Change] = Field(default_factory=list)  # in scope before the alarm, newest first
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
