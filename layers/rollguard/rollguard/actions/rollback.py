"""CodeDeploy rollback: stop an in-flight bad deployment with auto-rollback, or deploy the last-known-good revision,
a canary first (Rollguard's own TimeBasedCanary configuration, so Verify decides before CodeDeploy moves the rest),
then widen by letting that canary finish. README: "Widening, and why this way"."""

from datetime import timedelta
from typing import Any

from rollguard import clock
from rollguard.actions.base import Action, Adapters, Left, StepOutcome
from rollguard.actions.ecs_rollback import EcsRollback
from rollguard.adapters.cloudwatch import sum_query
from rollguard.adapters.codedeploy import (
    CANARY_PERCENT,
    FULL_CONFIG,
    IN_FLIGHT,
    CodeDeploy,
    canary_minutes,
    retarget,
)
from rollguard.adapters.ecs import task_set_groups
from rollguard.adapters.elb import target_group_counts, target_group_name
from rollguard.clock import parse_aws_time
from rollguard.deps import Deps, need
from rollguard.durations import format_duration
from rollguard.errors import NothingToRollBack, RollguardError
from rollguard.incident import ActionRecord, Assessment, DeploymentRef, ExecutionState, Progress
from rollguard.policy import LadderStep, SliceMetrics
from rollguard.verdicts import Judgement, SliceStats, judge_slices

ROLLGUARD_MARK = "Rollguard"  # prefix of the descriptions of deployments Rollguard creates
CANARY_SETTLE_SECONDS = 60  # after CodeDeploy's last shift, before the widened rollback is judged
ECS_ROLLING = EcsRollback()  # a rollback step of a service ECS deploys itself (target.ecs without codedeploy)


class Rollback(Action):
    names = ("rollback",)
    iam = (
        "codedeploy:GetDeployment",
        "codedeploy:BatchGetDeployments",
        "codedeploy:GetDeploymentGroup",
        "codedeploy:ListDeployments",
        "codedeploy:GetApplicationRevision",
        "codedeploy:CreateDeployment",
        "codedeploy:StopDeployment",
        "codedeploy:GetDeploymentConfig",
        "codedeploy:CreateDeploymentConfig",
        "codedeploy:UpdateDeploymentGroup",  # overrideAlarmConfiguration on CreateDeployment needs it
    )

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        bad = state.assessment.bad if state and state.assessment else None
        if state is None:
            return f"rollback {step.scope}"
        if state.policy.target.ecs_rolling is not None:
            return ECS_ROLLING.describe(step, state)
        if bad is None:
            return f"{step.scope} rollback (no CodeDeploy deployment in scope)"
        return f"{step.scope} rollback of deployment {bad.deployment_id} (revision {bad.revision_label})"

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        if state.policy.target.ecs_rolling is not None:
            return ECS_ROLLING.take(step, state, deps)
        return rollback(step.scope, state, deps, step.verify.longest)

    def horizon(self, step: LadderStep) -> int:
        """A canary's interval (CodeDeploy's wait before the rest), then the verification window, extended once."""
        canary = canary_minutes(step.verify.longest) * 60 if step.scope == "canary" else 0
        return canary + step.verify.longest

    def rolls_back(self, step: LadderStep, state: ExecutionState) -> str | None:
        bad = state.assessment.bad if state.assessment else None
        return bad.deployment_id if bad else None

    def catch_up(self, progress: Progress, deps: Deps) -> Progress:
        return rollback_found(progress, deps) if progress.stop_pending else progress

    def done_by(self, progress: Progress) -> bool:
        return progress.full_rollback_done  # a full rollback (or a stopped in-flight deployment) left nothing to do

    def verify(self, state: ExecutionState, progress: Progress, deps: Deps, window_s: int) -> Judgement | None:
        """A canary is judged on its slice: the revision it rolled back to, next to the suspect's, same window."""
        metrics, assessment = state.policy.verify.slice, state.assessment
        if progress.judge != "slice" or assessment is None or assessment.bad is None:
            return None
        if assessment.bad.compute_platform == "ECS" and state.policy.target.ecs is not None:
            return ecs_slice(state, deps, window_s)
        if metrics is None:
            return None
        good_label = assessment.last_good.revision_label if assessment.last_good else "?"
        now = clock.now()
        values = deps.cloudwatch.values(
            slice_queries(metrics, {"good": good_label, "bad": assessment.bad.revision_label}),
            now - timedelta(seconds=window_s),
            now,
        )
        good = SliceStats(f"revision {good_label}", sum(values["requests_good"]), sum(values["errors_good"]))
        bad_label = f"revision {assessment.bad.revision_label}"
        bad = SliceStats(bad_label, sum(values["requests_bad"]), sum(values["errors_bad"]))
        v = state.policy.verify
        return judge_slices(good, bad, v.min_requests, v.max_error_rate, "the rolled-back slice", "the deploy")

    def leave(
        self, record: ActionRecord, state: ExecutionState, adapters: Adapters, paused: bool, escalating: bool
    ) -> Left | None:
        return leave_codedeploy(state, adapters.codedeploy, paused, escalating)

    def follow_up(self, parameters: dict[str, Any]) -> str:
        return "fix forward with a new revision rather than redeploying the rolled-back one"


def ecs_slice(state: ExecutionState, deps: Deps, window_s: int) -> Judgement:
    """An ECS blue/green canary is judged per target group: each task set serves its own target group ("Amazon ECS
    blue/green deployments with CodeDeploy"), so the target group of the last-known-good task definition's task set
    is the rolled-back slice, next to the suspect's, on their AWS/ApplicationELB metrics over the same window."""
    assessment, target = state.assessment, state.policy.target.ecs
    assert assessment is not None and assessment.bad is not None and target is not None
    good_label = assessment.last_good.revision_label if assessment.last_good else "?"
    bad_label = assessment.bad.revision_label
    groups = task_set_groups(need(deps.ecs, "the ECS adapter").service(target.cluster, target.service))
    missing = [label for label in (good_label, bad_label) if label not in groups]
    if missing:
        why = f"no task set of {', '.join(missing)} behind a target group of {target.cluster}/{target.service} (yet)"
        return Judgement("inconclusive", why, {"task_sets": groups})
    sides = {"good": groups[good_label], "bad": groups[bad_label]}
    load_balancer = need(deps.elb, "the load balancer adapter").load_balancer_of(sides["good"])
    now = clock.now()
    counts = target_group_counts(
        deps.cloudwatch, load_balancer.dimension, sides, now - timedelta(seconds=window_s), now
    )
    good = SliceStats(f"{good_label} (target group {target_group_name(sides['good'])})", *counts["good"])
    bad = SliceStats(f"{bad_label} (target group {target_group_name(sides['bad'])})", *counts["bad"])
    v = state.policy.verify
    return judge_slices(good, bad, v.min_requests, v.max_error_rate, "the rolled-back slice", "the deploy")


def slice_queries(metrics: SliceMetrics, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        sum_query(
            f"{kind}_{key}",
            metrics.namespace,
            metric_name,
            {**metrics.dimensions, metrics.version_dimension: label},
            metrics.period,
        )
        for key, label in labels.items()
        for kind, metric_name in (("errors", metrics.errors_metric), ("requests", metrics.requests_metric))
    ]


def rollback_found(progress: Progress, deps: Deps) -> Progress:
    """A stop that answered Pending has, by now, usually produced CodeDeploy's rollback deployment: record its id."""
    assert progress.stop_pending
    rollback_id = deps.codedeploy.get(progress.stop_pending).get("rollbackInfo", {}).get("rollbackDeploymentId")
    if not rollback_id:
        return progress
    actions = [*progress.actions]
    if actions:
        actions[-1] = actions[-1].model_copy(update={"deployment_ids": [*actions[-1].deployment_ids, rollback_id]})
    return progress.model_copy(update={"stop_pending": None, "rollback_deployment_id": rollback_id, "actions": actions})


def rollback(scope: str, state: ExecutionState, deps: Deps, verify_seconds: int = 0) -> StepOutcome:
    """CodeDeploy: stop an in-flight deployment with auto-rollback, or deploy the last-known-good revision
    (a canary first, or all at once); a full step after a canary widens it by letting CodeDeploy finish it.
    ``verify_seconds``: the longest verification of a canary step, which its canary interval must outlast."""
    assessment = state.assessment
    if assessment is None or assessment.bad is None:
        raise NothingToRollBack("no CodeDeploy deployment in scope to roll back")
    cd = state.policy.target.codedeploy
    assert cd is not None
    bad = assessment.bad
    platform = bad.compute_platform
    previous = state.progress
    canary_id = previous.rollback_deployment_id if previous else None
    mark = f"{ROLLGUARD_MARK} {state.incident_id}"

    suspect = deps.codedeploy.get(bad.deployment_id)
    stopped_by = suspect.get("rollbackInfo", {}).get("rollbackDeploymentId")
    if assessment.in_flight and suspect.get("status") not in IN_FLIGHT and stopped_by:
        # A retry after this step's stop (or CodeDeploy got there first): the suspect is rolled back; continue.
        return StepOutcome(
            action="rollback",
            scope=scope,
            detail=f"in-flight deployment {bad.deployment_id} already stopped and rolled back by {stopped_by}",
            deployment_ids=[bad.deployment_id, stopped_by],
            rollback_deployment_id=stopped_by,
            full_rollback_done=True,
        )
    if suspect.get("status") in IN_FLIGHT:
        # Still deploying: stopping it with auto-rollback is both faster and what CodeDeploy does best. The stop
        # answers Pending (API "StopDeployment"); the rollback deployment's id is read once it exists (Verify).
        status = deps.codedeploy.stop(bad.deployment_id, auto_rollback=True)
        rollback_id = deps.codedeploy.get(bad.deployment_id).get("rollbackInfo", {}).get("rollbackDeploymentId")
        return StepOutcome(
            action="rollback",
            scope=scope,
            detail=(
                f"stopped in-flight deployment {bad.deployment_id} with automatic rollback (stop {status}"
                f"{f'; rollback {rollback_id}' if rollback_id else ''})"
            ),
            deployment_ids=[bad.deployment_id, *([rollback_id] if rollback_id else [])],
            rollback_deployment_id=rollback_id,
            stop_pending=None if rollback_id else bad.deployment_id,
            full_rollback_done=True,
        )
    good = last_good(assessment)  # fail before changing anything if there is nowhere to go
    alarms, alarm_note = alarm_override(state, deps)

    def roll_back(config: str, what: str) -> str:
        """Deploy the last-known-good revision, marked with the incident; a retry of this step after the deployment
        was created (its response lost, or the audit write after it failed) finds that deployment and continues."""
        description = f"{mark}: {what}"
        since = parse_aws_time(bad.create_time)
        for earlier in deps.codedeploy.deployments(cd.application, cd.deployment_group, since=since):
            if earlier.description == description[:250]:
                return earlier.deployment_id
        revision = retarget(good.revision, bad.revision_label)
        return deps.codedeploy.deploy(cd.application, cd.deployment_group, revision, config, description, alarms)

    if scope == "canary":
        minutes = canary_minutes(verify_seconds)
        config = deps.codedeploy.ensure_canary_config(platform, minutes)
        new_rollback = roll_back(config, "canary rollback")
        return StepOutcome(
            action="rollback",
            scope="canary",
            judge="slice",
            detail=(
                f"canary rollback {new_rollback} to revision {good.revision_label} ({config}: "
                f"{CANARY_PERCENT}% now, the rest after {minutes}m unless Rollguard stops it){alarm_note}"
            ),
            deployment_ids=[bad.deployment_id, new_rollback],
            rollback_deployment_id=new_rollback,
            alarm_override=alarms,
        )
    if canary_id:
        canary = deps.codedeploy.get(canary_id)
        if canary.get("status") in IN_FLIGHT or canary.get("status") == "Succeeded":
            # Widen: CodeDeploy moves the rest at the end of the canary interval (its second increment).
            ends = deps.codedeploy.canary_end(canary)
            remaining = max(0, int((ends - clock.now()).total_seconds())) if ends else 0
            how = (
                f"widening canary {canary_id}: CodeDeploy shifts the rest to revision {good.revision_label} "
                f"at {clock.iso(ends)} (in {format_duration(remaining)})"
                if canary.get("status") in IN_FLIGHT and ends
                else f"canary {canary_id} has already moved all traffic to revision {good.revision_label}"
            )
            return StepOutcome(
                action="rollback",
                scope="full",
                detail=how,
                deployment_ids=[bad.deployment_id, canary_id],
                rollback_deployment_id=canary_id,
                full_rollback_done=True,
                extra_wait=remaining + CANARY_SETTLE_SECONDS if remaining else 0,
            )
    new_rollback = roll_back(FULL_CONFIG[platform], "full rollback")
    verb = f"canary {canary_id} ended {canary.get('status')}; full rollback" if canary_id else "full rollback"
    return StepOutcome(
        action="rollback",
        scope="full",
        detail=f"{verb} {new_rollback} to revision {good.revision_label} ({FULL_CONFIG[platform]}){alarm_note}",
        deployment_ids=[bad.deployment_id, *([canary_id] if canary_id else []), new_rollback],
        rollback_deployment_id=new_rollback,
        full_rollback_done=True,
        alarm_override=alarms,
    )


def alarm_override(state: ExecutionState, deps: Deps) -> tuple[dict[str, Any] | None, str]:
    """The deployment group's own alarms would stop Rollguard's rollback while the incident's alarm is in ALARM
    ("Monitoring deployments with CloudWatch alarms in CodeDeploy"). Override them for this deployment, without the
    alarms that opened this incident (API "CreateDeployment", overrideAlarmConfiguration); None if the group has
    no alarms enabled."""
    cd = state.policy.target.codedeploy
    assert cd is not None
    config = deps.codedeploy.deployment_group(cd.application, cd.deployment_group).get("alarmConfiguration") or {}
    names = [a["name"] for a in config.get("alarms", []) if a.get("name")]
    if not config.get("enabled") or not names:
        return None, ""
    dropped = [n for n in names if state.policy.matches(n) or n == state.alarm.name]
    if not dropped:
        return None, ""
    kept = [n for n in names if n not in dropped]
    override = {
        "enabled": bool(kept),
        "ignorePollAlarmFailure": bool(config.get("ignorePollAlarmFailure", False)),
        "alarms": [{"name": n} for n in kept],
    }
    note = f"; the group's alarm configuration overridden without {', '.join(dropped)}"
    return override, note + (f" (still watching {', '.join(kept)})" if kept else " (alarm polling off)")


def last_good(assessment: Assessment) -> DeploymentRef:
    if assessment.last_good is None:
        raise NothingToRollBack(
            f"no succeeded revision before {assessment.bad.deployment_id if assessment.bad else '?'}"
        )
    return assessment.last_good


def leave_codedeploy(
    state: ExecutionState, codedeploy: CodeDeploy | None, paused: bool, escalating: bool
) -> Left | None:
    """An unverified canary of Rollguard's (its slice never judged healthy) is stopped with rollback on escalation,
    so the target is back where Rollguard found it; while Rollguard is paused nothing is stopped, and the line says
    the canary is still shifting and when CodeDeploy moves the rest. A canary whose slice was verified healthy and
    that is widening is left to finish, and the line says when."""
    progress, assessment = state.progress, state.assessment
    assert progress is not None
    deployment_id = progress.rollback_deployment_id or progress.stop_pending
    if codedeploy is None or deployment_id is None or assessment is None or assessment.bad is None:
        return None
    good = assessment.last_good.revision_label if assessment.last_good else "the last good revision"
    bad = assessment.bad.revision_label
    if deployment_id == progress.stop_pending:  # Rollguard stopped the suspect itself; CodeDeploy rolls it back
        info = codedeploy.get(deployment_id)
        rollback = info.get("rollbackInfo", {}).get("rollbackDeploymentId")
        return Left(
            f"deployment {deployment_id} {info.get('status')}; CodeDeploy's rollback "
            f"{rollback or '(not created yet)'} takes traffic back to the revision before {bad}"
        )
    info = codedeploy.get(deployment_id)
    status = str(info.get("status"))
    if status not in IN_FLIGHT:
        if status == "Succeeded":
            return Left(f"all traffic on revision {good} (Rollguard deployment {deployment_id} Succeeded)")
        rollback = info.get("rollbackInfo", {}).get("rollbackDeploymentId")
        back = f", rolled back by {rollback}" if rollback else ""
        return Left(f"Rollguard deployment {deployment_id} {status}{back}: traffic back on revision {bad}")
    ends = codedeploy.canary_end(info)
    when = f" at {clock.iso(ends)}" if ends else " when its configuration says"
    if progress.judge == "aggregate" or not escalating:
        return Left(
            f"canary {deployment_id} widening to revision {good}, its slice verified healthy: CodeDeploy moves the "
            f"rest{when}; Rollguard leaves it running"
        )
    if paused:
        return Left(
            f"canary {deployment_id} still shifting to revision {good} (10% now): Rollguard is paused and leaves it; "
            f"CodeDeploy moves the rest{when} unless someone stops it"
        )
    return _stop_unverified(codedeploy, deployment_id, bad)


def _stop_unverified(codedeploy: CodeDeploy, deployment_id: str, bad: str) -> Left:
    """Stop a canary whose slice was never judged healthy, with rollback: a retry (or a lost response) finds it
    already stopping or stopped and says so instead of failing."""
    try:
        answer = codedeploy.stop(deployment_id, auto_rollback=True)
    except RollguardError as exc:
        if codedeploy.get(deployment_id).get("status") in IN_FLIGHT:
            return Left(
                f"canary {deployment_id} could NOT be stopped ({type(exc).__name__}: {exc}): it is still shifting "
                "traffic; stop it with rollback by hand"
            )
        answer = "already stopped"
    halted = f"canary {deployment_id} stopped with rollback (stop {answer})"
    return Left(f"{halted}: traffic returns to revision {bad}", halted=halted)
