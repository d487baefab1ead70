"""member-account.yaml follows template.yaml: it forwards what the central rules consume from a member account, and its
execution role may do exactly what the central functions' own statements grant on targets, in the member account.

A new action granted centrally on a target, or a new central rule on events from a member account, fails here until
member-account.yaml has it too (docs/organizations.md lists both).
"""

from __future__ import annotations

import copy
import json
from fnmatch import fnmatchcase
from typing import Any

import pytest
from iam import (
    MEMBER_TEMPLATE_PATH,
    REPO_ROOT,
    UnsupportedPolicyError,
    allowed_actions,
    load_template,
    readable,
    resources_of_type,
)
from iam_lint import ExampleValues, lint, suppressions

# The central functions that read or change a target (template.yaml gives each sts:AssumeRole on the member role).
# The journal reads a member account's AppConfig profiles there (rollguard.journal).
TARGET_FUNCTIONS = ["RemediationFunction", "VerifyFunction", "CloseFunction", "WatchdogFunction", "JournalFunction"]
# Services of Rollguard's own state (tables, queues, topics, the state machine), of the hop (STS) and of the event bus:
# the execution role grants nothing on them.
CENTRAL_SERVICES = {"dynamodb", "sqs", "sns", "states", "sts", "events", "lambda", "logs", "kms"}
CENTRAL_BUS = "arn:${AWS::Partition}:events:${CentralRegion}:${CentralAccountId}:event-bus/default"


@pytest.fixture(scope="module")
def member() -> dict[str, Any]:
    return load_template(MEMBER_TEMPLATE_PATH)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    """Every statement of an AWS::IAM::Role's inline policies, as written."""
    statements = []
    for policy in template["Resources"][logical_id]["Properties"].get("Policies", []):
        statements.extend(_as_list(policy["PolicyDocument"]["Statement"]))
    return statements


def role_actions(template: dict[str, Any], logical_id: str) -> dict[str, set[str]]:
    """Each action the role allows, with the readable resources it is allowed on."""
    granted: dict[str, set[str]] = {}
    for statement in role_statements(template, logical_id):
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        resources = {readable(template, r) for r in _as_list(statement["Resource"])}
        for action in _as_list(statement["Action"]):
            granted.setdefault(str(action), set()).update(resources)
    return granted


def _names_the_central_stack(resource: str) -> bool:
    """A resource of the central stack itself: a table, queue, topic (readable's "table:AuditTable") or anything named
    after the stack (its state machine)."""
    return not (resource == "*" or resource.startswith("arn:")) or "${AWS::StackName}" in resource


def central_target_actions(template: dict[str, Any]) -> dict[str, set[str]]:
    """The target-side grants of the central functions, from template.yaml: every action they are granted on
    something that is not the central stack's own, less the hop itself (sts:AssumeRole on the member role)."""
    granted: dict[str, set[str]] = {}
    for function in TARGET_FUNCTIONS:
        for action, resources in allowed_actions(template, function).items():
            if action == "sts:AssumeRole" or any(_names_the_central_stack(r) for r in resources):
                continue
            granted.setdefault(action, set()).update(resources)
    return granted


def in_any_region(resources: set[str]) -> set[str]:
    """The same ARNs with the region open: the execution role is global, a target may be in any region."""
    return {r.replace("${AWS::Region}", "*") for r in resources}


# ---------------------------------------------------------------------------- the template itself


def test_member_template_is_plain_cloudformation(member: dict[str, Any]) -> None:
    """StackSets and `aws cloudformation deploy` take it as it is: no transform, no SAM resource, no Globals."""
    assert "Transform" not in member and "Globals" not in member
    assert not [r for r in member["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]


def test_member_parameters_match_the_central_ones(template: dict[str, Any], member: dict[str, Any]) -> None:
    """The names both stacks must agree on default to the same values, and the scoping patterns mean the same."""
    central, here = template["Parameters"], member["Parameters"]
    assert here["RoleName"]["Default"] == central["MemberRoleName"]["Default"]
    assert here["RoleName"]["AllowedPattern"] == central["MemberRoleName"]["AllowedPattern"]
    assert here["OrganizationId"]["AllowedPattern"] == central["OrganizationId"]["AllowedPattern"]
    for name in ("CodeDeployApplicationPattern", "LoadBalancerNamePattern", "EcsServicePattern", "AlarmNamePattern"):
        assert here[name]["Default"] == central[name]["Default"], name
    assert here["AppConfigStrategyName"]["Default"] == central["AppConfigStrategyName"]["Default"]
    # The required ones have no default: a stack set must say where the central stack is.
    assert not {"CentralAccountId", "CentralRegion", "CentralStackName"} & {
        k for k, p in here.items() if "Default" in p
    }


def test_the_organization_doc_lists_every_member_parameter(member: dict[str, Any]) -> None:
    doc = (REPO_ROOT / "docs" / "organizations.md").read_text()
    section = doc[doc.index("\n## Deploying the member template\n") : doc.index("\n### Across an organizational unit")]
    assert not [name for name in member["Parameters"] if f"`{name}`" not in section]


def test_the_organization_doc_says_why_the_execution_role_has_each_permission(member: dict[str, Any]) -> None:
    """Every action of the execution role has its row in the doc's table: the resource and the step that needs it."""
    doc = (REPO_ROOT / "docs" / "organizations.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in doc.splitlines() if line.startswith("| `")}
    granted = allowed_actions(member, "ExecutionRole")
    assert granted and not [action for action in granted if action not in rows]
    assert not [action for action in granted if len(rows[action].split("|")[3].strip()) < 10]  # a reason, not a stub


def test_the_member_account_has_the_central_strategy_for_flags_and_configs(
    template: dict[str, Any], member: dict[str, Any]
) -> None:
    """A flag or config step deploys with the strategy named AppConfigStrategyName in the target's own account."""
    (central,) = resources_of_type(template, "AWS::AppConfig::DeploymentStrategy").values()
    (here,) = resources_of_type(member, "AWS::AppConfig::DeploymentStrategy").values()
    assert here["Properties"] == central["Properties"]


# ---------------------------------------------------------------------------- forwarding


def central_rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every EventBridge rule pattern of the central functions, by "<function>.<event>"."""
    return {
        f"{logical_id}.{name}": event["Properties"]["Pattern"]
        for logical_id, function in resources_of_type(template, "AWS::Serverless::Function").items()
        for name, event in function["Properties"].get("Events", {}).items()
        if event["Type"] == "EventBridgeRule"
    }


def _names_a_central_resource(value: Any) -> bool:
    """A pattern that names one of the central stack's resources (the watchdog's, on its state machine's ARN) matches
    central events only."""
    if isinstance(value, dict):
        return any(k in {"Ref", "Fn::GetAtt", "Fn::Sub"} for k in value) or any(
            map(_names_a_central_resource, value.values())
        )
    if isinstance(value, list):
        return any(map(_names_a_central_resource, value))
    return False


def _pairs(pattern: dict[str, Any]) -> set[tuple[str, str]]:
    return {(source, kind) for source in pattern["source"] for kind in pattern["detail-type"]}


def test_forwards_every_central_rule_that_takes_member_events(template: dict[str, Any], member: dict[str, Any]) -> None:
    rules = central_rules(template)
    from_members = {name: p for name, p in rules.items() if not _names_a_central_resource(p)}
    assert set(rules) - set(from_members) == {"WatchdogFunction.ExecutionEnded"}  # the central state machine's
    forwarded = [r["Properties"]["EventPattern"] for r in resources_of_type(member, "AWS::Events::Rule").values()]

    wanted = set().union(*map(_pairs, from_members.values()))
    assert wanted >= {
        ("aws.cloudwatch", "CloudWatch Alarm State Change"),
        ("aws.codedeploy", "CodeDeploy Deployment State-change Notification"),
        ("aws.ecs", "ECS Deployment State Change"),
        ("aws.appconfig", "On Deployment Rollback"),
    }
    assert set().union(*map(_pairs, forwarded)) == wanted
    assert ("aws.states", "Step Functions Execution Status Change") not in wanted
    # And the same patterns, detail filters included: exactly what the central rules take, nothing they would drop.
    for name, pattern in from_members.items():
        assert pattern in forwarded, f"{name}'s events are not forwarded as {json.dumps(pattern)}"
    assert len(forwarded) == len(from_members)


def _rule_arn(name: Any) -> dict[str, str]:
    (sub,) = name.values()
    return {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/" + sub}


def test_each_rule_forwards_to_the_central_bus_with_the_forwarding_role(member: dict[str, Any]) -> None:
    rules = resources_of_type(member, "AWS::Events::Rule")
    trust = member["Resources"]["ForwardingRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    (statement,) = trust
    assert (statement["Principal"], statement["Action"]) == ({"Service": "events.amazonaws.com"}, "sts:AssumeRole")
    # Confused deputy: only this account's rules, and only these rules by their ARNs.
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    trusted_rules = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(map(json.dumps, trusted_rules)) == sorted(
        json.dumps(_rule_arn(r["Properties"]["Name"])) for r in rules.values()
    )
    for logical_id, rule in rules.items():
        props = rule["Properties"]
        assert props.get("EventBusName", "default") == "default", logical_id
        assert props["State"] == "ENABLED", logical_id
        (target,) = props["Targets"]
        assert readable(member, target["Arn"]) == CENTRAL_BUS, logical_id
        assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardingRole", "Arn"]}, logical_id
        # The event goes as it is: the intake reads EventBridge's envelope, account and region included.
        assert not {"Input", "InputPath", "InputTransformer"} & set(target), logical_id


def test_the_forwarding_role_may_only_put_events_on_the_central_bus(member: dict[str, Any]) -> None:
    assert role_actions(member, "ForwardingRole") == {"events:PutEvents": {CENTRAL_BUS}}
    assert "RoleName" not in member["Resources"]["ForwardingRole"]["Properties"]  # one per region's stack


# ---------------------------------------------------------------------------- the execution role


def test_the_execution_role_grants_exactly_the_central_target_side_actions(
    template: dict[str, Any], member: dict[str, Any]
) -> None:
    central = central_target_actions(template)
    here = role_actions(member, "ExecutionRole")
    assert central, "no target-side grant found in template.yaml"
    missing, extra = sorted(set(central) - set(here)), sorted(set(here) - set(central))
    assert not missing, (
        f"template.yaml grants these on targets, member-account.yaml's ExecutionRole does not: {missing}"
    )
    assert not extra, f"ExecutionRole grants what no central function is granted on a target: {extra}"
    for action, resources in central.items():
        assert here[action] == in_any_region(resources), action


def test_the_execution_role_grants_nothing_on_rollguards_own_state(member: dict[str, Any]) -> None:
    for action, resources in role_actions(member, "ExecutionRole").items():
        assert action.split(":")[0] not in CENTRAL_SERVICES, action
        assert "*" not in action, f"{action}: a wildcard action"
        for resource in resources:
            # This account's resources only ("*" where IAM has no resource type for the action).
            assert resource == "*" or ":${AWS::AccountId}:" in resource, f"{action} on {resource}"
            assert "${CentralAccountId}" not in resource, f"{action} on {resource}"
    for statement in role_statements(member, "ExecutionRole"):
        assert "Condition" not in statement, statement.get("Sid")


def test_the_execution_role_trusts_only_the_central_stacks_roles_in_rollguard_sessions(
    template: dict[str, Any], member: dict[str, Any]
) -> None:
    role = member["Resources"]["ExecutionRole"]
    assert role["Condition"] == "CreatesExecutionRole"
    assert member["Conditions"]["CreatesExecutionRole"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "CentralRegion"}]
    }
    props = role["Properties"]
    assert props["RoleName"] == {"Ref": "RoleName"}
    (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${CentralAccountId}:root"}}
    condition, with_organization, without = statement["Condition"]["Fn::If"]
    assert condition == "HasOrganization"
    trusted = {
        "ArnLike": {
            "aws:PrincipalArn": {"Fn::Sub": "arn:${AWS::Partition}:iam::${CentralAccountId}:role/${CentralStackName}-*"}
        },
        "StringLike": {"sts:RoleSessionName": "rollguard-*"},
    }
    assert without == trusted
    assert with_organization == {**trusted, "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    # The pattern is the central stack's own MemberTrustedRoleArnPattern output, seen from the member account...
    pattern = trusted["ArnLike"]["aws:PrincipalArn"]["Fn::Sub"]
    central = template["Outputs"]["MemberTrustedRoleArnPattern"]["Value"]["Fn::Sub"]
    as_seen_here = {"${AWS::AccountId}": "${CentralAccountId}", "${AWS::StackName}": "${CentralStackName}"}
    for name, value in as_seen_here.items():
        central = central.replace(name, value)
    assert central == pattern
    # ...which each assuming function's role matches: SAM's <function>Role, named by CloudFormation after the stack
    # (<stack>-<logical id>-<suffix>; iam_lint.py's example names are the same).
    assuming = template["Outputs"]["MemberAssumingRoleArns"]["Value"]["Fn::Join"][1]
    example = {"${AWS::Partition}": "aws", "${CentralAccountId}": "111111111111", "${CentralStackName}": "rollguard"}
    for name, value in example.items():
        pattern = pattern.replace(name, value)
    for function in TARGET_FUNCTIONS:
        assert {"Fn::GetAtt": [f"{function}Role", "Arn"]} in assuming, function
        assert fnmatchcase(f"arn:aws:iam::111111111111:role/rollguard-{function}Role-1A2B3C4D5E6F", pattern), function


def test_the_session_names_rollguard_uses_are_the_ones_the_role_admits() -> None:
    accounts = pytest.importorskip("rollguard.accounts")
    name = accounts.session_name("checkout-5xx-20261201T115504Z-6ca765")
    assert fnmatchcase(name, "rollguard-*") and accounts.SESSION_PREFIX == "rollguard-"


# ---------------------------------------------------------------------------- an independent IAM linter


# Example values for the parameters without a default, so that every ARN is a concrete one parliament can check.
EXAMPLE_CENTRAL = {"CentralAccountId": "111111111111", "CentralRegion": "us-east-1", "CentralStackName": "rollguard"}
MEMBER_ROLES = ["ForwardingRole", "ExecutionRole"]


def _policy_document(member: dict[str, Any], logical_id: str) -> dict[str, Any]:
    example = copy.deepcopy(member)
    for name, value in EXAMPLE_CENTRAL.items():
        example["Parameters"][name]["Default"] = value
    statements = role_statements(example, logical_id)
    try:
        return {"Version": "2012-10-17", "Statement": ExampleValues(example).resolve(statements)}
    except UnsupportedPolicyError as exc:  # an intrinsic the example values cannot resolve
        pytest.fail(str(exc))


@pytest.mark.parametrize("logical_id", MEMBER_ROLES)
def test_member_roles_lint_clean_or_explained(member: dict[str, Any], logical_id: str) -> None:
    """parliament over each role's policy, with test_iam_lint.py's rules: every finding is explained in the role's
    Metadata.rollguard-iam-lint, and no explanation outlives its finding."""
    accepted = suppressions(member, logical_id)
    findings = lint(_policy_document(member, logical_id))
    unexplained = [str(f) for f in findings if not any(s.covers(f) for s in accepted)]
    assert not unexplained, f"parliament findings for {logical_id}: {unexplained}"
    stale = [
        f"{s.issue} {action}"
        for s in accepted
        for action in s.actions
        if not any(s.covers(f) and f.action == action.lower() for f in findings)
    ]
    assert not stale, f"{logical_id} accepts findings parliament no longer reports: {stale}"
