"""plan_assessment: is there a recent deployment to blame, and a known-good revision to go back to?"""

from collections.abc import Callable
from typing import Any

import pytest
from rollguard.assess import plan_assessment
from rollguard.errors import NothingToRollBack
from rollguard.incident import Assessment, DeploymentRef
from rollguard.policy import Policy

from tests.unit.builders import ONSET

ALARM = "checkout-5xx-rate"
MakeDeployment = Callable[..., DeploymentRef]


@pytest.fixture
def policy(make_policy: Callable[..., Policy]) -> Policy:
    return make_policy()  # require_change_within: 30m, target checkout/checkout-prod


def assess(policy: Policy, *deployments: DeploymentRef, alarm_state: str = "ALARM") -> Assessment:
    """Like CodeDeploy.deployments(): the history is handed over newest first."""
    history = sorted(deployments, key=lambda d: d.create_time, reverse=True)
    return plan_assessment(alarm_state, ONSET, history, policy, ALARM)


def test_an_alarm_already_back_to_ok_needs_no_action(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(policy, make_deployment("d-7", 10), make_deployment("d-6", 600, label="6"), alarm_state="OK")
    assert result.decision == "no_action"
    assert result.reason == "checkout-5xx-rate was back to OK before any action"
    assert result.bad is None
    assert result.summary == f"No action: {result.reason}."


def test_no_deployment_at_all_is_not_caused_by_a_deploy(policy: Policy) -> None:
    result = assess(policy)
    assert result.decision == "no_action"
    assert result.reason == (
        "not caused by a deploy: no deployment of checkout/checkout-prod in the 30m before checkout-5xx-rate fired"
    )


def test_no_deployment_in_the_window_names_the_last_deployment_and_its_age(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(policy, make_deployment("d-7", 120), make_deployment("d-6", 24 * 60, label="6"))
    assert result.decision == "no_action"
    assert result.reason.startswith("not caused by a deploy: ")
    assert result.reason.endswith("; the last deployment, d-7, was 2h before the alarm")
    assert result.bad is None


def test_a_deployment_exactly_at_the_window_edge_is_in_scope(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(policy, make_deployment("d-7", 30), make_deployment("d-6", 600, label="6"))
    assert result.decision == "act"
    assert result.bad is not None and result.bad.deployment_id == "d-7"


def test_a_deployment_just_older_than_the_window_is_out_of_scope(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(policy, make_deployment("d-7", 30 + 1 / 60), make_deployment("d-6", 600, label="6"))
    assert result.decision == "no_action"
    assert "the last deployment, d-7, was 30m" in result.reason


def test_a_deployment_stamped_just_after_the_alarm_is_in_scope_for_clock_skew(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(policy, make_deployment("d-7", -0.75), make_deployment("d-6", 600, label="6"))
    assert result.decision == "act"
    assert result.bad is not None and result.bad.deployment_id == "d-7"


def test_a_deployment_started_well_after_the_alarm_is_not_blamed(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(policy, make_deployment("d-8", -5), make_deployment("d-6", 600, label="6"))
    assert result.decision == "no_action"
    assert result.bad is None


def test_the_newest_deployment_in_the_window_is_the_suspect(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(
        policy,
        make_deployment("d-7", 5, label="7"),
        make_deployment("d-6", 20, label="6"),
        make_deployment("d-5", 600, label="5"),
    )
    assert result.decision == "act"
    assert result.bad is not None and result.bad.deployment_id == "d-7"
    assert result.last_good is not None and result.last_good.deployment_id == "d-6"


@pytest.mark.parametrize(
    "ours",
    [
        {"creator": "codeDeployRollback"},
        {"creator": "CloudFormationRollback"},  # a stack rollback redeploys what was there: undo, not change
        {"description": "Rollguard checkout-5xx-20250304T115000Z-abcdef: canary rollback"},
    ],
    ids=["codedeploy-rollback", "cloudformation-rollback", "rollguard-description"],
)
def test_rollback_deployments_are_never_blamed(
    policy: Policy, make_deployment: MakeDeployment, ours: dict[str, Any]
) -> None:
    result = assess(
        policy,
        make_deployment("d-rollback", 2, label="6", **ours),
        make_deployment("d-7", 10, label="7"),
        make_deployment("d-6", 600, label="6"),
    )
    assert result.bad is not None and result.bad.deployment_id == "d-7"


def test_only_rollback_deployments_in_the_window_means_no_deploy_to_blame(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(
        policy,
        make_deployment("d-rollback", 2, label="6", creator="codeDeployRollback"),
        make_deployment("d-rollguard", 4, label="6", description="Rollguard inc-1: full rollback"),
        make_deployment("d-6", 180, label="6"),
    )
    assert result.decision == "no_action"
    assert result.reason.startswith("not caused by a deploy")
    assert "the last deployment, d-6, was 3h before the alarm" in result.reason


def test_a_description_merely_mentioning_rollguard_is_still_blamed(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(
        policy,
        make_deployment("d-7", 10, label="7", description="ship the Rollguard dashboard"),
        make_deployment("d-6", 600, label="6"),
    )
    assert result.bad is not None and result.bad.deployment_id == "d-7"


@pytest.mark.parametrize("status", ["Stopped", "Failed"])
def test_a_suspect_codedeploy_already_stopped_or_failed_needs_no_action(
    policy: Policy, make_deployment: MakeDeployment, status: str
) -> None:
    result = assess(policy, make_deployment("d-7", 10, status=status), make_deployment("d-6", 600, label="6"))
    assert result.decision == "no_action"
    assert result.reason == f"deployment d-7 is already {status}; CodeDeploy handled it"
    assert result.bad is not None and result.bad.deployment_id == "d-7"


def test_last_good_is_the_newest_earlier_success_with_a_different_revision(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(
        policy,
        make_deployment("d-7", 10, label="7"),
        make_deployment("d-7-earlier", 120, label="7"),  # same revision: not a way back
        make_deployment("d-6-failed", 180, label="6", status="Failed"),
        make_deployment("d-6-stopped", 200, label="6", status="Stopped"),
        make_deployment("d-6", 24 * 60, label="6"),
        make_deployment("d-5", 48 * 60, label="5"),
    )
    assert result.last_good is not None and result.last_good.deployment_id == "d-6"


def test_last_good_ignores_deployments_newer_than_the_suspect(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(
        policy,
        make_deployment("d-rollback", 2, label="8", creator="codeDeployRollback"),
        make_deployment("d-7", 10, label="7"),
        make_deployment("d-6", 600, label="6"),
    )
    assert result.last_good is not None and result.last_good.deployment_id == "d-6"


def test_a_completed_suspect_explains_itself_and_its_way_back(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(policy, make_deployment("d-7", 10, label="7"), make_deployment("d-6", 600, label="6"))
    assert result.decision == "act"
    assert result.in_flight is False
    assert result.reason == "deployment d-7 (revision 7, Succeeded) started 10m before checkout-5xx-rate fired"
    assert result.summary == f"Suspect {result.reason}; last good: revision 6 (d-6)."


def test_a_completed_suspect_without_an_earlier_success_cannot_be_rolled_back(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    with pytest.raises(NothingToRollBack) as caught:
        assess(
            policy,
            make_deployment("d-7", 10, label="7"),
            make_deployment("d-6", 600, label="6", status="Failed"),
            make_deployment("d-7-earlier", 900, label="7"),
        )
    message = str(caught.value)
    assert "d-7" in message
    assert "checkout/checkout-prod" in message
    assert "no earlier succeeded revision" in message


@pytest.mark.parametrize("status", ["Created", "Queued", "InProgress", "Baking", "Ready"])
def test_an_in_flight_suspect_without_a_last_good_is_still_acted_on(
    policy: Policy, make_deployment: MakeDeployment, status: str
) -> None:
    result = assess(policy, make_deployment("d-7", 3, status=status))
    assert result.decision == "act"
    assert result.in_flight is True
    assert result.last_good is None
    assert result.bad is not None and result.bad.deployment_id == "d-7"
    assert result.summary.endswith("in flight: CodeDeploy can roll it back.")


def test_an_in_flight_suspect_with_a_last_good_records_both(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(policy, make_deployment("d-7", 3, status="InProgress"), make_deployment("d-6", 600, label="6"))
    assert result.in_flight is True
    assert result.last_good is not None and result.last_good.deployment_id == "d-6"


def test_the_window_follows_the_policy(make_policy: Callable[..., Policy], make_deployment: MakeDeployment) -> None:
    wide = make_policy(trigger={"alarms": [ALARM], "require_change_within": "3h"})
    result = assess(wide, make_deployment("d-7", 120), make_deployment("d-6", 600, label="6"))
    assert result.decision == "act"
    assert result.bad is not None and result.bad.deployment_id == "d-7"
