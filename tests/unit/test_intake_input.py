"""Hostile intake input: only this stack's CloudWatch alarms are acted on, odd side fields are tolerated, every
stored field is bounded, and nothing that arrives raises."""

import copy
from typing import Any

import pytest
from rollguard.alarm_event import ALARM_NAME_MAX, REASON_MAX, AlarmStateChange, Origin
from rollguard.intake import IntakeResult, read_alarm_event

from tests.conftest import load_event

HERE = Origin(account="123456789012", region="us-east-1")


def alarm(**envelope: Any) -> dict[str, Any]:
    return {**load_event("remediation/intake/alarm.json"), **envelope}


def with_detail(**detail: Any) -> dict[str, Any]:
    event = alarm()
    event["detail"] = {**event["detail"], **detail}
    return event


def with_state(**state: Any) -> dict[str, Any]:
    event = alarm()
    event["detail"]["state"] = {**event["detail"]["state"], **state}
    return event


def read(event: Any) -> AlarmStateChange:
    result = read_alarm_event(event, HERE)
    assert isinstance(result, AlarmStateChange), result
    return result


def refused(event: Any) -> IntakeResult:
    result = read_alarm_event(event, HERE)
    assert isinstance(result, IntakeResult), result
    return result


def test_the_origin_is_the_invoked_functions_account_and_the_region_given() -> None:
    origin = Origin.of_function("arn:aws:lambda:eu-west-1:210987654321:function:rollguard-intake:live", "eu-west-1")
    assert origin == Origin(account="210987654321", region="eu-west-1")


def test_this_stacks_alarm_is_read_with_its_arn() -> None:
    event = read(alarm())
    assert event.detail.alarmName == "checkout-5xx-rate"
    assert event.alarm_arn == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx-rate"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("account", "210987654321", "123456789012"),
        ("region", "eu-west-1", "us-east-1"),
        ("source", "aws.ec2", "aws.cloudwatch"),
        ("source", "my.app", "aws.cloudwatch"),
    ],
)
def test_an_event_from_another_account_region_or_source_is_rejected_naming_the_field_and_both_values(
    field: str, value: str, expected: str
) -> None:
    result = refused(alarm(**{field: value}))
    assert result.status == "rejected"
    assert f"{field} '{value}' is not this stack's '{expected}'" in result.reason
    assert "\n" not in result.reason


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:payments-5xx",  # another alarm
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx-rate-2",
        "arn:aws:cloudwatch:us-east-1:210987654321:alarm:checkout-5xx-rate",  # another account's alarm
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:checkout-5xx-rate",  # another region's
        "arn:aws:sns:us-east-1:123456789012:alarm:checkout-5xx-rate",  # not CloudWatch
        "checkout-5xx-rate",
    ],
)
def test_resources_naming_anything_but_this_alarm_is_rejected(arn: str) -> None:
    result = refused(alarm(resources=[arn]))
    assert result.status == "rejected"
    assert "resources[0]" in result.reason and "is not alarm 'checkout-5xx-rate' of this stack" in result.reason


def test_a_second_resource_naming_another_alarm_is_rejected() -> None:
    mine = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx-rate"
    result = refused(alarm(resources=[mine, "arn:aws:cloudwatch:us-east-1:123456789012:alarm:other"]))
    assert result.status == "rejected" and "resources[1]" in result.reason


@pytest.mark.parametrize("resources", [[], None])
def test_an_event_without_resources_is_read_with_no_arn(resources: Any) -> None:
    event = alarm(resources=resources) if resources is not None else alarm()
    if resources is None:
        del event["resources"]
    assert read(event).alarm_arn == ""


def test_an_alarm_name_with_colons_matches_its_arn() -> None:
    name = "team:checkout:5xx"
    event = with_detail(alarmName=name)
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    assert read(event).detail.alarmName == name


@pytest.mark.parametrize(
    "side",
    [
        {"previousState": "OK"},
        {"previousState": {"value": "PENDING", "timestamp": 17, "reason": ["x"]}},
        {"previousState": None},
        {"previousState": {}},
        {"configuration": ["not", "a", "mapping"]},
        {"configuration": "alarmRule"},
        {"configuration": None},
        {"surprise": {"deeply": [{"nested": True}]}},
    ],
)
def test_odd_side_fields_in_the_detail_are_tolerated(side: dict[str, Any]) -> None:
    event = read(with_detail(**side))
    assert event.detail.alarmName == "checkout-5xx-rate"
    assert event.detail.state.value == "ALARM"


@pytest.mark.parametrize(
    "envelope",
    [{"version": 0}, {"version": None}, {"version": ["1"]}, {"replay-name": 42}, {"surprise": "x"}],
)
def test_odd_side_fields_in_the_envelope_are_tolerated(envelope: dict[str, Any]) -> None:
    assert read(alarm(**envelope)).id == "5f1d6a0e-2b7c-4d0c-9a51-1f3c0b2e7d11"


@pytest.mark.parametrize("reason_data", [{"version": "1.0"}, 17, "x" * 5000, "not json {"])
def test_odd_reason_data_is_tolerated_and_names_no_child_alarm(reason_data: Any) -> None:
    event = read(with_state(reasonData=reason_data))
    assert event.detail.triggering_alarms() == []


def test_an_odd_configuration_makes_the_alarm_a_metric_alarm_not_a_rejection() -> None:
    assert read(with_detail(configuration=["alarmRule"])).detail.composite is False


def test_the_longest_alarm_name_cloudwatch_allows_is_read() -> None:
    name = "a" * ALARM_NAME_MAX
    event = with_detail(alarmName=name)
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    assert read(event).detail.alarmName == name


def test_an_alarm_name_longer_than_cloudwatch_allows_is_rejected() -> None:
    result = refused(with_detail(alarmName="a" * (ALARM_NAME_MAX + 1)))
    assert result.status == "rejected" and "detail.alarmName" in result.reason and "255" in result.reason


def test_a_reason_longer_than_cloudwatch_allows_is_cut_to_its_limit() -> None:
    event = read(with_state(reason="r" * 100_000))
    assert event.detail.state.reason == "r" * REASON_MAX


@pytest.mark.parametrize(
    ("event", "where"),
    [
        (with_detail(alarmName="checkout-\ud800-rate"), "detail.alarmName"),
        (alarm(id="5f1d6a0e\udfff"), "id"),
        (alarm(region="us-east-1\ud83d"), "region"),
    ],
)
def test_a_lone_surrogate_in_a_field_acted_on_is_rejected_as_invalid_utf8(event: dict[str, Any], where: str) -> None:
    result = refused(event)
    assert result.status == "rejected"
    assert where in result.reason and ("not valid UTF-8" in result.reason or "pattern" in result.reason)
    result.reason.encode("utf-8")  # the reason itself is safe to log and to return


def test_a_lone_surrogate_in_the_reason_is_replaced_not_rejected() -> None:
    event = read(with_state(reason="bad \udc80 byte"))
    assert event.detail.state.reason == "bad \ufffd byte"


def test_an_alarm_name_with_a_control_character_is_rejected() -> None:
    result = refused(with_detail(alarmName="checkout\n5xx"))
    assert result.status == "rejected" and "control character" in result.reason


@pytest.mark.parametrize(
    ("event", "where"),
    [
        (alarm(id="x" * 129), "id"),
        (alarm(id="has space"), "id"),
        (alarm(id=42), "id"),
        (alarm(account="12345"), "account"),
        (alarm(time="yesterday"), "time"),
        (with_state(timestamp="2026-11-26T10:04:40"), "detail.state.timestamp"),
        (with_state(timestamp="0001-01-01T00:00:00Z"), "detail.state.timestamp"),
        (with_state(timestamp="t" * 65), "detail.state.timestamp"),
        (with_state(value="PENDING"), "detail.state.value"),
        (with_state(reason=["a", "list"]), "detail.state.reason"),
        (alarm(resources="arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx-rate"), "resources"),
        (alarm(detail=None), "detail"),
    ],
)
def test_what_rollguard_acts_on_must_validate(event: dict[str, Any], where: str) -> None:
    result = refused(event)
    assert result.status == "rejected"
    assert f": {where}" in result.reason, result.reason


def test_a_rejection_quotes_a_huge_event_id_briefly() -> None:
    result = refused(alarm(id="x" * 100_000))
    assert len(result.reason) < 300


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        [],
        "text",
        42,
        {},
        {"detail-type": ["CloudWatch Alarm State Change"]},
        {"detail-type": "CloudWatch Alarm State Change"},
        {"detail-type": "CloudWatch Alarm State Change", "detail": {"state": []}},
        {**load_event("remediation/intake/alarm.json"), "detail": {"alarmName": {"nested": 1}, "state": "ALARM"}},
    ],
)
def test_garbage_is_rejected_or_ignored_never_raised(garbage: Any) -> None:
    assert refused(copy.deepcopy(garbage)).status in {"rejected", "ignored"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"id": "5f1d6a0e-2b7c-4d0c-9a51-1f3c0b2e7d11"}, "5f1d6a0e-2b7c-4d0c-9a51-1f3c0b2e7d11"),
        ({"id": "x\udc80"}, None),
        ({"id": "x" * 129}, None),
        ({"id": "line\n"}, None),
        ({"id": {"a": 1}}, None),
        ("not an event", None),
    ],
)
def test_only_an_event_id_a_log_line_can_carry_becomes_the_correlation_id(raw: Any, expected: str | None) -> None:
    from rollguard.alarm_event import correlation_id

    assert correlation_id(raw) == expected
