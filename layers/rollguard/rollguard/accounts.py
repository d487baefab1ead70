"""Where a target lives: the stack's own account and region, or a member account of an organization (README, "One
Rollguard for many accounts").

A policy's target may name an ``account`` and a ``region``. The intake resolves them against the stack's own (its
Origin) once, when an incident opens, and the incident carries the result (``IncidentInput.location``): None for a
target at home, which is the single-account deployment, unchanged. A target in another account is reached by
assuming the member template's execution role there (member-account.yaml) with AWS STS, in a session named after the
incident so that the member account's CloudTrail says which incident made each call ("AssumeRole", AWS STS API
Reference: RoleSessionName "is included as part of the ARN and assumed role ID in the AssumedRoleUser response
element" and appears in CloudTrail logs).

Locks, cooldowns and brakes are per (account, region, target): a target away from home has its account and region
in its key; a target at home keeps the key it always had.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from rollguard.alarm_event import Origin

if TYPE_CHECKING:
    from rollguard.policy import PolicyFile, Target

# RoleSessionName: 2 to 64 characters of [\w+=,.@-] ("AssumeRole", AWS STS API Reference). The member role's trust
# policy admits only sessions whose name starts with this prefix (member-account.yaml, sts:RoleSessionName).
# An AWS account id is 12 digits; a region code is like us-east-1 or ap-southeast-2. Policies, the intake and the
# CLI check ids and regions against these (fullmatch).
ACCOUNT_ID = r"[0-9]{12}"
REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
SESSION_PREFIX = "rollguard-"
SESSION_NAME_MAX = 64
_SESSION_CHARS = re.compile(r"[^\w+=,.@-]")


class Location(BaseModel):
    """A target away from home: its account, its region, and the role assumed there (None in the stack's own
    account, where the function's own role acts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str
    region: str
    role_arn: str | None = None

    def describe(self) -> str:
        return f"account {self.account} in {self.region}" + (f" as {self.role_arn}" if self.role_arn else "")

    @property
    def member_account(self) -> str | None:
        """The account when it is not the stack's own (a role is assumed there), else None."""
        return self.account if self.role_arn else None


@dataclass(frozen=True)
class Members:
    """The member accounts this stack acts in (the MemberAccountIds, OrganizationId and MemberRoleName parameters).

    ``accounts`` empty means "any account a policy names": in an organization the event bus policy already admits only
    the organization's accounts (aws:PrincipalOrgID), and a policy must still name an account before its alarms are
    acted on. Listed, an account a policy names but the list does not is refused too."""

    role_name: str = "rollguard-execution"
    accounts: frozenset[str] = frozenset()
    organization_id: str = ""

    @classmethod
    def parse(cls, role_name: str, accounts: str, organization_id: str) -> Members:
        return cls(
            role_name=role_name,
            accounts=frozenset(a.strip() for a in accounts.split(",") if a.strip()),
            organization_id=organization_id,
        )

    def role_arn(self, account: str, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{account}:role/{self.role_name}"


def locate(target: Target, home: Origin, members: Members) -> Location | None:
    """Where ``target`` lives, or None when it is at home (the stack's own account and region)."""
    account, region = target.account or home.account, target.region or home.region
    if (account, region) == (home.account, home.region):
        return None
    role_arn = None if account == home.account else members.role_arn(account, home.partition)
    return Location(account=account, region=region, role_arn=role_arn)


def target_key(target: Target, location: Location | None) -> str:
    """The key of the target's lock, open incident and brakes: per (account, region, target)."""
    return target.key if location is None else f"{location.account}/{location.region}/{target.key}"


_AWAY_PREFIX = re.compile(rf"^{ACCOUNT_ID}/{REGION}/")


def plain_key(key: str) -> str:
    """A target key without its ``<account>/<region>/`` prefix (target_key): what kind of target it is."""
    return _AWAY_PREFIX.sub("", key)


def journal_scope(scope: str, member_account: str | None) -> str:
    """The change journal's scope of a change: ``<account>/<scope>`` in a member account, so that two accounts'
    ``checkout`` applications are two scopes; the stack's own account (any region) keeps the plain scope, and every
    change keeps its region (journal.Change.region)."""
    return scope if member_account is None else f"{member_account}/{scope}"


def refused(account: str, region: str, policies: PolicyFile, home: Origin, members: Members) -> str | None:
    """Why an alarm from ``account`` in ``region`` is not this stack's to act on, or None when it may be: the stack's
    own account and region, or an account and region some policy's target names (and, when the stack lists its member
    accounts, one it lists)."""
    if (account, region) == (home.account, home.region):
        return None
    named = {(p.target.account or home.account, p.target.region or home.region) for p in policies.policies}
    if account != home.account and members.accounts and account not in members.accounts:
        return f"account {account} is not one of this stack's member accounts (MemberAccountIds)"
    if (account, region) not in named:
        return f"no policy names a target in account {account}, region {region}"
    return None


def session_name(incident_id: str) -> str:
    """``rollguard-<incident id>``, within RoleSessionName's 64 characters: a long id keeps its head (the policy)
    and its tail (the time and the event hash that make it unique)."""
    name = SESSION_PREFIX + _SESSION_CHARS.sub("-", incident_id)
    if len(name) <= SESSION_NAME_MAX:
        return name
    tail = name[-24:]  # -YYYYMMDDTHHMMSSZ-abcdef: the stamp and the hash (rollguard.intake.incident_id_for)
    return name[: SESSION_NAME_MAX - len(tail) - 1] + "." + tail
