"""route: where the ladder goes after a verdict (act the next step, wait again, resolve, escalate)."""

from collections.abc import Callable

import pytest
from rollguard.incident import Progress
from rollguard.policy import Policy
from rollguard.verify import route

MakeProgress = Callable[..., Progress]

CANARY = {"action": "rollback", "scope": "canary", "verify": {"window": "5m"}}
FULL = {"action": "rollback", "scope": "full", "verify": {"window": "5m"}}


@pytest.fixture
def canary_then_full(make_policy: Callable[..., Policy]) -> Policy:
    return make_policy(ladder=[CANARY, FULL])


@pytest.fixture
def full_only(make_policy: Callable[..., Policy]) -> Policy:
    return make_policy(ladder=[FULL])


def test_inconclusive_waits_once_more(canary_then_full: Policy, make_progress: MakeProgress) -> None:
    assert route(make_progress(), "inconclusive", canary_then_full) == (
        "wait_again",
        None,
        "inconclusive: extending the window once",
    )


def test_inconclusive_after_the_extension_escalates(canary_then_full: Policy, make_progress: MakeProgress) -> None:
    assert route(make_progress(extended=True), "inconclusive", canary_then_full) == (
        "escalate",
        None,
        "still inconclusive after extending the window",
    )


def test_inconclusive_escalates_at_once_when_the_step_may_not_extend(
    make_policy: Callable[..., Policy], make_progress: MakeProgress
) -> None:
    policy = make_policy(ladder=[{**CANARY, "verify": {"window": "5m", "extend_once": False}}, FULL])
    assert route(make_progress(), "inconclusive", policy)[0] == "escalate"


def test_a_recovered_canary_widens_to_the_next_step(canary_then_full: Policy, make_progress: MakeProgress) -> None:
    assert route(make_progress(), "recovered", canary_then_full) == (
        "act",
        1,
        "the canary slice recovered: widening to the next step",
    )


def test_recovered_after_the_last_step_resolves(canary_then_full: Policy, make_progress: MakeProgress) -> None:
    progress = make_progress(step=1, scope="full", judge="aggregate", full_rollback_done=True)
    assert route(progress, "recovered", canary_then_full) == ("resolve", None, "recovered")


def test_recovered_on_a_single_step_ladder_resolves(full_only: Policy, make_progress: MakeProgress) -> None:
    progress = make_progress(scope="full", judge="aggregate", full_rollback_done=True)
    assert route(progress, "recovered", full_only)[0] == "resolve"


def test_a_canary_slice_that_did_not_recover_escalates_even_with_steps_left(
    canary_then_full: Policy, make_progress: MakeProgress
) -> None:
    assert route(make_progress(judge="slice"), "not_recovered", canary_then_full) == (
        "escalate",
        None,
        "the canary slice did not recover: stopped moving traffic",
    )


def test_not_recovered_on_the_aggregate_tries_the_next_step(
    canary_then_full: Policy, make_progress: MakeProgress
) -> None:
    progress = make_progress(judge="aggregate", full_rollback_done=False)
    assert route(progress, "not_recovered", canary_then_full) == ("act", 1, "not recovered: trying the next step")


def test_not_recovered_on_the_aggregate_with_no_steps_left_escalates(
    full_only: Policy, make_progress: MakeProgress
) -> None:
    progress = make_progress(scope="full", judge="aggregate", full_rollback_done=True)
    assert route(progress, "not_recovered", full_only) == (
        "escalate",
        None,
        "not recovered and no steps left on the ladder",
    )


def test_rollback_steps_are_skipped_once_a_full_rollback_is_done_and_recovery_resolves(
    canary_then_full: Policy, make_progress: MakeProgress
) -> None:
    # An in-flight deployment stopped with auto-rollback at step 0 already moved all traffic back.
    progress = make_progress(judge="aggregate", full_rollback_done=True)
    assert route(progress, "recovered", canary_then_full)[0] == "resolve"


def test_rollback_steps_are_skipped_once_a_full_rollback_is_done_and_failure_escalates(
    canary_then_full: Policy, make_progress: MakeProgress
) -> None:
    progress = make_progress(judge="aggregate", full_rollback_done=True)
    assert route(progress, "not_recovered", canary_then_full)[0] == "escalate"


def test_the_next_step_is_the_first_one_not_skipped(
    make_policy: Callable[..., Policy], make_progress: MakeProgress
) -> None:
    policy = make_policy(ladder=[CANARY, FULL, FULL])
    progress = make_progress(step=0, judge="aggregate", full_rollback_done=False)
    assert route(progress, "not_recovered", policy)[:2] == ("act", 1)
    assert route(progress.model_copy(update={"full_rollback_done": True}), "not_recovered", policy)[:2] == (
        "escalate",
        None,
    )
