"""Contract tests: the sandbox's ECS service (sandbox/ecs.py) through plain boto3, no Rollguard code. Rolling updates
within maximumPercent/minimumHealthyPercent on the virtual clock, the deployment circuit breaker, the service
deployments API and its refusals, the deployment state change events, and the target group's errors following the
task mix. docs/sandbox-ecs.md lists each behaviour with its AWS source."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.ecs import EcsServiceSpec
from rollguard_cli.sandbox.load_balancer import LoadBalancerSpec
from rollguard_cli.sandbox.runner import Sandbox

CLUSTER, SERVICE = "prod", "payments"


def v2_fails(label: str, at: datetime) -> float:
    return 0.5 if label == "payments:2" else 0.0


@pytest.fixture
def sb(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    spec = getattr(request, "param", EcsServiceSpec())
    with Sandbox(error_model=lambda label, at, config: 0.0, load_balancer=LoadBalancerSpec(), ecs=spec) as sandbox:
        yield sandbox


def service() -> dict[str, Any]:
    return dict(boto3.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0])


def deployments() -> list[tuple[str, str, str, int, int]]:
    """(status, family:revision, rolloutState, runningCount, pendingCount) of each deployment, PRIMARY first."""
    return [
        (d["status"], d["taskDefinition"].rsplit("/", 1)[1], d["rolloutState"], d["runningCount"], d["pendingCount"])
        for d in service()["deployments"]
    ]


def update(**kwargs: Any) -> dict[str, Any]:
    return dict(boto3.client("ecs").update_service(cluster=CLUSTER, service=SERVICE, **kwargs)["service"])


def service_deployments(**filters: Any) -> list[dict[str, Any]]:
    ecs = boto3.client("ecs")
    listed = ecs.list_service_deployments(cluster=CLUSTER, service=SERVICE, **filters)["serviceDeployments"]
    return list(listed)


def describe(arn: str) -> dict[str, Any]:
    return dict(boto3.client("ecs").describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0])


@pytest.fixture
def captured(sb: Sandbox) -> list[dict[str, Any]]:
    """Every event the sandbox hands EventBridge (the outbox is emptied at each delivery)."""
    seen: list[dict[str, Any]] = []
    publish = sb.world.publish

    def keep(event: dict[str, Any]) -> None:
        seen.append(event)
        if publish is not None:
            publish(event)

    sb.world.publish = keep
    return seen


# ---------------------------------------------------------------------------- rolling updates


def test_min_healthy_100_max_200_starts_all_new_tasks_then_stops_the_old(sb: Sandbox) -> None:
    assert deployments() == [("PRIMARY", "payments:1", "COMPLETED", 4, 0)]
    sb.ecs_deploy(2)
    assert deployments() == [
        ("PRIMARY", "payments:2", "IN_PROGRESS", 0, 4),
        ("ACTIVE", "payments:1", "COMPLETED", 4, 0),
    ]
    current = service()
    assert current["taskDefinition"].endswith("payments:2") and current["deployments"][0]["id"].startswith("ecs-svc/")
    assert (current["runningCount"], current["pendingCount"]) == (4, 4)  # maximumPercent 200: 8 tasks at most
    sb.advance(20)
    assert deployments()[0][3:] == (0, 4)
    sb.advance(10)  # task_start_seconds: healthy, then the old ones stop
    assert deployments() == [("PRIMARY", "payments:2", "COMPLETED", 4, 0)]
    assert service()["runningCount"] == 4


@pytest.mark.parametrize(
    "sb", [EcsServiceSpec(minimum_healthy_percent=50, maximum_percent=100)], indirect=True, ids=["50-100"]
)
def test_min_healthy_50_max_100_replaces_tasks_in_two_waves(sb: Sandbox) -> None:
    sb.ecs_deploy(2)
    # At most 4 tasks, at least 2 healthy: two old stop, two new start.
    assert deployments() == [
        ("PRIMARY", "payments:2", "IN_PROGRESS", 0, 2),
        ("ACTIVE", "payments:1", "COMPLETED", 2, 0),
    ]
    sb.advance(30)  # the two new are healthy: the last two old stop, two more new start; drained, payments:1 leaves
    assert deployments() == [("PRIMARY", "payments:2", "IN_PROGRESS", 2, 2)]
    sb.advance(30)
    assert deployments() == [("PRIMARY", "payments:2", "COMPLETED", 4, 0)]


@pytest.mark.parametrize(
    "sb", [EcsServiceSpec(minimum_healthy_percent=50, maximum_percent=100)], indirect=True, ids=["50-100"]
)
def test_a_second_update_mid_rollout_starts_another_primary(sb: Sandbox, captured: list[dict[str, Any]]) -> None:
    sb.ecs_deploy(2)
    sb.advance(30)
    first = service()["deployments"][0]["id"]
    update(forceNewDeployment=True)
    assert deployments() == [
        ("PRIMARY", "payments:2", "IN_PROGRESS", 0, 2),
        ("ACTIVE", "payments:2", "IN_PROGRESS", 2, 0),  # its two healthy tasks keep the minimum
    ]
    assert service()["deployments"][1]["id"] == first
    sb.advance(60)
    assert deployments() == [("PRIMARY", "payments:2", "COMPLETED", 4, 0)]
    listed = service_deployments()
    assert [s["status"] for s in listed] == ["SUCCESSFUL", "STOPPED", "SUCCESSFUL"]  # newest first
    names = [e["detail"]["eventName"] for e in captured]
    assert names == ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"]


def test_an_unknown_task_definition_is_refused(sb: Sandbox) -> None:
    with pytest.raises(ClientError) as refused:
        update(taskDefinition="payments:9")
    assert refused.value.response["Error"]["Code"] == "ClientException"


# ---------------------------------------------------------------------------- the circuit breaker


@pytest.mark.parametrize("sb", [EcsServiceSpec(fails_to_start=frozenset({2}))], indirect=True, ids=["v2-crashes"])
def test_the_circuit_breaker_trips_on_tasks_that_fail_to_start_and_rolls_back(
    sb: Sandbox, captured: list[dict[str, Any]]
) -> None:
    sb.ecs_deploy(2)
    failed = service()["deployments"][0]["id"]
    sb.advance(30)  # tasks stop; at the threshold max(3, 0.5 * 4) = 3 the deployment fails, its last task stopped
    states = service()["deployments"]
    assert states[0]["taskDefinition"].endswith("payments:1") and states[0]["rolloutState"] == "IN_PROGRESS"
    assert states[0]["rolloutStateReason"].startswith("ECS deployment circuit breaker: rolling back to deploymentId")
    broken = next(d for d in states if d["id"] == failed)
    assert (broken["status"], broken["rolloutState"], broken["failedTasks"]) == ("ACTIVE", "FAILED", 3)
    sd = describe(service_deployments()[0]["serviceDeploymentArn"])
    assert sd["status"] == "ROLLBACK_IN_PROGRESS" and sd["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert sd["deploymentCircuitBreaker"]["threshold"] == 3
    assert sd["rollback"]["serviceRevisionArn"] == sd["sourceServiceRevisions"][0]["arn"]
    sb.advance(30)
    assert deployments() == [("PRIMARY", "payments:1", "COMPLETED", 4, 0)]
    assert describe(sd["serviceDeploymentArn"])["status"] == "ROLLBACK_SUCCESSFUL"
    names = [(e["detail"]["eventName"], e["detail"]["eventType"]) for e in captured]
    assert names == [
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO"),
        ("SERVICE_DEPLOYMENT_FAILED", "ERROR"),
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", "INFO"),
        ("SERVICE_DEPLOYMENT_COMPLETED", "INFO"),
    ]
    event = captured[1]
    assert event["source"] == "aws.ecs" and event["resources"] == [service()["serviceArn"]]
    assert set(event["detail"]) == {"eventType", "eventName", "deploymentId", "updatedAt", "reason"}


@pytest.mark.parametrize(
    "sb", [EcsServiceSpec(error_rate=v2_fails, target_group="checkout-blue")], indirect=True, ids=["v2-errors"]
)
def test_tasks_that_start_and_serve_errors_do_not_trip_it_and_the_target_group_errors_follow_the_mix(
    sb: Sandbox,
) -> None:
    assert sb.ecs is not None and sb.load_balancer is not None
    sb.advance(120)
    sb.ecs_deploy(2)
    assert sb.ecs.serving("checkout-blue", sb.world.now()) == {"payments:1": 1.0}
    sb.advance(180)
    assert deployments() == [("PRIMARY", "payments:2", "COMPLETED", 4, 0)]
    assert sb.ecs.serving("checkout-blue", sb.world.now()) == {"payments:2": 1.0}
    cw = boto3.client("cloudwatch")
    dims = [
        {"Name": "LoadBalancer", "Value": sb.load_balancer.dimension},
        {"Name": "TargetGroup", "Value": sb.load_balancer.target_group_dimension("checkout-blue")},
    ]
    now = sb.world.now()
    points = cw.get_metric_statistics(
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Dimensions=dims,
        StartTime=now - timedelta(minutes=6),
        EndTime=now,
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    sums = [p["Sum"] for p in sorted(points, key=lambda p: p["Timestamp"])]
    assert sums and sums[-1] == pytest.approx(600, rel=0.02)  # 1,200 requests a minute, half of them 5XX


# ---------------------------------------------------------------------------- service deployments


def test_service_deployments_list_describe_and_revisions(sb: Sandbox) -> None:
    before = sb.world.now()
    sb.ecs_deploy(2)
    listed = service_deployments()
    assert [s["status"] for s in listed] == ["IN_PROGRESS", "SUCCESSFUL"]
    arn = listed[0]["serviceDeploymentArn"]
    assert arn.startswith(f"arn:aws:ecs:us-east-1:123456789012:service-deployment/{CLUSTER}/{SERVICE}/")
    assert [s["serviceDeploymentArn"] for s in service_deployments(status=["SUCCESSFUL"])] == [
        listed[1]["serviceDeploymentArn"]
    ]
    assert [s["serviceDeploymentArn"] for s in service_deployments(createdAt={"after": before})] == [arn]
    page = boto3.client("ecs").list_service_deployments(cluster=CLUSTER, service=SERVICE, maxResults=1)
    assert len(page["serviceDeployments"]) == 1 and page["nextToken"]
    sd = describe(arn)
    assert sd["targetServiceRevision"]["requestedTaskCount"] == 4
    assert sd["deploymentCircuitBreaker"]["status"] == "MONITORING" and "finishedAt" not in sd
    revisions = boto3.client("ecs").describe_service_revisions(
        serviceRevisionArns=[sd["targetServiceRevision"]["arn"], sd["sourceServiceRevisions"][0]["arn"]]
    )["serviceRevisions"]
    assert [r["taskDefinition"].rsplit("/", 1)[1] for r in revisions] == ["payments:2", "payments:1"]
    missing = boto3.client("ecs").describe_service_deployments(serviceDeploymentArns=[arn + "0"])
    assert missing["failures"][0]["reason"] == "MISSING"
    with pytest.raises(ClientError) as refused:
        boto3.client("ecs").list_service_deployments(cluster=CLUSTER, service="nope")
    assert refused.value.response["Error"]["Code"] == "ServiceNotFoundException"


def test_stop_service_deployment_rolls_back_mid_rollout_and_is_refused_once_finished(sb: Sandbox) -> None:
    ecs = boto3.client("ecs")
    sb.ecs_deploy(2)
    sb.advance(10)
    arn = service_deployments()[0]["serviceDeploymentArn"]
    assert ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")["serviceDeploymentArn"] == arn
    assert describe(arn)["status"] == "ROLLBACK_REQUESTED"
    sb.advance(10)
    assert describe(arn)["status"] == "ROLLBACK_IN_PROGRESS"
    assert deployments()[0][:2] == ("PRIMARY", "payments:1")
    sb.advance(60)
    assert deployments() == [("PRIMARY", "payments:1", "COMPLETED", 4, 0)]
    assert describe(arn)["status"] == "ROLLBACK_SUCCESSFUL"
    with pytest.raises(ClientError) as refused:
        ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert refused.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as unknown:
        ecs.stop_service_deployment(serviceDeploymentArn=arn + "0", stopType="ROLLBACK")
    assert unknown.value.response["Error"]["Code"] == "ServiceDeploymentNotFoundException"


# ---------------------------------------------------------------------------- the CODE_DEPLOY controller


@pytest.mark.parametrize("sb", [EcsServiceSpec(controller="CODE_DEPLOY")], indirect=True, ids=["code-deploy"])
def test_a_code_deploy_service_has_its_task_set_on_blue_and_refuses_a_task_definition_update(sb: Sandbox) -> None:
    assert sb.ecs is not None and sb.load_balancer is not None
    task_sets = boto3.client("ecs").describe_task_sets(cluster=CLUSTER, service=SERVICE)["taskSets"]
    assert [(t["status"], t["scale"]["value"]) for t in task_sets] == [("PRIMARY", 100.0)]
    assert task_sets[0]["loadBalancers"][0]["targetGroupArn"] == sb.load_balancer.target_groups["checkout-blue"]
    assert sb.ecs.serving("checkout-blue", sb.world.now()) == {"payments:1": 1.0}
    assert sb.ecs.serving("checkout-green", sb.world.now()) == {}
    with pytest.raises(ClientError) as refused:
        sb.ecs_deploy(2)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "CODE_DEPLOY deployment controller" in refused.value.response["Error"]["Message"]


@pytest.mark.parametrize("sb", [EcsServiceSpec(controller="CODE_DEPLOY")], indirect=True, ids=["code-deploy"])
def test_a_period_emitted_before_the_service_exists_finds_nothing_serving(sb: Sandbox) -> None:
    """The sandbox's clock is real time plus jumps, so a minute can end while it is still provisioning: the World then
    emits that period's metrics between RegisterTaskDefinition and CreateService. No service yet is no task serving
    (the fault matrix once crashed with KeyError 'prod:payments' here)."""
    assert sb.ecs is not None
    services = sb.ecs.backend.services
    created = services.pop(f"{CLUSTER}:{SERVICE}")
    try:
        assert sb.ecs.serving("checkout-blue", sb.world.now()) == {}
        assert sb.ecs.error_rate("checkout-blue", "use1-az1", sb.world.now()) == 0.0
    finally:
        services[f"{CLUSTER}:{SERVICE}"] = created


# ---------------------------------------------------------------------------- IAM


def test_a_function_without_the_grant_is_refused(sb: Sandbox) -> None:
    with sb.acting_as("rollguard-journal"), pytest.raises(ClientError) as refused:
        boto3.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
