"""AppConfig actions: flip a feature flag, revert a configuration profile, in every region of the target.

Each region is changed and checked on its own; the results say, per region, what was done (and the
version it replaced, so the action can be undone) or why it failed.
"""

import json
from dataclasses import dataclass
from typing import Any

from rollguard.adapters.appconfig import IN_PROGRESS, AppConfig, ProfileIds
from rollguard.errors import ConfigRejected, FlagNotFound, NothingToRollBack, PartiallyFailed, RollguardError
from rollguard.journal import FEATURE_FLAGS
from rollguard.policy import FlagRef, ProfileRef


@dataclass
class RegionResult:
    region: str
    ok: bool
    detail: str
    previous_version: int | None = None
    new_version: int | None = None
    deployment_number: int | None = None
    error: RollguardError | None = None

    def record(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "ok": self.ok,
            "detail": self.detail,
            "previous_version": self.previous_version,
            "new_version": self.new_version,
            "deployment_number": self.deployment_number,
        }


def regions(ref: ProfileRef, home: str) -> list[str]:
    return list(ref.regions) or [home]


def _each_region(names: list[str], change: Any) -> list[RegionResult]:
    results = []
    for region in names:
        try:
            results.append(change(region))
        except RollguardError as exc:
            results.append(RegionResult(region, False, f"{type(exc).__name__}: {exc}", error=exc))
    return results


def require_success(what: str, results: list[RegionResult]) -> None:
    """Every region succeeded, or a named error: the original one for a single region, else a per-region list."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return
    if len(results) == 1 and failed[0].error is not None:
        raise failed[0].error
    raise PartiallyFailed(
        f"{what}: " + "; ".join(f"{r.region}: {'ok' if r.ok else 'FAILED'} — {r.detail}" for r in results)
    )


def set_flag(
    appconfig: AppConfig,
    ref: FlagRef,
    enabled: bool,
    strategy: str,
    home: str,
    why: str,
    only_regions: list[str] | None = None,
) -> list[RegionResult]:
    """A new hosted version with the flag's ``enabled`` changed (everything else untouched), deployed."""
    verb = "on" if enabled else "off"

    def change(region: str) -> RegionResult:
        ids = appconfig.resolve(region, ref.application, ref.environment, ref.profile)
        if ids.profile_type != FEATURE_FLAGS:
            raise ConfigRejected(f"profile {ref.profile} is {ids.profile_type}, not a feature flag profile")
        latest = appconfig.latest_version(ids)
        content, content_type = appconfig.content(ids, latest)
        document = json.loads(content)
        if ref.name not in document.get("flags", {}):
            raise FlagNotFound(f"flag {ref.name!r} is not defined in {ref.profile} version {latest} ({region})")
        values = document.setdefault("values", {})
        if values.get(ref.name, {}).get("enabled") is enabled:
            return RegionResult(region, True, f"{ref.name} already {verb} in version {latest}", latest, latest)
        values[ref.name] = {**values.get(ref.name, {}), "enabled": enabled}
        return _deploy_new(
            appconfig,
            ids,
            document,
            content_type,
            latest,
            strategy,
            f"Rollguard: {ref.name} {verb} — {why}",
            f"{ref.name} {verb}",
        )

    return _each_region(only_regions or regions(ref, home), change)


def _deploy_new(
    appconfig: AppConfig,
    ids: ProfileIds,
    document: Any,
    content_type: str,
    latest: int,
    strategy: str,
    description: str,
    what: str,
) -> RegionResult:
    new = appconfig.create_version(ids, json.dumps(document).encode(), content_type, latest, description)
    number = appconfig.deploy(ids, appconfig.strategy_id(ids.region, strategy), new, description)
    state = appconfig.wait_live(ids, number)
    return RegionResult(
        ids.region, True, f"{what}: version {latest} → {new}, deployment {number} {state}", latest, new, number
    )


def revert_profile(
    appconfig: AppConfig,
    ref: ProfileRef,
    strategy: str,
    home: str,
    why: str,
    only_regions: list[str] | None = None,
    before_deployment: int | None = None,
) -> list[RegionResult]:
    """Stop a deployment in progress (AppConfig rolls it back), or redeploy the version live before the latest
    (or before ``before_deployment``)."""

    def change(region: str) -> RegionResult:
        ids = appconfig.resolve(region, ref.application, ref.environment, ref.profile)
        history = appconfig.deployments(ids)
        if before_deployment is not None:
            history = [d for d in history if int(d["DeploymentNumber"]) <= before_deployment]
        if not history:
            raise NothingToRollBack(f"no deployment of {ref.profile} to {ref.environment} in {region}")
        latest = history[0]
        number, version = int(latest["DeploymentNumber"]), int(latest["ConfigurationVersion"])
        if latest["State"] in IN_PROGRESS:
            appconfig.stop(ids, number)
            return RegionResult(
                region,
                True,
                f"stopped deployment {number} of version {version}: AppConfig rolls back",
                version,
                None,
                number,
            )
        earlier = next(
            (d for d in history[1:] if d["State"] == "COMPLETE" and int(d["ConfigurationVersion"]) != version), None
        )
        if earlier is None:
            raise NothingToRollBack(f"{ref.profile} has no earlier completed version than {version} in {region}")
        previous = int(earlier["ConfigurationVersion"])
        description = f"Rollguard: revert {ref.profile} to version {previous} — {why}"
        deployed = appconfig.deploy(ids, appconfig.strategy_id(region, strategy), previous, description)
        state = appconfig.wait_live(ids, deployed)
        return RegionResult(
            region,
            True,
            f"redeployed version {previous} over {version}, deployment {deployed} {state}",
            version,
            previous,
            deployed,
        )

    return _each_region(only_regions or regions(ref, home), change)


def flipped_flags(appconfig: AppConfig, ids: ProfileIds, version: int, deployment_number: int) -> dict[str, bool]:
    """Flags whose ``enabled`` a deployment changed: name → the value before it."""
    history = [
        d
        for d in appconfig.deployments(ids)
        if int(d["DeploymentNumber"]) < deployment_number and d["State"] == "COMPLETE"
    ]
    if not history:
        raise NothingToRollBack(f"no completed deployment before {deployment_number} to compare with")
    before = json.loads(appconfig.content(ids, int(history[0]["ConfigurationVersion"]))[0]).get("values", {})
    after = json.loads(appconfig.content(ids, version)[0]).get("values", {})
    return {
        name: bool(before.get(name, {}).get("enabled", False))
        for name in set(before) | set(after)
        if bool(before.get(name, {}).get("enabled", False)) != bool(after.get(name, {}).get("enabled", False))
    }


def undo(
    appconfig: AppConfig, ref: ProfileRef, results: list[RegionResult], strategy: str, why: str
) -> list[RegionResult]:
    """Put back what an action replaced: redeploy each changed region's previous version."""
    undone = []
    for result in results:
        if not result.ok or result.previous_version is None or result.previous_version == result.new_version:
            continue
        try:
            ids = appconfig.resolve(result.region, ref.application, ref.environment, ref.profile)
            description = f"Rollguard: undo — back to version {result.previous_version} ({why})"
            number = appconfig.deploy(
                ids, appconfig.strategy_id(result.region, strategy), result.previous_version, description
            )
            state = appconfig.wait_live(ids, number)
            undone.append(
                RegionResult(
                    result.region,
                    True,
                    f"redeployed version {result.previous_version}, deployment {number} {state}",
                    result.new_version,
                    result.previous_version,
                    number,
                )
            )
        except RollguardError as exc:
            undone.append(RegionResult(result.region, False, f"{type(exc).__name__}: {exc}", error=exc))
    return undone
