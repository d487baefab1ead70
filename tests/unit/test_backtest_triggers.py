"""``rollguard backtest`` replays the triggers a policy defines (trigger.define) with the definitions ``rollguard
triggers emit`` declares: no --alarms file is needed, an error-rate alarm is judged against its threshold and a
baseline alarm against the band modelled from the series itself."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rollguard_cli.main import main

from tests.unit.builders import as_yaml, document, policy_dict

START = datetime(2026, 3, 2, tzinfo=UTC)
SPIKE = 150  # minutes after START: five minutes at 20% errors
LAMBDA = {"namespace": "AWS/Lambda", "dimensions": {"FunctionName": "checkout"}}
DEFINE = [
    {
        "kind": "error_rate",
        "errors": {**LAMBDA, "metric": "Errors"},
        "requests": {**LAMBDA, "metric": "Invocations"},
        "above_percent": 5,
        "for": "3m",
    },
    {
        "kind": "baseline",
        "errors": {**LAMBDA, "metric": "Errors"},
        "requests": {**LAMBDA, "metric": "Invocations"},
        "band_width": 3,
        "for": "3m",
        "datapoints": 2,
    },
]


def rate(minute: int) -> float:
    return 20.0 if SPIKE <= minute < SPIKE + 5 else 1.0 + 0.1 * (minute % 3)


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        as_yaml(document(policy_dict(name="checkout-5xx", trigger=json.loads(json.dumps({"define": DEFINE})))))
    )
    rows = ["timestamp,alarm,value"]
    for minute in range(4 * 60):
        at = (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for kind in ("error-rate", "baseline"):
            rows.append(f"{at},rollguard-checkout-5xx-{kind},{rate(minute)}")
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("\n".join(rows) + "\n")
    changes = tmp_path / "changes.csv"
    deployed = (START + timedelta(minutes=SPIKE - 2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    changes.write_text(f"timestamp,scope,id\n{deployed},codedeploy:checkout/checkout-prod,d-BAD\n")
    return ["backtest", "--policy", str(policy), "--metrics", str(metrics), "--changes", str(changes), "--json"]


def test_both_defined_triggers_fire_once_on_the_spike_and_would_act(
    files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(files) == 0
    result = json.loads(capsys.readouterr().out)["policies"][0]
    fired = {(f["alarm"], f["at"], f["would_act"], f["change"]["id"]) for f in result["firings"]}
    assert fired == {
        ("rollguard-checkout-5xx-error-rate", "2026-03-02T02:33:00Z", True, "d-BAD"),  # 3 of 3 above 5%
        ("rollguard-checkout-5xx-baseline", "2026-03-02T02:32:00Z", True, "d-BAD"),  # 2 of 3 above the band
    }
    definitions = {a["name"]: a["definition"] for a in result["alarms"]}
    assert definitions["rollguard-checkout-5xx-baseline"] == (
        "100 * errors / requests above the anomaly band (width 3) for 2 of 3 × 60s, missing data: missing"
    )
    # tuning advice is for a static threshold; the band is CloudWatch's model, not a number to move
    assert {t["alarm"] for t in result["tuning"]} == {"rollguard-checkout-5xx-error-rate"}
