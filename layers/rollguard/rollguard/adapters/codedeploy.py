"""CodeDeploy: find the deployment in scope and its last-known-good predecessor, roll back, widen."""

import json
from datetime import datetime, timedelta
from typing import Any

from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.clock import aws_iso, parse_aws_time
from rollguard.errors import RollbackFailed
from rollguard.incident import DeploymentRef

_NOT_FOUND = frozenset(
    {
        "ApplicationDoesNotExistException",
        "DeploymentGroupDoesNotExistException",
        "DeploymentDoesNotExistException",
        "DeploymentConfigDoesNotExistException",
    }
)
IN_FLIGHT = frozenset({"Created", "Queued", "InProgress", "Baking", "Ready"})
# Who else creates deployments that undo a change: they are never the change to blame (API "DeploymentInfo",
# creator: codeDeployRollback, CloudFormationRollback).
ROLLBACK_CREATORS = frozenset({"codeDeployRollback", "CloudFormationRollback"})

# A canary moves only a slice of traffic first. For Lambda and ECS, Rollguard's canary is a custom TimeBasedCanary
# configuration whose interval is the verification window plus a margin (canary_config): CodeDeploy itself shifts
# the rest when the interval ends, unless Rollguard stopped it first. That gives Rollguard the decision at the end
# of the window with a mechanism CodeDeploy supports: stopping a Lambda canary *without* rollback would leave the
# alias on two versions and fail every later deployment ("Troubleshoot AWS Lambda deployment issues").
CANARY_PERCENT = 10
CANARY_MARGIN_SECONDS = 60  # from the window's end to the latest moment Verify can still stop the canary
SERVER_CANARY_CONFIG = "CodeDeployDefault.OneAtATime"
FULL_CONFIG = {
    "Lambda": "CodeDeployDefault.LambdaAllAtOnce",
    "ECS": "CodeDeployDefault.ECSAllAtOnce",
    "Server": "CodeDeployDefault.AllAtOnce",
}


def _load_appspec(body: str) -> dict[str, Any]:
    """AppSpec content is JSON or YAML; JSON first (YAML rejects tab-indented JSON)."""
    try:
        return dict(json.loads(body))
    except json.JSONDecodeError:
        import yaml  # rare: most AppSpecs sent by pipelines are JSON

        try:
            return dict(yaml.safe_load(body) or {})
        except yaml.YAMLError:
            return {}


def revision_label(revision: dict[str, Any]) -> str:
    """What a revision is called in per-version metrics: the Lambda version, ECS task definition, or artifact."""
    kind = revision.get("revisionType")
    if kind in {"AppSpecContent", "String"}:
        body = (revision.get("appSpecContent") or revision.get("string") or {}).get("content", "")
        try:
            spec = _load_appspec(body)
            for resource in spec.get("Resources", []):
                props = next(iter(resource.values())).get("Properties", {})
                if "TargetVersion" in props:
                    return str(props["TargetVersion"])
                if "TaskDefinition" in props:  # family:revision, as ECS names a task definition
                    return str(props["TaskDefinition"]).rsplit("/", 1)[-1]
        except (AttributeError, StopIteration, TypeError, ValueError):
            pass
        return str(revision.get("appSpecContent", {}).get("sha256") or "appspec")
    if kind == "S3":
        s3 = revision.get("s3Location", {})
        return f"{s3.get('key', '?')}@{s3.get('version') or s3.get('eTag') or 'latest'}"
    if kind == "GitHub":
        return str(revision.get("gitHubLocation", {}).get("commitId", "?"))[:12]
    return json.dumps(revision, sort_keys=True)[:60]


def canary_minutes(longest_window_seconds: int) -> int:
    """The canary interval (whole minutes, as TimeBasedCanary takes it) that outlasts a verification window."""
    return max(1, -(-(longest_window_seconds + CANARY_MARGIN_SECONDS) // 60))


def canary_config_name(platform: str, minutes: int) -> str:
    return f"Rollguard-{platform}Canary{CANARY_PERCENT}Percent{minutes}Minutes"


def retarget(revision: dict[str, Any], live_label: str) -> dict[str, Any]:
    """The revision to deploy to go back to ``revision`` from what is live now.

    A Lambda AppSpec names the alias's current version as well as the target, and CodeDeploy fails the deployment
    (INVALID_LAMBDA_CONFIGURATION) unless CurrentVersion is the alias's version. The last-known-good deployment's
    AppSpec names the version that was current back then, so Rollguard rewrites it to the version live now, for
    ``AppSpecContent`` and ``String`` revisions alike (both carry the AppSpec inline). Other types are deployed as
    they are.
    """
    kind = revision.get("revisionType")
    if kind not in {"AppSpecContent", "String"}:
        return revision
    key = "appSpecContent" if kind == "AppSpecContent" else "string"
    spec = _load_appspec(revision.get(key, {}).get("content", ""))
    changed = False
    for resource in spec.get("Resources", []):
        for body in resource.values():
            props = body.get("Properties", {}) if isinstance(body, dict) else {}
            if "TargetVersion" in props and "CurrentVersion" in props:
                props["CurrentVersion"] = live_label
                changed = True
    if not changed:
        return revision
    return {"revisionType": kind, key: {"content": json.dumps(spec)}}


def to_ref(info: dict[str, Any]) -> DeploymentRef:
    return DeploymentRef(
        deployment_id=info["deploymentId"],
        status=info.get("status", "Unknown"),
        revision=info.get("revision") or {},
        revision_label=revision_label(info.get("revision") or {}),
        create_time=aws_iso(info.get("createTime")) or "",
        complete_time=aws_iso(info.get("completeTime")),
        compute_platform=info.get("computePlatform", "Server"),
        creator=info.get("creator", "user"),
        description=info.get("description") or "",
    )


class CodeDeploy:
    def __init__(self, client: Any):
        self._cd = client

    def deployment_group(self, application: str, group: str) -> dict[str, Any]:
        try:
            return dict(
                self._cd.get_deployment_group(applicationName=application, deploymentGroupName=group)[
                    "deploymentGroupInfo"
                ]
            )
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading deployment group {application}/{group}", _NOT_FOUND) from exc

    def deployments(self, application: str, group: str, since: datetime | None = None) -> list[DeploymentRef]:
        """Deployments of the group (created after ``since`` if given), newest first."""
        kwargs: dict[str, Any] = {"applicationName": application, "deploymentGroupName": group}
        if since is not None:
            kwargs["createTimeRange"] = {"start": since}
        try:
            ids: list[str] = []
            for page in self._cd.get_paginator("list_deployments").paginate(**kwargs):
                ids.extend(page["deployments"])
            infos: list[dict[str, Any]] = []
            for i in range(0, len(ids), 25):
                infos.extend(self._cd.batch_get_deployments(deploymentIds=ids[i : i + 25])["deploymentsInfo"])
        except AWS_FAILURES as exc:
            raise translate(exc, f"listing deployments of {application}/{group}", _NOT_FOUND) from exc
        return sorted((to_ref(i) for i in infos), key=lambda d: d.create_time, reverse=True)

    def get(self, deployment_id: str) -> dict[str, Any]:
        try:
            return dict(self._cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"])
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading deployment {deployment_id}", _NOT_FOUND) from exc

    def stop(self, deployment_id: str, auto_rollback: bool) -> str:
        try:
            response = self._cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=auto_rollback)
        except AWS_FAILURES as exc:
            raise translate(exc, f"stopping deployment {deployment_id}", _NOT_FOUND, RollbackFailed) from exc
        return str(response.get("status", "Pending"))

    def ensure_canary_config(self, platform: str, minutes: int) -> str:
        """Rollguard's canary configuration for ``platform`` with this interval, created once per account and
        region and reused (CreateDeploymentConfig; TimeBasedCanary, "Deployment configurations in CodeDeploy")."""
        if platform == "Server":
            return SERVER_CANARY_CONFIG
        name = canary_config_name(platform, minutes)
        try:
            self._cd.create_deployment_config(
                deploymentConfigName=name,
                computePlatform=platform,
                trafficRoutingConfig={
                    "type": "TimeBasedCanary",
                    "timeBasedCanary": {"canaryPercentage": CANARY_PERCENT, "canaryInterval": minutes},
                },
            )
        except AWS_FAILURES as exc:
            if error_code(exc) != "DeploymentConfigAlreadyExistsException":
                raise translate(exc, f"creating deployment configuration {name}", _NOT_FOUND, RollbackFailed) from exc
        return name

    def canary_end(self, deployment: dict[str, Any]) -> datetime | None:
        """When a TimeBasedCanary deployment shifts the rest: its start plus its configuration's canary interval."""
        minutes = self.canary_interval(str(deployment.get("deploymentConfigName", "")))
        started = deployment.get("startTime") or deployment.get("createTime")
        if minutes is None or started is None:
            return None
        start = started if isinstance(started, datetime) else parse_aws_time(str(started))
        return start + timedelta(minutes=minutes)

    def canary_interval(self, config: str) -> int | None:
        """The minutes a TimeBasedCanary configuration waits before shifting the rest (GetDeploymentConfig);
        None for any other kind of configuration."""
        try:
            info = self._cd.get_deployment_config(deploymentConfigName=config)["deploymentConfigInfo"]
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading deployment configuration {config}", _NOT_FOUND) from exc
        routing = info.get("trafficRoutingConfig") or {}
        if routing.get("type") != "TimeBasedCanary":
            return None
        return int(routing["timeBasedCanary"]["canaryInterval"])

    def deploy(
        self,
        application: str,
        group: str,
        revision: dict[str, Any],
        config: str,
        description: str,
        override_alarms: dict[str, Any] | None = None,
    ) -> str:
        """CreateDeployment; ``override_alarms`` replaces the group's alarm configuration for this deployment."""
        extra = {"overrideAlarmConfiguration": override_alarms} if override_alarms is not None else {}
        try:
            response = self._cd.create_deployment(
                applicationName=application,
                deploymentGroupName=group,
                revision=revision,
                deploymentConfigName=config,
                description=description[:250],
                **extra,
            )
        except AWS_FAILURES as exc:
            raise translate(exc, f"deploying {config} to {application}/{group}", _NOT_FOUND, RollbackFailed) from exc
        return str(response["deploymentId"])
