"""The ladder's actions, one module each, found by the ``action:`` name a policy step or a progress record carries.

Adding an action: README, "Writing a new action".
"""

from rollguard.actions.base import Action, Adapters, Left, StepOutcome
from rollguard.actions.config_revert import ConfigRevert
from rollguard.actions.ecs_rollback import EcsRollback
from rollguard.actions.flags import Flag
from rollguard.actions.revert_recent_change import RevertRecentChange
from rollguard.actions.rollback import Rollback
from rollguard.actions.shift_traffic import ShiftTraffic
from rollguard.actions.zonal_shift import ZonalShift
from rollguard.errors import RollguardError

ACTIONS: dict[str, Action] = {
    name: module
    for module in (
        Rollback(),
        EcsRollback(),
        Flag(),
        ConfigRevert(),
        RevertRecentChange(),
        ShiftTraffic(),
        ZonalShift(),
    )
    for name in module.names
}


def action_for(name: str) -> Action:
    """The module that takes (or took) ``name``: a ladder step's ``action``, or the concrete action a step recorded."""
    try:
        return ACTIONS[name]
    except KeyError:
        raise RollguardError(f"unknown action {name!r} (known: {', '.join(ACTIONS)})") from None


__all__ = ["ACTIONS", "Action", "Adapters", "Left", "StepOutcome", "action_for"]
