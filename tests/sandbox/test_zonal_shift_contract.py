"""Contract tests: ARC zonal shift as the sandbox answers it (sandbox/zonal_shift.py), through plain boto3.

No Rollguard code: each test calls ``arc-zonal-shift`` the way any client would and asserts what AWS documents (the
page is named on each test). docs/sandbox-traffic.md lists these behaviours, their sources and these tests.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.load_balancer import LoadBalancerSpec
from rollguard_cli.sandbox.runner import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(error_model=lambda label, at, config: 0.0, load_balancer=LoadBalancerSpec()) as sandbox:
        yield sandbox


def arc(sb: Sandbox) -> Any:
    return sb.client("arc-zonal-shift")


def alb(sb: Sandbox) -> str:
    assert sb.load_balancer is not None
    return sb.load_balancer.arn


def zone_id(sb: Sandbox, name: str = "us-east-1b") -> str:
    assert sb.load_balancer is not None
    return sb.load_balancer.zone_ids[name]


def start(sb: Sandbox, expires_in: str = "2h", away: str | None = None, resource: str | None = None) -> dict[str, Any]:
    return dict(
        arc(sb).start_zonal_shift(
            resourceIdentifier=resource or alb(sb),
            awayFrom=away or zone_id(sb),
            expiresIn=expires_in,
            comment="rollguard incident i-1",
        )
    )


def refused(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return dict(caught.value.response)


def test_a_shift_starts_active_with_its_expiry_and_is_applied(sb: Sandbox) -> None:
    # API reference, StartZonalShift (201, ZonalShift shape); GetManagedResource (appliedWeights, appliedStatus).
    before = sb.clock.now()
    shift = start(sb, "90m")
    assert shift["status"] == "ACTIVE" and shift["awayFrom"] == "use1-az1"
    assert shift["resourceIdentifier"] == alb(sb)
    assert timedelta(minutes=90) <= shift["expiryTime"] - before < timedelta(minutes=90, seconds=5)
    resource = arc(sb).get_managed_resource(resourceIdentifier=alb(sb))
    assert resource["appliedWeights"] == {"use1-az1": 0.0, "use1-az2": 1.0, "use1-az6": 1.0}
    assert [(s["zonalShiftId"], s["appliedStatus"]) for s in resource["zonalShifts"]] == [
        (shift["zonalShiftId"], "APPLIED")
    ]
    assert sb.shifted_away() == "use1-az1"


def test_one_customer_shift_per_resource(sb: Sandbox) -> None:
    # "Zonal shift components" (ARC developer guide): built-in checks prevent another zonal shift for a resource
    # that has an active shift; "Application Load Balancers": a single Availability Zone per load balancer.
    first = start(sb)
    for away in (zone_id(sb), zone_id(sb, "us-east-1c")):
        error = refused(
            arc(sb).start_zonal_shift, resourceIdentifier=alb(sb), awayFrom=away, expiresIn="1h", comment="again"
        )
        assert error["Error"]["Code"] == "ConflictException"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert error["reason"] == "ZonalShiftAlreadyExists" and error["zonalShiftId"] == first["zonalShiftId"]


@pytest.mark.parametrize("expires_in", ["0m", "73h", "4321m", "1d", "1 h", "01h"])
def test_expires_in_outside_one_minute_to_72_hours_or_its_format_is_refused(sb: Sandbox, expires_in: str) -> None:
    # "Starting, updating, or canceling a zonal shift": 1 minute up to three days (72 hours); API reference,
    # StartZonalShift, expiresIn: a whole number and m or h, no space (pattern ([1-9][0-9]*)(m|h)).
    error = refused(
        arc(sb).start_zonal_shift, resourceIdentifier=alb(sb), awayFrom=zone_id(sb), expiresIn=expires_in, comment="c"
    )
    assert (error["Error"]["Code"], error["reason"]) == ("ValidationException", "InvalidExpiresIn")


@pytest.mark.parametrize("expires_in", ["1m", "72h", "4320m"])
def test_the_bounds_themselves_are_accepted(sb: Sandbox, expires_in: str) -> None:
    assert start(sb, expires_in)["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("away", "reason"),
    [("us-east-1b", "InvalidAz"), ("use1-az9", "InvalidAz"), ("use1-az4", "UnsupportedAz")],
)
def test_away_from_must_be_an_az_id_the_load_balancer_is_in(sb: Sandbox, away: str, reason: str) -> None:
    # API reference, StartZonalShift, awayFrom: an Availability Zone ID (for example use1-az1); ValidationException.
    error = refused(arc(sb).start_zonal_shift, resourceIdentifier=alb(sb), awayFrom=away, expiresIn="1h", comment="c")
    assert (error["Error"]["Code"], error["reason"]) == ("ValidationException", reason)


def test_a_load_balancer_without_zonal_shift_enabled_is_not_a_managed_resource(sb: Sandbox) -> None:
    # "Enable zonal shift for your Application Load Balancer": disabled by default, the zonal_shift.config.enabled
    # attribute turns it on. API reference, GetManagedResource / StartZonalShift: ResourceNotFoundException.
    elbv2 = sb.client("elbv2")
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=alb(sb), Attributes=[{"Key": "zonal_shift.config.enabled", "Value": "false"}]
    )
    for call, kwargs in [
        (arc(sb).get_managed_resource, {}),
        (arc(sb).start_zonal_shift, {"awayFrom": zone_id(sb), "expiresIn": "1h", "comment": "c"}),
    ]:
        error = refused(call, resourceIdentifier=alb(sb), **kwargs)
        assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
            "ResourceNotFoundException",
            404,
        )
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=alb(sb), Attributes=[{"Key": "zonal_shift.config.enabled", "Value": "true"}]
    )
    assert arc(sb).get_managed_resource(resourceIdentifier=alb(sb))["name"] == "checkout"


def test_an_unknown_or_malformed_resource_is_refused(sb: Sandbox) -> None:
    missing = alb(sb).rsplit("/", 1)[0] + "/0123456789abcdef"
    assert refused(arc(sb).get_managed_resource, resourceIdentifier=missing)["Error"]["Code"] == (
        "ResourceNotFoundException"
    )
    error = refused(arc(sb).get_managed_resource, resourceIdentifier="checkout-alb")
    assert (error["Error"]["Code"], error["reason"]) == ("ValidationException", "InvalidResourceIdentifier")


def test_a_shift_expires_at_its_expiry_on_the_virtual_clock(sb: Sandbox) -> None:
    # "ZonalShiftSummary" (status EXPIRED); a shift is temporary and ends at its expiry time.
    shift = start(sb, "5m")
    sb.advance(4 * 60)
    assert arc(sb).list_zonal_shifts(resourceIdentifier=alb(sb))["items"][0]["status"] == "ACTIVE"
    sb.advance(70)
    listed = arc(sb).list_zonal_shifts(resourceIdentifier=alb(sb), status="EXPIRED")["items"]
    assert [s["zonalShiftId"] for s in listed] == [shift["zonalShiftId"]]
    assert arc(sb).list_zonal_shifts(status="ACTIVE")["items"] == []
    assert arc(sb).get_managed_resource(resourceIdentifier=alb(sb))["zonalShifts"] == []
    assert sb.shifted_away() is None
    assert start(sb)["status"] == "ACTIVE"  # an expired shift no longer blocks a new one


def test_cancel_and_update_act_on_active_shifts_only(sb: Sandbox) -> None:
    # API reference, UpdateZonalShift / CancelZonalShift: ConflictException ZonalShiftStatusNotActive.
    shift_id = start(sb, "1h")["zonalShiftId"]
    updated = arc(sb).update_zonal_shift(zonalShiftId=shift_id, expiresIn="3h", comment="extended")
    assert updated["comment"] == "extended"
    assert updated["expiryTime"] - sb.clock.now() > timedelta(hours=2, minutes=59)
    assert refused(arc(sb).update_zonal_shift, zonalShiftId=shift_id, expiresIn="73h")["reason"] == "InvalidExpiresIn"
    assert arc(sb).cancel_zonal_shift(zonalShiftId=shift_id)["status"] == "CANCELED"
    assert sb.shifted_away() is None
    for call, kwargs in [(arc(sb).cancel_zonal_shift, {}), (arc(sb).update_zonal_shift, {"comment": "late"})]:
        error = refused(call, zonalShiftId=shift_id, **kwargs)
        assert (error["Error"]["Code"], error["reason"]) == ("ConflictException", "ZonalShiftStatusNotActive")
    unknown = refused(arc(sb).cancel_zonal_shift, zonalShiftId="00000000-0000-0000-0000-000000000000")
    assert unknown["Error"]["Code"] == "ResourceNotFoundException"


def test_an_expired_shift_cannot_be_updated(sb: Sandbox) -> None:
    shift_id = start(sb, "1m")["zonalShiftId"]
    sb.advance(90)
    assert refused(arc(sb).update_zonal_shift, zonalShiftId=shift_id, expiresIn="1h")["reason"] == (
        "ZonalShiftStatusNotActive"
    )


def test_a_customer_shift_interrupts_a_practice_run(sb: Sandbox) -> None:
    # "Precedence for zonal shifts": practice run applied, manual zonal shift initiated → the practice run is canceled,
    # its outcome INTERRUPTED, and the zonal shift is applied.
    sb.zonal_shifts.configure_practice_runs(alb(sb), outcome_alarms=["arn:aws:cloudwatch:us-east-1:1:alarm:x"])
    practice = sb.zonal_shifts.start_practice_run(alb(sb), zone_id(sb, "us-east-1c"))
    assert sb.shifted_away() == "use1-az2"
    shift = start(sb)
    by_id = {s["zonalShiftId"]: s for s in arc(sb).list_zonal_shifts(resourceIdentifier=alb(sb))["items"]}
    assert by_id[practice["zonalShiftId"]]["shiftType"] == "PRACTICE_RUN"
    assert by_id[practice["zonalShiftId"]]["status"] == "CANCELED"
    assert by_id[practice["zonalShiftId"]]["practiceRunOutcome"] == "INTERRUPTED"
    assert by_id[shift["zonalShiftId"]]["status"] == "ACTIVE"
    assert sb.shifted_away() == "use1-az1"


def test_a_practice_run_does_not_start_over_a_customer_shift_or_without_a_configuration(sb: Sandbox) -> None:
    # "Precedence for zonal shifts": manual zonal shift applied, practice run initiated → it fails to start.
    # API reference, StartPracticeRun: ConflictException PracticeConfigurationDoesNotExist without a configuration.
    kwargs = {"resourceIdentifier": alb(sb), "awayFrom": zone_id(sb), "comment": "practice"}
    assert refused(arc(sb).start_practice_run, **kwargs)["reason"] == "PracticeConfigurationDoesNotExist"
    sb.zonal_shifts.configure_practice_runs(alb(sb), outcome_alarms=["arn:aws:cloudwatch:us-east-1:1:alarm:x"])
    shift = start(sb)
    error = refused(arc(sb).start_practice_run, **kwargs)
    assert error["Error"]["Code"] == "ConflictException" and error["zonalShiftId"] == shift["zonalShiftId"]
    with pytest.raises(ValueError, match="ConflictException"):
        sb.zonal_shifts.start_practice_run(alb(sb), zone_id(sb))


def test_a_practice_run_lasts_thirty_minutes_and_succeeds(sb: Sandbox) -> None:
    # API reference, CancelPracticeRun / StartPracticeRun: a practice run ends 30 minutes after it starts.
    sb.zonal_shifts.configure_practice_runs(alb(sb), outcome_alarms=["arn:aws:cloudwatch:us-east-1:1:alarm:x"])
    practice = arc(sb).start_practice_run(resourceIdentifier=alb(sb), awayFrom=zone_id(sb), comment="practice")
    sb.advance(29 * 60)
    assert arc(sb).list_zonal_shifts(status="ACTIVE")["items"][0]["practiceRunOutcome"] == "PENDING"
    sb.advance(90)
    [done] = arc(sb).list_zonal_shifts(status="EXPIRED")["items"]
    assert (done["zonalShiftId"], done["practiceRunOutcome"]) == (practice["zonalShiftId"], "SUCCEEDED")


def test_unmodelled_operations_fail_loudly(sb: Sandbox) -> None:
    with pytest.raises(NotImplementedError, match="ListAutoshifts"):
        arc(sb).list_autoshifts()
