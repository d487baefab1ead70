"""Assess: is the alarm still firing, which recent change in the target's scope could be to blame (a deployment, a
flag flip, a config push), and what was known good before it? ``plan_assessment`` decides; ``assess`` fetches the
facts through the adapters and records the decision."""

from datetime import datetime, timedelta
from typing import Any

from rollguard import clock
from rollguard.accounts import journal_scope
from rollguard.actions.rollback import ROLLGUARD_MARK
from rollguard.adapters.codedeploy import IN_FLIGHT, ROLLBACK_CREATORS
from rollguard.adapters.ecs import ROLLBACK_CREATOR as ECS_ROLLBACK_CREATOR
from rollguard.adapters.ecs import ROLLING_BACK
from rollguard.clock import parse_aws_time
from rollguard.deps import Deps, need, record
from rollguard.durations import format_duration
from rollguard.errors import NothingToRollBack, TargetNotFound
from rollguard.incident import MAX_CHANGES_KEPT, Assessment, DeploymentRef, ExecutionState, Gate
from rollguard.journal import Change, appconfig_scope, codedeploy_scope
from rollguard.policy import Policy

CLOCK_SKEW = timedelta(seconds=60)
LOOKBACK = timedelta(days=90)


def gate_for(policy: Policy, step: int | None) -> Gate:
    """The approval gate of ``policy.ladder[step]`` (not required when there is no such step)."""
    if step is None or step >= len(policy.ladder) or policy.ladder[step].approval is None:
        return Gate(step=step or 0)
    approval = policy.ladder[step].approval
    assert approval is not None
    return Gate(required=approval.required, step=step, timeout_seconds=approval.timeout, on_timeout=approval.on_timeout)


def _deploy_suspect(
    onset: datetime, history: list[DeploymentRef], policy: Policy, alarm_name: str
) -> tuple[DeploymentRef | None, DeploymentRef | None, str]:
    """The deployment to blame (if any: CodeDeploy's, or ECS's own for a rolling service), its last-known-good
    predecessor, and why not if none."""
    group, deployer = _deployed(policy)
    window = timedelta(seconds=policy.trigger.require_change_within)
    undoing = ROLLBACK_CREATORS | {ECS_ROLLBACK_CREATOR}
    ours = [d for d in history if d.creator in undoing or d.description.startswith(ROLLGUARD_MARK)]
    changes = [d for d in history if d not in ours]
    in_scope = [d for d in changes if onset - window <= parse_aws_time(d.create_time) <= onset + CLOCK_SKEW]
    if not in_scope:
        before = [d for d in changes if parse_aws_time(d.create_time) <= onset]
        last = (
            f"; the last deployment, {before[0].deployment_id}, was "
            f"{format_duration((onset - parse_aws_time(before[0].create_time)).total_seconds())} before the alarm"
            if before
            else ""
        )
        return (
            None,
            None,
            (
                f"no deployment of {group} in the {format_duration(window.total_seconds())} before "
                f"{alarm_name} fired{last}"
            ),
        )
    bad = in_scope[0]
    ecs_rolling_back = bad.revision.get("ecsStatus") in ROLLING_BACK
    if bad.status in {"Stopped", "Failed"} and not ecs_rolling_back:
        return bad, None, f"deployment {bad.deployment_id} is already {bad.status}; {deployer} handled it"
    # ECS rolling a deployment back (its circuit breaker) is acted on: the step records ECS's rollback instead of
    # fighting it, and the ladder verifies it worked (actions/ecs_rollback.py).
    # What was live before the suspect: rollbacks (Rollguard's or CodeDeploy's) count — they deployed a good revision.
    last_good = next(
        (
            d
            for d in history
            if d.create_time < bad.create_time and d.status == "Succeeded" and d.revision_label != bad.revision_label
        ),
        None,
    )
    only_rollbacks = all(step.action == "rollback" for step in policy.ladder)
    if last_good is None and bad.status not in IN_FLIGHT and only_rollbacks:
        raise NothingToRollBack(
            f"deployment {bad.deployment_id} of {group} has no earlier succeeded revision to roll back to"
        )
    return bad, last_good, ""


def _deploys_the_service(group: dict[str, Any], policy: Policy) -> None:
    """With target.ecs, the CodeDeploy group must deploy that service (GetDeploymentGroup, ecsServices): a canary
    judged on another service's task sets would judge the wrong thing."""
    ecs, cd = policy.target.ecs, policy.target.codedeploy
    if ecs is None or cd is None:
        return
    services = [(s.get("clusterName"), s.get("serviceName")) for s in group.get("ecsServices") or []]
    if (ecs.cluster, ecs.service) not in services:
        found = ", ".join(f"{c}/{s}" for c, s in services) or "no ECS service"
        raise TargetNotFound(
            f"deployment group {cd.application}/{cd.deployment_group} deploys {found}, not target.ecs "
            f"{ecs.cluster}/{ecs.service}"
        )


def _deployed(policy: Policy) -> tuple[str, str]:
    """What deploys the target, in words: (its name, who deploys it)."""
    if (cd := policy.target.codedeploy) is not None:
        return f"{cd.application}/{cd.deployment_group}", "CodeDeploy"
    ecs = policy.target.ecs
    assert ecs is not None
    return f"ECS service {ecs.cluster}/{ecs.service}", "ECS"


def plan_assessment(
    alarm_state: str,
    onset: datetime,
    history: list[DeploymentRef],
    policy: Policy,
    alarm_name: str,
    changes: list[Change] | None = None,
    journal_gap: str | None = None,
) -> Assessment:
    """Which recent change (a deployment, a flag flip, a config push) could be to blame, newest first, and a
    known-good revision to go back to? Changes that started after the alarm fired are never blamed.
    ``journal_gap`` says why the change journal may be missing events of the window (None: it is complete)."""
    if alarm_state == "OK":
        reason = f"{alarm_name} was back to OK before any action"
        return Assessment(decision="no_action", reason=reason, summary=f"No action: {reason}.")
    deploys = policy.target.codedeploy is not None or policy.target.ecs is not None
    if not deploys and policy.target.appconfig is None:
        return _traffic_only(alarm_name, alarm_state, policy)
    bad = last_good = None
    why_not = []
    handled = None
    if deploys:
        bad, last_good, no_deploy = _deploy_suspect(onset, history, policy, alarm_name)
        if no_deploy:
            why_not.append(no_deploy)
            handled, bad = bad, None
    config_changes = [c for c in changes or [] if c.kind != "deploy" and c.started <= onset]
    if bad is None and not config_changes and journal_gap and policy.target.appconfig is not None:
        # "No change" would be a guess: the change that caused the alarm may be the one the journal missed.
        reason = "; ".join([f"cannot tell what changed: {journal_gap}", *why_not])
        return Assessment(decision="escalate", reason=reason, summary=f"Escalating: {reason}.", bad=handled)
    if handled is not None and not config_changes:
        return Assessment(decision="no_action", reason=why_not[0], summary=f"No action: {why_not[0]}.", bad=handled)
    if bad is None and not config_changes:
        if policy.target.appconfig is not None:
            ac = policy.target.appconfig
            why_not.append(f"no flag or configuration change of {ac.application}/{ac.environment} in that window")
        reason = f"not caused by a deploy or a configuration change: {'; '.join(why_not)}"
        if policy.target.appconfig is None:
            reason = f"not caused by a deploy: {'; '.join(why_not)}"
        return Assessment(decision="no_action", reason=reason, summary=f"No action: {reason}.")
    blamed = list(config_changes)
    if bad is not None:
        cd = policy.target.codedeploy
        blamed.append(
            Change(
                scope_key=codedeploy_scope(cd.application, cd.deployment_group) if cd else policy.target.key,
                change_id=bad.deployment_id,
                kind="deploy",
                at=clock.iso(parse_aws_time(bad.create_time)),
                state=bad.status,
                region="",
                by=bad.creator,
                detail={"deployment_id": bad.deployment_id, "revision": bad.revision_label, "status": bad.status},
            )
        )
    blamed.sort(key=lambda c: c.at, reverse=True)
    newest = blamed[0]
    age = format_duration((onset - newest.started).total_seconds())
    reason = f"{newest.describe()} started {age} before {alarm_name} fired"
    if len(blamed) > 1:
        reason += f" (and {len(blamed) - 1} earlier change{'s' if len(blamed) > 2 else ''} in scope)"
    good_text = ""
    if last_good is not None:
        good_text = f"; last good: revision {last_good.revision_label} ({last_good.deployment_id})"
    elif bad is not None and bad.status in IN_FLIGHT:
        good_text = f"; in flight: {_deployed(policy)[1]} can roll it back"
    return Assessment(
        decision="act",
        reason=reason,
        bad=bad,
        last_good=last_good,
        in_flight=bool(bad and bad.status in IN_FLIGHT),
        changes=blamed[:MAX_CHANGES_KEPT],
        changes_in_scope=len(blamed),
        summary=f"Suspect {reason}{good_text}.",
    )


def assess(state: ExecutionState, deps: Deps) -> Assessment:
    policy = state.policy
    alarm = deps.cloudwatch.alarm(state.alarm.name)
    onset = parse_aws_time(state.alarm.state_timestamp)
    history: list[DeploymentRef] = []
    scopes = []
    if (cd := policy.target.codedeploy) is not None:
        group = deps.codedeploy.deployment_group(cd.application, cd.deployment_group)
        _deploys_the_service(group, policy)
        history = deps.codedeploy.deployments(cd.application, cd.deployment_group, since=onset - LOOKBACK)
    elif (ecs := policy.target.ecs) is not None:
        services = need(deps.ecs, "the ECS adapter")
        services.service(ecs.cluster, ecs.service)  # a missing service fails here, with its name
        history = services.deployments(ecs.cluster, ecs.service, since=onset - LOOKBACK)
    if (ac := policy.target.appconfig) is not None:
        member_account = state.location.member_account if state.location else None
        scopes.append(journal_scope(appconfig_scope(ac.application, ac.environment), member_account))
    since = onset - timedelta(seconds=policy.trigger.require_change_within)
    window = deps.journal.window(scopes, clock.iso(since), clock.iso(onset)) if scopes and deps.journal else None
    changes = window.changes if window else []
    gap = None if window is None or window.completeness.complete else window.completeness.describe()
    assessment = plan_assessment(alarm.state, onset, history, policy, state.alarm.name, changes, gap)
    assessment = assessment.model_copy(update={"gate": gate_for(policy, 0)})
    record(
        deps,
        state,
        "assessed",
        assessment.summary,
        event_key="assessed",  # one per incident: a retried Assess finds it written
        result=assessment.decision,
        reason=assessment.reason,
        alarm_state=alarm.state,
        suspect=assessment.bad.deployment_id if assessment.bad else None,
        last_good=assessment.last_good.deployment_id if assessment.last_good else None,
        changes=[c.change_id for c in assessment.changes],  # the newest MAX_CHANGES_KEPT: an audit item is capped too
        changes_in_scope=assessment.changes_in_scope,
        journal_gap=gap,  # why the change journal may be missing events of the window; None: it is complete
    )
    deps.store.update(
        state.incident_id,
        current_step="assessed",
        suspect_deployment=(assessment.bad.deployment_id if assessment.bad else ""),
    )
    return assessment


def _traffic_only(alarm_name: str, alarm_state: str, policy: Policy) -> Assessment:
    """A load balancer alone has no change history Rollguard reads: ELB records listener and weight changes only in
    CloudTrail (README, "What Rollguard sees"). The alarm still firing is the signal; the ladder moves traffic away,
    reversibly, and verifies that it helped."""
    lb = policy.target.load_balancer
    assert lb is not None
    reason = (
        f"{alarm_name} is {alarm_state} on load balancer {lb.name}; no change history to blame there "
        "(weight changes by others are not seen), so traffic is moved away from what is failing"
    )
    return Assessment(decision="act", reason=reason, summary=f"Acting: {reason}.")
