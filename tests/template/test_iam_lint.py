"""An independent IAM linter (parliament) over every role's policy in template.yaml.

Each finding is either fixed in the template or accepted with a written reason in the owning resource's
`Metadata.rollguard-iam-lint` (see iam_lint.py for the shape). An accepted finding that no longer occurs
fails too, so the exceptions never outlive their reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from iam_lint import METADATA_KEY, Finding, lint, policy_document, role_owners, suppressions

from tests.template.iam import load_template

OWNERS = role_owners(load_template())


def test_every_function_and_the_state_machine_is_linted(template: dict[str, Any]) -> None:
    assert "RemediationStateMachine" in OWNERS
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) >= 7 and functions <= set(OWNERS), sorted(functions - set(OWNERS))


@pytest.mark.parametrize("logical_id", OWNERS)
def test_policy_is_fully_resolved_to_example_arns(template: dict[str, Any], logical_id: str) -> None:
    document = policy_document(template, logical_id)
    assert document["Statement"], f"{logical_id} has no statements to lint"
    for statement in document["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            assert isinstance(resource, str), f"{logical_id}: unresolved {resource!r}"
            assert resource == "*" or resource.startswith("arn:aws:"), f"{logical_id}: {resource}"
            assert "${" not in resource, f"{logical_id}: unresolved substitution in {resource}"


@pytest.mark.parametrize("logical_id", OWNERS)
def test_every_finding_is_fixed_or_explained(template: dict[str, Any], logical_id: str) -> None:
    accepted = suppressions(template, logical_id)
    unexplained = [f for f in lint(policy_document(template, logical_id)) if not any(s.covers(f) for s in accepted)]
    assert not unexplained, (
        f"parliament findings for {logical_id}'s policy:\n"
        + "\n".join(f"  {f}" for f in unexplained)
        + f"\nFix the policy, or add to {logical_id}'s Metadata.{METADATA_KEY}: "
        "{finding: ISSUE, actions: [service:Action], reason: why this is right}"
    )


@pytest.mark.parametrize("logical_id", OWNERS)
def test_no_accepted_finding_is_stale(template: dict[str, Any], logical_id: str) -> None:
    findings = lint(policy_document(template, logical_id))
    stale = []
    for suppression in suppressions(template, logical_id):
        for action in suppression.actions or (None,):
            if not any(suppression.covers(f) and f.action == (action.lower() if action else None) for f in findings):
                stale.append(f"{suppression.issue} {action or ''}".strip())
    assert not stale, (
        f"{logical_id}: Metadata.{METADATA_KEY} accepts findings parliament no longer reports: {stale}. "
        "Delete those entries (or the actions from them)."
    )


def test_the_linter_catches_what_it_is_here_for() -> None:
    """A canary: if parliament (or the resolver) stopped reporting, every test above would pass vacuously."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "codedeploy:StopDeployment",
                "Resource": "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:checkout/*",
            },
            {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::123456789012:role/x"},
        ],
    }
    found = {(f.issue, f.action) for f in lint(document)}
    assert ("RESOURCE_STAR", "dynamodb:putitem") in found
    assert ("RESOURCE_MISMATCH", "codedeploy:stopdeployment") in found
    assert ("PERMISSIONS_MANAGEMENT_ACTIONS", "iam:putrolepolicy") in found  # a community auditor
    typo = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:Pubish", "Resource": "*"}]}
    assert ("UNKNOWN_ACTION", "sns:pubish") in {(f.issue, f.action) for f in lint(typo)}


def test_a_suppression_needs_a_reason() -> None:
    template = {"Resources": {"F": {"Metadata": {METADATA_KEY: [{"finding": "RESOURCE_STAR", "actions": ["a:B"]}]}}}}
    with pytest.raises(ValueError, match="written reason"):
        suppressions(template, "F")


def test_a_suppression_covers_only_its_issue_and_actions() -> None:
    template = {
        "Resources": {
            "F": {
                "Metadata": {
                    METADATA_KEY: [
                        {"finding": "RESOURCE_STAR", "actions": ["CloudWatch:GetMetricData"], "reason": "x" * 20}
                    ]
                }
            }
        }
    }
    (suppression,) = suppressions(template, "F")
    assert suppression.covers(Finding("RESOURCE_STAR", "cloudwatch:GetMetricData", ""))
    assert not suppression.covers(Finding("RESOURCE_STAR", "cloudwatch:PutMetricData", ""))
    assert not suppression.covers(Finding("RESOURCE_MISMATCH", "cloudwatch:GetMetricData", ""))
