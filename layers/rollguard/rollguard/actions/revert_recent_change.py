"""Undo the most recent change in the target's scope before the alarm that is not undone yet: a deployment is
rolled back, a flag flip is flipped back, a configuration push is reverted (the next such step: the next one)."""

from typing import Any

from rollguard.actions.base import Action, Adapters, Left, StepOutcome
from rollguard.actions.flags import APPCONFIG_IAM
from rollguard.actions.rollback import Rollback, rollback
from rollguard.config_actions import RegionResult, config_outcome, flipped_flags, revert_profile, set_flag, why
from rollguard.deps import Deps, need
from rollguard.errors import NothingToRollBack
from rollguard.incident import ActionRecord, ExecutionState
from rollguard.journal import Change
from rollguard.policy import FlagRef, LadderStep, ProfileRef


def pending_changes(state: ExecutionState) -> list[Change]:
    done = state.progress.reverted if state.progress else []
    return [c for c in (state.assessment.changes if state.assessment else []) if c.change_id not in done]


class RevertRecentChange(Action):
    names = ("revert_recent_change",)
    iam = (*Rollback.iam, *APPCONFIG_IAM)

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        if state is None:
            return step.action
        pending = pending_changes(state)
        return f"undo {pending[0].describe()}" if pending else "undo a recent change (none left)"

    def rolls_back(self, step: LadderStep, state: ExecutionState) -> str | None:
        pending = pending_changes(state)
        if pending and pending[0].kind == "deploy" and state.assessment and state.assessment.bad:
            return state.assessment.bad.deployment_id
        return None

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        pending = pending_changes(state)
        if not pending:
            raise NothingToRollBack("every change in scope before the alarm has already been reverted")
        change = pending[0]
        if change.kind == "deploy":
            outcome = rollback("full", state, deps)
            outcome.reverted = change.change_id
            return outcome
        d = change.detail
        profile = ProfileRef(
            application=d["application"], environment=d["environment"], profile=d["profile"], regions=[change.region]
        )
        appconfig = need(deps.appconfig, "AppConfig")
        if change.kind == "flag":
            ids = appconfig.resolve(change.region, d["application"], d["environment"], d["profile"])
            flipped = flipped_flags(appconfig, ids, int(d["version"]), int(d["deployment_number"]))
            if flipped:
                results: list[RegionResult] = []
                for name, before in sorted(flipped.items()):
                    ref = FlagRef(**profile.model_dump(), name=name)
                    results += set_flag(appconfig, ref, before, deps.appconfig_strategy, deps.region, why(state))
                action = "flag_on" if all(flipped.values()) else "flag_off"
                return config_outcome(action, ", ".join(sorted(flipped)), results, change.change_id)
        results = revert_profile(
            appconfig,
            profile,
            deps.appconfig_strategy,
            deps.region,
            why(state),
            before_deployment=int(d["deployment_number"]),
        )
        return config_outcome("config_revert", f"revert {d['profile']}", results, change.change_id)

    # Verify, leave and follow-up go to the action the step turned into (progress.action): rollback, flag_on/off
    # or config_revert. These answer for a step recorded under this name only (it did not run).
    def leave(
        self, record: ActionRecord, state: ExecutionState, adapters: Adapters, paused: bool, escalating: bool
    ) -> Left | None:
        return None

    def follow_up(self, parameters: dict[str, Any]) -> str:
        return "the change it undid stays undone until someone ships it again"
