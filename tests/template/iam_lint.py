"""Every role's policy in template.yaml as a concrete IAM policy document, linted by parliament.

parliament (https://github.com/duo-labs/parliament) reads plain IAM JSON, not CloudFormation, so each
intrinsic is replaced by the value it would have in an example deployment: stack `rollguard` in
123456789012/us-east-1, parameters at their defaults except the two name patterns, which get concrete
example values (a wildcard matches every ARN format and would hide a resource mismatch).

A finding is accepted only when the resource that owns the policy says why, in template.yaml:

    Metadata:
      rollguard-iam-lint:
        - finding: RESOURCE_STAR                # parliament's issue code
          actions: [cloudwatch:GetMetricData]   # the actions it names (omit for findings about no action)
          reason: GetMetricData has no resource-level permissions, so "*" is the only valid Resource.

Only what the template itself writes is linted (`Policies`, with SAM's LambdaInvokePolicy template expanded
as SAM expands it). The AWS managed policies SAM attaches on its own (basic execution, X-Ray write) are AWS's.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

from iam import UnsupportedPolicyError, policy_entries, resources_of_type

METADATA_KEY = "rollguard-iam-lint"

PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "rollguard",
    "AWS::URLSuffix": "amazonaws.com",
}
# Parameters whose default is a wildcard: lint a concrete example instead.
EXAMPLE_PARAMETERS = {
    "CodeDeployApplicationPattern": "checkout",
    "AlarmNamePattern": "checkout-*",
}

# SAM policy templates, expanded exactly as samtranslator's policy_templates.json defines them.
_SAM_POLICY_TEMPLATES = {
    "LambdaInvokePolicy": lambda params: {
        "Effect": "Allow",
        "Action": ["lambda:InvokeFunction"],
        "Resource": {
            "Fn::Sub": [
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*",
                {"functionName": params["FunctionName"]},
            ]
        },
    },
}

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class ExampleValues:
    """What Ref and Fn::GetAtt return in the example deployment, per resource type."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.region = PSEUDO_PARAMETERS["AWS::Region"]
        self.account = PSEUDO_PARAMETERS["AWS::AccountId"]

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def _physical_name(self, logical_id: str) -> str:
        return f"rollguard-{logical_id}-EXAMPLE"  # CloudFormation's <stack>-<logical id>-<suffix>

    def ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return EXAMPLE_PARAMETERS.get(name, str(parameters[name].get("Default", "")))
        resource_type = self._type(name)
        physical = self._physical_name(name)
        by_type = {
            "AWS::SNS::Topic": lambda: self._arn("sns", physical),
            "AWS::SQS::Queue": lambda: f"https://sqs.{self.region}.amazonaws.com/{self.account}/{physical}",
            "AWS::Serverless::StateMachine": lambda: self._arn("states", f"stateMachine:{physical}"),
            "AWS::StepFunctions::StateMachine": lambda: self._arn("states", f"stateMachine:{physical}"),
        }
        return by_type.get(resource_type, lambda: physical)()

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = self._type(logical_id)
        physical = self._physical_name(logical_id)
        arns = {
            "AWS::DynamoDB::Table": lambda: self._arn("dynamodb", f"table/{physical}"),
            "AWS::SQS::Queue": lambda: self._arn("sqs", physical),
            "AWS::SNS::Topic": lambda: self._arn("sns", physical),
            "AWS::Serverless::Function": lambda: self._arn("lambda", f"function:{physical}"),
            "AWS::Lambda::Function": lambda: self._arn("lambda", f"function:{physical}"),
            "AWS::Serverless::StateMachine": lambda: self._arn("states", f"stateMachine:{physical}"),
            "AWS::Logs::LogGroup": lambda: self._arn("logs", f"log-group:{physical}:*"),
        }
        if attribute == "Arn" and resource_type in arns:
            return arns[resource_type]()
        if attribute == "Name":
            return physical
        raise UnsupportedPolicyError(f"no example value for {logical_id}.{attribute} ({resource_type})")

    def _type(self, logical_id: str) -> str:
        resource = self.template.get("Resources", {}).get(logical_id)
        if resource is None:
            raise UnsupportedPolicyError(f"reference to unknown resource or parameter {logical_id}")
        return str(resource["Type"])

    def resolve(self, value: Any) -> Any:
        """A policy value with every intrinsic replaced by its example value."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self.ref(arg)
            if name == "Fn::GetAtt":
                logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical_id, attribute)
            if name == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if name == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in parts)
            if name.startswith("Fn::"):
                raise UnsupportedPolicyError(f"cannot resolve {name} in a policy")
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _SUB_VARIABLE.sub(replace, text)


def policy_document(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """The resource's `Policies` as one IAM policy document with example ARNs."""
    values = ExampleValues(template)
    statements: list[Any] = []
    for entry in policy_entries(template, logical_id):
        if isinstance(entry, dict) and "Statement" in entry:
            listed = entry["Statement"]
            statements.extend(listed if isinstance(listed, list) else [listed])
        elif isinstance(entry, dict) and len(entry) == 1 and next(iter(entry)) in _SAM_POLICY_TEMPLATES:
            ((name, params),) = entry.items()
            statements.append(_SAM_POLICY_TEMPLATES[name](params))
        else:
            raise UnsupportedPolicyError(f"{logical_id}: cannot lint policy entry {entry!r}")
    return {"Version": "2012-10-17", "Statement": values.resolve(statements)}


def role_owners(template: dict[str, Any]) -> list[str]:
    """Every function and state machine: each gets its own role from SAM."""
    return sorted(resources_of_type(template, "AWS::Serverless::Function", "AWS::Serverless::StateMachine"))


@dataclass(frozen=True, order=True)
class Finding:
    """One parliament finding about one action (action is None for findings about no single action)."""

    issue: str
    action: str | None
    detail: str

    def __post_init__(self) -> None:
        # IAM action names are case-insensitive, and parliament's community auditors report them lower-cased.
        if self.action is not None:
            object.__setattr__(self, "action", self.action.lower())

    def __str__(self) -> str:
        return f"{self.issue} {self.action or ''} {self.detail}".strip()


def _findings_of(issue: str, detail: Any, location: Any) -> list[Finding]:
    if issue == "RESOURCE_STAR":  # detail: the actions granted on "*" that could be scoped
        return [Finding(issue, str(action), 'granted on "*"') for action in detail]
    if issue == "RESOURCE_MISMATCH":  # detail: [{action, required_format}]
        return [Finding(issue, d["action"], f"needs a resource like {d['required_format']}") for d in detail]
    location = location if isinstance(location, dict) else {}
    if issue in {"UNKNOWN_ACTION", "UNKNOWN_PREFIX"} and "string" in location:
        return [Finding(issue, str(location["string"]), str(detail))]
    if "actions" in location:  # the community auditors: {"actions": [...], "type"/"resource": ...}
        actions = location["actions"] if isinstance(location["actions"], list) else [location["actions"]]
        context = {k: v for k, v in location.items() if k not in {"actions", "line", "column", "filepath"}}
        return [Finding(issue, str(a), json.dumps(context, default=str) if context else "") for a in actions]
    return [Finding(issue, None, json.dumps(detail, default=str) if detail else "")]


def lint(document: dict[str, Any]) -> list[Finding]:
    """parliament's findings, its community auditors included, one per (issue, action)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament 1.6.4 imports pkg_resources, which warns on import
        import parliament

    policy = parliament.analyze_policy_string(json.dumps(document, indent=2), include_community_auditors=True)
    findings: set[Finding] = set()
    for finding in policy.findings:
        findings.update(_findings_of(finding.issue, finding.detail, finding.location))
    return sorted(findings)


@dataclass(frozen=True)
class Suppression:
    issue: str
    actions: tuple[str, ...]
    reason: str

    def covers(self, finding: Finding) -> bool:
        if finding.issue != self.issue:
            return False
        if not self.actions:
            return finding.action is None
        return finding.action in {a.lower() for a in self.actions}


def suppressions(template: dict[str, Any], logical_id: str) -> list[Suppression]:
    """The resource's written exceptions; a malformed entry raises rather than silently suppressing."""
    entries = template["Resources"][logical_id].get("Metadata", {}).get(METADATA_KEY, [])
    result = []
    for entry in entries:
        unknown = set(entry) - {"finding", "actions", "reason"}
        if unknown or not isinstance(entry.get("finding"), str):
            raise ValueError(f"{logical_id}: {METADATA_KEY} entry {entry!r} needs finding, reason (and actions)")
        reason = str(entry.get("reason", "")).strip()
        if len(reason) < 20:
            raise ValueError(f"{logical_id}: {METADATA_KEY} {entry['finding']} needs a written reason")
        actions = entry.get("actions", [])
        result.append(Suppression(entry["finding"], tuple(actions if isinstance(actions, list) else [actions]), reason))
    return result
