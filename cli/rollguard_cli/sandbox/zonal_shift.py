"""Amazon Application Recovery Controller (ARC) zonal shift for the sandbox: moto 5.2.5 has no ``arc-zonal-shift``
service at all, so these operations are answered from a botocore ``before-call`` hook (installed by runner.py), in the
shapes of botocore's ``arc-zonal-shift`` service model (the request has been validated by botocore when the hook runs;
what the hook returns is what the caller gets).

The managed resources are moto's own Application Load Balancers: a load balancer is a managed resource while its
``zonal_shift.config.enabled`` attribute is ``true`` (moto's elbv2 backend is read on every call). Time is the
sandbox's virtual clock: a shift EXPIRES when the clock passes its expiry, with no call needed.

Each behaviour and its source (docs/sandbox-traffic.md has the table, with the contract tests):

- Zonal shift is disabled by default on an ALB and must be enabled with the load balancer attribute
  ``zonal_shift.config.enabled`` ("Enable zonal shift for your Application Load Balancer", ELB user guide). An ALB
  without it, or an ARN that names no load balancer, is ``ResourceNotFoundException`` (404) (API reference,
  StartZonalShift / GetManagedResource, Errors). An identifier that is not an ALB or NLB ARN is
  ``ValidationException`` ``InvalidResourceIdentifier``.
- ``awayFrom`` is an Availability Zone ID (``use1-az1``), not a name (API reference, StartZonalShift: "The
  Availability Zone (for example, use1-az1)"): anything else is ``ValidationException`` ``InvalidAz``; an AZ ID of the
  Region that the load balancer is not in is ``ValidationException`` ``UnsupportedAz``.
- ``expiresIn`` is a whole number followed by ``m`` or ``h`` (API reference, StartZonalShift, expiresIn; model pattern
  ``([1-9][0-9]*)(m|h)``), from 1 minute to three days (72 hours) ("Starting, updating, or canceling a zonal shift",
  ARC developer guide: "active initially for 1 minute or up to three days"); UpdateZonalShift sets a new expiration
  counted from now, up to three days again. Outside that: ``ValidationException`` ``InvalidExpiresIn``.
- One customer-initiated zonal shift per resource: "Checks that are built into zonal shift prevent you from starting
  another zonal shift for a resource when it already has an active shift" ("Zonal shift components", ARC developer
  guide); a second StartZonalShift is ``ConflictException`` (409) ``ZonalShiftAlreadyExists`` with the active shift's
  id. "You can start a zonal shift for a specific load balancer only for a single Availability Zone" ("Application Load
  Balancers", ARC developer guide): the same refusal whatever ``awayFrom`` the second one names.
- Practice runs ("Precedence for zonal shifts", ARC developer guide): a customer zonal shift started while a practice
  run is in progress cancels the practice run, sets its outcome to ``INTERRUPTED``, and is applied; a practice run
  started while a customer zonal shift is active fails to start (``ConflictException``; AWS does not name the reason:
  the sandbox answers ``ZonalShiftAlreadyExists``). A practice run lasts 30 minutes ("CancelPracticeRun", API
  reference: "30 minutes from the time when you start the practice run"), then ends ``SUCCEEDED`` (outcome alarms are
  not evaluated). StartPracticeRun needs a practice run configuration: without one ``ConflictException``
  ``PracticeConfigurationDoesNotExist``; drills configure one with :meth:`ZonalShifts.configure_practice_runs` and may
  start AWS's own (weekly) practice run with :meth:`ZonalShifts.start_practice_run`.
- UpdateZonalShift and CancelZonalShift of a shift that is not ACTIVE: ``ConflictException``
  ``ZonalShiftStatusNotActive``; an unknown id: ``ResourceNotFoundException`` (API reference, Errors). A canceled
  shift is ``CANCELED``; one past its expiry is ``EXPIRED`` ("ZonalShiftSummary", status).
- GetManagedResource: ``appliedWeights`` (AZ ID → 1.0, or 0.0 for the AZ an applied shift is away from) and the active
  ``zonalShifts`` with their ``appliedStatus`` (customer-initiated > practice run: "ZonalShiftInResource",
  appliedStatus). ListZonalShifts lists customer shifts and practice runs, newest first, filtered by ``status`` and
  ``resourceIdentifier``; zonal autoshifts are not listed and not modelled.
"""

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

Answer = tuple[int, dict[str, Any]]

MAX_EXPIRY = timedelta(hours=72)
MIN_EXPIRY = timedelta(minutes=1)
PRACTICE_RUN = timedelta(minutes=30)
_EXPIRES_IN = re.compile(r"([1-9][0-9]*)(m|h)")
_AZ_ID = re.compile(r"[a-z]{2,4}[0-9]-az[0-9]+")
_LOAD_BALANCER_ARN = re.compile(r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:loadbalancer/(app|net)/.+")
ZONAL_SHIFT_ATTRIBUTE = "zonal_shift.config.enabled"


def _error(status: int, code: str, message: str, **fields: str) -> Answer:
    """A modelled error: botocore puts the error shape's members (``reason``, ``zonalShiftId``) next to ``Error``."""
    return status, {
        "Error": {"Code": code, "Message": message},
        "message": message,
        **fields,
        "ResponseMetadata": {"HTTPStatusCode": status},
    }


def _ok(body: dict[str, Any], status: int = 200) -> Answer:
    return status, {**body, "ResponseMetadata": {"HTTPStatusCode": status}}


def validation(reason: str, message: str) -> Answer:
    return _error(400, "ValidationException", message, reason=reason)


def conflict(reason: str, message: str, zonal_shift_id: str | None = None) -> Answer:
    extra = {"zonalShiftId": zonal_shift_id} if zonal_shift_id else {}
    return _error(409, "ConflictException", message, reason=reason, **extra)


def not_found(message: str) -> Answer:
    return _error(404, "ResourceNotFoundException", message)


def parse_expires_in(text: str) -> timedelta | None:
    """``20h`` / ``120m`` → the duration, or None when AWS refuses it (format, or outside 1 minute to 72 hours)."""
    match = _EXPIRES_IN.fullmatch(text or "")
    if match is None:
        return None
    amount = int(match.group(1))
    duration = timedelta(minutes=amount) if match.group(2) == "m" else timedelta(hours=amount)
    return duration if MIN_EXPIRY <= duration <= MAX_EXPIRY else None


@dataclass
class Shift:
    zonal_shift_id: str
    resource: str
    away_from: str
    comment: str
    start: datetime
    expiry: datetime
    shift_type: str = "ZONAL_SHIFT"  # or PRACTICE_RUN
    canceled_at: datetime | None = None
    outcome: str | None = None  # practice runs: PENDING, then SUCCEEDED or INTERRUPTED

    def status(self, now: datetime) -> str:
        if self.canceled_at is not None:
            return "CANCELED"
        return "ACTIVE" if now < self.expiry else "EXPIRED"

    def ended(self) -> datetime:
        return self.canceled_at or self.expiry

    def active_at(self, moment: datetime) -> bool:
        return self.start <= moment < self.ended()

    def practice_outcome(self, now: datetime) -> str | None:
        if self.shift_type != "PRACTICE_RUN":
            return None
        if self.outcome is None and self.status(now) == "EXPIRED":
            return "SUCCEEDED"
        return self.outcome or "PENDING"

    def shape(self, now: datetime) -> dict[str, Any]:
        return {
            "zonalShiftId": self.zonal_shift_id,
            "resourceIdentifier": self.resource,
            "awayFrom": self.away_from,
            "expiryTime": self.expiry,
            "startTime": self.start,
            "status": self.status(now),
            "comment": self.comment,
        }

    def summary(self, now: datetime) -> dict[str, Any]:
        body = {**self.shape(now), "shiftType": self.shift_type}
        outcome = self.practice_outcome(now)
        if outcome is not None:
            body["practiceRunOutcome"] = outcome
        return body


@dataclass
class ManagedResource:
    arn: str
    name: str
    zones: dict[str, str]  # AZ ID → AZ name, the load balancer's zones


@dataclass
class ZonalShifts:
    """The ARC zonal shift service of one account, over moto's load balancers (``resources`` reads them)."""

    now: Callable[[], datetime]
    # (region, ARN) → the managed resource, or None when moto has no such load balancer or zonal shift is not enabled.
    resources: Callable[[str, str], ManagedResource | None]
    # (region) → every Availability Zone ID of the Region (ec2 DescribeAvailabilityZones).
    zone_ids: Callable[[str], set[str]]
    shifts: list[Shift] = field(default_factory=list)
    practice_configurations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Called when a shift starts or ends early (the World records when traffic moved).
    changed: Callable[[], None] | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # ------------------------------------------------------------------ the hook

    def answer(self, region: str, operation: str, params: dict[str, Any]) -> Answer:
        handler = getattr(self, f"_{operation}", None)
        if handler is None:  # never a silent success: model the operation before a caller depends on it
            raise NotImplementedError(f"arc-zonal-shift {operation} is not modelled by the sandbox (zonal_shift.py)")
        with self._lock:
            result: Answer = handler(region, **params)
        if self.changed is not None and operation in {"StartZonalShift", "CancelZonalShift", "StartPracticeRun"}:
            self.changed()
        return result

    # ------------------------------------------------------------------ what the World asks

    def applied(self, resource: str, moment: datetime) -> Shift | None:
        """The shift in effect for ``resource`` at ``moment``: customer-initiated before practice runs."""
        with self._lock:
            active = [s for s in self.shifts if s.resource == resource and s.active_at(moment)]
        active.sort(key=lambda s: (s.shift_type != "ZONAL_SHIFT", s.start))
        return active[0] if active else None

    def changes(self, resource: str) -> list[datetime]:
        """Every moment at which the applied shift of ``resource`` may change (starts, cancellations, expiries)."""
        with self._lock:
            moments = {s.start for s in self.shifts if s.resource == resource}
            moments |= {s.ended() for s in self.shifts if s.resource == resource}
        return sorted(moments)

    # ------------------------------------------------------------------ for drills

    def configure_practice_runs(self, resource: str, outcome_alarms: list[str], region: str = "us-east-1") -> None:
        """What CreatePracticeRunConfiguration does (not modelled as an API): practice runs may then start."""
        if self.resources(region, resource) is None:
            raise ValueError(f"{resource} is not a managed resource (is zonal shift enabled on it?)")
        with self._lock:
            self.practice_configurations[resource] = {
                "outcomeAlarms": [{"type": "CLOUDWATCH", "alarmIdentifier": alarm} for alarm in outcome_alarms],
                "blockingAlarms": [],
                "blockedWindows": [],
                "blockedDates": [],
            }

    def start_practice_run(self, resource: str, away_from: str, region: str = "us-east-1") -> dict[str, Any]:
        """AWS starts a practice run for a configured resource (its weekly practice runs): as StartPracticeRun does,
        with AWS's comment. Raises ValueError with AWS's refusal if it would not start."""
        status, body = self._StartPracticeRun(region, resource, away_from, "AWS-initiated practice run")
        if status >= 300:
            raise ValueError(f"{body['Error']['Code']} ({body.get('reason')}): {body['message']}")
        if self.changed is not None:
            self.changed()
        return body

    # ------------------------------------------------------------------ operations

    def _resource(self, region: str, identifier: str) -> ManagedResource | Answer:
        if not _LOAD_BALANCER_ARN.fullmatch(identifier):
            return validation("InvalidResourceIdentifier", f"Invalid resource identifier: {identifier}")
        found = self.resources(region, identifier)
        if found is None:
            return not_found(f"Resource {identifier} not found")
        return found

    def _away_from(self, region: str, resource: ManagedResource, away_from: str) -> Answer | None:
        if not _AZ_ID.fullmatch(away_from) or away_from not in self.zone_ids(region):
            return validation("InvalidAz", f"{away_from} is not a valid Availability Zone ID in {region}")
        if away_from not in resource.zones:
            return validation("UnsupportedAz", f"Resource {resource.arn} is not deployed in {away_from}")
        return None

    def _active(self, resource: str, now: datetime, shift_type: str) -> Shift | None:
        return next(
            (
                s
                for s in self.shifts
                if s.resource == resource and s.shift_type == shift_type and s.status(now) == "ACTIVE"
            ),
            None,
        )

    def _shiftable(self, region: str, resource: str, away_from: str) -> "ManagedResource | Answer":
        """The managed resource a shift or practice run of ``away_from`` may start on, or AWS's refusal."""
        found = self._resource(region, resource)
        if not isinstance(found, ManagedResource):
            return found
        refused = self._away_from(region, found, away_from)
        return refused if refused is not None else found

    def _StartZonalShift(  # noqa: N802 - named after the API operation
        self, region: str, resourceIdentifier: str, awayFrom: str, expiresIn: str, comment: str
    ) -> Answer:
        found = self._shiftable(region, resourceIdentifier, awayFrom)
        if not isinstance(found, ManagedResource):
            return found
        duration = parse_expires_in(expiresIn)
        if duration is None:
            return validation("InvalidExpiresIn", f"expiresIn {expiresIn!r}: a whole number of m or h, from 1m to 72h")
        now = self.now()
        existing = self._active(resourceIdentifier, now, "ZONAL_SHIFT")
        if existing is not None:
            return conflict(
                "ZonalShiftAlreadyExists",
                f"A zonal shift already exists for resource {resourceIdentifier}",
                existing.zonal_shift_id,
            )
        practice = self._active(resourceIdentifier, now, "PRACTICE_RUN")
        if practice is not None:  # "Precedence for zonal shifts": the practice run is canceled, INTERRUPTED
            practice.canceled_at, practice.outcome = now, "INTERRUPTED"
        shift = Shift(str(uuid.uuid4()), resourceIdentifier, awayFrom, comment, now, now + duration)
        self.shifts.append(shift)
        return _ok(shift.shape(now), 201)

    def _active_shift(self, zonal_shift_id: str) -> "Shift | Answer":
        """The shift an update or cancel acts on, or AWS's refusal: unknown (404), or no longer active (409)."""
        shift = self._find(zonal_shift_id)
        if shift is None:
            return not_found(f"Zonal shift {zonal_shift_id} not found")
        if shift.status(self.now()) != "ACTIVE":
            return conflict("ZonalShiftStatusNotActive", f"Zonal shift {zonal_shift_id} is not active", zonal_shift_id)
        return shift

    def _UpdateZonalShift(  # noqa: N802
        self, region: str, zonalShiftId: str, comment: str | None = None, expiresIn: str | None = None
    ) -> Answer:
        shift = self._active_shift(zonalShiftId)
        if not isinstance(shift, Shift):
            return shift
        now = self.now()
        if expiresIn is not None:
            duration = parse_expires_in(expiresIn)
            if duration is None:
                return validation(
                    "InvalidExpiresIn", f"expiresIn {expiresIn!r}: a whole number of m or h, from 1m to 72h"
                )
            shift.expiry = now + duration
        if comment is not None:
            shift.comment = comment
        return _ok(shift.shape(now))

    def _CancelZonalShift(self, region: str, zonalShiftId: str) -> Answer:  # noqa: N802
        shift = self._active_shift(zonalShiftId)
        if not isinstance(shift, Shift):
            return shift
        now = self.now()
        shift.canceled_at = now
        return _ok(shift.shape(now))

    def _GetManagedResource(self, region: str, resourceIdentifier: str) -> Answer:  # noqa: N802
        found = self._resource(region, resourceIdentifier)
        if not isinstance(found, ManagedResource):
            return found
        now = self.now()
        applied = self.applied(resourceIdentifier, now)
        active = [s for s in self.shifts if s.resource == resourceIdentifier and s.status(now) == "ACTIVE"]
        body: dict[str, Any] = {
            "arn": found.arn,
            "name": found.name,
            "appliedWeights": {
                zone: 0.0 if applied is not None and applied.away_from == zone else 1.0 for zone in sorted(found.zones)
            },
            "zonalShifts": [
                {
                    **{k: v for k, v in s.summary(now).items() if k != "status"},
                    "appliedStatus": "APPLIED" if s is applied else "NOT_APPLIED",
                }
                for s in active
            ],
            "autoshifts": [],
            "zonalAutoshiftStatus": "DISABLED",
        }
        if resourceIdentifier in self.practice_configurations:
            body["practiceRunConfiguration"] = self.practice_configurations[resourceIdentifier]
        return _ok(body)

    def _ListZonalShifts(  # noqa: N802
        self,
        region: str,
        status: str | None = None,
        resourceIdentifier: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
    ) -> Answer:
        now = self.now()
        items = [
            s.summary(now)
            for s in sorted(self.shifts, key=lambda s: s.start, reverse=True)
            if (status is None or s.status(now) == status)
            and (resourceIdentifier is None or s.resource == resourceIdentifier)
        ]
        start = int(nextToken) if nextToken and nextToken.isdigit() else 0
        if nextToken and not nextToken.isdigit():
            return validation("InvalidToken", "Invalid nextToken")
        page = maxResults or 100
        body: dict[str, Any] = {"items": items[start : start + page]}
        if start + page < len(items):
            body["nextToken"] = str(start + page)
        return _ok(body)

    def _StartPracticeRun(  # noqa: N802
        self, region: str, resourceIdentifier: str, awayFrom: str, comment: str
    ) -> Answer:
        found = self._shiftable(region, resourceIdentifier, awayFrom)
        if not isinstance(found, ManagedResource):
            return found
        if resourceIdentifier not in self.practice_configurations:
            return conflict(
                "PracticeConfigurationDoesNotExist", f"No practice run configuration for {resourceIdentifier}"
            )
        now = self.now()
        for shift_type in ("ZONAL_SHIFT", "PRACTICE_RUN"):
            existing = self._active(resourceIdentifier, now, shift_type)
            if existing is not None:  # "Precedence for zonal shifts": the practice run fails to start
                return conflict(
                    "ZonalShiftAlreadyExists",
                    f"A zonal shift is already active for resource {resourceIdentifier}",
                    existing.zonal_shift_id,
                )
        shift = Shift(str(uuid.uuid4()), resourceIdentifier, awayFrom, comment, now, now + PRACTICE_RUN, "PRACTICE_RUN")
        self.shifts.append(shift)
        return _ok(shift.shape(now))

    def _CancelPracticeRun(self, region: str, zonalShiftId: str) -> Answer:  # noqa: N802
        shift = self._find(zonalShiftId)
        if shift is None:
            return not_found(f"Practice run {zonalShiftId} not found")
        if shift.shift_type != "PRACTICE_RUN":
            return validation("UnsupportedPracticeCancelShiftType", f"{zonalShiftId} is not a practice run")
        now = self.now()
        if shift.status(now) != "ACTIVE":
            return conflict("ZonalShiftStatusNotActive", f"Practice run {zonalShiftId} is not active", zonalShiftId)
        shift.canceled_at, shift.outcome = now, "INTERRUPTED"
        return _ok(shift.shape(now))

    def _find(self, zonal_shift_id: str) -> Shift | None:
        return next((s for s in self.shifts if s.zonal_shift_id == zonal_shift_id), None)


def zonal_shift_enabled(attributes: dict[str, Any]) -> bool:
    """moto keeps a load balancer's attributes as {key: value}; the attribute is absent until set (default false)."""
    return str(attributes.get(ZONAL_SHIFT_ATTRIBUTE, "false")).lower() == "true"
