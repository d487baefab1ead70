"""Flag and config actions against the sandbox's AppConfig (moto + sandbox/appconfig.py), in two regions."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from rollguard import clients
from rollguard.adapters.appconfig import AppConfig
from rollguard.config_actions import require_success, revert_profile, set_flag, undo
from rollguard.errors import AppConfigConflict, ConfigRejected, FlagNotFound, PartiallyFailed, TransientAwsError
from rollguard.journal import Journal, record_event
from rollguard.policy import FlagRef, ProfileRef
from rollguard_cli.drills import FLAGS, SETTINGS
from rollguard_cli.sandbox.runner import TABLES, Sandbox

from tests.conftest import load_event

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)

REGIONS = ["us-east-1", "eu-west-1"]
STRATEGY = "Rollguard-Immediate"


def provision(region: str) -> dict[str, str]:
    """checkout/prod with a flags and a settings profile, deployed once, and Rollguard's strategy."""
    ac = boto3.client("appconfig", region_name=region)
    app = ac.create_application(Name="checkout")["Id"]
    env = ac.create_environment(ApplicationId=app, Name="prod")["Id"]
    strategy = ac.create_deployment_strategy(
        Name=STRATEGY, DeploymentDurationInMinutes=0, GrowthFactor=100, FinalBakeTimeInMinutes=0, ReplicateTo="NONE"
    )["Id"]
    ids = {"app": app, "env": env, "strategy": strategy}
    for name, kind, document in (
        ("checkout-flags", "AWS.AppConfig.FeatureFlags", FLAGS),
        ("checkout-settings", "AWS.Freeform", SETTINGS),
    ):
        profile = ac.create_configuration_profile(ApplicationId=app, Name=name, LocationUri="hosted", Type=kind)["Id"]
        ids[name] = profile
        version = ac.create_hosted_configuration_version(
            ApplicationId=app,
            ConfigurationProfileId=profile,
            Content=json.dumps(document).encode(),
            ContentType="application/json",
        )["VersionNumber"]
        ac.start_deployment(
            ApplicationId=app,
            EnvironmentId=env,
            DeploymentStrategyId=strategy,
            ConfigurationProfileId=profile,
            ConfigurationVersion=str(version),
        )
    return ids


@pytest.fixture
def regions(sandbox: Sandbox) -> Iterator[dict[str, dict[str, str]]]:
    yield {region: provision(region) for region in REGIONS}


def appconfig() -> AppConfig:
    return AppConfig(lambda region: clients.client("appconfig", region))


def deployed(sb: Sandbox, region: str, profile: str) -> Any:
    return sb.appconfig.deployed_document(region, "checkout", "prod", profile)


FLAG = FlagRef(
    application="checkout", environment="prod", profile="checkout-flags", name="new-pricing", regions=REGIONS
)
SETTINGS_REF = ProfileRef(application="checkout", environment="prod", profile="checkout-settings", regions=REGIONS)


def turn_on(sb: Sandbox) -> None:
    set_flag(appconfig(), FLAG, True, STRATEGY, "us-east-1", "test setup")


def test_flag_off_changes_only_that_flag_in_every_region_and_records_the_previous_version(
    sandbox: Sandbox, regions: dict[str, Any]
) -> None:
    turn_on(sandbox)

    results = set_flag(appconfig(), FLAG, False, STRATEGY, "us-east-1", "incident x")

    require_success("flag_off", results)
    assert [(r.region, r.ok, r.previous_version, r.new_version) for r in results] == [
        ("us-east-1", True, 2, 3),
        ("eu-west-1", True, 2, 3),
    ]
    for region in REGIONS:
        document = deployed(sandbox, region, "checkout-flags")
        assert document["values"]["new-pricing"] == {"enabled": False}
        assert document["flags"] == FLAGS["flags"], "other flags and definitions are untouched"
        assert document["values"]["checkout-kill-switch"] == FLAGS["values"]["checkout-kill-switch"]


def test_a_flag_already_off_is_left_alone(sandbox: Sandbox, regions: dict[str, Any]) -> None:
    results = set_flag(appconfig(), FLAG, False, STRATEGY, "us-east-1", "incident x")

    assert all(r.ok and r.previous_version == r.new_version == 1 for r in results)
    assert "already off" in results[0].detail


def test_undo_puts_back_the_previous_version(sandbox: Sandbox, regions: dict[str, Any]) -> None:
    turn_on(sandbox)
    results = set_flag(appconfig(), FLAG, False, STRATEGY, "us-east-1", "incident x")

    undone = undo(appconfig(), FLAG, results, STRATEGY, "the incident was a false alarm")

    assert [(u.region, u.ok, u.new_version) for u in undone] == [("us-east-1", True, 2), ("eu-west-1", True, 2)]
    assert all(deployed(sandbox, r, "checkout-flags")["values"]["new-pricing"]["enabled"] for r in REGIONS)


def test_one_region_failing_is_reported_per_region(sandbox: Sandbox, regions: dict[str, Any]) -> None:
    turn_on(sandbox)
    sandbox.inject_fault("StartDeployment", "AccessDeniedException", "not in this region", region="eu-west-1")

    results = set_flag(appconfig(), FLAG, False, STRATEGY, "us-east-1", "incident x")

    assert [(r.region, r.ok) for r in results] == [("us-east-1", True), ("eu-west-1", False)]
    with pytest.raises(PartiallyFailed, match=r"us-east-1: ok .*; eu-west-1: FAILED — PermissionDenied"):
        require_success("flag_off new-pricing", results)
    assert deployed(sandbox, "us-east-1", "checkout-flags")["values"]["new-pricing"]["enabled"] is False


@pytest.mark.parametrize(
    ("operation", "code", "error"),
    [
        ("CreateHostedConfigurationVersion", "ThrottlingException", TransientAwsError),
        ("CreateHostedConfigurationVersion", "BadRequestException", ConfigRejected),
        ("StartDeployment", "ConflictException", AppConfigConflict),
    ],
)
def test_appconfig_errors_become_named_errors(
    sandbox: Sandbox, regions: dict[str, Any], operation: str, code: str, error: type[Exception]
) -> None:
    turn_on(sandbox)
    sandbox.inject_fault(operation, code, "injected")
    one_region = FlagRef(**{**FLAG.model_dump(), "regions": ["us-east-1"]})

    with pytest.raises(error, match="injected"):
        require_success("flag_off", set_flag(appconfig(), one_region, False, STRATEGY, "us-east-1", "x"))


def test_another_profiles_deployment_in_progress_is_a_conflict_and_left_alone(
    sandbox: Sandbox, regions: dict[str, Any]
) -> None:
    ids = regions["us-east-1"]
    ac = boto3.client("appconfig", region_name="us-east-1")
    slow = ac.create_deployment_strategy(
        Name="slow", DeploymentDurationInMinutes=10, GrowthFactor=10, FinalBakeTimeInMinutes=10, ReplicateTo="NONE"
    )["Id"]
    number = ac.start_deployment(
        ApplicationId=ids["app"],
        EnvironmentId=ids["env"],
        DeploymentStrategyId=slow,
        ConfigurationProfileId=ids["checkout-settings"],
        ConfigurationVersion="1",
    )["DeploymentNumber"]
    one_region = FlagRef(**{**FLAG.model_dump(), "regions": ["us-east-1"]})

    with pytest.raises(AppConfigConflict, match=rf"deployment {number} of checkout-settings version 1 \(DEPLOYING\)"):
        require_success("flag_on", set_flag(appconfig(), one_region, True, STRATEGY, "us-east-1", "x"))
    state = ac.get_deployment(ApplicationId=ids["app"], EnvironmentId=ids["env"], DeploymentNumber=number)["State"]
    assert state == "DEPLOYING", "someone else's deployment is not Rollguard's to stop"


def test_the_feature_flag_schema_is_enforced_on_new_versions(sandbox: Sandbox, regions: dict[str, Any]) -> None:
    ids = regions["us-east-1"]
    ac = boto3.client("appconfig", region_name="us-east-1")
    broken = {**FLAGS, "values": {"new-pricing": {"enabled": "yes"}}}

    with pytest.raises(ac.exceptions.BadRequestException, match="enabled must be a boolean"):
        ac.create_hosted_configuration_version(
            ApplicationId=ids["app"],
            ConfigurationProfileId=ids["checkout-flags"],
            Content=json.dumps(broken).encode(),
            ContentType="application/json",
        )


def test_an_unknown_flag_is_named(sandbox: Sandbox, regions: dict[str, Any]) -> None:
    ghost = FlagRef(**{**FLAG.model_dump(), "name": "no-such-flag", "regions": ["us-east-1"]})

    with pytest.raises(FlagNotFound, match="no-such-flag"):
        require_success("flag_off", set_flag(appconfig(), ghost, False, STRATEGY, "us-east-1", "x"))


def test_config_revert_redeploys_the_previous_version(sandbox: Sandbox, regions: dict[str, Any]) -> None:
    for region, ids in regions.items():
        ac = boto3.client("appconfig", region_name=region)
        bad = ac.create_hosted_configuration_version(
            ApplicationId=ids["app"],
            ConfigurationProfileId=ids["checkout-settings"],
            Content=json.dumps({**SETTINGS, "timeout_ms": 50}).encode(),
            ContentType="application/json",
        )
        ac.start_deployment(
            ApplicationId=ids["app"],
            EnvironmentId=ids["env"],
            DeploymentStrategyId=ids["strategy"],
            ConfigurationProfileId=ids["checkout-settings"],
            ConfigurationVersion=str(bad["VersionNumber"]),
        )

    results = revert_profile(appconfig(), SETTINGS_REF, STRATEGY, "us-east-1", "incident x")

    require_success("config_revert", results)
    assert all(deployed(sandbox, r, "checkout-settings")["timeout_ms"] == 2000 for r in REGIONS)


def test_config_revert_of_a_deployment_in_progress_stops_it(sandbox: Sandbox, regions: dict[str, Any]) -> None:
    ids = regions["us-east-1"]
    ac = boto3.client("appconfig", region_name="us-east-1")
    slow = ac.create_deployment_strategy(
        Name="slow", DeploymentDurationInMinutes=10, GrowthFactor=10, FinalBakeTimeInMinutes=0, ReplicateTo="NONE"
    )["Id"]
    bad = ac.create_hosted_configuration_version(
        ApplicationId=ids["app"],
        ConfigurationProfileId=ids["checkout-settings"],
        Content=json.dumps({**SETTINGS, "timeout_ms": 50}).encode(),
        ContentType="application/json",
    )["VersionNumber"]
    number = ac.start_deployment(
        ApplicationId=ids["app"],
        EnvironmentId=ids["env"],
        DeploymentStrategyId=slow,
        ConfigurationProfileId=ids["checkout-settings"],
        ConfigurationVersion=str(bad),
    )["DeploymentNumber"]
    only_here = ProfileRef(**{**SETTINGS_REF.model_dump(), "regions": ["us-east-1"]})

    [result] = revert_profile(appconfig(), only_here, STRATEGY, "us-east-1", "incident x")

    assert result.ok and "stopped deployment" in result.detail
    state = ac.get_deployment(ApplicationId=ids["app"], EnvironmentId=ids["env"], DeploymentNumber=number)["State"]
    assert state == "ROLLED_BACK"
    assert deployed(sandbox, "us-east-1", "checkout-settings")["timeout_ms"] == 2000


@pytest.mark.parametrize(
    ("event_file", "status", "kind"),
    [
        ("journal/codedeploy-deployment-state-change.json", "recorded", "deploy"),
        ("journal/appconfig-deployment-complete.json", "recorded", "config"),
        ("journal/ecs-deployment-state-change.json", "recorded", "deploy"),
        ("journal/codedeploy-instance-state-change.json", "ignored", None),
        ("remediation/intake/alarm.json", "ignored", None),
    ],
)
def test_the_journal_ingests_real_sample_events(
    sandbox: Sandbox, event_file: str, status: str, kind: str | None
) -> None:
    journal = Journal(sandbox.client("dynamodb"), TABLES["ChangesTable"])

    result = record_event(load_event(event_file), journal, lambda region, app, profile: "AWS.Freeform")

    assert result.status == status
    if kind:
        assert result.change is not None and result.change.kind == kind
        [stored] = journal.changes([result.change.scope_key], "2000", "3000")
        assert stored.change_id == result.change.change_id and stored.at == result.change.at


def test_the_journal_keeps_when_a_change_started_and_its_latest_state(sandbox: Sandbox) -> None:
    journal = Journal(sandbox.client("dynamodb"), TABLES["ChangesTable"])
    start = load_event("journal/codedeploy-deployment-state-change.json")
    start["detail"]["state"], start["time"] = "START", "2016-06-30T22:00:00Z"
    success = load_event("journal/codedeploy-deployment-state-change.json")  # SUCCESS at 22:06:31

    record_event(start, journal, None)
    record_event(success, journal, None)

    [change] = journal.changes(["codedeploy:myApplication/myDeploymentGroup"], "2016", "2017")
    assert (change.at, change.state) == ("2016-06-30T22:00:00.000Z", "SUCCESS")


def test_changes_that_were_undone_are_not_blamed(sandbox: Sandbox) -> None:
    journal = Journal(sandbox.client("dynamodb"), TABLES["ChangesTable"])
    stopped = load_event("journal/codedeploy-deployment-state-change.json")
    stopped["detail"]["state"] = "STOP"

    record_event(stopped, journal, None)

    assert journal.changes(["codedeploy:myApplication/myDeploymentGroup"], "2016", "2017") == []
