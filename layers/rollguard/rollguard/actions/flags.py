"""Feature flag kill switch (flag_off) and its opposite (flag_on): a new hosted version of the flags profile with
the flag flipped, deployed with Rollguard's immediate strategy, in every region of the target (config_actions)."""

from typing import Any

from rollguard.actions.base import Action, StepOutcome
from rollguard.config_actions import config_outcome, set_flag, why
from rollguard.deps import Deps, need
from rollguard.incident import ExecutionState
from rollguard.policy import FlagStep, LadderStep

APPCONFIG_IAM = (
    "appconfig:ListApplications",
    "appconfig:ListEnvironments",
    "appconfig:ListConfigurationProfiles",
    "appconfig:ListDeployments",
    "appconfig:GetDeployment",
    "appconfig:StopDeployment",
    "appconfig:ListHostedConfigurationVersions",
    "appconfig:GetHostedConfigurationVersion",
    "appconfig:CreateHostedConfigurationVersion",
    "appconfig:StartDeployment",
    "appconfig:ListDeploymentStrategies",
)


class Flag(Action):
    names = ("flag_off", "flag_on")
    iam = APPCONFIG_IAM

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        assert isinstance(step, FlagStep)
        if state is None:
            return f"{step.action} {step.flag.name}"
        return f"turn {step.flag.name} {'on' if step.action == 'flag_on' else 'off'} in {step.flag.profile}"

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        assert isinstance(step, FlagStep)
        enabled = step.action == "flag_on"
        appconfig = need(deps.appconfig, "AppConfig")
        results = set_flag(appconfig, step.flag, enabled, deps.appconfig_strategy, deps.region, why(state))
        return config_outcome(step.action, f"{step.flag.name} {'on' if enabled else 'off'}", results)

    def follow_up(self, parameters: dict[str, Any]) -> str:
        if parameters.get("action") == "flag_on":
            return "the flag stays on until someone turns it off again"
        return "the flag stays off until someone turns it on again, after the fix (or removes it)"
