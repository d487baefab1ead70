"""Backtest runtime: 10 policies, each with its own alarm, over 14 days of 1-minute data (201,600 rows), through the
real ``rollguard backtest`` command (CSV parsing, the replay, the tuning table of 15 replays per alarm, the HTML page).

    .venv/bin/python bench/backtest.py            # best of 3 runs
    .venv/bin/python bench/backtest.py --runs 1

The series are generated here (seed 13): a baseline under the threshold, and a few spikes and incidents per alarm.
It prints the figures and asserts nothing.
"""

import argparse
import contextlib
import io
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

POLICIES = 10
DAYS = 14
START = datetime(2025, 3, 1, tzinfo=UTC)
# The sample's alarm (the drills' checkout-5xx-rate: Average > 5 for 2 of 3 minutes), one copy per policy.
SAMPLE_ALARM = json.loads((Path(__file__).resolve().parents[1] / "examples/backtest/alarms.json").read_text())[
    "MetricAlarms"
][0]


def write_inputs(folder: Path) -> list[str]:
    rng = random.Random(13)
    alarms, policies = [], ["version: 1", "policies:"]
    with (folder / "metrics.csv").open("w", encoding="utf-8") as out:
        out.write("timestamp,alarm,value\n")
        for n in range(POLICIES):
            name = f"svc{n}-5xx-rate"
            alarms.append(SAMPLE_ALARM | {"AlarmName": name, "Namespace": "Bench"})
            policies += [
                f"  - name: svc{n}",
                f"    trigger: {{alarms: [{name}]}}",
                f"    target: {{codedeploy: {{application: svc{n}, deployment_group: prod}}}}",
                "    ladder: [{action: rollback, scope: full, verify: {window: 5m}}]",
            ]
            bad = set(rng.sample(range(DAYS * 1440), 40))  # 40 breaching minutes per alarm, some adjacent by chance
            for m in range(DAYS * 1440):
                value = 9.0 if m in bad or m - 1 in bad else round(rng.uniform(0.5, 2.0), 2)
                stamp = (START + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")
                out.write(f"{stamp},{name},{value:g}\n")
    (folder / "alarms.json").write_text(json.dumps({"MetricAlarms": alarms}))
    (folder / "policy.yaml").write_text("\n".join(policies) + "\n")
    with (folder / "changes.csv").open("w", encoding="utf-8") as out:
        out.write("timestamp,scope,id\n")
        for n in range(POLICIES):
            for d in range(DAYS):
                stamp = (START + timedelta(days=d, hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
                out.write(f"{stamp},codedeploy:svc{n}/prod,d-{n}-{d}\n")
    return [
        "backtest",
        "--policy", str(folder / "policy.yaml"),
        "--metrics", str(folder / "metrics.csv"),
        "--alarms", str(folder / "alarms.json"),
        "--changes", str(folder / "changes.csv"),
        "--json",
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="how many runs (the best is reported)")
    args = parser.parse_args()
    from rollguard_cli.main import main as rollguard

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        argv = write_inputs(folder)
        rows = sum(1 for _ in (folder / "metrics.csv").open()) - 1
        walls, firings = [], 0
        for run in range(args.runs):
            html = folder / f"page-{run}.html"
            out = io.StringIO()
            started = time.perf_counter()
            with contextlib.redirect_stdout(out):
                assert rollguard([*argv, "--html", str(html)]) == 0
            walls.append(time.perf_counter() - started)
            firings = sum(p["summary"]["firings"] for p in json.loads(out.getvalue())["policies"])
    print(f"backtest: {POLICIES} policies x {DAYS} days of 1-minute data ({rows} rows), tuning and HTML included")
    print(f"  wall time: best {min(walls):.2f} s, runs {', '.join(f'{w:.2f}' for w in walls)}; firings: {firings}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
