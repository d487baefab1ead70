"""The remediation steps the state machine runs: assess → act → verify → (act | resolve | escalate) → close.

Decisions are pure functions (``plan_assessment``, ``judge_slice``, ``judge_aggregate``, ``route``);
the step functions around them fetch facts through the adapters and write the audit trail.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from rollguard import clock
from rollguard.adapters.appconfig import AppConfig
from rollguard.adapters.cloudwatch import AlarmInfo, CloudWatch, breaches
from rollguard.adapters.codedeploy import (
    CANARY_PERCENT,
    FULL_CONFIG,
    IN_FLIGHT,
    ROLLBACK_CREATORS,
    CodeDeploy,
    canary_minutes,
    retarget,
)
from rollguard.audit import AuditEvent, AuditLog
from rollguard.brakes import brake_reason, history_window
from rollguard.clock import parse_aws_time
from rollguard.config_actions import RegionResult, flipped_flags, require_success, revert_profile, set_flag
from rollguard.control import Control
from rollguard.durations import format_duration
from rollguard.errors import ActionBlocked, NothingToRollBack, RollguardError, TransientAwsError
from rollguard.incident import (
    ActionRecord,
    Assessment,
    DeploymentRef,
    ExecutionState,
    Gate,
    Progress,
    Route,
)
from rollguard.journal import Change, Journal, appconfig_scope, codedeploy_scope
from rollguard.policy import (
    Brakes,
    ConfigRevertStep,
    FlagRef,
    FlagStep,
    LadderStep,
    Policy,
    ProfileRef,
    RevertRecentChangeStep,
    RollbackStep,
    SliceMetrics,
)
from rollguard.store import IncidentStore

ROLLGUARD_MARK = "Rollguard"  # prefix of the descriptions of deployments Rollguard creates
CLOCK_SKEW = timedelta(seconds=60)
CANARY_SETTLE_SECONDS = 60  # after CodeDeploy's last shift, before the widened rollback is judged
LOOKBACK = timedelta(days=90)

Verdict = Literal["recovered", "not_recovered", "inconclusive"]


@dataclass
class Deps:
    codedeploy: CodeDeploy
    cloudwatch: CloudWatch
    audit: AuditLog
    store: IncidentStore
    appconfig: AppConfig | None = None
    journal: Journal | None = None
    appconfig_strategy: str = "Rollguard-Immediate"
    region: str = "us-east-1"
    control: Control | None = None


def step_event_key(kind: str, step: int, suffix: str = "") -> str:
    """One audit event per step and kind: the state machine retries whole tasks, and a retry that gets this far
    again finds its event written (AuditLog.append answers False) instead of recording the step twice."""
    return f"{kind}#step{step + 1}{f'#{suffix}' if suffix else ''}"


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
    """The CodeDeploy deployment to blame (if any), its last-known-good predecessor, and why not if none."""
    cd = policy.target.codedeploy
    assert cd is not None
    group = f"{cd.application}/{cd.deployment_group}"
    window = timedelta(seconds=policy.trigger.require_change_within)
    ours = [d for d in history if d.creator in ROLLBACK_CREATORS or d.description.startswith(ROLLGUARD_MARK)]
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
    if bad.status in {"Stopped", "Failed"}:
        return bad, None, f"deployment {bad.deployment_id} is already {bad.status}; CodeDeploy handled it"
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
    bad = last_good = None
    why_not = []
    handled = None
    if policy.target.codedeploy is not None:
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
        assert cd is not None
        blamed.append(
            Change(
                scope_key=codedeploy_scope(cd.application, cd.deployment_group),
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
        good_text = "; in flight: CodeDeploy can roll it back"
    return Assessment(
        decision="act",
        reason=reason,
        bad=bad,
        last_good=last_good,
        in_flight=bool(bad and bad.status in IN_FLIGHT),
        changes=blamed,
        summary=f"Suspect {reason}{good_text}.",
    )


def assess(state: ExecutionState, deps: Deps) -> Assessment:
    policy = state.policy
    alarm = deps.cloudwatch.alarm(state.alarm.name)
    onset = parse_aws_time(state.alarm.state_timestamp)
    history: list[DeploymentRef] = []
    scopes = []
    if (cd := policy.target.codedeploy) is not None:
        deps.codedeploy.deployment_group(cd.application, cd.deployment_group)
        history = deps.codedeploy.deployments(cd.application, cd.deployment_group, since=onset - LOOKBACK)
    if (ac := policy.target.appconfig) is not None:
        scopes.append(appconfig_scope(ac.application, ac.environment))
    since = onset - timedelta(seconds=policy.trigger.require_change_within)
    window = deps.journal.window(scopes, clock.iso(since), clock.iso(onset)) if scopes and deps.journal else None
    changes = window.changes if window else []
    gap = None if window is None or window.completeness.complete else window.completeness.describe()
    assessment = plan_assessment(alarm.state, onset, history, policy, state.alarm.name, changes, gap)
    assessment = assessment.model_copy(update={"gate": gate_for(policy, 0)})
    _record(
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
        changes=[c.change_id for c in assessment.changes],
        journal_gap=gap,  # why the change journal may be missing events of the window; None: it is complete
    )
    deps.store.update(
        state.incident_id,
        current_step="assessed",
        suspect_deployment=(assessment.bad.deployment_id if assessment.bad else ""),
    )
    return assessment


# ---------------------------------------------------------------- act


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


def act(state: ExecutionState, deps: Deps) -> Progress:
    if state.assessment is None:
        raise RollguardError("act was called without an assessment")
    previous = state.progress
    index = previous.next_step if previous and previous.next_step is not None else 0
    step = state.policy.ladder[index]
    started_at = clock.iso()
    if state.skip_step is not None and state.skip_step.step == index:
        return _skipped(step, index, started_at, state, deps)
    blocked = _brake(step, state, deps)
    if blocked:
        _record_step(deps, state, step, index, started_at, f"blocked: {blocked}", "blocked", blocked)
        raise ActionBlocked(blocked)
    if state.policy.mode == "shadow":
        return _shadow(step, index, started_at, state, deps)
    try:
        deps.store.renew_lock(state.target_key, state.incident_id, state.lock_ttl + _step_horizon(step))
        outcome = _take_step(step, state, deps)
    except TransientAwsError:
        raise  # the state machine retries the step; if it never succeeds, the closing event says why
    except RollguardError as exc:
        _record_step(deps, state, step, index, started_at, f"failed: {exc}", "failed", f"{type(exc).__name__}: {exc}")
        raise
    record = ActionRecord(
        step=index,
        action=outcome.action,
        scope=outcome.scope,
        started_at=started_at,
        result="ok",
        deployment_ids=outcome.deployment_ids,
        detail=outcome.detail,
    )
    approved = state.approval if state.approval and state.approval.step == index else None
    _record(
        deps,
        state,
        "action",
        outcome.detail,
        event_key=step_event_key("action", index),
        step=index,
        action=outcome.action,
        scope=outcome.scope,
        started_at=started_at,
        deployment_ids=outcome.deployment_ids,
        regions=outcome.regions,
        reverted_change=outcome.reverted,
        ladder_action=step.action,
        approved_by=approved.approver if approved else None,
        alarm_override=outcome.alarm_override,
    )
    deps.store.update(state.incident_id, current_step=f"step {index + 1}: {outcome.action} {outcome.scope}")
    return Progress(
        step=index,
        action=outcome.action,
        scope=outcome.scope,
        wait_seconds=step.verify.window + outcome.extra_wait,
        judge=outcome.judge,
        stop_pending=outcome.stop_pending,
        rollback_deployment_id=outcome.rollback_deployment_id
        or (previous.rollback_deployment_id if previous else None),
        full_rollback_done=outcome.full_rollback_done or bool(previous and previous.full_rollback_done),
        actions=[*(previous.actions if previous else []), record],
        reverted=[*(previous.reverted if previous else []), *([outcome.reverted] if outcome.reverted else [])],
        summary=(
            f"Step {index + 1}: {outcome.detail}; verifying for {format_duration(step.verify.window)}"
            f"{f' once it has shifted (in {format_duration(outcome.extra_wait)})' if outcome.extra_wait else ''}."
        ),
    )


def _step_horizon(step: LadderStep) -> int:
    """How long a step can keep the incident busy after Act: a canary's interval (CodeDeploy's wait before the
    rest), then the verification window, extended once if allowed."""
    canary = canary_minutes(step.verify.longest) * 60 if step.action == "rollback" and step.scope == "canary" else 0
    return canary + step.verify.longest


def _record_step(
    deps: Deps,
    state: ExecutionState,
    step: LadderStep,
    index: int,
    started_at: str,
    what: str,
    result: str,
    reason: str = "",
) -> None:
    """The audit event of a step that did not run as an action: blocked, failed, skipped or shadow."""
    _record(
        deps,
        state,
        "action",
        f"{step.action} {step.scope} {what}",
        event_key=step_event_key("action", index),
        result=result,
        reason=reason,
        step=index,
        action=step.action,
        scope=step.scope,
        started_at=started_at,
        ladder_action=step.action,
    )


def _unexecuted(
    step: LadderStep,
    index: int,
    started_at: str,
    state: ExecutionState,
    result: str,
    detail: str,
    wait_seconds: int,
    summary: str,
) -> Progress:
    """Progress past a step that changed nothing (skipped, or shadow): the service is judged as it is."""
    previous = state.progress
    record = ActionRecord(
        step=index, action=step.action, scope=step.scope, started_at=started_at, result=result, detail=detail
    )
    return Progress(
        step=index,
        action=step.action,
        scope=step.scope,
        wait_seconds=wait_seconds,
        judge="aggregate",
        actions=[*(previous.actions if previous else []), record],
        reverted=[*(previous.reverted if previous else [])],
        rollback_deployment_id=previous.rollback_deployment_id if previous else None,
        full_rollback_done=bool(previous and previous.full_rollback_done),
        summary=summary,
    )


def _skipped(step: LadderStep, index: int, started_at: str, state: ExecutionState, deps: Deps) -> Progress:
    """Nobody approved the step in time and its policy says skip: record it and judge the service as it is."""
    approval = step.approval
    why = f"no approval within {format_duration(approval.timeout if approval else 0)}; on_timeout: skip"
    _record_step(deps, state, step, index, started_at, f"skipped: {why}", "skipped", why)
    return _unexecuted(
        step,
        index,
        started_at,
        state,
        "skipped",
        why,
        0,
        f"Step {index + 1} skipped ({why}); judging the service as it is.",
    )


def _rolls_back(step: LadderStep, state: ExecutionState) -> str | None:
    """The deployment this step would roll back, if it is a rollback."""
    assessment = state.assessment
    if assessment is None or assessment.bad is None:
        return None
    if isinstance(step, RollbackStep):
        return assessment.bad.deployment_id
    if isinstance(step, RevertRecentChangeStep):
        pending = _pending_changes(state)
        if pending and pending[0].kind == "deploy":
            return assessment.bad.deployment_id
    return None


def _brake(step: LadderStep, state: ExecutionState, deps: Deps) -> str | None:
    brakes = state.policy.brakes or Brakes()
    now = clock.now()
    rolls_back = _rolls_back(step, state)
    since = now - history_window(brakes)
    if rolls_back and state.assessment and state.assessment.bad:
        since = min(since, parse_aws_time(state.assessment.bad.create_time))
    return brake_reason(
        brakes=brakes,
        now=now,
        incident_id=state.incident_id,
        target_key=state.target_key,
        pause=deps.control.paused() if deps.control else None,
        recent_events=deps.audit.for_target(state.target_key, since=clock.iso(since)),
        rolls_back=rolls_back,
    )


def _shadow(step: LadderStep, index: int, started_at: str, state: ExecutionState, deps: Deps) -> Progress:
    """Shadow mode: record what would have been done, change nothing, and let the rest of the path run."""
    would = f"would have: {_describe(step, state)}"
    _record(
        deps,
        state,
        "action",
        would,
        event_key=step_event_key("action", index),
        result="shadow",
        step=index,
        action=step.action,
        scope=step.scope,
        started_at=started_at,
        ladder_action=step.action,
    )
    window = step.verify.window
    return _unexecuted(
        step,
        index,
        started_at,
        state,
        "shadow",
        would,
        window,
        f"Step {index + 1} (shadow): {would}; verifying for {format_duration(window)}.",
    )


def _describe(step: LadderStep, state: ExecutionState) -> str:
    bad = state.assessment.bad if state.assessment else None
    match step:
        case RollbackStep():
            if bad is None:
                return f"{step.scope} rollback (no CodeDeploy deployment in scope)"
            return f"{step.scope} rollback of deployment {bad.deployment_id} (revision {bad.revision_label})"
        case FlagStep():
            return f"turn {step.flag.name} {'on' if step.action == 'flag_on' else 'off'} in {step.flag.profile}"
        case ConfigRevertStep():
            return f"revert {step.config.profile} in {step.config.environment}"
        case _:
            pending = _pending_changes(state)
            return f"undo {pending[0].describe()}" if pending else "undo a recent change (none left)"


def _pending_changes(state: ExecutionState) -> list[Change]:
    done = state.progress.reverted if state.progress else []
    return [c for c in (state.assessment.changes if state.assessment else []) if c.change_id not in done]


def _take_step(step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
    why = f"incident {state.incident_id} ({state.alarm.name})"
    match step:
        case RollbackStep():
            return _rollback(step.scope, state, deps, step.verify.longest)
        case FlagStep():
            enabled = step.action == "flag_on"
            results = set_flag(_appconfig(deps), step.flag, enabled, deps.appconfig_strategy, deps.region, why)
            return _config_outcome(step.action, f"{step.flag.name} {'on' if enabled else 'off'}", results)
        case ConfigRevertStep():
            results = revert_profile(_appconfig(deps), step.config, deps.appconfig_strategy, deps.region, why)
            return _config_outcome("config_revert", f"revert {step.config.profile}", results)
        case _:
            return _revert_recent_change(state, deps, why)


def _appconfig(deps: Deps) -> AppConfig:
    if deps.appconfig is None:
        raise RollguardError("this step needs AppConfig, which is not configured")
    return deps.appconfig


def _config_outcome(action: str, what: str, results: list[RegionResult], reverted: str | None = None) -> StepOutcome:
    require_success(f"{action} {what}", results)
    where = "; ".join(f"{r.region}: {r.detail}" for r in results)
    return StepOutcome(
        action=action,
        scope="full",
        detail=f"{action} — {where}",
        reverted=reverted,
        regions=[r.record() for r in results],
    )


def _revert_recent_change(state: ExecutionState, deps: Deps, why: str) -> StepOutcome:
    """Undo the newest change in scope not yet reverted: a rollback, a flag flip back, or a config revert."""
    pending = _pending_changes(state)
    if not pending:
        raise NothingToRollBack("every change in scope before the alarm has already been reverted")
    change = pending[0]
    if change.kind == "deploy":
        outcome = _rollback("full", state, deps)
        outcome.reverted = change.change_id
        return outcome
    d = change.detail
    profile = ProfileRef(
        application=d["application"], environment=d["environment"], profile=d["profile"], regions=[change.region]
    )
    appconfig = _appconfig(deps)
    if change.kind == "flag":
        ids = appconfig.resolve(change.region, d["application"], d["environment"], d["profile"])
        flipped = flipped_flags(appconfig, ids, int(d["version"]), int(d["deployment_number"]))
        if flipped:
            results: list[RegionResult] = []
            for name, before in sorted(flipped.items()):
                ref = FlagRef(**profile.model_dump(), name=name)
                results += set_flag(appconfig, ref, before, deps.appconfig_strategy, deps.region, why)
            action = "flag_on" if all(flipped.values()) else "flag_off"
            return _config_outcome(action, ", ".join(sorted(flipped)), results, change.change_id)
    results = revert_profile(
        appconfig, profile, deps.appconfig_strategy, deps.region, why, before_deployment=int(d["deployment_number"])
    )
    return _config_outcome("config_revert", f"revert {d['profile']}", results, change.change_id)


def _rollback(scope: str, state: ExecutionState, deps: Deps, verify_seconds: int = 0) -> StepOutcome:
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
    good = _last_good(assessment)  # fail before changing anything if there is nowhere to go
    alarms, alarm_note = _alarm_override(state, deps)

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


def _alarm_override(state: ExecutionState, deps: Deps) -> tuple[dict[str, Any] | None, str]:
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
        if progress.judge == "slice" and following:
            return "act", following[0], "the canary slice recovered: widening to the next step"
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


def _rollback_found(progress: Progress, deps: Deps) -> Progress:
    """A stop that answered Pending has, by now, usually produced CodeDeploy's rollback deployment: record its id."""
    assert progress.stop_pending
    rollback_id = deps.codedeploy.get(progress.stop_pending).get("rollbackInfo", {}).get("rollbackDeploymentId")
    if not rollback_id:
        return progress
    actions = [*progress.actions]
    if actions:
        actions[-1] = actions[-1].model_copy(update={"deployment_ids": [*actions[-1].deployment_ids, rollback_id]})
    return progress.model_copy(update={"stop_pending": None, "rollback_deployment_id": rollback_id, "actions": actions})


def verify(state: ExecutionState, deps: Deps) -> Progress:
    progress, assessment = state.progress, state.assessment
    if progress is None or assessment is None:
        raise RollguardError("verify was called before any action")
    deps.store.renew_lock(state.target_key, state.incident_id, state.lock_ttl + 2 * progress.wait_seconds)
    if progress.stop_pending:
        progress = _rollback_found(progress, deps)
    now = clock.now()
    policy = state.policy
    window = timedelta(seconds=progress.wait_seconds * (2 if progress.extended else 1))
    if progress.judge == "slice" and policy.verify.slice is not None and assessment.bad is not None:
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
    # Verify changes nothing: on escalation Close stops an unverified canary of Rollguard's (unless paused) and
    # says where the target is left (target_state.py), so every escalation path does it, not only this one.
    next_route, next_step, because = route(progress, verdict, policy)
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
        event_key=step_event_key("verification", progress.step, "extended" if progress.extended else ""),
        result=verdict,
        reason=why,
        step=progress.step,
        judge=progress.judge,
        next=next_route,
        measured=measured,
        rollback_deployment_id=progress.rollback_deployment_id,
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
            "gate": gate_for(policy, next_step) if next_route == "act" else Gate(),
        }
    )
