"""Plain data and helpers shared by the unit tests (the factory fixtures live in conftest.py)."""

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"

# When the alarm fired, in every test that needs a moment.
ONSET = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)

# The shape of policies/sandbox.yaml, as data, so tests can bend one field at a time.
SANDBOX_POLICY: dict[str, Any] = {
    "name": "checkout-5xx",
    "trigger": {"alarms": ["checkout-5xx-rate"], "require_change_within": "30m"},
    "target": {"codedeploy": {"application": "checkout", "deployment_group": "checkout-prod"}},
    "verify": {
        "min_requests": 50,
        "max_error_rate": 0.05,
        "slice": {
            "namespace": "AWS/Lambda",
            "errors_metric": "Errors",
            "requests_metric": "Invocations",
            "dimensions": {"FunctionName": "checkout", "Resource": "checkout:live"},
            "version_dimension": "ExecutedVersion",
        },
    },
    "ladder": [
        {"action": "rollback", "scope": "canary", "verify": {"window": "5m"}},
        {"action": "rollback", "scope": "full", "verify": {"window": "5m"}},
    ],
    "escalate": {"runbook": "https://wiki.example.com/runbooks/checkout"},
}

SANDBOX_DOCUMENT: dict[str, Any] = {
    "version": 1,
    "defaults": {"mode": "enforce", "lock_ttl": "2h"},
    "policies": [SANDBOX_POLICY],
}


def policy_dict(**overrides: Any) -> dict[str, Any]:
    """A fresh copy of the sandbox policy with top-level keys replaced."""
    return {**copy.deepcopy(SANDBOX_POLICY), **copy.deepcopy(overrides)}


def document(*policies: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A fresh policy document holding ``policies`` (the sandbox policy if none are given)."""
    doc = copy.deepcopy(SANDBOX_DOCUMENT)
    if policies:
        doc["policies"] = [copy.deepcopy(p) for p in policies]
    doc.update(copy.deepcopy(overrides))
    return doc


def as_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False)
