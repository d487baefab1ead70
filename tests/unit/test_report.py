"""The review facts (times, impact, steps) and the postmortem draft built from them, on audit events made here."""

import re
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import pytest
from rollguard import console
from rollguard.incident import IncidentItem
from rollguard_cli.report import (
    Links,
    Para,
    axis_label,
    build_report,
    chart_svg,
    cleanup_items,
    markers,
    render_html,
    render_markdown,
    review_questions,
)
from rollguard_cli.review import MetricSeries, Review, read_alarm_metric, span

ONSET = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
INCIDENT = "checkout-5xx-20250304T120004Z-a1b2c3"
TARGET = "codedeploy:checkout/checkout-prod"


def at(seconds: float) -> str:
    moment = ONSET + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def event(kind: str, seconds: float, result: str = "ok", summary: str = "", reason: str = "", **params: Any) -> dict:
    return {
        "incident_id": INCIDENT,
        "target_key": TARGET,
        "kind": kind,
        "actor": "rollguard-automation",
        "result": result,
        "reason": reason,
        "summary": summary or kind,
        "parameters": params,
        "at": at(seconds),
        "event_key": f"{at(seconds)}#{kind}",
    }


def alarm_received() -> dict:
    return event("alarm_received", 4, alarm="checkout-5xx-rate", state_timestamp="2025-03-04T12:00:00.000+0000")


def assessed(decision: str = "act") -> dict:
    return event(
        "assessed", 4.5, decision, reason="deployment d-7 started 2m before the alarm", suspect="d-7", last_good="d-6"
    )


def action(step: int, scope: str, seconds: float, result: str = "ok", deployment: str = "d-r1") -> dict:
    return event(
        "action",
        seconds,
        result,
        summary=f"{scope} rollback {deployment} to revision 6",
        step=step,
        action="rollback",
        scope=scope,
        started_at=at(seconds - 0.5),
        deployment_ids=["d-7", deployment],
    )


def verification(step: int, seconds: float, verdict: str, nxt: str) -> dict:
    return event("verification", seconds, verdict, reason=f"judged {verdict}", step=step, next=nxt)


def closed(seconds: float, outcome: str, reason: str = "recovered") -> dict:
    return event("incident_closed", seconds, outcome, reason=reason, lock_released=True)


def record(status: str, **fields: Any) -> IncidentItem:
    policy = {
        "name": "checkout-5xx",
        "trigger": {"alarms": ["checkout-5xx-rate"], "require_change_within": 1800},
        "ladder": [{"action": "rollback", "scope": "canary"}, {"action": "rollback", "scope": "full"}],
    }
    return IncidentItem.model_validate(
        {
            "incident_id": INCIDENT,
            "policy": "checkout-5xx",
            "target_key": TARGET,
            "alarm": "checkout-5xx-rate",
            "status": status,
            "opened_at": at(4),
            "execution_input": {"policy": policy},
            **fields,
        }
    )


def metric(values: list[float], first_minute: int = -15) -> MetricSeries:
    """One datapoint a minute from ``first_minute`` relative to the onset."""
    stamps = [at(60 * (first_minute + i)) for i in range(len(values))]
    return MetricSeries(
        alarm="checkout-5xx-rate",
        label="Checkout/ErrorRate",
        statistic="Average",
        period=60,
        threshold=5.0,
        comparison="GreaterThanThreshold",
        evaluation_periods=3,
        datapoints_to_alarm=2,
        start=stamps[0],
        end=at(60 * (first_minute + len(values))),
        datapoints=list(zip(stamps, values, strict=True)),
    )


def resolved_review() -> Review:
    # Healthy until 2 minutes before the alarm, 20% until the full rollback at T+5m, healthy after.
    values = [1.0] * 13 + [20.0] * 7 + [1.0] * 11  # minutes -15 .. +15
    events = [
        alarm_received(),
        assessed(),
        action(0, "canary", 5),
        verification(0, 305, "recovered", "act"),
        action(1, "full", 305.5, deployment="d-r2"),
        verification(1, 605, "recovered", "resolve"),
        closed(605.2, "resolved"),
    ]
    return Review(record("resolved"), events, metric(values))


def test_times_are_measured_from_the_alarm_onset() -> None:
    review = resolved_review()

    assert review.onset == ONSET
    assert review.time_to_first_action == pytest.approx(4.5)  # the first action's started_at
    assert review.time_to_recovery == pytest.approx(605)  # the verdict that resolved it
    assert review.time_to_detect == 120  # first breaching datapoint at -2m
    assert [s.title for s in review.steps] == ["step 1: canary rollback", "step 2: full rollback"]
    assert [s.verdict["result"] for s in review.steps if s.verdict] == ["recovered", "recovered"]


def test_the_impact_window_runs_from_the_first_to_past_the_last_breaching_datapoint() -> None:
    impact = resolved_review().impact

    assert impact is not None
    assert impact.start == ONSET - timedelta(minutes=2)
    assert impact.end == ONSET + timedelta(minutes=5)  # the last breaching minute starts at +4m
    assert impact.peak == 20


def test_a_metric_still_breaching_at_the_end_has_an_open_impact_window() -> None:
    review = Review(record("escalated"), [alarm_received(), closed(300, "escalated")], metric([1.0] * 13 + [20.0] * 5))
    assert review.impact is not None and review.impact.end is None
    assert review.time_to_recovery is None


def test_a_failed_action_is_not_mitigation() -> None:
    events = [alarm_received(), assessed(), action(0, "canary", 5, result="failed"), closed(6, "escalated")]
    review = Review(record("escalated"), events, None)
    assert review.time_to_first_action is None
    assert any("failed" in item for item in cleanup_items(review))


def test_the_markdown_draft_has_every_section_and_the_facts() -> None:
    text = render_markdown(build_report(resolved_review()))

    for heading in (
        "## Summary",
        "## The alarm's metric",
        "## Impact and response times",
        "## Why the automation acted",
        "## Actions and their verification",
        "## Timeline",
        "## Temporary changes to clean up",
        "## Questions for the review",
    ):
        assert heading in text
    assert "| Time to first action | 4.5s from the alarm" in text
    assert "| Time to recovery | 10m05s" in text
    assert "| Impact window | 2025-03-04 11:58:00 UTC → 2025-03-04 12:05:00 UTC (7m00s) |" in text
    assert "| step 2: full rollback | T+5m05s |" in text
    assert text.count("\n| T+") == 7  # one timeline row per audit event


def test_the_html_draft_is_one_self_contained_file_with_the_chart() -> None:
    html = render_html(build_report(resolved_review()))

    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    for outside in ("<script", " src=", "<link", "@import", "url("):
        assert outside not in html, f"the report must not load anything: found {outside!r}"
    assert html.count('<svg id="metric-chart"') == 1
    assert len(re.findall(r'class="marker marker-action"', html)) == 2
    assert 'class="marker marker-alarm"' in html and 'class="marker marker-recovery"' in html
    assert 'class="threshold" data-value="5"' in html


def test_text_from_the_audit_trail_is_escaped_in_html() -> None:
    review = resolved_review()
    review.events[1]["summary"] = "<img src=x onerror=alert(1)>"
    assert "<img" not in render_html(build_report(review))


def test_chart_markers_are_the_alarm_each_action_and_the_recovery() -> None:
    found = [(m.kind, m.label) for m in markers(resolved_review())]
    assert found == [
        ("alarm", "ALARM T+0"),
        ("action", "1. canary rollback T+4.5s"),
        ("action", "2. full rollback T+5m05s"),
        ("recovery", "recovered T+10m05s"),
    ]


def test_a_resolved_rollback_asks_for_a_fix_forward() -> None:
    items = cleanup_items(resolved_review())
    assert len(items) == 1 and "Fix forward" in items[0] and "d-7" in items[0]


def test_an_escalation_after_a_stopped_canary_says_traffic_is_back() -> None:
    events = [
        alarm_received(),
        assessed(),
        action(0, "canary", 5),
        verification(0, 305, "not_recovered", "escalate"),
        closed(305.2, "escalated", reason="slice as bad as the rest (stopped moving traffic; canary d-r1 stopped)"),
    ]
    review = Review(record("escalated"), events, None)

    (item,) = cleanup_items(review)
    assert "d-r1 was stopped" in item
    questions = " ".join(review_questions(review))
    assert "really not the cause" in questions and "escalation reached on-call" in questions
    assert "How did deployment" not in questions  # the deploy was not the cause: do not ask about it


def test_no_action_explains_why_and_asks_what_changed() -> None:
    no_deploy = "no deployment of checkout/checkout-prod in the 30m before checkout-5xx-rate fired"
    events = [alarm_received(), assessed("no_action") | {"reason": no_deploy}, closed(5, "closed_no_action")]
    review = Review(record("closed_no_action"), events, metric([1.0] * 13 + [20.0] * 3))
    report = build_report(review)
    text = render_markdown(report)

    assert "## Why the automation did not act" in text
    assert f"Rollguard did not act: {no_deploy}." in text
    assert cleanup_items(review) == ["Nothing: Rollguard changed nothing that outlives the incident."]
    assert any("What changed" in q and "30m" in q for q in review_questions(review))
    assert not any(q.startswith("Approvals") for q in review_questions(review))


def test_approval_gates_in_the_policy_turn_into_a_question_about_them() -> None:
    review = resolved_review()
    review.record.execution_input["policy"]["ladder"][1]["approval"] = {"required": True}  # type: ignore[index]
    assert any(q.startswith("Approvals: step(s) 2 wait for a human") for q in review_questions(review))


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "—"), (4.46, "4.5s"), (42, "42s"), (605, "10m05s"), (7380, "2h03m")]
)
def test_durations_read_the_way_people_say_them(seconds: float | None, text: str) -> None:
    assert span(seconds) == text


def test_a_flag_kill_switch_is_reviewed_as_a_flag_not_as_a_rollback() -> None:
    flag_off = event(
        "action",
        8,
        summary="flag_off — us-east-1: new-pricing off: version 2 → 3",
        step=0,
        action="flag_off",
        scope="full",
        started_at=at(7.5),
        deployment_ids=[],
    )
    assessment = assessed() | {"parameters": {"alarm_state": "ALARM", "suspect": None, "changes": ["us-east-1:p:3"]}}
    events = [
        alarm_received(),
        assessment,
        flag_off,
        verification(0, 248, "recovered", "resolve"),
        closed(248, "resolved"),
    ]
    review = Review(record("resolved"), events, None)

    assert [m.label for m in markers(review) if m.kind == "action"] == ["1. flag_off T+7.5s"]
    (item,) = cleanup_items(review)
    assert item.startswith("Step 1: flag_off (flag_off — us-east-1: new-pricing off") and "turns it on again" in item
    questions = " ".join(review_questions(review))
    assert "whole deployment was rolled back" not in questions
    assert "flag_off was enough" in questions and "change us-east-1:p:3" in questions
    assert "| Changes in scope | us-east-1:p:3 |" in render_markdown(build_report(review))


# ---------------------------------------------------------------- issue 12, point 7: what four drill reports lacked

REGION = "eu-west-1"
EXECUTION = f"arn:aws:states:{REGION}:123456789012:execution:rollguard-remediation:{INCIDENT}"
APPROVER = "arn:aws:sts::123456789012:assumed-role/oncall/alice"


def section(report: Any, anchor: str) -> Any:
    return next(s for s in report.sections if s.anchor == anchor)


def numbers(report: Any) -> dict[str, str]:
    (table,) = section(report, "numbers").blocks
    return {label: value for label, value in table.rows}


def test_the_draft_links_the_execution_alarm_and_deployments_with_the_notifications_urls() -> None:
    review = resolved_review()
    review.record.execution_arn = EXECUTION
    review.record.execution_input["alarm"] = {"name": "checkout-5xx-rate", "region": REGION}  # type: ignore[index]

    (links,) = section(build_report(review), "links").blocks
    assert isinstance(links, Links)
    assert [(link.label, link.text, link.url) for link in links.items] == [
        ("Step Functions execution", INCIDENT, console.execution_url(REGION, EXECUTION)),
        ("CloudWatch alarm", "checkout-5xx-rate", console.alarm_url(REGION, "checkout-5xx-rate")),
        ("Suspect deployment", "d-7", console.deployment_url(REGION, "d-7")),
        ("Last-known-good deployment", "d-6", console.deployment_url(REGION, "d-6")),
        ("Rollguard's deployment (step 1: canary rollback)", "d-r1", console.deployment_url(REGION, "d-r1")),
        ("Rollguard's deployment (step 2: full rollback)", "d-r2", console.deployment_url(REGION, "d-r2")),
    ]
    # The notification's links are these same functions' (rollguard.closing uses rollguard.console).
    assert console.alarm_url(REGION, "checkout-5xx-rate") == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/checkout-5xx-rate"
    )
    report = build_report(review)
    url = console.deployment_url(REGION, "d-r2")
    assert f"- Rollguard's deployment (step 2: full rollback): [d-r2]({url})" in render_markdown(report)
    assert f'<a href="{url}">d-r2</a>' in render_html(report)


def test_the_region_comes_from_the_execution_arn_when_the_input_has_no_alarm() -> None:
    review = resolved_review()
    review.record.execution_arn = EXECUTION
    assert review.region == REGION


def test_ids_of_a_target_that_is_not_codedeploy_get_no_codedeploy_link() -> None:
    review = resolved_review()
    review.record.execution_arn = EXECUTION
    review.record.target_key = "ecs:prod/payments"
    (links,) = section(build_report(review), "links").blocks
    assert [link.label for link in links.items] == ["Step Functions execution", "CloudWatch alarm"]


def test_no_region_no_links_and_the_draft_says_why() -> None:
    (para,) = section(build_report(resolved_review()), "links").blocks
    assert isinstance(para, Para) and "records no region" in para.text


def gated_review(decision: str | None) -> Review:
    requested = event(
        "approval_requested", 4.6, "waiting", step=0, deadline=at(904.6), on_timeout="escalate", summary="asked"
    )
    events = [alarm_received(), assessed(), requested]
    if decision is None:
        events.append(closed(905, "escalated", reason="States.Timeout: nobody approved"))
        return Review(record("escalated"), events, None)
    answer = event("approval", 94.6, decision, reason="graphs agree", step=0) | {"actor": APPROVER}
    events.append(answer)
    if decision == "approved":
        events += [action(0, "canary", 95.6), verification(0, 395, "recovered", "resolve"), closed(395.2, "resolved")]
        return Review(record("resolved"), events, None)
    events.append(closed(95, "escalated", reason="ApprovalDenied: denied"))
    return Review(record("escalated"), events, None)


def test_a_passed_approval_gate_names_the_approver_and_when_in_both_renderers() -> None:
    review = gated_review("approved")
    (gate,) = review.gates
    assert (gate.step, gate.verdict, gate.approver, gate.waited) == (0, "approved", APPROVER, pytest.approx(90))

    report = build_report(review)
    summary = section(report, "summary").blocks[0].text
    assert (
        f"The approval gate of step 1 was passed: {APPROVER} approved it at 2025-03-04 12:01:34 UTC, 1m30s after "
        'Rollguard asked: "graphs agree".'
    ) in summary
    gates = section(report, "actions").blocks[-1]
    assert gates.header[0] == "Approval gate"
    assert gates.rows == [
        ["step 1", "T+4.6s", "approved", APPROVER, "2025-03-04 12:01:34 UTC (T+1m35s, after 1m30s)", "graphs agree"]
    ]
    assert f"| step 1 | T+4.6s | approved | {APPROVER} |" in render_markdown(report)
    assert f"<td>{APPROVER}</td>" in render_html(report)
    assert any(
        q.startswith(f"Approvals: step 1 waited 1m30s until {APPROVER} approved it") for q in review_questions(review)
    )


def test_a_denied_gate_and_an_unanswered_one_say_so() -> None:
    denied = build_report(gated_review("denied"))
    assert f"was closed: {APPROVER} denied it at" in section(denied, "summary").blocks[0].text
    assert section(denied, "actions").blocks[-1].rows[0][2] == "denied"

    unanswered = build_report(gated_review(None))
    text = section(unanswered, "summary").blocks[0].text
    assert "no decision was recorded before the deadline 2025-03-04 12:15:04 UTC (then: escalate)" in text
    assert section(unanswered, "actions").blocks[-1].rows[0][2].startswith("no decision recorded")


def test_no_time_to_first_action_without_an_action_nor_time_to_recovery_for_an_escalation() -> None:
    no_action = [alarm_received(), assessed("no_action"), closed(5, "closed_no_action")]
    rows = numbers(build_report(Review(record("closed_no_action"), no_action, None)))
    assert rows["Time to first action"] == "— none: the incident closed without any action"
    assert rows["Time to recovery"] == "— none: Rollguard took no action, so there is no recovery to time"

    escalated = [
        alarm_received(),
        assessed(),
        action(0, "canary", 5),
        verification(0, 305, "not_recovered", "escalate"),
        closed(305.2, "escalated", reason="slice as bad as the rest"),
    ]
    review = Review(record("escalated"), escalated, None)
    report = build_report(review)
    rows = numbers(report)
    assert rows["Time to first action"] == "4.5s from the alarm (mitigation started)"
    assert rows["Time to recovery"] == "— not recovered: escalated to on-call 5m05s after the alarm"
    # One model, two renderers: the same words in both.
    assert "| Time to recovery | — not recovered: escalated to on-call 5m05s after the alarm |" in render_markdown(
        report
    )
    assert "<td>— not recovered: escalated to on-call 5m05s after the alarm</td>" in render_html(report)

    failed = [alarm_received(), assessed(), action(0, "canary", 5, result="failed"), closed(6, "escalated")]
    rows = numbers(build_report(Review(record("escalated"), failed, None)))
    assert rows["Time to first action"] == "— no action succeeded (1 attempted, none ok)"


def alb_metric(**fields: Any) -> MetricSeries:
    return metric([1.0] * 5).model_copy(
        update={
            "label": "AWS/ApplicationELB/HTTPCode_Target_5XX_Count (LoadBalancer=app/payments-alb/1)",
            "namespace": "AWS/ApplicationELB",
            "metric_name": "HTTPCode_Target_5XX_Count",
            "statistic": "Sum",
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("series", "label"),
    [
        (alb_metric(), "Sum of HTTPCode_Target_5XX_Count (count)"),  # the unit AWS documents for it
        (alb_metric(unit="Percent", metric_name="Custom", namespace="X"), "Sum of Custom (percent)"),  # the alarm's
        (
            metric([1.0]).model_copy(update={"namespace": "Checkout", "metric_name": "ErrorRate"}),
            "Average of ErrorRate",
        ),
        (metric([1.0]).model_copy(update={"label": "errors / requests * 100"}), "errors / requests * 100"),  # math
    ],
)
def test_the_y_axis_names_the_statistic_the_metric_and_a_unit_only_when_one_is_known(
    series: MetricSeries, label: str
) -> None:
    assert axis_label(series) == label


def test_the_chart_draws_the_y_axis_title_and_the_text_states_the_unit() -> None:
    review = resolved_review()
    review.metric = alb_metric(datapoints=review.metric.datapoints)  # type: ignore[union-attr]
    svg = chart_svg(review)
    assert svg is not None and "Sum of HTTPCode_Target_5XX_Count (count)</text>" in svg
    assert 'class="y-axis-title"' in svg
    assert "Unit: count." in render_markdown(build_report(review))
    assert "Unit: not recorded (the alarm names none)." in render_markdown(build_report(resolved_review()))


def test_generated_at_states_its_clock_when_the_incident_lies_after_it() -> None:
    review = resolved_review()  # closes at T+10m05s
    before = build_report(review, generated=ONSET - timedelta(minutes=20))
    (line,) = [i for i in section(before, "sources").blocks[0].items if i.startswith("Generated")]
    assert line.startswith("Generated by rollguard report at 2025-03-04 11:40:00 UTC (this computer's clock).")
    assert "its last event, at 2025-03-04 12:10:05 UTC, is 30m05s later than that" in line
    assert "Compare the incident's times with each other, not with this one." in line
    assert line in render_markdown(before) and escape(line) in render_html(before)

    after = build_report(review, generated=ONSET + timedelta(hours=1))
    (line,) = [i for i in section(after, "sources").blocks[0].items if i.startswith("Generated")]
    assert line.startswith("Generated by rollguard report at 2025-03-04 13:00:00 UTC (this computer's clock). This")
    assert "another clock" not in line


def test_the_html_chart_has_no_fixed_pixel_width() -> None:
    html = render_html(build_report(resolved_review()))
    (svg_tag,) = re.findall(r'<svg id="metric-chart"[^>]*>', html)
    assert 'width="100%"' in svg_tag and 'viewBox="0 0 960 400"' in svg_tag
    assert "height: auto" in svg_tag and "max-width: 960px" in svg_tag
    assert not re.search(r'\sheight="\d', svg_tag), "a fixed height would letterbox the chart on a narrow window"


class FakeCloudWatch:
    """DescribeAlarms of one metric alarm defined with a Unit, and GetMetricData with no datapoints."""

    def describe_alarms(self, **_: Any) -> dict[str, Any]:
        return {
            "MetricAlarms": [
                {
                    "AlarmName": "checkout-5xx-rate",
                    "StateValue": "ALARM",
                    "Namespace": "Checkout",
                    "MetricName": "ErrorRate",
                    "Dimensions": [{"Name": "Service", "Value": "checkout"}],
                    "Period": 60,
                    "Statistic": "Average",
                    "Unit": "Percent",
                    "Threshold": 5.0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "EvaluationPeriods": 3,
                }
            ]
        }

    def get_paginator(self, _: str) -> Any:
        class Pages:
            def paginate(self, **__: Any) -> list[dict[str, Any]]:
                return [{"MetricDataResults": []}]

        return Pages()


def test_the_alarms_unit_travels_into_the_metric_series_and_onto_the_axis() -> None:
    series = read_alarm_metric(FakeCloudWatch(), "checkout-5xx-rate", ONSET - timedelta(minutes=15), ONSET)
    assert series is not None and series.unit == "Percent"
    assert axis_label(series) == "Average of ErrorRate (percent)"


def test_a_member_accounts_links_name_the_account_and_its_metric_is_not_read_here() -> None:
    """The alarm and the deployments are in the member account's console (a URL cannot name it); the execution is
    the central stack's; and StackSource reads no metric for it, which would be another account's alarm of that name."""
    from rollguard_cli.review import MetricElsewhere, StackSource

    review = resolved_review()
    member = "222222222222"
    review.record.execution_arn = f"arn:aws:states:us-east-1:123456789012:execution:rollguard-remediation:{INCIDENT}"
    review.record.target_key = f"{member}/{REGION}/{TARGET}"
    review.record.execution_input["alarm"] = {"name": "checkout-5xx-rate", "region": REGION}  # type: ignore[index]
    role = f"arn:aws:iam::{member}:role/rollguard-execution"
    review.record.execution_input["location"] = {"account": member, "region": REGION, "role_arn": role}  # type: ignore[index]

    (links,) = section(build_report(review), "links").blocks
    assert isinstance(links, Links)
    labels = {link.label: link.url for link in links.items}
    assert labels["Step Functions execution"] == console.execution_url("us-east-1", review.record.execution_arn)
    assert labels[f"CloudWatch alarm (account {member})"] == console.alarm_url(REGION, "checkout-5xx-rate")
    assert labels[f"Suspect deployment (account {member})"] == console.deployment_url(REGION, "d-7")

    class NoClients:
        def client(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no metric may be read for a member account's alarm")

    source = StackSource.__new__(StackSource)  # its tables are not needed to decide where the metric is
    source._session, source._clients = NoClients(), {}
    with pytest.raises(MetricElsewhere, match=f"is in member account {member}"):
        source.metric(review.record, review.events)
