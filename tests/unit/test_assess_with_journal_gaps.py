"""plan_assessment when the change journal may be incomplete: "no change" is a guess, so a human decides."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from rollguard import clock
from rollguard.assess import plan_assessment
from rollguard.incident import Assessment, DeploymentRef
from rollguard.journal import Change
from rollguard.policy import Policy

from tests.unit.builders import ONSET

ALARM = "checkout-5xx-rate"
GAP = "the change journal may be missing events between A and B (1 message in the journal's dead-letter queue)"
MakeDeployment = Callable[..., DeploymentRef]
BOTH = {
    "codedeploy": {"application": "checkout", "deployment_group": "checkout-prod"},
    "appconfig": {"application": "checkout", "environment": "prod"},
}


@pytest.fixture
def policy(make_policy: Callable[..., Policy]) -> Policy:
    return make_policy(target=BOTH)


def flag_flip(minutes_before_onset: float) -> Change:
    return Change(
        scope_key="appconfig:checkout/prod",
        change_id="us-east-1:env:3",
        kind="flag",
        at=clock.iso(ONSET - timedelta(minutes=minutes_before_onset)),
        state="COMPLETE",
        region="us-east-1",
        detail={"profile": "checkout-flags", "version": "3", "environment": "prod", "deployment_number": 3},
    )


def assess(
    policy: Policy,
    *deployments: DeploymentRef,
    changes: list[Change] | None = None,
    gap: str | None = GAP,
    alarm_state: str = "ALARM",
) -> Assessment:
    history = sorted(deployments, key=lambda d: d.create_time, reverse=True)
    return plan_assessment(alarm_state, ONSET, history, policy, ALARM, changes or [], gap)


def test_no_deploy_and_an_incomplete_journal_escalates_instead_of_closing(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    result = assess(policy, make_deployment("d-6", 120, label="6"))

    assert result.decision == "escalate"
    assert result.reason == (
        f"cannot tell what changed: {GAP}; no deployment of checkout/checkout-prod in the 30m before "
        "checkout-5xx-rate fired; the last deployment, d-6, was 2h before the alarm"
    )
    assert result.summary == f"Escalating: {result.reason}."
    assert result.bad is None and result.changes == []


def test_a_complete_journal_still_closes_with_no_change(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(policy, make_deployment("d-6", 120, label="6"), gap=None)

    assert result.decision == "no_action"
    assert "no flag or configuration change of checkout/prod in that window" in result.reason


def test_a_deploy_codedeploy_already_handled_and_an_incomplete_journal_escalates(
    policy: Policy, make_deployment: MakeDeployment
) -> None:
    stopped = make_deployment("d-7", 10, status="Stopped")

    result = assess(policy, stopped, make_deployment("d-6", 600, label="6"))

    assert result.decision == "escalate"
    assert result.bad is not None and result.bad.deployment_id == "d-7", "the handled deployment is still reported"


def test_a_change_the_journal_did_record_is_still_acted_on(policy: Policy) -> None:
    result = assess(policy, changes=[flag_flip(5)])

    assert result.decision == "act"
    assert [c.change_id for c in result.changes] == ["us-east-1:env:3"]


def test_a_deploy_to_blame_is_still_acted_on(policy: Policy, make_deployment: MakeDeployment) -> None:
    result = assess(policy, make_deployment("d-7", 10), make_deployment("d-6", 600, label="6"))

    assert result.decision == "act"
    assert result.bad is not None and result.bad.deployment_id == "d-7"


def test_an_alarm_back_to_ok_needs_no_action_whatever_the_journal_says(policy: Policy) -> None:
    assert assess(policy, alarm_state="OK").decision == "no_action"


def test_a_codedeploy_only_target_reads_no_journal_and_is_not_held_up(make_policy: Callable[..., Policy]) -> None:
    result = assess(make_policy())  # no appconfig target: its changes come from CodeDeploy's own API

    assert result.decision == "no_action"
