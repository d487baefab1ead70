"""The real ASL, executed in moto's interpreter with the real handlers, for every branch: asserting on
the execution history (the states a reader sees in the console) and on the audit trail."""

import json
from pathlib import Path
from typing import Any

import pytest
from rollguard_cli.drills import SCENARIOS, Scenario, Stage, run_scenario
from rollguard_cli.sandbox.runner import Sandbox
from rollguard_cli.sandbox.world import ServiceSpec

from tests.conftest import audit_events, context, load_event, lock_items

pytestmark = pytest.mark.slow


def states(result: dict[str, Any]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in result["execution_history"] if e["type"].endswith("Entered")]


def kinds(result: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in result["audit_events"]]


def closed(result: dict[str, Any]) -> dict[str, Any]:
    [event] = [e for e in result["audit_events"] if e["kind"] == "incident_closed"]
    return event


def assert_closed_cleanly(result: dict[str, Any], outcome: str) -> None:
    assert result["outcome"] == outcome
    assert result["lock_released"], "every path releases the target's lock"
    assert closed(result)["result"] == outcome
    assert len(result["notifications"]) == 1 and result["incident_id"] in result["notifications"][0]


def test_bad_deploy_canary_recovers_then_widens_then_resolves() -> None:
    result = run_scenario(SCENARIOS["bad-deploy"])

    assert states(result) == [
        "Assess the alarm and recent deployments",
        "Is a recent deployment to blame?",
        "Take the next remediation step",
        "Wait for the verification window",
        "Verify recovery",
        "What next?",
        "Take the next remediation step",
        "Wait for the verification window",
        "Verify recovery",
        "What next?",
        "Close as resolved",
    ]
    assert kinds(result) == [
        "alarm_received",
        "assessed",
        "action",
        "verification",
        "action",
        "verification",
        "incident_closed",
    ]
    canary, full = result["actions"]
    assert (canary["scope"], canary["verdict"], full["scope"], full["verdict"]) == (
        "canary",
        "recovered",
        "full",
        "recovered",
    )
    assert len(canary["deployment_ids"]) == 2, "the bad deployment and the rollback deployment are both recorded"
    assert full["deployment_ids"] == canary["deployment_ids"], "widening lets CodeDeploy finish the same canary"
    waits = [e for e in result["execution_history"] if e["type"] == "WaitStateEntered"]
    seconds = [json.loads(e["stateEnteredEventDetails"]["input"])["progress"]["wait_seconds"] for e in waits]
    assert seconds[0] == 300 and 300 < seconds[1] <= 300 + 11 * 60, "the widened window waits for the shift"
    assert result["alias_final"] == {"6": 1.0}
    assert_closed_cleanly(result, "resolved")


def test_slice_as_bad_as_the_rest_escalates_without_widening() -> None:
    result = run_scenario(SCENARIOS["not-the-deploy"])

    assert states(result)[-2:] == ["What next?", "Escalate to on-call"]
    assert [a["scope"] for a in result["actions"]] == ["canary"]
    assert "the deploy is not the cause" in closed(result)["reason"]
    assert "stopped" in closed(result)["reason"], "traffic stops moving: the canary is stopped"
    assert_closed_cleanly(result, "escalated")


def test_no_recent_deployment_closes_without_acting() -> None:
    result = run_scenario(SCENARIOS["no-recent-deploy"])

    assert states(result) == [
        "Assess the alarm and recent deployments",
        "Is a recent deployment to blame?",
        "Close without acting",
    ]
    assert result["actions"] == []
    assert "not caused by a deploy" in closed(result)["reason"]
    assert_closed_cleanly(result, "closed_no_action")


FULL_ONLY = """
version: 1
policies:
  - name: checkout-5xx
    trigger: {alarms: [checkout-5xx-rate], require_change_within: 30m}
    target: {codedeploy: {application: checkout, deployment_group: checkout-prod}}
    ladder:
      - {action: rollback, scope: full, verify: {window: 5m}}
"""


def test_full_rollback_that_does_not_recover_exhausts_the_ladder_and_escalates(tmp_path: Path) -> None:
    policy = tmp_path / "full-only.yaml"
    policy.write_text(FULL_ONLY)

    result = run_scenario(SCENARIOS["not-the-deploy"], policy_file=policy)

    assert [(a["scope"], a["verdict"]) for a in result["actions"]] == [("full", "not_recovered")]
    assert "no steps left" in closed(result)["reason"]
    assert_closed_cleanly(result, "escalated")


def test_too_little_traffic_is_inconclusive_extends_once_then_escalates() -> None:
    result = run_scenario(SCENARIOS["bad-deploy"], service=ServiceSpec(requests_per_minute=40))

    verifications = [e for e in result["audit_events"] if e["kind"] == "verification"]
    assert [v["result"] for v in verifications] == ["inconclusive", "inconclusive"]
    assert states(result).count("Wait for the verification window") == 2
    assert "still inconclusive" in closed(result)["reason"]
    assert_closed_cleanly(result, "escalated")


def test_in_flight_deployment_is_stopped_with_automatic_rollback_and_judged_on_the_aggregate() -> None:
    result = run_scenario(SCENARIOS["in-flight-canary"])

    [action] = result["actions"]
    assert "stopped in-flight deployment" in action["detail"] and action["verdict"] == "recovered"
    assert len(action["deployment_ids"]) == 2, "the stopped deployment and CodeDeploy's rollback deployment"
    assert "stop Pending" in action["detail"], "StopDeployment answers Pending; the rollback id is read later"
    assert result["alias_final"] == {"6": 1.0}
    assert_closed_cleanly(result, "resolved")


@pytest.mark.parametrize(
    ("operation", "code", "error_name"),
    [
        ("CreateDeployment", "AccessDeniedException", "PermissionDenied"),
        ("CreateDeployment", "InvalidRevisionException", "RollbackFailed"),
    ],
)
def test_a_failing_action_is_caught_recorded_and_escalated_with_the_reason(
    operation: str, code: str, error_name: str
) -> None:
    def deny(sb: Sandbox) -> None:
        sb.inject_fault(operation, code, "not allowed here", function="rollguard-remediation/act")

    result = run_scenario(SCENARIOS["bad-deploy"], prepare=deny)

    assert states(result)[-1] == "Record the failure and escalate"
    [failed] = [e for e in result["audit_events"] if e["kind"] == "action"]
    assert failed["result"] == "failed" and code in failed["reason"]
    assert closed(result)["reason"].startswith(f"{error_name}: ") and "not allowed here" in closed(result)["reason"]
    assert_closed_cleanly(result, "escalated")


def test_throttling_that_outlives_botocore_retries_is_retried_by_the_state_machine() -> None:
    def throttle_once(sb: Sandbox) -> None:
        sb.inject_fault(
            "ListDeployments", "ThrottlingException", "Rate exceeded", function="rollguard-remediation/assess", times=1
        )

    result = run_scenario(SCENARIOS["bad-deploy"], prepare=throttle_once)

    failures = [e for e in result["execution_history"] if e["type"] == "LambdaFunctionFailed"]
    assert [f["lambdaFunctionFailedEventDetails"]["error"] for f in failures] == ["TransientAwsError"]
    assert_closed_cleanly(result, "resolved")


def test_a_throttled_approval_request_is_retried_and_still_recorded_once() -> None:
    """The request's audit write is throttled past botocore's retries: the state machine retries the task, which
    stores its (new) token, writes the request once and pages again; the approval answers it."""

    def throttle_once(sb: Sandbox) -> None:
        sb.inject_fault("PutItem", "ThrottlingException", "Rate exceeded", function="rollguard-approval", times=1)

    result = run_scenario(SCENARIOS["approval-granted"], prepare=throttle_once)

    failures = [e for e in result["execution_history"] if e["type"] == "TaskFailed"]  # a service integration's task
    assert [f["taskFailedEventDetails"]["error"] for f in failures] == ["TransientAwsError"]
    assert [e["kind"] for e in result["audit_events"]].count("approval_requested") == 1
    assert result["outcome"] == closed(result)["result"] == "resolved" and result["lock_released"]
    assert [n.splitlines()[0] for n in result["notifications"]] == [
        "Subject: [Rollguard] APPROVAL NEEDED: checkout-5xx",  # the failed attempt wrote before it paged
        "Subject: [Rollguard] RESOLVED: checkout-5xx",
    ]


def test_a_failure_after_the_canary_was_created_retries_act_without_a_second_deployment() -> None:
    """The audit write after CreateDeployment fails: Step Functions retries Act, which finds its own canary and
    continues; CodeDeploy sees one deployment, the incident resolves."""
    seen: dict[str, Any] = {}

    def fail_the_audit_write_once(sb: Sandbox) -> None:
        seen["log"] = sb.log
        sb.inject_fault(
            "PutItem", "ThrottlingException", "Rate exceeded", function="rollguard-remediation/act", times=1
        )

    result = run_scenario(SCENARIOS["bad-deploy"], prepare=fail_the_audit_write_once)

    failures = [e for e in result["execution_history"] if e["type"] == "LambdaFunctionFailed"]
    assert [f["lambdaFunctionFailedEventDetails"]["error"] for f in failures] == ["TransientAwsError"]
    created = [c for c in seen["log"].aws_calls if c == ("rollguard-remediation/act", "codedeploy", "CreateDeployment")]
    assert len(created) == 1, "the retried step continued with the canary it had created"
    assert result["alias_final"] == {"6": 1.0}
    assert_closed_cleanly(result, "resolved")


def test_an_alarm_for_a_deleted_deployment_group_escalates_with_the_reason(sandbox: Sandbox) -> None:
    cw = sandbox.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="checkout-5xx-rate",
        Namespace="Checkout",
        MetricName="ErrorRate",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName="checkout-5xx-rate", StateValue="ALARM", StateReason="test")

    opened = sandbox.handlers["rollguard-remediation"](load_event("remediation/intake/alarm.json"), context())
    execution = sandbox.wait_for_execution(opened["incident_id"])

    assert execution["status"] == "SUCCEEDED"
    events = audit_events(sandbox, opened["incident_id"])
    [closing] = [e for e in events if e["kind"] == "incident_closed"]
    assert closing["result"] == "escalated"
    assert closing["reason"].startswith("TargetNotFound: ")
    assert "checkout/checkout-prod" in closing["reason"]
    assert lock_items(sandbox) == []


def test_when_closing_itself_fails_the_fallback_frees_the_lock_and_tells_on_call() -> None:
    def break_close(sb: Sandbox) -> None:
        sb.inject_fault("DeleteItem", "InternalServerError", "DynamoDB is having a bad day", function="rollguard-close")

    result = run_scenario(SCENARIOS["no-recent-deploy"], prepare=break_close)

    assert result["execution_status"] == "FAILED"
    assert states(result)[-3:] == ["Release the lock (fallback)", "Tell on-call that closing failed", "Closing failed"]
    assert result["lock_released"]
    assert any("could not be closed normally" in n for n in result["notifications"])
    # Close settled the outcome before it died; the watchdog (EventBridge: execution FAILED) finishes that close
    # instead of starting a second one: the same outcome in the incident and the audit, and on-call told.
    assert result["outcome"] == "closed_no_action"
    assert closed(result)["result"] == "closed_no_action"
    assert closed(result)["parameters"]["closed_by"] == "state machine"
    assert any("CLOSED without action" in n for n in result["notifications"])


def test_a_flag_step_that_appconfig_refuses_escalates_with_the_reason() -> None:
    def deny(sb: Sandbox) -> None:
        sb.inject_fault(
            "StartDeployment",
            "AccessDeniedException",
            "no appconfig:StartDeployment",
            function="rollguard-remediation/act",
        )

    result = run_scenario(SCENARIOS["flag-kill-switch"], prepare=deny)

    assert states(result)[-1] == "Record the failure and escalate"
    [failed] = [e for e in result["audit_events"] if e["kind"] == "action"]
    assert failed["result"] == "failed" and failed["parameters"]["action"] == "flag_off"
    assert closed(result)["reason"].startswith("PermissionDenied: ")
    assert_closed_cleanly(result, "escalated")


def test_revert_recent_change_takes_the_next_change_when_the_first_revert_does_not_recover() -> None:
    # blame-the-deploy's changes: the bad release (newest), then a flag flip. Make the flag the real culprit
    # too, so undoing the release alone does not recover and the second step undoes the flag.
    def flag_also_bad(stage: Stage) -> None:
        from rollguard_cli.drills import _blame_the_deploy

        _blame_the_deploy(stage)
        stage.behave(lambda v, live: 0.2 if live.flag("new-pricing") else None)

    scenario = Scenario("both", "two culprits", "resolved", flag_also_bad, "sandbox-blame.yaml")

    result = run_scenario(scenario)

    assert [(a["action"], a["verdict"]) for a in result["actions"]] == [
        ("rollback", "not_recovered"),
        ("flag_off", "recovered"),
    ]
    assert_closed_cleanly(result, "resolved")
