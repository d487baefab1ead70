"""Contract tests: AppConfig's deployment behaviours as the sandbox answers them, through plain boto3.

No Rollguard code here: each test drives the AppConfig API the way any client would and asserts what AWS
documents (the page title is named on each test). docs/sandbox-appconfig.md lists these behaviours, their
sources and this file's test names.
"""

import json
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.runner import REGION, Sandbox

pytestmark = pytest.mark.slow  # the sandbox's contracts, on moto


@dataclass
class Env:
    ac: Any
    app: str
    env: str
    flags: str
    settings: str
    immediate: str

    def start(self, profile: str, version: int, strategy: str) -> dict[str, Any]:
        return dict(
            self.ac.start_deployment(
                ApplicationId=self.app,
                EnvironmentId=self.env,
                DeploymentStrategyId=strategy,
                ConfigurationProfileId=profile,
                ConfigurationVersion=str(version),
            )
        )

    def get(self, number: int) -> dict[str, Any]:
        return dict(self.ac.get_deployment(ApplicationId=self.app, EnvironmentId=self.env, DeploymentNumber=number))

    def state(self, number: int) -> str:
        return str(self.get(number)["State"])

    def stop(self, number: int, **kw: Any) -> dict[str, Any]:
        return dict(
            self.ac.stop_deployment(ApplicationId=self.app, EnvironmentId=self.env, DeploymentNumber=number, **kw)
        )

    def version(self, profile: str, document: dict[str, Any]) -> int:
        return int(
            self.ac.create_hosted_configuration_version(
                ApplicationId=self.app,
                ConfigurationProfileId=profile,
                Content=json.dumps(document).encode(),
                ContentType="application/json",
            )["VersionNumber"]
        )


@pytest.fixture
def env(sandbox: Sandbox) -> Env:
    """An application with one environment, two freeform profiles (version 1 each) and an immediate strategy."""
    ac = sandbox.client("appconfig")
    app = ac.create_application(Name="shop")["Id"]
    environment = ac.create_environment(ApplicationId=app, Name="prod")["Id"]
    profiles = [
        ac.create_configuration_profile(ApplicationId=app, Name=name, LocationUri="hosted", Type="AWS.Freeform")["Id"]
        for name in ("flags", "settings")
    ]
    immediate = ac.create_deployment_strategy(
        Name="immediate", DeploymentDurationInMinutes=0, GrowthFactor=100, FinalBakeTimeInMinutes=0, ReplicateTo="NONE"
    )["Id"]
    e = Env(ac, app, environment, profiles[0], profiles[1], immediate)
    for profile in profiles:
        e.version(profile, {"v": 1})
    return e


def served(sb: Sandbox, profile: str) -> Any:
    """What an agent polling the environment receives for ``profile``."""
    return sb.appconfig.deployed_document(REGION, "shop", "prod", profile)


def code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------- one active deployment per environment


@pytest.mark.parametrize("strategy", ["AppConfig.Linear50PercentEvery30Seconds", "AppConfig.AllAtOnce"])
def test_start_deployment_is_a_conflict_while_another_profile_deploys_or_bakes(env: Env, strategy: str) -> None:
    """ "StartDeployment" (API reference: ConflictException, HTTP 409); "Environment" (AWS CDK API reference:
    one configuration at a time to an environment). DEPLOYING and BAKING both hold the environment."""
    first = env.start(env.flags, 1, strategy)
    assert first["State"] == ("BAKING" if strategy == "AppConfig.AllAtOnce" else "DEPLOYING")

    with pytest.raises(env.ac.exceptions.ConflictException) as refused:
        env.start(env.settings, 1, env.immediate)

    assert code(refused) == ("ConflictException", 409)
    assert str(first["DeploymentNumber"]) in refused.value.response["Error"]["Message"]


def test_the_environment_takes_the_next_deployment_once_the_active_one_completes(env: Env, sandbox: Sandbox) -> None:
    first = env.start(env.flags, 1, "AppConfig.AllAtOnce")  # bakes 10 minutes
    sandbox.advance(9 * 60 + 50)
    with pytest.raises(env.ac.exceptions.ConflictException):
        env.start(env.settings, 1, env.immediate)

    sandbox.advance(10)

    assert env.state(first["DeploymentNumber"]) == "COMPLETE"
    assert env.start(env.settings, 1, env.immediate)["State"] == "COMPLETE"


def test_environments_of_an_application_deploy_independently(env: Env) -> None:
    other = env.ac.create_environment(ApplicationId=env.app, Name="staging")["Id"]
    env.start(env.flags, 1, "AppConfig.AllAtOnce")

    started = env.ac.start_deployment(
        ApplicationId=env.app,
        EnvironmentId=other,
        DeploymentStrategyId=env.immediate,
        ConfigurationProfileId=env.flags,
        ConfigurationVersion="1",
    )

    assert started["State"] == "COMPLETE"


def test_the_environment_state_follows_its_deployment(env: Env, sandbox: Sandbox) -> None:
    """ "Environment" (API reference): READY_FOR_DEPLOYMENT, DEPLOYING, ROLLING_BACK, ROLLED_BACK, REVERTED."""

    def state() -> str:
        return str(env.ac.get_environment(ApplicationId=env.app, EnvironmentId=env.env)["State"])

    assert state() == "READY_FOR_DEPLOYMENT"
    number = env.start(env.flags, 1, "AppConfig.AllAtOnce")["DeploymentNumber"]
    assert state() == "DEPLOYING"
    env.stop(number, AllowRevert=True)
    assert state() == "ROLLING_BACK"
    sandbox.advance(60)
    assert state() == "ROLLED_BACK"
    env.start(env.flags, 1, env.immediate)
    assert state() == "READY_FOR_DEPLOYMENT"
    assert [e["State"] for e in env.ac.list_environments(ApplicationId=env.app)["Items"]] == ["READY_FOR_DEPLOYMENT"]


# ---------------------------------------------------------------- strategies: duration, bake, predefined values


@pytest.mark.parametrize(
    ("strategy", "growth_type", "growth", "minutes", "bake"),
    [
        ("AppConfig.Linear20PercentEvery6Minutes", "LINEAR", 20.0, 30, 30),
        ("AppConfig.Canary10Percent20Minutes", "EXPONENTIAL", 10.0, 20, 10),
        ("AppConfig.AllAtOnce", "LINEAR", 100.0, 0, 10),
        ("AppConfig.Linear50PercentEvery30Seconds", "LINEAR", 50.0, 1, 1),
    ],
)
def test_predefined_strategies_deploy_then_bake_for_their_documented_minutes(
    env: Env, sandbox: Sandbox, strategy: str, growth_type: str, growth: float, minutes: int, bake: int
) -> None:
    """ "Using predefined deployment strategies" (user guide): each strategy's duration, growth and bake time."""
    listed = {s["Id"]: s for s in env.ac.list_deployment_strategies()["Items"]}[strategy]
    assert (listed["GrowthType"], listed["GrowthFactor"]) == (growth_type, growth)
    assert (listed["DeploymentDurationInMinutes"], listed["FinalBakeTimeInMinutes"]) == (minutes, bake)

    number = env.start(env.flags, 1, strategy)["DeploymentNumber"]
    if minutes:
        assert env.state(number) == "DEPLOYING"
        sandbox.advance(minutes * 60 - 1)
        assert env.state(number) == "DEPLOYING"
        sandbox.advance(1)
    assert env.state(number) == "BAKING"
    sandbox.advance(bake * 60 - 1)
    assert env.state(number) == "BAKING"
    sandbox.advance(1)
    deployment = env.get(number)
    assert deployment["State"] == "COMPLETE"
    assert [e["EventType"] for e in reversed(deployment["EventLog"])] == [
        "DEPLOYMENT_STARTED",
        "BAKE_TIME_STARTED",
        "DEPLOYMENT_COMPLETED",
    ]


def test_a_custom_strategy_takes_its_duration_and_bake_time(env: Env, sandbox: Sandbox) -> None:
    """ "Working with deployment strategies" (user guide): deployment time, then bake time, then complete."""
    strategy = env.ac.create_deployment_strategy(
        Name="slow", DeploymentDurationInMinutes=4, GrowthFactor=25, FinalBakeTimeInMinutes=3, ReplicateTo="NONE"
    )["Id"]
    number = env.start(env.flags, 1, strategy)["DeploymentNumber"]

    progress = []
    for _ in range(8):
        d = env.get(number)
        progress.append((d["State"], d["PercentageComplete"]))
        sandbox.advance(60)

    assert progress == [
        ("DEPLOYING", 0.0),
        ("DEPLOYING", 25.0),
        ("DEPLOYING", 50.0),
        ("DEPLOYING", 75.0),
        ("BAKING", 100.0),
        ("BAKING", 100.0),
        ("BAKING", 100.0),
        ("COMPLETE", 100.0),
    ]


def test_a_strategy_without_bake_time_completes_after_its_duration(env: Env) -> None:
    assert env.start(env.flags, 1, env.immediate)["State"] == "COMPLETE"


# ---------------------------------------------------------------- StopDeployment


def test_stopping_a_deploying_deployment_rolls_it_back(env: Env, sandbox: Sandbox) -> None:
    """ "StopDeployment" (API reference): works on DEPLOYING, answers 202; "Reverting a configuration" (user
    guide): the stopped deployment ends ROLLED_BACK and the previous version is served again."""
    env.start(env.flags, 1, env.immediate)
    bad = env.version(env.flags, {"v": 2})
    number = env.start(env.flags, bad, "AppConfig.Linear50PercentEvery30Seconds")["DeploymentNumber"]
    assert served(sandbox, "flags") == {"v": 2}

    stopped = env.stop(number)

    assert stopped["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert stopped["State"] == "ROLLING_BACK"
    assert served(sandbox, "flags") == {"v": 1}
    sandbox.advance(60)
    deployment = env.get(number)
    assert deployment["State"] == "ROLLED_BACK"
    assert [e["EventType"] for e in reversed(deployment["EventLog"])] == [
        "DEPLOYMENT_STARTED",
        "ROLLBACK_STARTED",
        "ROLLBACK_COMPLETED",
    ]


def test_a_rollback_holds_the_environment_until_it_is_rolled_back(env: Env, sandbox: Sandbox) -> None:
    """StopDeployment is accepted (202), not finished: ROLLING_BACK still holds the environment."""
    number = env.start(env.flags, 1, "AppConfig.Linear50PercentEvery30Seconds")["DeploymentNumber"]
    env.stop(number)

    with pytest.raises(env.ac.exceptions.ConflictException):
        env.start(env.settings, 1, env.immediate)
    sandbox.advance(60)

    assert env.state(number) == "ROLLED_BACK"
    assert env.start(env.settings, 1, env.immediate)["State"] == "COMPLETE"


def test_stopping_a_baking_deployment_needs_allow_revert(env: Env, sandbox: Sandbox) -> None:
    """ "StopDeployment" (API reference): "works only on deployments that have a status of DEPLOYING, unless an
    AllowRevert parameter is supplied"; with it, an in-progress deployment ends ROLLED_BACK."""
    env.start(env.flags, 1, env.immediate)
    bad = env.version(env.flags, {"v": 2})
    number = env.start(env.flags, bad, "AppConfig.AllAtOnce")["DeploymentNumber"]
    assert env.state(number) == "BAKING"

    with pytest.raises(env.ac.exceptions.BadRequestException) as refused:
        env.stop(number)
    assert code(refused) == ("BadRequestException", 400)
    assert env.state(number) == "BAKING"

    assert env.stop(number, AllowRevert=True)["State"] == "ROLLING_BACK"
    sandbox.advance(60)
    assert env.state(number) == "ROLLED_BACK"
    assert served(sandbox, "flags") == {"v": 1}


def test_a_completed_deployment_is_reverted_only_with_allow_revert(env: Env, sandbox: Sandbox) -> None:
    """ "Reverting a configuration" (user guide): StopDeployment on a completed deployment is a
    BadRequestException; with AllowRevert it becomes REVERTED and the previous version is served."""
    env.start(env.flags, 1, env.immediate)
    bad = env.version(env.flags, {"v": 2})
    number = env.start(env.flags, bad, env.immediate)["DeploymentNumber"]
    assert env.state(number) == "COMPLETE"

    with pytest.raises(env.ac.exceptions.BadRequestException):
        env.stop(number)

    reverted = env.stop(number, AllowRevert=True)
    assert reverted["State"] == "REVERTED"
    assert reverted["EventLog"][0]["EventType"] == "REVERT_COMPLETED"
    assert served(sandbox, "flags") == {"v": 1}
    assert env.ac.get_environment(ApplicationId=env.app, EnvironmentId=env.env)["State"] == "REVERTED"


def test_a_deployment_completed_more_than_72_hours_ago_cannot_be_reverted(env: Env, sandbox: Sandbox) -> None:
    """ "Reverting a configuration" (user guide): after 72 hours a revert is a BadRequestException."""
    number = env.start(env.flags, 1, env.immediate)["DeploymentNumber"]
    sandbox.clock.advance(72 * 3600 + 1)

    with pytest.raises(env.ac.exceptions.BadRequestException, match="72 hours"):
        env.stop(number, AllowRevert=True)
    assert env.state(number) == "COMPLETE"


@pytest.mark.parametrize("allow_revert", [False, True])
def test_a_stopped_deployment_cannot_be_stopped_again(env: Env, sandbox: Sandbox, allow_revert: bool) -> None:
    number = env.start(env.flags, 1, "AppConfig.Linear50PercentEvery30Seconds")["DeploymentNumber"]
    env.stop(number)
    sandbox.advance(60)

    with pytest.raises(env.ac.exceptions.BadRequestException, match="ROLLED_BACK"):
        env.stop(number, AllowRevert=allow_revert)


def test_deployments_are_listed_newest_first_with_their_profile(env: Env) -> None:
    """ "ListDeployments" (API reference): descending deployment number order."""
    env.start(env.flags, 1, env.immediate)
    env.start(env.settings, 1, env.immediate)

    items = env.ac.list_deployments(ApplicationId=env.app, EnvironmentId=env.env)["Items"]

    assert [(i["DeploymentNumber"], i["ConfigurationProfileId"]) for i in items] == [
        (2, env.settings),
        (1, env.flags),
    ]


# ---------------------------------------------------------------- hosted versions and EventBridge


def test_a_stale_latest_version_number_is_a_conflict(env: Env) -> None:
    """ "CreateHostedConfigurationVersion" (API reference): LatestVersionNumber is a locking token; a version
    written meanwhile makes the write a ConflictException."""
    with pytest.raises(env.ac.exceptions.ConflictException) as refused:
        env.ac.create_hosted_configuration_version(
            ApplicationId=env.app,
            ConfigurationProfileId=env.flags,
            Content=b'{"v": 2}',
            ContentType="application/json",
            LatestVersionNumber=0,
        )
    assert code(refused) == ("ConflictException", 409)


def test_feature_flag_versions_must_match_the_feature_flags_schema(env: Env) -> None:
    """ "Understanding the type reference for AWS.AppConfig.FeatureFlags" (user guide): a value names a
    defined flag and its ``enabled`` is a boolean; anything else is a BadRequestException."""
    profile = env.ac.create_configuration_profile(
        ApplicationId=env.app, Name="ff", LocationUri="hosted", Type="AWS.AppConfig.FeatureFlags"
    )["Id"]
    broken = {"version": "1", "flags": {"a": {"name": "a"}}, "values": {"a": {"enabled": "yes"}}}

    with pytest.raises(env.ac.exceptions.BadRequestException, match="enabled must be a boolean"):
        env.version(profile, broken)
    assert env.version(profile, {**broken, "values": {"a": {"enabled": True}}}) == 1


def test_deployments_announce_start_complete_and_rollback_on_eventbridge(env: Env, sandbox: Sandbox) -> None:
    """ "Using the AWS AppConfig deployment events to Amazon EventBridge extension" (user guide)."""
    seen: list[dict[str, Any]] = []
    sandbox.appconfig.publish = seen.append
    env.start(env.flags, 1, env.immediate)
    number = env.start(env.flags, 1, "AppConfig.Linear50PercentEvery30Seconds")["DeploymentNumber"]
    env.stop(number)
    sandbox.advance(60)
    assert env.state(number) == "ROLLED_BACK"  # the sandbox moves deployments along when AppConfig is next read

    assert [(e["detail-type"], e["detail"]["DeploymentNumber"]) for e in seen] == [
        ("On Deployment Start", 1),
        ("On Deployment Complete", 1),
        ("On Deployment Start", 2),
        ("On Deployment Rollback", 2),
    ]
    assert all(e["source"] == "aws.appconfig" and e["detail"]["ConfigurationProfile"]["Id"] == env.flags for e in seen)
    rollback = seen[-1]
    assert rollback["time"] == env.get(number)["CompletedAt"].strftime("%Y-%m-%dT%H:%M:%SZ"), "stamped when it happened"
