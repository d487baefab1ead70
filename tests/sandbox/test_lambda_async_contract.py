"""Contract tests: Lambda's asynchronous invocation in the sandbox behaves as the Lambda developer guide says,
driven with plain boto3 ("How Lambda handles errors and retries with asynchronous invocation", "Dead-letter
queues", "Capturing records of Lambda asynchronous invocations"). No Rollguard code runs in the functions here."""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from rollguard_cli.sandbox.lambda_async import AsyncConfig, async_configs
from rollguard_cli.sandbox.runner import FUNCTIONS, QUEUES, Sandbox, load_template

pytestmark = pytest.mark.slow  # the sandbox's contracts, on moto

EVENT = {"id": "e-1", "detail-type": "Something Happened", "source": "test", "time": "2026-12-01T12:00:00Z"}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(error_model=lambda label, at, config: 0.0) as sandbox:
        yield sandbox


def flaky(sb: Sandbox, fails: int, config: AsyncConfig) -> list[datetime]:
    """A function ``flaky`` that raises on its first ``fails`` attempts; the times it ran."""
    attempts: list[datetime] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        attempts.append(sb.clock.now())
        if len(attempts) <= fails:
            raise RuntimeError(f"attempt {len(attempts)} failed " + "x" * 2000)
        return {"ok": True}

    sb.handlers["flaky"] = handler
    sb.asynchronous.configs["flaky"] = config
    sb.client("lambda").create_function(
        FunctionName="flaky", Runtime="python3.13", Role=sb.role_arn, Handler="a.b", Code={"ZipFile": b"x"}
    )
    return attempts


def invoke_async(sb: Sandbox) -> dict[str, Any]:
    return dict(sb.client("lambda").invoke(FunctionName="flaky", InvocationType="Event", Payload=json.dumps(EVENT)))


def let_time_pass(sb: Sandbox, seconds: int = 5 * 60) -> None:
    """Ten seconds at a time, as the drills let time pass: a retry runs at the first delivery after it is due."""
    for _ in range(seconds // 10):
        sb.advance(10)


def queue(sb: Sandbox, logical: str) -> str:
    return sb.queue_urls[logical]


def test_a_failing_event_is_retried_one_then_two_minutes_later_then_dead_lettered_unchanged(sb: Sandbox) -> None:
    attempts = flaky(sb, 3, AsyncConfig(dead_letter_queue=queue(sb, "FailedInvocationsQueue")))

    assert invoke_async(sb)["StatusCode"] == 202
    start = attempts[0]
    let_time_pass(sb, 200)

    # A retry runs at the first delivery after it is due: up to one step late.
    waits = [(a - start).total_seconds() for a in attempts]
    assert waits[0] == 0 and 60 <= waits[1] < 70 and 180 <= waits[2] < 190
    [message] = sb.dead_letters("FailedInvocationsQueue")
    assert json.loads(message["Body"]) == EVENT, "the original event payload with no modifications"
    attributes = message["MessageAttributes"]
    assert attributes["ErrorCode"] == {"DataType": "Number", "StringValue": "200"}
    assert attributes["RequestID"]["DataType"] == "String"
    error = attributes["ErrorMessage"]["StringValue"]
    assert error.startswith("attempt 3 failed") and len(error) == 1024, "truncated to 1 KB"


def test_a_retry_that_succeeds_ends_the_event(sb: Sandbox) -> None:
    attempts = flaky(sb, 1, AsyncConfig(dead_letter_queue=queue(sb, "FailedInvocationsQueue")))

    invoke_async(sb)
    let_time_pass(sb)

    assert len(attempts) == 2
    assert sb.dead_letters("FailedInvocationsQueue") == []


def test_maximum_retry_attempts_zero_gives_up_after_one_attempt(sb: Sandbox) -> None:
    attempts = flaky(sb, 3, AsyncConfig(retries=0, dead_letter_queue=queue(sb, "FailedInvocationsQueue")))

    invoke_async(sb)
    let_time_pass(sb)

    assert len(attempts) == 1
    assert len(sb.dead_letters("FailedInvocationsQueue")) == 1


def test_an_on_failure_destination_receives_an_invocation_record(sb: Sandbox) -> None:
    flaky(sb, 3, AsyncConfig(on_failure_queue=queue(sb, "IntakeDeadLetterQueue")))

    invoke_async(sb)
    let_time_pass(sb)

    [message] = sb.dead_letters("IntakeDeadLetterQueue")
    record = json.loads(message["Body"])
    assert record["version"] == "1.0"
    assert record["requestPayload"] == EVENT
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:flaky:$LATEST")
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_without_a_queue_the_event_is_discarded(sb: Sandbox) -> None:
    flaky(sb, 3, AsyncConfig())

    invoke_async(sb)
    let_time_pass(sb)

    [dropped] = sb.asynchronous.dropped
    assert dropped["function"] == "flaky" and dropped["event"] == EVENT


def test_the_dead_letter_queue_is_sent_to_with_the_functions_role(sb: Sandbox) -> None:
    """The journal's role may send to its own queue only: pointed elsewhere, Lambda's delivery is refused."""
    sb.asynchronous.configs["rollguard-journal"] = AsyncConfig(dead_letter_queue=queue(sb, "IntakeDeadLetterQueue"))
    sb.inject_fault("UpdateItem", "InternalServerError", "down", function="rollguard-journal", status=500)
    sb.inject_fault("PutItem", "InternalServerError", "down", function="rollguard-journal", status=500)
    event = {
        **EVENT,
        "source": "aws.codedeploy",
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "region": "us-east-1",
        "detail": {"application": "shop", "deploymentGroup": "prod", "deploymentId": "d-1", "state": "START"},
    }

    sb.client("lambda").invoke(FunctionName="rollguard-journal", InvocationType="Event", Payload=json.dumps(event))
    let_time_pass(sb)

    assert sb.dead_letters("IntakeDeadLetterQueue") == []
    [dropped] = sb.asynchronous.dropped
    assert "AccessDeniedException" in dropped["why"]
    assert [d["code"] for d in sb.log.iam_denied] == ["AccessDeniedException"]


def test_each_functions_retries_and_queues_come_from_the_template() -> None:
    urls = {logical: f"https://queue/{name}" for logical, name in QUEUES.items()}
    functions = {f"rollguard-{name}": logical for name, logical in FUNCTIONS.items()}

    configs = async_configs(load_template()["Resources"], functions, urls)

    assert configs["rollguard-journal"] == AsyncConfig(dead_letter_queue=urls["JournalDeadLetterQueue"])
    assert configs["rollguard-watchdog"] == AsyncConfig(dead_letter_queue=urls["FailedInvocationsQueue"])
    # The alarm rule's invocations are asynchronous; the state machine's (Assess, Act) synchronous, which no
    # asynchronous configuration touches.
    assert configs["rollguard-remediation"] == AsyncConfig(on_failure_queue=urls["IntakeDeadLetterQueue"])
    assert configs["rollguard-verify"] == AsyncConfig(), "invoked synchronously by the state machine: none"
