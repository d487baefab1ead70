"""The incident's state stays under Step Functions' 262,144 bytes: each part is bounded (bench/state_size.py builds the
worst case), the policy by policy check's budget, the changes an assessment carries by MAX_CHANGES_KEPT."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import yaml
from rollguard import clock
from rollguard.assess import plan_assessment
from rollguard.incident import MAX_CHANGES_KEPT
from rollguard.journal import Change
from rollguard.policy import POLICY_STATE_BUDGET, Policy, PolicyFileInvalid, parse_policy_document

from bench.state_size import STATE_LIMIT, state_size, worst_case_state
from tests.unit.builders import ONSET


def test_the_worst_case_state_fits_with_room_to_spare() -> None:
    size = state_size()

    assert size["bytes"] < STATE_LIMIT * 0.75, size  # a quarter kept back for what a new field adds
    assert size["parts"]["policy"] > POLICY_STATE_BUDGET, "the worst case's policy is at its budget"
    assert len(worst_case_state()["progress"]["actions"]) == 10  # every step of the longest ladder recorded


def policy_file(alarms: int) -> str:
    names = [f"checkout-{n:05d}-" + "x" * 200 for n in range(alarms)]
    policy: dict[str, Any] = {
        "name": "checkout",
        "trigger": {"alarms": names},
        "target": {"codedeploy": {"application": "checkout", "deployment_group": "prod"}},
        "ladder": [{"action": "rollback", "scope": "full", "verify": {"window": "5m"}}],
    }
    return yaml.safe_dump({"version": 1, "policies": [policy]})


def test_a_policy_too_big_for_the_state_is_refused_by_policy_check() -> None:
    parse_policy_document(policy_file(200), "ok.yaml")  # some 43 KB: within the budget

    with pytest.raises(PolicyFileInvalid) as refused:
        parse_policy_document(policy_file(400), "big.yaml")

    [problem] = refused.value.problems
    assert (problem.file, problem.path) == ("big.yaml", "policies[0]")
    assert "more than the 65,536 a policy may take of Step Functions' 262,144" in problem.reason


def config_change(n: int) -> Change:
    return Change(
        scope_key="appconfig:checkout/prod",
        change_id=f"us-east-1:env:{n}",
        kind="config",
        at=clock.iso(ONSET - timedelta(seconds=30 + n)),  # n = 0 is the newest
        state="COMPLETE",
        region="us-east-1",
        detail={"profile": "checkout-config", "version": str(n), "environment": "prod", "deployment_number": n},
    )


def test_an_assessment_keeps_the_newest_changes_and_counts_them_all(make_policy: Callable[..., Policy]) -> None:
    both = {"codedeploy": {"application": "checkout", "deployment_group": "prod"}}
    policy = make_policy(target={**both, "appconfig": {"application": "checkout", "environment": "prod"}})
    changes = [config_change(n) for n in range(500)]

    assessment = plan_assessment("ALARM", ONSET, [], policy, "checkout-5xx-rate", changes, None)

    assert assessment.decision == "act" and assessment.changes_in_scope == 500
    assert [c.change_id for c in assessment.changes] == [f"us-east-1:env:{n}" for n in range(MAX_CHANGES_KEPT)]
    assert "(and 499 earlier changes in scope)" in assessment.reason
