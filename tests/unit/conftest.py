"""Factory fixtures for the unit tests: policies, deployments, progress and execution state, built in memory."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from rollguard.incident import DeploymentRef, ExecutionState, Progress
from rollguard.policy import Policy

from tests.unit.builders import ONSET, policy_dict


@pytest.fixture
def make_policy() -> Callable[..., Policy]:
    def make(**overrides: Any) -> Policy:
        return Policy.model_validate(policy_dict(**overrides))

    return make


@pytest.fixture
def make_deployment() -> Callable[..., DeploymentRef]:
    def make(
        deployment_id: str,
        minutes_before_onset: float,
        *,
        label: str = "7",
        status: str = "Succeeded",
        creator: str = "user",
        description: str = "",
        platform: str = "Lambda",
    ) -> DeploymentRef:
        created = ONSET - timedelta(minutes=minutes_before_onset)
        return DeploymentRef(
            deployment_id=deployment_id,
            status=status,
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": f"TargetVersion: {label}"}},
            revision_label=label,
            create_time=created.isoformat(),
            complete_time=None if status in {"Created", "Queued", "InProgress", "Baking", "Ready"} else "",
            compute_platform=platform,
            creator=creator,
            description=description,
        )

    return make


@pytest.fixture
def make_progress() -> Callable[..., Progress]:
    def make(**fields: Any) -> Progress:
        base: dict[str, Any] = {
            "step": 0,
            "action": "rollback",
            "scope": "canary",
            "summary": "",
            "wait_seconds": 300,
            "judge": "slice",
        }
        return Progress.model_validate({**base, **fields})

    return make


@pytest.fixture
def make_state() -> Callable[..., ExecutionState]:
    def make(**fields: Any) -> ExecutionState:
        base: dict[str, Any] = {
            "incident_id": "checkout-5xx-20250304T120000Z-a1b2c3",
            "opened_at": "2025-03-04T12:00:05.000Z",
            "target_key": "codedeploy:checkout/checkout-prod",
            "policy": policy_dict(),
            "alarm": {
                "name": "checkout-5xx-rate",
                "arn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:checkout-5xx-rate",
                "region": "eu-west-1",
                "account": "123456789012",
                "state": "ALARM",
                "reason": "Threshold Crossed: 2 out of the last 3 datapoints were greater than the threshold (5.0)",
                "state_timestamp": "2025-03-04T12:00:00.000+0000",
                "event_id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            },
        }
        return ExecutionState.model_validate({**base, **fields})

    return make
