"""Route 53 Application Recovery Controller zonal shift, for a load balancer, and the AZ names behind AZ IDs.

ARC names zones by AZ ID (use1-az1), ALB metrics by AZ name (us-east-1a); EC2's DescribeAvailabilityZones maps one
to the other for this account. A customer zonal shift lasts ``expiresIn`` (1 minute to 72 hours, "30m" or "2h"),
one active per resource ("StartZonalShift", ARC API Reference), and takes precedence over autoshifts and practice
runs ("How zonal autoshift and practice runs work", ARC Developer Guide).
"""

from dataclasses import dataclass
from typing import Any

from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.clock import iso
from rollguard.errors import TargetNotFound


@dataclass(frozen=True)
class Zone:
    zone_id: str  # use1-az2
    name: str  # us-east-1b


@dataclass(frozen=True)
class Shift:
    shift_id: str
    resource: str
    away_from: str  # AZ ID
    expiry: str  # ISO 8601
    status: str
    comment: str

    @classmethod
    def of(cls, item: dict[str, Any]) -> "Shift":
        expiry = item.get("expiryTime")
        return cls(
            shift_id=item["zonalShiftId"],
            resource=item["resourceIdentifier"],
            away_from=item["awayFrom"],
            expiry=iso(expiry) if hasattr(expiry, "isoformat") else str(expiry),
            status=item.get("status", "ACTIVE"),
            comment=item.get("comment", ""),
        )


def expires_in(seconds: int) -> str:
    """ARC's duration: whole hours as "2h", else minutes as "90m"."""
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


class ZonalShifts:
    def __init__(self, arc: Any, ec2: Any):
        self._arc = arc
        self._ec2 = ec2

    def zone(self, name_or_id: str) -> Zone:
        key = "ZoneIds" if "-az" in name_or_id else "ZoneNames"
        try:
            zones = self._ec2.describe_availability_zones(**{key: [name_or_id]})["AvailabilityZones"]
        except AWS_FAILURES as exc:
            raise translate(exc, f"looking up Availability Zone {name_or_id}") from exc
        if not zones:
            raise TargetNotFound(f"Availability Zone {name_or_id} is not in this region")
        return Zone(zone_id=zones[0]["ZoneId"], name=zones[0]["ZoneName"])

    def active(self, resource: str) -> list[Shift]:
        try:
            pages = self._arc.get_paginator("list_zonal_shifts").paginate(resourceIdentifier=resource, status="ACTIVE")
            return [Shift.of(item) for page in pages for item in page.get("items", [])]
        except AWS_FAILURES as exc:
            raise translate(
                exc, f"listing the zonal shifts of {resource}", frozenset({"ResourceNotFoundException"})
            ) from exc

    def start(self, resource: str, away_from: str, seconds: int, comment: str) -> Shift:
        try:
            answer = self._arc.start_zonal_shift(
                resourceIdentifier=resource, awayFrom=away_from, expiresIn=expires_in(seconds), comment=comment[:128]
            )
        except AWS_FAILURES as exc:
            raise translate(
                exc,
                f"starting a zonal shift of {resource} away from {away_from}",
                frozenset({"ResourceNotFoundException"}),
            ) from exc
        return Shift.of(answer)

    def cancel(self, shift_id: str) -> str:
        """CANCELED; or what it already was when it was no longer active (expired, or cancelled before)."""
        try:
            return str(self._arc.cancel_zonal_shift(zonalShiftId=shift_id).get("status", "CANCELED"))
        except AWS_FAILURES as exc:
            if error_code(exc) == "ConflictException":
                return "no longer active"
            raise translate(exc, f"cancelling zonal shift {shift_id}") from exc
