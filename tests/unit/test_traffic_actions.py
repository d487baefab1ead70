"""The traffic rung's policy model, its weight planning, and the action registry every step goes through."""

import copy
from typing import Any

import pytest
from rollguard.actions import ACTIONS, action_for
from rollguard.actions.shift_traffic import planned
from rollguard.adapters.zonal_shift import expires_in
from rollguard.errors import RollguardError
from rollguard.policy import PolicyFileInvalid, parse_policy_document

from tests.unit.builders import as_yaml, document


def traffic_policy(*ladder: dict[str, Any], **target: Any) -> dict[str, Any]:
    return {
        "name": "checkout-alb",
        "trigger": {"alarms": ["checkout-alb-5xx"]},
        "target": {"load_balancer": {"name": "checkout-alb", "listener_port": 443, **target}},
        "ladder": [copy.deepcopy(step) for step in ladder],  # no shared nodes: YAML would write them as aliases
    }


SHIFT = {"action": "shift_traffic", "scope": "canary", "away_from": "blue", "to": "green", "verify": {"window": "5m"}}
ZONAL = {"action": "zonal_shift", "expires_in": "2h", "verify": {"window": "5m"}}


def problems(policy: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyFileInvalid) as caught:
        parse_policy_document(as_yaml(document(policy)))
    return [f"{p.path}: {p.reason}" for p in caught.value.problems]


def test_a_traffic_ladder_is_valid_and_keyed_by_its_load_balancer() -> None:
    doc = parse_policy_document(as_yaml(document(traffic_policy(SHIFT, {**SHIFT, "scope": "full"}, ZONAL))))
    policy = doc.policies[0]
    assert policy.target.key == "elb:checkout-alb"
    assert policy.ladder[2].expires_in == 7200  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({**ZONAL, "expires_in": "73h"}, "expires_in 73h is longer than 72h"),
        ({**ZONAL, "expires_in": "30s"}, "shorter than 1m"),
        ({**ZONAL, "expires_in": "90s"}, "not whole minutes"),
        ({**ZONAL, "zone": "the-sick-one"}, "String should match pattern"),
        ({**SHIFT, "to": "blue"}, "away_from and to name the same target group"),
        ({**SHIFT, "percent": 100}, "less than or equal to 99"),
    ],
)
def test_bad_traffic_steps_are_refused_with_the_reason(step: dict[str, Any], expected: str) -> None:
    [problem] = problems(traffic_policy(step))
    assert expected in problem


def test_shift_traffic_needs_a_listener_or_rule_and_a_load_balancer_target() -> None:
    [problem] = problems(traffic_policy(SHIFT, listener_port=None))
    assert "shift_traffic needs target.load_balancer.listener_port" in problem
    no_lb = {**traffic_policy(SHIFT), "target": {"codedeploy": {"application": "a", "deployment_group": "g"}}}
    assert any("shift_traffic needs target.load_balancer" in p for p in problems(no_lb))


def test_a_rule_needs_its_listener_and_a_name_must_be_a_load_balancer_name() -> None:
    [problem] = problems(traffic_policy(ZONAL, listener_port=None, rule_priority=10))
    assert "rule_priority names a rule of a listener: set listener_port too" in problem
    [problem] = problems(traffic_policy(ZONAL, name="-checkout"))
    assert "String should match pattern" in problem


def test_a_canary_slice_takes_its_percent_of_the_pair_and_keeps_other_groups() -> None:
    before = {"blue": 100, "green": 0, "other": 5}
    assert planned(before, "blue", "green", "canary", 10) == {"blue": 90, "green": 10, "other": 5}
    assert planned(before, "blue", "green", "full", 10) == {"blue": 0, "green": 100, "other": 5}


def test_planning_from_the_weights_found_first_gives_the_same_answer_on_every_retry() -> None:
    before = {"blue": 7, "green": 0}
    first = planned(before, "blue", "green", "canary", 10)
    assert first == {"blue": 6, "green": 1}  # at least one unit moves
    assert planned(before, "blue", "green", "canary", 10) == first


def test_a_slice_never_takes_traffic_back_from_the_healthy_group() -> None:
    assert planned({"blue": 50, "green": 50}, "blue", "green", "canary", 10) == {"blue": 50, "green": 50}


def test_arc_durations_are_written_in_whole_hours_or_minutes() -> None:
    assert expires_in(7200) == "2h"
    assert expires_in(5400) == "90m"
    assert expires_in(72 * 3600) == "72h"


def test_every_ladder_action_has_a_module_and_unknown_names_say_which_are_known() -> None:
    from rollguard.policy import _ACTIONS

    assert set(_ACTIONS) <= set(ACTIONS)
    with pytest.raises(RollguardError, match=r"unknown action 'restart' \(known: rollback, "):
        action_for("restart")


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_declares_the_iam_it_needs(name: str) -> None:
    assert ACTIONS[name].iam, f"{name} declares no IAM actions"
    assert all(":" in action for action in ACTIONS[name].iam)
