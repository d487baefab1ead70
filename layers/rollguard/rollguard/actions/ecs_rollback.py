"""ECS rolling update rollback: a ``rollback`` step of a policy whose target is an ECS service that ECS itself deploys
(``target.ecs`` without ``target.codedeploy``).

- ECS is already rolling the suspect back (its deployment circuit breaker, or an earlier attempt of this step):
  Rollguard does not fight it; it records it and judges the result.
- The suspect is still in progress: StopServiceDeployment with stopType ROLLBACK, ECS's own rollback to the service
  revision before it ("Stopping Amazon ECS service deployments"; usable even where the circuit breaker's rollback is
  off).
- The suspect completed: UpdateService back to the last-known-good task definition, a new rolling deployment
  ("Updating an Amazon ECS service"). A retry finds the service already going there and continues; a service that
  now runs a third task definition (someone deployed since) is not rolled back over.

A rolling update replaces tasks, so there is no slice to judge first: the step is full and judged on the alarm once
ECS has finished replacing the tasks. How long that takes depends on the service (its task count, minimum healthy and
maximum percent, how long a task takes to pass its health checks), so the window starts after as long as ECS took to
roll out the suspect (or, if it is still rolling out, the deployment before it), at most ROLLOUT_CAP; a rollout still
unfinished when the window ends is inconclusive, and the window is extended once.
"""

from typing import Any

from rollguard.actions.base import Action, Adapters, Left, StepOutcome
from rollguard.adapters.ecs import (
    IN_FLIGHT,
    ROLLING_BACK,
    EcsServices,
    primary_deployment,
    short_id,
    task_definition_label,
)
from rollguard.clock import parse_aws_time
from rollguard.deps import Deps, need
from rollguard.errors import NothingToRollBack, RollbackFailed
from rollguard.incident import ActionRecord, DeploymentRef, ExecutionState, Progress
from rollguard.policy import EcsServiceTarget, LadderStep
from rollguard.verdicts import Judgement, Verdict

ECS_ROLLBACK = "ecs_rollback"  # the concrete action a rollback step of an ECS rolling service records
# The longest Rollguard waits for ECS to replace tasks before the window starts: less than the shortest lock_ttl
# (policy.SHORTEST_LOCK_TTL, 15 minutes), so the incident keeps its target's lock through the wait.
ROLLOUT_CAP = 10 * 60


class EcsRollback(Action):
    """Reached through the ``rollback`` module (actions/rollback.py), which answers for the ladder step (its brakes,
    horizon, what it makes redundant); this module takes the step and answers for what it recorded."""

    names = (ECS_ROLLBACK,)
    iam = ("ecs:DescribeServices", "ecs:DescribeServiceDeployments", "ecs:UpdateService", "ecs:StopServiceDeployment")

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        bad = state.assessment.bad if state and state.assessment else None
        if bad is None:
            return "ECS rollback (no ECS deployment in scope)"
        good = state.assessment.last_good if state and state.assessment else None
        to = f" to {good.revision_label}" if good else ""
        return f"ECS rollback of deployment {bad.deployment_id} ({bad.revision_label}){to}"

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        target = _service(state)
        ecs = need(deps.ecs, "the ECS adapter")
        assessment = state.assessment
        if assessment is None or assessment.bad is None:
            raise NothingToRollBack(f"no ECS deployment of {target.cluster}/{target.service} in scope to roll back")
        bad = assessment.bad
        where = f"ECS service {target.cluster}/{target.service}"
        suspect = ecs.describe_deployment(bad.revision["serviceDeploymentArn"])
        status = str(suspect.get("status"))
        effect: dict[str, Any] = {"cluster": target.cluster, "service": target.service}
        if status in ROLLING_BACK:
            reason = (suspect.get("rollback") or {}).get("reason") or suspect.get("statusReason") or ""
            return StepOutcome(
                action=ECS_ROLLBACK,
                scope="full",
                detail=(
                    f"ECS is already rolling deployment {bad.deployment_id} of {where} back ({status}"
                    f"{': ' + reason if reason else ''}); Rollguard leaves the rollback to ECS"
                ),
                deployment_ids=[bad.deployment_id],
                full_rollback_done=True,
                extra_wait=rollout_estimate(state),
                effect={**effect, "service_deployment": bad.revision["serviceDeploymentArn"]},
            )
        if status in IN_FLIGHT:
            ecs.stop_with_rollback(bad.revision["serviceDeploymentArn"])
            return StepOutcome(
                action=ECS_ROLLBACK,
                scope="full",
                detail=(
                    f"stopped in-progress deployment {bad.deployment_id} of {where} ({bad.revision_label}) with "
                    "rollback: ECS rolls the service back to the revision before it"
                ),
                deployment_ids=[bad.deployment_id],
                full_rollback_done=True,
                extra_wait=rollout_estimate(state),
                effect={**effect, "service_deployment": bad.revision["serviceDeploymentArn"]},
            )
        good = _last_good(state, bad)
        good_td = str(good.revision["taskDefinition"])
        service = ecs.service(target.cluster, target.service)
        running = str(service.get("taskDefinition", ""))
        if running == good_td:  # a retry after UpdateService (its response lost, or the audit write after it failed)
            deployment = str(primary_deployment(service).get("id", "?"))
            how = f"already rolling back to {good.revision_label} (deployment {deployment})"
        elif running != bad.revision["taskDefinition"]:
            raise RollbackFailed(
                f"{where} now runs {task_definition_label(running)}, not the suspect {bad.revision_label}: someone "
                "deployed since, and Rollguard does not roll back over a newer deployment"
            )
        else:
            deployment = ecs.roll_back_to(target.cluster, target.service, good_td)
            how = f"rolling back to {good.revision_label} with UpdateService (deployment {deployment})"
        return StepOutcome(
            action=ECS_ROLLBACK,
            scope="full",
            detail=f"{where}: {how}, replacing {bad.revision_label}'s tasks",
            deployment_ids=[bad.deployment_id, deployment],
            rollback_deployment_id=deployment,
            full_rollback_done=True,
            extra_wait=rollout_estimate(state),
            effect={**effect, "task_definition": good_td, "deployment": deployment},
        )

    def verify(self, state: ExecutionState, progress: Progress, deps: Deps, window_s: int) -> Judgement | None:
        """Until ECS has replaced the tasks, the alarm judges a service still half on the suspect: inconclusive.
        Once the rollout is done, None: the alarm and its metric judge it (a full step)."""
        effect = progress.actions[-1].effect if progress.actions else {}
        if not effect:
            return None
        rollout = _rollout(need(deps.ecs, "the ECS adapter"), effect)
        if rollout is None:
            return None
        verdict, why = rollout
        return Judgement(verdict, why, {"ecs_rollout": why})

    def leave(
        self, record: ActionRecord, state: ExecutionState, adapters: Adapters, paused: bool, escalating: bool
    ) -> Left | None:
        """A rollback to a known-good revision is never undone; the line says where the service is."""
        effect = record.effect or {}
        if adapters.ecs is None or not effect:
            return None
        service = adapters.ecs.service(effect["cluster"], effect["service"])
        primary = primary_deployment(service)
        label = task_definition_label(str(service.get("taskDefinition", "")))
        state_text = primary.get("rolloutState", "?")
        running = f"{primary.get('runningCount', '?')}/{primary.get('desiredCount', '?')} tasks"
        return Left(
            f"ECS service {effect['cluster']}/{effect['service']} on {label} (deployment {primary.get('id', '?')} "
            f"{state_text}, {running})"
        )

    def follow_up(self, parameters: dict[str, Any]) -> str:
        return "fix forward with a new task definition revision rather than redeploying the rolled-back one"


def rollout_estimate(state: ExecutionState) -> int:
    """Seconds ECS will take to replace the tasks: as long as it took to roll out the suspect, or, while that is
    still rolling out, the deployment before it (the same service, tasks and settings); at most ROLLOUT_CAP."""
    assessment = state.assessment
    assert assessment is not None
    for deployment in (assessment.bad, assessment.last_good):
        if deployment is not None and deployment.complete_time and deployment.create_time:
            took = parse_aws_time(deployment.complete_time) - parse_aws_time(deployment.create_time)
            return min(ROLLOUT_CAP, max(0, int(took.total_seconds())))
    return 0


def _service(state: ExecutionState) -> EcsServiceTarget:
    target = state.policy.target.ecs
    assert target is not None, "an ECS rollback needs target.ecs"
    return target


def _last_good(state: ExecutionState, bad: DeploymentRef) -> DeploymentRef:
    assert state.assessment is not None
    good = state.assessment.last_good
    if good is None or not good.revision.get("taskDefinition"):
        raise NothingToRollBack(f"no earlier completed ECS deployment before {bad.deployment_id} to roll back to")
    return good


def _rollout(ecs: EcsServices, effect: dict[str, Any]) -> tuple[Verdict, str] | None:
    """(verdict, why) while ECS's rollback is unfinished or failed; None once it is done."""
    if "service_deployment" in effect:  # ECS's own rollback of the suspect (StopServiceDeployment or circuit breaker)
        found = ecs.describe_deployment(effect["service_deployment"])
        status = str(found.get("status"))
        name = short_id(effect["service_deployment"])
        if status == "ROLLBACK_SUCCESSFUL":
            return None
        if status in {"ROLLBACK_FAILED", "STOPPED"}:
            return "not_recovered", f"ECS's rollback of deployment {name} ended {status}"
        return "inconclusive", f"ECS is still rolling deployment {name} back ({status})"
    service = ecs.service(effect["cluster"], effect["service"])
    primary = primary_deployment(service)
    label = task_definition_label(effect["task_definition"])
    if primary.get("taskDefinition") != effect["task_definition"]:
        now = task_definition_label(str(primary.get("taskDefinition", "?")))
        return "not_recovered", f"the service is now deploying {now}, not the rollback to {label}"
    rollout = primary.get("rolloutState")
    if rollout == "COMPLETED":
        return None
    if rollout == "FAILED":
        return "not_recovered", f"the rollback to {label} failed: {primary.get('rolloutStateReason', '')}"
    return "inconclusive", (
        f"ECS is still replacing tasks with {label} ({primary.get('runningCount', 0)} of "
        f"{primary.get('desiredCount', '?')} running)"
    )
