"""Each function's settings model (rollguard.settings) asks for exactly what template.yaml gives that function: its
own Environment plus Globals, and AWS_REGION, which the Lambda runtime sets."""

from pathlib import Path
from typing import Any

import pytest
from rollguard import settings
from rollguard.errors import FunctionMisconfigured
from rollguard.settings import FunctionSettings

SET_BY_LAMBDA = {"AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME"}
MODELS = [
    settings.IntakeSettings,
    settings.RemediationSettings,
    settings.ApprovalSettings,
    settings.CloseSettings,
    settings.WatchdogSettings,
    settings.FlagReportSettings,
    settings.JournalSettings,
]


def variables(model: type[FunctionSettings], required: bool | None = None) -> set[str]:
    return {
        str(field.alias) for field in model.model_fields.values() if required is None or field.is_required() == required
    }


def test_every_function_of_the_template_has_its_settings_model(template: dict[str, Any]) -> None:
    functions = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    # The Remediation function reads two: its intake's and its Assess and Act tasks'.
    assert {f for model in MODELS for f in model.functions} == functions


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_a_settings_model_reads_only_what_the_template_gives_its_functions(
    template: dict[str, Any], model: type[FunctionSettings]
) -> None:
    shared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in model.functions:
        own = set(template["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {}))
        missing = variables(model) - own - shared - SET_BY_LAMBDA
        assert not missing, f"{function} reads {sorted(missing)}, which template.yaml does not give it"


def test_a_missing_variable_fails_in_one_line_naming_it_and_the_function() -> None:
    environment = {"INCIDENTS_TABLE": "i", "AUDIT_TABLE": "a", "LOCKS_TABLE": "", "ESCALATION_TOPIC_ARN": "arn:t"}

    with pytest.raises(FunctionMisconfigured) as raised:
        settings.read(settings.CloseSettings, {**environment, "AWS_LAMBDA_FUNCTION_NAME": "rollguard-CloseFunction-1"})

    assert str(raised.value) == (
        "rollguard-CloseFunction-1 (CloseFunction) cannot run: LOCKS_TABLE is empty; STAKEHOLDER_TOPIC_ARN is not set "
        "(see the function's Environment in template.yaml)"
    )


# Optional where a model reads them, each defaulting to "this account only": the member accounts (template parameters
# MemberRoleName, MemberAccountIds, OrganizationId; docs/organizations.md).
MEMBER_ACCOUNT_VARIABLES = {"MEMBER_ROLE_NAME", "MEMBER_ACCOUNTS", "ORGANIZATION_ID"}


def test_only_the_stack_name_and_the_member_accounts_are_optional() -> None:
    for model in MODELS:
        expected = MEMBER_ACCOUNT_VARIABLES & variables(model)
        if model is settings.ApprovalSettings:
            expected.add("STACK_NAME")
        assert variables(model, required=False) == expected, model.__name__


def test_the_intake_refuses_to_run_without_a_deployed_policy_saying_what_to_do(tmp_path: Path) -> None:
    environment = {
        "INCIDENTS_TABLE": "i",
        "AUDIT_TABLE": "a",
        "LOCKS_TABLE": "l",
        "AWS_REGION": "eu-west-1",
        "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:r",
        "POLICY_FILE": str(tmp_path / "policy.yaml"),
    }

    with pytest.raises(FunctionMisconfigured) as raised:
        settings.read(settings.IntakeSettings, environment)

    missing = tmp_path / "policy.yaml"
    assert str(raised.value).startswith(f"RemediationFunction cannot run: POLICY_FILE: {missing} does not exist")
    assert "no policy of yours is deployed" in str(raised.value) and "policies/deploy/" in str(raised.value)
    (tmp_path / "policy.yaml").write_text("version: 1\n")
    assert settings.read(settings.IntakeSettings, environment).policy_file == str(tmp_path / "policy.yaml")
