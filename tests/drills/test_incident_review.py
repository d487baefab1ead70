"""`rollguard incidents`, `timeline` and `report` on what the drills wrote: from the --out folders, and from a
stack on moto whose CloudFormation outputs name tables holding the same incidents."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rollguard.adapters.dynamo import to_item
from rollguard.alarm_event import parse_aws_time
from rollguard.audit import AuditEvent, AuditLog
from rollguard_cli.drills import CHECKOUT_ALARM
from rollguard_cli.main import main
from rollguard_cli.sandbox.runner import load_template

from tests.conftest import DRILLS

pytestmark = pytest.mark.slow

REGION = "us-east-1"
STACK = "rollguard-review-test"
TARGET = "codedeploy:checkout/checkout-prod"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def drill_doc(drill_runs: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(json.loads((drill_runs[name]["out"] / "drill.json").read_text()))


# ---------------------------------------------------------------- the drill's --out folder


@pytest.mark.parametrize("name", DRILLS)
def test_every_drill_folder_holds_the_metric_and_both_reports(drill_runs: dict[str, Any], name: str) -> None:
    out = drill_runs[name]["out"]
    doc = drill_doc(drill_runs, name)
    metric = json.loads((out / "metric.json").read_text())
    onset = parse_aws_time(
        next(e for e in doc["audit_events"] if e["kind"] == "alarm_received")["parameters"]["state_timestamp"]
    )
    closed = parse_aws_time(next(e for e in doc["audit_events"] if e["kind"] == "incident_closed")["at"])

    alarm = metric["alarm"]
    if alarm.startswith(("checkout-alb-", "payments-")):  # the traffic and ECS drills alarm on the ALB's 5XX count
        threshold = 50.0 if alarm.endswith("us-east-1b") else 100.0
        assert (metric["alarm"], metric["threshold"], metric["comparison"]) == (
            alarm,
            threshold,
            "GreaterThanThreshold",
        )
        assert (metric["namespace"], metric["metric_name"]) == ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count")
        load_balancer = "payments-alb" if alarm.startswith("payments-") else "checkout-alb"
        assert metric["dimensions"]["LoadBalancer"].startswith(f"app/{load_balancer}/") and metric["period"] == 60
    elif alarm.startswith("rollguard-"):  # a trigger the policy defines: its metric-math series, read by its queries
        assert (metric["alarm"], metric["threshold"], metric["comparison"]) == (
            "rollguard-checkout-baseline-baseline",
            None,
            "GreaterThanUpperThreshold",
        )
        assert (metric["label"], metric["statistic"], metric["period"]) == ("error rate (%)", "expression", 60)
        threshold = 5.0  # 1% before, 20% in the breach
    else:
        assert (metric["alarm"], metric["threshold"], metric["comparison"]) == (
            "checkout-5xx-rate",
            5.0,
            "GreaterThanThreshold",
        )
        assert metric["label"] == "Checkout/ErrorRate (Service=checkout)" and metric["period"] == 60
        assert (metric["namespace"], metric["metric_name"], metric["dimensions"]) == (
            "Checkout",
            "ErrorRate",
            {"Service": "checkout"},
        )
        threshold = 5.0
    stamps = [parse_aws_time(t) for t, _ in metric["datapoints"]]
    assert (onset - stamps[0]).total_seconds() == pytest.approx(15 * 60, abs=60)  # from ~15 min before the alarm
    assert parse_aws_time(metric["end"]) >= closed  # to the close
    assert any(v > threshold for _, v in metric["datapoints"]), "the breach that tripped the alarm is in the series"
    assert (out / "report.md").read_text().startswith(f"# Postmortem draft: {doc['incident_id']}")
    assert '<svg id="metric-chart"' in (out / "report.html").read_text()


def test_incidents_lists_the_drill_incident_with_its_times(
    drill_runs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = drill_doc(drill_runs, "bad-deploy")
    out = str(drill_runs["bad-deploy"]["out"])

    code, table, _ = run_cli(capsys, "incidents", "--from", out)
    code_json, listing, _ = run_cli(capsys, "incidents", "--from", out, "--json")

    assert code == code_json == 0
    header, row = table.splitlines()
    assert header.split()[:4] == ["INCIDENT", "POLICY", "TARGET", "OUTCOME"]
    assert row.split()[:4] == [doc["incident_id"], "checkout-5xx", TARGET, "resolved"]
    (incident,) = json.loads(listing)
    # The same measures as the drill's own summary: onset → first action, onset → recovery verdict.
    assert incident["time_to_mitigate_s"] == pytest.approx(doc["time_to_first_action_s"], abs=0.1)
    assert incident["time_to_recover_s"] == pytest.approx(doc["time_to_recovery_s"], abs=0.1)
    assert 0 < incident["time_to_mitigate_s"] < 60 < incident["time_to_recover_s"]


def test_incidents_of_a_folder_of_drill_folders_lists_them_all_newest_first(
    drill_runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in DRILLS:
        shutil.copytree(drill_runs[name]["out"], tmp_path / name)

    code, listing, _ = run_cli(capsys, "incidents", "--from", str(tmp_path), "--json", "--limit", str(len(DRILLS)))
    rows = json.loads(listing)

    assert code == 0
    assert {r["incident_id"] for r in rows} == {drill_doc(drill_runs, n)["incident_id"] for n in DRILLS}
    assert [r["opened_at"] for r in rows] == sorted((r["opened_at"] for r in rows), reverse=True)
    by_outcome = {r["outcome"]: r for r in rows}
    by_id = {r["incident_id"]: r for r in rows}
    escalated = by_id[drill_doc(drill_runs, "not-the-deploy")["incident_id"]]
    assert escalated["time_to_mitigate_s"] is not None and escalated["time_to_recover_s"] is None
    for blocked in ("paused", "cooldown", "shadow-mode"):  # a blocked or shadow action mitigates nothing
        assert by_id[drill_doc(drill_runs, blocked)["incident_id"]]["time_to_mitigate_s"] is None
    assert by_outcome["closed_no_action"]["time_to_mitigate_s"] is None


def test_timeline_prints_every_audit_event_in_order(
    drill_runs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = drill_doc(drill_runs, "not-the-deploy")
    code, text, _ = run_cli(capsys, "timeline", doc["incident_id"], "--from", str(drill_runs["not-the-deploy"]["out"]))

    assert code == 0
    assert text.splitlines()[0] == f"Incident {doc['incident_id']} — escalated"
    positions = [text.index(e["summary"]) for e in doc["audit_events"]]
    assert positions == sorted(positions) and len(positions) == len(doc["audit_events"])
    offsets = [line.split()[0] for line in text.splitlines() if line.lstrip().startswith("T+")]
    assert len(offsets) == len(doc["audit_events"])  # one line per event, each with its offset from the onset


def test_report_prints_markdown_or_writes_the_html_file(
    drill_runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = drill_doc(drill_runs, "bad-deploy")
    out = str(drill_runs["bad-deploy"]["out"])
    target = tmp_path / "postmortem.html"

    code_md, markdown, _ = run_cli(capsys, "report", doc["incident_id"], "--from", out)
    code_html, said, _ = run_cli(
        capsys, "report", doc["incident_id"], "--from", out, "--format", "html", "--out", str(target)
    )

    assert code_md == code_html == 0
    assert markdown.startswith(f"# Postmortem draft: {doc['incident_id']}")
    assert "## Why the automation acted" in markdown and "Fix forward" in markdown
    assert said.strip() == f"wrote {target}"
    assert target.read_text().count('class="marker marker-action"') == 2


def test_incidents_since_keeps_recent_ones_and_rejects_a_bad_duration(
    drill_runs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(drill_runs["bad-deploy"]["out"])
    code, listing, _ = run_cli(capsys, "incidents", "--from", out, "--since", "1d", "--json")
    assert code == 0 and len(json.loads(listing)) == 1

    code, _, err = run_cli(capsys, "incidents", "--from", out, "--since", "a while")
    assert code == 2 and "--since: invalid duration 'a while'" in err


def test_an_unknown_incident_or_folder_is_an_error_naming_what_exists(
    drill_runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(drill_runs["bad-deploy"]["out"])
    code, _, err = run_cli(capsys, "timeline", "checkout-5xx-nope", "--from", out)
    assert (
        code == 2
        and "no incident checkout-5xx-nope" in err
        and drill_doc(drill_runs, "bad-deploy")["incident_id"] in err
    )

    code, _, err = run_cli(capsys, "incidents", "--from", str(tmp_path))
    assert code == 2 and "no drill output" in err


# ---------------------------------------------------------------- a deployed stack (moto)


@pytest.fixture
def stack(drill_runs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A CloudFormation stack with the template's Incidents and Audit tables, holding the three drills'
    incidents, with the checkout alarm and its datapoints in CloudWatch."""
    resources = load_template()["Resources"]
    tables = {
        name: {"Type": resources[name]["Type"], "Properties": resources[name]["Properties"]}
        for name in ("IncidentsTable", "AuditTable")
    }
    body = {
        "Resources": tables,
        "Outputs": {
            "IncidentsTableName": {"Value": {"Ref": "IncidentsTable"}},
            "AuditTableName": {"Value": {"Ref": "AuditTable"}},
        },
    }
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name=REGION)
        cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(body))
        outputs = {
            o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        }
        ddb = boto3.client("dynamodb", region_name=REGION)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        audit = AuditLog(ddb, outputs["AuditTableName"])
        metric = json.loads((drill_runs["bad-deploy"]["out"] / "metric.json").read_text())
        cloudwatch.put_metric_alarm(**CHECKOUT_ALARM)
        cloudwatch.put_metric_data(
            Namespace="Checkout",
            MetricData=[
                {
                    "MetricName": "ErrorRate",
                    "Dimensions": [{"Name": "Service", "Value": "checkout"}],
                    "Timestamp": parse_aws_time(t),
                    "Value": v,
                }
                for t, v in metric["datapoints"]
            ],
        )
        for name in DRILLS:
            folder = drill_runs[name]["out"]
            incident = json.loads((folder / "incident.json").read_text())
            ddb.put_item(TableName=outputs["IncidentsTableName"], Item=to_item(incident))
            for event in json.loads((folder / "audit-events.json").read_text()):
                assert audit.append(AuditEvent.model_validate(event))
        yield outputs


def test_incidents_and_timeline_from_the_stack_match_the_drill_folders(
    stack: dict[str, Any], drill_runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in DRILLS:
        shutil.copytree(drill_runs[name]["out"], tmp_path / name)
    _, from_folders, _ = run_cli(capsys, "incidents", "--from", str(tmp_path), "--json")
    code, from_stack, _ = run_cli(capsys, "incidents", "--stack", STACK, "--region", REGION, "--json")

    assert code == 0
    assert json.loads(from_stack) == json.loads(from_folders)

    escalated = drill_doc(drill_runs, "not-the-deploy")["incident_id"]
    _, folder_timeline, _ = run_cli(capsys, "timeline", escalated, "--from", str(tmp_path))
    code, stack_timeline, _ = run_cli(capsys, "timeline", escalated, "--stack", STACK, "--region", REGION)
    assert code == 0 and stack_timeline == folder_timeline


def test_incidents_of_one_target_use_its_index(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, listing, _ = run_cli(
        capsys, "incidents", "--stack", STACK, "--region", REGION, "--target", TARGET, "--limit", "2", "--json"
    )
    rows = json.loads(listing)
    assert code == 0 and len(rows) == 2 and all(r["target"] == TARGET for r in rows)

    code, text, _ = run_cli(
        capsys, "incidents", "--stack", STACK, "--region", REGION, "--target", "codedeploy:other/group"
    )
    assert code == 0 and text.startswith("no incidents in stack " + STACK)


def test_the_html_report_from_the_stack_charts_the_metric_read_from_cloudwatch(
    stack: dict[str, Any], drill_runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = drill_doc(drill_runs, "bad-deploy")["incident_id"]
    metric = json.loads((drill_runs["bad-deploy"]["out"] / "metric.json").read_text())
    target = tmp_path / "report.html"

    code, _, err = run_cli(
        capsys, "report", incident_id, "--stack", STACK, "--region", REGION, "--format", "html", "--out", str(target)
    )

    assert code == 0, err
    html = target.read_text()
    assert html.count('class="datapoint"') == len(metric["datapoints"])  # DescribeAlarms + GetMetricData
    assert 'class="threshold" data-value="5"' in html
    assert "Impact window</td><td>" in html and "still breaching" not in html


def test_a_missing_stack_or_one_without_the_outputs_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        code, _, err = run_cli(capsys, "incidents", "--stack", "no-such-stack", "--region", REGION)
        assert code == 2 and "cannot read stack no-such-stack" in err

        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="something-else",
            TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
        )
        code, _, err = run_cli(capsys, "incidents", "--stack", "something-else", "--region", REGION)
        assert code == 2 and "no output IncidentsTableName, AuditTableName" in err
