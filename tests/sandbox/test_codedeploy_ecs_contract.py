"""Contract tests: CodeDeploy blue/green deployments of an ECS service behave as AWS documents, with plain boto3.

No Rollguard code runs here: each test asserts one row of docs/sandbox-codedeploy-ecs.md with AWS's own API calls
against a sandbox with a load balancer (blue and green target groups behind one listener), an ECS service with the
CODE_DEPLOY deployment controller whose PRIMARY task set serves blue, and a CodeDeploy application for ECS.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.load_balancer import LoadBalancerSpec
from rollguard_cli.sandbox.runner import Sandbox

pytestmark = pytest.mark.slow  # the sandbox's contracts, on moto

APP, GROUP, CLUSTER, SERVICE, ALARM = "payments", "payments-prod", "shop", "payments", "payments-5xx"
CANARY = "CodeDeployDefault.ECSCanary10Percent5Minutes"
ALL_AT_ONCE = "CodeDeployDefault.ECSAllAtOnce"
READY, STOP, WAIT = 60, 20, 5 * 60  # the sandbox's ready delay, stop delay; the group's termination wait


def appspec(task_definition: str = "payments:2", container: str = "web", port: int = 8080, **extra: Any) -> dict:
    props = {"TaskDefinition": task_definition, "LoadBalancerInfo": {"ContainerName": container, "ContainerPort": port}}
    body: dict[str, Any] = {
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": props}}],
    }
    body.update(extra)
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(body)}}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(error_model=lambda label, at, config: 0.0, load_balancer=LoadBalancerSpec()) as sandbox:
        ec2, elb, ecs = sandbox.client("ec2"), sandbox.client("elbv2"), sandbox.client("ecs")
        lb = elb.describe_load_balancers(Names=["checkout"])["LoadBalancers"][0]
        vpc, subnets = lb["VpcId"], [z["SubnetId"] for z in lb["AvailabilityZones"]]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        group_id = ec2.create_security_group(GroupName="payments", Description="payments", VpcId=vpc)["GroupId"]
        network = {
            "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [group_id], "assignPublicIp": "DISABLED"}
        }
        ecs.create_cluster(clusterName=CLUSTER)
        for _ in (1, 2):
            ecs.register_task_definition(
                family="payments",
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="256",
                memory="512",
                containerDefinitions=[
                    {"name": "web", "image": "payments", "memory": 512, "portMappings": [{"containerPort": 8080}]}
                ],
            )
        blue = target_groups(sandbox)["checkout-blue"]
        balanced = [{"targetGroupArn": blue, "containerName": "web", "containerPort": 8080}]
        for name, controller in ((SERVICE, "CODE_DEPLOY"), ("rolling", "ECS")):
            ecs.create_service(
                cluster=CLUSTER,
                serviceName=name,
                taskDefinition="payments:1",
                desiredCount=2,
                launchType="FARGATE",
                deploymentController={"type": controller},
                loadBalancers=balanced,
                networkConfiguration=network,
            )
        # moto's CreateService makes no task set for a CODE_DEPLOY service (ECS makes the PRIMARY one): set it up.
        first = ecs.create_task_set(
            cluster=CLUSTER,
            service=SERVICE,
            taskDefinition="payments:1",
            launchType="FARGATE",
            loadBalancers=balanced,
            networkConfiguration=network,
            scale={"value": 100.0, "unit": "PERCENT"},
        )["taskSet"]["taskSetArn"]
        ecs.update_service_primary_task_set(cluster=CLUSTER, service=SERVICE, primaryTaskSet=first)
        sandbox.client("codedeploy").create_application(applicationName=APP, computePlatform="ECS")
        sandbox.client("cloudwatch").put_metric_alarm(
            AlarmName=ALARM,
            Namespace="Shop",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
        yield sandbox


def target_groups(sb: Sandbox) -> dict[str, str]:
    found = sb.client("elbv2").describe_target_groups()["TargetGroups"]
    return {t["TargetGroupName"]: t["TargetGroupArn"] for t in found}


def listener_arn(sb: Sandbox) -> str:
    elb = sb.client("elbv2")
    lb = elb.describe_load_balancers(Names=["checkout"])["LoadBalancers"][0]["LoadBalancerArn"]
    return str(elb.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["ListenerArn"])


def group(sb: Sandbox, service: str = SERVICE, **settings: Any) -> Any:
    cd = sb.client("codedeploy")
    params: dict[str, Any] = {
        "applicationName": APP,
        "deploymentGroupName": GROUP,
        "serviceRoleArn": "arn:aws:iam::123456789012:role/codedeploy",
        "deploymentConfigName": ALL_AT_ONCE,
        "ecsServices": [{"serviceName": service, "clusterName": CLUSTER}],
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
        "loadBalancerInfo": {
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": "checkout-blue"}, {"name": "checkout-green"}],
                    "prodTrafficRoute": {"listenerArns": [listener_arn(sb)]},
                }
            ]
        },
    }
    cd.create_deployment_group(**{**params, **settings})
    return cd


ALARMED = {
    "alarmConfiguration": {"enabled": True, "alarms": [{"name": ALARM}]},
    "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
}


def deploy(cd: Any, revision: dict[str, Any], config: str, **extra: Any) -> str:
    return str(
        cd.create_deployment(
            applicationName=APP, deploymentGroupName=GROUP, revision=revision, deploymentConfigName=config, **extra
        )["deploymentId"]
    )


def info(cd: Any, deployment_id: str) -> dict[str, Any]:
    return dict(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"])


def weights(sb: Sandbox) -> dict[str, int]:
    """The production listener's forward weights by target group name, as ELBv2 answers them."""
    names = {arn: name for name, arn in target_groups(sb).items()}
    action = sb.client("elbv2").describe_listeners(ListenerArns=[listener_arn(sb)])["Listeners"][0]["DefaultActions"][0]
    return {names[t["TargetGroupArn"]]: t["Weight"] for t in action["ForwardConfig"]["TargetGroups"]}


def task_sets(sb: Sandbox) -> list[dict[str, Any]]:
    """(target group name, task definition, status) of the service's task sets, as ECS answers them."""
    names = {arn: name for name, arn in target_groups(sb).items()}
    found = sb.client("ecs").describe_task_sets(cluster=CLUSTER, service=SERVICE)["taskSets"]
    return sorted(
        (
            {
                "target_group": names[t["loadBalancers"][0]["targetGroupArn"]],
                "task_definition": t["taskDefinition"].rsplit("/", 1)[1],
                "status": t["status"],
            }
            for t in found
        ),
        key=lambda t: t["target_group"],
    )


BLUE_ONLY = [{"target_group": "checkout-blue", "task_definition": "payments:1", "status": "PRIMARY"}]
BOTH = BLUE_ONLY + [{"target_group": "checkout-green", "task_definition": "payments:2", "status": "ACTIVE"}]


def test_the_deployment_group_reads_back_its_ecs_fields(sb: Sandbox) -> None:
    """API CreateDeploymentGroup / GetDeploymentGroup: ecsServices, the target group pair and production listener,
    the blue/green style and termination wait, as created."""
    found = group(sb).get_deployment_group(applicationName=APP, deploymentGroupName=GROUP)["deploymentGroupInfo"]

    assert found["computePlatform"] == "ECS"
    assert found["ecsServices"] == [{"serviceName": SERVICE, "clusterName": CLUSTER}]
    pair = found["loadBalancerInfo"]["targetGroupPairInfoList"][0]
    assert pair["targetGroups"] == [{"name": "checkout-blue"}, {"name": "checkout-green"}]
    assert pair["prodTrafficRoute"] == {"listenerArns": [listener_arn(sb)]}
    assert found["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert found["blueGreenDeploymentConfiguration"]["terminateBlueInstancesOnDeploymentSuccess"] == {
        "action": "TERMINATE",
        "terminationWaitTimeInMinutes": 5,
    }


def test_a_canary_installs_green_then_shifts_ten_percent_then_the_rest_then_deletes_blue(sb: Sandbox) -> None:
    """ "What happens during an Amazon ECS deployment": Install creates the replacement task set on the other target
    group; ECSCanary10Percent5Minutes shifts 10% of production traffic, the rest five minutes later; after the
    termination wait the original task set is removed and the deployment is Succeeded."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec(), CANARY)

    assert info(cd, deployment_id)["status"] == "InProgress"
    assert task_sets(sb) == BOTH and weights(sb) == {"checkout-blue": 100, "checkout-green": 0}
    sb.advance(READY + 1)
    assert weights(sb) == {"checkout-blue": 90, "checkout-green": 10}
    sb.advance(5 * 60)
    assert weights(sb) == {"checkout-blue": 0, "checkout-green": 100}
    assert [t["status"] for t in task_sets(sb)] == ["ACTIVE", "PRIMARY"]  # green PRIMARY, blue kept for the wait
    assert info(cd, deployment_id)["status"] == "InProgress"
    sb.advance(WAIT + 1)
    assert task_sets(sb) == [{"target_group": "checkout-green", "task_definition": "payments:2", "status": "PRIMARY"}]
    assert info(cd, deployment_id)["status"] == "Succeeded"
    assert sb.traffic_weights() == {"checkout-blue": 0.0, "checkout-green": 1.0}  # the World follows the listener


def test_all_at_once_shifts_everything_and_the_next_deployment_goes_back_to_blue(sb: Sandbox) -> None:
    """ECSAllAtOnce shifts all traffic at once; "Before you begin an Amazon ECS deployment": the next deployment's
    replacement task set goes to the target group of this one's original task set."""
    cd = group(sb)
    first = deploy(cd, appspec(), ALL_AT_ONCE)
    sb.advance(READY + 1)
    assert weights(sb) == {"checkout-blue": 0, "checkout-green": 100}
    sb.advance(WAIT + 1)
    assert info(cd, first)["status"] == "Succeeded"

    deploy(cd, appspec("payments:1"), ALL_AT_ONCE)
    sb.advance(READY + 1)
    assert weights(sb) == {"checkout-blue": 100, "checkout-green": 0}


def test_stop_with_rollback_puts_all_traffic_back_on_blue_and_removes_green(sb: Sandbox) -> None:
    """API StopDeployment (Pending, then Stopped); "Redeployments and deployment rollbacks": CodeDeploy reroutes
    traffic from the replacement task set to the original; the rollback is a new deployment."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec(), CANARY)
    sb.advance(READY + 1)
    assert weights(sb) == {"checkout-blue": 90, "checkout-green": 10}

    assert cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)["status"] == "Pending"
    sb.advance(STOP + 1)
    stopped = info(cd, deployment_id)
    assert stopped["status"] == "Stopped"
    rollback = info(cd, stopped["rollbackInfo"]["rollbackDeploymentId"])
    assert rollback["creator"] == "codeDeployRollback" and rollback["status"] == "Succeeded"
    assert weights(sb) == {"checkout-blue": 100, "checkout-green": 0}
    assert task_sets(sb) == BLUE_ONLY


def test_stopped_without_rollback_traffic_stays_split_and_the_next_deployment_fails(sb: Sandbox) -> None:
    """ "What happens during an Amazon ECS deployment": without rollback "components remain in their current state";
    a listener left splitting production traffic fails the next deployment (the sandbox's assumption, as for a
    Lambda alias left on two versions)."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec(), CANARY)
    sb.advance(READY + 1)
    cd.stop_deployment(deploymentId=deployment_id)
    sb.advance(STOP + 1)

    assert info(cd, deployment_id)["status"] == "Stopped"
    assert weights(sb) == {"checkout-blue": 90, "checkout-green": 10} and task_sets(sb) == BOTH
    failed = info(cd, deploy(cd, appspec(), ALL_AT_ONCE))
    assert failed["status"] == "Failed" and failed["errorInformation"]["code"] == "ECS_UPDATE_ERROR"


@pytest.mark.parametrize(
    "revision",
    [appspec(container="api"), appspec(port=9090), appspec("payments:7")],
    ids=["wrong container name", "wrong container port", "missing task definition"],
)
def test_an_appspec_that_ecs_refuses_fails_the_deployment(sb: Sandbox, revision: dict[str, Any]) -> None:
    """ "AppSpec 'resources' section for Amazon ECS deployments": the container must be one of the task definition's,
    with the port; ECS refuses the replacement task set and the deployment fails (API ErrorInformation,
    ECS_UPDATE_ERROR). Nothing changes."""
    cd = group(sb)
    failed = info(cd, deploy(cd, revision, CANARY))

    assert failed["status"] == "Failed" and failed["errorInformation"]["code"] == "ECS_UPDATE_ERROR"
    assert task_sets(sb) == BLUE_ONLY and weights(sb) == {"checkout-blue": 100, "checkout-green": 0}


def test_an_appspec_not_of_ecs_shape_is_refused(sb: Sandbox) -> None:
    """API CreateDeployment, Errors: InvalidRevisionException (a Lambda resource, or a port that is not a number)."""
    cd = group(sb)
    lambda_spec = {"Resources": [{"f": {"Type": "AWS::Lambda::Function", "Properties": {"Name": "f"}}}]}
    for revision in (
        {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(lambda_spec)}},
        appspec(port="8080"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ClientError, match="InvalidRevisionException"):
            deploy(cd, revision, CANARY)


def test_a_hook_function_must_exist(sb: Sandbox) -> None:
    """ "AppSpec 'hooks' section for an Amazon ECS deployment": hooks name Lambda functions (HOOK_EXECUTION_FAILURE)."""
    cd = group(sb)
    failed = info(cd, deploy(cd, appspec(Hooks=[{"AfterAllowTestTraffic": "NoSuchFunction"}]), CANARY))

    assert failed["status"] == "Failed" and failed["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"


def test_one_active_deployment_per_group(sb: Sandbox) -> None:
    """API CreateDeployment, Errors: DeploymentLimitExceededException while the group has an active deployment."""
    cd = group(sb)
    deploy(cd, appspec(), CANARY)

    with pytest.raises(ClientError, match="DeploymentLimitExceededException"):
        deploy(cd, appspec(), CANARY)


def test_the_groups_alarm_in_alarm_stops_the_deployment_and_rolls_it_back(sb: Sandbox) -> None:
    """ "Monitoring deployments with CloudWatch alarms in CodeDeploy": polled while the deployment runs, an alarm in
    ALARM stops it (ALARM_ACTIVE); DEPLOYMENT_STOP_ON_ALARM rolls it back to blue."""
    cd = group(sb, **ALARMED)
    deployment_id = deploy(cd, appspec(), CANARY)
    sb.advance(READY + 1)
    sb.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="test")
    sb.world.after_alarms()  # CodeDeploy's poll (the World evaluates alarms each minute and then polls)

    stopped = info(cd, deployment_id)
    assert stopped["status"] == "Stopped" and stopped["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert weights(sb) == {"checkout-blue": 100, "checkout-green": 0} and task_sets(sb) == BLUE_ONLY


def test_override_alarm_configuration_lets_the_deployment_proceed(sb: Sandbox) -> None:
    """API CreateDeployment: overrideAlarmConfiguration replaces the group's alarm configuration."""
    cd = group(sb, **ALARMED)
    sb.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="test")
    deployment_id = deploy(cd, appspec(), CANARY, overrideAlarmConfiguration={"enabled": False, "alarms": []})

    assert info(cd, deployment_id)["status"] == "InProgress"


def test_a_configuration_of_another_compute_platform_is_refused(sb: Sandbox) -> None:
    """ "Working with deployment configurations in CodeDeploy": Lambda configurations are not ECS ones; both
    CreateDeploymentGroup and CreateDeployment refuse them (InvalidDeploymentConfigNameException)."""
    with pytest.raises(ClientError, match="InvalidDeploymentConfigNameException"):
        group(sb, deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce")
    cd = group(sb)
    with pytest.raises(ClientError, match="InvalidDeploymentConfigNameException"):
        deploy(cd, appspec(), "CodeDeployDefault.LambdaCanary10Percent5Minutes")
    routing = {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 20, "linearInterval": 1}}
    cd.create_deployment_config(deploymentConfigName="Ecs20", computePlatform="ECS", trafficRoutingConfig=routing)
    deploy(cd, appspec(), "Ecs20")
    sb.advance(READY + 1)
    assert weights(sb) == {"checkout-blue": 80, "checkout-green": 20}


def test_the_group_needs_a_code_deploy_service(sb: Sandbox) -> None:
    """API CreateDeploymentGroup, Errors: InvalidECSServiceException for a service that does not exist or does not
    use the CODE_DEPLOY deployment controller (AWS: "Deployment group's ECS service must be configured for a
    CODE_DEPLOY deployment controller.")."""
    for service in ("nobody", "rolling"):
        with pytest.raises(ClientError, match="InvalidECSServiceException"):
            group(sb, service=service)
