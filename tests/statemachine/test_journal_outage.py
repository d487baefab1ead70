"""The real ASL when the change journal missed a change: Assess escalates "cannot tell what changed" rather than
closing with "no change", and a journal fault that Lambda's retry outlives changes nothing."""

from typing import Any

import pytest
from rollguard.adapters.dynamo import from_item
from rollguard_cli.drills import SCENARIOS, Scenario, Stage, run_scenario
from rollguard_cli.sandbox.runner import TABLES, Sandbox

from tests.statemachine.test_branches import assert_closed_cleanly, closed, states

pytestmark = pytest.mark.slow


def flag_flip_while(fault: dict[str, Any]) -> Scenario:
    """flag-kill-switch, with the journal's DynamoDB call failing as ``fault`` says when the flag goes on."""

    def setup(stage: Stage) -> None:
        stage.appconfig()
        stage.deploy("6")
        stage.sb.advance(45 * 60)
        stage.sb.inject_fault(function="rollguard-journal", **fault)
        stage.behave(lambda v, live: 0.15 if live.flag("new-pricing") else None)
        stage.flip("new-pricing", True)

    return Scenario("flag-flip-journal-fault", "", "escalated", setup, "sandbox-kill-switch.yaml")


def gaps(sb: Sandbox) -> list[dict[str, Any]]:
    items = sb.client("dynamodb").scan(TableName=TABLES["ChangesTable"])["Items"]
    return [from_item(i) for i in items if i["change_id"]["S"].startswith("gap#")]


def assessed(result: dict[str, Any]) -> dict[str, Any]:
    [event] = [e for e in result["audit_events"] if e["kind"] == "assessed"]
    return event


def test_a_change_the_journal_could_not_record_leaves_a_gap_and_assess_escalates() -> None:
    scenario = flag_flip_while({"operation": "UpdateItem", "code": "InternalServerError", "status": 500})
    seen: dict[str, Any] = {}

    result = run_scenario(scenario, prepare=lambda sb: seen.update(gaps=gaps(sb)))

    assert [(g["scope_key"], g["state"]) for g in seen["gaps"]] == [("appconfig:checkout/prod", "open")] * 2
    assert states(result) == [
        "Assess the alarm and recent deployments",
        "Is a recent deployment to blame?",
        "Escalate to on-call",
    ]
    assert result["actions"] == [], "nothing is undone on a guess"
    reason = closed(result)["reason"]
    assert reason.startswith("cannot tell what changed: the change journal may be missing events between ")
    assert "(2 events of appconfig:checkout/prod could not be recorded" in reason, "the flip's start and complete"
    assert "no flag or configuration change" not in reason
    assert assessed(result)["result"] == "escalate" and assessed(result)["parameters"]["journal_gap"]
    assert_closed_cleanly(result, "escalated")
    assert "cannot tell what changed" in result["notifications"][0]


def test_a_journal_fault_that_lambdas_retry_outlives_is_resolved_and_the_flag_is_turned_off() -> None:
    # The first attempt of both of the flip's events fails; Lambda's retry a minute later records them.
    scenario = flag_flip_while({"operation": "UpdateItem", "code": "ThrottlingException", "times": 2})
    scenario = Scenario(scenario.name, "", "resolved", scenario.setup, scenario.policy)
    seen: dict[str, Any] = {}

    result = run_scenario(scenario, prepare=lambda sb: seen.update(gaps=gaps(sb)))

    assert [g["state"] for g in seen["gaps"]] == ["open", "open"], "right after the flip, before the retries"
    assert assessed(result)["parameters"]["journal_gap"] is None, "the retries resolved both gaps before Assess"
    assert [(a["action"], a["verdict"]) for a in result["actions"]] == [("flag_off", "recovered")]
    assert_closed_cleanly(result, "resolved")


def test_the_journal_outage_drill_escalates_with_the_dead_letter_queue_as_its_reason() -> None:
    result = run_scenario(SCENARIOS["journal-outage"])

    reason = closed(result)["reason"]
    assert reason.startswith("cannot tell what changed: the change journal may be missing events between ")
    assert "in the journal's dead-letter queue" in reason
    assert result["actions"] == [] and result["alias_final"] == {"6": 1.0}
    assert_closed_cleanly(result, "escalated")
