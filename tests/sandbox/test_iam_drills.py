"""Every drill runs with IAM enforced from template.yaml and no call denied (tests/sandbox/test_iam_contract.py has
the contract itself). Its own module: the drills need the moto the contract's sandbox holds."""

import json
from typing import Any

import pytest
from rollguard_cli.sandbox.iam import data_version

from tests.conftest import DRILLS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", DRILLS)
def test_every_drill_runs_with_zero_denials(drill_runs: dict[str, Any], name: str) -> None:
    """A call the template does not grant fails the drill, as it would fail the incident in AWS."""
    doc = json.loads(drill_runs[name]["stdout"])

    assert doc["iam"]["denied"] == []
    assert doc["iam"]["data_version"] == data_version()
    assert any(entry.startswith("rollguard-") for entry in doc["iam"]["authorized"]), "IAM was evaluated"
