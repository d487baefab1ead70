"""AppConfig's deployment side for the sandbox: what moto 5.2.5 lacks (environments, deployment
strategies, deployments, listing hosted versions and applications, LatestVersionNumber conflicts and
feature-flag validation), answered in AppConfig's response shapes from a botocore ``before-call`` hook.

botocore has already validated the request when the hook runs, and what it returns is what the caller
gets, so the shapes below follow the AppConfig API reference. Hosted configuration versions stay in
moto; deployments progress on the sandbox clock and announce themselves as AppConfig does on
EventBridge ("On Deployment Start/Complete/Rollback").
"""

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.appconfig.models import appconfig_backends

from rollguard_cli.sandbox.clock import VirtualClock

ACCOUNT = "123456789012"
Answer = tuple[int, dict[str, Any]]
PREDEFINED = {  # a few of AppConfig's predefined strategies
    "AppConfig.AllAtOnce": (0, 100.0, 10),
    "AppConfig.Linear50PercentEvery30Seconds": (1, 50.0, 1),
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
    events: list[dict[str, Any]] = field(default_factory=list)

    def ends_at(self) -> datetime:
        minutes = self.strategy["DeploymentDurationInMinutes"] + self.strategy["FinalBakeTimeInMinutes"]
        return self.started_at + timedelta(minutes=minutes)

    def shape(self) -> dict[str, Any]:
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
            "PercentageComplete": 100.0 if self.state in {"BAKING", "COMPLETE"} else 0.0,
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

    # ------------------------------------------------------------------ the hook

    def answer(self, region: str, operation: str, params: dict[str, Any]) -> Answer | None:
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            return None
        self.progress(region)
        result: Answer | None = handler(region, **params)
        return result

    def progress(self, region: str | None = None) -> None:
        """Move deployments along the clock: DEPLOYING → BAKING → COMPLETE."""
        now = self.clock.now()
        for deployments in self.deployments.values():
            for d in deployments:
                if d.state in {"DEPLOYING", "BAKING"} and (region is None or d.region == region):
                    if now >= d.ends_at():
                        self._finish(d, "COMPLETE", d.ends_at())
                    elif now >= d.started_at + timedelta(minutes=d.strategy["DeploymentDurationInMinutes"]):
                        d.state = "BAKING"

    # ------------------------------------------------------------------ reads of moto's data

    def _backend(self, region: str) -> Any:
        return appconfig_backends[ACCOUNT][region]

    def _profile(self, region: str, application_id: str, profile_id: str) -> Any:
        app = self._backend(region).applications.get(application_id)
        return app.config_profiles.get(profile_id) if app else None

    def deployed_document(self, region: str, application: str, environment: str, profile: str) -> Any:
        """What an AppConfig agent polling (application, environment, profile) by name receives now."""
        self.progress(region)
        backend = self._backend(region)
        app = next((a for a in backend.applications.values() if a.name == application), None)
        env = (
            next((e for e in self.environments.get((region, app.id), {}).values() if e["Name"] == environment), None)
            if app
            else None
        )
        prof = next((p for p in app.config_profiles.values() if p.name == profile), None) if app else None
        if not (app and env and prof):
            return None
        live = [
            d
            for d in self.deployments.get((region, app.id, env["Id"]), [])
            if d.profile_id == prof.id and d.state in {"DEPLOYING", "BAKING", "COMPLETE"}
        ]
        if not live:
            return None
        content = prof.get_version(int(live[-1].version)).content
        return json.loads(content.decode() if isinstance(content, bytes) else content)

    # ------------------------------------------------------------------ operations moto lacks

    def _ListApplications(self, region: str, **_: Any) -> Answer:  # noqa: N802 - AWS operation names
        apps = self._backend(region).applications.values()
        return _ok({"Items": [{"Id": a.id, "Name": a.name, "Description": a.description or ""} for a in apps]})

    def _CreateEnvironment(self, region: str, ApplicationId: str, Name: str, **kw: Any) -> Answer:  # noqa: N802,N803
        if ApplicationId not in self._backend(region).applications:
            return _error(404, "ResourceNotFoundException", f"Application {ApplicationId} not found")
        env = {
            "ApplicationId": ApplicationId,
            "Id": secrets.token_hex(4)[:7],
            "Name": Name,
            "Description": kw.get("Description", ""),
            "State": "ReadyForDeployment",
            "Monitors": [],
        }
        self.environments.setdefault((region, ApplicationId), {})[env["Id"]] = env
        return _ok(env, 201)

    def _ListEnvironments(self, region: str, ApplicationId: str, **_: Any) -> Answer:  # noqa: N802,N803
        if ApplicationId not in self._backend(region).applications:
            return _error(404, "ResourceNotFoundException", f"Application {ApplicationId} not found")
        return _ok({"Items": list(self.environments.get((region, ApplicationId), {}).values())})

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
                "DeploymentDurationInMinutes": minutes,
                "GrowthType": "LINEAR",
                "GrowthFactor": growth,
                "FinalBakeTimeInMinutes": bake,
                "ReplicateTo": "NONE",
            }
            for name, (minutes, growth, bake) in PREDEFINED.items()
        }
        return {**predefined, **self.strategies.get(region, {})}

    def _ListDeploymentStrategies(self, region: str, **_: Any) -> Answer:  # noqa: N802
        return _ok({"Items": list(self._strategies(region).values())})

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
        if any(d.state in {"DEPLOYING", "BAKING"} for d in history):
            return _error(409, "ConflictException", f"Deployment already in progress in environment {EnvironmentId}")
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
        d.events.append(
            {
                "EventType": "DEPLOYMENT_STARTED",
                "TriggeredBy": "USER",
                "Description": "started",
                "OccurredAt": d.started_at,
            }
        )
        history.append(d)
        self._announce(d, "On Deployment Start")
        self.progress(region)
        return _ok(d.shape(), 201)

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
        return _ok(d.shape())

    def _ListDeployments(self, region: str, ApplicationId: str, EnvironmentId: str, **_: Any) -> Answer:  # noqa: N802,N803
        items = []
        for d in reversed(self.deployments.get((region, ApplicationId, EnvironmentId), [])):
            shape = d.shape()
            items.append(
                {
                    k: shape[k]
                    for k in (
                        "DeploymentNumber",
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
        **_: Any,  # noqa: N803
    ) -> Answer:
        d = self._find(region, ApplicationId, EnvironmentId, DeploymentNumber)
        if d is None:
            return _error(404, "ResourceNotFoundException", f"Deployment {DeploymentNumber} not found")
        if d.state not in {"DEPLOYING", "BAKING"}:
            return _error(400, "BadRequestException", f"Deployment {DeploymentNumber} is already {d.state}")
        self._finish(d, "ROLLED_BACK", self.clock.now())
        return _ok(d.shape(), 202)

    # ------------------------------------------------------------------ EventBridge

    def _finish(self, d: _Deployment, state: str, at: datetime) -> None:
        d.state, d.completed_at = state, at
        kind = "DEPLOYMENT_COMPLETED" if state == "COMPLETE" else "ROLLBACK_COMPLETED"
        d.events.append({"EventType": kind, "TriggeredBy": "APPCONFIG", "Description": state, "OccurredAt": at})
        self._announce(d, "On Deployment Complete" if state == "COMPLETE" else "On Deployment Rollback")

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
