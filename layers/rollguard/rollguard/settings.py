"""Each function's settings: exactly the environment variables template.yaml gives it, read once per container: during
Init for the functions on an incident's critical path (rollguard.runtime.at_init), at the first invocation for the
others (never by importing this module).

A required variable has no default: a function deployed without it (or with it empty) fails its first invocation with
one line naming the function and the variable (``FunctionMisconfigured``), not later with an empty table name in an
AWS error. The few optional ones say why they may be missing.
"""

import os
from pathlib import Path
from typing import Annotated, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from rollguard.accounts import Members
from rollguard.errors import FunctionMisconfigured

Required = Annotated[str, StringConstraints(min_length=1)]


class FunctionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    functions: ClassVar[tuple[str, ...]] = ()  # template.yaml's logical ids of the functions that read these


# ---------------------------------------------------------------- what several functions share (template Globals)


class Tables(FunctionSettings):
    """The incident store's tables: incidents, audit events, locks (and the pause switch)."""

    incidents_table: Required = Field(alias="INCIDENTS_TABLE")
    audit_table: Required = Field(alias="AUDIT_TABLE")
    locks_table: Required = Field(alias="LOCKS_TABLE")


class ChangeJournal(FunctionSettings):
    changes_table: Required = Field(alias="CHANGES_TABLE")
    # The journal's dead-letter queue: the journal sends there, Assess reads its depth.
    journal_dead_letter_queue_url: Required = Field(alias="JOURNAL_DEAD_LETTER_QUEUE_URL")


class Escalation(FunctionSettings):
    escalation_topic_arn: Required = Field(alias="ESCALATION_TOPIC_ARN")


class Region(FunctionSettings):
    region: Required = Field(alias="AWS_REGION")  # set by the Lambda runtime


class MemberAccounts(FunctionSettings):
    """The member accounts the stack acts in (template parameters MemberAccountIds, OrganizationId, MemberRoleName).
    Optional: a stack deployed for one account has none, and a target at home needs none (rollguard.accounts)."""

    member_role_name: str = Field(default="rollguard-execution", alias="MEMBER_ROLE_NAME")
    member_accounts: str = Field(default="", alias="MEMBER_ACCOUNTS")  # comma-separated account ids
    organization_id: str = Field(default="", alias="ORGANIZATION_ID")

    @property
    def members(self) -> Members:
        return Members.parse(self.member_role_name or "rollguard-execution", self.member_accounts, self.organization_id)


# ---------------------------------------------------------------- one model per function


class IntakeSettings(Tables, Region, MemberAccounts):
    functions = ("RemediationFunction",)  # its intake: the alarm rule's events

    state_machine_arn: Required = Field(alias="STATE_MACHINE_ARN")
    policy_file: Required = Field(alias="POLICY_FILE")

    @field_validator("policy_file")
    @classmethod
    def _policy_deployed(cls, value: str) -> str:
        """No policy file of the operator's deployed (the PoliciesLayer ships policies/deploy/ only): refuse to act on
        any alarm. The event fails, is retried and lands in the intake's dead-letter queue, where it can be replayed
        once a policy is deployed; no lock is taken, no incident opened."""
        if not Path(value).is_file():
            raise PydanticCustomError(
                "policy_not_deployed",
                "{path} does not exist, so no policy of yours is deployed and no alarm is acted on: the "
                "PoliciesLayer ships only policies/deploy/; put your policy there as {name} (or set the "
                "PolicyFileName parameter to its name), then sam build and sam deploy again "
                '(README "Before your first deploy")',
                {"path": value, "name": Path(value).name},
            )
        return value


class RemediationSettings(Tables, ChangeJournal, Region):
    functions = ("RemediationFunction", "VerifyFunction")

    appconfig_strategy: Required = Field(alias="APPCONFIG_STRATEGY")


class ApprovalSettings(Tables, Escalation):
    functions = ("ApprovalFunction",)

    # Optional: the stack's name in the approve/deny commands of the notification. Without it (the local sandbox is
    # no stack) the commands leave --stack out.
    stack_name: str | None = Field(default=None, alias="STACK_NAME")


class CloseSettings(Tables, Escalation):
    functions = ("CloseFunction",)

    stakeholder_topic_arn: Required = Field(alias="STAKEHOLDER_TOPIC_ARN")


class WatchdogSettings(Tables, Escalation):
    functions = ("WatchdogFunction",)


class FlagReportSettings(Escalation):
    functions = ("FlagReportFunction",)

    flag_profiles: Required = Field(alias="FLAG_PROFILES")  # JSON: [{"application", "profile"}]


class JournalSettings(ChangeJournal, MemberAccounts):
    functions = ("JournalFunction",)


_read: dict[type[FunctionSettings], FunctionSettings] = {}


def settings_for[S: FunctionSettings](model: type[S]) -> S:
    """``model`` read from the environment, once per container; FunctionMisconfigured names what is missing."""
    if model not in _read:
        _read[model] = read(model, dict(os.environ))
    return cast(S, _read[model])


def read[S: FunctionSettings](model: type[S], environment: dict[str, str]) -> S:
    try:
        return model.model_validate(environment)
    except ValidationError as exc:
        raise FunctionMisconfigured(_describe(model, exc, environment.get("AWS_LAMBDA_FUNCTION_NAME"))) from None


def _describe(model: type[FunctionSettings], exc: ValidationError, deployed_name: str | None) -> str:
    problems = []
    for error in exc.errors():
        variable = ".".join(str(part) for part in error["loc"])
        problems.append(
            f"{variable} is not set"
            if error["type"] == "missing"
            else f"{variable} is empty"
            if error["type"] == "string_too_short"
            else f"{variable}: {error['msg']}"
        )
    logical = " or ".join(model.functions) or "a Rollguard function"
    function = f"{deployed_name} ({logical})" if deployed_name else logical
    return f"{function} cannot run: {'; '.join(problems)} (see the function's Environment in template.yaml)"


def forget() -> None:
    """Read the environment again at the next ``settings_for`` (tests and the sandbox change it between runs)."""
    _read.clear()
