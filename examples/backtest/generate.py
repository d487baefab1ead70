"""Writes the backtest sample (metrics.csv, changes.csv, incidents.csv) deterministically: 14 days of the
checkout-5xx-rate alarm's metric at 1-minute resolution, with the events below placed on purpose, so that the
answers tests/unit/test_backtest.py asserts follow from this list and not from a recorded run:

- baseline: an error rate drawn uniformly in [0.5, 2.0] % (seed 13), far under the alarm's threshold of 5;
- three bad deployments (D1, D3, D5), each followed by a labelled incident of 20, 15 and 25 minutes at 12-15 %;
- two harmless deployments (D2, D4); 10 minutes after D2 the rate spikes to 8 % for 2 minutes (a false action);
- one labelled incident with no change in scope (10 % for 15 minutes): detected, but closed without action;
- four more 2-minute spikes to 8 % (noise) and three 1-minute spikes to 9 % (too short for 2 of 3);
- a 30-minute gap in the data (the alarm goes to INSUFFICIENT_DATA, which is not a firing).

Run it from the repository root: python examples/backtest/generate.py
"""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 14
ALARM = "checkout-5xx-rate"
SCOPE = "codedeploy:checkout/checkout-prod"


def at(day: int, hour: int, minute: int) -> int:
    """Minutes since START."""
    return day * 1440 + hour * 60 + minute


DEPLOYS = {  # id → (minute, bad: (minutes after the deploy the errors start, how long, rate) or None)
    "d-BAD0000001": (at(1, 10, 0), (4, 20, 12.0)),
    "d-GOOD000002": (at(3, 14, 0), None),
    "d-BAD0000003": (at(6, 9, 30), (3, 15, 15.0)),
    "d-GOOD000004": (at(9, 16, 0), None),
    "d-BAD0000005": (at(12, 11, 0), (5, 25, 12.0)),
}
NO_DEPLOY_INCIDENT = (at(10, 3, 0), 15, 10.0)
SPIKES_2MIN = [at(3, 14, 10), at(2, 4, 17), at(4, 22, 41), at(7, 13, 5), at(11, 19, 50)]  # the first: after D2
SPIKES_1MIN = [at(5, 2, 2), at(8, 7, 7), at(13, 12, 12)]
GAP = (at(8, 0, 0), 30)


def stamp(minute: int) -> str:
    return (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    rng = random.Random(13)
    rate = {m: round(rng.uniform(0.5, 2.0), 2) for m in range(DAYS * 1440)}
    incidents = []
    for deploy, (minute, bad) in DEPLOYS.items():
        if bad is not None:
            after, length, value = bad
            for m in range(minute + after, minute + after + length):
                rate[m] = value
            incidents.append((minute + after, minute + after + length, f"after {deploy}"))
    begin, length, value = NO_DEPLOY_INCIDENT
    for m in range(begin, begin + length):
        rate[m] = value
    incidents.append((begin, begin + length, "no change in scope"))
    for m in SPIKES_2MIN:
        rate[m] = rate[m + 1] = 8.0
    for m in SPIKES_1MIN:
        rate[m] = 9.0
    for m in range(GAP[0], GAP[0] + GAP[1]):
        del rate[m]
    with (HERE / "metrics.csv").open("w", encoding="utf-8", newline="\n") as out:
        out.write("timestamp,alarm,value\n")
        out.writelines(f"{stamp(m)},{ALARM},{v:g}\n" for m, v in sorted(rate.items()))
    with (HERE / "changes.csv").open("w", encoding="utf-8", newline="\n") as out:
        out.write("timestamp,scope,id,kind,description\n")
        out.writelines(f"{stamp(m)},{SCOPE},{d},deploy,checkout deployment\n" for d, (m, _) in DEPLOYS.items())
    with (HERE / "incidents.csv").open("w", encoding="utf-8", newline="\n") as out:
        out.write("start,end,policy,note\n")
        out.writelines(f"{stamp(s)},{stamp(e)},checkout-5xx,{note}\n" for s, e, note in sorted(incidents))


if __name__ == "__main__":
    main()
