"""The intake handler on moto, with the events in events/remediation/intake/ (ours and real AWS samples)."""

import json
from pathlib import Path
from typing import Any

import pytest
from rollguard.errors import TransientAwsError
from rollguard_cli.sandbox.runner import Sandbox

from tests.conftest import EVENTS, audit_events, context, hold_executions, incident_item, load_event, lock_items

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)

TARGET = "codedeploy:checkout/checkout-prod"


def intake(sb: Sandbox, event: Any) -> dict[str, Any]:
    return dict(sb.handlers["rollguard-remediation"](event, context()))


def executions(sb: Sandbox) -> list[dict[str, Any]]:
    return list(sb.client("stepfunctions").list_executions(stateMachineArn=sb.state_machine_arn)["executions"])


@pytest.fixture
def holding(sandbox: Sandbox) -> Sandbox:
    hold_executions(sandbox)
    return sandbox


def test_alarm_opens_an_incident_and_starts_its_execution(holding: Sandbox) -> None:
    result = intake(holding, load_event("remediation/intake/alarm.json"))

    assert result["status"] == "opened"
    incident_id = result["incident_id"]
    assert [e["name"] for e in executions(holding)] == [incident_id]
    execution = holding.client("stepfunctions").describe_execution(executionArn=result["execution_arn"])
    started_with = json.loads(execution["input"])
    assert started_with["alarm"]["name"] == "checkout-5xx-rate"
    assert started_with["policy"]["name"] == "checkout-5xx"
    assert started_with["target_key"] == TARGET
    incident = incident_item(holding, incident_id)
    assert incident["status"] == "open" and incident["alarm_count"] == 1
    assert lock_items(holding)[0]["incident_id"]["S"] == incident_id
    [received] = audit_events(holding, incident_id)
    assert received["kind"] == "alarm_received" and received["actor"] == "rollguard-automation"


def test_alarm_storm_for_one_target_yields_one_execution_and_records_every_alarm(holding: Sandbox) -> None:
    base = load_event("remediation/intake/alarm.json")
    results = []
    for i in range(200):
        event = {**base, "id": f"storm-{i:03d}"}
        results.append(intake(holding, event))

    statuses = [r["status"] for r in results]
    assert statuses.count("opened") == 1 and statuses.count("joined") == 199
    [execution] = executions(holding)
    incident_id = execution["name"]
    assert {r["incident_id"] for r in results} == {incident_id}
    received = [e for e in audit_events(holding, incident_id) if e["kind"] == "alarm_received"]
    assert len(received) == 200
    assert incident_item(holding, incident_id)["alarm_count"] == 200


def test_a_redelivered_event_is_recognised_not_counted_twice(holding: Sandbox) -> None:
    event = load_event("remediation/intake/alarm.json")
    first = intake(holding, event)
    again = intake(holding, event)

    assert again == {**again, "status": "duplicate", "incident_id": first["incident_id"]}
    assert incident_item(holding, first["incident_id"])["alarm_count"] == 1
    assert len(executions(holding)) == 1


@pytest.mark.parametrize(
    ("event_file", "status", "reason_mentions"),
    [
        ("remediation/intake/alarm-ok.json", "ignored", "moved to OK"),
        ("remediation/intake/unknown-detail-type.json", "ignored", "CloudWatch Alarm Something New"),
        ("remediation/intake/truncated-no-state.json", "rejected", "detail.state"),
        ("remediation/intake/missing-alarm-name.json", "rejected", "detail.alarmName"),
        ("remediation/intake/aws-samples/lambda-alarm-action-single-metric.json", "ignored", "detail-type None"),
        ("remediation/intake/aws-samples/sns-alarm-single-metric.json", "ignored", "detail-type None"),
    ],
)
def test_events_that_are_not_a_matched_alarm_start_nothing(
    sandbox: Sandbox, event_file: str, status: str, reason_mentions: str, caplog: pytest.LogCaptureFixture
) -> None:
    result = intake(sandbox, load_event(event_file))

    assert result["status"] == status
    assert reason_mentions in result["reason"]
    assert executions(sandbox) == [] and lock_items(sandbox) == []


def test_garbage_that_is_not_even_an_object_is_rejected_with_its_type(sandbox: Sandbox) -> None:
    result = intake(sandbox, '{"version": "0", "detail-type": "CloudWatch Al')

    assert result["status"] == "rejected" and "is a str" in result["reason"]
    assert executions(sandbox) == []


def test_a_rejected_event_logs_a_line_naming_the_problem(sandbox: Sandbox) -> None:
    intake(sandbox, load_event("remediation/intake/truncated-no-state.json"))

    lines = [json.loads(line) for line in sandbox.log_stream.getvalue().splitlines() if line.startswith("{")]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert errors and "detail.state" in errors[-1]["message"] and "Field required" in errors[-1]["message"]


AWS_SAMPLES = sorted((EVENTS / "intake" / "aws-samples").glob("alarm-*.json"))


@pytest.mark.parametrize("sample", AWS_SAMPLES, ids=lambda p: p.stem)
def test_real_aws_samples_open_incidents_only_for_alarm_state_changes_into_alarm(
    sandbox: Sandbox, sample: Path, tmp_path: Path
) -> None:
    event = json.loads(sample.read_text())
    name = event["detail"].get("alarmName", "")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\npolicies:\n  - name: sample\n"
        f"    trigger: {{alarms: ['{name}']}}\n"
        "    target: {codedeploy: {application: app, deployment_group: group}}\n"
        "    ladder: [{action: rollback, scope: full, verify: {window: 5m}}]\n"
    )
    sandbox.set_env(POLICY_FILE=str(policy))

    result = intake(sandbox, event)

    is_state_change = event["detail-type"] == "CloudWatch Alarm State Change"
    goes_to_alarm = event["detail"].get("state", {}).get("value") == "ALARM"
    expected = "opened" if is_state_change and goes_to_alarm else "ignored"
    assert result["status"] == expected, result
    assert len(executions(sandbox)) == (1 if expected == "opened" else 0)


def test_an_alarm_no_policy_claims_is_dropped_not_an_error(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    event = load_event("remediation/intake/aws-samples/alarm-state-change-single-metric.json")  # ServerCpuTooHigh

    result = intake(sandbox, event)

    assert result == {**result, "status": "ignored", "reason": "no policy claims alarm ServerCpuTooHigh"}


def test_an_invalid_policy_file_fails_loudly_so_the_event_is_retried_then_dead_lettered(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from rollguard.policy import PolicyFileInvalid

    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\npolicies: [{name: x}]\n")
    sandbox.set_env(POLICY_FILE=str(broken))

    with pytest.raises(PolicyFileInvalid, match="trigger: Field required"):
        intake(sandbox, load_event("remediation/intake/alarm.json"))
    assert lock_items(sandbox) == []


def test_without_a_policy_of_yours_deployed_no_alarm_is_acted_on(sandbox: Sandbox, tmp_path: Path) -> None:
    """A stack deployed without sam build's policies/deploy/ policy (POLICY_FILE names nothing): the intake refuses,
    naming what to do, so the event is retried then dead-lettered; nothing is locked, opened or started."""
    from rollguard.errors import FunctionMisconfigured

    sandbox.set_env(POLICY_FILE=str(tmp_path / "opt" / "policy.yaml"))  # an empty layer: nothing under /opt

    with pytest.raises(FunctionMisconfigured, match="no policy of yours is deployed") as raised:
        intake(sandbox, load_event("remediation/intake/alarm.json"))
    assert "put your policy there as policy.yaml" in str(raised.value)
    assert lock_items(sandbox) == [] and executions(sandbox) == []


def fail_first_start(sb: Sandbox) -> None:
    """StartExecution is throttled once (beyond botocore's retries): the intake raises TransientAwsError."""
    sb.inject_fault("StartExecution", "ThrottlingException", "Rate exceeded", times=1)


def test_a_failed_start_keeps_the_incident_and_the_next_alarm_starts_it(holding: Sandbox) -> None:
    fail_first_start(holding)
    with pytest.raises(TransientAwsError, match="ThrottlingException"):
        intake(holding, load_event("remediation/intake/alarm.json"))
    [lock] = lock_items(holding)
    incident_id = lock["incident_id"]["S"]
    assert incident_item(holding, incident_id)["status"] == "starting"

    joined = intake(holding, {**load_event("remediation/intake/alarm.json"), "id": "a-later-alarm"})

    assert joined["status"] == "joined" and joined["execution_arn"]
    assert [e["name"] for e in executions(holding)] == [incident_id]
    assert incident_item(holding, incident_id)["status"] == "open"


def test_a_redelivery_of_the_event_whose_start_failed_starts_the_incident(holding: Sandbox) -> None:
    event = load_event("remediation/intake/alarm.json")
    fail_first_start(holding)
    with pytest.raises(TransientAwsError):
        intake(holding, event)

    redelivered = intake(holding, event)  # Lambda's own retry of the async invocation

    assert redelivered["status"] == "duplicate" and redelivered["execution_arn"]
    [execution] = executions(holding)
    assert execution["name"] == redelivered["incident_id"]
    assert incident_item(holding, redelivered["incident_id"])["alarm_count"] == 1


@pytest.mark.parametrize(
    ("change", "reason_mentions"),
    [
        ({"account": "210987654321"}, "account '210987654321' is not this stack's '123456789012'"),
        ({"region": "eu-west-1"}, "region 'eu-west-1' is not this stack's 'us-east-1'"),
        ({"source": "my.app"}, "source 'my.app' is not this stack's 'aws.cloudwatch'"),
        (
            {"resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:payments-5xx"]},
            "is not alarm 'checkout-5xx-rate' of this stack",
        ),
    ],
)
def test_an_alarm_from_outside_this_stack_is_rejected_and_starts_nothing(
    sandbox: Sandbox, change: dict[str, Any], reason_mentions: str
) -> None:
    """The stack's account comes from the function's own ARN (the Lambda context), its region from AWS_REGION."""
    result = intake(sandbox, {**load_event("remediation/intake/alarm.json"), **change})

    assert result["status"] == "rejected" and reason_mentions in result["reason"]
    assert executions(sandbox) == [] and lock_items(sandbox) == []


def test_an_alarm_with_odd_side_fields_still_opens_an_incident(holding: Sandbox) -> None:
    event = load_event("remediation/intake/alarm.json")
    event["version"] = 1
    event["detail"]["previousState"] = "OK"
    event["detail"]["configuration"] = ["metrics"]
    event["detail"]["state"]["reasonData"] = {"not": "a string"}

    assert intake(holding, event)["status"] == "opened"


def test_a_lone_surrogate_in_the_alarm_name_is_rejected_and_the_response_is_valid_json(sandbox: Sandbox) -> None:
    event = load_event("remediation/intake/alarm.json")
    event["detail"]["alarmName"] = "checkout-\udc80"

    result = intake(sandbox, event)

    assert result["status"] == "rejected" and "not valid UTF-8" in result["reason"]
    json.dumps(result, ensure_ascii=False).encode("utf-8")  # what the Lambda runtime sends back
    assert executions(sandbox) == []
