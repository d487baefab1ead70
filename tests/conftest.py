"""Shared fixtures: the local sandbox (moto + the real handlers and state machine) and event files."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rollguard_cli.sandbox.moto_ext import LambdaContext
from rollguard_cli.sandbox.runner import TABLES, Sandbox

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"


def load_event(relative: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / relative).read_text()))


def context(name: str = "rollguard-remediation") -> LambdaContext:
    return LambdaContext(function_name=name, aws_request_id="test-request")


def as_invoked(task: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The function a state machine task invokes and its payload: Assess and Act are the Remediation function's
    tasks (the ASL's ``{"task": …, "state.$": "$"}``); every other task is its own function."""
    if task in ("assess", "act"):
        return "rollguard-remediation", {"task": task, "state": event}
    return f"rollguard-{task}", event


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(error_model=lambda label, at, config: 0.01) as sb:
        yield sb


def hold_executions(sb: Sandbox) -> str:
    """Point the intake at a state machine that stays RUNNING (waits for a task token that never comes), so a test
    sees what the intake did while an incident is open; its ARN."""
    sfn = sb.client("stepfunctions")
    definition = {
        "StartAt": "Hold",
        "States": {
            "Hold": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": sb.inbox_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    arn = str(
        sfn.create_state_machine(
            name="hold", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/rollguard-sandbox"
        )["stateMachineArn"]
    )
    sb.state_machine_arn = arn
    sb.set_env(STATE_MACHINE_ARN=arn)
    return arn


def audit_events(sb: Sandbox, incident_id: str) -> list[dict[str, Any]]:
    from rollguard.audit import AuditLog

    return AuditLog(sb.client("dynamodb"), TABLES["AuditTable"]).for_incident(incident_id)


def lock_items(sb: Sandbox) -> list[dict[str, Any]]:
    """The targets' locks (not the alarm event ids the intake remembers for replays)."""
    items = sb.client("dynamodb").scan(TableName=TABLES["LocksTable"])["Items"]
    return [i for i in items if not i["target_key"]["S"].startswith("event#")]


def incident_item(sb: Sandbox, incident_id: str) -> dict[str, Any]:
    from rollguard.adapters.dynamo import from_item

    item = sb.client("dynamodb").get_item(TableName=TABLES["IncidentsTable"], Key={"incident_id": {"S": incident_id}})
    return from_item(item["Item"])


# Every drill and the outcome it must reach (also what `rollguard drill --list` prints).
EXPECTED_OUTCOMES = {
    "bad-deploy": "resolved",
    "not-the-deploy": "escalated",
    "no-recent-deploy": "closed_no_action",
    "flag-kill-switch": "resolved",
    "config-drift": "resolved",
    "blame-the-flag": "resolved",
    "blame-the-deploy": "resolved",
    "shadow-mode": "escalated",
    "paused": "escalated",
    "cooldown": "escalated",
    "approval-granted": "resolved",
    "approval-denied": "escalated",
    "approval-timeout": "escalated",
    "in-flight-canary": "resolved",
    "string-revision": "resolved",
    "group-alarm": "resolved",
    "flag-off-while-baking": "resolved",
    "journal-outage": "escalated",
    "bad-target-group": "resolved",
    "sick-zone": "resolved",
    "shift-does-not-help": "escalated",
    "ecs-bad-deploy": "resolved",
    "ecs-not-the-deploy": "escalated",
    "ecs-rolling-bad-deploy": "resolved",
    "baseline-deploy": "resolved",
    "member-bad-deploy": "resolved",
    "member-not-allowed": "resolved",
}
DRILLS = tuple(EXPECTED_OUTCOMES)


@pytest.fixture(scope="session")
def drill_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each drill once through the CLI (``rollguard drill NAME --json --out DIR``): exit code, JSON, folder."""
    import contextlib
    import io

    from rollguard_cli.main import main

    runs = {}
    for name in DRILLS:
        out = tmp_path_factory.mktemp(name)
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(["drill", name, "--json", "--out", str(out)])
        runs[name] = {"exit": code, "stdout": stdout.getvalue(), "out": out}
    return runs
