"""Wiring for the Lambda handlers: settings → clients → adapters, built once per container.

Each handler's wiring reads its own settings model (rollguard.settings: the variables template.yaml gives that
function) and hands the parts to the factories below. Imports happen inside the factories so that each handler pays
at cold start only for what it uses.

The functions on an incident's critical path (intake, Assess, Act) build their wiring during Init (``at_init``, called
by their app.py at module level): Init runs on a full vCPU, an invocation on the function's memory share of one
("Configure Lambda function memory", Lambda Developer Guide), and an incident meets every function cold. The cached
factories still answer each invocation, so ``reset`` (tests, the sandbox) makes the next one build afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from rollguard import clients, clock, settings
from rollguard.accounts import Location, session_name
from rollguard.errors import RollguardError
from rollguard.settings import (
    ChangeJournal,
    CloseSettings,
    Escalation,
    FlagReportSettings,
    IntakeSettings,
    RemediationSettings,
    Tables,
    settings_for,
)

# What an invocation keeps back from its waits: the audit event and incident update after the action, with
# botocore's standard retries (a throttled PutItem is retried with back-off).
AFTER_THE_ACTION_S = 5.0


class HasRemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class HasFunctionArn(Protocol):
    @property
    def invoked_function_arn(self) -> str: ...


if TYPE_CHECKING:
    from rollguard.actions import Adapters
    from rollguard.adapters.notify import Notifier
    from rollguard.audit import AuditLog
    from rollguard.control import Control
    from rollguard.deps import Deps
    from rollguard.flag_report import FlagReportDeps
    from rollguard.incident import IncidentInput
    from rollguard.intake import IntakeDeps
    from rollguard.journal import Journal
    from rollguard.policy import PolicyFile
    from rollguard.store import IncidentStore


@cache
def policies(policy_file: str) -> PolicyFile:
    from rollguard.policy import load_policy_file

    return load_policy_file(policy_file)


def audit_log(s: Tables) -> AuditLog:
    from rollguard.audit import AuditLog

    return AuditLog(clients.dynamodb(), s.audit_table)


def incident_store(s: Tables) -> IncidentStore:
    from rollguard.store import IncidentStore

    return IncidentStore(clients.dynamodb(), s.incidents_table, s.locks_table, s.audit_table)


def at_init(wiring: Callable[[], object]) -> None:
    """Build a handler's wiring now, during Init. One that cannot be built (a variable missing, no policy deployed, a
    policy file that does not validate) is left to the first invocation, which raises the same error by its name: an
    error raised during Init fails the Init phase, which Lambda reports as an Init error and tries again at the next
    invocation ("Understanding the Lambda execution environment lifecycle"), so the state machine and the intake's
    dead-letter queue would not see the name (FunctionMisconfigured, PolicyFileInvalid) they are told about."""
    try:
        wiring()
    except RollguardError:
        return


def intake_wiring() -> IntakeSettings:
    """What the intake's wiring is made of, each part cached: its settings, the policy file (read and validated),
    the DynamoDB and Step Functions clients. Only the origin waits for an invocation: the account is in its
    context's function ARN and in no variable."""
    s = settings_for(IntakeSettings)
    policies(s.policy_file)
    clients.dynamodb()
    clients.client("stepfunctions")
    return s


@cache
def intake_deps(function_arn: str) -> IntakeDeps:
    """The intake's wiring: the stack is in the invoked function's account and in its region (AWS_REGION)."""
    from rollguard.alarm_event import Origin
    from rollguard.intake import IntakeDeps

    s = intake_wiring()
    return IntakeDeps(
        policies=policies(s.policy_file),
        store=incident_store(s),
        audit=audit_log(s),
        stepfunctions=clients.client("stepfunctions"),
        state_machine_arn=s.state_machine_arn,
        origin=Origin.of_function(function_arn, s.region),
        members=s.members,
    )


def intake_deps_for(context: HasFunctionArn) -> IntakeDeps:
    """The cached wiring for this function (one per container, whatever the event)."""
    return intake_deps(context.invoked_function_arn)


@cache
def remediation_deps() -> Deps:
    """Assess, Act and Verify's wiring at home (the stack's own account and region), cached per container."""
    from rollguard.deps import Deps

    s = settings_for(RemediationSettings)  # Assess, Act and Verify
    return Deps(
        audit=audit_log(s),
        store=incident_store(s),
        journal=journal(s),
        appconfig_strategy=s.appconfig_strategy,
        region=s.region,
        control=control(s),
        **_on_target(clients.HOME),
    )


def _on_target(source: TargetClients) -> dict[str, Any]:
    """The adapters that read and change the target, made from ``source``'s clients (home, or a member account's).

    At home CodeDeploy's and CloudWatch's clients are made now (during Init, ``at_init``); a member account's at
    their first use, so that wiring a step assumes no role: an AssumeRole that STS refuses fails the step that reads
    the target (Act records the failure), never the wiring of Close or the watchdog, which still settle the incident,
    release its lock and notify, saying what they could not read (target_state.leave_target)."""
    from rollguard.adapters.appconfig import AppConfig
    from rollguard.adapters.cloudwatch import CloudWatch
    from rollguard.adapters.codedeploy import CodeDeploy
    from rollguard.adapters.ecs import EcsServices
    from rollguard.adapters.elb import LoadBalancers
    from rollguard.adapters.zonal_shift import ZonalShifts

    return {
        "codedeploy": CodeDeploy(source.wired("codedeploy")),
        "cloudwatch": CloudWatch(source.wired("cloudwatch")),
        "appconfig": AppConfig(lambda region: source.client("appconfig", region)),
        "elb": LoadBalancers(source.on_first_use("elbv2")),
        # creating EC2's client alone takes some 150 ms of CPU (clients.OnFirstUse)
        "zonal_shift": ZonalShifts(source.on_first_use("arc-zonal-shift"), source.on_first_use("ec2")),
        "ecs": EcsServices(source.on_first_use("ecs")),
    }


class TargetClients(Protocol):
    def client(self, service: str, region: str | None = None) -> Any: ...

    def on_first_use(self, service: str, region: str | None = None) -> Any: ...

    def wired(self, service: str) -> Any: ...


# A member account's clients, per role, session (incident) and region: kept for the container's later invocations
# of the same incident, a few incidents at most.
_ASSUMED: dict[tuple[str, str, str], clients.AssumedRole] = {}
_ASSUMED_KEPT = 16


def clients_for(location: Location | None, incident_id: str) -> TargetClients:
    """The clients that reach the target: the function's own (home, or the stack's own account in another region),
    or those of the member account's execution role, assumed for this incident."""
    if location is None:
        return clients.HOME
    if location.role_arn is None:
        return clients.InRegion(location.region)
    key = (location.role_arn, session_name(incident_id), location.region)
    if key not in _ASSUMED:
        while len(_ASSUMED) >= _ASSUMED_KEPT:
            _ASSUMED.pop(next(iter(_ASSUMED)))
        _ASSUMED[key] = clients.AssumedRole(*key)
    return _ASSUMED[key]


def deps_for(state: IncidentInput) -> Deps:
    """The wiring for one incident's step: at home the cached one; for a target away from home the same, with the
    target's adapters made from the clients that reach it (clients_for)."""
    deps = remediation_deps()
    if state.location is None:
        return deps
    on_target = _on_target(clients_for(state.location, state.incident_id))
    return replace(deps, region=state.location.region, **on_target)


def target_adapters(state: IncidentInput | None = None) -> Adapters:
    """What Close and the watchdog may read and undo on the target when an incident closes."""
    from rollguard.actions import Adapters

    on_target = _on_target(clients_for(state.location if state else None, state.incident_id if state else ""))
    return Adapters(**{k: on_target[k] for k in ("codedeploy", "elb", "zonal_shift", "ecs")})


def invocation_deadline(context: HasRemainingTime, reserve_s: float = AFTER_THE_ACTION_S) -> datetime:
    """When this invocation's waits must end: Lambda's remaining time, less what the handler needs after them."""
    return clock.now() + timedelta(milliseconds=context.get_remaining_time_in_millis()) - timedelta(seconds=reserve_s)


def remediation_deps_for(context: HasRemainingTime, state: IncidentInput) -> Deps:
    """The incident's wiring (deps_for), with the AppConfig waits bounded by this invocation's deadline."""
    deps = deps_for(state)
    if deps.appconfig is None:
        return deps
    return replace(deps, appconfig=deps.appconfig.until(invocation_deadline(context)))


def control(s: Tables) -> Control:
    from rollguard.control import Control

    return Control(clients.dynamodb(), s.locks_table)


def journal(s: ChangeJournal) -> Journal:
    from rollguard.journal import DeadLetters, Journal

    dead_letters = DeadLetters(lambda: clients.client("sqs"), s.journal_dead_letter_queue_url)
    return Journal(clients.dynamodb(), s.changes_table, dead_letters)


def notifier(s: Escalation) -> Notifier:
    from rollguard.adapters.notify import Notifier

    return Notifier(clients.client("sns"), s.escalation_topic_arn)


def stakeholders(s: CloseSettings) -> Notifier:
    """Where every incident's outcome goes besides on-call (the stack's stakeholder topic)."""
    from rollguard.adapters.notify import Notifier

    return Notifier(clients.client("sns"), s.stakeholder_topic_arn)


def journal_profile_type(function_arn: str = "") -> object:
    """The journal's reading of a profile's type: with its own role at home, with a member account's execution
    role (a ``rollguard-journal`` session) for that account's profile."""
    from rollguard.journal import profile_type_from
    from rollguard.settings import JournalSettings

    partition = function_arn.split(":")[1] if function_arn.count(":") >= 4 else "aws"
    members = settings_for(JournalSettings).members

    def appconfig_in(region: str, account: str | None = None) -> object:
        if account is None:
            return clients.client("appconfig", region)
        location = Location(account=account, region=region, role_arn=members.role_arn(account, partition))
        return clients_for(location, "journal").client("appconfig")

    return profile_type_from(appconfig_in)


def flag_report_deps() -> FlagReportDeps:
    # Not cached: the function runs once a week, and a FLAG_PROFILES that does not parse fails every run, not the first.
    from rollguard.adapters.appconfig_flags import AppConfigFlags
    from rollguard.flag_report import FlagReportDeps, parse_profiles

    s = settings_for(FlagReportSettings)
    return FlagReportDeps(
        reader=AppConfigFlags(clients.client("appconfig")),
        notifier=notifier(s),
        profiles=parse_profiles(s.flag_profiles),
    )


def reset() -> None:
    """Forget cached wiring and settings (tests and the sandbox change the environment between runs)."""
    for cached in (policies, intake_deps, remediation_deps, clients.client):
        cached.cache_clear()
    _ASSUMED.clear()
    settings.forget()
