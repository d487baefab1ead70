"""Zonal shift: Route 53 ARC moves the load balancer's traffic away from one sick Availability Zone until the shift
expires (at most 72 h) or is cancelled. Judged on the traffic left in the other zones; on resolve the shift is kept
(until it expires, said in the notification) or cancelled, as the step says; an unverified shift is cancelled when
the incident escalates (the zone was not the cause, and the shift costs capacity).
"""

from datetime import timedelta
from typing import Any

from rollguard import clock
from rollguard.actions.base import Action, Adapters, Left, StepOutcome
from rollguard.adapters.cloudwatch import sum_query
from rollguard.adapters.elb import ERRORS, NAMESPACE, REQUESTS
from rollguard.adapters.zonal_shift import Shift, ZonalShifts
from rollguard.deps import Deps, need
from rollguard.errors import RollguardError, TrafficConflict
from rollguard.incident import ActionRecord, ExecutionState, Progress
from rollguard.policy import LadderStep, ZonalShiftStep
from rollguard.verdicts import Judgement, SliceStats, judge_slices


class ZonalShift(Action):
    names = ("zonal_shift",)
    iam = (
        "arc-zonal-shift:StartZonalShift",
        "arc-zonal-shift:ListZonalShifts",
        "arc-zonal-shift:CancelZonalShift",
        "ec2:DescribeAvailabilityZones",
        "elasticloadbalancing:DescribeLoadBalancers",
        "cloudwatch:DescribeAlarms",  # the zone from the alarm's AvailabilityZone dimension
    )

    def describe(self, step: LadderStep, state: ExecutionState | None = None) -> str:
        assert isinstance(step, ZonalShiftStep)
        zone = step.zone or "the alarm's Availability Zone"
        return f"zonal shift away from {zone} for {step.expires_in // 60}m"

    def take(self, step: LadderStep, state: ExecutionState, deps: Deps) -> StepOutcome:
        assert isinstance(step, ZonalShiftStep)
        target = state.policy.target.load_balancer
        assert target is not None
        arc = need(deps.zonal_shift, "ARC zonal shift")
        lb = need(deps.elb, "Elastic Load Balancing").find(target.name)
        zone = arc.zone(step.zone or _alarm_zone(state, deps))
        mark = f"Rollguard {state.incident_id}"
        shift, verb = _ours_or_start(arc, lb.arn, zone.zone_id, step.expires_in, f"{mark}: {state.alarm.name}", mark)
        ours = shift.comment.startswith(mark)
        return StepOutcome(
            action="zonal_shift",
            scope="full",
            detail=(
                f"{verb} zonal shift {shift.shift_id} of load balancer {lb.name} away from {zone.name} "
                f"({zone.zone_id}), expiring {shift.expiry}"
                + ("" if ours else f" (not Rollguard's: {shift.comment!r})")
            ),
            effect={
                "shift_id": shift.shift_id,
                "zone_id": zone.zone_id,
                "zone": zone.name,
                "expiry": shift.expiry,
                "ours": ours,
                "resource": lb.arn,
                "load_balancer": lb.dimension,
            },
        )

    def verify(self, state: ExecutionState, progress: Progress, deps: Deps, window_s: int) -> Judgement | None:
        """The zone's own alarm has no data once its traffic is gone, so judge what the other zones serve."""
        effect = progress.actions[-1].effect if progress.actions else {}
        if not effect:
            return None
        now = clock.now()
        whole = {"LoadBalancer": effect["load_balancer"]}
        zone = {"AvailabilityZone": effect["zone"], "LoadBalancer": effect["load_balancer"]}
        queries = [
            sum_query(f"{kind}_{side}", NAMESPACE, metric, dims)
            for side, dims in (("all", whole), ("zone", zone))
            for kind, metric in (("requests", REQUESTS), ("errors", ERRORS))
        ]
        values = deps.cloudwatch.values(queries, now - timedelta(seconds=window_s), now)
        total = {k: sum(values[f"{k}_all"]) for k in ("requests", "errors")}
        shifted = {k: sum(values[f"{k}_zone"]) for k in ("requests", "errors")}
        others = SliceStats(
            f"zones other than {effect['zone']}",
            total["requests"] - shifted["requests"],
            total["errors"] - shifted["errors"],
        )
        away = SliceStats(f"zone {effect['zone']}", shifted["requests"], shifted["errors"])
        v = state.policy.verify
        return judge_slices(
            others, away, v.min_requests, v.max_error_rate, "the traffic left in the other zones", away.label
        )

    def leave(
        self, record: ActionRecord, state: ExecutionState, adapters: Adapters, paused: bool, escalating: bool
    ) -> Left | None:
        effect = record.effect
        arc = adapters.zonal_shift
        if not effect or arc is None:
            return None
        step = state.policy.ladder[record.step]
        assert isinstance(step, ZonalShiftStep)
        zone = f"{effect['zone']} ({effect['zone_id']})"
        if not any(s.shift_id == effect["shift_id"] for s in arc.active(effect["resource"])):
            return Left(f"zonal shift {effect['shift_id']} away from {zone} has ended (expired or cancelled)")
        cancel = (
            effect["ours"]
            and not paused
            and ((escalating and record.verdict != "recovered") or (not escalating and step.on_resolve == "cancel"))
        )
        if cancel:
            status = arc.cancel(effect["shift_id"])
            halted = f"zonal shift {effect['shift_id']} away from {zone} cancelled ({status})"
            return Left(f"{halted}: the zone serves traffic again", halted=halted)
        return Left(
            f"shifted away from {zone} until {effect['expiry']} (zonal shift {effect['shift_id']}); cancel it once "
            "the zone is healthy, or let it expire"
        )

    def follow_up(self, parameters: dict[str, Any]) -> str:
        return "the load balancer stays shifted away from the zone until the zonal shift expires or someone cancels it"


def _alarm_zone(state: ExecutionState, deps: Deps) -> str:
    alarm = deps.cloudwatch.alarm(state.alarm.name)
    dims = (alarm.metric_stat or {}).get("Metric", {}).get("Dimensions", [])
    zone = next((d["Value"] for d in dims if d.get("Name") == "AvailabilityZone"), None)
    if zone is None:
        raise RollguardError(
            f"alarm {state.alarm.name} has no AvailabilityZone dimension and the zonal_shift step names no zone"
        )
    return str(zone)


def _ours_or_start(
    arc: ZonalShifts, resource: str, zone_id: str, seconds: int, comment: str, mark: str
) -> tuple[Shift, str]:
    """This incident's shift if an earlier attempt started it (its response lost), someone else's shift away from the
    same zone if there is one, else a new one. ARC allows one active customer shift per resource: one away from
    another zone is in the way, and the step fails naming it."""
    for attempt in range(2):
        active = arc.active(resource)
        mine = next((s for s in active if s.comment.startswith(mark)), None)
        if mine is not None:
            return mine, "continued"
        same = next((s for s in active if s.away_from == zone_id), None)
        if same is not None:
            return same, "found"
        if active:
            other = active[0]
            raise TrafficConflict(
                f"{resource} already has zonal shift {other.shift_id} away from {other.away_from} "
                f"({other.comment!r}); ARC allows one active zonal shift per resource"
            )
        try:
            return arc.start(resource, zone_id, seconds, comment), "started"
        except RollguardError:
            if attempt:  # a shift appeared between the list and the start (a lost response's retry): look again
                raise
    raise AssertionError("unreachable")
