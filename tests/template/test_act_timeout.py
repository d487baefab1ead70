"""The Act function's timeout fits the AppConfig waits it may make (issue: a timed-out Act has made its change
but written no audit event)."""

from typing import Any

from rollguard.adapters.appconfig import LIVE_WAIT_S, STOP_WAIT_S
from rollguard.runtime import AFTER_THE_ACTION_S

REGIONS_SUPPORTED = 3  # the arithmetic in template.yaml's comment on RemediationFunction.Timeout
CALLS_PER_REGION_S = 10


def test_act_timeout_covers_every_region_stopping_and_deploying(template: dict[str, Any]) -> None:
    act = template["Resources"]["RemediationFunction"]["Properties"]
    timeout = act.get("Timeout", template["Globals"]["Function"]["Timeout"])

    worst = REGIONS_SUPPORTED * (STOP_WAIT_S + LIVE_WAIT_S + CALLS_PER_REGION_S) + AFTER_THE_ACTION_S

    assert timeout >= worst, f"RemediationFunction Timeout {timeout}s < worst case {worst:.0f}s"
    assert timeout <= 900, "Lambda's maximum"
