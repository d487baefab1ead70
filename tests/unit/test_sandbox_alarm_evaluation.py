"""The sandbox's CloudWatch alarm evaluation: M of N datapoints and TreatMissingData."""

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from rollguard_cli.sandbox.world import evaluate

from tests.unit.builders import ONSET

PERIOD = 60
AT = ONSET  # the period boundary at which the alarm is evaluated


def alarm(**fields: Any) -> SimpleNamespace:
    """checkout-5xx-rate as the drills define it: > 5 for 2 of 3 one-minute periods."""
    base: dict[str, Any] = {
        "period": PERIOD,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 5.0,
        "treat_missing_data": "missing",
        "state_value": "OK",
    }
    return SimpleNamespace(**{**base, **fields})


def series(*values: float | None) -> list[tuple[Any, float]]:
    """Datapoints for the periods ending at AT, oldest first; None leaves a gap."""
    count = len(values)
    return [(AT - (count - i) * timedelta(seconds=PERIOD), v) for i, v in enumerate(values) if v is not None]


def test_two_breaching_of_three_is_alarm() -> None:
    assert evaluate(alarm(), series(9.0, 1.0, 8.0), AT) == ("ALARM", 2, [9.0, 1.0, 8.0])


def test_one_breaching_of_three_is_ok() -> None:
    assert evaluate(alarm(state_value="ALARM"), series(1.0, 9.0, 2.0), AT) == ("OK", 1, [1.0, 9.0, 2.0])


def test_a_value_equal_to_the_threshold_does_not_breach_greater_than() -> None:
    assert evaluate(alarm(), series(5.0, 5.0, 5.0), AT)[0] == "OK"


def test_only_the_last_evaluation_periods_are_considered() -> None:
    state, breaching, window = evaluate(alarm(), series(9.0, 9.0, 1.0, 1.0, 9.0), AT)
    assert window == [1.0, 1.0, 9.0]
    assert (state, breaching) == ("OK", 1)


def test_datapoints_to_alarm_unset_means_all_evaluation_periods() -> None:
    three_of_three = alarm(datapoints_to_alarm=None)
    assert evaluate(three_of_three, series(9.0, 9.0, 1.0), AT)[0] == "OK"
    assert evaluate(three_of_three, series(9.0, 9.0, 9.0), AT)[0] == "ALARM"


def test_the_comparison_operator_is_honoured() -> None:
    low_traffic = alarm(comparison_operator="LessThanThreshold", threshold=100.0)
    assert evaluate(low_traffic, series(50.0, 150.0, 20.0), AT)[0] == "ALARM"


# ---------------------------------------------------------------- TreatMissingData


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ((9.0, None, 8.0), "ALARM"),
        ((9.0, None, 1.0), "OK"),
        ((None, None, None), "INSUFFICIENT_DATA"),
    ],
)
def test_missing_judges_the_datapoints_present(values: tuple[float | None, ...], state: str) -> None:
    assert evaluate(alarm(treat_missing_data="missing"), series(*values), AT)[0] == state


def test_unset_treat_missing_data_behaves_as_missing() -> None:
    assert evaluate(alarm(treat_missing_data=None), series(None, None, None), AT)[0] == "INSUFFICIENT_DATA"


@pytest.mark.parametrize("current", ["OK", "ALARM", "INSUFFICIENT_DATA"])
def test_ignore_keeps_the_current_state_when_everything_is_missing(current: str) -> None:
    assert evaluate(alarm(treat_missing_data="ignore", state_value=current), series(None, None, None), AT)[0] == current


def test_ignore_keeps_the_current_state_with_fewer_datapoints_than_needed() -> None:
    ignoring = alarm(treat_missing_data="ignore", state_value="ALARM")
    assert evaluate(ignoring, series(None, None, 1.0), AT)[0] == "ALARM"


@pytest.mark.parametrize(("values", "state"), [((9.0, None, 8.0), "ALARM"), ((1.0, None, 2.0), "OK")])
def test_ignore_judges_when_enough_datapoints_are_present(values: tuple[float | None, ...], state: str) -> None:
    ignoring = alarm(treat_missing_data="ignore", state_value="INSUFFICIENT_DATA")
    assert evaluate(ignoring, series(*values), AT)[0] == state


@pytest.mark.parametrize(
    ("values", "state", "breaching"),
    [
        ((9.0, None, None), "ALARM", 3),
        ((None, None, None), "ALARM", 3),
        ((1.0, None, 2.0), "OK", 1),
        ((1.0, 2.0, 3.0), "OK", 0),
    ],
)
def test_breaching_counts_each_gap_as_a_breach(values: tuple[float | None, ...], state: str, breaching: int) -> None:
    result = evaluate(alarm(treat_missing_data="breaching"), series(*values), AT)
    assert result[:2] == (state, breaching)


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ((9.0, None, None), "OK"),
        ((None, None, None), "OK"),
        ((9.0, None, 8.0), "ALARM"),
    ],
)
def test_not_breaching_counts_each_gap_as_healthy(values: tuple[float | None, ...], state: str) -> None:
    assert evaluate(alarm(treat_missing_data="notBreaching"), series(*values), AT)[0] == state


def test_gaps_appear_as_none_in_the_reported_window() -> None:
    assert evaluate(alarm(), series(9.0, None, 8.0), AT)[2] == [9.0, None, 8.0]
