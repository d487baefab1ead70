"""Closing an incident: the notification text and the one-line reason it records."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from rollguard.closing import closing_reason, compose_message
from rollguard.incident import ExecutionState

from tests.unit.builders import policy_dict

MakeState = Callable[..., ExecutionState]

ASSESSMENT: dict[str, Any] = {
    "decision": "act",
    "reason": "deployment d-7 (revision 7, Succeeded) started 10m before checkout-5xx-rate fired",
    "summary": "Suspect deployment d-7 (revision 7, Succeeded) started 10m before checkout-5xx-rate fired; "
    "last good: revision 6 (d-6).",
}
ACTIONS: list[dict[str, Any]] = [
    {
        "step": 0,
        "action": "rollback",
        "scope": "canary",
        "started_at": "2025-03-04T12:01:00.000Z",
        "result": "ok",
        "deployment_ids": ["d-7", "d-8"],
        "detail": "canary rollback d-8 to revision 6 (CodeDeployDefault.LambdaCanary10Percent15Minutes)",
        "verdict": "recovered",
    },
    {
        "step": 1,
        "action": "rollback",
        "scope": "full",
        "started_at": "2025-03-04T12:06:30.000Z",
        "result": "ok",
        "deployment_ids": ["d-7", "d-8", "d-9"],
        "detail": "widened canary to a full rollback d-9 to revision 6 (CodeDeployDefault.LambdaAllAtOnce)",
    },
]


def progress(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "step": 1,
        "action": "rollback",
        "scope": "full",
        "summary": "",
        "wait_seconds": 300,
        "judge": "aggregate",
        "full_rollback_done": True,
        "actions": ACTIONS,
        "verdict": "recovered",
        "reason": "checkout-5xx-rate is OK and its last 2 datapoints [1, 2] are within 5 (recovered)",
    }
    return {**base, **fields}


def lambda_error(error: str, message: str) -> dict[str, str]:
    cause = {"errorMessage": message, "errorType": error, "requestId": "r-1", "stackTrace": ["  File app.py"]}
    return {"Error": error, "Cause": json.dumps(cause)}


@pytest.fixture
def resolved(make_state: MakeState) -> ExecutionState:
    return make_state(assessment=ASSESSMENT, progress=progress())


# ---------------------------------------------------------------- compose_message


def test_the_message_opens_with_the_incident_id_and_the_outcome(resolved: ExecutionState) -> None:
    message = compose_message(resolved, "resolved", "recovered")
    assert message.splitlines()[0] == "Rollguard incident checkout-5xx-20250304T120000Z-a1b2c3: RESOLVED"


@pytest.mark.parametrize(
    ("outcome", "headline"),
    [
        ("resolved", "RESOLVED"),
        ("escalated", "ESCALATED — action needed"),
        ("closed_no_action", "CLOSED without action"),
    ],
)
def test_each_outcome_has_its_own_headline_and_next_step(resolved: ExecutionState, outcome: Any, headline: str) -> None:
    lines = compose_message(resolved, outcome, "why").splitlines()
    assert lines[0].endswith(f": {headline}")
    assert sum(line.startswith("Next:") for line in lines) == 1


def test_the_message_gives_the_reason_the_alarm_and_its_state(resolved: ExecutionState) -> None:
    message = compose_message(resolved, "resolved", "the alarm recovered")
    assert "Why:      the alarm recovered" in message
    assert "Alarm:    checkout-5xx-rate (ALARM at 2025-03-04T12:00:00.000+0000)" in message
    assert "Threshold Crossed: 2 out of the last 3 datapoints" in message


def test_the_message_names_the_target_and_policy(resolved: ExecutionState) -> None:
    message = compose_message(resolved, "resolved", "recovered")
    assert "Target:   codedeploy:checkout/checkout-prod (policy checkout-5xx)" in message


def test_the_message_summarises_the_suspect_change(resolved: ExecutionState) -> None:
    assert f"Change:   {ASSESSMENT['summary']}" in compose_message(resolved, "resolved", "recovered")


def test_the_message_lists_each_action_with_its_verdict_or_result(resolved: ExecutionState) -> None:
    actions = [line for line in compose_message(resolved, "resolved", "x").splitlines() if line.startswith("Action:")]
    assert actions == [
        f"Action:   step 1 rollback canary at 2025-03-04T12:01:00.000Z: {ACTIONS[0]['detail']} → recovered",
        f"Action:   step 2 rollback full at 2025-03-04T12:06:30.000Z: {ACTIONS[1]['detail']} → ok",
    ]


def test_the_message_links_the_runbook_and_the_alarm_console(resolved: ExecutionState) -> None:
    message = compose_message(resolved, "resolved", "recovered")
    assert "Runbook:  https://wiki.example.com/runbooks/checkout" in message
    assert (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/checkout-5xx-rate"
    ) in message


def test_a_policy_without_a_runbook_omits_the_runbook_line(make_state: MakeState) -> None:
    state = make_state(policy=policy_dict(escalate={}))
    assert "Runbook:" not in compose_message(state, "escalated", "why")


def test_a_message_without_assessment_or_progress_still_carries_the_essentials(make_state: MakeState) -> None:
    message = compose_message(make_state(), "escalated", "States.Timeout: assess timed out")
    assert "checkout-5xx-20250304T120000Z-a1b2c3" in message
    assert "checkout-5xx-rate" in message
    assert "Change:" not in message
    assert "Action:" not in message


# ---------------------------------------------------------------- closing_reason


def test_the_task_error_wins_and_its_lambda_cause_is_unwrapped(make_state: MakeState) -> None:
    state = make_state(
        assessment=ASSESSMENT,
        progress=progress(),
        error=lambda_error("NothingToRollBack", "no succeeded revision before d-7"),
    )
    assert closing_reason(state, "escalated") == "NothingToRollBack: no succeeded revision before d-7"


def test_a_task_error_whose_cause_is_not_json_is_quoted_as_is(make_state: MakeState) -> None:
    state = make_state(error={"Error": "States.Timeout", "Cause": "Task timed out after 60.00 seconds"})
    assert closing_reason(state, "escalated") == "States.Timeout: Task timed out after 60.00 seconds"


def test_a_task_error_whose_cause_is_json_but_not_an_object_is_quoted_as_is(make_state: MakeState) -> None:
    state = make_state(error={"Error": "States.Runtime", "Cause": '["a", "b"]'})
    assert closing_reason(state, "escalated") == 'States.Runtime: ["a", "b"]'


def test_without_an_error_the_progress_reason_is_used(make_state: MakeState) -> None:
    state = make_state(assessment=ASSESSMENT, progress=progress())
    assert closing_reason(state, "resolved") == progress()["reason"]


def test_an_empty_progress_reason_falls_back_to_the_assessment(make_state: MakeState) -> None:
    state = make_state(assessment=ASSESSMENT, progress=progress(reason=""))
    assert closing_reason(state, "escalated") == ASSESSMENT["reason"]


def test_without_progress_the_assessment_reason_is_used(make_state: MakeState) -> None:
    no_action = {"decision": "no_action", "reason": "not caused by a deploy", "summary": "No action."}
    assert closing_reason(make_state(assessment=no_action), "closed_no_action") == "not caused by a deploy"


def test_with_nothing_learned_the_outcome_is_the_reason(make_state: MakeState) -> None:
    assert closing_reason(make_state(), "escalated") == "escalated"


def test_the_chat_form_is_an_aws_chatbot_custom_notification(resolved: ExecutionState) -> None:
    from rollguard.closing import compose_chat

    chat = compose_chat(resolved, "resolved", "recovered", "arn:aws:states:us-east-1:1:execution:sm:inc")

    assert (chat["version"], chat["source"]) == ("1.0", "custom")
    content = chat["content"]
    assert content["textType"] == "client-markdown" and "RESOLVED" in content["title"]
    assert (
        "checkout-5xx-rate" in content["description"] and "codedeploy:checkout/checkout-prod" in content["description"]
    )
    assert any(step.startswith("Execution: https://") for step in content["nextSteps"])
    assert any("runbook" in step.lower() for step in content["nextSteps"])


def test_shadow_notifications_say_so(resolved: ExecutionState) -> None:
    shadow = resolved.model_copy(update={"policy": resolved.policy.model_copy(update={"mode": "shadow"})})

    message = compose_message(shadow, "escalated", "not recovered")

    assert "[SHADOW]" in message and "nothing was changed" in message


SUSPECT = {
    "deployment_id": "4442553428336830128",
    "status": "Succeeded",
    "revision": {"taskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/payments:3"},
    "revision_label": "payments:3",
    "create_time": "2025-03-04T11:50:00+00:00",
    "compute_platform": "ECS",
}


def test_an_ecs_rolling_suspect_links_the_services_deployments_not_a_codedeploy_page(make_state: MakeState) -> None:
    full = [{"action": "rollback", "scope": "full", "verify": {"window": "5m"}}]
    rolling = policy_dict(target={"ecs": {"cluster": "prod", "service": "payments"}}, ladder=full)
    state = make_state(policy=rolling, target_key="ecs:prod/payments", assessment={**ASSESSMENT, "bad": SUSPECT})

    message = compose_message(state, "escalated", "why")

    assert "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/payments/deployments" in message
    assert "codedeploy/deployments" not in message


def test_a_member_accounts_links_say_its_account_and_the_execution_is_the_central_regions(
    make_state: MakeState,
) -> None:
    """A console URL cannot name an account: the alarm's link says which one to sign in to; the execution is the
    central stack's, in the region its ARN names, not the alarm's."""
    state = make_state(
        assessment=ASSESSMENT,
        progress=progress(),
        target_key="222222222222/eu-west-1/codedeploy:checkout/checkout-prod",
        location={
            "account": "222222222222",
            "region": "eu-west-1",
            "role_arn": "arn:aws:iam::222222222222:role/rollguard-execution",
        },
    )
    execution = f"arn:aws:states:us-east-1:123456789012:execution:rollguard-remediation:{state.incident_id}"

    lines = compose_message(state, "resolved", "recovered", execution_arn=execution).splitlines()

    links = [line.strip() for line in lines[lines.index("Links:") + 1 :][:2]]
    assert links[0].startswith("Alarm (222222222222) https://eu-west-1.console.aws.amazon.com/cloudwatch/")
    assert links[1].startswith("Execution   https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1")
