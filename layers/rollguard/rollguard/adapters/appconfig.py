"""AppConfig: hosted configuration versions and deployments, per region, addressed by names.

Waits poll GetDeployment on the domain clock and end at the earlier of their own cap and the adapter's
``deadline`` (the invocation's remaining time, less what the caller needs afterwards: see ``until``), so a
Lambda function that waits never runs past its timeout with its change made and nothing recorded.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rollguard import clock
from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.errors import AppConfigConflict, AppConfigWaitTimedOut, ConfigRejected, RollguardError, TargetNotFound

LIVE = {"BAKING", "COMPLETE"}  # AppConfig serves the new version to everyone from BAKING on
# An environment takes one deployment at a time: while one is in any of these states, StartDeployment is a
# ConflictException ("StartDeployment", AppConfig API reference). VALIDATING precedes DEPLOYING when the
# profile has validators; ROLLING_BACK follows a StopDeployment, which is accepted (202), not finished.
ACTIVE = {"VALIDATING", "DEPLOYING", "BAKING", "ROLLING_BACK"}
STOPPED = {"ROLLED_BACK", "REVERTED"}
LIVE_WAIT_S = 60.0  # Rollguard's own strategy deploys at once and does not bake: live within seconds
STOP_WAIT_S = 60.0  # a stopped deployment rolling back (AppConfig documents no duration for ROLLING_BACK)
POLL_S = 1.0


# CreateHostedConfigurationVersion sends Description as an HTTP header (its "location": "header" in the API model), and
# a header carries ISO-8859-1 at most (http.client encodes it so; RFC 9110 5.5): an em dash there fails in the SDK
# before AWS sees the request. The summary's punctuation is written in ASCII for it.
_HEADER_SAFE = str.maketrans({"\u2014": "-", "\u2013": "-", "\u2192": "->", "\u00b7": "*", "\u2026": "..."})


def header_text(text: str) -> str:
    return text.translate(_HEADER_SAFE).encode("ascii", "replace").decode("ascii")


@dataclass(frozen=True)
class ProfileIds:
    region: str
    application_id: str
    environment_id: str
    profile_id: str
    profile_type: str


@dataclass(frozen=True)
class Active:
    """The deployment that holds an environment (DEPLOYING, BAKING, ...), of whichever profile."""

    region: str
    number: int
    profile_id: str
    profile_name: str
    version: int
    state: str
    description: str

    def describe(self) -> str:
        return f"deployment {self.number} of {self.profile_name} version {self.version} ({self.state})"


class AppConfig:
    def __init__(self, client_for: Callable[[str], Any], deadline: datetime | None = None):
        self._client_for = client_for
        self.deadline = deadline

    def until(self, deadline: datetime | None) -> "AppConfig":
        """The same adapter with every wait ending by ``deadline`` (None: only the waits' own caps)."""
        return AppConfig(self._client_for, deadline)

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else (self.deadline - clock.now()).total_seconds()

    def require_time(self, doing: str, region: str, needed_s: float = 5.0) -> None:
        """Refuse to start a change that could not be seen through before the deadline."""
        left = self.seconds_left()
        if left is not None and left < needed_s:
            raise AppConfigWaitTimedOut(
                f"not started: {doing} in {region}: {max(left, 0):.0f}s of the invocation left, need {needed_s:.0f}s"
            )

    def _call(self, region: str, operation: str, doing: str, **params: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self._client_for(region), operation)(**params))
        except AWS_FAILURES as exc:
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
            Description=header_text(description)[:1024],
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

    def _wait(self, ids: ProfileIds, number: int, done: set[str], fail: set[str], what: str, cap_s: float) -> str:
        """Poll deployment ``number`` until its state is in ``done`` (that state) or in ``fail`` (an error).
        Ends at the earlier of ``cap_s`` from now and the adapter's deadline, with AppConfigWaitTimedOut naming
        the state the deployment is in."""
        started = clock.now()
        end = started + timedelta(seconds=cap_s)
        if self.deadline is not None and self.deadline < end:
            end = self.deadline
        while True:
            state = str(self.deployment(ids, number).get("State"))
            if state in done:
                return state
            if state in fail:
                raise RollguardError(f"AppConfig rolled deployment {number} back in {ids.region} ({state})")
            now = clock.now()
            if now >= end:
                waited = (now - started).total_seconds()
                raise AppConfigWaitTimedOut(
                    f"deployment {number} still {state} in {ids.region} after {waited:.0f}s waiting for it "
                    f"to be {what}"
                    + (" (the invocation's time is up)" if self.deadline is not None and end == self.deadline else "")
                )
            clock.sleep(min(POLL_S, (end - now).total_seconds()))  # AppConfig reports progress, it does not push it

    def wait_live(self, ids: ProfileIds, number: int, cap_s: float = LIVE_WAIT_S) -> str:
        """Poll until the deployment serves everyone (BAKING/COMPLETE); its state. A rollback is an error."""
        return self._wait(ids, number, LIVE, STOPPED | {"ROLLING_BACK"}, "live", cap_s)

    def wait_stopped(self, ids: ProfileIds, number: int, cap_s: float = STOP_WAIT_S) -> str:
        """Poll until a stopped deployment no longer holds the environment; its final state (ROLLED_BACK, or
        REVERTED, or COMPLETE when it finished before the stop reached it)."""
        return self._wait(ids, number, STOPPED | {"COMPLETE"}, set(), "rolled back", cap_s)

    def _newest_first(self, ids: ProfileIds) -> list[dict[str, Any]]:
        """The environment's deployments (list items), newest first."""
        items = self._items(
            ids.region,
            "list_deployments",
            "listing deployments",
            ApplicationId=ids.application_id,
            EnvironmentId=ids.environment_id,
        )
        return sorted(items, key=lambda i: int(i["DeploymentNumber"]), reverse=True)

    def active(self, ids: ProfileIds) -> Active | None:
        """The environment's deployment in progress, of any profile (AppConfig allows one at a time)."""
        items = self._newest_first(ids)
        for item in items:
            if item.get("State") in ACTIVE:
                full = self.deployment(ids, int(item["DeploymentNumber"]))
                return Active(
                    ids.region,
                    int(full["DeploymentNumber"]),
                    str(full.get("ConfigurationProfileId", "")),
                    str(full.get("ConfigurationName", full.get("ConfigurationProfileId", ""))),
                    int(full.get("ConfigurationVersion", 0)),
                    str(full.get("State")),
                    str(full.get("Description", "")),
                )
        return None

    def live_version(self, ids: ProfileIds) -> int | None:
        """The version of this profile the environment serves: that of its newest live deployment."""
        items = self._newest_first(ids)
        for item in items:
            if item.get("State") not in LIVE:
                continue
            profile = item.get("ConfigurationProfileId") or self.deployment(ids, int(item["DeploymentNumber"])).get(
                "ConfigurationProfileId"
            )
            if profile == ids.profile_id:
                return int(item["ConfigurationVersion"])
        return None

    def deployments(self, ids: ProfileIds) -> list[dict[str, Any]]:
        """The environment's deployments of this profile, newest first (with their configuration versions)."""
        items = self._newest_first(ids)
        mine = []
        for item in items:
            full = self.deployment(ids, int(item["DeploymentNumber"]))
            if full.get("ConfigurationProfileId") == ids.profile_id:
                mine.append(full)
        return mine

    def stop(self, ids: ProfileIds, number: int) -> str:
        """Stop a deployment so that AppConfig rolls it back; the state it answers (ROLLING_BACK, or REVERTED).

        AllowRevert is always sent. StopDeployment "works only on deployments that have a status of DEPLOYING,
        unless an AllowRevert parameter is supplied"; with it an in-progress deployment (BAKING included) is
        ROLLED_BACK and a completed one is REVERTED ("StopDeployment", API reference; "Reverting a
        configuration", user guide). Rollguard stops a deployment only to undo it, so one that completed
        between the read and the stop is reverted, which is the same intent."""
        response = self._call(
            ids.region,
            "stop_deployment",
            f"stopping deployment {number}",
            ApplicationId=ids.application_id,
            EnvironmentId=ids.environment_id,
            DeploymentNumber=number,
            AllowRevert=True,
        )
        return str(response.get("State", ""))
