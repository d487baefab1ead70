"""Assess's ECS decisions that need no AWS: which group deploys the target's service, and what is never blamed."""

from typing import Any

import pytest
from rollguard.adapters.ecs import EcsServices
from rollguard.assess import _deploys_the_service
from rollguard.errors import TargetNotFound
from rollguard.policy import Policy

BLUE_GREEN = Policy.model_validate(
    {
        "name": "payments",
        "trigger": {"alarms": ["payments-5xx"]},
        "target": {
            "codedeploy": {"application": "payments", "deployment_group": "payments-prod"},
            "ecs": {"cluster": "prod", "service": "payments"},
        },
        "ladder": [{"action": "rollback", "scope": "canary", "verify": {"window": 300}}],
    }
)


def test_a_group_that_deploys_another_service_is_refused_with_both_names() -> None:
    group = {"ecsServices": [{"clusterName": "prod", "serviceName": "checkout"}]}

    with pytest.raises(TargetNotFound, match="deploys prod/checkout, not target.ecs prod/payments"):
        _deploys_the_service(group, BLUE_GREEN)


def test_the_group_of_the_service_is_accepted() -> None:
    _deploys_the_service({"ecsServices": [{"clusterName": "prod", "serviceName": "payments"}]}, BLUE_GREEN)


def _deployment(source: str, target: str, status: str = "SUCCESSFUL") -> tuple[dict[str, Any], dict[str, str]]:
    """A DescribeServiceDeployments item from ``source`` to ``target`` (task definition ARNs), and its revisions."""
    item = {
        "serviceDeploymentArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/payments/42",
        "createdAt": "2026-12-01T10:00:00Z",
        "status": status,
        "sourceServiceRevisions": [{"arn": "src"}],
        "targetServiceRevision": {"arn": "dst"},
        "statusReason": "",
    }
    return item, {"src": source, "dst": target}


@pytest.mark.parametrize(
    ("source", "target", "creator"),
    [("payments:3", "payments:2", "ecsRollback"), ("payments:2", "payments:3", "user")],
)
def test_a_deployment_back_to_an_earlier_revision_is_undoing_not_a_change(
    source: str, target: str, creator: str
) -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/"
    deployment, revisions = _deployment(arn + source, arn + target)

    ref = EcsServices._ref(deployment, revisions)

    assert (ref.creator, ref.revision_label, ref.status) == (creator, target, "Succeeded")


def test_ecs_statuses_read_in_codedeploy_words_keep_ecs_own() -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/"
    deployment, revisions = _deployment(arn + "payments:2", arn + "payments:3", status="ROLLBACK_IN_PROGRESS")

    ref = EcsServices._ref(deployment, revisions)

    assert ref.status == "Stopped" and ref.revision["ecsStatus"] == "ROLLBACK_IN_PROGRESS"
