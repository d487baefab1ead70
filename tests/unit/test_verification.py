"""The verdicts after a step: judge_slice (canary) and judge_aggregate (full), both pure."""

from typing import Any

import pytest
from rollguard.adapters.cloudwatch import AlarmInfo
from rollguard.verdicts import SliceStats, judge_aggregate, judge_slice

MIN_REQUESTS = 50
MAX_ERROR_RATE = 0.05
BAD = SliceStats("revision 7", requests=900, errors=180)


def good(requests: float, errors: float) -> SliceStats:
    return SliceStats("revision 6", requests=requests, errors=errors)


def alarm(**fields: Any) -> AlarmInfo:
    base: dict[str, Any] = {
        "name": "checkout-5xx-rate",
        "state": "OK",
        "composite": False,
        "threshold": 5.0,
        "comparison": "GreaterThanThreshold",
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
    }
    return AlarmInfo(**{**base, **fields})


# ---------------------------------------------------------------- judge_slice


def test_slice_error_rate_is_errors_over_requests_and_zero_without_traffic() -> None:
    assert good(200, 10).error_rate == 0.05
    assert good(0, 0).error_rate == 0.0


def test_too_little_traffic_on_the_good_slice_is_inconclusive() -> None:
    verdict, reason = judge_slice(good(49, 0), BAD, MIN_REQUESTS, MAX_ERROR_RATE)
    assert verdict == "inconclusive"
    assert reason == "only 49 requests reached revision 6 (need 50) — too little traffic to judge"


def test_no_traffic_on_the_good_slice_is_inconclusive_never_recovered() -> None:
    verdict, _ = judge_slice(good(0, 0), BAD, MIN_REQUESTS, MAX_ERROR_RATE)
    assert verdict == "inconclusive"


def test_exactly_min_requests_is_enough_to_judge() -> None:
    verdict, _ = judge_slice(good(50, 0), BAD, MIN_REQUESTS, MAX_ERROR_RATE)
    assert verdict == "recovered"


def test_a_healthy_good_slice_is_recovered_and_the_reason_gives_both_rates() -> None:
    verdict, reason = judge_slice(good(100, 1), BAD, MIN_REQUESTS, MAX_ERROR_RATE)
    assert verdict == "recovered"
    assert reason.startswith("the rolled-back slice is healthy (")
    assert "revision 6: 1.0% errors over 100 requests" in reason
    assert "revision 7: 20.0% over 900" in reason


def test_a_good_slice_exactly_at_the_max_error_rate_is_recovered() -> None:
    verdict, _ = judge_slice(good(100, 5), BAD, MIN_REQUESTS, MAX_ERROR_RATE)
    assert verdict == "recovered"


def test_a_good_slice_as_bad_as_the_rest_is_not_recovered_and_clears_the_deploy() -> None:
    verdict, reason = judge_slice(good(100, 20), BAD, MIN_REQUESTS, MAX_ERROR_RATE)
    assert verdict == "not_recovered"
    assert "as unhealthy as the rest" in reason
    assert reason.endswith("the deploy is not the cause")


def test_a_good_slice_just_over_the_max_error_rate_is_not_recovered() -> None:
    verdict, _ = judge_slice(good(1000, 51), BAD, MIN_REQUESTS, MAX_ERROR_RATE)
    assert verdict == "not_recovered"


# ---------------------------------------------------------------- judge_aggregate


def test_ok_alarm_with_the_last_datapoints_within_threshold_is_recovered() -> None:
    verdict, reason = judge_aggregate(alarm(), [1.0, 2.5])
    assert verdict == "recovered"
    assert reason == "checkout-5xx-rate is OK and its last 2 datapoints [1, 2.5] are within 5"


def test_only_the_newest_datapoints_to_alarm_values_are_judged() -> None:
    # Values arrive newest first; the old breach (9.0) is outside the last DatapointsToAlarm values.
    verdict, reason = judge_aggregate(alarm(), [1.0, 2.0, 9.0])
    assert verdict == "recovered"
    assert "[1, 2]" in reason


def test_ok_alarm_with_a_breaching_recent_datapoint_is_not_recovered() -> None:
    verdict, reason = judge_aggregate(alarm(), [1.0, 9.0])
    assert verdict == "not_recovered"
    assert reason == "checkout-5xx-rate is OK; last 2 datapoints [1, 9], 1 breaching 5"


def test_an_alarm_still_in_alarm_is_not_recovered_even_with_good_values() -> None:
    verdict, reason = judge_aggregate(alarm(state="ALARM"), [1.0, 2.0])
    assert verdict == "not_recovered"
    assert reason.startswith("checkout-5xx-rate is ALARM")


@pytest.mark.parametrize("values", [[], [1.0]])
def test_missing_datapoints_are_inconclusive_never_recovered(values: list[float]) -> None:
    verdict, reason = judge_aggregate(alarm(), values)
    assert verdict == "inconclusive"
    assert f"only {len(values)} of the 2 datapoints needed were reported" in reason
    assert "no recovery is declared from missing data" in reason


@pytest.mark.parametrize(
    ("state", "verdict"),
    [("OK", "recovered"), ("ALARM", "not_recovered"), ("INSUFFICIENT_DATA", "inconclusive")],
)
def test_a_composite_alarm_is_judged_on_its_state_alone(state: str, verdict: str) -> None:
    composite = AlarmInfo(name="checkout-health", state=state, composite=True)
    assert judge_aggregate(composite, []) == (verdict, f"composite alarm checkout-health is {state}")


def test_a_composite_alarm_ignores_any_values_passed() -> None:
    composite = AlarmInfo(name="checkout-health", state="OK", composite=True)
    assert judge_aggregate(composite, [999.0, 999.0])[0] == "recovered"


@pytest.mark.parametrize(
    ("comparison", "value", "verdict"),
    [
        ("GreaterThanThreshold", 5.0, "recovered"),
        ("GreaterThanThreshold", 5.1, "not_recovered"),
        ("GreaterThanOrEqualToThreshold", 4.9, "recovered"),
        ("GreaterThanOrEqualToThreshold", 5.0, "not_recovered"),
        ("LessThanThreshold", 5.0, "recovered"),
        ("LessThanThreshold", 4.9, "not_recovered"),
        ("LessThanOrEqualToThreshold", 5.1, "recovered"),
        ("LessThanOrEqualToThreshold", 5.0, "not_recovered"),
    ],
)
def test_each_comparison_operator_decides_what_breaches(comparison: str, value: float, verdict: str) -> None:
    info = alarm(comparison=comparison, datapoints_to_alarm=1, evaluation_periods=1)
    assert judge_aggregate(info, [value])[0] == verdict


@pytest.mark.parametrize(
    ("state", "values", "verdict"),
    [("OK", [1.0, 2.0], "recovered"), ("ALARM", [1.0, 2.0], "not_recovered"), ("OK", [1.0], "inconclusive")],
)
def test_an_anomaly_band_alarm_is_judged_by_its_state_once_its_datapoints_are_in(
    state: str, values: list[float], verdict: str
) -> None:
    # The band is CloudWatch's model: its state is the verdict, never from missing data.
    band = alarm(state=state, comparison="GreaterThanUpperThreshold", threshold=None)
    assert judge_aggregate(band, values)[0] == verdict
