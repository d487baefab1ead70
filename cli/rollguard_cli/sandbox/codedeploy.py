"""CodeDeploy's Lambda deployments as AWS documents them, moving the real alias in moto's Lambda.

moto 5.2.5 records deployments but never runs them. Here a deployment of a Lambda AppSpec shifts the
alias's ``RoutingConfig`` on the sandbox clock, and AWS's refusals are modelled, each with its source
(CodeDeploy User Guide or API Reference; titles as AWS gives them):

- "Deployment configurations on an AWS Lambda compute platform": the predefined ``CodeDeployDefault.Lambda*``
  configurations; custom ``TimeBasedCanary`` / ``TimeBasedLinear`` / ``AllAtOnce`` ones from
  ``CreateDeploymentConfig`` (API "TimeBasedCanary": ``canaryInterval`` in minutes). An unknown name is
  ``DeploymentConfigDoesNotExistException`` (API "CreateDeployment", Errors).
- "AppSpec 'resources' section (AWS Lambda deployments only)": Name, Alias, CurrentVersion, TargetVersion.
  A ``CurrentVersion`` other than the alias's version fails the deployment (error code
  ``INVALID_LAMBDA_CONFIGURATION``, API "ErrorInformation").
- "Troubleshoot AWS Lambda deployment issues": a Lambda deployment stopped without rollback leaves the alias on
  two versions, and later deployments of the function fail until the alias is fixed.
- API "StopDeployment": the answer is ``Pending`` while the stop is under way; the deployment stays active
  (a new one meets ``DeploymentLimitExceededException``, API "CreateDeployment") until it is ``Stopped``.
  Stopped with ``autoRollbackEnabled``, CodeDeploy rolls back with a new deployment
  ("Redeploy and roll back a deployment with CodeDeploy"); both carry ``rollbackInfo``.
- "Monitoring deployments with CloudWatch alarms in CodeDeploy": a deployment is stopped while one of its
  group's alarms is in ALARM (``ALARM_ACTIVE``), unless the deployment's ``overrideAlarmConfiguration``
  replaces the group's; the group's ``autoRollbackConfiguration`` (``DEPLOYMENT_STOP_ON_ALARM``,
  ``DEPLOYMENT_FAILURE``) then rolls back as a new deployment.

ECS blue/green deployments are sandbox/codedeploy_ecs.py's (docs/sandbox-codedeploy-ecs.md): ``LambdaDeployments``
hands a deployment to it by the application's compute platform, and ``Deployments`` holds what both share.

Not modelled: Lambda lifecycle hooks (BeforeAllowTraffic/AfterAllowTraffic), EC2/on-premises deployments,
``ignorePollAlarmFailure``, ``DEPLOYMENT_STOP_ON_REQUEST`` group rollbacks, deployment ready waits; for ECS see
codedeploy_ecs.py.
"""

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException
from moto.codedeploy.exceptions import CodeDeployException

from rollguard_cli.sandbox.world import moto_time

ACTIVE = frozenset({"Created", "Queued", "InProgress", "Ready", "Baking"})
DONE = frozenset({"Succeeded", "Failed", "Stopped"})
STOP_DELAY = timedelta(seconds=20)  # a stop answered Pending completes this long after (observed: seconds)
SETTLE = timedelta(seconds=30)  # after the last traffic shift, until the deployment reports Succeeded


class CodeDeployError(CodeDeployException):
    """An error answered the way CodeDeploy answers it (botocore raises it as the real ClientError)."""

    code = 400

    def __init__(self, error: str, message: str):
        super().__init__(error, message)


@dataclass(frozen=True)
class TrafficRouting:
    """How a configuration shifts traffic: (seconds after the start, share on the target version)."""

    steps: tuple[tuple[int, float], ...]

    @classmethod
    def from_config(cls, info: dict[str, Any]) -> "TrafficRouting":
        routing = info.get("trafficRoutingConfig") or {"type": "AllAtOnce"}
        kind = routing.get("type")
        if kind == "TimeBasedCanary":
            canary = routing["timeBasedCanary"]
            return cls(((0, canary["canaryPercentage"] / 100), (canary["canaryInterval"] * 60, 1.0)))
        if kind == "TimeBasedLinear":
            linear = routing["timeBasedLinear"]
            share, every = linear["linearPercentage"] / 100, linear["linearInterval"] * 60
            count = math.ceil(1 / share)
            return cls(tuple((i * every, min(1.0, (i + 1) * share)) for i in range(count)))
        return cls(((0, 1.0),))


def _predefined() -> dict[str, dict[str, Any]]:
    """CodeDeploy's predefined Lambda configurations ("Deployment configurations on an AWS Lambda compute
    platform") and ECS ones ("Deployment configurations on an Amazon ECS compute platform")."""
    configs: dict[str, dict[str, Any]] = {
        "CodeDeployDefault.LambdaAllAtOnce": {
            "computePlatform": "Lambda",
            "trafficRoutingConfig": {"type": "AllAtOnce"},
        }
    }
    for minutes in (5, 10, 15, 30):
        configs[f"CodeDeployDefault.LambdaCanary10Percent{minutes}Minutes"] = {
            "computePlatform": "Lambda",
            "trafficRoutingConfig": {
                "type": "TimeBasedCanary",
                "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": minutes},
            },
        }
    for minutes, label in ((1, "1Minute"), (2, "2Minutes"), (3, "3Minutes"), (10, "10Minutes")):
        configs[f"CodeDeployDefault.LambdaLinear10PercentEvery{label}"] = {
            "computePlatform": "Lambda",
            "trafficRoutingConfig": {
                "type": "TimeBasedLinear",
                "timeBasedLinear": {"linearPercentage": 10, "linearInterval": minutes},
            },
        }
    configs["CodeDeployDefault.ECSAllAtOnce"] = {
        "computePlatform": "ECS",
        "trafficRoutingConfig": {"type": "AllAtOnce"},
    }
    for minutes in (5, 15):
        configs[f"CodeDeployDefault.ECSCanary10Percent{minutes}Minutes"] = {
            "computePlatform": "ECS",
            "trafficRoutingConfig": {
                "type": "TimeBasedCanary",
                "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": minutes},
            },
        }
    for minutes in (1, 3):
        configs[f"CodeDeployDefault.ECSLinear10PercentEvery{minutes}Minutes"] = {
            "computePlatform": "ECS",
            "trafficRoutingConfig": {
                "type": "TimeBasedLinear",
                "timeBasedLinear": {"linearPercentage": 10, "linearInterval": minutes},
            },
        }
    return configs


@dataclass(frozen=True)
class LambdaAppSpec:
    function: str
    alias: str
    current: str
    target: str

    @classmethod
    def parse(cls, revision: dict[str, Any]) -> "LambdaAppSpec":
        """The AppSpec of an ``AppSpecContent`` or ``String`` revision (JSON or YAML)."""
        spec = appspec_body(revision)
        try:
            props = next(iter(spec["Resources"][0].values()))["Properties"]
            return cls(
                str(props["Name"]), str(props["Alias"]), str(props["CurrentVersion"]), str(props["TargetVersion"])
            )
        except (KeyError, IndexError, TypeError, StopIteration) as exc:
            raise CodeDeployError(
                "InvalidRevisionException", f"The AppSpec is not a valid Lambda AppSpec: {exc}"
            ) from exc

    def reversed(self) -> "LambdaAppSpec":
        return LambdaAppSpec(self.function, self.alias, self.target, self.current)

    def revision(self) -> dict[str, Any]:
        body = {
            "version": 0.0,
            "Resources": [
                {
                    self.function: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": self.function,
                            "Alias": self.alias,
                            "CurrentVersion": self.current,
                            "TargetVersion": self.target,
                        },
                    }
                }
            ],
        }
        return {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(body)}}


@dataclass
class _Run:
    """What the sandbox keeps about a deployment in progress."""

    spec: Any  # the platform's AppSpec (LambdaAppSpec, codedeploy_ecs.EcsAppSpec)
    routing: TrafficRouting
    started: datetime
    stopping: bool = False
    timers: list[object] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # what the platform tracks (ECS: the two task sets)


def appspec_body(revision: dict[str, Any]) -> dict[str, Any]:
    """The AppSpec of an ``AppSpecContent`` or ``String`` revision (JSON or YAML)."""
    body = (revision.get("appSpecContent") or revision.get("string") or {}).get("content", "")
    try:
        spec = json.loads(body)
    except json.JSONDecodeError:
        import yaml

        spec = yaml.safe_load(body)
    if not isinstance(spec, dict):
        raise CodeDeployError("InvalidRevisionException", "The AppSpec is not a JSON or YAML object")
    return spec


class Deployments:
    """What CodeDeploy does alike on every compute platform: deployment configurations, a deployment's states and
    events, traffic shifted step by step on the sandbox clock, StopDeployment, rollbacks as new deployments, and the
    group's alarms. A platform says how traffic moves (``_apply_share``), what follows the last shift
    (``_all_traffic_shifted``) and how a rollback restores the original (``_restore``)."""

    platform = ""
    rollback_config = ""

    def __init__(
        self,
        now: Callable[[], datetime],
        schedule: Callable[[datetime, Callable[[], None]], object],
        cancel: Callable[[object], None],
        enqueue: Callable[[dict[str, Any]], None],
        configs: dict[str, dict[str, Any]] | None = None,
        lock: Any = None,
    ) -> None:
        self.now, self._schedule, self._cancel, self._enqueue = now, schedule, cancel, enqueue
        self.configs = configs if configs is not None else _predefined()
        self.codedeploy: Any = None  # moto backends, set by the sandbox
        self.cloudwatch: Any = None
        self.create_original: Callable[..., str] | None = None
        self._runs: dict[str, _Run] = {}
        self._lock = lock or threading.RLock()

    # ------------------------------------------------------------- deployment configurations

    def create_config(self, name: str, body: dict[str, Any]) -> dict[str, str]:
        if name in self.configs:
            raise CodeDeployError("DeploymentConfigAlreadyExistsException", f"Deployment config {name} already exists")
        if name.startswith("CodeDeployDefault."):
            raise CodeDeployError("InvalidDeploymentConfigNameException", "The CodeDeployDefault. prefix is reserved")
        self.configs[name] = {
            "computePlatform": body.get("computePlatform", "Server"),
            "trafficRoutingConfig": body.get("trafficRoutingConfig"),
            "minimumHealthyHosts": body.get("minimumHealthyHosts"),
        }
        return {"deploymentConfigId": f"sandbox-{len(self.configs)}"}

    def get_config(self, name: str) -> dict[str, Any]:
        if name not in self.configs:
            raise CodeDeployError("DeploymentConfigDoesNotExistException", f"Deployment config {name} does not exist")
        return {"deploymentConfigName": name, **{k: v for k, v in self.configs[name].items() if v is not None}}

    def check_config(self, name: str, platform: str) -> None:
        """A configuration serves deployments of its own compute platform only ("Working with deployment
        configurations in CodeDeploy": the rules differ by platform). The error code is the API's for a
        configuration name it will not take (API "CreateDeployment", Errors); AWS's exact text is not documented."""
        config = self.get_config(name)
        if config.get("computePlatform", "Server") != platform:
            raise CodeDeployError(
                "InvalidDeploymentConfigNameException",
                f"Deployment config {name} is for the {config.get('computePlatform', 'Server')} compute platform; "
                f"the deployment group's application is for {platform}",
            )

    # ------------------------------------------------------------- a deployment's life

    def created(self, deployment: Any) -> None:
        """CreateDeployment was accepted: InProgress, then the platform validates and starts shifting traffic."""
        with self._lock:
            config = self.get_config(str(deployment.deployment_config_name))
            now = self.now()
            deployment.status = "InProgress"
            deployment.create_time = deployment.start_time = moto_time(now)
            self._enqueue(_event(self.codedeploy, deployment, "START", now))
            self._start(deployment, TrafficRouting.from_config(config), now)

    def _start(self, deployment: Any, routing: TrafficRouting, now: datetime) -> None:
        raise NotImplementedError

    def _begin_shifting(self, deployment: Any, run: _Run, at: datetime) -> None:
        """The configuration's steps from ``at``; the group's alarms are looked at first."""
        self._runs[deployment.deployment_id] = run
        if self._alarm_stops(deployment):
            return
        for offset, share in run.routing.steps:
            if offset == 0 and at <= self.now():
                self._shift(deployment, share)
            else:
                run.timers.append(self._schedule(at + timedelta(seconds=offset), self._shifter(deployment, share)))

    def _shifter(self, deployment: Any, share: float) -> Callable[[], None]:
        return lambda: self._shift(deployment, share)

    def _shift(self, deployment: Any, share: float) -> None:
        with self._lock:
            run = self._runs.get(deployment.deployment_id)
            if run is None or deployment.status != "InProgress" or run.stopping:
                return
            self._apply_share(deployment, run, share)
            if share >= 1.0:
                self._all_traffic_shifted(deployment, run)

    def _apply_share(self, deployment: Any, run: _Run, share: float) -> None:
        raise NotImplementedError

    def _all_traffic_shifted(self, deployment: Any, run: _Run) -> None:
        run.timers.append(self._schedule(self.now() + SETTLE, lambda: self._succeed(deployment)))

    def _succeed(self, deployment: Any) -> None:
        with self._lock:
            if deployment.status != "InProgress" or deployment.deployment_id not in self._runs:
                return
            self._runs.pop(deployment.deployment_id)
            deployment.status = "Succeeded"
            deployment.complete_time = moto_time(self.now())
            self._enqueue(_event(self.codedeploy, deployment, "SUCCESS", self.now()))

    def _fail(self, deployment: Any, code: str, message: str) -> None:
        deployment.status = "Failed"
        deployment.complete_time = moto_time(self.now())
        deployment.error_information = {"code": code, "message": message}
        run = self._runs.get(deployment.deployment_id)
        for timer in run.timers if run else []:
            self._cancel(timer)
        self._enqueue(_event(self.codedeploy, deployment, "FAILURE", self.now()))
        if self._group_rolls_back(deployment, "DEPLOYMENT_FAILURE"):
            self._roll_back(deployment)
        else:
            self._runs.pop(deployment.deployment_id, None)

    def stop(self, deployment: Any, auto_rollback: bool) -> dict[str, str]:
        """StopDeployment: Pending now, Stopped after STOP_DELAY (the deployment stays active meanwhile)."""
        with self._lock:
            if deployment.status in DONE:
                raise CodeDeployError(
                    "DeploymentAlreadyCompletedException",
                    f"Deployment {deployment.deployment_id} has already completed",
                )
            run = self._runs.get(deployment.deployment_id)
            if run is not None and not run.stopping:
                run.stopping = True
                for timer in run.timers:  # traffic stays where it is while the stop is under way
                    self._cancel(timer)
                run.timers = [self._schedule(self.now() + STOP_DELAY, lambda: self._stopped(deployment, auto_rollback))]
            return {"status": "Pending", "statusMessage": "Stop request received; the deployment is stopping"}

    def _stopped(self, deployment: Any, auto_rollback: bool, code: str | None = None, message: str = "") -> None:
        with self._lock:
            if deployment.status in DONE:
                return
            deployment.status = "Stopped"
            deployment.complete_time = moto_time(self.now())
            if code:
                deployment.error_information = {"code": code, "message": message}
            self._enqueue(_event(self.codedeploy, deployment, "STOP", self.now()))
            if auto_rollback:
                self._roll_back(deployment)
            else:
                # Traffic stays as it is: on two versions (or target groups) if the stop came mid-canary.
                self._runs.pop(deployment.deployment_id, None)

    def _roll_back(self, deployment: Any) -> None:
        """A rollback is a new deployment (creator codeDeployRollback) that restores the original."""
        run = self._runs.pop(deployment.deployment_id, None)
        revision = self._restore(deployment, run)
        assert self.create_original is not None
        rollback_id = self.create_original(
            self.codedeploy,
            deployment.application_name,
            deployment.deployment_group_name,
            revision,
            self.rollback_config,
            f"Automatic rollback of {deployment.deployment_id}",
        )
        rollback = self.codedeploy.deployments[rollback_id]
        now = self.now()
        rollback.creator = "codeDeployRollback"
        rollback.status = "Succeeded"
        rollback.create_time = rollback.start_time = rollback.complete_time = moto_time(now)
        rollback.rollback_info = {"rollbackTriggeringDeploymentId": deployment.deployment_id}
        deployment.rollback_info = {
            "rollbackDeploymentId": rollback_id,
            "rollbackMessage": f"Deployment {deployment.deployment_id} was rolled back by {rollback_id}",
        }

    def _restore(self, deployment: Any, run: _Run | None) -> dict[str, Any]:
        """Put production traffic back on the original; return the rollback deployment's revision."""
        raise NotImplementedError

    # ------------------------------------------------------------- the group's alarms

    def alarms_evaluated(self) -> None:
        """CodeDeploy polls a deployment's alarms while it runs: stop those with an alarm in ALARM."""
        with self._lock:
            for deployment_id, run in list(self._runs.items()):
                deployment = self.codedeploy.deployments.get(deployment_id)
                if deployment is not None and not run.stopping and deployment.status == "InProgress":
                    self._alarm_stops(deployment)

    def _alarm_stops(self, deployment: Any) -> bool:
        config = deployment.override_alarm_configuration or deployment.deployment_group.alarm_configuration or {}
        if not config.get("enabled"):
            return False
        names = [a.get("name") for a in config.get("alarms", [])]
        firing = [a.name for a in self.cloudwatch.alarms.values() if a.name in names and a.state_value == "ALARM"]
        if not firing:
            return False
        run = self._runs.get(deployment.deployment_id)
        for timer in run.timers if run else []:
            self._cancel(timer)
        self._stopped(
            deployment,
            self._group_rolls_back(deployment, "DEPLOYMENT_STOP_ON_ALARM"),
            "ALARM_ACTIVE",
            f"One or more alarms have been activated and the deployment was stopped. Activated alarms: "
            f"{', '.join(firing)}",
        )
        return True

    @staticmethod
    def _group_rolls_back(deployment: Any, event: str) -> bool:
        config = deployment.deployment_group.auto_rollback_configuration or {}
        return bool(config.get("enabled")) and event in (config.get("events") or [])


class LambdaDeployments(Deployments):
    """CodeDeploy's side of the sandbox: deployment configurations, the life of each Lambda deployment, and the
    group's alarms. It acts on moto's CodeDeploy and Lambda backends; the World schedules its timers. Deployments of
    an ECS application are handed to ``self.ecs`` (sandbox/codedeploy_ecs.py), which shares the configurations,
    the lock and the clock."""

    platform = "Lambda"
    rollback_config = "CodeDeployDefault.LambdaAllAtOnce"

    def __init__(
        self,
        now: Callable[[], datetime],
        schedule: Callable[[datetime, Callable[[], None]], object],
        cancel: Callable[[object], None],
        enqueue: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__(now, schedule, cancel, enqueue)
        self.lambda_: Any = None
        self._ecs: Any = None

    # ------------------------------------------------------------- the compute platform decides

    @property
    def ecs(self) -> Any:
        """The ECS deployments (codedeploy_ecs.EcsDeployments), on the same clock, configurations and backends."""
        if self._ecs is None:
            from rollguard_cli.sandbox.codedeploy_ecs import EcsDeployments

            self._ecs = EcsDeployments(
                self.now, self._schedule, self._cancel, self._enqueue, configs=self.configs, lock=self._lock
            )
        self._ecs.codedeploy, self._ecs.cloudwatch = self.codedeploy, self.cloudwatch
        self._ecs.create_original, self._ecs.lambda_ = self.create_original, self.lambda_
        return self._ecs

    def _for(self, platform: str) -> "Deployments":
        return self.ecs if platform == "ECS" else self

    def admit(self, backend: Any, application: str, group: str, revision: dict[str, Any], config: str | None) -> None:
        """CreateDeployment's refusals before moto records anything: the configuration exists and is for the
        application's compute platform, and the AppSpec is one of that platform (``InvalidRevisionException``)."""
        found = backend.applications.get(application)
        platform = str(getattr(found, "compute_platform", "") or "Server")
        if config is None:
            group_found = backend.deployment_groups.get(application, {}).get(group)
            config = str(group_found.deployment_config_name) if group_found is not None else None
        if config is not None and found is not None:
            self.check_config(config, platform)
        if platform == "ECS":
            self.ecs.parse(revision)
        elif platform == "Lambda":
            LambdaAppSpec.parse(revision)

    def admit_group(self, backend: Any, application: str, params: dict[str, Any]) -> dict[str, Any]:
        """CreateDeploymentGroup's refusals for the application's compute platform (ECS: codedeploy_ecs)."""
        found = backend.applications.get(application)
        if found is not None and found.compute_platform == "ECS":
            return dict(self.ecs.admit_group(params))
        return params

    def created(self, deployment: Any) -> None:
        target = self._for(deployment.application.compute_platform)
        if target is self:
            super().created(deployment)
        else:
            target.created(deployment)

    def stop(self, deployment: Any, auto_rollback: bool) -> dict[str, str]:
        target = self._for(deployment.application.compute_platform)
        return super().stop(deployment, auto_rollback) if target is self else target.stop(deployment, auto_rollback)

    def alarms_evaluated(self) -> None:
        super().alarms_evaluated()
        if self._ecs is not None:
            self.ecs.alarms_evaluated()

    # ------------------------------------------------------------- the alias

    def routing(self, function: str, alias: str) -> dict[str, float]:
        """Who serves the alias's traffic: {version: share}."""
        found = self.lambda_.get_alias(alias, function)
        extra = {
            str(k): float(v) for k, v in ((found.routing_config or {}).get("AdditionalVersionWeights") or {}).items()
        }
        return {str(found.function_version): 1.0 - sum(extra.values()), **extra}

    def _route(self, spec: LambdaAppSpec, primary: str, extra: dict[str, float]) -> None:
        weights = {v: round(w, 4) for v, w in extra.items() if w > 0 and v != primary}
        config = {"AdditionalVersionWeights": weights} if weights else {}
        self.lambda_.update_alias(spec.alias, spec.function, primary, None, config)

    # ------------------------------------------------------------- a Lambda deployment's life

    def _start(self, deployment: Any, routing: TrafficRouting, now: datetime) -> None:
        """Validate the AppSpec against the alias, then shift traffic."""
        spec = LambdaAppSpec.parse(deployment.revision)
        live = self.routing(spec.function, spec.alias)
        if len(live) > 1:
            # "Troubleshoot AWS Lambda deployment issues": an alias left on two versions fails every deployment.
            return self._fail(
                deployment,
                "INVALID_LAMBDA_CONFIGURATION",
                f"The alias {spec.alias} of {spec.function} is configured to shift traffic between versions "
                f"{', '.join(sorted(live))}; CodeDeploy cannot deploy it until it points at one version",
            )
        [version] = live
        if version != spec.current:
            return self._fail(
                deployment,
                "INVALID_LAMBDA_CONFIGURATION",
                f"The AppSpec's CurrentVersion {spec.current} does not match version {version} that alias "
                f"{spec.alias} of {spec.function} points to",
            )
        try:
            self.lambda_.get_function(spec.function, spec.target)
        except UnknownFunctionException:
            return self._fail(
                deployment, "INVALID_LAMBDA_FUNCTION", f"Version {spec.target} of {spec.function} does not exist"
            )
        self._begin_shifting(deployment, _Run(spec, routing, now), now)

    def _apply_share(self, deployment: Any, run: _Run, share: float) -> None:
        if share >= 1.0:
            self._route(run.spec, run.spec.target, {})
        else:
            self._route(run.spec, run.spec.current, {run.spec.target: share})

    def _restore(self, deployment: Any, run: _Run | None) -> dict[str, Any]:
        """The alias goes back to CurrentVersion."""
        spec = run.spec if run else LambdaAppSpec.parse(deployment.revision)
        self._route(spec, spec.current, {})
        return spec.reversed().revision()


def _event(backend: Any, deployment: Any, state: str, at: datetime) -> dict[str, Any]:
    """CodeDeploy's "Deployment State-change Notification" as EventBridge delivers it, in the account and region of
    the backend (moto's, per account and region) the deployment runs in."""
    app, group = deployment.application_name, deployment.deployment_group_name
    account, region = backend.account_id, backend.region_name
    return {
        "account": account,
        "region": region,
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "version": "0",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "id": f"cd-{deployment.deployment_id}-{state}",
        "resources": [
            f"arn:aws:codedeploy:{region}:{account}:application:{app}",
            f"arn:aws:codedeploy:{region}:{account}:deploymentgroup:{app}/{group}",
        ],
        "detail": {
            "instanceGroupId": deployment.deployment_group.deployment_group_id,
            "region": region,
            "application": app,
            "deploymentId": deployment.deployment_id,
            "state": state,
            "deploymentGroup": group,
        },
    }
