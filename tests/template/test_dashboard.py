"""The incident dashboard in template.yaml charts what the handlers really emit, next to the workflow's metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rollguard import telemetry

from tests.unit.conftest import make_progress, make_state  # noqa: F401 - fixtures building a first action

# What CloudFormation substitutes in the body; anything else would be left as literal text on the dashboard.
SUBSTITUTED = {
    "AWS::Region": "eu-west-1",
    "AWS::StackName": "rollguard",
    "RemediationStateMachine": "arn:aws:states:eu-west-1:123456789012:stateMachine:Remediation",
}


@pytest.fixture(scope="module")
def body(template: dict[str, Any]) -> dict[str, Any]:
    dashboard = template["Resources"]["IncidentDashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str)
    used = set(re.findall(r"\$\{([^}]+)\}", text))
    assert used <= set(SUBSTITUTED), f"unknown substitutions: {sorted(used - set(SUBSTITUTED))}"
    for name, value in SUBSTITUTED.items():
        text = text.replace("${" + name + "}", value)
    return dict(json.loads(text))


def charted(body: dict[str, Any]) -> tuple[set[tuple[str, str, tuple[str, ...]]], set[tuple[str, tuple[str, ...]]]]:
    """(namespace, metric, dimension pairs) of plain metric rows, and (metric, dimension names) of SEARCHes."""
    plain, searched = set(), set()
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row[0], dict):
                match = re.search(r"\{Rollguard,([^}]*)\} MetricName=\"(\w+)\"", row[0]["expression"])
                assert match, row
                searched.add((match.group(2), tuple(sorted(match.group(1).split(",")))))
            else:
                fields = [f for f in row if isinstance(f, str)]
                plain.add((fields[0], fields[1], tuple(fields[2:])))
    return plain, searched


def test_the_dashboard_body_is_json_and_every_widget_has_a_region(body: dict[str, Any]) -> None:
    metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    assert metric_widgets
    assert all(w["properties"]["region"] == SUBSTITUTED["AWS::Region"] for w in metric_widgets)


def test_it_charts_the_state_machines_executions_and_execution_time(body: dict[str, Any]) -> None:
    plain, _ = charted(body)
    arn = ("StateMachineArn", SUBSTITUTED["RemediationStateMachine"])
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionTime"):
        assert ("AWS/States", metric, arn) in plain


def test_it_charts_each_incident_metric_with_the_dimensions_it_is_emitted_with(
    body: dict[str, Any],
    template: dict[str, Any],
    make_state: Any,  # noqa: F811
    make_progress: Any,  # noqa: F811
) -> None:
    plain, searched = charted(body)
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    only_service = ("service", service)
    # Intake counts opened incidents; close counts outcomes (escalations included) and times recovery.
    for metric in ["AlarmsOpened", *telemetry.OUTCOME_METRICS.values(), telemetry.TIME_TO_RECOVERY]:
        assert ("Rollguard", metric, only_service) in plain, metric
    # Act's metrics carry the dimensions telemetry gives them, plus Powertools' service dimension.
    emitted = telemetry.after_action(make_state(), make_progress())
    names = tuple(sorted([*emitted.dimensions, "service"]))
    for measure in emitted.measures:
        assert (measure.name, names) in searched, measure.name


def test_the_stack_outputs_the_dashboard_name_and_link(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["DashboardName"]["Value"] == {"Ref": "IncidentDashboard"}
    assert "#dashboards/dashboard/${IncidentDashboard}" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]
    assert outputs["DashboardName"]["Description"] and outputs["DashboardUrl"]["Description"]
