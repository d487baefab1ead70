"""The policy file: triggers, thresholds, target and ladder of actions in one YAML document.

Validation is pydantic. ``load_policy_file`` returns a ``PolicyFile`` or raises ``PolicyFileInvalid``
carrying one ``PolicyProblem`` (file, field path, reason) per problem found.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from rollguard import globs
from rollguard.accounts import ACCOUNT_ID, REGION
from rollguard.durations import parse_duration
from rollguard.errors import PolicyInvalid


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The validation context of a policy file, where every duration is written with its unit. Without it (a policy read
# back from an execution's input, where it round-trips through Step Functions as JSON) durations are whole seconds.
FROM_FILE = {"durations": "with units"}


def _duration(longest: str) -> Callable[[Any, ValidationInfo], int]:
    """A validator for a duration field: seconds, at most ``longest`` (README, "Duration limits")."""
    limit = parse_duration(longest)

    def seconds(value: Any, info: ValidationInfo) -> int:
        name = (info.field_name or "").rstrip("_")  # for_ is written "for"
        if isinstance(value, int) and not isinstance(value, bool):
            if info.context == FROM_FILE:
                raise ValueError(f"{name} {value} has no unit: use 90s, 5m, 1h")
            if value <= 0:
                raise ValueError("duration must be longer than zero")
            result, written = value, f"{value}s"
        else:
            result, written = parse_duration(value), str(value).strip()
        if result > limit:
            raise ValueError(f"{name} {written} is longer than {longest}, the most it may be")
        return result

    return seconds


Duration = Annotated[int, Field(description="seconds; written as '90s', '5m', '1h' in YAML")]


Mode = Literal["enforce", "shadow"]


class FreezeWindow(_Strict):
    """No automated action between start and end (UTC ISO timestamps): a brake, not a silence."""

    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("freeze window times need a timezone, e.g. 2026-12-24T00:00:00Z")
        if self.end <= self.start:
            raise ValueError("a freeze window must end after it starts")
        return self


class Brakes(_Strict):
    """Limits on automation per target; a brake that stops an action escalates with its reason."""

    cooldown: Duration = 1800  # after an action on a target, other incidents on it may not act for this long
    max_actions_per_hour: int = Field(default=3, ge=1)
    rollback_once: bool = True  # a deployment is rolled back by at most one incident
    freeze: list[FreezeWindow] = Field(default_factory=list)

    _durations = field_validator("cooldown", mode="before")(_duration("7d"))


SHORTEST_LOCK_TTL = 15 * 60


class Defaults(_Strict):
    mode: Mode = "enforce"
    lock_ttl: Duration = 7200
    brakes: Brakes = Brakes()

    _durations = field_validator("lock_ttl", mode="before")(_duration("24h"))

    @field_validator("lock_ttl")
    @classmethod
    def _outlives_a_step(cls, value: int) -> int:
        # Every step renews the lock for its own waits plus lock_ttl (store.renew_lock), so lock_ttl needs to cover
        # only the time between two renewals: one Act invocation (Timeout 420 s in template.yaml) with the state
        # machine's retries and back-off. Shorter, and a live incident could lose its target mid-step.
        if value < SHORTEST_LOCK_TTL:
            raise ValueError(
                f"lock_ttl {value}s is shorter than {SHORTEST_LOCK_TTL // 60}m, the longest a live incident goes "
                "between two renewals of its lock (one Act invocation, retried)"
            )
        return value


# A statistic as PutMetricAlarm takes it: Statistic, or ExtendedStatistic pNN / pNN.NN ("CloudWatch statistics
# definitions"; the other extended statistics, trimmed means and the like, are not defined here).
_STATISTIC = r"^(Sum|Average|Minimum|Maximum|SampleCount|p(\d{1,2}(\.\d{1,2})?))$"
_PERCENTILE = r"^p(\d{1,2}(\.\d{1,2})?)$"


class MetricRef(_Strict):
    """One CloudWatch metric: namespace, name and its exact dimensions (PutMetricAlarm: up to 30 dimensions)."""

    namespace: str = Field(min_length=1, max_length=255)
    metric: str = Field(min_length=1, max_length=255)
    dimensions: dict[
        Annotated[str, Field(min_length=1, max_length=255)], Annotated[str, Field(min_length=1, max_length=1024)]
    ] = Field(default_factory=dict, max_length=30)
    stat: str = Field(default="Sum", pattern=_STATISTIC)


class _DefinedTrigger(_Strict):
    """What every trigger Rollguard defines shares: the alarm's name, its period and how long it must breach.

    ``for`` is the evaluation range (EvaluationPeriods = for / period); ``datapoints`` the M of "M out of N"
    (default: all of them); ``treat_missing_data`` as CloudWatch reads it ("Configuring how CloudWatch alarms treat
    missing data")."""

    # "for" is a Python keyword: the field is for_, written "for" in the file and in the execution input's JSON.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    name: str | None = Field(default=None, min_length=1, max_length=255)  # default: rollguard-<policy>-<kind>
    period: Duration = 60
    for_: Duration = Field(default=300, alias="for")
    datapoints: int | None = Field(default=None, ge=1)
    treat_missing_data: Literal["missing", "notBreaching", "breaching", "ignore"] = "missing"
    description: str = Field(default="", max_length=1024)

    _durations = field_validator("period", "for_", mode="before")(_duration("1d"))

    @field_validator("period")
    @classmethod
    def _alarm_period(cls, value: int) -> int:
        # PutMetricAlarm, Period: 10, 20, 30, or any multiple of 60.
        if value not in (10, 20, 30) and value % 60:
            raise ValueError(f"period {value}s is not 10s, 20s, 30s or a multiple of 1m, as CloudWatch alarms take it")
        return value

    @model_validator(mode="after")
    def _whole_periods(self) -> _DefinedTrigger:
        if self.for_ % self.period:
            raise ValueError(f"for {self.for_}s is not a whole number of periods ({self.period}s)")
        if self.datapoints is not None and self.datapoints > self.evaluation_periods:
            raise ValueError(
                f"datapoints {self.datapoints} is more than the {self.evaluation_periods} periods in for {self.for_}s"
            )
        return self

    @property
    def evaluation_periods(self) -> int:
        return self.for_ // self.period


class ErrorRateTrigger(_DefinedTrigger):
    """100 × errors / requests above ``above_percent``: a CloudWatch alarm on metric math."""

    kind: Literal["error_rate"]
    errors: MetricRef
    requests: MetricRef
    above_percent: float = Field(gt=0, le=100)


class LatencyTrigger(_DefinedTrigger):
    """A latency percentile (``metric.stat`` pNN) above a static threshold, in the metric's unit."""

    kind: Literal["latency"]
    metric: MetricRef
    above: float = Field(gt=0)
    # Percentile-based alarms and low data samples: "ignore" keeps the state when a period has too few samples.
    low_samples: Literal["evaluate", "ignore"] = "evaluate"

    @field_validator("metric")
    @classmethod
    def _a_percentile(cls, value: MetricRef) -> MetricRef:
        if not re.fullmatch(_PERCENTILE, value.stat):
            raise ValueError(f"stat {value.stat!r} is not a percentile (p50, p90, p99, p99.9 …)")
        return value


class BaselineTrigger(_DefinedTrigger):
    """A metric — or the error rate of ``errors``/``requests`` — outside CloudWatch's anomaly detection band of it:
    ``band_width`` standard deviations of the model CloudWatch trains on the metric's own history."""

    kind: Literal["baseline"]
    metric: MetricRef | None = None
    errors: MetricRef | None = None
    requests: MetricRef | None = None
    band_width: float = Field(default=2.0, gt=0, le=100)
    direction: Literal["above", "below", "outside"] = "above"

    @model_validator(mode="after")
    def _one_series(self) -> BaselineTrigger:
        ratio = self.errors is not None or self.requests is not None
        if (self.metric is None) == (not ratio) or (ratio and (self.errors is None or self.requests is None)):
            raise ValueError("a baseline trigger watches either metric, or the error rate of errors and requests")
        return self


class UnhealthyTargetsTrigger(_DefinedTrigger):
    """The share of a target group's targets that are unhealthy (ALB HealthyHostCount/UnHealthyHostCount), e.g. the
    new targets of a rollout's target group."""

    kind: Literal["unhealthy_targets"]
    load_balancer: str = Field(pattern=r"^app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$")  # the LoadBalancer dimension
    target_group: str = Field(pattern=r"^targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$")  # the TargetGroup dimension
    above_percent: float = Field(gt=0, le=100)


TriggerDefinition = Annotated[
    ErrorRateTrigger | LatencyTrigger | BaselineTrigger | UnhealthyTargetsTrigger, Field(discriminator="kind")
]
TRIGGER_KINDS = ("error_rate", "latency", "baseline", "unhealthy_targets")
DEFINED_ALARM_PREFIX = "rollguard-"


class Trigger(_Strict):
    """The alarms that open an incident: existing ones by name or glob (``alarms``), and those Rollguard defines
    (``define``, emitted as CloudFormation by ``rollguard triggers emit``). At least one of the two."""

    alarms: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list)
    define: list[TriggerDefinition] = Field(default_factory=list, max_length=10)
    require_change_within: Duration = 1800

    _durations = field_validator("require_change_within", mode="before")(_duration("7d"))

    @model_validator(mode="after")
    def _something_fires(self) -> Trigger:
        if not self.alarms and not self.define:
            raise ValueError("a trigger needs alarms (existing alarms by name) or define (alarms Rollguard defines)")
        return self


class CodeDeployTarget(_Strict):
    application: str = Field(min_length=1, max_length=100)
    deployment_group: str = Field(min_length=1, max_length=100)


class AppConfigScope(_Strict):
    """An AppConfig application and environment whose configuration changes are in a policy's scope."""

    application: str = Field(min_length=1, max_length=64)
    environment: str = Field(min_length=1, max_length=64)
    regions: list[str] = Field(default_factory=list)  # empty: the region Rollguard runs in


class EcsServiceTarget(_Strict):
    """An ECS service. With ``target.codedeploy`` too, the service is deployed blue/green by that CodeDeploy group
    (deployment controller CODE_DEPLOY): rollback is CodeDeploy's, its canary judged per target group. Alone, the
    service is deployed by ECS's rolling update (controller ECS): rollback is ECS's own (README, "ECS services")."""

    # Cluster and service names: up to 255 letters, numbers, hyphens and underscores (CreateCluster, CreateService).
    cluster: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    service: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")


class LoadBalancerTarget(_Strict):
    """An Application Load Balancer, by name (its ARN carries an id the name does not): the listener on
    ``listener_port`` (or that listener's rule of ``rule_priority``) forwards to weighted target groups
    (shift_traffic), and ARC zonal shift can move the load balancer away from an Availability Zone (zonal_shift)."""

    # Load balancer names: 1-32 alphanumerics or hyphens, not starting or ending with a hyphen (CreateLoadBalancer).
    name: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
    listener_port: int | None = Field(default=None, ge=1, le=65535)
    rule_priority: int | None = Field(default=None, ge=1, le=50000)

    @model_validator(mode="after")
    def _rule_on_a_listener(self) -> LoadBalancerTarget:
        if self.rule_priority is not None and self.listener_port is None:
            raise ValueError("rule_priority names a rule of a listener: set listener_port too")
        return self


class Target(_Strict):
    """What a policy protects, and where: ``account`` and ``region`` default to the stack's own (README, "One
    Rollguard for many accounts"); a target elsewhere is reached through that account's execution role."""

    account: str | None = Field(default=None, pattern=f"^{ACCOUNT_ID}$")
    region: str | None = Field(default=None, pattern=f"^{REGION}$")
    codedeploy: CodeDeployTarget | None = None
    ecs: EcsServiceTarget | None = None
    appconfig: AppConfigScope | None = None
    load_balancer: LoadBalancerTarget | None = None

    @model_validator(mode="after")
    def _something_to_protect(self) -> Target:
        if self.codedeploy is None and self.ecs is None and self.appconfig is None and self.load_balancer is None:
            raise ValueError("a target needs codedeploy, ecs, appconfig or load_balancer")
        return self

    @property
    def ecs_rolling(self) -> EcsServiceTarget | None:
        """The ECS service when ECS itself deploys it (rolling update): ``ecs`` without ``codedeploy``."""
        return self.ecs if self.codedeploy is None else None

    @property
    def key(self) -> str:
        """One lock and one open incident per key."""
        if self.codedeploy is not None:
            return f"codedeploy:{self.codedeploy.application}/{self.codedeploy.deployment_group}"
        if self.ecs is not None:
            return f"ecs:{self.ecs.cluster}/{self.ecs.service}"
        if self.appconfig is not None:
            return f"appconfig:{self.appconfig.application}/{self.appconfig.environment}"
        assert self.load_balancer is not None
        return f"elb:{self.load_balancer.name}"


class SliceMetrics(_Strict):
    """Per-revision metrics, used to judge the slice of traffic a canary step moved."""

    namespace: str
    errors_metric: str
    requests_metric: str
    dimensions: dict[str, str] = Field(default_factory=dict)
    version_dimension: str
    period: Duration = 60

    _durations = field_validator("period", mode="before")(_duration("1h"))


class VerifySettings(_Strict):
    min_requests: int = Field(default=50, ge=1)
    max_error_rate: float = Field(default=0.05, gt=0, lt=1)
    slice: SliceMetrics | None = None
    # How often the service's AppConfig agent (Lambda extension) polls; a flag change is invisible before.
    appconfig_poll_interval: Duration = 45

    _durations = field_validator("appconfig_poll_interval", mode="before")(_duration("1h"))


class StepVerify(_Strict):
    window: Duration
    extend_once: bool = True

    _durations = field_validator("window", mode="before")(_duration("6h"))

    @property
    def longest(self) -> int:
        """The most a verification of this step can take: the window, extended once if allowed."""
        return self.window * (2 if self.extend_once else 1)


class Approval(_Strict):
    """A human approves the step before it runs (Step Functions task token); silence is handled by on_timeout."""

    required: bool = True
    timeout: Duration = 900
    on_timeout: Literal["proceed", "skip", "escalate"] = "escalate"

    _durations = field_validator("timeout", mode="before")(_duration("12h"))


class _Step(_Strict):
    verify: StepVerify
    approval: Approval | None = None


class RollbackStep(_Step):
    action: Literal["rollback"]
    scope: Literal["canary", "full"]
    verify: StepVerify


class ProfileRef(AppConfigScope):
    profile: str = Field(min_length=1, max_length=128)


class FlagRef(ProfileRef):
    name: str = Field(min_length=1, max_length=64)


class FlagStep(_Step):
    """Turn one flag of an AWS.AppConfig.FeatureFlags profile off (kill switch) or on."""

    action: Literal["flag_off", "flag_on"]
    flag: FlagRef
    verify: StepVerify
    scope: Literal["full"] = "full"


class ConfigRevertStep(_Step):
    """Stop the profile's deployment in progress (AppConfig rolls back) or redeploy its previous version."""

    action: Literal["config_revert"]
    config: ProfileRef
    verify: StepVerify
    scope: Literal["full"] = "full"


class RevertRecentChangeStep(_Step):
    """Undo the most recent change in the target's scope before the alarm (the next such step: the next one)."""

    action: Literal["revert_recent_change"]
    verify: StepVerify
    scope: Literal["full"] = "full"


class ShiftTrafficStep(_Step):
    """Move the listener's (or rule's) forward weight from one target group to another: a slice first (canary:
    ``percent`` of the pair's combined weight), then all of it (full). Target groups by name or ARN."""

    action: Literal["shift_traffic"]
    scope: Literal["canary", "full"]
    away_from: str = Field(min_length=1, max_length=1024)
    to: str = Field(min_length=1, max_length=1024)
    percent: int = Field(default=10, ge=1, le=99)
    verify: StepVerify

    @model_validator(mode="after")
    def _two_groups(self) -> ShiftTrafficStep:
        if self.away_from == self.to:
            raise ValueError("away_from and to name the same target group")
        return self


class ZonalShiftStep(_Step):
    """Route 53 ARC zonal shift of the load balancer away from one Availability Zone, for ``expires_in`` (ARC:
    at most 72 h). The zone is the alarm's AvailabilityZone dimension unless ``zone`` names it (an AZ name such as
    us-east-1b, or an AZ ID such as use1-az2)."""

    action: Literal["zonal_shift"]
    zone: str | None = Field(default=None, pattern=r"^([a-z]{2}-[a-z]+-\d[a-z]|[a-z]{2,4}\d-az\d+)$")
    expires_in: Duration = 7200
    on_resolve: Literal["keep", "cancel"] = "keep"  # keep: the shift stays until it expires; a human ends it sooner
    verify: StepVerify
    scope: Literal["full"] = "full"

    _durations = field_validator("expires_in", mode="before")(_duration("72h"))

    @field_validator("expires_in")
    @classmethod
    def _at_least_a_minute(cls, value: int) -> int:
        if value < 60:  # API "StartZonalShift": expiresIn is 1 minute to 72 hours, in whole minutes or hours
            raise ValueError(f"expires_in {value}s is shorter than 1m, the shortest zonal shift ARC allows")
        if value % 60:
            raise ValueError(f"expires_in {value}s is not whole minutes, as ARC's expiresIn is written")
        return value


LadderStep = Annotated[
    RollbackStep | FlagStep | ConfigRevertStep | RevertRecentChangeStep | ShiftTrafficStep | ZonalShiftStep,
    Field(discriminator="action"),
]


class Escalation(_Strict):
    runbook: str | None = None


class Policy(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
    trigger: Trigger
    target: Target
    ladder: list[LadderStep] = Field(min_length=1, max_length=10)
    verify: VerifySettings = VerifySettings()
    escalate: Escalation = Escalation()
    mode: Mode | None = None  # shadow: the whole path runs, actions are recorded as "would have", never executed
    brakes: Brakes | None = None

    def with_defaults(self, defaults: Defaults) -> Policy:
        """The policy as an incident runs it: the file's defaults filled in (the execution input is self-contained)."""
        return self.model_copy(update={"mode": self.mode or defaults.mode, "brakes": self.brakes or defaults.brakes})

    @model_validator(mode="after")
    def _steps_fit_the_target(self) -> Policy:
        for i, step in enumerate(self.ladder):
            if step.action == "rollback" and self.target.codedeploy is None and self.target.ecs is None:
                raise ValueError(f"ladder[{i}]: a rollback needs target.codedeploy or target.ecs")
            if step.action == "rollback" and step.scope == "canary" and self.target.ecs_rolling is not None:
                # A rolling update replaces tasks; it has no traffic slice to go back to first (README, "ECS services").
                raise ValueError(
                    f"ladder[{i}]: an ECS rolling service has no canary rollback (ECS replaces its tasks): use scope "
                    "full, or deploy it blue/green with CodeDeploy (target.codedeploy) for a canary"
                )
            lb = self.target.load_balancer
            if step.action in {"shift_traffic", "zonal_shift"} and lb is None:
                raise ValueError(f"ladder[{i}]: {step.action} needs target.load_balancer")
            if step.action == "shift_traffic" and lb is not None and lb.listener_port is None:
                raise ValueError(f"ladder[{i}]: shift_traffic needs target.load_balancer.listener_port")
        return self

    @model_validator(mode="after")
    def _canary_needs_slice_metrics(self) -> Policy:
        # A shift_traffic canary needs none: its slice is judged on the target groups' own ALB metrics; neither does an
        # ECS blue/green canary, judged on the target group of each task set.
        canaries = [s for s in self.ladder if s.action == "rollback" and s.scope == "canary"]
        if canaries and self.verify.slice is None and self.target.ecs is None:
            raise ValueError(
                "a canary step is judged on its slice of traffic: set verify.slice (or target.ecs for an ECS "
                "service, judged per target group)"
            )
        # No upper bound from CodeDeploy here: Rollguard's canary interval is derived from the window
        # (adapters/codedeploy.canary_minutes), so the verdict always comes before the rest moves.
        return self

    def defined_alarm_name(self, index: int) -> str:
        """The name of the alarm ``trigger.define[index]`` defines: its ``name``, or rollguard-<policy>-<kind> (with
        the index after the first of a kind)."""
        definition = self.trigger.define[index]
        if definition.name is not None:
            return definition.name
        same = [d for d in self.trigger.define[:index] if d.kind == definition.kind and d.name is None]
        return f"{DEFINED_ALARM_PREFIX}{self.name}-{definition.kind.replace('_', '-')}" + (
            f"-{len(same) + 1}" if same else ""
        )

    @property
    def claims(self) -> list[tuple[str, str]]:
        """Every alarm name or glob the policy claims, with the field it comes from."""
        return [(f"trigger.alarms[{k}]", a) for k, a in enumerate(self.trigger.alarms)] + [
            (f"trigger.define[{k}].name", self.defined_alarm_name(k)) for k in range(len(self.trigger.define))
        ]

    @property
    def alarm_patterns(self) -> list[str]:
        return [pattern for _, pattern in self.claims]

    @model_validator(mode="after")
    def _defined_names_unique(self) -> Policy:
        seen: set[str] = set(self.trigger.alarms)
        for k in range(len(self.trigger.define)):
            name = self.defined_alarm_name(k)
            if name in seen:
                raise ValueError(f"trigger.define[{k}]: alarm name {name!r} is claimed twice by this policy")
            seen.add(name)
        return self

    def matches(self, alarm_name: str) -> bool:
        # A literal name first: CloudWatch allows [ and ] in names, which fnmatch would read as a class. A defined
        # trigger's name is literal (it is the alarm's name, never a pattern).
        defined = {self.defined_alarm_name(k) for k in range(len(self.trigger.define))}
        return (
            alarm_name in self.trigger.alarms
            or alarm_name in defined
            or any(fnmatch.fnmatchcase(alarm_name, pattern) for pattern in self.trigger.alarms)
        )


class PolicyFile(_Strict):
    version: Literal[1]
    defaults: Defaults = Defaults()
    policies: list[Policy] = Field(min_length=1)

    def match(
        self, alarm_name: str, account: str | None = None, region: str | None = None, home: Any = None
    ) -> Policy | None:
        """The first policy that claims ``alarm_name``, with the file's defaults. Given where the alarm is (its
        ``account`` and ``region``) and the stack's ``home`` (an Origin), only a policy whose target is there claims
        it: the same alarm name in two accounts belongs to two policies."""

        def there(p: Policy) -> bool:
            if home is None:
                return True
            return (p.target.account or home.account, p.target.region or home.region) == (
                account or home.account,
                region or home.region,
            )

        policy = next((p for p in self.policies if p.matches(alarm_name) and there(p)), None)
        return policy.with_defaults(self.defaults) if policy else None


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '<root>'}: {self.reason}"


class PolicyFileInvalid(PolicyInvalid):
    def __init__(self, problems: list[PolicyProblem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


_ACTIONS = ("rollback", "flag_off", "flag_on", "config_revert", "revert_recent_change", "shift_traffic", "zonal_shift")


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in (*_ACTIONS, *TRIGGER_KINDS) and i > 0 and isinstance(parts[i - 1], int):
            continue  # pydantic names the union member it tried; the reader wants the field path
        elif part == "for_":
            out += ".for"  # the field's name in the file
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:  # a key the file made up: quoted, so a newline or a long key cannot break the one-line report
            text = repr(part)
            out += f"[{text if len(text) <= 40 else text[:39] + '…'}]"
    return out


def _reason(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "union_tag_invalid" and "kind" in err["ctx"].get("discriminator", ""):
        return f"unknown trigger kind {err['input'].get('kind')!r} (known: {', '.join(TRIGGER_KINDS)})"
    if err["type"] == "union_tag_invalid":
        return f"unknown action {err['input'].get('action')!r} (known: {', '.join(_ACTIONS)})"
    return str(err["msg"]).removeprefix("Value error, ")


def _cross_policy_problems(doc: PolicyFile, file: str) -> list[PolicyProblem]:
    return _duplicate_names(doc, file) + _shared_alarms(doc, file) + _too_big_for_the_state(doc, file)


# Each policy travels whole in its incident's state machine input and every state's input and output after it, which
# Step Functions caps at 262,144 bytes of UTF-8 ("Step Functions service quotas"; StateEnteredEventDetails.input,
# API Reference). A policy may take a quarter of that; the rest is the incident's own (its assessment with its
# changes capped, each step's record): tests/unit/test_state_size.py builds the worst case.
POLICY_STATE_BUDGET = 64 * 1024


def _too_big_for_the_state(doc: PolicyFile, file: str) -> list[PolicyProblem]:
    problems = []
    for i, policy in enumerate(doc.policies):
        size = len(policy.model_dump_json().encode("utf-8"))
        if size > POLICY_STATE_BUDGET:
            problems.append(
                PolicyProblem(
                    file,
                    f"policies[{i}]",
                    f"{size:,} bytes in the incident's state, more than the {POLICY_STATE_BUDGET:,} a policy may take "
                    f"of Step Functions' 262,144: name its alarms with fewer, wider globs",
                )
            )
    return problems


def _duplicate_names(doc: PolicyFile, file: str) -> list[PolicyProblem]:
    problems = []
    seen: dict[str, int] = {}
    for i, policy in enumerate(doc.policies):
        if policy.name in seen:
            problems.append(
                PolicyProblem(
                    file,
                    f"policies[{i}].name",
                    f"duplicate policy name {policy.name!r} (also policies[{seen[policy.name]}])",
                )
            )
        seen.setdefault(policy.name, i)
    return problems


def _shared_alarms(doc: PolicyFile, file: str) -> list[PolicyProblem]:
    """Every alarm pattern that could claim an alarm an earlier policy claims (exact for fnmatch globs: globs.py), in
    the same place: alarms of two accounts (or regions) are two alarms, whatever their name, and PolicyFile.match gives
    each to the policy whose target is where the alarm is. A policy's place is its target's account and region as
    written (None: the stack's own); the stack's own account is not known here, so a policy naming it is a place of
    its own, and match gives an alarm there to the first policy of the file that claims it."""
    places: dict[tuple[str | None, str | None], list[int]] = {}
    for i, policy in enumerate(doc.policies):
        places.setdefault((policy.target.account, policy.target.region), []).append(i)
    problems: list[tuple[int, PolicyProblem]] = []
    stopped: list[PolicyProblem] = []
    for owners in places.values():
        where = [(i, field) for i in owners for field, _ in doc.policies[i].claims]
        entries = [(i, pattern) for i in owners for _, pattern in doc.policies[i].claims]
        try:
            found = globs.clashes(entries)
        except globs.TooManyComparisons as exc:  # the clashes found so far, and why the rest went unchecked
            found = exc.found
            stopped = stopped or [
                PolicyProblem(file, "policies", f"cannot check that each alarm has one policy: {exc}")
            ]
        for clash in found:
            (i, field), pattern = where[clash.later], entries[clash.later][1]
            other = doc.policies[entries[clash.earlier][0]].name
            example = f" (both claim {clash.name!r})" if clash.name != pattern else ""
            reason = f"alarm {pattern!r} is also claimed by policy {other!r}{example}: one alarm, one policy"
            problems.append((i, PolicyProblem(file, f"policies[{i}].{field}", reason)))
    return [problem for _, problem in sorted(problems, key=lambda p: p[0])] + stopped


# Rollguard's AppConfig deployment strategy (template.yaml) deploys at once with no bake time.
APPCONFIG_DEPLOY_SECONDS = 0


def policy_warnings(doc: PolicyFile, file: str = "<policy>") -> list[PolicyProblem]:
    """Valid but doubtful: a flag or config step verified before the service can have seen the change."""
    warnings = []
    for i, policy in enumerate(doc.policies):
        needed = APPCONFIG_DEPLOY_SECONDS + policy.verify.appconfig_poll_interval
        for j, step in enumerate(policy.ladder):
            if step.action in {"flag_off", "flag_on", "config_revert", "revert_recent_change"} and (
                step.verify.window < needed
            ):
                warnings.append(
                    PolicyProblem(
                        file,
                        f"policies[{i}].ladder[{j}].verify.window",
                        f"{step.verify.window}s is shorter than AppConfig's deployment "
                        f"({APPCONFIG_DEPLOY_SECONDS}s) plus the agent's poll interval "
                        f"({policy.verify.appconfig_poll_interval}s): the verdict would judge a service that has not "
                        "seen the change yet",
                    )
                )
    return warnings


# Bounds on what a policy file may make the loader do (README, "Writing a policy"). 1 MiB is hundreds of times the
# shipped files (policies/rollguard.yaml is under 2 KB) and holds some 3,000 policies; a policy nests about 7 levels.
MAX_FILE_BYTES = 1024 * 1024
MAX_NESTING = 32


def _strict_loader() -> type:
    """YAML's SafeLoader (libyaml's parser when PyYAML has it, several times faster), refusing a key repeated in one
    mapping: YAML 1.2 requires keys to be unique, and PyYAML silently keeps the last one (``mode: shadow`` then
    ``mode: enforce`` would run enforce)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[valid-type,misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str | int | float | bool) and key in seen:
                    first = seen[key].start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark
                    )
                seen[key] = key_node
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    return StrictLoader


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _check_shape(text: str, loader: type) -> None:
    """Nesting and aliases, on the event stream before anything is built: building a node is recursive (a document
    nested thousands deep exhausts the stack), and an alias repeats what it names (a few lines can stand for
    millions of nodes)."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise _Refused(_at(event.start_mark), f"nested deeper than {MAX_NESTING} levels")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            raise _Refused(_at(event.start_mark), f"alias *{event.anchor} refused: write the value out in full")


class _Refused(Exception):
    def __init__(self, where: str, reason: str):
        self.where, self.reason = where, reason


def _yaml_reason(exc: Exception, text: str) -> str:
    """One line. libyaml's syntax errors do not quote the character they stop at (PyYAML's own parser does, at
    several times the cost), so it is quoted from the text."""
    import yaml

    if isinstance(exc, yaml.reader.ReaderError):  # libyaml gives the character as a code point
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return f"not valid YAML: character {char!r} at position {exc.position} is not allowed"
    problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
    mark = getattr(exc, "problem_mark", None)
    if mark is not None and "character" in problem and "'" not in problem:
        lines = text.split("\n", mark.line + 1)
        line = lines[mark.line] if mark.line < len(lines) else ""
        if mark.column < len(line):
            problem += f": {line[mark.column]!r}"
    return f"not valid YAML: {problem}"


def _too_big(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB is more than the {MAX_FILE_BYTES // 1024 // 1024} MiB a policy file may hold"


def _read_yaml(text: str, file: str) -> Any:
    """The document as plain data, or PolicyFileInvalid with one line saying where and why, whatever the text."""
    import yaml  # only the intake and the CLI parse YAML; the other handlers skip the import

    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise PolicyFileInvalid([PolicyProblem(file, "", _too_big(len(text.encode("utf-8", "surrogatepass"))))])
    loader = _strict_loader()
    try:
        _check_shape(text, loader)
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise PolicyFileInvalid([PolicyProblem(file, exc.where, exc.reason)]) from None
    except yaml.YAMLError as exc:
        where = _at(getattr(exc, "problem_mark", None))
        raise PolicyFileInvalid([PolicyProblem(file, where, _yaml_reason(exc, text))]) from None
    except ValueError as exc:  # a scalar YAML accepts but Python cannot build: a 5,000-digit int, month 13, non-UTF-8
        raise PolicyFileInvalid([PolicyProblem(file, "", f"not valid YAML: {str(exc)[:200]}")]) from None


def parse_policy_document(text: str, file: str = "<policy>") -> PolicyFile:
    raw = _read_yaml(text, file)
    if not isinstance(raw, dict):
        raise PolicyFileInvalid([PolicyProblem(file, "", "a policy file is a mapping with 'version' and 'policies'")])
    try:
        doc = PolicyFile.model_validate(raw, context=FROM_FILE)
    except ValidationError as exc:
        problems = [PolicyProblem(file, _loc(err["loc"]), _reason(err)) for err in exc.errors()]
        raise PolicyFileInvalid(problems) from None
    problems = _cross_policy_problems(doc, file)
    if problems:
        raise PolicyFileInvalid(problems)
    return doc


def load_policy_file(path: str | Path) -> PolicyFile:
    path = Path(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)  # never more: the file may be huge, or endless like a pipe
            size = os.fstat(stream.fileno()).st_size
    except OSError as exc:
        raise PolicyFileInvalid([PolicyProblem(str(path), "", f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise PolicyFileInvalid([PolicyProblem(str(path), "", _too_big(max(size, len(data))))])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyFileInvalid([PolicyProblem(str(path), f"byte {exc.start}", "not UTF-8 text")]) from None
    return parse_policy_document(text, str(path))
