"""Configuration revert: stop the profile's deployment in progress (AppConfig rolls it back) or redeploy its
previous version, in every region of the target (config_actions)."""

from typing import Any

from rollguard.actions.base import Action, StepOutcome
from rollguard.actions.flags import APPCONFIG_IAM
from rollguard.config_actions import config_outcome, revert_profile, why
from rollguard.deps import Deps, need
from rollguard.incident import ExecutionState
from rollguard.policy import ConfigRevertStep, LadderStep


class ConfigRevert(Action):
    names = ("config_revert",)
    iam = APPCONFIG_IAM

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        assert isinstance(step, ConfigRevertStep)
        if state is None:
            return f"config_revert {step.config.profile}"
        return f"revert {step.config.profile} in {step.config.environment}"

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        assert isinstance(step, ConfigRevertStep)
        appconfig = need(deps.appconfig, "AppConfig")
        results = revert_profile(appconfig, step.config, deps.appconfig_strategy, deps.region, why(state))
        return config_outcome("config_revert", f"revert {step.config.profile}", results)

    def follow_up(self, parameters: dict[str, Any]) -> str:
        return "the previous configuration version stays deployed: fix the reverted one before deploying it again"
