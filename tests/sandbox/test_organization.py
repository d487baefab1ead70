"""The sandbox's organization (sandbox/organization.py) refuses what AWS refuses: an AssumeRole the member role's
trust does not admit, a call the member role does not grant, an event the central bus's policy does not admit."""

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rollguard_cli.drills import MEMBER_A, MEMBER_B, OUTSIDER, _organization
from rollguard_cli.sandbox.organization import MemberAccount, Organization
from rollguard_cli.sandbox.runner import REPO, Sandbox

pytestmark = pytest.mark.slow  # moto

ROLE_B = f"arn:aws:iam::{MEMBER_B}:role/rollguard-execution"
REMEDIATION = "arn:aws:sts::123456789012:assumed-role/rollguard-RemediationFunctionRole/rollguard-remediation"


@pytest.fixture
def sb() -> Any:
    organization = _organization()
    organization.members += (MemberAccount("333333333333", member_stack=False),)
    with Sandbox(
        error_model=lambda label, at, config: 0.01,
        policy_file=REPO / "policies" / "sandbox-organization.yaml",
        organization=organization,
    ) as sandbox:
        yield sandbox


def assume(sb: Sandbox, role_arn: str, session: str, function: str = "rollguard-remediation") -> dict[str, Any]:
    with sb.acting_as(function):
        return dict(sb.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"])


def refusal(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    error = raised.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


def test_the_central_functions_assume_the_member_role_in_a_rollguard_session(sb: Sandbox) -> None:
    credentials = assume(sb, ROLE_B, "rollguard-checkout-5xx-1")

    assert credentials["AccessKeyId"].startswith("ASIA")
    assert sb.sessions[credentials["AccessKeyId"]] == (
        f"arn:aws:sts::{MEMBER_B}:assumed-role/rollguard-execution/rollguard-checkout-5xx-1",
        MEMBER_B,
    )


@pytest.mark.parametrize(
    ("role_arn", "session"),
    [
        (ROLE_B, "someone-else"),  # sts:RoleSessionName rollguard-*
        ("arn:aws:iam::333333333333:role/rollguard-execution", "rollguard-x"),  # no member stack: no such role
    ],
    ids=["session-name", "no-member-stack"],
)
def test_an_assume_role_the_trust_does_not_admit_is_refused_as_sts_refuses_it(
    sb: Sandbox, role_arn: str, session: str
) -> None:
    with pytest.raises(ClientError) as raised:
        assume(sb, role_arn, session)

    assert refusal(raised) == (
        "AccessDenied",
        403,
        f"User: {REMEDIATION} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
    )
    assert sb.log.iam_denied[-1]["action"] == "sts:AssumeRole"


@pytest.mark.parametrize(
    ("function", "role_arn"),
    [("rollguard-approval", ROLE_B), ("rollguard-remediation", f"arn:aws:iam::{MEMBER_B}:role/admin")],
    ids=["a-function-without-the-grant", "a-role-that-is-not-the-execution-role"],
)
def test_an_assume_role_the_functions_statements_do_not_grant_is_refused_by_them(
    sb: Sandbox, function: str, role_arn: str
) -> None:
    with pytest.raises(ClientError) as raised:
        assume(sb, role_arn, "rollguard-x", function=function)

    code, status, message = refusal(raised)
    assert (code, status) == ("AccessDenied", 403)
    assert message.endswith("because no identity-based policy allows the sts:AssumeRole action")


def test_a_trust_on_a_principal_of_another_stack_is_refused(sb: Sandbox) -> None:
    assert sb.organization is not None
    other_stack = "arn:aws:iam::123456789012:role/billing-RemediationFunctionRole"
    assert sb.organization.trust_refuses(other_stack, ROLE_B, "rollguard-x")
    assert sb.organization.trust_refuses("arn:aws:iam::444444444444:role/rollguard-Fn", ROLE_B, "rollguard-x")
    assert not sb.organization.trust_refuses(
        "arn:aws:iam::123456789012:role/rollguard-VerifyFunctionRole", ROLE_B, "rollguard-x"
    )


def test_calls_with_the_member_role_are_judged_by_its_statements_in_its_account(sb: Sandbox) -> None:
    credentials = assume(sb, ROLE_B, "rollguard-x")
    session = f"arn:aws:sts::{MEMBER_B}:assumed-role/rollguard-execution/rollguard-x"
    keys = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", **keys)
    codedeploy = boto3.client("codedeploy", region_name="us-east-1", **keys)
    with sb.acting_as("rollguard-remediation"):  # the function may; the member role may not touch tables
        with pytest.raises(ClientError) as raised:
            dynamodb.describe_table(TableName="rollguard-incidents")
        codedeploy.get_deployment_config(deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce")  # granted

    code, status, message = refusal(raised)
    assert code == "AccessDeniedException"
    assert message == (
        f"User: {session} is not authorized to perform: dynamodb:DescribeTable on resource: "
        f"arn:aws:dynamodb:us-east-1:{MEMBER_B}:table/rollguard-incidents because no identity-based policy allows "
        "the dynamodb:DescribeTable action"
    )


def test_the_central_bus_admits_the_organization_or_the_listed_accounts() -> None:
    in_org = _organization()
    assert in_org.bus_refuses(MEMBER_A) is None
    assert in_org.bus_refuses(OUTSIDER) == (
        f"the central event bus's policy does not allow events:PutEvents from account {OUTSIDER}"
    )

    listed = Organization(
        members=(MemberAccount(MEMBER_A, in_organization=False), MemberAccount(MEMBER_B, in_organization=False)),
        service_account=MEMBER_B,
        organization=False,
        member_account_ids=MEMBER_B,
    )
    assert listed.bus_refuses(MEMBER_B) is None
    assert listed.bus_refuses(MEMBER_A) is not None


def test_an_event_of_an_account_without_the_member_stack_is_not_forwarded(sb: Sandbox) -> None:
    assert sb.organization is not None
    alarm = {"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "id": "e1"}
    alarm["detail"] = {"state": {"value": "ALARM"}}

    assert sb.organization.forward({**alarm, "account": MEMBER_A}) is True
    assert sb.organization.forward({**alarm, "account": "333333333333"}) is False
    assert sb.organization.forward({**alarm, "account": MEMBER_A, "detail": {"state": {"value": "OK"}}}) is False
    assert sb.organization.undelivered == []
