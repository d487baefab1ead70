"""An AWS Organization in the sandbox: the central Rollguard account and member accounts, each with its own moto
state (moto keeps every backend per account id, and a request made with the credentials of an assumed role is
served in the role's account: "Multi-Account support", moto docs), joined the way docs/organizations.md deploys them.

- **Events**: an event of a member account reaches the central default bus only through one of member-account.yaml's
  forwarding rules (its pattern read from that template), and only when the central bus's policy admits the sender
  (template.yaml's EventBusPolicy resources, their Condition and their statements evaluated): "Sending and receiving
  events between AWS accounts in Amazon EventBridge". An event the bus refuses is not delivered; the sending rule
  counts it as a failed invocation, and the sandbox keeps it in ``Organization.undelivered`` with the reason.
- **Trust**: an ``sts:AssumeRole`` of a member's execution role is refused unless the role exists (the member stack is
  deployed in that account) and its trust policy (member-account.yaml's AssumeRolePolicyDocument, Fn::If and its
  Condition operators evaluated) admits the caller: "Policy evaluation logic" (IAM User Guide) for cross-account
  access needs both the caller's identity policy (the central function's, sandbox/iam.py) and the role's trust.
  The refusal is STS's AccessDenied, HTTP 403, "User: <caller> is not authorized to perform: sts:AssumeRole on
  resource: <role>", whether or not the role exists (as seen in real responses: cloudposse/terraform-aws-components
  release 1.231.0's notes; HackTricks' "AWS - IAM & STS Unauthenticated Enum").
- **The member role's rights**: a call made with assumed credentials is authorized against the execution role's own
  statements in member-account.yaml, resolved in that account, not against the function's.

Condition operators modelled ("IAM JSON policy elements: Condition operators"): StringEquals, StringLike,
ArnEquals, ArnLike; several values of one key match any, several keys and operators must all match, and a key the
request does not carry fails the condition. Anything else is refused loudly (:class:`~.iam.PolicyNotModelled`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rollguard_cli.sandbox.iam import Enforcer, PolicyNotModelled, Stack, _Resolver

CENTRAL_ACCOUNT = "123456789012"
# "Organization" (AWS Organizations API Reference): ^o-[a-z0-9]{10,32}$.
ORGANIZATION_ID = "o-rollguard01"
STACK_NAME = "rollguard"  # the central stack (its function roles are rollguard-<LogicalId>Role, as SAM names them)


@dataclass(frozen=True)
class MemberAccount:
    account: str
    in_organization: bool = True
    # member-account.yaml deployed here: the forwarding rules and (in the central region) the execution role.
    member_stack: bool = True


@dataclass
class Undelivered:
    account: str
    rule: str
    event_id: str
    reason: str


@dataclass
class Organization:
    """A central account and its member accounts. ``service_account`` is where the drill's service (its Lambda
    function, CodeDeploy group and alarm: the sandbox's World) runs. ``member_account_ids`` is the central stack's
    MemberAccountIds parameter ("" with ``organization`` True: the bus admits the whole organization)."""

    members: tuple[MemberAccount, ...]
    service_account: str
    organization: bool = True
    member_account_ids: str = ""
    role_name: str = "rollguard-execution"
    region: str = "us-east-1"
    undelivered: list[Undelivered] = field(default_factory=list)
    _enforcers: dict[str, Enforcer] = field(default_factory=dict, repr=False)

    @property
    def central_parameters(self) -> dict[str, str]:
        """template.yaml's parameters for this shape (the sandbox sets the functions' environment from the same)."""
        return {
            "MemberAccountIds": self.member_account_ids,
            "OrganizationId": ORGANIZATION_ID if self.organization else "",
            "MemberRoleName": self.role_name,
        }

    def member(self, account: str) -> MemberAccount | None:
        return next((m for m in self.members if m.account == account), None)

    def in_organization(self, account: str) -> bool:
        if account == CENTRAL_ACCOUNT:
            return self.organization
        found = self.member(account)
        return found is not None and found.in_organization

    def member_parameters(self, account: str) -> dict[str, str]:
        """member-account.yaml's parameters, as docs/organizations.md's StackSets command passes them."""
        return {
            "CentralAccountId": CENTRAL_ACCOUNT,
            "CentralRegion": self.region,
            "CentralStackName": STACK_NAME,
            "RoleName": self.role_name,
            "OrganizationId": ORGANIZATION_ID if self.organization and self.in_organization(account) else "",
        }

    @cached_property
    def central_template(self) -> dict[str, Any]:
        from rollguard_cli.sandbox.runner import load_template

        return load_template()

    @cached_property
    def member_template(self) -> dict[str, Any]:
        from rollguard_cli.sandbox.runner import REPO, load_template

        return load_template(REPO / "member-account.yaml")

    # ------------------------------------------------------------------ events

    def forward(self, event: Mapping[str, Any]) -> bool:
        """Whether a member account's event reaches the central default bus (see the module's docstring); a refused
        one is kept in ``undelivered``."""
        from rollguard_cli.sandbox.runner import matches_pattern

        account = str(event.get("account", ""))
        member = self.member(account)
        if member is None or not member.member_stack:
            return False  # no forwarding rule in that account: the event stays on its own bus
        resolver = _resolver(self.member_template, account, self.region, self.member_parameters(account))
        for resource in self.member_template["Resources"].values():
            if resource["Type"] != "AWS::Events::Rule" or not matches_pattern(
                resource["Properties"]["EventPattern"], dict(event)
            ):
                continue
            rule = resolver.resolve(resource["Properties"]["Name"])
            reason = self.bus_refuses(account)
            if reason is None:
                return True
            self.undelivered.append(Undelivered(account, rule, str(event.get("id", "")), reason))
            return False
        return False

    def bus_refuses(self, account: str) -> str | None:
        """Why the central default bus's policy refuses events:PutEvents from ``account`` (its forwarding role), or
        None when a statement allows it. Resource-based policy only: the sender's identity policy allows it
        (member-account.yaml's ForwardingRole)."""
        template = self.central_template
        parameters = self.central_parameters
        resolver = _resolver(template, CENTRAL_ACCOUNT, self.region, parameters)
        context = {"aws:PrincipalAccount": account}
        if self.in_organization(account):
            context["aws:PrincipalOrgID"] = ORGANIZATION_ID
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::Events::EventBusPolicy":
                continue
            if "Condition" in resource and not holds(template, resource["Condition"], parameters):
                continue
            statement = resource["Properties"]["Statement"]
            if statement.get("Effect") != "Allow" or "events:PutEvents" not in _listed(statement["Action"]):
                continue
            if _principal_matches(_value(resolver, statement["Principal"]), account) and conditions_hold(
                _value(resolver, statement.get("Condition", {})), context
            ):
                return None
        return f"the central event bus's policy does not allow events:PutEvents from account {account}"

    # ------------------------------------------------------------------ trust

    def trust_refuses(self, caller_role_arn: str, role_arn: str, session_name: str) -> bool:
        """Whether the execution role ``role_arn``'s trust policy refuses ``caller_role_arn`` assuming it in a
        session named ``session_name`` (or the role does not exist)."""
        account = role_arn.split(":")[4]
        member = self.member(account)
        if member is None or not member.member_stack or role_arn.rsplit("/", 1)[-1] != self.role_name:
            return True
        caller_account = caller_role_arn.split(":")[4]
        resolver = _resolver(self.member_template, account, self.region, self.member_parameters(account))
        document = self.member_template["Resources"]["ExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]
        context = {"aws:PrincipalArn": caller_role_arn, "sts:RoleSessionName": session_name}
        if self.in_organization(caller_account):
            context["aws:PrincipalOrgID"] = ORGANIZATION_ID
        parameters = self.member_parameters(account)
        for statement in document["Statement"]:
            if statement.get("Effect") != "Allow" or "sts:AssumeRole" not in _listed(statement["Action"]):
                continue
            principal = _value(resolver, statement["Principal"], self.member_template, parameters)
            if not _principal_matches(principal, caller_account):
                continue
            condition = _value(resolver, statement.get("Condition", {}), self.member_template, parameters)
            if conditions_hold(condition, context):
                return False
        return True

    def role_enforcer(self, account: str, lookups: Mapping[tuple[str, str], Any]) -> Enforcer:
        """The execution role's statements in ``account`` (member-account.yaml), enforced on calls made with its
        assumed credentials: the "function" of each check is the role session's ARN. One per account."""
        if account not in self._enforcers:
            self._enforcers[account] = self._role_enforcer(account, lookups)
        return self._enforcers[account]

    def _role_enforcer(self, account: str, lookups: Mapping[tuple[str, str], Any]) -> Enforcer:
        return AssumedRoleEnforcer(
            self.member_template,
            Stack(
                physical={},
                parameters=self.member_parameters(account),
                account=account,
                region=self.region,
                stack_name="rollguard-member",
            ),
            functions={},
            lookups=lookups,
        )


class AssumedRoleEnforcer(Enforcer):
    """An Enforcer for the one role a member template defines: every session of it is judged by its statements."""

    def role_session(self, function: str) -> str:
        return function  # the assumed-role session's ARN, which names the role and the incident's session

    def policy(self, function: str) -> Any:
        from rollguard_cli.sandbox.iam import compile_policy

        if function not in self._policies:
            self._policies[function] = compile_policy(self.template, "ExecutionRole", self.stack, function)
        return self._policies[function]

    def check(self, function: str, service: str, operation: str, params: Mapping[str, Any], region: str) -> Any:
        self.functions.setdefault(function, "ExecutionRole")
        return super().check(function, service, operation, params, region)


# ---------------------------------------------------------------------------- CloudFormation and IAM, the subset used


def _resolver(template: Mapping[str, Any], account: str, region: str, parameters: Mapping[str, str]) -> _Resolver:
    return _Resolver(template, Stack(physical={}, parameters=dict(parameters), account=account, region=region))


def holds(template: Mapping[str, Any], condition: Any, parameters: Mapping[str, str]) -> bool:
    """A template Condition (by name, or an Fn::Equals/Not/And/Or expression) for these parameters."""
    if isinstance(condition, str):
        return holds(template, template["Conditions"][condition], parameters)
    ((name, arg),) = condition.items()
    name = name.removeprefix("Fn::")
    if name == "Condition":
        return holds(template, arg, parameters)
    if name == "Not":
        return not holds(template, arg[0], parameters)
    if name == "And":
        return all(holds(template, a, parameters) for a in arg)
    if name == "Or":
        return any(holds(template, a, parameters) for a in arg)
    if name == "Equals":
        left, right = (_parameter(template, a, parameters) for a in arg)
        return left == right
    raise PolicyNotModelled(f"condition {condition!r} is not modelled")


def _parameter(template: Mapping[str, Any], value: Any, parameters: Mapping[str, str]) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        return parameters.get(name, str(template["Parameters"][name].get("Default", "")))
    return str(value)


def _value(
    resolver: _Resolver,
    value: Any,
    template: Mapping[str, Any] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> Any:
    """A policy fragment with its intrinsics resolved: Fn::If (with ``template``'s conditions), Fn::Split, and what
    the IAM resolver takes (Ref, Sub, GetAtt, Join)."""
    if isinstance(value, list):
        return [_value(resolver, v, template, parameters) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((name, arg),) = value.items()
            short = name.removeprefix("Fn::")
            if short == "If":
                if template is None:
                    raise PolicyNotModelled("Fn::If needs the template's conditions")
                chosen = arg[1] if holds(template, arg[0], parameters or {}) else arg[2]
                return _value(resolver, chosen, template, parameters)
            if short == "Split":
                separator, text = arg
                return [part for part in resolver.resolve(text).split(separator)]
            if short in {"Ref", "Sub", "GetAtt", "Join"}:
                return resolver.resolve(value)
        return {k: _value(resolver, v, template, parameters) for k, v in value.items()}
    return value


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _principal_matches(principal: Any, account: str) -> bool:
    """ "AWS JSON policy elements: Principal": "*" is everyone (narrowed by conditions); an account id or its root ARN
    stands for the account; a role ARN for that role."""
    if principal == "*":
        return True
    if isinstance(principal, dict) and "AWS" in principal:
        for entry in _listed(principal["AWS"]):
            if entry == "*" or entry == account or re.fullmatch(rf"arn:[a-z-]+:iam::{account}:root", entry):
                return True
    return False


def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            got = context.get(key)
            if got is None or not any(_compare(operator, got, e) for e in _listed(expected)):
                return False
    return True


def _compare(operator: str, got: str, expected: str) -> bool:
    if operator == "StringEquals":
        return got == expected
    if operator == "StringLike":
        return fnmatch.fnmatchcase(got, expected)
    if operator in {"ArnEquals", "ArnLike"}:
        # "Each of the six colon-delimited components of the ARN is checked separately", wildcards within each.
        got_parts, expected_parts = got.split(":", 5), expected.split(":", 5)
        if len(got_parts) != 6 or len(expected_parts) != 6:
            return False
        return all(fnmatch.fnmatchcase(g, e) for g, e in zip(got_parts, expected_parts, strict=True))
    raise PolicyNotModelled(f"condition operator {operator} is not modelled by the sandbox's IAM")
