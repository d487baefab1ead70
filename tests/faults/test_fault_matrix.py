"""A fixed sample of the fault matrix (rollguard_cli.faults; the whole matrix is `make faults`): each case fails
one AWS call of a drill's functions one way, once or every time, and every promise of issue 9 must still hold."""

import logging
from collections.abc import Iterator

import pytest
from rollguard_cli import faults

pytestmark = pytest.mark.slow  # drills under injected faults

SAMPLE = 20
_baselines = faults.baselines()  # fault-free runs: the matrix's cases are read off the calls they made
CASES = faults.sample(faults.cases(_baselines), SAMPLE)


@pytest.fixture(scope="module", autouse=True)
def baselines() -> Iterator[None]:
    faults._BASELINES.update(_baselines)
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    yield
    faults._BASELINES.clear()


def test_the_sample_spans_both_drills_and_every_kind_of_fault() -> None:
    assert {c.drill for c in CASES} == set(faults.DRILLS)
    assert {c.kind for c in CASES} == set(faults.KINDS)
    assert {c.repeat for c in CASES} == set(faults.REPEATS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_promise_holds_under_the_fault(case: faults.Case) -> None:
    result = faults._run_case(case)

    assert result.violations == [], result.reason
