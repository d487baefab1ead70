"""shift_traffic and zonal_shift through the act, verify and close handlers on the sandbox, each call made as the
function would make it (its role from template.yaml enforced): retries after lost responses, listener rules,
someone else's zonal shift, and what closing undoes."""

from typing import Any

import pytest
from rollguard.incident import AlarmRef, ExecutionState
from rollguard.policy import Policy
from rollguard_cli.sandbox.load_balancer import LoadBalancerSpec, RuleSpec
from rollguard_cli.sandbox.runner import TABLES, Sandbox
from rollguard_cli.sandbox.world import aws_time

from tests.conftest import as_invoked, context

pytestmark = pytest.mark.slow

INCIDENT = "checkout-alb-20261201T120000Z-abcdef"
SHIFT = {"action": "shift_traffic", "away_from": "checkout-blue", "to": "checkout-green", "verify": {"window": 300}}


def policy(*ladder: dict[str, Any], **target: Any) -> Policy:
    return Policy.model_validate(
        {
            "name": "checkout-alb",
            "trigger": {"alarms": ["checkout-alb-5xx*"]},
            "target": {"load_balancer": {"name": "checkout-alb", **target}},
            "ladder": list(ladder),
            "verify": {"min_requests": 100},
        }
    )


def open_state(sb: Sandbox, policy: Policy, alarm: str) -> dict[str, Any]:
    now = aws_time(sb.clock.now())
    ddb = sb.client("dynamodb")
    ddb.put_item(
        TableName=TABLES["IncidentsTable"],
        Item={"incident_id": {"S": INCIDENT}, "target_key": {"S": "elb:checkout-alb"}, "status": {"S": "open"}},
    )
    ddb.put_item(
        TableName=TABLES["LocksTable"],
        Item={
            "target_key": {"S": "elb:checkout-alb"},
            "incident_id": {"S": INCIDENT},
            "expires_at_epoch": {"N": "4102444800"},
        },
    )
    alarm_arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
    state = ExecutionState(
        incident_id=INCIDENT,
        opened_at=now,
        target_key="elb:checkout-alb",
        policy=policy,
        alarm=AlarmRef(
            name=alarm,
            arn=alarm_arn,
            region="us-east-1",
            account="123456789012",
            state="ALARM",
            state_timestamp=now,
            event_id="e-1",
        ),
    )
    state_json = state.model_dump(mode="json")
    state_json["assessment"] = {"decision": "act", "reason": "r", "summary": "s"}
    return state_json


def call(sb: Sandbox, task: str, event: dict[str, Any]) -> dict[str, Any]:
    function, payload = as_invoked(task, event)
    with sb.acting_as(function):
        return dict(sb.handlers[function](payload, context(function)))


def rule_weights(sb: Sandbox) -> dict[str, int]:
    assert sb.load_balancer is not None and sb.load_balancer.rule_arn is not None
    rule = sb.client("elbv2").describe_rules(RuleArns=[sb.load_balancer.rule_arn])["Rules"][0]
    names = {arn: name for name, arn in sb.load_balancer.target_groups.items()}
    forward = next(a for a in rule["Actions"] if a["Type"] == "forward")
    return {names[g["TargetGroupArn"]]: g["Weight"] for g in forward["ForwardConfig"]["TargetGroups"]}


@pytest.fixture
def traffic() -> Any:
    def build(errors: Any = lambda group, zone, at: 0.01, rule: bool = False, zonal_shift: bool = True) -> Sandbox:
        spec = LoadBalancerSpec(
            name="checkout-alb",
            error_rate=errors,
            rule=RuleSpec(priority=10) if rule else None,
            zonal_shift=zonal_shift,
        )
        return Sandbox(error_model=lambda label, at, config: 0.01, load_balancer=spec)

    return build


def test_a_rule_is_shifted_once_even_when_the_response_is_lost_and_moved_back_on_escalation(traffic: Any) -> None:
    with traffic(errors=lambda group, zone, at: 0.25, rule=True) as sb:
        sb.world.publish = None
        sb.put_alb_alarm("checkout-alb-5xx", threshold=100)
        sb.advance(5 * 60)
        state = open_state(
            sb, policy({**SHIFT, "scope": "canary"}, listener_port=80, rule_priority=10), "checkout-alb-5xx"
        )
        sb.inject_fault("ModifyRule", "RequestTimeout", function="rollguard-remediation", times=1, kind="lost")
        with pytest.raises(Exception, match="RequestTimeout"):
            call(sb, "act", state)
        assert rule_weights(sb) == {"checkout-blue": 90, "checkout-green": 10}, "AWS carried the lost call out"
        progress = call(sb, "act", state)  # the state machine's retry
        assert rule_weights(sb) == {"checkout-blue": 90, "checkout-green": 10}, "the retry did not shift again"
        assert "already shifted" in progress["actions"][-1]["detail"]

        sb.advance(5 * 60)
        progress = call(sb, "verify", {**state, "progress": progress})
        assert progress["verdict"] == "not_recovered" and progress["next"] == "escalate"
        closed = call(sb, "close", {"state": {**state, "progress": progress}, "outcome": "escalated"})
        assert "moved back" in closed["reason"]
        assert rule_weights(sb) == {"checkout-blue": 100, "checkout-green": 0}
        # A retried close (the move back's response lost) finds the weights back and says so; it moves nothing.
        again = call(sb, "close", {"state": {**state, "progress": progress}, "outcome": "escalated"})
        assert again["outcome"] == "escalated" and "moved back" in again["reason"]
        assert rule_weights(sb) == {"checkout-blue": 100, "checkout-green": 0}


def test_weights_someone_changed_after_the_shift_are_left_alone_and_said(traffic: Any) -> None:
    with traffic(errors=lambda group, zone, at: 0.25) as sb:
        sb.world.publish = None
        state = open_state(sb, policy({**SHIFT, "scope": "canary"}, listener_port=80), "checkout-alb-5xx")
        progress = call(sb, "act", state)
        lb = sb.load_balancer
        assert lb is not None
        groups = [{"TargetGroupArn": arn, "Weight": 50} for arn in lb.target_groups.values()]
        sb.client("elbv2").modify_listener(
            ListenerArn=lb.listener_arn, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]
        )
        progress["actions"][-1]["verdict"] = "not_recovered"
        closed = call(sb, "close", {"state": {**state, "progress": progress}, "outcome": "escalated"})
        assert sb.traffic_weights() == {"checkout-blue": 0.5, "checkout-green": 0.5}
        events = sb.client("dynamodb").scan(TableName=TABLES["AuditTable"])["Items"]
        left = next(e for e in events if e["kind"]["S"] == "incident_closed")
        assert "changed by someone since Rollguard shifted it" in str(left["parameters"])
        assert closed["outcome"] == "escalated"


def test_a_zonal_shift_is_started_once_and_cancelled_on_resolve_when_the_step_says(traffic: Any) -> None:
    with traffic(errors=lambda group, zone, at: 0.4 if zone == "us-east-1b" else 0.01) as sb:
        sb.world.publish = None
        sb.put_alb_alarm("checkout-alb-5xx-us-east-1b", zone="us-east-1b", threshold=50)
        sb.advance(5 * 60)
        step = {"action": "zonal_shift", "expires_in": 3600, "on_resolve": "cancel", "verify": {"window": 300}}
        state = open_state(sb, policy(step), "checkout-alb-5xx-us-east-1b")
        sb.inject_fault("StartZonalShift", "RequestTimeout", function="rollguard-remediation", times=1, kind="lost")
        progress = call(sb, "act", state)  # the start's response is lost: Act looks again and finds its shift
        assert progress["actions"][-1]["detail"].startswith("continued zonal shift")
        assert call(sb, "act", state)["actions"][-1]["detail"].startswith("continued zonal shift")  # a task retry
        assert len([s for s in sb.zonal_shifts.shifts if s.status(sb.world.now()) == "ACTIVE"]) == 1
        assert sb.shifted_away() == "use1-az1"

        sb.advance(5 * 60)
        progress = call(sb, "verify", {**state, "progress": progress})
        assert progress["verdict"] == "recovered", progress["reason"]
        closed = call(sb, "close", {"state": {**state, "progress": progress}, "outcome": "resolved"})
        assert "cancelled" in closed["reason"]
        assert sb.shifted_away() is None


def test_someone_elses_shift_away_from_another_zone_fails_the_step_naming_it(traffic: Any) -> None:
    with traffic() as sb:
        sb.world.publish = None
        lb = sb.load_balancer
        assert lb is not None
        sb.client("arc-zonal-shift").start_zonal_shift(
            resourceIdentifier=lb.arn, awayFrom="use1-az2", expiresIn="1h", comment="gameday"
        )
        step = {"action": "zonal_shift", "zone": "us-east-1b", "verify": {"window": 300}}
        with pytest.raises(
            Exception, match=r"TrafficConflict|already has zonal shift .* away from use1-az2 \('gameday'\)"
        ):
            call(sb, "act", open_state(sb, policy(step), "checkout-alb-5xx-us-east-1b"))


def test_a_load_balancer_without_zonal_shift_enabled_fails_with_arcs_answer(traffic: Any) -> None:
    with traffic(zonal_shift=False) as sb:
        sb.world.publish = None
        step = {"action": "zonal_shift", "zone": "use1-az1", "verify": {"window": 300}}
        with pytest.raises(Exception, match="ResourceNotFoundException"):
            call(sb, "act", open_state(sb, policy(step), "checkout-alb-5xx-us-east-1b"))
