"""The largest state an incident's execution can carry, built from each part's bound (issue 14, point 4).

Step Functions caps every state's input and output at 262,144 bytes of UTF-8 ("Step Functions service quotas";
StateEnteredEventDetails.input, API Reference): past it the execution fails with States.DataLimitExceeded. The state
is the execution's input (the policy, the alarm) plus what the states add: the assessment, the progress, an approval,
a caught error, the close's result. Each part below is at its bound, or at a stated worst case where AWS's own field
has one; tests/unit/test_state_size.py asserts the total fits, and `make bench` prints it.
"""

from __future__ import annotations

import json
from typing import Any

STATE_LIMIT = 262_144
# Bounds AWS sets on what the state copies from it.
ALARM_REASON = 1023  # CloudWatch's StateReason (PutMetricAlarm / SetAlarmState: at most 1023 characters)
TASK_ERROR_CAUSE = 32_768  # a caught error's Cause (TaskFailedEventDetails.cause, API Reference: 32768)
APPCONFIG_DESCRIPTION = 1024  # a hosted configuration version's Description


def _policy(budget: int) -> dict[str, Any]:
    """A policy of 10 ladder steps, each gated by an approval, whose alarm names fill it to ``budget`` bytes."""
    from rollguard.policy import Policy

    step = {
        "action": "rollback",
        "scope": "full",
        "verify": {"window": 300},
        "approval": {"required": True, "timeout": 900, "on_timeout": "escalate"},
    }
    policy: dict[str, Any] = {
        "name": "p" * 48,
        "trigger": {"alarms": ["000000" + "x" * 249], "require_change_within": 604_800},
        "target": {"codedeploy": {"application": "a" * 100, "deployment_group": "g" * 100}},
        "ladder": [step] * 10,
        "escalate": {"runbook": "https://wiki.example.com/" + "r" * 200},
    }
    size = len(Policy.model_validate(policy).model_dump_json().encode())
    n = 1
    while size + 258 <= budget:  # one more quoted 255-character name and its comma
        policy["trigger"]["alarms"].append(f"{n:06d}" + "x" * 249)
        n += 1
        size += 258
    return policy


def _deployment(deployment_id: str) -> dict[str, Any]:
    appspec = {
        "version": 0.0,
        "Resources": [
            {
                "fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Name": "f" * 140, "Alias": "live", "CurrentVersion": "7", "TargetVersion": "6"},
                }
            }
        ],
        "Hooks": [{"BeforeAllowTraffic": "h" * 140}, {"AfterAllowTraffic": "h" * 140}],
    }
    return {
        "deployment_id": deployment_id,
        "status": "Succeeded",
        "revision": {
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": json.dumps(appspec), "sha256": "s" * 64},
        },
        "revision_label": "7",
        "create_time": "2026-12-02T00:00:00.000Z",
        "complete_time": "2026-12-02T00:05:00.000Z",
        "compute_platform": "Lambda",
        "creator": "user",
        "description": "d" * 1024,
    }


def worst_case_state() -> dict[str, Any]:
    """The state as the last Close task sees it: every field the ASL sets, each at its worst case."""
    from rollguard.incident import MAX_CHANGES_KEPT, REASON_MAX, ExecutionState
    from rollguard.policy import POLICY_STATE_BUDGET

    change = {
        "scope_key": "appconfig:" + "a" * 64 + "/" + "e" * 64,
        "kind": "config",
        "at": "2026-12-02T00:00:00.000Z",
        "state": "COMPLETE",
        "region": "ap-southeast-2",
        "by": "appconfig",
        "detail": {
            "application": "a" * 64,
            "application_id": "i" * 7,
            "environment": "e" * 64,
            "environment_id": "i" * 7,
            "profile": "p" * 128,
            "profile_id": "i" * 7,
            "version": "1" * 10,
            "deployment_number": 2_147_483_647,
        },
    }
    step_detail = "d" * 600 + " " + "x" * APPCONFIG_DESCRIPTION  # a step's one-line detail, a description quoted
    action = {
        "step": 9,
        "action": "config_revert",
        "scope": "revert " + "p" * 128,
        "started_at": "2026-12-02T00:00:00.000Z",
        "result": "ok",
        "deployment_ids": [f"{r}:{n}" for r in range(3) for n in range(2)],
        "detail": step_detail,
        "verdict": "not_recovered",
        "effect": {
            "regions": [
                {
                    "region": "ap-southeast-2",
                    "version": "1" * 10,
                    "deployment": 2_147_483_647,
                    "profile_id": "i" * 7,
                    "environment_id": "i" * 7,
                }
            ]
            * 3
        },
    }
    state = ExecutionState.model_validate(
        {
            "incident_id": "p" * 48 + "-20261202T000000Z-abcdef",
            "opened_at": "2026-12-02T00:00:00.000Z",
            "target_key": "codedeploy:" + "a" * 100 + "/" + "g" * 100,
            "policy": _policy(POLICY_STATE_BUDGET),
            "alarm": {
                "name": "n" * 255,
                "arn": "arn:aws:cloudwatch:ap-southeast-2:123456789012:alarm:" + "n" * 255,
                "region": "ap-southeast-2",
                "account": "123456789012",
                "state": "ALARM",
                "reason": "r" * ALARM_REASON,
                "state_timestamp": "2026-12-02T00:00:00.000+0000",
                "event_id": "e" * 36,
            },
            "assessment": {
                "decision": "act",
                "reason": "r" * 2000,
                "summary": "s" * 2500,
                "bad": _deployment("d-" + "B" * 9),
                "last_good": _deployment("d-" + "G" * 9),
                "in_flight": False,
                "changes": [{**change, "change_id": f"ap-southeast-2:{'i' * 7}:{n}"} for n in range(MAX_CHANGES_KEPT)],
                "changes_in_scope": 100_000,
                "gate": {"required": True, "step": 0, "timeout_seconds": 900, "on_timeout": "escalate"},
            },
            "progress": {
                "step": 9,
                "action": "config_revert",
                "scope": "s" * 140,
                "summary": "s" * 2000,
                "wait_seconds": 900,
                "judge": "aggregate",
                "rollback_deployment_id": "d-" + "R" * 9,
                "actions": [action] * 10,
                "reverted": [f"ap-southeast-2:{'i' * 7}:{n}" for n in range(MAX_CHANGES_KEPT)],
                "verdict": "not_recovered",
                "reason": "r" * 2000,
                "next": "escalate",
                "next_step": None,
            },
            "error": {"Error": "States.TaskFailed", "Cause": "c" * TASK_ERROR_CAUSE},
            "approval": {
                "approved": True,
                "step": 9,
                "approver": "arn:aws:sts::123456789012:assumed-role/" + "r" * 64 + "/" + "s" * 64,
                "reason": "r" * REASON_MAX,
            },
            "skip_step": {"step": 9},
        }
    )
    document: dict[str, Any] = state.model_dump(mode="json")
    # What the ASL adds beside the model: the approval gate it prepares and the close's result.
    document["gate"] = {"required": True, "step": 9, "timeout_seconds": 900, "on_timeout": "escalate"}
    document["closed"] = {
        "incident_id": state.incident_id,
        "outcome": "escalated",
        "reason": "r" * 2000,
        "summary": "s" * 4000,
        "notified": True,
        "closed_by": "state machine",
    }
    return document


def state_size() -> dict[str, Any]:
    """The worst case's size as Step Functions counts it (UTF-8 bytes of its JSON), and each part's."""
    document = worst_case_state()
    parts = {key: len(json.dumps(value).encode()) for key, value in document.items()}
    total = len(json.dumps(document).encode())
    return {"bytes": total, "limit": STATE_LIMIT, "headroom": STATE_LIMIT - total, "parts": parts}
