"""`sam local invoke` as the README documents it: every function has sample events in events/<function>/, shaped as
its trigger (EventBridge, or the state machine's Parameters/ResultPath) passes them and valid for the handler's input
model; local/env.json names exactly the variables each function's settings model reads, with placeholders that
local/fill_env.py fills from the stack's own outputs and parameters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from iam import REPO_ROOT
from rollguard.alarm_event import AlarmStateChange
from rollguard.approvals import ApprovalRequest
from rollguard.incident import CloseRequest, ExecutionState, RemediationTask
from rollguard.journal import scope_of
from test_function_settings import MODELS

EVENTS = REPO_ROOT / "events"
ENV_JSON = REPO_ROOT / "local" / "env.json"
FILL = REPO_ROOT / "local" / "fill_env.py"
SET_BY_LAMBDA = {"AWS_REGION"}  # sam local invoke sets it from --region / the profile, as Lambda does
# MODELS: every function's; the Remediation function reads two (its intake's, its Assess and Act tasks').
SETTINGS = {
    function: [m for m in MODELS if function in m.functions] for model in MODELS for function in model.functions
}

# Events kept to show what a handler refuses or ignores: not EventBridge deliveries (an alarm's Lambda and SNS
# actions), EventBridge events without what an alarm state change must carry, and a CodeDeploy event that is no change.
REFUSED_ON_PURPOSE = {
    "journal/codedeploy-instance-state-change.json",
    "remediation/intake/aws-samples/lambda-alarm-action-single-metric.json",
    "remediation/intake/aws-samples/sns-alarm-single-metric.json",
    "remediation/intake/missing-alarm-name.json",
    "remediation/intake/truncated-no-state.json",
}


def _watchdog(event: dict[str, Any]) -> None:
    EventBridgeModel.model_validate(event)
    ExecutionState.model_validate(json.loads(event["detail"]["input"]))  # the execution's input: an incident


def _journal(event: dict[str, Any]) -> None:
    EventBridgeModel.model_validate(event)
    assert scope_of(event) is not None, "the journal ignores this event"


def _remediation(event: dict[str, Any]) -> object:
    """The state machine's tasks carry ``task``; the alarm rule's events are the intake's (functions/remediation)."""
    return RemediationTask.model_validate(event) if "task" in event else AlarmStateChange.model_validate(event)


# What each handler (functions/<folder>/app.py) validates its event with.
INPUT_MODELS: dict[str, Callable[[dict[str, Any]], object]] = {
    "remediation": _remediation,
    "verify": ExecutionState.model_validate,
    "close": CloseRequest.model_validate,
    "approval": ApprovalRequest.model_validate,
    "watchdog": _watchdog,
    "flag_report": EventBridgeModel.model_validate,
    "journal": _journal,
}


def functions(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → its folder under functions/ (and events/)."""
    return {
        logical_id: Path(resource["Properties"]["CodeUri"]).name
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def event_files() -> list[str]:
    return sorted(str(p.relative_to(EVENTS)) for p in EVENTS.rglob("*.json"))


def test_every_function_has_sample_events_and_a_model_to_check_them(template: dict[str, Any]) -> None:
    folders = functions(template)
    assert sorted(INPUT_MODELS) == sorted(folders.values())
    for logical_id, folder in folders.items():
        assert list((EVENTS / folder).glob("*.json")), f"{logical_id}: no event in events/{folder}/"


@pytest.mark.parametrize("relative", event_files())
def test_each_event_is_valid_for_its_handler(relative: str) -> None:
    folder = relative.split("/")[0]
    event = json.loads((EVENTS / relative).read_text())
    if relative in REFUSED_ON_PURPOSE:
        with pytest.raises((ValueError, AssertionError)):
            INPUT_MODELS[folder](event)
    else:
        INPUT_MODELS[folder](event)


def test_remediation_and_verify_events_carry_what_the_state_machine_has_set_by_then() -> None:
    """Assess runs on the execution's input; Act after Assess (ResultPath $.assessment) and after a Verify that chose
    the next step ($.progress); Verify after Act ($.progress): remediation.asl.json."""
    tasks = {
        path.name: RemediationTask.model_validate_json(path.read_text())
        for path in (EVENTS / "remediation").glob("*.json")  # not intake/: the alarm rule's events
    }
    assert {name: task.task for name, task in tasks.items()} == {
        "assess-incident.json": "assess",
        "act-first-step-canary.json": "act",
        "act-next-step-after-verify.json": "act",
    }
    assert tasks["assess-incident.json"].state.assessment is None
    for name, task in tasks.items():
        if task.task == "act":
            state = task.state
            assert state.assessment and state.assessment.decision == "act", name
            # Invoked against a deployed stack, a sample records "would have" and changes no target by accident.
            assert state.policy.mode == "shadow", name
            assert state.progress is None or state.progress.next == "act", name
    for path in (EVENTS / "verify").glob("*.json"):
        state = ExecutionState.model_validate_json(path.read_text())
        assert state.assessment and state.progress and state.progress.wait_seconds > 0, path.name


def env_json() -> dict[str, dict[str, str]]:
    return dict(json.loads(ENV_JSON.read_text()))


def test_env_json_has_an_entry_for_every_function(template: dict[str, Any]) -> None:
    assert sorted(env_json()) == sorted(functions(template))


@pytest.mark.parametrize("logical_id", sorted(SETTINGS))
def test_env_json_names_exactly_what_the_functions_settings_read(template: dict[str, Any], logical_id: str) -> None:
    fields = [f for model in SETTINGS[logical_id] for f in model.model_fields.values()]
    required = {str(f.alias) for f in fields if f.is_required()} - SET_BY_LAMBDA
    every = {str(f.alias) for f in fields} - SET_BY_LAMBDA
    named = set(env_json()[logical_id])
    assert required <= named <= every, (sorted(required - named), sorted(named - every))
    # sam local invoke overrides only variables the template declares for the function.
    declared = set(template["Globals"]["Function"]["Environment"]["Variables"]) | set(
        template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    )
    assert named <= declared


def _placeholder_for(template: dict[str, Any], value: Any) -> str:
    """What env.json must say for a template value: the output that exposes the resource, or the parameter."""
    if "Fn::Sub" in value:
        named = _named_resource(template, str(value["Fn::Sub"]))
        if named is not None:  # an ARN built from a resource's Name: the output that exposes that resource
            value = {"Ref": named}
        else:
            return str(value["Fn::Sub"]).replace("${", "<Parameter:").replace("}", ">")
    ref = value["Ref"]
    if ref == "AWS::StackName":
        return "<StackName>"
    if ref in template["Parameters"]:
        return f"<Parameter:{ref}>"
    [output] = [k for k, o in template["Outputs"].items() if o["Value"] == {"Ref": ref}]
    return f"<Output:{output}>"


def _named_resource(template: dict[str, Any], arn: str) -> str | None:
    """The resource whose ``Name`` is the last part of ``arn`` (an ARN that !Ref could not give, see template.yaml)."""
    name = re.split(r":(?![^{]*\})", arn)[-1]  # the colons of ${AWS::StackName} do not separate
    found = [k for k, r in template["Resources"].items() if r.get("Properties", {}).get("Name") == {"Fn::Sub": name}]
    return found[0] if arn.startswith("arn:") and found else None


@pytest.mark.parametrize("logical_id", sorted(SETTINGS))
def test_env_json_placeholders_name_the_stack_output_of_the_templates_value(
    template: dict[str, Any], logical_id: str
) -> None:
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    own = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    for variable, placeholder in env_json()[logical_id].items():
        assert placeholder == _placeholder_for(template, own.get(variable, shared.get(variable))), variable


def described_stack(template: dict[str, Any]) -> dict[str, Any]:
    """What `aws cloudformation describe-stacks` answers for a stack of this template (values made up)."""
    return {
        "Stacks": [
            {
                "StackName": "rollguard",
                "Parameters": [
                    {"ParameterKey": k, "ParameterValue": str(p.get("Default", "x"))}
                    for k, p in template["Parameters"].items()
                ],
                "Outputs": [{"OutputKey": k, "OutputValue": f"value-of-{k}"} for k in template["Outputs"]],
            }
        ]
    }


def run_fill(stdin: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FILL)], input=json.dumps(stdin), capture_output=True, text=True, timeout=60
    )


def test_fill_env_resolves_every_placeholder_from_the_stack(template: dict[str, Any]) -> None:
    filled = run_fill(described_stack(template))

    assert filled.returncode == 0, filled.stderr
    env = json.loads(filled.stdout)
    assert env["RemediationFunction"]["INCIDENTS_TABLE"] == "value-of-IncidentsTableName"
    assert env["RemediationFunction"]["POLICY_FILE"] == "/opt/policy.yaml"
    assert env["ApprovalFunction"]["STACK_NAME"] == "rollguard"
    assert env["RemediationFunction"]["APPCONFIG_STRATEGY"] == "Rollguard-Immediate"
    assert not [v for variables in env.values() for v in variables.values() if "<" in v]


def test_fill_env_refuses_a_stack_that_lacks_an_output(template: dict[str, Any]) -> None:
    stack = described_stack(template)
    stack["Stacks"][0]["Outputs"] = [o for o in stack["Stacks"][0]["Outputs"] if o["OutputKey"] != "LocksTableName"]

    refused = run_fill(stack)

    assert refused.returncode != 0 and "does not resolve <Output:LocksTableName>" in refused.stderr


def readme_section(title: str) -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(f"\n{title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_the_readme_tells_how_to_invoke_every_function_locally(template: dict[str, Any]) -> None:
    section = readme_section("### Invoking a function with `sam local invoke`")
    for logical_id, folder in functions(template).items():
        assert f"`{logical_id}`" in section and f"events/{folder}/" in section, logical_id
    assert "local/fill_env.py" in section and "--env-vars" in section and "QEMU" in section


# The organization shape's parameters (MemberAccountIds, OrganizationId, MemberRoleName) are documented with the
# member template, in the parameter table of docs/organizations.md.
ORGANIZATIONS = REPO_ROOT / "docs" / "organizations.md"


def test_the_readme_lists_every_deploy_parameter(template: dict[str, Any]) -> None:
    section = readme_section("## Deploying") + ORGANIZATIONS.read_text()
    assert not [name for name in template["Parameters"] if f"| `{name}` |" not in section]
    checklist = readme_section("### Before your first deploy")
    musts = ("policies/deploy/", "rollguard policy check", "mode: shadow", "EscalationTopicArn", "AlarmNamePattern")
    assert not [must for must in musts if must not in checklist]
