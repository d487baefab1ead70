"""Contract tests: the load balancer the sandbox serves through (sandbox/load_balancer.py, world.py), through plain
boto3. The listener's weights in moto are the truth of who serves traffic; ALB metrics follow "CloudWatch metrics for
your Application Load Balancer"; alarms are evaluated on the metric with exactly their dimensions."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.load_balancer import LoadBalancerSpec, RuleSpec, TargetGroupSpec
from rollguard_cli.sandbox.runner import Sandbox

NS = "AWS/ApplicationELB"


def green_fails(group: str, zone: str, at: datetime) -> float:
    return 0.5 if group == "checkout-green" else 0.0


def zone_b_fails(group: str, zone: str, at: datetime) -> float:
    return 0.3 if zone == "us-east-1b" else 0.0


@pytest.fixture
def sb(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    spec = getattr(request, "param", LoadBalancerSpec(error_rate=green_fails))
    with Sandbox(error_model=lambda label, at, config: 0.0, load_balancer=spec) as sandbox:
        yield sandbox


def lb_dims(sb: Sandbox, **extra: str) -> list[dict[str, str]]:
    assert sb.load_balancer is not None
    dims = [{"Name": "LoadBalancer", "Value": sb.load_balancer.dimension}]
    return dims + [{"Name": k, "Value": v} for k, v in extra.items()]


def sums(sb: Sandbox, metric: str, dims: list[dict[str, str]], minutes: int = 5) -> list[float]:
    """The Sum of ``metric`` with exactly ``dims`` in each of the last ``minutes`` minutes the world has served,
    through GetMetricStatistics (oldest first; a minute without a datapoint is absent)."""
    assert sb.world._next_period is not None
    served_until = sb.world._next_period - timedelta(seconds=60)  # the last minute boundary already published
    found = sb.client("cloudwatch").get_metric_statistics(
        Namespace=NS,
        MetricName=metric,
        Dimensions=dims,
        StartTime=served_until - timedelta(minutes=minutes),
        EndTime=served_until - timedelta(seconds=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return [d["Sum"] for d in sorted(found, key=lambda d: d["Timestamp"])]


def forward(sb: Sandbox, blue: int, green: int) -> list[dict[str, Any]]:
    assert sb.load_balancer is not None
    groups = sb.load_balancer.target_groups
    tuples = [
        {"TargetGroupArn": groups["checkout-blue"], "Weight": blue},
        {"TargetGroupArn": groups["checkout-green"], "Weight": green},
    ]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": tuples}}]


def test_the_world_follows_the_listeners_weights(sb: Sandbox) -> None:
    assert sb.load_balancer is not None
    green = sb.load_balancer.target_group_dimension("checkout-green")
    blue = sb.load_balancer.target_group_dimension("checkout-blue")
    sb.advance(180)
    assert sb.traffic_weights() == {"checkout-blue": 1.0, "checkout-green": 0.0}
    assert set(sums(sb, "RequestCount", lb_dims(sb))) == {1200.0}
    assert sums(sb, "RequestCount", lb_dims(sb, TargetGroup=green)) == []  # weight 0: no requests, no datapoint

    sb.client("elbv2").modify_listener(ListenerArn=sb.load_balancer.listener_arn, DefaultActions=forward(sb, 90, 10))
    sb.advance(180)
    assert sb.traffic_weights() == {"checkout-blue": 0.9, "checkout-green": 0.1}
    assert sums(sb, "RequestCount", lb_dims(sb, TargetGroup=green), minutes=2) == [120.0, 120.0]
    assert sums(sb, "HTTPCode_Target_5XX_Count", lb_dims(sb, TargetGroup=green), minutes=2) == [60.0, 60.0]
    assert sums(sb, "RequestCount", lb_dims(sb, TargetGroup=blue), minutes=2) == [1080.0, 1080.0]


def test_zero_counts_are_not_published(sb: Sandbox) -> None:
    # "CloudWatch metrics for your Application Load Balancer": RequestCount and HTTPCode_Target_5XX_Count are reported
    # only with a nonzero value. All traffic on blue, which never fails: no 5XX datapoint at all.
    sb.advance(300)
    assert sums(sb, "RequestCount", lb_dims(sb))
    assert sums(sb, "HTTPCode_Target_5XX_Count", lb_dims(sb)) == []
    assert not [k for k in sb.world.datapoints if k[1] == "HTTPCode_Target_5XX_Count"]


def test_a_weight_outside_0_to_999_is_refused(sb: Sandbox) -> None:
    # Elastic Load Balancing API reference, "TargetGroupTuple": "The weight. The range is 0 to 999."
    assert sb.load_balancer is not None
    with pytest.raises(ClientError) as caught:
        sb.client("elbv2").modify_listener(
            ListenerArn=sb.load_balancer.listener_arn, DefaultActions=forward(sb, 1000, 0)
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert sb.traffic_weights() == {"checkout-blue": 1.0, "checkout-green": 0.0}


@pytest.mark.parametrize("sb", [LoadBalancerSpec(error_rate=zone_b_fails)], indirect=True)
def test_alarms_are_evaluated_on_their_own_dimensions_and_a_zonal_shift_moves_traffic(sb: Sandbox) -> None:
    assert sb.load_balancer is not None
    sb.put_alb_alarm("checkout-5xx-use1b", zone="us-east-1b", threshold=50)  # zone b: 400 requests, 120 5XX a minute
    sb.put_alb_alarm("checkout-5xx-use1a", zone="us-east-1a", threshold=50)
    sb.put_alb_alarm("checkout-5xx", threshold=500)  # the whole load balancer: 120 of 1,200
    sb.advance(240)
    cw = sb.client("cloudwatch")

    def states() -> dict[str, str]:
        return {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNamePrefix="checkout")["MetricAlarms"]}

    assert states() == {"checkout-5xx-use1b": "ALARM", "checkout-5xx-use1a": "OK", "checkout-5xx": "OK"}

    sb.client("arc-zonal-shift").start_zonal_shift(
        resourceIdentifier=sb.load_balancer.arn, awayFrom="use1-az1", expiresIn="1h", comment="zone b is sick"
    )
    sb.advance(240)
    # Zone b's node is out of DNS: its RequestCount stops, the other two nodes take 600 each, no 5XX anywhere.
    assert sums(sb, "RequestCount", lb_dims(sb, AvailabilityZone="us-east-1b"), minutes=2) == []
    assert sums(sb, "RequestCount", lb_dims(sb, AvailabilityZone="us-east-1a"), minutes=2) == [600.0, 600.0]
    assert sums(sb, "HTTPCode_Target_5XX_Count", lb_dims(sb), minutes=2) == []
    assert states()["checkout-5xx-use1b"] == "OK"  # notBreaching: missing data is not a breach


@pytest.mark.parametrize(
    "sb",
    [
        LoadBalancerSpec(
            error_rate=green_fails,
            rule=RuleSpec(
                share=0.5, weights=(TargetGroupSpec("checkout-blue", 50), TargetGroupSpec("checkout-green", 50))
            ),
        )
    ],
    indirect=True,
)
def test_a_rule_serves_its_share_with_its_own_weights(sb: Sandbox) -> None:
    assert sb.load_balancer is not None and sb.load_balancer.rule_arn is not None
    green = sb.load_balancer.target_group_dimension("checkout-green")
    sb.advance(120)
    assert sums(sb, "RequestCount", lb_dims(sb, TargetGroup=green), minutes=1) == [300.0]
    sb.client("elbv2").modify_rule(RuleArn=sb.load_balancer.rule_arn, Actions=forward(sb, 100, 0))
    sb.advance(120)
    assert sums(sb, "RequestCount", lb_dims(sb, TargetGroup=green), minutes=1) == []


@pytest.mark.parametrize("sb", [LoadBalancerSpec(error_rate=zone_b_fails, cross_zone=True)], indirect=True)
def test_with_cross_zone_every_node_sees_the_sick_zones_targets(sb: Sandbox) -> None:
    # "Cross-zone load balancing for target groups": each node routes to targets in every enabled zone.
    sb.advance(120)
    assert sums(sb, "HTTPCode_Target_5XX_Count", lb_dims(sb, AvailabilityZone="us-east-1a"), minutes=1) == [40.0]


def test_get_metric_data_reads_the_metric_with_exactly_the_querys_dimensions(sb: Sandbox) -> None:
    # "Amazon CloudWatch concepts", Dimensions: each unique combination of dimensions is a separate metric, so the
    # {LoadBalancer} series is not the sum of the per-zone and per-target-group series (moto would add them up).
    sb.advance(180)
    served_until = sb.world._next_period - timedelta(seconds=60)  # type: ignore[operator]
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {"Namespace": NS, "MetricName": "RequestCount", "Dimensions": dims},
                "Period": 60,
                "Stat": "Sum",
            },
        }
        for i, dims in enumerate([lb_dims(sb), lb_dims(sb, AvailabilityZone="us-east-1a"), []])
    ]
    results = sb.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=served_until - timedelta(minutes=1), EndTime=served_until
    )["MetricDataResults"]
    assert [(r["Label"], r["Values"]) for r in results] == [
        ("RequestCount Sum", [1200.0]),
        ("RequestCount Sum", [400.0]),
        ("RequestCount Sum", []),  # ALB publishes no dimensionless RequestCount
    ]
