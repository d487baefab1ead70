"""Helpers for reading template.yaml in tests: a loader and an IAM view of each role.

`allowed_actions(template, "RemediationFunction")` answers "which actions may this resource's role call, and
on what?", with CloudFormation intrinsics turned into short readable strings:

    {"dynamodb:PutItem": {"table:AuditTable"},
     "codedeploy:GetDeployment": {"arn:${AWS::Partition}:codedeploy:...:deploymentgroup:${Pattern}/*"}}

Only what the template itself writes is read (the `Policies` of a SAM function or state machine).
The managed policies SAM attaches on its own (basic execution, X-Ray write) are not included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str
from rollguard_cli.sandbox.iam import PolicyNotModelled, policy_statements

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
# The member-account template (plain CloudFormation): forwarding rules and the execution role (docs/organizations.md).
MEMBER_TEMPLATE_PATH = REPO_ROOT / "member-account.yaml"

# Short names used when a resource of this type is referenced from a policy.
_KIND_BY_TYPE = {
    "AWS::DynamoDB::Table": "table",
    "AWS::SNS::Topic": "topic",
    "AWS::SQS::Queue": "queue",
    "AWS::Serverless::StateMachine": "statemachine",
    "AWS::StepFunctions::StateMachine": "statemachine",
    "AWS::Serverless::Function": "function",
    "AWS::Lambda::Function": "function",
    "AWS::Logs::LogGroup": "loggroup",
}

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class UnsupportedPolicyError(ValueError):
    """A policy entry or intrinsic this helper cannot turn into explicit actions."""


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML file, short tags (!Ref, !Sub, !GetAtt, !If ...) included."""
    template, problems = decode_str(path.read_text(encoding="utf-8"))
    if problems or template is None:
        raise ValueError(f"cannot parse {path}: {[str(p) for p in problems]}")
    return _plain(template)


def _plain(value: Any) -> Any:
    """cfn-lint returns dict/str subclasses carrying line marks; tests want plain values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def resources_of_type(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") in types
    }


def readable(template: dict[str, Any], value: Any) -> str:
    """Render a policy Resource (plain string or intrinsic) as a short, comparable string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return _ref(template, arg)
        if name == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return _get_att(template, logical_id, attribute)
        if name == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return _sub(template, text, variables)
        if name == "Fn::Join":
            separator, parts = arg
            return separator.join(readable(template, part) for part in parts)
    raise UnsupportedPolicyError(f"cannot render {value!r}")


def _kind(template: dict[str, Any], logical_id: str) -> str | None:
    resource = template.get("Resources", {}).get(logical_id)
    if resource is None:
        return None
    resource_type = resource.get("Type", "")
    return _KIND_BY_TYPE.get(resource_type, resource_type.rsplit("::", 1)[-1].lower())


def _ref(template: dict[str, Any], name: str) -> str:
    kind = _kind(template, name)
    return f"{kind}:{name}" if kind else "${" + name + "}"  # parameters and pseudo parameters


def _get_att(template: dict[str, Any], logical_id: str, attribute: str) -> str:
    kind = _kind(template, logical_id)
    if kind is None:
        raise UnsupportedPolicyError(f"GetAtt of unknown resource {logical_id}")
    return f"{kind}:{logical_id}" if attribute == "Arn" else f"{kind}:{logical_id}.{attribute}"


def _sub(template: dict[str, Any], text: str, variables: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} is not substituted by CloudFormation
            return "${" + name[1:] + "}"
        if name in variables:
            return readable(template, variables[name])
        if "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            return _get_att(template, logical_id, attribute)
        return _ref(template, name)

    return _SUB_VARIABLE.sub(replace, text)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_entries(template: dict[str, Any], logical_id: str) -> list[Any]:
    resource = template["Resources"][logical_id]
    policies = resource.get("Properties", {}).get("Policies", [])
    return _as_list(policies)


def statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    """Every IAM statement the resource's `Policies` grant, SAM templates expanded: the sandbox's reading
    (rollguard_cli.sandbox.iam), so the template tests and the enforced IAM see the same statements."""
    try:
        return policy_statements(template, logical_id)
    except PolicyNotModelled as exc:
        raise UnsupportedPolicyError(str(exc)) from exc


def allowed_actions(template: dict[str, Any], logical_id: str) -> dict[str, set[str]]:
    """Map each action granted to `logical_id`'s role to the readable resources it is granted on."""
    granted: dict[str, set[str]] = {}
    for statement in statements(template, logical_id):
        if statement.get("Effect") != "Allow":
            continue  # a Deny only takes rights away
        if "NotAction" in statement or "NotResource" in statement:
            raise UnsupportedPolicyError(f"{logical_id}: NotAction/NotResource grants too much to review")
        resources = {readable(template, r) for r in _as_list(statement.get("Resource", []))}
        for action in _as_list(statement.get("Action", [])):
            granted.setdefault(str(action), set()).update(resources)
    return granted
