"""The act and close handlers publish Rollguard's incident metrics as CloudWatch embedded metric format."""

import json
from datetime import timedelta
from typing import Any

import pytest
from rollguard.errors import PermissionDenied
from rollguard_cli.sandbox.runner import Sandbox
from rollguard_cli.sandbox.world import aws_time

from tests.conftest import load_event
from tests.functional.test_remediation_handlers import bad_deploy, call, open_incident  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)


def emf_blobs(stdout: str) -> list[dict[str, Any]]:
    """Each EMF document printed: its metric names mapped to values, with its dimensions."""
    blobs = []
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Rollguard"
        (dimension_set,) = directive["Dimensions"]
        blobs.append(
            {
                "metrics": {m["Name"]: (_single(doc[m["Name"]]), m["Unit"]) for m in directive["Metrics"]},
                "dimensions": {name: doc[name] for name in dimension_set},
            }
        )
    return blobs


def _single(value: Any) -> float:
    """Powertools writes each value as a list of the values added in the invocation; we add one."""
    if isinstance(value, list):
        (value,) = value
    return float(value)


def test_the_first_action_emits_its_count_and_time_to_first_action(
    sandbox: Sandbox,
    bad_deploy: dict[str, Any],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = dict(bad_deploy)  # the alarm went to ALARM "now" on the sandbox clock
    state["assessment"] = call(sandbox, "assess", state)
    sandbox.clock.advance(30)
    capsys.readouterr()

    state["progress"] = call(sandbox, "act", state)

    (blob,) = emf_blobs(capsys.readouterr().out)
    assert blob["dimensions"] == {"service": "rollguard", "action": "rollback", "scope": "canary", "result": "ok"}
    assert blob["metrics"]["Actions"] == (1, "Count")
    seconds, unit = blob["metrics"]["TimeToFirstAction"]
    assert unit == "Seconds" and 30 <= seconds < 40


def test_a_failed_action_is_counted_with_its_error_name(
    sandbox: Sandbox,
    bad_deploy: dict[str, Any],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = dict(bad_deploy)
    state["assessment"] = call(sandbox, "assess", state)
    sandbox.inject_fault("CreateDeployment", "AccessDeniedException")
    capsys.readouterr()

    with pytest.raises(PermissionDenied):
        call(sandbox, "act", state)

    (blob,) = emf_blobs(capsys.readouterr().out)
    assert blob["dimensions"]["result"] == "PermissionDenied"
    assert blob["metrics"] == {"Actions": (1, "Count")}


def test_close_emits_the_outcome_and_time_to_recovery_only_when_resolved(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    escalated = load_event("close/escalated-after-error.json")
    open_incident(sandbox, escalated["state"])
    capsys.readouterr()
    call(sandbox, "close", escalated)
    (blob,) = emf_blobs(capsys.readouterr().out)
    assert blob["metrics"] == {"IncidentsEscalated": (1, "Count")}
    assert blob["dimensions"] == {"service": "rollguard"}

    resolved = json.loads(json.dumps(escalated))
    resolved["state"]["incident_id"] += "-r"
    resolved["state"].pop("error", None)
    resolved["outcome"] = "resolved"
    resolved["state"]["alarm"]["state_timestamp"] = aws_time(sandbox.clock.now() - timedelta(minutes=10))
    open_incident(sandbox, resolved["state"])
    call(sandbox, "close", resolved)
    (blob,) = emf_blobs(capsys.readouterr().out)
    assert blob["metrics"]["IncidentsResolved"] == (1, "Count")
    seconds, unit = blob["metrics"]["TimeToRecovery"]
    assert unit == "Seconds" and 600 <= seconds < 610
