"""Shift traffic away from a bad target group: the listener's (or rule's) forward weights move to a healthy one, a
slice first, then all of it. Judged like a canary: the moved slice on its own target group's ALB metrics, next to
the group it left. Reversible by design: an unverified slice is moved back when the incident escalates.

Blame: ELB records weight changes only in CloudTrail, which Rollguard does not read, so a weight change made by
someone else before the alarm is not seen as a change in scope; Rollguard's own are in the audit trail.
"""

import math
from datetime import timedelta
from typing import Any

from rollguard import clock
from rollguard.actions.base import Action, Adapters, Left, StepOutcome
from rollguard.adapters.elb import Forward, LoadBalancers, target_group_counts, target_group_name
from rollguard.deps import Deps, need
from rollguard.errors import NothingToRollBack, TargetNotFound
from rollguard.incident import ActionRecord, ExecutionState, Progress
from rollguard.policy import LadderStep, LoadBalancerTarget, ShiftTrafficStep
from rollguard.verdicts import Judgement, SliceStats, judge_slices

BEFORE = "traffic_before"  # the incident attribute holding the weights Rollguard found (store.remember)


_name = target_group_name


def planned(before: dict[str, int], away_from: str, to: str, scope: str, percent: int) -> dict[str, int]:
    """The weights a step sets, from the weights found before the incident's first shift: the same answer on every
    retry, and the pair's combined weight is kept (other target groups are left as they are)."""
    total = before.get(away_from, 0) + before.get(to, 0)
    moved = total if scope == "full" else max(before.get(to, 0), math.ceil(total * percent / 100))
    return {**before, away_from: total - moved, to: moved}


def _shares(weights: dict[str, int]) -> str:
    total = sum(weights.values()) or 1
    return ", ".join(f"{_name(arn)} {100 * w / total:.0f}%" for arn, w in weights.items())


class ShiftTraffic(Action):
    names = ("shift_traffic",)
    iam = (
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyRule",
        "dynamodb:UpdateItem",  # the weights found, on the incident (store.remember)
    )

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        assert isinstance(step, ShiftTrafficStep)
        share = f"{step.percent}%" if step.scope == "canary" else "all"
        return f"shift {share} of {step.away_from}'s traffic to {step.to}"

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        assert isinstance(step, ShiftTrafficStep)
        target = state.policy.target.load_balancer
        assert target is not None and target.listener_port is not None
        elb = need(deps.elb, "Elastic Load Balancing")
        lb = elb.find(target.name)
        forward = elb.forward(elb.listener(lb, target.listener_port, target.rule_priority))
        groups = elb.target_groups(lb.arn)
        away_from, to = (_resolve(groups, name, target) for name in (step.away_from, step.to))
        if away_from not in forward.weights:
            where = forward.arn.split("/", 1)[1]
            raise TargetNotFound(f"{where} does not forward to {step.away_from}: nothing to shift away from")
        current = {**forward.weights, to: forward.weights.get(to, 0)}
        before = {k: int(v) for k, v in deps.store.remember(state.incident_id, BEFORE, current).items()}
        if before.get(away_from, 0) + before.get(to, 0) == 0:
            raise NothingToRollBack(f"{step.away_from} and {step.to} both have weight 0: no traffic to move")
        after = planned(before, away_from, to, step.scope, step.percent)
        if current != after:
            elb.set_weights(forward, after)
            verb = "shifted"
        else:
            verb = "already shifted"  # a retry after the change was made (its response lost)
        where = f"{target.name}:{target.listener_port}" + (
            f" rule {target.rule_priority}" if target.rule_priority else ""
        )
        return StepOutcome(
            action="shift_traffic",
            scope=step.scope,
            judge="slice" if step.scope == "canary" else "aggregate",
            detail=f"{verb} traffic on listener {where}: {_shares(current)} → {_shares(after)}",
            effect={
                "where": where,
                "arn": forward.arn,
                "load_balancer": lb.dimension,
                "before": before,
                "after": after,
                "away_from": away_from,
                "to": to,
            },
        )

    def verify(self, state: ExecutionState, progress: Progress, deps: Deps, window_s: int) -> Judgement | None:
        """The slice on the target group it moved to, next to the group it left (same window, same metrics)."""
        effect = progress.actions[-1].effect if progress.actions else {}
        if progress.judge != "slice" or not effect:
            return None
        now = clock.now()
        groups = {"good": effect["to"], "bad": effect["away_from"]}
        counts = target_group_counts(
            deps.cloudwatch, effect["load_balancer"], groups, now - timedelta(seconds=window_s), now
        )
        stats = {side: SliceStats(f"target group {_name(groups[side])}", *counts[side]) for side in groups}
        v = state.policy.verify
        return judge_slices(
            stats["good"], stats["bad"], v.min_requests, v.max_error_rate, "the shifted slice", stats["bad"].label
        )

    def leave(
        self, record: ActionRecord, state: ExecutionState, adapters: Adapters, paused: bool, escalating: bool
    ) -> Left | None:
        effect = record.effect
        elb = adapters.elb
        if not effect or elb is None:
            return None
        forward = elb.forward(effect["arn"])
        where = f"listener {effect.get('where', effect['arn'])}"
        now = {k: forward.weights.get(k, 0) for k in effect["after"]}
        unverified = record.scope == "canary" and record.verdict != "recovered"
        before = {k: int(v) for k, v in effect["before"].items()}
        if escalating and unverified and now == before:  # a retried close after its move back (response lost)
            halted = f"the unverified traffic shift on {where} moved back"
            return Left(f"{halted}: {_shares(before)}", halted=halted)
        if now != effect["after"]:
            return Left(f"{where} forwards {_shares(forward.weights)}: changed by someone since Rollguard shifted it")
        if escalating and unverified and not paused:
            return _move_back(elb, forward, effect, where)
        if escalating and unverified:
            return Left(f"{where} forwards {_shares(now)}: Rollguard is paused and leaves the unverified slice")
        return Left(f"{where} forwards {_shares(now)}")

    def follow_up(self, parameters: dict[str, Any]) -> str:
        return "the listener keeps these weights until someone moves traffic back, once the bad target group is fixed"


def _move_back(elb: LoadBalancers, forward: Forward, effect: dict[str, Any], where: str) -> Left:
    before = {k: int(v) for k, v in effect["before"].items()}
    elb.set_weights(forward, {**forward.weights, **before})
    halted = f"the unverified traffic shift on {where} moved back"
    return Left(f"{halted}: {_shares(before)}", halted=halted)


def _resolve(groups: dict[str, str], name_or_arn: str, lb: LoadBalancerTarget) -> str:
    if name_or_arn in groups.values():
        return name_or_arn
    if name_or_arn in groups:
        return groups[name_or_arn]
    raise TargetNotFound(f"target group {name_or_arn} is not attached to load balancer {lb.name}")
