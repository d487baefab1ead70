"""``rollguard backtest`` over the shipped sample (examples/backtest, written by its generate.py), whose answers follow
from the events generate.py places; over a stack on moto (DescribeAlarms, GetMetricData, the change journal); and
every bad input as one ``error:`` line and exit 2."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rollguard.journal import Change, Journal
from rollguard_cli import backtest
from rollguard_cli.main import main

from tests.template.iam import load_template

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "backtest"
SAMPLE_ARGS = [
    "backtest",
    "--policy",
    str(SAMPLE / "policy.yaml"),
    "--metrics",
    str(SAMPLE / "metrics.csv"),
    "--alarms",
    str(SAMPLE / "alarms.json"),
    "--changes",
    str(SAMPLE / "changes.csv"),
    "--incidents",
    str(SAMPLE / "incidents.csv"),
]
REGION = "us-east-1"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    """The sample's JSON, computed once for the module."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main([*SAMPLE_ARGS, "--json"]) == 0
    return dict(json.loads(buffer.getvalue()))


def test_the_sample_is_what_generate_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", SAMPLE / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    monkeypatch.setattr(generate, "HERE", tmp_path)
    generate.main()
    for name in ("metrics.csv", "changes.csv", "incidents.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def test_the_sample_answers(sample: dict[str, Any]) -> None:
    """generate.py: 3 bad deploys + 1 incident without a change + 5 two-minute spikes fire (2 of 3 > 5); the spike
    10 minutes after the harmless D2 would act; the 1-minute spikes and the 30-minute gap never fire."""
    (policy,) = sample["policies"]
    assert (sample["start"], sample["end"]) == ("2025-03-01T00:00:00Z", "2025-03-15T00:00:00Z")
    assert policy["summary"] == {
        "firings": 9,
        "would_act": 4,
        "noise": 5,
        "alarm_minutes": 85.0,  # 20 + 15 + 25 + 15 minutes of incidents, 5 x 2 minutes of spikes
        "incidents": 4,
        "detected": 4,
        "precision": 0.444,  # 4 of the 9 firings are inside a labelled incident
        "recall": 1.0,
        "time_to_detect_s": [120.0, 120.0, 120.0, 120.0],  # the end of the second breaching minute
    }
    acted = [(f["at"], f["change"]["id"], f["step"]) for f in policy["firings"] if f["would_act"]]
    assert acted == [
        ("2025-03-02T10:06:00Z", "d-BAD0000001", "rollback canary"),
        ("2025-03-04T14:12:00Z", "d-GOOD000002", "rollback canary"),  # the false action
        ("2025-03-07T09:35:00Z", "d-BAD0000003", "rollback canary"),
        ("2025-03-13T11:07:00Z", "d-BAD0000005", "rollback canary"),
    ]
    assert [f["at"] for f in policy["firings"] if not f["would_act"]] == [
        "2025-03-03T04:19:00Z",
        "2025-03-05T22:43:00Z",
        "2025-03-08T13:07:00Z",
        "2025-03-11T03:02:00Z",  # the incident without a change: detected, closed without action
        "2025-03-12T19:52:00Z",
    ]


def test_the_tuning_table_shows_the_trade_off(sample: dict[str, Any]) -> None:
    rows = {(r["threshold"], r["datapoints_to_alarm"]): r for r in sample["policies"][0]["tuning"]}
    assert [k for k, r in rows.items() if r["current"]] == [(5.0, 2)]
    assert len(rows) == 15  # 5 thresholds x M of 1..3
    # 1 of 3 also fires on the three 1-minute spikes
    assert (rows[(5.0, 1)]["firings"], rows[(5.0, 1)]["noise"]) == (12, 8)
    # 3 of 3 ignores every 2-minute spike; only the incident without a change stays noise
    assert (rows[(5.0, 3)]["firings"], rows[(5.0, 3)]["noise"], rows[(5.0, 3)]["precision"]) == (4, 1, 1.0)
    # above 10 the 10% incident is missed: recall drops
    assert (rows[(10.0, 2)]["firings"], rows[(10.0, 2)]["recall"]) == (3, 0.75)


def test_the_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, *SAMPLE_ARGS)
    assert code == 0
    assert "(14d, metrics from" in out.splitlines()[0]
    assert re.search(r"checkout-5xx\s+checkout-5xx-rate\s+9\s+4\s+5\s+85\s+0\.44\s+1\.00\s+median 2m, max 2m", out)
    assert "would act: rollback canary — d-GOOD000002 (checkout deployment) 12m before" in out
    assert re.search(r"5 \(current\)\s+2 of 3", out)


def test_the_html_page_marks_every_firing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "out" / "backtest.html"
    code, out, _ = run_cli(capsys, *SAMPLE_ARGS, "--html", str(page))
    assert code == 0 and f"wrote {page}" in out
    html = page.read_text(encoding="utf-8")
    assert html.count('class="marker marker-action"') == 4 and html.count('class="marker marker-alarm"') == 5
    assert html.count('class="impact"') == 4  # the labelled incidents
    assert 'class="threshold" data-value="5"' in html
    assert html.count('class="datapoint"') <= backtest.CHART_BUCKETS
    code, _, err = run_cli(capsys, *SAMPLE_ARGS, "--html", str(page))
    assert code == 2 and "already exists" in err


def test_an_anomaly_band_from_a_json_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    rows = [
        {
            "timestamp": (start + timedelta(minutes=m)).isoformat(),
            "alarm": "latency-band",
            "value": v,
            "lower": 100,
            "upper": 200,
        }
        for m, v in enumerate([150, 150, 250, 260, 150, 150, 50, 40, 150, 150])
    ]
    doc = {
        "MetricAlarms": [
            {
                "AlarmName": "latency-band",
                "EvaluationPeriods": 2,
                "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold",
                "ThresholdMetricId": "ad1",
                "Metrics": [
                    {
                        "Id": "m1",
                        "MetricStat": {
                            "Metric": {"Namespace": "N", "MetricName": "L"},
                            "Period": 60,
                            "Stat": "Average",
                        },
                    },
                    {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"},
                ],
            }
        ],
        "datapoints": rows,
    }
    metrics = tmp_path / "band.json"
    metrics.write_text(json.dumps(doc))
    policy = tmp_path / "policy.yaml"
    policy.write_text((SAMPLE / "policy.yaml").read_text().replace("[checkout-5xx-rate]", "[latency-band]"))
    page = tmp_path / "band.html"
    code, out, _ = run_cli(
        capsys, "backtest", "--policy", str(policy), "--metrics", str(metrics), "--json", "--html", str(page)
    )
    assert code == 0
    result = json.loads(out)["policies"][0]
    assert [f["at"] for f in result["firings"]] == ["2025-03-01T00:04:00Z", "2025-03-01T00:08:00Z"]  # above, below
    assert result["tuning"] == []  # a band has no threshold to move
    assert 'class="band"' in page.read_text()


# ---------------------------------------------------------------- from a stack, on moto


def _stack_with_journal() -> str:
    resources = load_template()["Resources"]
    body = {
        "Resources": {
            "ChangesTable": {"Type": "AWS::DynamoDB::Table", "Properties": resources["ChangesTable"]["Properties"]}
        },
        "Outputs": {"ChangesTableName": {"Value": {"Ref": "ChangesTable"}}},
    }
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="rollguard", TemplateBody=json.dumps(body))
    return str(cfn.describe_stacks(StackName="rollguard")["Stacks"][0]["Outputs"][0]["OutputValue"])


def from_stack(capsys: pytest.CaptureFixture[str], stack: str, days: str, *extra: str) -> tuple[int, str, str]:
    """The sample's policy backtested against a stack on moto."""
    policy = str(SAMPLE / "policy.yaml")
    return run_cli(capsys, "backtest", "--policy", policy, "--stack", stack, "--days", days, "--region", REGION, *extra)


@pytest.mark.slow
@pytest.mark.parametrize("per_request", [backtest.MAX_DATAPOINTS_PER_REQUEST, 300])
def test_a_stack_alarm_metric_and_journal_are_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, per_request: int
) -> None:
    """One day of 1-minute data; a spike 20 minutes after a journal change; with 300 datapoints a request, the day
    is read in five GetMetricData requests and gives the same answer."""
    monkeypatch.setattr(backtest, "MAX_DATAPOINTS_PER_REQUEST", per_request)
    with mock_aws():
        table = _stack_with_journal()
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        alarm = json.loads((SAMPLE / "alarms.json").read_text())["MetricAlarms"][0]
        cloudwatch.put_metric_alarm(**{k: v for k, v in alarm.items() if k != "AlarmDescription"})
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        spike = end - timedelta(hours=3)
        data = [
            {
                "MetricName": "ErrorRate",
                "Dimensions": alarm["Dimensions"],
                "Timestamp": end - timedelta(minutes=m),
                "Value": 12.0 if spike <= end - timedelta(minutes=m) < spike + timedelta(minutes=4) else 1.0,
            }
            for m in range(1, 1440)
        ]
        for i in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace="Checkout", MetricData=data[i : i + 1000])
        codedeploy = boto3.client("codedeploy", region_name=REGION)
        codedeploy.create_application(applicationName="checkout", computePlatform="Lambda")
        codedeploy.create_deployment_group(
            applicationName="checkout", deploymentGroupName="checkout-prod", serviceRoleArn="arn:aws:iam::1:role/cd"
        )
        Journal(boto3.client("dynamodb", region_name=REGION), table).record(
            Change(
                scope_key="codedeploy:checkout/checkout-prod",
                change_id="d-JOURNAL01",
                kind="deploy",
                at=(spike - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                state="Succeeded",
                region=REGION,
                detail={"deployment_id": "d-JOURNAL01"},
            )
        )
        code, out, err = from_stack(capsys, "rollguard", "1", "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)["policies"][0]
    assert result["alarms"][0]["datapoints"] == 1439
    (firing,) = result["firings"]
    assert firing["at"] == (spike + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (firing["would_act"], firing["change"]["id"]) == (True, "d-JOURNAL01")
    assert result["summary"]["alarm_minutes"] == 4.0


@pytest.mark.slow
def test_stack_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        code, _, err = from_stack(capsys, "nope", "1")
        assert code == 2 and err.startswith("error: cannot read stack nope") and err.count("\n") == 1
        _stack_with_journal()
        code, _, err = from_stack(capsys, "rollguard", "1")
        assert code == 2 and err == "error: no alarm checkout-5xx-rate in this account and region (DescribeAlarms)\n"
        alarm = json.loads((SAMPLE / "alarms.json").read_text())["MetricAlarms"][0]
        boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
            **{k: v for k, v in alarm.items() if k != "AlarmDescription"}
        )
        code, _, err = from_stack(capsys, "rollguard", "16")
        assert code == 2 and "keeps data at that resolution 360h; give --days 15 or less" in err


@pytest.mark.parametrize(
    ("period", "days"), [(60, 15), (120, 15), (300, 63), (600, 63), (3600, 455), (86400, 455), (10, 0.125)]
)
def test_retention_follows_the_resolution_that_divides_the_period(period: int, days: float) -> None:
    assert backtest.retention_for(period) == timedelta(days=days)


# ---------------------------------------------------------------- bad input


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


ROW = "timestamp,alarm,value\n2025-03-01T00:00:00Z,checkout-5xx-rate,"  # a header and a row, but for its value
BASE = ["backtest", "--policy", str(SAMPLE / "policy.yaml"), "--alarms", str(SAMPLE / "alarms.json")]


@pytest.mark.parametrize(
    ("metrics", "changes", "extra", "message"),
    [
        ("timestamp,alarm\n2025-03-01T00:00:00Z,x\n", None, [], "line 2: no value (needs timestamp, alarm, value)"),
        (ROW + "lots\n", None, [], "value 'lots' is not a number"),
        ("timestamp,alarm,value\n2025-03-01T00:00:00,checkout-5xx-rate,1\n", None, [], "has no time zone"),
        ("timestamp,alarm,value\nyesterday,checkout-5xx-rate,1\n", None, [], "'yesterday' is not a time"),
        ("timestamp,alarm,value\n2025-03-01T00:00:00Z,other,1\n", None, [], "alarm 'other' has no definition"),
        (ROW + "1,2\n", None, [], "more values than the header"),
        ("timestamp,alarm,value\n", None, [], "no datapoints"),
        ("", None, [], "empty; expected a header line"),
        (ROW + "nan\n", None, [], "is not a finite number"),
        (None, "timestamp,scope,id\n2025-03-01T00:00:00Z,github:x,1\n", [], "scope 'github:x' is not codedeploy"),
        (None, None, ["--name", "nope"], "no policy 'nope' in"),
        (None, None, ["--days", "3"], "--days is for --stack"),
    ],
)
def test_bad_input_is_one_error_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    metrics: str | None,
    changes: str | None,
    extra: list[str],
    message: str,
) -> None:
    argv = [
        *BASE,
        "--metrics",
        _write(tmp_path, "m.csv", metrics) if metrics is not None else str(SAMPLE / "metrics.csv"),
    ]
    if changes is not None:
        argv += ["--changes", _write(tmp_path, "c.csv", changes)]
    code, out, err = run_cli(capsys, *argv, *extra)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_an_alarm_no_policy_claims_and_a_policy_without_history_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _write(
        tmp_path, "p.yaml", (SAMPLE / "policy.yaml").read_text().replace("[checkout-5xx-rate]", "[other-*]")
    )
    code, _, err = run_cli(
        capsys,
        "backtest",
        "--policy",
        policy,
        "--metrics",
        str(SAMPLE / "metrics.csv"),
        "--alarms",
        str(SAMPLE / "alarms.json"),
    )
    assert code == 2 and err == "error: policy checkout-5xx: no alarm with history matches its trigger other-*\n"


def test_an_invalid_policy_file_and_missing_definitions_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.yaml", "version: 2\npolicies: []\n")
    code, _, err = run_cli(capsys, "backtest", "--policy", bad, "--metrics", str(SAMPLE / "metrics.csv"))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run_cli(
        capsys, "backtest", "--policy", str(SAMPLE / "policy.yaml"), "--metrics", str(SAMPLE / "metrics.csv")
    )
    assert code == 2 and "no alarm definitions: give --alarms FILE" in err
    code, _, err = run_cli(capsys, *SAMPLE_ARGS[:5], "--alarms", _write(tmp_path, "a.json", '{"x": 1}'))
    assert code == 2 and "no MetricAlarms list" in err
    code, _, err = run_cli(capsys, "backtest", "--policy", str(SAMPLE / "policy.yaml"), "--stack", "s")
    assert code == 2 and err == "error: --stack needs --days N: how many days of history to replay\n"
