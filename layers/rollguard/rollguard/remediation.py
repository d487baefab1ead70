"""The remediation steps the state machine runs: assess → act → verify → (act | resolve | escalate) → close.

Decisions are pure functions (``plan_assessment``, ``judge_slice``, ``judge_aggregate``, ``route``);
the step functions around them fetch facts through the adapters and write the audit trail.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from rollguard import clock
from rollguard.adapters.cloudwatch import AlarmInfo, CloudWatch, breaches
from rollguard.adapters.codedeploy import CANARY_CONFIG, FULL_CONFIG, IN_FLIGHT, CodeDeploy, retarget
from rollguard.alarm_event import parse_aws_time
from rollguard.audit import AuditEvent, AuditLog
from rollguard.durations import format_duration
from rollguard.errors import NothingToRollBack, RollguardError
from rollguard.incident import (
    ActionRecord,
    Assessment,
    DeploymentRef,
    ExecutionState,
    Progress,
    Route,
)
from rollguard.policy import Policy, SliceMetrics
from rollguard.store import IncidentStore

ROLLGUARD_MARK = "Rollguard"  # prefix of the descriptions of deployments Rollguard creates
CLOCK_SKEW = timedelta(seconds=60)
LOOKBACK = timedelta(days=90)

Verdict = Literal["recovered", "not_recovered", "inconclusive"]


@dataclass
class Deps:
    codedeploy: CodeDeploy
    cloudwatch: CloudWatch
    audit: AuditLog
    store: IncidentStore


def _record(
    deps: Deps,
    state: ExecutionState,
    kind: str,
    summary: str,
    result: str = "ok",
    reason: str = "",
    event_key: str = "",
    **parameters: object,
) -> None:
    deps.audit.append(
        AuditEvent(
            incident_id=state.incident_id,
            target_key=state.target_key,
            kind=kind,
            summary=summary,
            result=result,
            reason=reason,
            parameters=parameters,
            event_key=event_key,
        )
    )


# ---------------------------------------------------------------- assess


def plan_assessment(
    alarm_state: str, onset: datetime, history: list[DeploymentRef], policy: Policy, alarm_name: str
) -> Assessment:
    """Is there a recent deployment to blame, and a known-good revision to go back to?"""
    cd = policy.target.codedeploy
    group = f"{cd.application}/{cd.deployment_group}"
    window = timedelta(seconds=policy.trigger.require_change_within)
    if alarm_state == "OK":
        reason = f"{alarm_name} was back to OK before any action"
        return Assessment(decision="no_action", reason=reason, summary=f"No action: {reason}.")

    ours = [d for d in history if d.creator == "codeDeployRollback" or d.description.startswith(ROLLGUARD_MARK)]
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
        reason = (
            f"not caused by a deploy: no deployment of {group} in the "
            f"{format_duration(window.total_seconds())} before {alarm_name} fired{last}"
        )
        return Assessment(decision="no_action", reason=reason, summary=f"No action: {reason}.")

    bad = in_scope[0]
    if bad.status in {"Stopped", "Failed"}:
        reason = f"deployment {bad.deployment_id} is already {bad.status}; CodeDeploy handled it"
        return Assessment(decision="no_action", reason=reason, summary=f"No action: {reason}.", bad=bad)
    in_flight = bad.status in IN_FLIGHT
    last_good = next(
        (
            d
            for d in changes
            if d.create_time < bad.create_time and d.status == "Succeeded" and d.revision_label != bad.revision_label
        ),
        None,
    )
    if last_good is None and not in_flight:
        raise NothingToRollBack(
            f"deployment {bad.deployment_id} of {group} has no earlier succeeded revision to roll back to"
        )
    age = format_duration((onset - parse_aws_time(bad.create_time)).total_seconds())
    good_text = f"last good: revision {last_good.revision_label} ({last_good.deployment_id})" if last_good else ""
    reason = (
        f"deployment {bad.deployment_id} (revision {bad.revision_label}, {bad.status}) started {age} "
        f"before {alarm_name} fired"
    )
    return Assessment(
        decision="act",
        reason=reason,
        bad=bad,
        last_good=last_good,
        in_flight=in_flight,
        summary=f"Suspect {reason}; {good_text or 'in flight: CodeDeploy can roll it back'}.",
    )


def assess(state: ExecutionState, deps: Deps) -> Assessment:
    policy = state.policy
    cd = policy.target.codedeploy
    alarm = deps.cloudwatch.alarm(state.alarm.name)
    deps.codedeploy.deployment_group(cd.application, cd.deployment_group)
    onset = parse_aws_time(state.alarm.state_timestamp)
    history = deps.codedeploy.deployments(cd.application, cd.deployment_group, since=onset - LOOKBACK)
    assessment = plan_assessment(alarm.state, onset, history, policy, state.alarm.name)
    _record(
        deps,
        state,
        "assessed",
        assessment.summary,
        result=assessment.decision,
        reason=assessment.reason,
        alarm_state=alarm.state,
        suspect=assessment.bad.deployment_id if assessment.bad else None,
        last_good=assessment.last_good.deployment_id if assessment.last_good else None,
    )
    deps.store.update(
        state.incident_id,
        current_step="assessed",
        suspect_deployment=(assessment.bad.deployment_id if assessment.bad else ""),
    )
    return assessment


# ---------------------------------------------------------------- act


def act(state: ExecutionState, deps: Deps) -> Progress:
    assessment = state.assessment
    if assessment is None or assessment.bad is None:
        raise RollguardError("act was called without an assessment naming a deployment")
    previous = state.progress
    index = previous.next_step if previous and previous.next_step is not None else 0
    step = state.policy.ladder[index]
    cd = state.policy.target.codedeploy
    platform = assessment.bad.compute_platform
    started_at = clock.iso()
    done = previous.full_rollback_done if previous else False
    canary_id = previous.rollback_deployment_id if previous else None
    ids: list[str] = []
    mark = f"{ROLLGUARD_MARK} {state.incident_id}"
    bad = assessment.bad

    def roll_back(config: str, what: str) -> tuple[str, DeploymentRef]:
        """Deploy the last-known-good revision with ``config``; the new deployment's id and that revision."""
        good = _last_good(assessment)
        revision = retarget(good.revision, bad.revision_label)
        return deps.codedeploy.deploy(cd.application, cd.deployment_group, revision, config, f"{mark}: {what}"), good

    try:
        bad_live = deps.codedeploy.get(assessment.bad.deployment_id)
        if bad_live.get("status") in IN_FLIGHT:
            # Still deploying: stopping it with auto-rollback is both faster and what CodeDeploy does best.
            deps.codedeploy.stop(assessment.bad.deployment_id, auto_rollback=True)
            rollback_id = (
                deps.codedeploy.get(assessment.bad.deployment_id).get("rollbackInfo", {}).get("rollbackDeploymentId")
            )
            ids = [assessment.bad.deployment_id, *([rollback_id] if rollback_id else [])]
            detail = f"stopped in-flight deployment {assessment.bad.deployment_id} with automatic rollback"
            judge, done, new_rollback = "aggregate", True, rollback_id
        elif step.scope == "canary":
            new_rollback, good = roll_back(CANARY_CONFIG[platform], "canary rollback")
            ids = [assessment.bad.deployment_id, new_rollback]
            detail = f"canary rollback {new_rollback} to revision {good.revision_label} ({CANARY_CONFIG[platform]})"
            judge = "slice"
        else:
            _last_good(assessment)  # fail before stopping anything if there is nowhere to go
            if canary_id and deps.codedeploy.get(canary_id).get("status") in IN_FLIGHT:
                # CodeDeploy cannot hurry a canary along: stop it where it is, then move everything at once.
                deps.codedeploy.stop(canary_id, auto_rollback=False)
            new_rollback, good = roll_back(FULL_CONFIG[platform], "full rollback")
            ids = [assessment.bad.deployment_id, *([canary_id] if canary_id else []), new_rollback]
            verb = "widened canary to a full rollback" if canary_id else "full rollback"
            detail = f"{verb} {new_rollback} to revision {good.revision_label} ({FULL_CONFIG[platform]})"
            judge, done = "aggregate", True
    except RollguardError as exc:
        _record(
            deps,
            state,
            "action",
            f"{step.action} {step.scope} failed: {exc}",
            result="failed",
            reason=f"{type(exc).__name__}: {exc}",
            step=index,
            action=step.action,
            scope=step.scope,
            started_at=started_at,
        )
        raise
    record = ActionRecord(
        step=index,
        action=step.action,
        scope=step.scope,
        started_at=started_at,
        result="ok",
        deployment_ids=ids,
        detail=detail,
    )
    _record(
        deps,
        state,
        "action",
        detail,
        step=index,
        action=step.action,
        scope=step.scope,
        started_at=started_at,
        deployment_ids=ids,
    )
    deps.store.update(state.incident_id, current_step=f"step {index + 1}: {step.action} {step.scope}")
    return Progress(
        step=index,
        action=step.action,
        scope=step.scope,
        wait_seconds=step.verify.window,
        judge=judge,
        rollback_deployment_id=new_rollback,
        full_rollback_done=done,
        actions=[*(previous.actions if previous else []), record],
        summary=f"Step {index + 1}: {detail}; verifying for {format_duration(step.verify.window)}.",
    )


def _last_good(assessment: Assessment) -> DeploymentRef:
    if assessment.last_good is None:
        raise NothingToRollBack(
            f"no succeeded revision before {assessment.bad.deployment_id if assessment.bad else '?'}"
        )
    return assessment.last_good


# ---------------------------------------------------------------- verify


@dataclass(frozen=True)
class SliceStats:
    label: str
    requests: float
    errors: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def judge_slice(good: SliceStats, bad: SliceStats, min_requests: int, max_error_rate: float) -> tuple[Verdict, str]:
    """After a canary: is the traffic now on the last-known-good revision healthy?"""
    if good.requests < min_requests:
        return "inconclusive", (
            f"only {good.requests:.0f} requests reached revision {good.label} "
            f"(need {min_requests}) — too little traffic to judge"
        )
    rates = (
        f"revision {good.label}: {good.error_rate:.1%} errors over {good.requests:.0f} requests; "
        f"revision {bad.label}: {bad.error_rate:.1%} over {bad.requests:.0f}"
    )
    if good.error_rate <= max_error_rate:
        return "recovered", f"the rolled-back slice is healthy ({rates})"
    return "not_recovered", (
        f"the rolled-back slice is as unhealthy as the rest ({rates}): the deploy is not the cause"
    )


def judge_aggregate(alarm: AlarmInfo, latest_values: list[float]) -> tuple[Verdict, str]:
    """After a full step: alarm back to OK and the metric under its threshold for the required datapoints."""
    if alarm.composite:
        verdicts: dict[str, Verdict] = {"OK": "recovered", "ALARM": "not_recovered"}
        return verdicts.get(alarm.state, "inconclusive"), f"composite alarm {alarm.name} is {alarm.state}"
    needed = alarm.datapoints_to_alarm
    recent = latest_values[:needed]
    if len(recent) < needed:
        return "inconclusive", (
            f"{alarm.name} is {alarm.state} but only {len(recent)} of the {needed} datapoints "
            "needed were reported — no recovery is declared from missing data"
        )
    breaching = [v for v in recent if breaches(alarm, v)]
    values = ", ".join(f"{v:g}" for v in recent)
    if alarm.state == "OK" and not breaching:
        return (
            "recovered",
            f"{alarm.name} is OK and its last {needed} datapoints [{values}] are within {alarm.threshold:g}",
        )
    return "not_recovered", (
        f"{alarm.name} is {alarm.state}; last {needed} datapoints [{values}], "
        f"{len(breaching)} breaching {alarm.threshold:g}"
    )


def route(progress: Progress, verdict: Verdict, policy: Policy) -> tuple[Route, int | None, str]:
    """Where the ladder goes next, and why."""
    step = policy.ladder[progress.step]
    if verdict == "inconclusive":
        if step.verify.extend_once and not progress.extended:
            return "wait_again", None, "inconclusive: extending the window once"
        return "escalate", None, "still inconclusive after extending the window"
    following = [
        i
        for i in range(progress.step + 1, len(policy.ladder))
        if not (progress.full_rollback_done and policy.ladder[i].action == "rollback")
    ]
    if verdict == "recovered":
        if following:
            return "act", following[0], "recovered: widening to the next step"
        return "resolve", None, "recovered"
    if progress.judge == "slice":
        return "escalate", None, "the canary slice did not recover: stopped moving traffic"
    if following:
        return "act", following[0], "not recovered: trying the next step"
    return "escalate", None, "not recovered and no steps left on the ladder"


def _slice_queries(metrics: SliceMetrics, labels: dict[str, str]) -> list[dict[str, object]]:
    queries: list[dict[str, object]] = []
    for key, label in labels.items():
        dims = [{"Name": k, "Value": v} for k, v in metrics.dimensions.items()]
        dims.append({"Name": metrics.version_dimension, "Value": label})
        for kind, metric_name in (("errors", metrics.errors_metric), ("requests", metrics.requests_metric)):
            queries.append(
                {
                    "Id": f"{kind}_{key}",
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {"Namespace": metrics.namespace, "MetricName": metric_name, "Dimensions": dims},
                        "Period": metrics.period,
                        "Stat": "Sum",
                    },
                }
            )
    return queries


def verify(state: ExecutionState, deps: Deps) -> Progress:
    progress, assessment = state.progress, state.assessment
    if progress is None or assessment is None or assessment.bad is None:
        raise RollguardError("verify was called before any action")
    now = clock.now()
    policy = state.policy
    window = timedelta(seconds=progress.wait_seconds * (2 if progress.extended else 1))
    if progress.judge == "slice" and policy.verify.slice is not None:
        good_label = assessment.last_good.revision_label if assessment.last_good else "?"
        values = deps.cloudwatch.values(
            _slice_queries(policy.verify.slice, {"good": good_label, "bad": assessment.bad.revision_label}),
            now - window,
            now,
        )
        good = SliceStats(good_label, sum(values["requests_good"]), sum(values["errors_good"]))
        bad = SliceStats(assessment.bad.revision_label, sum(values["requests_bad"]), sum(values["errors_bad"]))
        verdict, why = judge_slice(good, bad, policy.verify.min_requests, policy.verify.max_error_rate)
        measured: dict[str, object] = {"good": good.__dict__, "bad": bad.__dict__}
    else:
        alarm = deps.cloudwatch.alarm(state.alarm.name)
        latest: list[float] = []
        if not alarm.composite and alarm.metric_stat:
            span = timedelta(seconds=alarm.period * alarm.evaluation_periods)
            latest = deps.cloudwatch.values(
                [{"Id": "alarm_metric", "MetricStat": alarm.metric_stat, "ReturnData": True}],
                now - min(span, window),
                now,
            )["alarm_metric"]
        verdict, why = judge_aggregate(alarm, latest)
        measured = {"alarm_state": alarm.state, "latest": latest}
    next_route, next_step, because = route(progress, verdict, policy)
    canary = progress.rollback_deployment_id if progress.judge == "slice" else None
    if next_route == "escalate" and canary and deps.codedeploy.get(canary).get("status") in IN_FLIGHT:
        # The canary proved nothing (or that the deploy is not the cause): stop moving traffic.
        deps.codedeploy.stop(canary, auto_rollback=True)
        because += f"; canary {canary} stopped"
    actions = [*progress.actions]
    if actions:
        actions[-1] = actions[-1].model_copy(update={"verdict": verdict})
    summary = f"Step {progress.step + 1} verified: {verdict} — {why}. Next: {next_route}."
    deps.store.update(state.incident_id, current_step=f"step {progress.step + 1} verified: {verdict}")
    _record(
        deps,
        state,
        "verification",
        summary,
        result=verdict,
        reason=why,
        step=progress.step,
        judge=progress.judge,
        next=next_route,
        measured=measured,
    )
    return progress.model_copy(
        update={
            "verdict": verdict,
            "reason": f"{why} ({because})",
            "next": next_route,
            "next_step": next_step,
            "extended": progress.extended or next_route == "wait_again",
            "actions": actions,
            "summary": summary,
        }
    )
