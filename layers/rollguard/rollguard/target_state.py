"""Where the target is left when an incident closes, said in one line, and nothing of Rollguard's left moving
unless the line says so (issue 9).

An unverified canary of Rollguard's (its slice never judged healthy) is stopped with rollback on escalation, so
the target is back where Rollguard found it; while Rollguard is paused nothing is stopped, and the line says the
canary is still shifting and when CodeDeploy moves the rest. A canary whose slice was verified healthy and that
is widening is left to finish, and the line says when.
"""

from dataclasses import dataclass

from rollguard import clock
from rollguard.adapters.codedeploy import IN_FLIGHT, CodeDeploy
from rollguard.errors import RollguardError
from rollguard.incident import ExecutionState


@dataclass(frozen=True)
class TargetState:
    text: str  # "all traffic on revision 6 (Rollguard deployment d-2 Succeeded)"
    halted: str = ""  # what Rollguard stopped while closing, for the closing reason


def leave_target(state: ExecutionState, codedeploy: CodeDeploy | None, paused: bool, escalating: bool) -> TargetState:
    """Never fails the close: what cannot be read or stopped is said instead (a human takes it from there)."""
    try:
        return _leave_target(state, codedeploy, paused, escalating)
    except RollguardError as exc:
        deployment = state.progress.rollback_deployment_id if state.progress else None
        return TargetState(
            f"unknown: {type(exc).__name__}: {exc}"
            + (f"; Rollguard deployment {deployment} may still be shifting traffic" if deployment else "")
        )


def _leave_target(state: ExecutionState, codedeploy: CodeDeploy | None, paused: bool, escalating: bool) -> TargetState:
    progress, assessment = state.progress, state.assessment
    if progress is None or not progress.actions:
        return TargetState("unchanged: Rollguard took no action")
    if state.policy.mode == "shadow":
        return TargetState("unchanged: shadow mode")
    deployment_id = progress.rollback_deployment_id or progress.stop_pending
    if codedeploy is None or deployment_id is None or assessment is None or assessment.bad is None:
        return TargetState(f"as the last step left it: {progress.actions[-1].detail}")
    good = assessment.last_good.revision_label if assessment.last_good else "the last good revision"
    bad = assessment.bad.revision_label
    if deployment_id == progress.stop_pending:  # Rollguard stopped the suspect itself; CodeDeploy rolls it back
        info = codedeploy.get(deployment_id)
        rollback = info.get("rollbackInfo", {}).get("rollbackDeploymentId")
        return TargetState(
            f"deployment {deployment_id} {info.get('status')}; CodeDeploy's rollback "
            f"{rollback or '(not created yet)'} takes traffic back to the revision before {bad}"
        )
    info = codedeploy.get(deployment_id)
    status = str(info.get("status"))
    if status not in IN_FLIGHT:
        if status == "Succeeded":
            return TargetState(f"all traffic on revision {good} (Rollguard deployment {deployment_id} Succeeded)")
        rollback = info.get("rollbackInfo", {}).get("rollbackDeploymentId")
        back = f", rolled back by {rollback}" if rollback else ""
        return TargetState(f"Rollguard deployment {deployment_id} {status}{back}: traffic back on revision {bad}")
    ends = codedeploy.canary_end(info)
    when = f" at {clock.iso(ends)}" if ends else " when its configuration says"
    if progress.judge == "aggregate" or not escalating:
        return TargetState(
            f"canary {deployment_id} widening to revision {good}, its slice verified healthy: CodeDeploy moves the "
            f"rest{when}; Rollguard leaves it running"
        )
    if paused:
        return TargetState(
            f"canary {deployment_id} still shifting to revision {good} (10% now): Rollguard is paused and leaves it; "
            f"CodeDeploy moves the rest{when} unless someone stops it"
        )
    return _stop_unverified(codedeploy, deployment_id, bad)


def _stop_unverified(codedeploy: CodeDeploy, deployment_id: str, bad: str) -> TargetState:
    """Stop a canary whose slice was never judged healthy, with rollback: a retry (or a lost response) finds it
    already stopping or stopped and says so instead of failing."""
    try:
        answer = codedeploy.stop(deployment_id, auto_rollback=True)
    except RollguardError as exc:
        if codedeploy.get(deployment_id).get("status") in IN_FLIGHT:
            return TargetState(
                f"canary {deployment_id} could NOT be stopped ({type(exc).__name__}: {exc}): it is still shifting "
                "traffic; stop it with rollback by hand"
            )
        answer = "already stopped"
    halted = f"canary {deployment_id} stopped with rollback (stop {answer})"
    return TargetState(f"{halted}: traffic returns to revision {bad}", halted=halted)
