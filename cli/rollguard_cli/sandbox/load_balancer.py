"""A service behind an Application Load Balancer, for the sandbox's traffic rung (opt-in: ``Sandbox(...,
load_balancer=LoadBalancerSpec(...))``). docs/sandbox-traffic.md lists each behaviour with its AWS source.

Provisioned on moto's EC2 and ELBv2: a VPC, one subnet per zone, an internet-facing ALB in those subnets, the target
groups, and an HTTP:80 listener whose default action forwards to the target groups with the spec's weights (plus,
optionally, one path-pattern rule that a share of the requests matches). moto's ELBv2 backend is then **the truth of
who serves traffic**: each minute the World reads the listener's (and the rule's) ``ForwardConfig.TargetGroups``
weights as they stood during the minute, and the zonal shifts in effect, and splits the requests:

- over the load balancer's zones, evenly ("How Elastic Load Balancing works": a client's DNS lookup returns the
  load balancer nodes' addresses and requests spread over them), except the zone of an applied zonal shift, whose
  node is withdrawn from DNS ("How a zonal shift works", ARC developer guide). A shift takes effect when it starts and
  ends when it is canceled or expires, on the virtual clock; the minute it starts in is split by time. Clients that
  keep connections open for a while after the shift ("Limit the time that clients stay connected") are not modelled;
- over the target groups by weight ("Listeners for your Application Load Balancers", forward actions: "distributes
  traffic to the target groups based on the weight"; "TargetGroupTuple": the range is 0 to 999, which the sandbox
  enforces on CreateListener/ModifyListener/CreateRule/ModifyRule with ``ValidationError``, as moto does not);
- over the targets' zones: with cross-zone load balancing off (``load_balancing.cross_zone.enabled=false`` on the
  target groups, the spec's default) a node routes to targets in its own zone; on, to targets in every zone
  ("Cross-zone load balancing for target groups", ELB user guide) except the shifted one ("Zonal shift for your
  Application Load Balancer", Cross-zone load balancing).

The error model ``(target group name, Availability Zone name of the target, time) -> error rate`` says how many of a
slice's requests end in a target 5XX. Metrics follow "CloudWatch metrics for your Application Load Balancer":
``AWS/ApplicationELB`` ``RequestCount`` and ``HTTPCode_Target_5XX_Count`` (unit Count, statistic Sum), one datapoint a
minute per dimension set ``{LoadBalancer}``, ``{AvailabilityZone, LoadBalancer}`` (the zone of the load balancer
node) and ``{TargetGroup, LoadBalancer}``; ``LoadBalancer`` is the ARN's ``app/<name>/<id>`` suffix, ``TargetGroup``
``targetgroup/<name>/<id>``. Both metrics are reported only with a nonzero value ("Reporting criteria: There is a
nonzero value"): a minute with no 5XX publishes no ``HTTPCode_Target_5XX_Count`` datapoint.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NAMESPACE = "AWS/ApplicationELB"
MAX_WEIGHT = 999
SLICES = 6  # a minute is served in six ten-second slices: weights and shifts are read at each slice's start

# (target group name, Availability Zone name of the target, time) -> share of its requests that end in a target 5XX
TrafficErrorModel = Callable[[str, str, datetime], float]


@dataclass(frozen=True)
class TargetGroupSpec:
    name: str
    weight: int


@dataclass(frozen=True)
class RuleSpec:
    """A listener rule forwarding ``share`` of the requests (those matching ``path``) with its own weights."""

    priority: int = 10
    path: str = "/checkout/*"
    share: float = 1.0
    weights: tuple[TargetGroupSpec, ...] | None = None  # None: the load balancer's target groups and weights


@dataclass(frozen=True)
class LoadBalancerSpec:
    name: str = "checkout"
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c")
    target_groups: tuple[TargetGroupSpec, ...] = (
        TargetGroupSpec("checkout-blue", 100),
        TargetGroupSpec("checkout-green", 0),
    )
    requests_per_minute: int = 1200
    error_rate: TrafficErrorModel = field(default=lambda target_group, zone, at: 0.0)
    zonal_shift: bool = True  # the load balancer attribute zonal_shift.config.enabled
    cross_zone: bool = False  # the target groups' load_balancing.cross_zone.enabled
    rule: RuleSpec | None = None
    listener_port: int = 80  # the HTTP listener's port


@dataclass
class ProvisionedLoadBalancer:
    spec: LoadBalancerSpec
    arn: str
    listener_arn: str
    target_groups: dict[str, str]  # name → ARN
    zone_ids: dict[str, str]  # AZ name → AZ ID
    rule_arn: str | None = None

    @property
    def dimension(self) -> str:
        """The ``LoadBalancer`` dimension: the ARN's final portion, ``app/<name>/<id>``."""
        return self.arn.split(":loadbalancer/", 1)[1]

    def target_group_dimension(self, name: str) -> str:
        """The ``TargetGroup`` dimension: the ARN's final portion, ``targetgroup/<name>/<id>``."""
        return self.target_groups[name].rsplit(":", 1)[1]


def provision(ec2: Any, elbv2: Any, spec: LoadBalancerSpec) -> ProvisionedLoadBalancer:
    """The spec's load balancer on moto, through the ordinary EC2 and ELBv2 APIs."""
    zones = {z["ZoneName"]: z["ZoneId"] for z in ec2.describe_availability_zones()["AvailabilityZones"]}
    unknown = [z for z in spec.zones if z not in zones]
    if unknown:
        raise ValueError(f"not Availability Zones of the Region: {unknown}")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # DNS hostnames on, as a VPC for Fargate tasks has them (awsvpc tasks get a private DNS name; moto needs it too).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(spec.zones)
    ]
    lb_arn = elbv2.create_load_balancer(Name=spec.name, Subnets=subnets, Type="application", Scheme="internet-facing")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    if spec.zonal_shift:
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=lb_arn, Attributes=[{"Key": "zonal_shift.config.enabled", "Value": "true"}]
        )
    groups = {}
    for group in spec.target_groups:
        arn = elbv2.create_target_group(Name=group.name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "load_balancing.cross_zone.enabled", "Value": str(spec.cross_zone).lower()}],
        )
        groups[group.name] = arn

    def forward(weights: tuple[TargetGroupSpec, ...]) -> list[dict[str, Any]]:
        tuples = [{"TargetGroupArn": groups[g.name], "Weight": g.weight} for g in weights]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": tuples}}]

    listener = elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=spec.listener_port, DefaultActions=forward(spec.target_groups)
    )["Listeners"][0]["ListenerArn"]
    rule_arn = None
    if spec.rule is not None:
        rule_arn = elbv2.create_rule(
            ListenerArn=listener,
            Priority=spec.rule.priority,
            Conditions=[{"Field": "path-pattern", "Values": [spec.rule.path]}],
            Actions=forward(spec.rule.weights or spec.target_groups),
        )["Rules"][0]["RuleArn"]
    return ProvisionedLoadBalancer(spec, lb_arn, listener, groups, {z: zones[z] for z in spec.zones}, rule_arn)


# ---------------------------------------------------------------------------- what moto's ELBv2 says


def forward_weights(actions: list[Any]) -> dict[str, int]:
    """Target group ARN → weight of the first forward action (moto's FakeAction keeps the request's dict)."""
    for action in actions:
        data = getattr(action, "data", action)
        if data.get("Type") != "forward":
            continue
        config = data.get("ForwardConfig") or {}
        if config.get("TargetGroups"):
            # "If you specify only one target group, the weight is not required" (its weight is then 1 here).
            return {t["TargetGroupArn"]: int(t.get("Weight", 1)) for t in config["TargetGroups"]}
        if data.get("TargetGroupArn"):
            return {data["TargetGroupArn"]: 1}
    return {}


def weight_errors(params: dict[str, Any]) -> str | None:
    """AWS's refusal of a forward weight outside 0..999 ("TargetGroupTuple"), for ELBv2 requests moto accepts."""
    for action in params.get("DefaultActions", []) + params.get("Actions", []):
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
            weight = group.get("Weight")
            if weight is not None and not 0 <= int(weight) <= MAX_WEIGHT:
                return f"Target group weight '{weight}' must be between 0 and {MAX_WEIGHT}"
    return None


@dataclass
class Routing:
    """The listener's routing at a moment: (share of the requests, {target group ARN: weight}) per route."""

    routes: list[tuple[float, dict[str, int]]]


class LoadBalancerTraffic:
    """The requests of one minute through the load balancer, and the datapoints ALB would publish for them."""

    def __init__(
        self,
        lb: ProvisionedLoadBalancer,
        read_routing: Callable[[], Routing],
        away_from: Callable[[datetime], str | None],
    ):
        self.lb = lb
        self.read_routing = read_routing  # reads moto's ELBv2 backend now
        self.away_from = away_from  # the AZ ID an applied zonal shift keeps traffic away from at a moment
        self.history: list[tuple[datetime, Routing]] = []

    def record(self, at: datetime) -> bool:
        """The listener or a rule was changed (or the world starts): traffic follows moto's state from ``at``; True
        when that is a change (a new entry in ``history``)."""
        routing = self.read_routing()
        if self.history and self.history[-1][1] == routing:
            return False
        self.history.append((at, routing))
        return True

    def routing_at(self, moment: datetime) -> Routing:
        current = self.history[0][1] if self.history else self.read_routing()
        for at, routing in self.history:
            if at > moment:
                break
            current = routing
        return current

    def weights(self) -> dict[str, float]:
        """The default action's current split, by target group name ({name: share}), from moto."""
        names = {arn: name for name, arn in self.lb.target_groups.items()}
        routes = self.read_routing().routes
        weights = routes[-1][1]
        total = sum(weights.values())
        return {names.get(arn, arn): w / total for arn, w in weights.items() if total}

    def _slices(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, float]]:
        step = (end - start) / SLICES
        for i in range(SLICES):
            yield start + i * step, 1.0 / SLICES

    def period(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The MetricData (PutMetricData shape) ALB publishes for the minute [start, end)."""
        spec, names = self.lb.spec, {arn: name for name, arn in self.lb.target_groups.items()}
        ids = self.lb.zone_ids
        requests: dict[tuple[str, str], float] = {}  # (node zone, target group name) → requests
        errors: dict[tuple[str, str], float] = {}
        for moment, fraction in self._slices(start, end):
            shifted = self.away_from(moment)
            nodes = [z for z in spec.zones if ids[z] != shifted] or list(spec.zones)
            per_node = spec.requests_per_minute * fraction / len(nodes)
            for share, weights in self.routing_at(moment).routes:
                total = sum(weights.values())
                if not total:
                    continue  # no target group takes traffic: ALB answers 503 itself (not a target 5XX; not modelled)
                for arn, weight in weights.items():
                    group = names.get(arn, arn)
                    for node in nodes:
                        served = per_node * share * weight / total
                        targets = [node] if not spec.cross_zone else nodes
                        rate = sum(spec.error_rate(group, target, moment) for target in targets) / len(targets)
                        requests[(node, group)] = requests.get((node, group), 0.0) + served
                        errors[(node, group)] = errors.get((node, group), 0.0) + served * rate
        return self._metric_data(start, requests, errors)

    def _metric_data(
        self, start: datetime, requests: dict[tuple[str, str], float], errors: dict[tuple[str, str], float]
    ) -> list[dict[str, Any]]:
        lb = self.lb.dimension
        counted = {key: (round(requests[key]), round(errors.get(key, 0.0))) for key in requests}
        series: dict[tuple[tuple[str, str], ...], list[int]] = {}

        def add(dims: tuple[tuple[str, str], ...], values: tuple[int, int]) -> None:
            total = series.setdefault(dims, [0, 0])
            total[0] += values[0]
            total[1] += values[1]

        for (node, group), values in counted.items():
            add((("LoadBalancer", lb),), values)
            add((("AvailabilityZone", node), ("LoadBalancer", lb)), values)
            add((("LoadBalancer", lb), ("TargetGroup", self.lb.target_group_dimension(group))), values)
        data = []
        for dims, (count, failed) in series.items():
            dimensions = [{"Name": k, "Value": v} for k, v in dims]
            for metric, value in (("RequestCount", count), ("HTTPCode_Target_5XX_Count", failed)):
                if value > 0:  # "Reporting criteria: There is a nonzero value"
                    data.append(
                        {
                            "MetricName": metric,
                            "Dimensions": dimensions,
                            "Timestamp": start,
                            "Value": float(value),
                            "Unit": "Count",
                        }
                    )
        return data


def routing_from_backend(backend: Any, lb: ProvisionedLoadBalancer) -> Routing:
    """The listener's routes as moto's ELBv2 backend holds them: the rule (if any) takes its share, the default
    action the rest."""
    listener = backend.load_balancers[lb.arn].listeners[lb.listener_arn]
    routes: list[tuple[float, dict[str, int]]] = []
    remaining = 1.0
    if lb.rule_arn is not None and lb.spec.rule is not None:
        rules = backend.describe_rules(listener_arn=None, rule_arns=[lb.rule_arn])
        share = min(max(lb.spec.rule.share, 0.0), 1.0)
        routes.append((share, forward_weights(rules[0].actions)))
        remaining -= share
    routes.append((remaining, forward_weights(listener.default_actions)))
    return Routing(routes)


def alarm_dimensions(
    lb: ProvisionedLoadBalancer, zone: str | None = None, target_group: str | None = None
) -> list[dict[str, str]]:
    """The dimensions of an ALB metric alarm: the load balancer, or one of its zones, or one of its target groups."""
    dims = [{"Name": "LoadBalancer", "Value": lb.dimension}]
    if zone is not None:
        dims.insert(0, {"Name": "AvailabilityZone", "Value": zone})
    if target_group is not None:
        dims.append({"Name": "TargetGroup", "Value": lb.target_group_dimension(target_group)})
    return dims
