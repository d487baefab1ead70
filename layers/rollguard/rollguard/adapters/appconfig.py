"""AppConfig: hosted configuration versions and deployments, per region, addressed by names."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from rollguard import clock
from rollguard.adapters.aws_errors import error_code, translate
from rollguard.errors import AppConfigConflict, ConfigRejected, RollguardError, TargetNotFound

LIVE = {"BAKING", "COMPLETE"}  # AppConfig serves the new version to everyone from BAKING on
IN_PROGRESS = {"DEPLOYING", "BAKING"}


@dataclass(frozen=True)
class ProfileIds:
    region: str
    application_id: str
    environment_id: str
    profile_id: str
    profile_type: str


class AppConfig:
    def __init__(self, client_for: Callable[[str], Any]):
        self._client_for = client_for

    def _call(self, region: str, operation: str, doing: str, **params: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self._client_for(region), operation)(**params))
        except ClientError as exc:
            code = error_code(exc)
            if code == "ConflictException":
                raise AppConfigConflict(f"{doing} in {region}: {exc.response['Error'].get('Message', '')}") from exc
            if code == "BadRequestException":
                raise ConfigRejected(f"{doing} in {region}: {exc.response['Error'].get('Message', '')}") from exc
            raise translate(exc, f"{doing} in {region}", frozenset({"ResourceNotFoundException"})) from exc

    def _items(self, region: str, operation: str, doing: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._call(region, operation, doing, **params)
            items.extend(page.get("Items", []))
            if not page.get("NextToken"):
                return items
            params["NextToken"] = page["NextToken"]

    def resolve(self, region: str, application: str, environment: str, profile: str) -> ProfileIds:
        """Names to ids (names are what policies use; ids are what the API wants)."""

        def pick(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any]:
            for item in items:
                if item.get("Name") == name or item.get("Id") == name:
                    return item
            raise TargetNotFound(f"AppConfig {what} {name!r} not found in {region}")

        app = pick(self._items(region, "list_applications", "listing applications"), application, "application")
        env = pick(
            self._items(region, "list_environments", "listing environments", ApplicationId=app["Id"]),
            environment,
            f"environment of {application}",
        )
        prof = pick(
            self._items(region, "list_configuration_profiles", "listing profiles", ApplicationId=app["Id"]),
            profile,
            f"configuration profile of {application}",
        )
        return ProfileIds(region, app["Id"], env["Id"], prof["Id"], prof.get("Type", "AWS.Freeform"))

    def strategy_id(self, region: str, name: str) -> str:
        for item in self._items(region, "list_deployment_strategies", "listing deployment strategies"):
            if item["Name"] == name or item["Id"] == name:
                return str(item["Id"])
        raise TargetNotFound(
            f"AppConfig deployment strategy {name!r} not found in {region} "
            "(deploy Rollguard's stack, or its strategy, in that region)"
        )

    def latest_version(self, ids: ProfileIds) -> int:
        items = self._items(
            ids.region,
            "list_hosted_configuration_versions",
            "listing hosted versions",
            ApplicationId=ids.application_id,
            ConfigurationProfileId=ids.profile_id,
        )
        if not items:
            raise TargetNotFound(f"profile {ids.profile_id} has no hosted configuration version in {ids.region}")
        return max(int(i["VersionNumber"]) for i in items)

    def content(self, ids: ProfileIds, version: int) -> tuple[bytes, str]:
        response = self._call(
            ids.region,
            "get_hosted_configuration_version",
            f"reading version {version}",
            ApplicationId=ids.application_id,
            ConfigurationProfileId=ids.profile_id,
            VersionNumber=version,
        )
        return response["Content"].read(), str(response.get("ContentType", "application/json"))

    def create_version(self, ids: ProfileIds, content: bytes, content_type: str, latest: int, description: str) -> int:
        response = self._call(
            ids.region,
            "create_hosted_configuration_version",
            "writing a new version",
            ApplicationId=ids.application_id,
            ConfigurationProfileId=ids.profile_id,
            Content=content,
            ContentType=content_type,
            LatestVersionNumber=latest,
            Description=description[:1024],
        )
        return int(response["VersionNumber"])

    def deploy(self, ids: ProfileIds, strategy_id: str, version: int, description: str) -> int:
        response = self._call(
            ids.region,
            "start_deployment",
            f"deploying version {version}",
            ApplicationId=ids.application_id,
            EnvironmentId=ids.environment_id,
            DeploymentStrategyId=strategy_id,
            ConfigurationProfileId=ids.profile_id,
            ConfigurationVersion=str(version),
            Description=description[:1024],
        )
        return int(response["DeploymentNumber"])

    def deployment(self, ids: ProfileIds, number: int) -> dict[str, Any]:
        return self._call(
            ids.region,
            "get_deployment",
            f"reading deployment {number}",
            ApplicationId=ids.application_id,
            EnvironmentId=ids.environment_id,
            DeploymentNumber=number,
        )

    def wait_live(self, ids: ProfileIds, number: int, timeout_s: float = 60.0) -> str:
        """Poll until the deployment serves everyone (BAKING/COMPLETE); its state. A rollback is an error."""
        deadline = clock.now() + timedelta(seconds=timeout_s)
        while True:
            state = str(self.deployment(ids, number).get("State"))
            if state in LIVE:
                return state
            if state == "ROLLED_BACK":
                raise RollguardError(f"AppConfig rolled deployment {number} back in {ids.region}")
            if clock.now() > deadline:
                raise RollguardError(f"deployment {number} still {state} after {timeout_s:.0f}s in {ids.region}")
            clock.sleep(1)  # AppConfig reports progress, it does not push it

    def deployments(self, ids: ProfileIds) -> list[dict[str, Any]]:
        """The environment's deployments of this profile, newest first (with their configuration versions)."""
        items = self._items(
            ids.region,
            "list_deployments",
            "listing deployments",
            ApplicationId=ids.application_id,
            EnvironmentId=ids.environment_id,
        )
        mine = []
        for item in sorted(items, key=lambda i: int(i["DeploymentNumber"]), reverse=True):
            full = self.deployment(ids, int(item["DeploymentNumber"]))
            if full.get("ConfigurationProfileId") == ids.profile_id:
                mine.append(full)
        return mine

    def stop(self, ids: ProfileIds, number: int) -> None:
        self._call(
            ids.region,
            "stop_deployment",
            f"stopping deployment {number}",
            ApplicationId=ids.application_id,
            EnvironmentId=ids.environment_id,
            DeploymentNumber=number,
        )
