"""AppConfig's deployment side for the sandbox: what moto 5.2.5 lacks (environments, deployment
strategies, deployments, listing hosted versions and applications, LatestVersionNumber conflicts and
feature-flag validation), answered in AppConfig's response shapes from a botocore ``before-call`` hook.

botocore has already validated the request when the hook runs, and what it returns is what the caller
gets, so the shapes below follow the AppConfig API reference. Hosted configuration versions stay in
moto; deployments progress on the sandbox clock and announce themselves as AppConfig does on
EventBridge ("On Deployment Start/Complete/Rollback").

The refusals and the timing follow AWS's documentation (docs/sandbox-appconfig.md lists each behaviour
with its source and its contract test, and what is not modelled):

- one active deployment per environment: StartDeployment answers 409 ``ConflictException`` while any
  deployment of the environment (any profile) is DEPLOYING, BAKING or ROLLING_BACK ("StartDeployment",
  AppConfig API reference: ConflictException; "Environment", AWS CDK API reference: "you can only deploy
  one configuration at a time to an environment");
- a deployment is DEPLOYING for the strategy's DeploymentDurationInMinutes, then BAKING for its
  FinalBakeTimeInMinutes, then COMPLETE ("Working with deployment strategies"); the predefined strategies
  have the values of "Using predefined deployment strategies";
- StopDeployment works on DEPLOYING; on BAKING only with AllowRevert; on COMPLETE only with AllowRevert and
  within 72 hours of completion (→ REVERTED); anything else is a ``BadRequestException`` ("StopDeployment",
  AppConfig API reference; "Reverting a configuration", AppConfig user guide).
"""

import json
import math
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.appconfig.models import appconfig_backends

from rollguard_cli.sandbox.clock import VirtualClock

ACCOUNT = "123456789012"
Answer = tuple[int, dict[str, Any]]
# "Using predefined deployment strategies" (AppConfig user guide): name → (growth type, growth factor,
# deployment duration in minutes, final bake time in minutes).
PREDEFINED = {
    "AppConfig.Linear20PercentEvery6Minutes": ("LINEAR", 20.0, 30, 30),
    "AppConfig.Canary10Percent20Minutes": ("EXPONENTIAL", 10.0, 20, 10),
    "AppConfig.AllAtOnce": ("LINEAR", 100.0, 0, 10),
    "AppConfig.Linear50PercentEvery30Seconds": ("LINEAR", 50.0, 1, 1),
}
# The environment holds one deployment at a time while it is in one of these states.
ACTIVE = {"DEPLOYING", "BAKING", "ROLLING_BACK"}
SERVING = {"DEPLOYING", "BAKING", "COMPLETE"}  # states in which a deployment's version is what agents receive
# StopDeployment answers 202 (accepted): the rollback happens after the call. AWS documents the
# ROLLING_BACK state but not its length; the sandbox holds it this long so that callers must wait for it.
ROLLBACK_SECONDS = 10
REVERT_WINDOW = timedelta(hours=72)  # "AppConfig only allows a revert within 72 hours of deployment completion"
ENVIRONMENT_STATE = {  # the environment's State follows its newest deployment ("Environment", API reference)
    "DEPLOYING": "DEPLOYING",
    "BAKING": "DEPLOYING",
    "ROLLING_BACK": "ROLLING_BACK",
    "ROLLED_BACK": "ROLLED_BACK",
    "REVERTED": "REVERTED",
    "COMPLETE": "READY_FOR_DEPLOYMENT",
}


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


def _ok(body: dict[str, Any], status: int = 200) -> Answer:
    return status, {**body, "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass
class _Deployment:
    region: str
    application_id: str
    environment_id: str
    profile_id: str
    profile_name: str
    strategy: dict[str, Any]
    number: int
    version: str
    description: str
    started_at: datetime
    state: str = "DEPLOYING"
    completed_at: datetime | None = None
    rollback_ends_at: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def baking_from(self) -> datetime:
        return self.started_at + timedelta(minutes=self.strategy["DeploymentDurationInMinutes"])

    def ends_at(self) -> datetime:
        return self.baking_from + timedelta(minutes=self.strategy["FinalBakeTimeInMinutes"])

    def event(self, kind: str, by: str, description: str, at: datetime) -> None:
        self.events.append({"EventType": kind, "TriggeredBy": by, "Description": description, "OccurredAt": at})

    def percentage(self, now: datetime) -> float:
        """ "Working with deployment strategies": LINEAR grows by the growth factor at even intervals;
        EXPONENTIAL as G*(2^N). The deployment reaches 100% when its duration has passed."""
        if self.state in {"BAKING", "COMPLETE"}:
            return 100.0
        if self.state != "DEPLOYING":
            return 0.0
        growth = float(self.strategy["GrowthFactor"])
        duration = timedelta(minutes=self.strategy["DeploymentDurationInMinutes"])
        if self.strategy["GrowthType"] == "EXPONENTIAL":
            steps = max(1, math.ceil(math.log2(100.0 / growth)) + 1)
            done = int((now - self.started_at) / (duration / steps)) if duration else steps
            return min(100.0, growth * 2**done) if done else 0.0
        steps = max(1, math.ceil(100.0 / growth))
        done = int((now - self.started_at) / (duration / steps)) if duration else steps
        return min(100.0, growth * done)

    def shape(self, now: datetime) -> dict[str, Any]:
        body = {
            "ApplicationId": self.application_id,
            "EnvironmentId": self.environment_id,
            "DeploymentStrategyId": self.strategy["Id"],
            "ConfigurationProfileId": self.profile_id,
            "DeploymentNumber": self.number,
            "ConfigurationName": self.profile_name,
            "ConfigurationLocationUri": "hosted",
            "ConfigurationVersion": self.version,
            "Description": self.description,
            "DeploymentDurationInMinutes": self.strategy["DeploymentDurationInMinutes"],
            "GrowthType": self.strategy["GrowthType"],
            "GrowthFactor": self.strategy["GrowthFactor"],
            "FinalBakeTimeInMinutes": self.strategy["FinalBakeTimeInMinutes"],
            "State": self.state,
            "EventLog": list(reversed(self.events)),
            "PercentageComplete": self.percentage(now),
            "StartedAt": self.started_at,
        }
        if self.completed_at:
            body["CompletedAt"] = self.completed_at
        return body


class AppConfigDeployments:
    def __init__(self, clock: VirtualClock, publish: Callable[[dict[str, Any]], None] | None = None):
        self.clock = clock
        self.publish = publish  # EventBridge: the sandbox routes these events to the journal
        self.environments: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.strategies: dict[str, dict[str, dict[str, Any]]] = {}
        self.deployments: dict[tuple[str, str, str], list[_Deployment]] = {}
        # Handlers call from the state machine's thread while the World reads the deployed configuration from
        # the driver's: one lock around the state, and announcements made after it is released (the World's
        # outbox has a lock of its own).
        self._lock = threading.RLock()
        self._announcements: list[tuple[_Deployment, str]] = []

    # ------------------------------------------------------------------ the hook

    def answer(self, region: str, operation: str, params: dict[str, Any]) -> Answer | None:
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            return None
        with self._lock:
            self._progress(region)
            result: Answer | None = handler(region, **params)
        self._flush()
        return result

    def progress(self, region: str | None = None) -> None:
        """Move deployments along the clock: DEPLOYING → BAKING → COMPLETE, ROLLING_BACK → ROLLED_BACK."""
        with self._lock:
            self._progress(region)
        self._flush()

    def _progress(self, region: str | None) -> None:
        now = self.clock.now()
        for deployments in self.deployments.values():
            for d in deployments:
                if region is not None and d.region != region:
                    continue
                if d.state == "ROLLING_BACK" and d.rollback_ends_at and now >= d.rollback_ends_at:
                    self._finish(d, "ROLLED_BACK", d.rollback_ends_at)
                if d.state == "DEPLOYING" and now >= d.baking_from and d.strategy["FinalBakeTimeInMinutes"]:
                    d.state = "BAKING"
                    d.event("BAKE_TIME_STARTED", "APPCONFIG", "Bake time started", d.baking_from)
                if d.state in {"DEPLOYING", "BAKING"} and now >= d.ends_at():
                    self._finish(d, "COMPLETE", d.ends_at())

    # ------------------------------------------------------------------ reads of moto's data

    def _backend(self, region: str) -> Any:
        return appconfig_backends[ACCOUNT][region]

    def _profile(self, region: str, application_id: str, profile_id: str) -> Any:
        app = self._backend(region).applications.get(application_id)
        return app.config_profiles.get(profile_id) if app else None

    def deployed_document(self, region: str, application: str, environment: str, profile: str) -> Any:
        """What an AppConfig agent polling (application, environment, profile) by name receives now: the
        newest deployment of the profile that is DEPLOYING, BAKING or COMPLETE (a rolled-back or reverted one
        gives way to the one before it)."""
        self.progress(region)
        with self._lock:
            backend = self._backend(region)
            app = next((a for a in backend.applications.values() if a.name == application), None)
            envs = self.environments.get((region, app.id), {}).values() if app else []
            env = next((e for e in envs if e["Name"] == environment), None)
            prof = next((p for p in app.config_profiles.values() if p.name == profile), None) if app else None
            if not (app and env and prof):
                return None
            live = [
                d
                for d in self.deployments.get((region, app.id, env["Id"]), [])
                if d.profile_id == prof.id and d.state in SERVING
            ]
            if not live:
                return None
            content = prof.get_version(int(live[-1].version)).content
        return json.loads(content.decode() if isinstance(content, bytes) else content)

    # ------------------------------------------------------------------ operations moto lacks

    def _ListApplications(self, region: str, **_: Any) -> Answer:  # noqa: N802 - AWS operation names
        apps = self._backend(region).applications.values()
        return _ok({"Items": [{"Id": a.id, "Name": a.name, "Description": a.description or ""} for a in apps]})

    def _environment_shape(self, region: str, env: dict[str, Any]) -> dict[str, Any]:
        history = self.deployments.get((region, env["ApplicationId"], env["Id"]), [])
        state = ENVIRONMENT_STATE[history[-1].state] if history else "READY_FOR_DEPLOYMENT"
        return {**env, "State": state}

    def _CreateEnvironment(self, region: str, ApplicationId: str, Name: str, **kw: Any) -> Answer:  # noqa: N802,N803
        if ApplicationId not in self._backend(region).applications:
            return _error(404, "ResourceNotFoundException", f"Application {ApplicationId} not found")
        env = {
            "ApplicationId": ApplicationId,
            "Id": secrets.token_hex(4)[:7],
            "Name": Name,
            "Description": kw.get("Description", ""),
            "Monitors": [],
        }
        self.environments.setdefault((region, ApplicationId), {})[env["Id"]] = env
        return _ok(self._environment_shape(region, env), 201)

    def _GetEnvironment(self, region: str, ApplicationId: str, EnvironmentId: str, **_: Any) -> Answer:  # noqa: N802,N803
        env = self.environments.get((region, ApplicationId), {}).get(EnvironmentId)
        if env is None:
            return _error(404, "ResourceNotFoundException", f"Environment {EnvironmentId} not found")
        return _ok(self._environment_shape(region, env))

    def _ListEnvironments(self, region: str, ApplicationId: str, **_: Any) -> Answer:  # noqa: N802,N803
        if ApplicationId not in self._backend(region).applications:
            return _error(404, "ResourceNotFoundException", f"Application {ApplicationId} not found")
        envs = self.environments.get((region, ApplicationId), {}).values()
        return _ok({"Items": [self._environment_shape(region, e) for e in envs]})

    def _CreateDeploymentStrategy(
        self,
        region: str,
        Name: str,
        DeploymentDurationInMinutes: int,  # noqa: N802,N803
        GrowthFactor: float,
        **kw: Any,
    ) -> Answer:
        strategy = {
            "Id": secrets.token_hex(4)[:7],
            "Name": Name,
            "Description": kw.get("Description", ""),
            "DeploymentDurationInMinutes": DeploymentDurationInMinutes,
            "GrowthType": kw.get("GrowthType", "LINEAR"),
            "GrowthFactor": GrowthFactor,
            "FinalBakeTimeInMinutes": kw.get("FinalBakeTimeInMinutes", 0),
            "ReplicateTo": kw.get("ReplicateTo", "NONE"),
        }
        self.strategies.setdefault(region, {})[strategy["Id"]] = strategy
        return _ok(strategy, 201)

    def _strategies(self, region: str) -> dict[str, dict[str, Any]]:
        predefined = {
            name: {
                "Id": name,
                "Name": name,
                "Description": "",
                "DeploymentDurationInMinutes": minutes,
                "GrowthType": growth_type,
                "GrowthFactor": growth,
                "FinalBakeTimeInMinutes": bake,
                "ReplicateTo": "NONE",
            }
            for name, (growth_type, growth, minutes, bake) in PREDEFINED.items()
        }
        return {**predefined, **self.strategies.get(region, {})}

    def _ListDeploymentStrategies(self, region: str, **_: Any) -> Answer:  # noqa: N802
        return _ok({"Items": list(self._strategies(region).values())})

    def _GetDeploymentStrategy(self, region: str, DeploymentStrategyId: str, **_: Any) -> Answer:  # noqa: N802,N803
        strategy = self._strategies(region).get(DeploymentStrategyId)
        if strategy is None:
            return _error(404, "ResourceNotFoundException", f"Deployment strategy {DeploymentStrategyId} not found")
        return _ok(strategy)

    def _ListHostedConfigurationVersions(
        self,
        region: str,
        ApplicationId: str,  # noqa: N802,N803
        ConfigurationProfileId: str,
        **_: Any,
    ) -> Answer:  # noqa: N803
        profile = self._profile(region, ApplicationId, ConfigurationProfileId)
        if profile is None:
            return _error(404, "ResourceNotFoundException", f"Configuration profile {ConfigurationProfileId} not found")
        items = [
            {
                "ApplicationId": ApplicationId,
                "ConfigurationProfileId": ConfigurationProfileId,
                "VersionNumber": v.version,
                "Description": v.description or "",
                "ContentType": v.content_type,
            }
            for v in sorted(profile.config_versions.values(), key=lambda v: v.version, reverse=True)
        ]
        return _ok({"Items": items})

    def _CreateHostedConfigurationVersion(
        self,
        region: str,
        ApplicationId: str,  # noqa: N802,N803
        ConfigurationProfileId: str,
        Content: bytes,
        **kw: Any,
    ) -> Answer | None:
        profile = self._profile(region, ApplicationId, ConfigurationProfileId)
        if profile is None:
            return None  # moto answers the not-found itself
        latest = max(profile.config_versions, default=0)
        expected = kw.get("LatestVersionNumber")
        if expected is not None and expected != latest:
            return _error(
                409, "ConflictException", f"LatestVersionNumber {expected} does not match the latest version {latest}"
            )
        if profile._type == "AWS.AppConfig.FeatureFlags":
            problem = _feature_flags_problem(Content)
            if problem:
                return _error(
                    400, "BadRequestException", f"Configuration does not match the feature flags schema: {problem}"
                )
        return None  # valid: moto stores the version

    def _StartDeployment(
        self,
        region: str,
        ApplicationId: str,
        EnvironmentId: str,  # noqa: N802,N803
        DeploymentStrategyId: str,
        ConfigurationProfileId: str,  # noqa: N803
        ConfigurationVersion: str,
        **kw: Any,
    ) -> Answer:  # noqa: N803
        env = self.environments.get((region, ApplicationId), {}).get(EnvironmentId)
        profile = self._profile(region, ApplicationId, ConfigurationProfileId)
        strategy = self._strategies(region).get(DeploymentStrategyId)
        if env is None or profile is None or strategy is None:
            return _error(404, "ResourceNotFoundException", "environment, profile or strategy not found")
        if int(ConfigurationVersion) not in profile.config_versions:
            return _error(404, "ResourceNotFoundException", f"version {ConfigurationVersion} not found")
        key = (region, ApplicationId, EnvironmentId)
        history = self.deployments.setdefault(key, [])
        active = next((d for d in history if d.state in ACTIVE), None)
        if active is not None:
            return _error(
                409,
                "ConflictException",
                f"Deployment {active.number} of configuration profile {active.profile_id} is {active.state} in "
                f"environment {EnvironmentId}; an environment takes one deployment at a time",
            )
        d = _Deployment(
            region,
            ApplicationId,
            EnvironmentId,
            ConfigurationProfileId,
            profile.name,
            strategy,
            len(history) + 1,
            str(ConfigurationVersion),
            kw.get("Description", ""),
            self.clock.now(),
        )
        d.event("DEPLOYMENT_STARTED", "USER", "Deployment started", d.started_at)
        history.append(d)
        self._announcements.append((d, "On Deployment Start"))
        self._progress(region)
        return _ok(d.shape(self.clock.now()), 201)

    def _find(self, region: str, application_id: str, environment_id: str, number: int) -> _Deployment | None:
        return next(
            (d for d in self.deployments.get((region, application_id, environment_id), []) if d.number == number), None
        )

    def _GetDeployment(  # noqa: N802 - AWS operation names
        self,
        region: str,
        ApplicationId: str,
        EnvironmentId: str,
        DeploymentNumber: int,
        **_: Any,  # noqa: N803
    ) -> Answer:
        d = self._find(region, ApplicationId, EnvironmentId, DeploymentNumber)
        if d is None:
            return _error(404, "ResourceNotFoundException", f"Deployment {DeploymentNumber} not found")
        return _ok(d.shape(self.clock.now()))

    def _ListDeployments(self, region: str, ApplicationId: str, EnvironmentId: str, **_: Any) -> Answer:  # noqa: N802,N803
        """Newest first ("Lists the deployments for an environment in descending deployment number order")."""
        now = self.clock.now()
        items = []
        for d in reversed(self.deployments.get((region, ApplicationId, EnvironmentId), [])):
            shape = d.shape(now)
            items.append(
                {
                    k: shape[k]
                    for k in (
                        "DeploymentNumber",
                        "ConfigurationProfileId",
                        "ConfigurationName",
                        "ConfigurationVersion",
                        "DeploymentDurationInMinutes",
                        "GrowthType",
                        "GrowthFactor",
                        "FinalBakeTimeInMinutes",
                        "State",
                        "PercentageComplete",
                        "StartedAt",
                    )
                }
                | ({"CompletedAt": d.completed_at} if d.completed_at else {})
            )
        return _ok({"Items": items})

    def _StopDeployment(  # noqa: N802
        self,
        region: str,
        ApplicationId: str,
        EnvironmentId: str,
        DeploymentNumber: int,
        AllowRevert: bool = False,  # noqa: N803
        **_: Any,  # noqa: N803
    ) -> Answer:
        """ "StopDeployment" (API reference) and "Reverting a configuration" (user guide): DEPLOYING stops and
        rolls back; BAKING needs AllowRevert; COMPLETE needs AllowRevert and a completion in the last 72 hours
        and becomes REVERTED; everything else, and those without what they need, is a BadRequestException."""
        d = self._find(region, ApplicationId, EnvironmentId, DeploymentNumber)
        if d is None:
            return _error(404, "ResourceNotFoundException", f"Deployment {DeploymentNumber} not found")
        now = self.clock.now()
        if d.state == "DEPLOYING" or (d.state == "BAKING" and AllowRevert):
            d.state, d.rollback_ends_at = "ROLLING_BACK", now + timedelta(seconds=ROLLBACK_SECONDS)
            d.event("ROLLBACK_STARTED", "USER", "Deployment stopped", now)
            return _ok(d.shape(now), 202)
        if d.state == "COMPLETE" and AllowRevert:
            assert d.completed_at is not None
            if now - d.completed_at > REVERT_WINDOW:
                return _error(
                    400,
                    "BadRequestException",
                    f"Deployment {DeploymentNumber} completed more than 72 hours ago and can no longer be reverted",
                )
            d.state = "REVERTED"
            d.event("REVERT_COMPLETED", "USER", "Deployment reverted", now)
            return _ok(d.shape(now), 202)
        if d.state == "BAKING":
            reason = "is BAKING: only a DEPLOYING deployment can be stopped without AllowRevert"
        elif d.state == "COMPLETE":
            reason = "is COMPLETE: it can only be reverted (AllowRevert)"
        else:
            reason = f"is already {d.state}"
        return _error(400, "BadRequestException", f"Deployment {DeploymentNumber} {reason}")

    # ------------------------------------------------------------------ EventBridge

    def _finish(self, d: _Deployment, state: str, at: datetime) -> None:
        d.state, d.completed_at = state, at
        if state == "COMPLETE":
            d.event("DEPLOYMENT_COMPLETED", "APPCONFIG", "Deployment completed", at)
            self._announcements.append((d, "On Deployment Complete"))
        else:
            d.event("ROLLBACK_COMPLETED", "APPCONFIG", "Rollback completed", at)
            self._announcements.append((d, "On Deployment Rollback"))

    def _flush(self) -> None:
        with self._lock:
            pending, self._announcements = self._announcements, []
        for d, detail_type in pending:
            self._announce(d, detail_type)

    def _announce(self, d: _Deployment, detail_type: str) -> None:
        if self.publish is None:
            return
        app = self._backend(d.region).applications[d.application_id]
        env = self.environments[(d.region, d.application_id)][d.environment_id]
        at = d.completed_at if detail_type != "On Deployment Start" and d.completed_at else d.started_at
        self.publish(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": detail_type,
                "source": "aws.appconfig",
                "account": ACCOUNT,
                "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": d.region,
                "resources": [f"arn:aws:appconfig:{d.region}:{ACCOUNT}:application/{d.application_id}"],
                "detail": {
                    "InvocationId": secrets.token_hex(4)[:7],
                    "Parameters": {},
                    "Type": detail_type.replace(" ", ""),
                    "Application": {"Id": d.application_id, "Name": app.name},
                    "Environment": {"Id": d.environment_id, "Name": env["Name"]},
                    "ConfigurationProfile": {"Id": d.profile_id, "Name": d.profile_name},
                    "DeploymentNumber": d.number,
                    "ConfigurationVersion": d.version,
                },
            }
        )


def _feature_flags_problem(content: bytes | str) -> str | None:
    """The gist of AppConfig's AWS.AppConfig.FeatureFlags validation: structure and value types."""
    try:
        doc = json.loads(content)
    except (ValueError, TypeError) as exc:
        return f"not JSON ({exc})"
    if not isinstance(doc, dict) or doc.get("version") != "1":
        return 'version must be "1"'
    flags, values = doc.get("flags"), doc.get("values", {})
    if not isinstance(flags, dict) or not isinstance(values, dict):
        return "flags and values must be objects"
    for name, value in values.items():
        if name not in flags:
            return f"values.{name} has no flag definition"
        if not isinstance(value, dict) or not isinstance(value.get("enabled"), bool):
            return f"values.{name}.enabled must be a boolean"
    return None
