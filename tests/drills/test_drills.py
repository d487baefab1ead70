"""The three drills end to end through the CLI, as `make drill` runs them."""

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rollguard_cli.main import main

from tests.conftest import DRILLS, EXPECTED_OUTCOMES

pytestmark = pytest.mark.slow
TRAFFIC_DRILLS = ("bad-target-group", "sick-zone", "shift-does-not-help")


def document(run: dict[str, Any]) -> dict[str, Any]:
    lines = run["stdout"].strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object on stdout"
    return dict(json.loads(lines[0]))


@pytest.mark.parametrize("name", DRILLS)
def test_drill_exits_zero_with_its_expected_outcome(drill_runs: dict[str, Any], name: str) -> None:
    run = drill_runs[name]
    doc = document(run)

    assert run["exit"] == 0
    assert doc["scenario"] == name
    assert doc["outcome"] == doc["expected_outcome"] == EXPECTED_OUTCOMES[name]
    for key in (
        "incident_id",
        "actions",
        "time_to_first_action_s",
        "time_to_recovery_s",
        "audit_events",
        "state_transitions",
    ):
        assert key in doc
    assert doc["lock_released"] is True
    if doc["expected_traffic"] is not None:  # a traffic drill: who serves traffic, read from the load balancer
        assert doc["traffic_final"] == doc["expected_traffic"]
    else:
        assert doc["alias_final"] == doc["expected_alias"], "who serves traffic at the end, read from the Lambda alias"
    assert doc["iam"]["denied"] == [], "every call the drill made was granted by template.yaml"


def test_bad_deploy_reports_actions_and_times(drill_runs: dict[str, Any]) -> None:
    doc = document(drill_runs["bad-deploy"])

    assert [(a["action"], a["scope"], a["result"]) for a in doc["actions"]] == [
        ("rollback", "canary", "ok"),
        ("rollback", "full", "ok"),
    ]
    assert all(a["started_at"] for a in doc["actions"])
    assert 0 < doc["time_to_first_action_s"] < 60, "the first action comes within a minute of the alarm"
    assert doc["time_to_first_action_s"] < doc["time_to_recovery_s"] < 20 * 60
    assert doc["state_transitions"] <= 40


@pytest.mark.parametrize(("name", "kind"), [("bad-deploy", "alias"), ("ecs-bad-deploy", "listener")])
def test_the_streamed_timeline_has_every_line_of_the_rendered_one(
    name: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rollguard drill NAME` prints its timeline as the drill runs; --out's timeline.txt renders the same run once it
    is over. Both have the same lines: the audit events and who serves traffic (the Lambda alias, the load balancer's
    listener of an ECS service), each change printed when it happened, between the events around it."""
    assert main(["drill", name, "--out", str(tmp_path)]) == 0
    streamed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  T")]
    rendered = [line for line in (tmp_path / "timeline.txt").read_text().splitlines() if line.startswith("  T")]

    assert Counter(streamed) == Counter(rendered)
    changes = [line for line in rendered if line[12:28].strip() == kind]
    assert len(changes) == 2, "the canary's 10% and the rest, since the alarm (not the deploy before it)"
    for change in changes:  # an entry of another moment is on the same side of the change in both
        others = [line for line in rendered if line[2:10] != change[2:10]]
        before = [o for o in others if rendered.index(o) < rendered.index(change)]
        assert before == [o for o in others if streamed.index(o) < streamed.index(change)]


def test_escalation_and_no_action_have_no_recovery_time(drill_runs: dict[str, Any]) -> None:
    escalated = document(drill_runs["not-the-deploy"])
    untouched = document(drill_runs["no-recent-deploy"])

    assert escalated["time_to_recovery_s"] is None and len(escalated["actions"]) == 1
    assert untouched["actions"] == [] and untouched["time_to_first_action_s"] is None


@pytest.mark.parametrize("name", DRILLS)
def test_out_folder_holds_audit_events_history_and_timeline(drill_runs: dict[str, Any], name: str) -> None:
    out = drill_runs[name]["out"]
    audit = json.loads((out / "audit-events.json").read_text())
    history = json.loads((out / "execution-history.json").read_text())

    assert audit == document(drill_runs[name])["audit_events"]
    assert history[0]["type"] == "ExecutionStarted" and history[-1]["type"] == "ExecutionSucceeded"
    assert "Outcome:" in (out / "timeline.txt").read_text()


# The ECS drills' targets: blue/green services are keyed by their CodeDeploy group, rolling ones by the service.
TARGETS = {
    "ecs-bad-deploy": "codedeploy:payments/payments-prod",
    "ecs-not-the-deploy": "codedeploy:payments/payments-prod",
    "ecs-rolling-bad-deploy": "ecs:prod/payments",
    # A target in a member account: its account and region lead its key (rollguard.accounts.target_key).
    "member-bad-deploy": "222222222222/us-east-1/codedeploy:checkout/checkout-prod",
    "member-not-allowed": "222222222222/us-east-1/codedeploy:checkout/checkout-prod",
}


@pytest.mark.parametrize("name", DRILLS)
def test_every_audit_event_says_who_what_and_when(drill_runs: dict[str, Any], name: str) -> None:
    for event in document(drill_runs[name])["audit_events"]:
        # The automation acts as itself; a human's decision carries the human's IAM identity.
        human = event["kind"] == "approval"
        assert event["actor"].startswith("arn:aws:sts::") if human else event["actor"] == "rollguard-automation"
        target = TARGETS.get(
            name, "elb:checkout-alb" if name in TRAFFIC_DRILLS else "codedeploy:checkout/checkout-prod"
        )
        assert event["kind"] and event["target_key"] == target
        assert event["at"].endswith("Z") and event["result"]
        assert event["summary"]


def test_the_escalation_notification_carries_the_context(drill_runs: dict[str, Any]) -> None:
    [message] = document(drill_runs["not-the-deploy"])["notifications"]

    for fact in (
        "ESCALATED",
        "checkout-5xx-rate",
        "checkout/checkout-prod",
        "Action:",
        "canary",
        "https://wiki.example.com/runbooks/checkout",
        "console.aws.amazon.com",
    ):
        assert fact in message


@pytest.mark.parametrize(
    ("name", "actions"),
    [
        ("flag-kill-switch", [("flag_off", "recovered")]),
        ("flag-off-while-baking", [("flag_off", "recovered")]),
        ("config-drift", [("config_revert", "recovered")]),
        ("blame-the-flag", [("flag_off", "recovered")]),
        ("blame-the-deploy", [("rollback", "recovered")]),
    ],
)
def test_change_drills_undo_exactly_the_culprit(drill_runs: dict[str, Any], name: str, actions: list[Any]) -> None:
    doc = document(drill_runs[name])

    assert [(a["action"], a["verdict"]) for a in doc["actions"]] == actions
    assert not any(a["action"] == "rollback" for a in doc["actions"]) or name == "blame-the-deploy"


def test_flag_off_stops_the_baking_flag_deployment_and_the_audit_says_so(drill_runs: dict[str, Any]) -> None:
    doc = document(drill_runs["flag-off-while-baking"])

    assert doc["outcome"] == "resolved"
    [action] = [e for e in doc["audit_events"] if e["kind"] == "action"]
    assert action["result"] == "ok" and action["parameters"]["action"] == "flag_off"
    [region] = action["parameters"]["regions"]
    stopped = region["stopped"]
    assert (stopped["state"], stopped["outcome"], stopped["by_rollguard"]) == ("BAKING", "ROLLED_BACK", True)
    assert stopped["version"] == region["previous_version"], "the stopped deployment shipped the bad version"
    assert region["new_version"] == region["previous_version"] + 1
    assert region["deployment_number"] == stopped["deployment_number"] + 1
    told = f"stopped deployment {stopped['deployment_number']} of version {stopped['version']} while BAKING"
    assert told in action["summary"]
    calls = doc["aws_calls"]
    assert (
        "rollguard-remediation/act:appconfig:StopDeployment" in calls
        and "rollguard-remediation/act:appconfig:StartDeployment" in calls
    )


def test_revert_recent_change_names_what_it_chose(drill_runs: dict[str, Any]) -> None:
    [action] = [e for e in document(drill_runs["blame-the-flag"])["audit_events"] if e["kind"] == "action"]

    assert action["parameters"]["ladder_action"] == "revert_recent_change"
    assert action["parameters"]["action"] == "flag_off"
    assert action["parameters"]["reverted_change"]
    [region] = action["parameters"]["regions"]
    assert region["ok"] and region["new_version"] == region["previous_version"] + 1


MUTATING = {
    "CreateDeployment",
    "StopDeployment",
    "StartDeployment",
    "CreateHostedConfigurationVersion",
    "ContinueDeployment",
}


def test_shadow_mode_changes_nothing_and_says_what_it_would_have_done(drill_runs: dict[str, Any]) -> None:
    doc = document(drill_runs["shadow-mode"])

    calls = [c.split(":") for c in doc["aws_calls"]]
    mutating = [
        c for c in calls if c[0].startswith("rollguard-") and c[1] in {"codedeploy", "appconfig"} and c[2] in MUTATING
    ]
    assert mutating == [], "the sandbox's request log shows no mutating call from Rollguard in shadow mode"
    assert [(a["action"], a["scope"], a["result"]) for a in doc["actions"]] == [
        ("rollback", "canary", "shadow"),
        ("rollback", "full", "shadow"),
    ]
    assert all(a["detail"].startswith("would have: ") for a in doc["actions"])
    [message] = doc["notifications"]
    assert "[SHADOW]" in message and "nothing was changed" in message


@pytest.mark.parametrize(("name", "brake"), [("paused", "Rollguard is paused"), ("cooldown", "cooldown: ")])
def test_a_brake_blocks_the_action_and_escalates_with_its_reason(
    drill_runs: dict[str, Any], name: str, brake: str
) -> None:
    doc = document(drill_runs[name])

    [action] = doc["actions"]
    assert action["result"] == "blocked", "a blocked action is listed as blocked, never as executed"
    assert doc["reason"].startswith(f"ActionBlocked: {brake}")
    if name == "paused":  # (in the cooldown drill, the earlier incident did roll back)
        assert not any(c.startswith("rollguard-remediation/act:codedeploy:CreateDeployment") for c in doc["aws_calls"])


def test_stakeholders_hear_every_outcome() -> None:
    from rollguard_cli.drills import SCENARIOS, Stage
    from rollguard_cli.sandbox.runner import REPO, Sandbox

    stages: list[Stage] = []
    with Sandbox(
        error_model=lambda label, at, config: stages[0].error_rate(label, at, config),
        policy_file=REPO / "policies" / "sandbox.yaml",
    ) as sb:
        stages.append(Stage(sb))
        SCENARIOS["bad-deploy"].setup(stages[0])
        incident_id = sb.run_until_incident(max_minutes=30)
        assert incident_id is not None
        sb.wait_for_execution(incident_id)
        [outcome] = sb.stakeholder_notifications()
        [chat] = sb.chat_notifications()  # the on-call topic's queue subscriber: what a chat integration gets
    assert incident_id in outcome and "RESOLVED" in outcome
    chatbot = json.loads(chat)
    assert (chatbot["version"], chatbot["source"], chatbot["id"]) == ("1.0", "custom", incident_id)
    assert "RESOLVED" in chatbot["content"]["title"]


def test_a_journal_outage_pages_on_call_that_rollguard_cannot_tell_what_changed(drill_runs: dict[str, Any]) -> None:
    doc = document(drill_runs["journal-outage"])
    [assessed] = [e for e in doc["audit_events"] if e["kind"] == "assessed"]

    assert assessed["result"] == "escalate" and doc["actions"] == []
    assert doc["reason"].startswith("cannot tell what changed: the change journal may be missing events between ")
    [message] = doc["notifications"]
    assert "ESCALATED" in message and "journal's dead-letter queue" in message


@pytest.mark.parametrize(
    ("name", "traffic", "left"),
    [
        ("bad-target-group", {"weights": {"checkout-green": 1.0}, "shifted_away": None}, "checkout-green 100%"),
        ("sick-zone", {"weights": {"checkout-blue": 1.0}, "shifted_away": "use1-az1"}, "until 20"),
        ("shift-does-not-help", {"weights": {"checkout-blue": 1.0}, "shifted_away": None}, "moved back"),
    ],
)
def test_traffic_drills_leave_the_load_balancer_as_said(
    drill_runs: dict[str, Any], name: str, traffic: dict[str, Any], left: str
) -> None:
    result = document(drill_runs[name])
    assert result["traffic_final"] == traffic
    closed = next(e for e in result["audit_events"] if e["kind"] == "incident_closed")
    assert left in closed["parameters"]["target_state"]
    assert all(a["action"] in {"shift_traffic", "zonal_shift"} for a in result["actions"])
