"""Elastic Load Balancing (v2): the forward weights of a listener's default action or of a listener rule.

A forward action distributes requests over up to five target groups by weight, each 0 to 999 (Elastic Load
Balancing API Reference, "TargetGroupTuple"; User Guide for ALB, "Listener rules": forward actions with weighted
target groups). ModifyListener replaces the listener's default actions and ModifyRule a rule's actions as a whole,
so every other part of the action (stickiness, order, other actions) is sent back as it was read.
"""

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rollguard.adapters.aws_errors import AWS_FAILURES, translate
from rollguard.adapters.cloudwatch import sum_query
from rollguard.errors import RollguardError, TargetNotFound

if TYPE_CHECKING:
    from rollguard.adapters.cloudwatch import CloudWatch

MAX_WEIGHT = 999
NAMESPACE = "AWS/ApplicationELB"
REQUESTS, ERRORS = "RequestCount", "HTTPCode_Target_5XX_Count"  # "CloudWatch metrics for your ALB"
_NOT_FOUND = frozenset({"ListenerNotFound", "RuleNotFound", "TargetGroupNotFound", "LoadBalancerNotFound"})


@dataclass(frozen=True)
class Forward:
    """Where a listener or rule forwards: {target group ARN: weight}, and the actions it was read from."""

    arn: str  # the listener's or the rule's ARN
    weights: dict[str, int]
    actions: list[dict[str, Any]]

    @property
    def is_rule(self) -> bool:
        return ":listener-rule/" in self.arn


@dataclass(frozen=True)
class LoadBalancerRef:
    arn: str
    name: str

    @property
    def dimension(self) -> str:
        """The LoadBalancer dimension of AWS/ApplicationELB metrics: app/<name>/<id>."""
        return self.arn.split(":loadbalancer/", 1)[1]


def target_group_dimension(arn: str) -> str:
    """The TargetGroup dimension of AWS/ApplicationELB metrics: targetgroup/<name>/<id>."""
    return "targetgroup/" + arn.split(":targetgroup/", 1)[1]


def target_group_name(arn: str) -> str:
    return arn.split(":targetgroup/", 1)[1].split("/")[0] if ":targetgroup/" in arn else arn


def target_group_counts(
    cloudwatch: "CloudWatch", load_balancer: str, groups: dict[str, str], start: datetime, end: datetime
) -> dict[str, tuple[float, float]]:
    """{side: (requests, target 5XX)} of each target group ARN in ``groups`` {side: ARN} behind the load balancer
    (its ``app/<name>/<id>`` dimension) over [start, end): AWS/ApplicationELB per {TargetGroup, LoadBalancer}."""
    queries = [
        sum_query(
            f"{kind}_{side}",
            NAMESPACE,
            metric,
            {"LoadBalancer": load_balancer, "TargetGroup": target_group_dimension(arn)},
        )
        for side, arn in groups.items()
        for kind, metric in (("requests", REQUESTS), ("errors", ERRORS))
    ]
    values = cloudwatch.values(queries, start, end)
    return {side: (sum(values[f"requests_{side}"]), sum(values[f"errors_{side}"])) for side in groups}


def _forward_action(actions: list[dict[str, Any]], arn: str) -> dict[str, Any]:
    forwards = [a for a in actions if a.get("Type") == "forward"]
    if not forwards:
        raise TargetNotFound(f"{arn} has no forward action to shift weights in")
    return forwards[0]


def _weights(action: dict[str, Any]) -> dict[str, int]:
    groups = action.get("ForwardConfig", {}).get("TargetGroups")
    if groups:
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    return {action["TargetGroupArn"]: 1}  # a plain forward to one target group


class LoadBalancers:
    def __init__(self, client: Any):
        self._elb = client

    def find(self, name: str) -> LoadBalancerRef:
        try:
            found = self._elb.describe_load_balancers(Names=[name])["LoadBalancers"]
        except AWS_FAILURES as exc:
            raise translate(exc, f"looking up load balancer {name}", _NOT_FOUND) from exc
        if not found or found[0].get("Type", "application") != "application":
            raise TargetNotFound(f"{name} is not an Application Load Balancer")
        return LoadBalancerRef(found[0]["LoadBalancerArn"], name)

    def listener(self, load_balancer: LoadBalancerRef, port: int, rule_priority: int | None = None) -> str:
        """The ARN of the load balancer's listener on ``port``, or of that listener's rule of ``rule_priority``."""
        try:
            pages = self._elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=load_balancer.arn)
            listeners = [item for page in pages for item in page["Listeners"] if item["Port"] == port]
            if not listeners:
                raise TargetNotFound(f"load balancer {load_balancer.name} has no listener on port {port}")
            arn = str(listeners[0]["ListenerArn"])
            if rule_priority is None:
                return arn
            pages = self._elb.get_paginator("describe_rules").paginate(ListenerArn=arn)
            rules = [r for page in pages for r in page["Rules"] if r["Priority"] == str(rule_priority)]
        except AWS_FAILURES as exc:
            raise translate(exc, f"looking up the listener of {load_balancer.name} on port {port}", _NOT_FOUND) from exc
        if not rules:
            raise TargetNotFound(f"the listener of {load_balancer.name} on port {port} has no rule {rule_priority}")
        return str(rules[0]["RuleArn"])

    def forward(self, arn: str) -> Forward:
        """The forward weights of a listener's default action (a listener ARN) or of a rule (a listener-rule ARN)."""
        try:
            if ":listener-rule/" in arn:
                actions = self._elb.describe_rules(RuleArns=[arn])["Rules"][0]["Actions"]
            else:
                actions = self._elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]["DefaultActions"]
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading the forward action of {arn}", _NOT_FOUND) from exc
        return Forward(arn, _weights(_forward_action(actions, arn)), actions)

    def load_balancer_of(self, target_group_arn: str) -> LoadBalancerRef:
        """The (first) load balancer a target group receives traffic from (DescribeTargetGroups, LoadBalancerArns)."""
        try:
            found = self._elb.describe_target_groups(TargetGroupArns=[target_group_arn])["TargetGroups"]
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading target group {target_group_arn}", _NOT_FOUND) from exc
        arns = found[0].get("LoadBalancerArns") if found else None
        if not arns:
            raise TargetNotFound(f"target group {target_group_name(target_group_arn)} is behind no load balancer")
        return LoadBalancerRef(arns[0], arns[0].split(":loadbalancer/", 1)[1].split("/")[1])

    def target_groups(self, load_balancer_arn: str) -> dict[str, str]:
        """The load balancer's target groups: {name: ARN}."""
        try:
            pages = self._elb.get_paginator("describe_target_groups").paginate(LoadBalancerArn=load_balancer_arn)
            return {g["TargetGroupName"]: g["TargetGroupArn"] for page in pages for g in page["TargetGroups"]}
        except AWS_FAILURES as exc:
            raise translate(exc, f"listing the target groups of {load_balancer_arn}", _NOT_FOUND) from exc

    def set_weights(self, forward: Forward, weights: dict[str, int]) -> None:
        """Send the forward action back with these weights, everything else as read."""
        if any(not 0 <= w <= MAX_WEIGHT for w in weights.values()):
            raise RollguardError(f"target group weights must be 0 to {MAX_WEIGHT}: {weights}")
        actions = copy.deepcopy(forward.actions)
        action = _forward_action(actions, forward.arn)
        config = action.setdefault("ForwardConfig", {})
        config["TargetGroups"] = [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items()]
        action.pop("TargetGroupArn", None)  # with several groups only ForwardConfig may name them
        for a in actions:  # Describe* answers with fields Modify* does not take for an action of another type
            if a.get("Type") != "forward":
                a.pop("ForwardConfig", None)
        try:
            if forward.is_rule:
                self._elb.modify_rule(RuleArn=forward.arn, Actions=actions)
            else:
                self._elb.modify_listener(ListenerArn=forward.arn, DefaultActions=actions)
        except AWS_FAILURES as exc:
            raise translate(exc, f"setting the forward weights of {forward.arn}", _NOT_FOUND) from exc
