"""Flag and config actions while a deployment holds the environment, and within the invocation's time.

AppConfig takes one deployment per environment, BAKING included, and the bad change is often still baking
when its alarm fires: the action stops it (AppConfig rolls it back), waits, then deploys its own change,
and says what it stopped. Every wait ends by the adapter's deadline with an error naming the state.
"""

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from rollguard import clients
from rollguard.adapters.appconfig import AppConfig
from rollguard.config_actions import require_success, revert_profile, set_flag, undo
from rollguard.errors import AppConfigConflict, AppConfigWaitTimedOut
from rollguard.policy import FlagRef, ProfileRef
from rollguard.runtime import invocation_deadline
from rollguard_cli.drills import FLAGS, SETTINGS
from rollguard_cli.sandbox.runner import Sandbox

from tests.conftest import context
from tests.functional.test_config_actions import STRATEGY, deployed, provision

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)

REGION = "us-east-1"
FLAG = FlagRef(application="checkout", environment="prod", profile="checkout-flags", name="new-pricing")
SETTINGS_REF = ProfileRef(application="checkout", environment="prod", profile="checkout-settings")


@pytest.fixture
def ids(sandbox: Sandbox) -> dict[str, str]:
    return provision(REGION)


def adapter(sb: Sandbox, seconds: float | None = None) -> AppConfig:
    deadline = sb.clock.now() + timedelta(seconds=seconds) if seconds is not None else None
    return AppConfig(lambda region: clients.client("appconfig", region), deadline)


def human_push(ids: dict[str, str], profile: str, document: dict[str, Any], strategy: str) -> int:
    """Someone deploys a new version of ``profile`` with ``strategy``; the deployment number."""
    ac = boto3.client("appconfig", region_name=REGION)
    version = ac.create_hosted_configuration_version(
        ApplicationId=ids["app"],
        ConfigurationProfileId=ids[profile],
        Content=json.dumps(document).encode(),
        ContentType="application/json",
    )["VersionNumber"]
    return int(
        ac.start_deployment(
            ApplicationId=ids["app"],
            EnvironmentId=ids["env"],
            DeploymentStrategyId=strategy,
            ConfigurationProfileId=ids[profile],
            ConfigurationVersion=str(version),
            Description="by a human",
        )["DeploymentNumber"]
    )


def state_of(ids: dict[str, str], number: int) -> str:
    ac = boto3.client("appconfig", region_name=REGION)
    return str(ac.get_deployment(ApplicationId=ids["app"], EnvironmentId=ids["env"], DeploymentNumber=number)["State"])


def flags_with(enabled: bool) -> dict[str, Any]:
    document = json.loads(json.dumps(FLAGS))
    document["values"]["new-pricing"]["enabled"] = enabled
    return document


def slow_strategy(ids: dict[str, str], minutes: int = 5) -> str:
    ac = boto3.client("appconfig", region_name=REGION)
    return str(
        ac.create_deployment_strategy(
            Name=f"slow-{minutes}",
            DeploymentDurationInMinutes=minutes,
            GrowthFactor=20,
            FinalBakeTimeInMinutes=0,
            ReplicateTo="NONE",
        )["Id"]
    )


def test_flag_off_while_the_bad_flag_bakes_stops_it_then_deploys_the_flag_off(
    sandbox: Sandbox, ids: dict[str, str]
) -> None:
    bad = human_push(ids, "checkout-flags", flags_with(True), "AppConfig.AllAtOnce")  # bakes 10 minutes
    sandbox.advance(3 * 60)
    assert state_of(ids, bad) == "BAKING"

    [result] = set_flag(adapter(sandbox, 25), FLAG, False, STRATEGY, REGION, "incident x")

    require_success("flag_off", [result])
    assert result.stopped is not None
    assert (result.stopped.number, result.stopped.state, result.stopped.outcome) == (bad, "BAKING", "ROLLED_BACK")
    assert result.detail.startswith(f"stopped deployment {bad} of version 2 while BAKING (ROLLED_BACK); ")
    assert (result.previous_version, result.new_version) == (2, 3)
    assert result.record()["stopped"] == {
        "deployment_number": bad,
        "version": 2,
        "state": "BAKING",
        "outcome": "ROLLED_BACK",
        "by_rollguard": True,
    }
    assert state_of(ids, bad) == "ROLLED_BACK"
    assert state_of(ids, int(result.deployment_number or 0)) == "COMPLETE"
    assert deployed(sandbox, REGION, "checkout-flags")["values"]["new-pricing"]["enabled"] is False


def test_flag_off_while_the_bad_flag_deploys_stops_it_too(sandbox: Sandbox, ids: dict[str, str]) -> None:
    bad = human_push(ids, "checkout-flags", flags_with(True), slow_strategy(ids))

    [result] = set_flag(adapter(sandbox, 25), FLAG, False, STRATEGY, REGION, "incident x")

    assert result.ok and result.stopped is not None and result.stopped.state == "DEPLOYING"
    assert state_of(ids, bad) == "ROLLED_BACK"
    assert deployed(sandbox, REGION, "checkout-flags")["values"]["new-pricing"]["enabled"] is False


def test_a_flag_already_off_after_the_rollback_is_not_redeployed_needlessly(
    sandbox: Sandbox, ids: dict[str, str]
) -> None:
    """A kill-switch flag turned on while baking: stopping the deployment already turns it off again, but the
    newest version still has it on, so Rollguard writes the version with it off (a later deploy of "latest"
    must not bring it back)."""
    human_push(ids, "checkout-flags", flags_with(True), "AppConfig.AllAtOnce")

    [result] = set_flag(adapter(sandbox, 25), FLAG, False, STRATEGY, REGION, "incident x")
    [again] = set_flag(adapter(sandbox, 25), FLAG, False, STRATEGY, REGION, "incident x, retried")

    assert result.new_version == 3
    assert again.ok and again.stopped is None and "already off in version 3" in again.detail


def test_config_revert_of_a_baking_push_stops_it_and_waits_for_the_rollback(
    sandbox: Sandbox, ids: dict[str, str]
) -> None:
    bad = human_push(ids, "checkout-settings", {**SETTINGS, "timeout_ms": 50}, "AppConfig.AllAtOnce")

    [result] = revert_profile(adapter(sandbox, 25), SETTINGS_REF, STRATEGY, REGION, "incident x")

    assert result.ok and result.stopped is not None
    assert (result.stopped.state, result.stopped.outcome) == ("BAKING", "ROLLED_BACK")
    assert result.detail == f"stopped deployment {bad} of version 2 while BAKING (ROLLED_BACK): AppConfig put the " + (
        "previous version back"
    )
    assert state_of(ids, bad) == "ROLLED_BACK"
    assert deployed(sandbox, REGION, "checkout-settings")["timeout_ms"] == 2000


@pytest.mark.parametrize("action", ["flag_off", "config_revert", "undo"])
def test_no_action_stops_another_profiles_deployment(sandbox: Sandbox, ids: dict[str, str], action: str) -> None:
    """The flags profile is the one baking: a settings revert must not stop it (and the reverse)."""
    other, mine = ("checkout-settings", FLAG) if action == "flag_off" else ("checkout-flags", SETTINGS_REF)
    document = {**SETTINGS, "timeout_ms": 50} if other == "checkout-settings" else flags_with(True)
    baking = human_push(ids, other, document, "AppConfig.AllAtOnce")
    ac = adapter(sandbox, 25)

    with pytest.raises(AppConfigConflict, match=rf"deployment {baking} of {other} version 2 \(BAKING\)"):
        if action == "flag_off":
            require_success(action, set_flag(ac, FLAG, False, STRATEGY, REGION, "x"))
        elif action == "config_revert":
            require_success(action, revert_profile(ac, SETTINGS_REF, STRATEGY, REGION, "x"))
        else:
            from rollguard.config_actions import RegionResult

            require_success(action, undo(ac, mine, [RegionResult(REGION, True, "", 1, 2, 1)], STRATEGY, "x"))
    assert state_of(ids, baking) == "BAKING"


def test_a_wait_ends_at_the_deadline_naming_the_deployment_and_its_state(sandbox: Sandbox, ids: dict[str, str]) -> None:
    """Rollguard's own deployment is slow here: the wait gives up at the deadline, before Lambda's timeout."""
    slow = slow_strategy(ids)
    start = sandbox.clock.now()

    with pytest.raises(AppConfigWaitTimedOut, match=r"deployment 3 still DEPLOYING in us-east-1 after \d+s") as timed:
        require_success("flag_on", set_flag(adapter(sandbox, 20), FLAG, True, slow, REGION, "incident x"))

    assert "the invocation's time is up" in str(timed.value)
    assert (sandbox.clock.now() - start).total_seconds() < 21, "the wait did not outlive the deadline"


def test_a_retry_sees_its_own_deployment_through_instead_of_stopping_it(sandbox: Sandbox, ids: dict[str, str]) -> None:
    slow = slow_strategy(ids, minutes=1)
    with pytest.raises(AppConfigWaitTimedOut):
        require_success("flag_on", set_flag(adapter(sandbox, 20), FLAG, True, slow, REGION, "incident x"))

    [retried] = set_flag(adapter(sandbox, 400), FLAG, True, slow, REGION, "incident x")

    assert retried.ok and retried.stopped is None
    assert retried.detail == "new-pricing already on in version 2, deployment 3 COMPLETE"
    assert state_of(ids, 3) == "COMPLETE"


def test_no_change_starts_when_the_invocation_has_no_time_left(sandbox: Sandbox, ids: dict[str, str]) -> None:
    calls_before = len(sandbox.log.aws_calls)

    with pytest.raises(AppConfigWaitTimedOut, match=r"not started: turning new-pricing on in us-east-1"):
        require_success("flag_on", set_flag(adapter(sandbox, 2), FLAG, True, STRATEGY, REGION, "incident x"))

    assert sandbox.log.aws_calls[calls_before:] == [], "nothing was called, let alone changed"


def test_the_deadline_is_lambdas_remaining_time_less_the_audit_reserve(sandbox: Sandbox) -> None:
    ctx = context("rollguard-remediation")

    deadline = invocation_deadline(ctx, reserve_s=5)

    expected = sandbox.clock.now() + timedelta(milliseconds=ctx.get_remaining_time_in_millis() - 5000)
    assert abs((deadline - expected).total_seconds()) < 1
