"""The postmortem draft: one document built from a ``Review``, rendered as Markdown or as one self-contained
HTML file (inline CSS, an inline SVG chart, no script, nothing fetched).

``build_report`` decides *what* the draft says — sections of paragraphs, lists and tables — and the two
renderers only decide how it looks, so the Markdown and HTML forms cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from rollguard import console
from rollguard.accounts import plain_key
from rollguard.actions import ACTIONS
from rollguard.alarm_event import parse_aws_time
from rollguard.durations import format_duration

from rollguard_cli.chart import Marker, render_svg
from rollguard_cli.review import FolderSource, Gate, MetricSeries, Review, comparison_symbol, load_review, span

HEADLINES = {
    "resolved": "Resolved by automation",
    "escalated": "Escalated to on-call",
    "closed_no_action": "Closed without action",
}


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Chart:
    svg: str
    caption: str


@dataclass
class Link:
    label: str  # what the page is: "Step Functions execution"
    text: str  # what is shown for it: the name or id
    url: str


@dataclass
class Links:
    items: list[Link]


Block = Para | Bullets | Table | Chart | Links


@dataclass
class Section:
    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str
    outcome: str
    sections: list[Section]


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def _at(event: dict[str, Any]) -> datetime:
    return parse_aws_time(event["at"])


# ---------------------------------------------------------------- what the draft says


def build_report(review: Review, generated: datetime | None = None, note: str = "") -> Report:
    record = review.record
    sections = [
        Section("summary", "Summary", [Para(_summary(review))]),
        Section("metric", "The alarm's metric", _metric_blocks(review)),
        Section("numbers", "Impact and response times", [_numbers(review)]),
        Section("decision", _decision_title(review), _decision(review)),
        Section("actions", "Actions and their verification", _actions(review)),
        Section("timeline", "Timeline", [_timeline(review)]),
        Section("cleanup", "Temporary changes to clean up", [Bullets(cleanup_items(review))]),
        Section("questions", "Questions for the review", [Bullets(review_questions(review))]),
        Section("links", "In the AWS console", _console_links(review)),
        Section("sources", "Where this comes from", [Bullets(_sources(review, generated, note))]),
    ]
    headline = HEADLINES.get(review.outcome, f"Status: {review.outcome}")
    return Report(
        title=f"Postmortem draft: {record.incident_id}",
        subtitle=f"{headline} · policy {record.policy} · {record.target_key} · alarm {record.alarm}",
        outcome=review.outcome,
        sections=sections,
    )


def _summary(review: Review) -> str:
    record = review.record
    parts = [f"{record.alarm} went into ALARM at {_utc(review.onset)} and opened this incident for {record.target_key}"]
    if record.alarm_count > 1:
        parts[0] += f" ({record.alarm_count} alarms joined it)"
    parts[0] += "."
    taken = [s for s in review.steps if s.action.get("result") == "ok"]
    if review.assessment is not None and review.assessment.get("result") != "act":
        parts.append(f"Rollguard did not act: {review.assessment.get('reason') or review.assessment.get('summary')}.")
    elif taken:
        what = "; then ".join(s.action.get("summary", s.title) for s in taken)
        parts.append(
            f"Rollguard blamed a recent change and acted {span(review.time_to_first_action)} after the alarm: {what}."
        )
    parts += [_gate_sentence(review, gate) for gate in review.gates]
    if review.outcome == "resolved":
        parts.append(f"Recovery was verified {span(review.time_to_recovery)} after the alarm, and the incident closed.")
    elif review.outcome == "escalated":
        reason = review.closing.get("reason", "") if review.closing else ""
        parts.append(f"The automation stopped and escalated to on-call: {reason}.")
    elif review.outcome not in HEADLINES:
        parts.append(f"The incident is not closed yet (status {review.outcome}, step: {record.current_step or '?'}).")
    return " ".join(parts)


def _gate_sentence(review: Review, gate: Gate) -> str:
    step = f"step {gate.step + 1}" if gate.step >= 0 else "a step"
    asked = _at(gate.requested)
    if gate.decision is None:
        deadline = gate.requested.get("parameters", {}).get("deadline")
        then = gate.requested.get("parameters", {}).get("on_timeout")
        return (
            f"Rollguard asked a human to approve {step} at {_utc(asked)}; no decision was recorded"
            + (f" before the deadline {_utc(parse_aws_time(deadline))}" if deadline else "")
            + (f" (then: {then})" if then else "")
            + "."
        )
    reason = gate.decision.get("reason", "")
    return (
        f"The approval gate of {step} was {'passed' if gate.verdict == 'approved' else 'closed'}: "
        f"{gate.approver} {gate.verdict} it at {_utc(gate.decided)}, {span(gate.waited)} after Rollguard asked"
        + (f': "{reason}"' if reason else "")
        + "."
    )


def _console_links(review: Review) -> list[Block]:
    """The pages the escalation notification links (rollguard.console), plus every CodeDeploy deployment involved."""
    region = review.region
    if region is None:
        return [Para("No links: the incident records no region (no alarm in its input, no execution ARN).")]
    record = review.record
    links = []
    # A member account's pages are in its own console, which a URL cannot name: the label says which account.
    member = review.member_account
    where = f" (account {member})" if member else ""
    if record.execution_arn:  # the central stack's, in its own region
        name = record.execution_arn.rsplit(":", 1)[-1]
        execution_region = record.execution_arn.split(":")[3]
        links.append(
            Link("Step Functions execution", name, console.execution_url(execution_region, record.execution_arn))
        )
    if record.alarm:
        links.append(Link(f"CloudWatch alarm{where}", record.alarm, console.alarm_url(region, record.alarm)))
    # An ECS or AppConfig id is not a CodeDeploy deployment (a member account's key leads with its account/region).
    if plain_key(record.target_key).startswith("codedeploy:"):
        assessed = (review.assessment or {}).get("parameters", {})
        roles: dict[str, str] = {}
        if assessed.get("suspect"):
            roles[str(assessed["suspect"])] = "Suspect deployment"
        if assessed.get("last_good"):
            roles.setdefault(str(assessed["last_good"]), "Last-known-good deployment")
        for step in review.steps:
            for deployment in step.action.get("parameters", {}).get("deployment_ids", []):
                roles.setdefault(str(deployment), f"Rollguard's deployment ({step.title})")
        links += [Link(role + where, d, console.deployment_url(region, d)) for d, role in roles.items()]
    return [Links(links)] if links else [Para("No links: the incident names no execution, alarm or deployment.")]


def markers(review: Review) -> list[Marker]:
    """The events a reader looks for on the chart: the alarm, each action, the recovery, the end."""
    found: list[Marker] = []
    if review.onset is not None:
        found.append(Marker(review.onset, "alarm", f"ALARM {review.offset(review.onset)}"))
    for step in review.steps:
        p = step.action.get("parameters", {})
        failed = "" if step.action.get("result") == "ok" else " FAILED"
        number = p.get("step", 0) + 1 if isinstance(p.get("step"), int) else "?"
        what = step.what
        found.append(Marker(step.started, "action", f"{number}. {what}{failed} {review.offset(step.started)}"))
    if review.recovered is not None:
        found.append(Marker(review.recovered, "recovery", f"recovered {review.offset(review.recovered)}"))
    elif review.closed is not None:
        label = {"escalated": "escalated", "closed_no_action": "closed, no action"}.get(review.outcome, "closed")
        found.append(Marker(review.closed, "end", f"{label} {review.offset(review.closed)}"))
    return found


def chart_svg(review: Review) -> str | None:
    metric = review.metric
    if metric is None:
        return None
    impact = (review.impact.start, review.impact.end) if review.impact else None
    threshold_label = (
        f"threshold {comparison_symbol(metric.comparison)} {metric.threshold:g}" if metric.threshold is not None else ""
    )
    return render_svg(
        metric.points(),
        threshold=metric.threshold,
        threshold_label=threshold_label,
        markers=markers(review),
        impact=impact,
        period=metric.period,
        start=parse_aws_time(metric.start),
        end=parse_aws_time(metric.end),
        y_label=f"{metric.label} · {metric.statistic} per {format_duration(metric.period)}",
        y_axis=axis_label(metric),
    )


# Units AWS documents for the metrics Rollguard's alarms usually watch; an alarm's own Unit wins. (CloudWatch returns
# no unit with GetMetricData, and DescribeAlarms only has one when the alarm was defined with it.)
DOCUMENTED_UNITS = {
    ("AWS/ApplicationELB", "RequestCount"): "Count",
    ("AWS/ApplicationELB", "TargetResponseTime"): "Seconds",
    ("AWS/Lambda", "Invocations"): "Count",
    ("AWS/Lambda", "Errors"): "Count",
    ("AWS/Lambda", "Throttles"): "Count",
    ("AWS/Lambda", "Duration"): "Milliseconds",
}


def metric_unit(metric: MetricSeries) -> str | None:
    if metric.unit and metric.unit != "None":
        return metric.unit
    if metric.statistic == "SampleCount":  # the number of datapoints, whatever the metric measures
        return "Count"
    name = metric.metric_name or ""
    if metric.namespace == "AWS/ApplicationELB" and name.startswith("HTTPCode_"):
        return "Count"  # HTTPCode_Target_5XX_Count, HTTPCode_ELB_5XX_Count …
    return DOCUMENTED_UNITS.get((metric.namespace or "", name))


def axis_label(metric: MetricSeries) -> str:
    """What the Y axis measures: ``Sum of HTTPCode_Target_5XX_Count (count)``; no unit where none is known."""
    unit = metric_unit(metric)
    if metric.metric_name is None:  # metric math: the expression's label is all there is
        what = metric.label
    else:
        what = f"{metric.statistic} of {metric.metric_name}" if metric.statistic else metric.metric_name
    return f"{what} ({unit.lower()})" if unit else what


def _metric_blocks(review: Review) -> list[Block]:
    metric = review.metric
    if metric is None:
        why = review.metric_note or "no metric was recorded with this incident (a composite alarm has none of its own)"
        return [Para(f"No chart: {why}.")]
    values = [v for _, v in metric.datapoints]
    rule = (
        f"{metric.alarm} watches {metric.label} ({metric.statistic} per {format_duration(metric.period)}) and "
        f"goes to ALARM when {metric.datapoints_to_alarm} of {metric.evaluation_periods} datapoints are "
        f"{comparison_symbol(metric.comparison)} {metric.threshold:g}."
        if metric.threshold is not None
        else f"{metric.alarm} watches {metric.label}."
    )
    unit = metric_unit(metric)
    rule += f" Unit: {unit.lower()}." if unit else " Unit: not recorded (the alarm names none)."
    shown = f"{len(values)} datapoints from {_utc(parse_aws_time(metric.start))} to {_utc(parse_aws_time(metric.end))}"
    if review.impact is not None:
        shown += f"; peak {review.impact.peak:g} at {_clock(review.impact.peak_at)} UTC"
    blocks: list[Block] = [Para(f"{rule} Shown: {shown}.")]
    svg = chart_svg(review)
    if svg:
        blocks.append(
            Chart(svg, "The shaded band is the impact window; vertical lines mark the alarm, each action and the end.")
        )
    return blocks


def _numbers(review: Review) -> Table:
    impact = review.impact
    if impact is None:
        window = "unknown (no metric datapoints on the wrong side of the threshold)"
    elif impact.end is None:
        window = f"{_utc(impact.start)} → still breaching when the data ends ({_utc(review.closed)} closed)"
    else:
        window = f"{_utc(impact.start)} → {_utc(impact.end)} ({span((impact.end - impact.start).total_seconds())})"
    opened = review.since_onset(review.opened)
    rows = [
        ["Impact window", window],
        ["Alarm onset (ALARM)", _utc(review.onset)],
        ["Time to detect", f"{span(review.time_to_detect)} from the first breaching datapoint to the alarm"],
        ["Time to open", f"{span(opened)} from the alarm to Rollguard's incident"],
        ["Time to first action", _first_action_text(review)],
        ["Time to recovery", _recovery_text(review)],
        ["Closed", f"{_utc(review.closed)} ({review.outcome})"],
    ]
    return Table(["", ""], rows)


def _first_action_text(review: Review) -> str:
    """A time only when an action was taken: "—" and why otherwise, never a duration to nothing."""
    if review.time_to_first_action is not None:
        return f"{span(review.time_to_first_action)} from the alarm (mitigation started)"
    if review.steps:
        return f"— no action succeeded ({len(review.steps)} attempted, none ok)"
    if review.outcome == "closed_no_action":
        return "— none: the incident closed without any action"
    if review.outcome == "escalated":
        return "— none: escalated to on-call before any action"
    return "— no action yet"


def _recovery_text(review: Review) -> str:
    """A time only when a verdict resolved the incident; an escalation's time is the time to escalate."""
    if review.time_to_recovery is not None:
        return f"{span(review.time_to_recovery)} from the alarm to the verdict that resolved it"
    if review.outcome == "escalated":
        to_escalate = f": escalated to on-call {span(review.since_onset(review.closed))} after the alarm"
        return "— not recovered" + (to_escalate if review.closed else "")
    if review.outcome == "closed_no_action":
        return "— none: Rollguard took no action, so there is no recovery to time"
    if review.outcome == "resolved":
        return "— no recovered verdict recorded"
    return "— not recovered yet (the incident is open)"


def _decision_title(review: Review) -> str:
    acted = review.assessment is not None and review.assessment.get("result") == "act"
    return "Why the automation acted" if acted else "Why the automation did not act"


def _decision(review: Review) -> list[Block]:
    assessment = review.assessment
    if assessment is None:
        reason = review.closing.get("reason", "") if review.closing else ""
        return [Para(f"The assessment never completed{': ' + reason if reason else ''}.")]
    p = assessment.get("parameters", {})
    within = review.record.policy_doc.get("trigger", {}).get("require_change_within")
    rows = [
        ["Decision", str(assessment.get("result"))],
        ["Reason", str(assessment.get("reason", ""))],
        ["Alarm state when assessed", str(p.get("alarm_state", "?"))],
        ["Suspect deployment", str(p.get("suspect") or "none")],
        ["Last-known-good deployment", str(p.get("last_good") or "none")],
    ]
    if p.get("changes"):  # flag and configuration changes in scope (the change journal), the newest kept
        more = int(p.get("changes_in_scope") or 0) - len(p["changes"])
        rows.append(
            ["Changes in scope", ", ".join(map(str, p["changes"])) + (f" and {more} earlier" if more > 0 else "")]
        )
    if within:
        rows.append(["Policy looks back", f"{format_duration(within)} before the alarm for a deployment to blame"])
    return [Para(str(assessment.get("summary", ""))), Table(["", ""], rows)]


def _actions(review: Review) -> list[Block]:
    if not review.steps:
        return [Para("None: Rollguard changed nothing."), *([_gates_table(review)] if review.gates else [])]
    rows = []
    for step in review.steps:
        verdict = step.verdict
        verification = (
            f"{verdict['result']} at {review.offset(_at(verdict))}: {verdict.get('reason', '')}"
            if verdict
            else "not verified"
        )
        ids = ", ".join(step.action.get("parameters", {}).get("deployment_ids", [])) or "—"
        result = step.action.get("result", "?")
        if result != "ok":
            result += f" ({step.action.get('reason', '')})"
        rows.append(
            [step.title, review.offset(step.started), step.action.get("summary", ""), result, ids, verification]
        )
    blocks: list[Block] = [Table(["Step", "Started", "What", "Result", "Deployments", "Verification"], rows)]
    if review.gates:
        blocks.append(_gates_table(review))
    return blocks


def _gates_table(review: Review) -> Table:
    rows = []
    for gate in review.gates:
        asked = _at(gate.requested)
        if gate.decision is None:
            deadline = gate.requested.get("parameters", {}).get("deadline")
            decision = "no decision recorded" + (f" (deadline {_utc(parse_aws_time(deadline))})" if deadline else "")
            rows.append([f"step {gate.step + 1}", review.offset(asked), decision, "—", "—", "—"])
            continue
        assert gate.decided is not None
        rows.append(
            [
                f"step {gate.step + 1}",
                review.offset(asked),
                str(gate.verdict),
                gate.approver,
                f"{_utc(gate.decided)} ({review.offset(gate.decided)}, after {span(gate.waited)})",
                str(gate.decision.get("reason", "")) or "—",
            ]
        )
    return Table(["Approval gate", "Asked", "Decision", "By", "When", "Reason given"], rows)


def _timeline(review: Review) -> Table:
    rows = []
    for event in review.events:
        at = _at(event)
        text = event.get("summary", "")
        reason = event.get("reason", "")
        if reason and reason not in text:
            text += f" — {reason}"
        rows.append(
            [
                review.offset(at),
                _clock(at),
                event.get("kind", "").replace("_", " "),
                event.get("actor", ""),
                event.get("result", ""),
                text,
            ]
        )
    return Table(["T", "UTC", "Event", "Actor", "Result", "What happened"], rows)


def cleanup_items(review: Review) -> list[str]:
    """What the incident left in place that someone must tidy up or follow through."""
    items: list[str] = []
    taken = [s for s in review.steps if s.action.get("result") == "ok"]
    suspect = (review.assessment or {}).get("parameters", {}).get("suspect")
    close_reason = review.closing.get("reason", "") if review.closing else ""
    for step in review.steps:
        if step.action.get("result") != "ok":
            items.append(
                f"{step.title.capitalize()} failed ({step.action.get('reason', '')}): check that it left no "
                f"half-done change on {review.record.target_key} (list the group's recent deployments)."
            )
    rollbacks = [s for s in taken if s.action.get("parameters", {}).get("action") == "rollback"]
    if rollbacks and review.outcome == "resolved":
        items.append(
            f"Deployment {suspect or 'the suspect'} is rolled back ({rollbacks[-1].action.get('summary', '')}). "
            "Fix forward with a new revision through the normal pipeline rather than redeploying the bad one, and "
            f"hold deployments to {review.record.target_key} that would ship it again until then."
        )
        last = rollbacks[-1].action.get("parameters", {})
        if last.get("scope") == "canary":
            items.append(
                f"The last step was a canary: CodeDeploy moves the rest of the traffic itself after the canary "
                f"interval. Check that deployment {last.get('deployment_ids', ['?'])[-1]} completed."
            )
    for step in rollbacks:
        p = step.action.get("parameters", {})
        canary = p.get("deployment_ids", [None])[-1] if p.get("scope") == "canary" else None
        if canary and f"canary {canary} stopped" in close_reason:
            items.append(
                f"Canary rollback {canary} was stopped with rollback, so its slice went back to where it was: the "
                "suspect revision serves all traffic again. Rollguard left nothing in place, but the cause is open."
            )
    if (
        review.outcome == "escalated"
        and rollbacks
        and rollbacks[-1].action.get("parameters", {}).get("scope") == "full"
    ):
        items.append(
            "A full rollback is in place although the alarm did not recover: decide whether to keep it while the "
            "real cause is found."
        )
    for step in taken:
        action = step.action.get("parameters", {}).get("action")
        if action and action != "rollback":
            # Flags, configuration and traffic changes stay as Rollguard left them until someone reverts them.
            parameters = step.action.get("parameters", {})
            follow_up = ACTIONS[action].follow_up(parameters) if action in ACTIONS else "it stays in effect"
            items.append(f"{step.title.capitalize()} ({step.action.get('summary', '')}): {follow_up}.")
    if review.closing and review.closing.get("parameters", {}).get("lock_released") is False:
        items.append(
            f"Closing did not release the lock on {review.record.target_key} (already free, or taken over): check "
            "the Locks table before the next incident."
        )
    if review.closing is None:
        items.append(f"The incident is still open: the lock on {review.record.target_key} is held until it closes.")
    if not items:
        items.append("Nothing: Rollguard changed nothing that outlives the incident.")
    return items


def review_questions(review: Review) -> list[str]:
    """The questions a blameless review asks of this incident: about signals, scope and people, not blame."""
    questions: list[str] = []
    metric = review.metric
    if metric is not None and metric.threshold is not None:
        if review.time_to_detect is not None:
            questions.append(
                f"Signal: the metric first breached {span(review.time_to_detect)} before the alarm fired "
                f"({metric.datapoints_to_alarm} of {metric.evaluation_periods} datapoints of "
                f"{format_duration(metric.period)}). "
                "Is that fast enough here, and would a shorter period or fewer datapoints alarm sooner without "
                "false alarms?"
            )
        if review.impact is not None:
            questions.append(
                f"Signal: the threshold is {comparison_symbol(metric.comparison)} {metric.threshold:g} and the metric "
                f"peaked at {review.impact.peak:g}. Does the threshold match what users notice?"
            )
    if review.record.alarm_count > 1:
        questions.append(
            f"Signal: {review.record.alarm_count} alarms fired for this target. Are they one symptom, and should "
            "fewer alarms page?"
        )
    acted = review.assessment is not None and review.assessment.get("result") == "act"
    if review.assessment is not None and not acted:
        within = review.record.policy_doc.get("trigger", {}).get("require_change_within")
        questions.append(
            "Scope: the alarm fired but no deployment was in scope"
            + (f" (the policy looks back {format_duration(within)})" if within else "")
            + ". What changed — configuration, a flag, a dependency, traffic? Should a policy cover that kind of "
            "change, or should this alarm go to people directly?"
        )
    steps = [s.action.get("parameters", {}) for s in review.steps]
    if any(p.get("scope") == "canary" for p in steps):
        canary_wait = next((s for s in review.steps if s.action.get("parameters", {}).get("scope") == "canary"), None)
        waited = (
            span((_at(canary_wait.verdict) - canary_wait.started).total_seconds())
            if canary_wait and canary_wait.verdict
            else "?"
        )
        if review.outcome == "resolved":
            questions.append(
                f"Rollback scope: a canary slice was rolled back and judged for {waited} before widening. Was that "
                "caution worth the longer impact here, or should this ladder start with a full rollback?"
            )
        else:
            questions.append(
                f"Rollback scope: the canary slice was judged for {waited} and was as unhealthy as the rest, so "
                "Rollguard stopped. Was the deploy really not the cause, and what would have pointed at the real "
                "cause sooner?"
            )
    elif review.outcome == "resolved" and any(p.get("action") == "rollback" for p in steps):
        questions.append(
            "Rollback scope: the whole deployment was rolled back. Could a flag have switched off only the faulty "
            "change?"
        )
    elif review.outcome == "resolved" and steps:
        questions.append(
            f"Scope: {' then '.join(s.what for s in review.steps)} was enough. Was it the narrowest lever, and is "
            "what it switched off or reverted safe to leave that way until the fix?"
        )
    ladder = review.record.policy_doc.get("ladder", [])
    gated = [i + 1 for i, step in enumerate(ladder) if (step.get("approval") or {}).get("required")]
    decided = [g for g in review.gates if g.decision is not None]
    if decided:
        waits = "; ".join(
            f"step {g.step + 1} waited {span(g.waited)} until {g.approver} {g.verdict} it" for g in decided
        )
        questions.append(f"Approvals: {waits}. Did the gate add safety worth that time, and could it be shorter?")
    elif gated:
        questions.append(
            f"Approvals: step(s) {', '.join(map(str, gated))} wait for a human. How long did the approval take, and "
            "did the gate add safety worth that time?"
        )
    elif acted and review.time_to_first_action is not None:
        questions.append(
            f"Approvals: no step asked a human; the first action came {span(review.time_to_first_action)} after the "
            "alarm. Should any step of this ladder wait for approval, and could this service afford the wait?"
        )
    if review.outcome == "escalated":
        questions.append(
            "People: the escalation reached on-call with the alarm, change and actions. Was that enough to act on, "
            "and how long until someone did?"
        )
    assessed = (review.assessment or {}).get("parameters", {})
    change = (
        f"deployment {assessed['suspect']}"
        if assessed.get("suspect")
        else (f"change {', '.join(map(str, assessed['changes']))}" if assessed.get("changes") else "")
    )
    if change and acted and review.outcome == "resolved":  # undoing it cured the alarm, so it was the cause
        questions.append(
            f"The change: how did {change} pass the checks before production, and which test or canary alarm "
            "would have stopped it earlier?"
        )
    return questions


def _sources(review: Review, generated: datetime | None, note: str) -> list[str]:
    record = review.record
    items = [note] if note else []
    items.append(f"Audit trail: {len(review.events)} events of incident {record.incident_id}.")
    if record.execution_arn:
        items.append(f"Step Functions execution (its name is the incident id): {record.execution_arn}")
    items.append(generated_line(review, generated or datetime.now(UTC)) + " " + DRAFT)
    return items


DRAFT = "This is a draft: correct it, add what people saw and did, and keep it blameless."


def generated_line(review: Review, generated: datetime) -> str:
    """When the draft was written, on this computer's clock, the only honest time for it: never the incident's close
    time dressed up as a generation time. A drill's incident runs on the sandbox's simulated clock, which runs ahead of
    the wall clock, so a draft written from a drill folder can be "older" than the incident it reports; then say so,
    instead of printing a generation time that reads as if it came before the incident."""
    line = f"Generated by rollguard report at {_utc(generated)} (this computer's clock)."
    times = [_at(e) for e in review.events if e.get("at")] + [t for t in (review.closed, review.onset) if t]
    last = max(times, default=None)
    if last is not None and last > generated:
        line += (
            f" The incident's times run on another clock: its last event, at {_utc(last)}, is "
            f"{span((last - generated).total_seconds())} later than that (a drill's simulated clock, or a clock that "
            "is off). Compare the incident's times with each other, not with this one."
        )
    return line


# ---------------------------------------------------------------- Markdown


def _md_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    out = [f"# {report.title}", "", f"**{report.subtitle}**", ""]
    for section in report.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Para):
                out += [block.text, ""]
            elif isinstance(block, Bullets):
                out += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                header = block.header if any(block.header) else ["", ""]
                out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
                out.append("|" + "---|" * len(header))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                out.append("")
            elif isinstance(block, Chart):
                out += ["_The chart is in the HTML form of this report (`--format html`)._", ""]
            elif isinstance(block, Links):
                out += [f"- {link.label}: [{_md_text(link.text)}]({link.url})" for link in block.items] + [""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- HTML

_CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 28px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
.subtitle { color: #59636e; margin: 0 0 12px; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 12px; font-weight: 600; font-size: 13px;
         color: #fff; background: #394150; margin-right: 8px; }
.badge.resolved { background: #116329; } .badge.escalated { background: #9a3412; }
.badge.closed_no_action { background: #4b5563; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d8dee4; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
.scroll { overflow-x: auto; }
td { overflow-wrap: break-word; }
td:first-child { white-space: nowrap; }
figure { margin: 8px 0; }
@media (max-width: 640px) {
  main { padding: 12px 10px 32px; }
  td:first-child { white-space: normal; }
}
figcaption { color: #59636e; font-size: 13px; }
ul { padding-left: 22px; } li { margin: 4px 0; }
"""


def render_html(report: Report) -> str:
    body: list[str] = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="subtitle"><span class="badge {escape(report.outcome)}">{escape(report.outcome)}</span>'
        f"{escape(report.subtitle)}</p>",
    ]
    for section in report.sections:
        body.append(f'<section id="{section.anchor}"><h2>{escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Para):
                body.append(f"<p>{escape(block.text)}</p>")
            elif isinstance(block, Bullets):
                body.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>")
            elif isinstance(block, Table):
                head = (
                    ""
                    if not any(block.header)
                    else ("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in block.header) + "</tr></thead>")
                )
                rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
                # A wide table scrolls inside its box on a narrow window, rather than widening the page.
                body.append(f'<div class="scroll"><table>{head}<tbody>{rows}</tbody></table></div>')
            elif isinstance(block, Links):
                body.append(
                    '<ul class="links">'
                    + "".join(
                        f'<li>{escape(link.label)}: <a href="{escape(link.url)}">{escape(link.text)}</a></li>'
                        for link in block.items
                    )
                    + "</ul>"
                )
            elif isinstance(block, Chart):
                body.append(f"<figure>{block.svg}<figcaption>{escape(block.caption)}</figcaption></figure>")
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


DRILL_NOTE = "A drill on the local sandbox: every incident time in this report is simulated."


def render(review: Review, fmt: str, note: str = "") -> str:
    report = build_report(review, note=note)
    return render_html(report) if fmt == "html" else render_markdown(report)


def write_reports(folder: Path, incident_id: str) -> None:
    """report.md and report.html of a drill's --out folder, read back the way `rollguard report --from` reads."""
    review = load_review(FolderSource(folder), incident_id)
    report = build_report(review, note=DRILL_NOTE)
    (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (folder / "report.html").write_text(render_html(report), encoding="utf-8")
