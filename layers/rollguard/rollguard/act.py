"""Act: take the next step of the policy's ladder, through its action module (rollguard.actions), after the brakes
and shadow mode have had their say; record what was done, and hand Verify what to wait for and how to judge it."""

from rollguard import clock
from rollguard.actions import action_for
from rollguard.audit import step_event_key
from rollguard.brakes import brake_reason, history_window
from rollguard.clock import parse_aws_time
from rollguard.deps import Deps, record
from rollguard.durations import format_duration
from rollguard.errors import ActionBlocked, RollguardError, TransientAwsError
from rollguard.incident import ActionRecord, ExecutionState, Progress
from rollguard.policy import Brakes, LadderStep


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
        module = action_for(step.action)
        deps.store.renew_lock(state.target_key, state.incident_id, state.lock_ttl + module.horizon(step))
        outcome = module.take(step, state, deps)
    except TransientAwsError:
        raise  # the state machine retries the step; if it never succeeds, the closing event says why
    except RollguardError as exc:
        _record_step(deps, state, step, index, started_at, f"failed: {exc}", "failed", f"{type(exc).__name__}: {exc}")
        raise
    taken = ActionRecord(
        step=index,
        action=outcome.action,
        scope=outcome.scope,
        started_at=started_at,
        result="ok",
        deployment_ids=outcome.deployment_ids,
        detail=outcome.detail,
        effect=outcome.effect,
    )
    approved = state.approval if state.approval and state.approval.step == index else None
    record(
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
        actions=[*(previous.actions if previous else []), taken],
        reverted=[*(previous.reverted if previous else []), *([outcome.reverted] if outcome.reverted else [])],
        summary=(
            f"Step {index + 1}: {outcome.detail}; verifying for {format_duration(step.verify.window)}"
            f"{f' once it has shifted (in {format_duration(outcome.extra_wait)})' if outcome.extra_wait else ''}."
        ),
    )


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
    record(
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
    taken = ActionRecord(
        step=index, action=step.action, scope=step.scope, started_at=started_at, result=result, detail=detail
    )
    return Progress(
        step=index,
        action=step.action,
        scope=step.scope,
        wait_seconds=wait_seconds,
        judge="aggregate",
        actions=[*(previous.actions if previous else []), taken],
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


def _brake(step: LadderStep, state: ExecutionState, deps: Deps) -> str | None:
    brakes = state.policy.brakes or Brakes()
    now = clock.now()
    rolls_back = action_for(step.action).rolls_back(step, state)
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
    would = f"would have: {action_for(step.action).describe(step, state)}"
    record(
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
