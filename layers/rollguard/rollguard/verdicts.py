"""How a verification window is judged: pure functions over what was measured (no AWS calls here).

A slice (the traffic a canary-like step moved) is judged on its own requests and errors, next to the traffic it
was moved from; a full step is judged on the alarm and its metric's latest datapoints.
"""

from dataclasses import dataclass
from typing import Literal

from rollguard.adapters.cloudwatch import AlarmInfo, breaches

Verdict = Literal["recovered", "not_recovered", "inconclusive"]


@dataclass(frozen=True)
class SliceStats:
    label: str  # what the traffic is, in words: "revision 6", "target group checkout-green"
    requests: float
    errors: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    why: str
    measured: dict[str, object]


def judge_slice(
    good: SliceStats,
    bad: SliceStats,
    min_requests: int,
    max_error_rate: float,
    moved: str = "the rolled-back slice",
    suspect: str = "the deploy",
) -> tuple[Verdict, str]:
    """After a canary-like step: is the traffic now on the healthy side healthy? ``moved`` names that traffic and
    ``suspect`` what is cleared of blame when it is as unhealthy as the rest."""
    if good.requests < min_requests:
        return "inconclusive", (
            f"only {good.requests:.0f} requests reached {good.label} (need {min_requests}) "
            "— too little traffic to judge"
        )
    rates = (
        f"{good.label}: {good.error_rate:.1%} errors over {good.requests:.0f} requests; "
        f"{bad.label}: {bad.error_rate:.1%} over {bad.requests:.0f}"
    )
    if good.error_rate <= max_error_rate:
        return "recovered", f"{moved} is healthy ({rates})"
    return "not_recovered", f"{moved} is as unhealthy as the rest ({rates}): {suspect} is not the cause"


def judge_slices(
    good: SliceStats, bad: SliceStats, min_requests: int, max_error_rate: float, moved: str, suspect: str
) -> Judgement:
    verdict, why = judge_slice(good, bad, min_requests, max_error_rate, moved, suspect)
    return Judgement(verdict, why, {"good": good.__dict__, "bad": bad.__dict__})


def judge_aggregate(alarm: AlarmInfo, latest_values: list[float]) -> tuple[Verdict, str]:
    """After a full step: alarm back to OK and the metric under its threshold for the required datapoints."""
    if alarm.composite:
        verdicts: dict[str, Verdict] = {"OK": "recovered", "ALARM": "not_recovered"}
        return verdicts.get(alarm.state, "inconclusive"), f"composite alarm {alarm.name} is {alarm.state}"
    needed = alarm.datapoints_to_alarm
    recent = latest_values[:needed]
    if len(recent) < needed:
        return "inconclusive", (
            f"{alarm.name} is {alarm.state} but only {len(recent)} of the {needed} datapoints "
            "needed were reported — no recovery is declared from missing data"
        )
    values = ", ".join(f"{v:g}" for v in recent)
    if alarm.on_band:
        # The band is CloudWatch's model, not a number Rollguard can compare with: the alarm's own state is the
        # verdict on it, once the datapoints it needs were reported (never recovery from missing data).
        if alarm.state == "OK":
            return "recovered", f"{alarm.name} is OK within its anomaly band; its last {needed} datapoints [{values}]"
        return "not_recovered", f"{alarm.name} is {alarm.state} against its anomaly band; last datapoints [{values}]"
    breaching = [v for v in recent if breaches(alarm, v)]
    if alarm.state == "OK" and not breaching:
        return (
            "recovered",
            f"{alarm.name} is OK and its last {needed} datapoints [{values}] are within {alarm.threshold:g}",
        )
    return "not_recovered", (
        f"{alarm.name} is {alarm.state}; last {needed} datapoints [{values}], "
        f"{len(breaching)} breaching {alarm.threshold:g}"
    )
