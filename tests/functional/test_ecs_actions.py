"""An ECS rolling service's rollback end to end on the sandbox (the real state machine and handlers, each function's
role from template.yaml enforced): a lost UpdateService response, a suspect still rolling out (ECS's own
StopServiceDeployment rollback), and a rollback ECS's circuit breaker is already doing (recorded, not fought)."""

from dataclasses import replace
from typing import Any

import pytest
from rollguard_cli.drills import PAYMENTS_ROLLING, SCENARIOS, Stage, run_scenario
from rollguard_cli.sandbox.runner import Sandbox

pytestmark = pytest.mark.slow

ROLLING = SCENARIOS["ecs-rolling-bad-deploy"]


def service_deployments(sb: Sandbox) -> list[dict[str, Any]]:
    ecs = sb.client("ecs")
    arns = [
        d["serviceDeploymentArn"]
        for d in ecs.list_service_deployments(cluster="prod", service="payments")["serviceDeployments"]
    ]
    return list(ecs.describe_service_deployments(serviceDeploymentArns=arns)["serviceDeployments"])


def calls_by_act(result: dict[str, Any], operation: str) -> list[str]:
    return [
        c for c in result["aws_calls"] if c.startswith("rollguard-remediation/act:ecs:") and c.endswith(f":{operation}")
    ]


def test_a_lost_update_service_response_is_retried_into_the_same_rollback() -> None:
    def lose_update(sb: Sandbox) -> None:
        sb.inject_fault("UpdateService", "RequestTimeout", function="rollguard-remediation/act", times=1, kind="lost")

    result = run_scenario(ROLLING, prepare=lose_update, observe=service_deployments)

    assert result["passed"], result["reason"]
    [action] = result["actions"]
    assert "already rolling back to payments:2" in action["detail"]
    # initial, payments:2, payments:3 (the suspect), and exactly one rollback to payments:2
    assert len(result["observed"]) == 4
    assert result["ecs_final"]["serving"] == ["payments:2"]


def _still_rolling_out(stage: Stage) -> None:
    stage.sb.put_alb_alarm("payments-5xx", threshold=100)
    stage.behave(lambda label, live: 0.25 if label == "payments:3" else None)
    stage.ecs_roll(2)
    stage.sb.advance(15 * 60)
    stage.sb.ecs_deploy(3)  # one task at a time, each a slow start: the alarm fires mid-rollout


def test_a_suspect_still_rolling_out_is_stopped_with_ecs_own_rollback() -> None:
    slow = replace(PAYMENTS_ROLLING, minimum_healthy_percent=75, maximum_percent=100, task_start_seconds=90)
    scenario = replace(ROLLING, name="ecs-rolling-in-flight", setup=_still_rolling_out, ecs=slow)

    result = run_scenario(scenario, observe=service_deployments)

    assert result["passed"], result["reason"]
    [action] = result["actions"]
    assert "stopped in-progress deployment" in action["detail"]
    assert calls_by_act(result, "StopServiceDeployment") and not calls_by_act(result, "UpdateService")
    suspect = next(d for d in result["observed"] if d["status"].startswith("ROLLBACK"))
    assert suspect["status"] == "ROLLBACK_SUCCESSFUL"
    assert result["ecs_final"]["serving"] == ["payments:2"]


def _breaker_trips_while_a_dependency_fails(stage: Stage) -> None:
    stage.sb.put_alb_alarm("payments-5xx", threshold=100)
    stage.ecs_roll(2)
    stage.sb.advance(15 * 60)
    stage.behave(lambda label, live: 0.25)  # a dependency every revision calls fails
    stage.sb.ecs_deploy(3)  # payments:3's tasks never start: the circuit breaker rolls it back


def test_a_rollback_ecs_is_doing_is_recorded_not_fought_and_still_verified() -> None:
    breaking = replace(PAYMENTS_ROLLING, fails_to_start=frozenset({3}))
    scenario = replace(
        ROLLING,
        name="ecs-circuit-breaker",
        setup=_breaker_trips_while_a_dependency_fails,
        ecs=breaking,
        expected_outcome="escalated",
    )

    result = run_scenario(scenario)

    assert result["passed"], result["reason"]
    [action] = result["actions"]
    assert "ECS is already rolling deployment" in action["detail"]
    assert not calls_by_act(result, "StopServiceDeployment") and not calls_by_act(result, "UpdateService")
    assert "not_recovered" in [a["verdict"] for a in result["actions"]]
    assert result["ecs_final"]["serving"] == ["payments:2"]
