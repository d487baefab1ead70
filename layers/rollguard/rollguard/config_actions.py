"""AppConfig actions: flip a feature flag, revert a configuration profile, in every region of the target.

Each region is changed and checked on its own; the results say, per region, what was done (and the
version it replaced, so the action can be undone) or why it failed.

AppConfig takes one deployment per environment at a time, BAKING included ("StartDeployment": a
ConflictException), and the change that tripped the alarm is often still baking when the alarm fires. So
every action first makes way (``make_way``): a deployment of the same profile in progress is stopped, which
rolls it back, and waited for; one of another profile is someone else's change and is left alone, and the
action fails naming it. What was stopped is part of the region's result, and so of the audit event.
"""

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollguard.adapters.appconfig import ACTIVE, STOPPED, AppConfig, ProfileIds
from rollguard.errors import (
    AppConfigConflict,
    ConfigRejected,
    FlagNotFound,
    NothingToRollBack,
    PartiallyFailed,
    RollguardError,
)
from rollguard.journal import FEATURE_FLAGS
from rollguard.policy import FlagRef, ProfileRef

if TYPE_CHECKING:
    from rollguard.actions.base import StepOutcome
    from rollguard.incident import ExecutionState


@dataclass(frozen=True)
class Stopped:
    """A deployment Rollguard stopped (or found rolling back) to make way for its own."""

    number: int
    version: int
    state: str  # what it was doing when Rollguard found it: DEPLOYING, BAKING, ...
    outcome: str  # what it ended as: ROLLED_BACK, REVERTED (or COMPLETE if it finished before the stop)
    by_rollguard: bool = True

    def describe(self) -> str:
        verb = "stopped" if self.by_rollguard else "waited for"
        return f"{verb} deployment {self.number} of version {self.version} while {self.state} ({self.outcome})"

    def record(self) -> dict[str, Any]:
        return {
            "deployment_number": self.number,
            "version": self.version,
            "state": self.state,
            "outcome": self.outcome,
            "by_rollguard": self.by_rollguard,
        }


@dataclass
class RegionResult:
    region: str
    ok: bool
    detail: str
    previous_version: int | None = None
    new_version: int | None = None
    deployment_number: int | None = None
    error: RollguardError | None = None
    stopped: Stopped | None = None

    def record(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "ok": self.ok,
            "detail": self.detail,
            "previous_version": self.previous_version,
            "new_version": self.new_version,
            "deployment_number": self.deployment_number,
            "stopped": self.stopped.record() if self.stopped else None,
        }


def make_way(appconfig: AppConfig, ids: ProfileIds, doing: str) -> Stopped | None:
    """Free the environment for a deployment of ``ids``' profile: stop the environment's deployment in progress
    if it is of this profile (AppConfig rolls it back) and wait until it no longer holds the environment.

    A deployment of another profile is not Rollguard's to stop: AppConfigConflict names it."""
    active = appconfig.active(ids)
    if active is None:
        return None
    if active.profile_id != ids.profile_id:
        raise AppConfigConflict(
            f"{doing} in {ids.region}: {active.describe()} holds the environment, and AppConfig takes one "
            "deployment at a time; Rollguard does not stop another profile's deployment"
        )
    by_rollguard = active.state != "ROLLING_BACK"  # someone already stopped it: wait for the rollback
    if by_rollguard:
        appconfig.require_time(f"stopping deployment {active.number}", ids.region)
        appconfig.stop(ids, active.number)
    outcome = appconfig.wait_stopped(ids, active.number)
    return Stopped(active.number, active.version, active.state, outcome, by_rollguard)


def _with_stop(stopped: Stopped | None, detail: str) -> str:
    return f"{stopped.describe()}; {detail}" if stopped else detail


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
        doing = f"turning {ref.name} {verb}"
        appconfig.require_time(doing, region)
        ids = appconfig.resolve(region, ref.application, ref.environment, ref.profile)
        if ids.profile_type != FEATURE_FLAGS:
            raise ConfigRejected(f"profile {ref.profile} is {ids.profile_type}, not a feature flag profile")
        latest = appconfig.latest_version(ids)
        content, content_type = appconfig.content(ids, latest)
        document = json.loads(content)
        if ref.name not in document.get("flags", {}):
            raise FlagNotFound(f"flag {ref.name!r} is not defined in {ref.profile} version {latest} ({region})")
        values = document.setdefault("values", {})
        wanted = values.get(ref.name, {}).get("enabled") is enabled
        active = appconfig.active(ids)
        if (
            wanted
            and active is not None
            and active.profile_id == ids.profile_id
            and active.version == latest
            and active.state != "ROLLING_BACK"
        ):
            # Already on its way (a retried step whose deployment outlived the last invocation): see it through.
            state = appconfig.wait_live(ids, active.number)
            return RegionResult(
                region,
                True,
                f"{ref.name} already {verb} in version {latest}, deployment {active.number} {state}",
                latest,
                latest,
                active.number,
            )
        stopped = make_way(appconfig, ids, doing)
        if wanted:
            live = appconfig.live_version(ids)
            if live == latest:
                detail = f"{ref.name} already {verb} in version {latest}"
                return RegionResult(region, True, _with_stop(stopped, detail), latest, latest, stopped=stopped)
            # The newest version has the flag as wanted but is not what is served (a stop rolled it back, or an
            # earlier attempt wrote it and did not deploy it): deploy it as it is.
            description = f"Rollguard: {ref.name} {verb} — {why}"
            number = appconfig.deploy(ids, appconfig.strategy_id(region, strategy), latest, description)
            state = appconfig.wait_live(ids, number)
            detail = f"{ref.name} {verb}: version {live} → {latest}, deployment {number} {state}"
            return RegionResult(region, True, _with_stop(stopped, detail), live, latest, number, stopped=stopped)
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
            stopped,
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
    stopped: Stopped | None = None,
) -> RegionResult:
    appconfig.require_time(f"deploying {what}", ids.region)
    new = appconfig.create_version(ids, json.dumps(document).encode(), content_type, latest, description)
    number = appconfig.deploy(ids, appconfig.strategy_id(ids.region, strategy), new, description)
    state = appconfig.wait_live(ids, number)
    detail = _with_stop(stopped, f"{what}: version {latest} → {new}, deployment {number} {state}")
    return RegionResult(ids.region, True, detail, latest, new, number, stopped=stopped)


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

    def history_of(ids: ProfileIds) -> list[dict[str, Any]]:
        history = appconfig.deployments(ids)
        if before_deployment is not None:
            history = [d for d in history if int(d["DeploymentNumber"]) <= before_deployment]
        if not history:
            raise NothingToRollBack(f"no deployment of {ref.profile} to {ref.environment} in {ids.region}")
        return history

    def change(region: str) -> RegionResult:
        doing = f"reverting {ref.profile}"
        appconfig.require_time(doing, region)
        ids = appconfig.resolve(region, ref.application, ref.environment, ref.profile)
        history = history_of(ids)
        latest = history[0]
        number, version = int(latest["DeploymentNumber"]), int(latest["ConfigurationVersion"])
        stopped = make_way(appconfig, ids, doing)
        if stopped is not None:
            if stopped.number == number and stopped.outcome in STOPPED:
                detail = f"{stopped.describe()}: AppConfig put the previous version back"
                return RegionResult(region, True, detail, version, None, number, stopped=stopped)
            history = history_of(ids)  # the stop changed states: read them again
            latest = history[0]
            number, version = int(latest["DeploymentNumber"]), int(latest["ConfigurationVersion"])
        if latest["State"] in ACTIVE:  # someone started a deployment meanwhile
            raise AppConfigConflict(f"{doing} in {region}: deployment {number} is {latest['State']}")
        earlier = next(
            (d for d in history[1:] if d["State"] == "COMPLETE" and int(d["ConfigurationVersion"]) != version), None
        )
        if earlier is None:
            raise NothingToRollBack(f"{ref.profile} has no earlier completed version than {version} in {region}")
        previous = int(earlier["ConfigurationVersion"])
        description = f"Rollguard: revert {ref.profile} to version {previous} — {why}"
        appconfig.require_time(f"redeploying version {previous}", region)
        deployed = appconfig.deploy(ids, appconfig.strategy_id(region, strategy), previous, description)
        state = appconfig.wait_live(ids, deployed)
        detail = _with_stop(stopped, f"redeployed version {previous} over {version}, deployment {deployed} {state}")
        return RegionResult(region, True, detail, version, previous, deployed, stopped=stopped)

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
            doing = f"undoing: back to version {result.previous_version}"
            appconfig.require_time(doing, result.region)
            ids = appconfig.resolve(result.region, ref.application, ref.environment, ref.profile)
            stopped = make_way(appconfig, ids, doing)
            description = f"Rollguard: undo — back to version {result.previous_version} ({why})"
            number = appconfig.deploy(
                ids, appconfig.strategy_id(result.region, strategy), result.previous_version, description
            )
            state = appconfig.wait_live(ids, number)
            detail = f"redeployed version {result.previous_version}, deployment {number} {state}"
            undone.append(
                RegionResult(
                    result.region,
                    True,
                    _with_stop(stopped, detail),
                    result.new_version,
                    result.previous_version,
                    number,
                    stopped=stopped,
                )
            )
        except RollguardError as exc:
            undone.append(RegionResult(result.region, False, f"{type(exc).__name__}: {exc}", error=exc))
    return undone


def config_outcome(action: str, what: str, results: list[RegionResult], reverted: str | None = None) -> "StepOutcome":
    """The step's outcome once every region succeeded (else PartiallyFailed, naming each region's result)."""
    from rollguard.actions.base import StepOutcome

    require_success(f"{action} {what}", results)
    where = "; ".join(f"{r.region}: {r.detail}" for r in results)
    return StepOutcome(
        action=action,
        scope="full",
        detail=f"{action} — {where}",
        reverted=reverted,
        regions=[r.record() for r in results],
    )


def why(state: "ExecutionState") -> str:
    """The description AppConfig deployments Rollguard starts carry."""
    return f"incident {state.incident_id} ({state.alarm.name})"
