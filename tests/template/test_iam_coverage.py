"""Every function's IAM covers the AWS calls it really makes in the drills — and nothing more.

The sandbox enforces each function's statements from template.yaml on every call (cli/rollguard_cli/sandbox/iam.py)
and records the IAM actions each call was authorized on, the Service Authorization Reference's way (a DynamoDB
transaction needs PutItem/UpdateItem/..., not TransactWriteItems; CreateDeployment with overrideAlarmConfiguration
also needs UpdateDeploymentGroup). A call the template does not grant fails its drill (tests/sandbox). Here: grants
that no drill exercises must be explained.
"""

from typing import Any

import pytest

from tests.template.iam import allowed_actions, load_template, resources_of_type

pytestmark = pytest.mark.slow

FUNCTIONS = {
    "rollguard-remediation": "RemediationFunction",
    "rollguard-verify": "VerifyFunction",
    "rollguard-close": "CloseFunction",
    "rollguard-journal": "JournalFunction",
    "rollguard-approval": "ApprovalFunction",
}
# Functions no drill runs, and where their calls are compared with their grants instead.
NOT_DRILLED = {
    "FlagReportFunction": "scheduled, outside incidents: tests/functional/test_flags.py records its calls on moto",
    "WatchdogFunction": "runs only when an execution dies: the closing-failure branch in tests/statemachine "
    "drives it; its grants are pinned in test_template.py",
}
# Granted but not exercised by a drill, and why.
EXPLAINED = {
    "RemediationFunction": {
        "dynamodb:GetItem": "the intake's join reads the lock when a cancelled transaction comes back without the "
        "failed item, and a starting incident when none came back (tests/functional/test_intake_replay.py)",
        "dynamodb:ConditionCheckItem": "the intake joining an open incident checks the lock still names it, in the "
        "join's transaction; no drill raises a second alarm (tests/functional/test_intake_replay.py)",
        "sqs:SendMessage": "the Lambda service sends failed async invocations to the DLQ with the function's role",
        "appconfig:StopDeployment": "config_revert of a deployment still in progress (tests/unit, tests/functional)",
        "codedeploy:GetDeploymentConfig": "CreateDeployment checks the deployment config with the caller's rights",
        "codedeploy:GetApplicationRevision": "CreateDeployment reads the revision with the caller's rights",
        "codedeploy:UpdateDeploymentGroup": "authorises CreateDeployment's overrideAlarmConfiguration (API Reference, "
        "CreateDeployment); never called itself",
        "elasticloadbalancing:ModifyRule": "shift_traffic on a listener rule (rule_priority); the drills shift a "
        "listener's default action (tests/functional/test_traffic_actions.py shifts a rule)",
        "elasticloadbalancing:DescribeRules": "finding a listener rule by rule_priority (tests/functional)",
        "arc-zonal-shift:CancelZonalShift": "zonal_shift with on_resolve: cancel, or an unverified shift on escalation "
        "(tests/functional/test_traffic_actions.py)",
        "ecs:StopServiceDeployment": "ECS's own rollback of a suspect still rolling out; the drills' suspects have "
        "completed (tests/functional/test_ecs_actions.py stops one in progress)",
        "sts:AssumeRole": "assuming a member account's execution role for a target in another account (issue 15): "
        "tests/functional/test_cross_account.py",
    },
    "VerifyFunction": {
        "ecs:DescribeServiceDeployments": "judging ECS's own rollback of the suspect (StopServiceDeployment or the "
        "circuit breaker) by its status (tests/functional/test_ecs_actions.py)",
        "sts:AssumeRole": "assuming a member account's execution role for a target in another account (issue 15): "
        "tests/functional/test_cross_account.py",
    },
    "JournalFunction": {
        "sts:AssumeRole": "reading a member account's AppConfig profile type (issue 15): "
        "tests/functional/test_cross_account.py",
    },
    "CloseFunction": {
        "elasticloadbalancing:ModifyRule": "moving an unverified slice back on a listener rule (tests/functional)",
        "elasticloadbalancing:DescribeRules": "reading a rule's weights before moving them back (tests/functional)",
        "arc-zonal-shift:CancelZonalShift": "cancelling an unverified zonal shift on escalation (tests/functional)",
        "sts:AssumeRole": "assuming a member account's execution role for a target in another account (issue 15): "
        "tests/functional/test_cross_account.py",
    },
}


def recorded(drill_runs: dict[str, Any]) -> dict[str, set[str]]:
    """The IAM actions each function's calls were authorized on, over every drill."""
    import json

    calls: dict[str, set[str]] = {logical: set() for logical in FUNCTIONS.values()}
    for run in drill_runs.values():
        for entry in json.loads(run["stdout"])["iam"]["authorized"]:
            function, action = entry.split(":", 1)
            if function in FUNCTIONS:
                calls[FUNCTIONS[function]].add(action)
    return calls


def test_every_function_is_drilled_or_checked_elsewhere() -> None:
    functions = set(resources_of_type(load_template(), "AWS::Serverless::Function"))
    assert functions == set(FUNCTIONS.values()) | set(NOT_DRILLED)


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS.values()))
def test_function_iam_covers_its_calls_and_nothing_more(drill_runs: dict[str, Any], logical_id: str) -> None:
    granted = set(allowed_actions(load_template(), logical_id))
    made = recorded(drill_runs)[logical_id]

    assert made - granted == set(), f"{logical_id} calls AWS without permission"
    unexplained = granted - made - set(EXPLAINED.get(logical_id, {}))
    assert unexplained == set(), f"{logical_id} is granted actions it never uses"
