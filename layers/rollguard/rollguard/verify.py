"""Verify: judge the step's window — its slice, through the action that moved it (rollguard.actions), or the alarm
and its metric for a full step — and route the ladder: widen, next step, wait once more, resolve or escalate.
Verify changes nothing on the target."""

from datetime import datetime, timedelta

from rollguard import clock
from rollguard.actions import action_for
from rollguard.assess import gate_for
from rollguard.audit import step_event_key
from rollguard.deps import Deps, record
from rollguard.errors import RollguardError
from rollguard.incident import ExecutionState, Gate, Progress, Route
from rollguard.policy import Policy
from rollguard.verdicts import Judgement, Verdict, judge_aggregate


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
        if not action_for(policy.ladder[i].action).done_by(progress)
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


def verify(state: ExecutionState, deps: Deps) -> Progress:
    progress = state.progress
    if progress is None or state.assessment is None:
        raise RollguardError("verify was called before any action")
    deps.store.renew_lock(state.target_key, state.incident_id, state.lock_ttl + 2 * progress.wait_seconds)
    progress = action_for(progress.action).catch_up(progress, deps)
    now = clock.now()
    policy = state.policy
    window = timedelta(seconds=progress.wait_seconds * (2 if progress.extended else 1))
    judged = action_for(progress.action).verify(state, progress, deps, int(window.total_seconds()))
    if judged is None:
        judged = _judge_alarm(state, deps, now, window)
    verdict, why, measured = judged.verdict, judged.why, judged.measured
    # Verify changes nothing: on escalation Close stops an unverified canary of Rollguard's (unless paused) and
    # says where the target is left (target_state.py), so every escalation path does it, not only this one.
    next_route, next_step, because = route(progress, verdict, policy)
    actions = [*progress.actions]
    if actions:
        actions[-1] = actions[-1].model_copy(update={"verdict": verdict})
    summary = f"Step {progress.step + 1} verified: {verdict} — {why}. Next: {next_route}."
    deps.store.update(state.incident_id, current_step=f"step {progress.step + 1} verified: {verdict}")
    record(
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


def _judge_alarm(state: ExecutionState, deps: Deps, now: datetime, window: timedelta) -> Judgement:
    """After a full step: the alarm back to OK and its metric within the threshold for the required datapoints."""
    alarm = deps.cloudwatch.alarm(state.alarm.name)
    latest: list[float] = []
    if not alarm.composite and (alarm.metric_stat or alarm.metrics):
        span = timedelta(seconds=alarm.period * alarm.evaluation_periods)
        queries = alarm.watched_queries()
        watched = next(q["Id"] for q in queries if q["ReturnData"])
        latest = deps.cloudwatch.values(queries, now - min(span, window), now)[watched]
    verdict, why = judge_aggregate(alarm, latest)
    return Judgement(verdict, why, {"alarm_state": alarm.state, "latest": latest})
