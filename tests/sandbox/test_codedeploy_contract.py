"""Contract tests: CodeDeploy and Lambda in the sandbox behave as AWS documents, driven with plain boto3.

No Rollguard code runs here: each test asserts one behaviour of docs/sandbox.md with AWS's own API calls, so a
sandbox that is kinder than AWS fails here before it can make a drill pass.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.runner import Sandbox

pytestmark = pytest.mark.slow  # the sandbox's contracts, on moto

APP, GROUP, FUNCTION, ALIAS = "shop", "shop-prod", "shop", "live"
ALARM = "shop-errors"


def appspec(current: str, target: str, kind: str = "AppSpecContent") -> dict[str, Any]:
    body = json.dumps(
        {
            "version": 0.0,
            "Resources": [
                {
                    FUNCTION: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": FUNCTION,
                            "Alias": ALIAS,
                            "CurrentVersion": current,
                            "TargetVersion": target,
                        },
                    }
                }
            ],
        }
    )
    key = "appSpecContent" if kind == "AppSpecContent" else "string"
    return {"revisionType": kind, key: {"content": body}}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(error_model=lambda label, at, config: 0.0) as sandbox:
        lam = sandbox.client("lambda")
        lam.create_function(
            FunctionName=FUNCTION, Runtime="python3.13", Role=sandbox.role_arn, Handler="a.b", Code={"ZipFile": b"x"}
        )
        for n in (1, 2):
            lam.update_function_configuration(FunctionName=FUNCTION, Description=f"build {n}")
            lam.publish_version(FunctionName=FUNCTION)
        lam.create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion="1")
        sandbox.client("codedeploy").create_application(applicationName=APP, computePlatform="Lambda")
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


def group(sb: Sandbox, **settings: Any) -> Any:
    cd = sb.client("codedeploy")
    cd.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=GROUP,
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        **settings,
    )
    return cd


def deploy(cd: Any, revision: dict[str, Any], config: str, **extra: Any) -> str:
    return str(
        cd.create_deployment(
            applicationName=APP, deploymentGroupName=GROUP, revision=revision, deploymentConfigName=config, **extra
        )["deploymentId"]
    )


def info(cd: Any, deployment_id: str) -> dict[str, Any]:
    return dict(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"])


def alias(sb: Sandbox) -> dict[str, Any]:
    found = sb.client("lambda").get_alias(FunctionName=FUNCTION, Name=ALIAS)
    return {
        "version": found["FunctionVersion"],
        "weights": (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights"),
    }


CANARY = "CodeDeployDefault.LambdaCanary10Percent5Minutes"


def test_a_canary_moves_the_alias_a_slice_first_then_the_rest(sb: Sandbox) -> None:
    """ "Deployment configurations on an AWS Lambda compute platform": Canary10Percent5Minutes shifts 10%, then
    the other 90% five minutes later; the alias's RoutingConfig is how Lambda splits traffic."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec("1", "2"), CANARY)

    assert alias(sb) == {"version": "1", "weights": {"2": 0.1}}
    sb.advance(5 * 60 + 40)
    assert alias(sb) == {"version": "2", "weights": None}
    assert info(cd, deployment_id)["status"] == "Succeeded"


def test_a_custom_time_based_canary_config_is_created_once_and_read_back(sb: Sandbox) -> None:
    """API CreateDeploymentConfig / GetDeploymentConfig (TimeBasedCanary); a name taken is refused."""
    cd = group(sb)
    routing = {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 25, "canaryInterval": 7}}
    cd.create_deployment_config(deploymentConfigName="Mine", computePlatform="Lambda", trafficRoutingConfig=routing)

    assert (
        cd.get_deployment_config(deploymentConfigName="Mine")["deploymentConfigInfo"]["trafficRoutingConfig"] == routing
    )
    with pytest.raises(ClientError, match="DeploymentConfigAlreadyExistsException"):
        cd.create_deployment_config(deploymentConfigName="Mine", computePlatform="Lambda", trafficRoutingConfig=routing)
    deploy(cd, appspec("1", "2"), "Mine")
    assert alias(sb) == {"version": "1", "weights": {"2": 0.25}}


def test_an_unknown_deployment_config_is_refused(sb: Sandbox) -> None:
    """API CreateDeployment, Errors: DeploymentConfigDoesNotExistException."""
    with pytest.raises(ClientError, match="DeploymentConfigDoesNotExistException"):
        deploy(group(sb), appspec("1", "2"), "Nobody.MadeThisConfig")


@pytest.mark.parametrize("kind", ["AppSpecContent", "String"])
def test_current_version_must_be_the_alias_version(sb: Sandbox, kind: str) -> None:
    """ "AppSpec 'resources' section (AWS Lambda deployments only)": CurrentVersion is the version the alias points
    to; otherwise the deployment fails (API ErrorInformation code INVALID_LAMBDA_CONFIGURATION)."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec("2", "1", kind), "CodeDeployDefault.LambdaAllAtOnce")

    failed = info(cd, deployment_id)
    assert failed["status"] == "Failed" and failed["errorInformation"]["code"] == "INVALID_LAMBDA_CONFIGURATION"
    assert alias(sb) == {"version": "1", "weights": None}


def test_stop_answers_pending_and_the_deployment_stays_active_until_stopped(sb: Sandbox) -> None:
    """API StopDeployment: status Pending while the stop is under way; a group has one active deployment at a
    time (API CreateDeployment: DeploymentLimitExceededException)."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec("1", "2"), CANARY)

    assert cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)["status"] == "Pending"
    assert info(cd, deployment_id)["status"] == "InProgress"
    with pytest.raises(ClientError, match="DeploymentLimitExceededException"):
        deploy(cd, appspec("1", "2"), "CodeDeployDefault.LambdaAllAtOnce")
    sb.advance(30)
    assert info(cd, deployment_id)["status"] == "Stopped"


def test_stopped_with_rollback_codedeploy_rolls_back_with_a_new_deployment(sb: Sandbox) -> None:
    """ "Redeploy and roll back a deployment with CodeDeploy": a rollback is a new deployment; rollbackInfo links
    the two; the alias goes back to CurrentVersion."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec("1", "2"), CANARY)
    cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
    sb.advance(30)

    rollback_id = info(cd, deployment_id)["rollbackInfo"]["rollbackDeploymentId"]
    rollback = info(cd, rollback_id)
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    assert alias(sb) == {"version": "1", "weights": None}


def test_stopped_without_rollback_the_alias_stays_split_and_the_next_deployment_fails(sb: Sandbox) -> None:
    """ "Troubleshoot AWS Lambda deployment issues": stopped without rollback, the alias references two versions
    and subsequent attempts to deploy the function fail."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec("1", "2"), CANARY)
    cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=False)
    sb.advance(30)

    assert alias(sb) == {"version": "1", "weights": {"2": 0.1}}
    retry = deploy(cd, appspec("1", "2"), "CodeDeployDefault.LambdaAllAtOnce")
    assert info(cd, retry)["status"] == "Failed"
    assert info(cd, retry)["errorInformation"]["code"] == "INVALID_LAMBDA_CONFIGURATION"


def test_stopping_a_completed_deployment_is_refused(sb: Sandbox) -> None:
    """API StopDeployment, Errors: DeploymentAlreadyCompletedException."""
    cd = group(sb)
    deployment_id = deploy(cd, appspec("1", "2"), "CodeDeployDefault.LambdaAllAtOnce")
    sb.advance(60)
    with pytest.raises(ClientError, match="DeploymentAlreadyCompletedException"):
        cd.stop_deployment(deploymentId=deployment_id)


ALARMED_GROUP = {
    "alarmConfiguration": {"enabled": True, "alarms": [{"name": ALARM}]},
    "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
}


def test_the_groups_alarm_in_alarm_stops_a_deployment_and_rolls_it_back(sb: Sandbox) -> None:
    """ "Monitoring deployments with CloudWatch alarms in CodeDeploy": while an alarm of the group is in ALARM the
    deployment is stopped; DEPLOYMENT_STOP_ON_ALARM rolls it back."""
    cd = group(sb, **ALARMED_GROUP)
    sb.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="test")
    deployment_id = deploy(cd, appspec("1", "2"), CANARY)

    stopped = info(cd, deployment_id)
    assert stopped["status"] == "Stopped" and stopped["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert stopped["rollbackInfo"]["rollbackDeploymentId"]
    assert alias(sb) == {"version": "1", "weights": None}


def test_override_alarm_configuration_lets_the_deployment_proceed(sb: Sandbox) -> None:
    """API CreateDeployment: overrideAlarmConfiguration replaces the group's alarm configuration for this
    deployment (alarm polling off here)."""
    cd = group(sb, **ALARMED_GROUP)
    sb.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="test")
    deployment_id = deploy(cd, appspec("1", "2"), CANARY, overrideAlarmConfiguration={"enabled": False, "alarms": []})

    assert info(cd, deployment_id)["status"] == "InProgress"
    assert alias(sb) == {"version": "1", "weights": {"2": 0.1}}


def test_a_function_past_its_timeout_is_stopped_as_lambda_stops_it(sb: Sandbox) -> None:
    """ "Configure Lambda function timeout": the invocation ends at Timeout; Invoke answers FunctionError Unhandled
    with errorType Sandbox.Timedout (what Step Functions reports as the error). Waiting counts."""
    from rollguard import clock

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        clock.sleep(5)
        return {"done": True}

    sb.handlers["slow"] = slow
    sb.ext.timeouts["slow"] = 3
    lam = sb.client("lambda")
    lam.create_function(
        FunctionName="slow", Runtime="python3.13", Role=sb.role_arn, Handler="a.b", Code={"ZipFile": b"x"}
    )

    answer = lam.invoke(FunctionName="slow", Payload=b"{}")
    assert answer["FunctionError"] == "Unhandled"
    body = json.loads(answer["Payload"].read())
    assert body["errorType"] == "Sandbox.Timedout" and "timed out after 3.00 seconds" in body["errorMessage"]
