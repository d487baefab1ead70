"""The interface every ladder action implements, and what a step hands back to Act.

One module per action (rollback.py, flags.py, …) holds its mechanics: how it is taken (idempotently: a retried
task finds what an earlier attempt did and continues), how it describes itself, how its slice is verified, what
it leaves behind when the incident closes, what someone must follow up, and the IAM it needs. Assess, Act and
Verify find it through the registry (``rollguard.actions.action_for``) and know none of this.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rollguard.deps import Deps
from rollguard.incident import ActionRecord, ExecutionState, Progress
from rollguard.policy import LadderStep
from rollguard.verdicts import Judgement

if TYPE_CHECKING:
    from rollguard.adapters.codedeploy import CodeDeploy
    from rollguard.adapters.ecs import EcsServices
    from rollguard.adapters.elb import LoadBalancers
    from rollguard.adapters.zonal_shift import ZonalShifts


@dataclass
class StepOutcome:
    """What a step did: the concrete action (also when revert_recent_change chose it) and how to judge it."""

    action: str
    scope: str
    detail: str
    judge: Literal["slice", "aggregate"] = "aggregate"
    deployment_ids: list[str] = field(default_factory=list)
    rollback_deployment_id: str | None = None
    full_rollback_done: bool = False
    reverted: str | None = None
    regions: list[dict[str, object]] = field(default_factory=list)
    stop_pending: str | None = None  # a deployment whose stop answered Pending (its rollback id comes later)
    alarm_override: dict[str, Any] | None = None  # the overrideAlarmConfiguration sent with the deployment
    extra_wait: int = 0  # seconds before the verification window starts (a widening canary still shifting)
    effect: dict[str, Any] = field(default_factory=dict)  # what the action's own verify/leave need later


@dataclass(frozen=True)
class Adapters:
    """What closing may read and undo on the target (the Close and Watchdog functions' grants)."""

    codedeploy: "CodeDeploy | None" = None
    elb: "LoadBalancers | None" = None
    zonal_shift: "ZonalShifts | None" = None
    ecs: "EcsServices | None" = None


@dataclass(frozen=True)
class Left:
    """Where one action leaves the target when the incident closes."""

    text: str  # "all traffic on revision 6 (Rollguard deployment d-2 Succeeded)"
    halted: str = ""  # what was stopped or undone while closing, for the closing reason


class Action:
    """Defaults for an action that changes the target once and is judged on the alarm (flag off, config revert)."""

    names: ClassVar[tuple[str, ...]]  # the ladder ``action:`` values this module takes
    # The IAM actions the Act function needs for it (template.yaml grants them; tests/template checks that it does).
    iam: ClassVar[tuple[str, ...]] = ()

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        """One line: for approvals, shadow mode's "would have", and ``policy check``."""
        return f"{step.action} {step.scope}"

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        raise NotImplementedError

    def horizon(self, step: LadderStep) -> int:
        """How long the step can keep the incident busy after Act (the lock is renewed for that much)."""
        return step.verify.longest

    def rolls_back(self, step: LadderStep, state: ExecutionState) -> str | None:
        """The deployment this step would roll back (the rollback_once brake), if any."""
        return None

    def catch_up(self, progress: Progress, deps: Deps) -> Progress:
        """Before the verdict: what the step started and AWS finished since (a rollback's id once a stop created it)."""
        return progress

    def done_by(self, progress: Progress) -> bool:
        """Whether an earlier step already did what a step of this action would (the ladder skips it)."""
        return False

    def verify(self, state: ExecutionState, progress: Progress, deps: Deps, window_s: int) -> Judgement | None:
        """The action's own judgement of its window, or None: judge the alarm and its metric (a full step)."""
        return None

    def leave(
        self, record: ActionRecord, state: ExecutionState, adapters: Adapters, paused: bool, escalating: bool
    ) -> Left | None:
        """What this step leaves in place when the incident closes (None: its detail says it). Undoes an unverified
        slice on escalation where the action is reversible, unless Rollguard is paused."""
        return None

    def follow_up(self, parameters: dict[str, Any]) -> str:
        """What someone must do about this step after the incident (the report's clean-up list)."""
        return "it stays in effect: undo it once the cause is fixed"
