"""`rollguard drill --policy FILE`: a policy of one's own, its targets and alarm built in the sandbox with its names."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from rollguard_cli.main import main
from rollguard_cli.sandbox.runner import REPO

pytestmark = pytest.mark.slow


def readme_policy() -> str:
    """The README's first example policy ("Writing a policy"), its names changed from checkout's to a team's own."""
    section = (REPO / "README.md").read_text().split("## Writing a policy", 1)[1]
    text = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert text is not None
    policy = text.group(1).replace(
        'FunctionName: checkout, Resource: "checkout:live"', 'FunctionName: orders-api, Resource: "orders-api:live"'
    )
    policy = policy.replace("checkout-prod", "orders-live").replace("runbooks/checkout", "runbooks/orders-team")
    return policy.replace("checkout", "orders")


FLAG_POLICY = """
version: 1
policies:
  - name: billing-errors
    trigger: {alarms: ["billing-5xx-*"], require_change_within: 30m}
    target:
      appconfig: {application: billing-app, environment: production}
    ladder:
      - action: flag_off
        flag: {application: billing-app, environment: production, profile: billing-flags, name: fast-invoices}
        verify: {window: 4m}
    escalate: {runbook: https://wiki.example.com/runbooks/billing}
"""


def drill(tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, *argv: str) -> tuple[int, Any, str]:
    file = tmp_path / "policy.yaml"
    file.write_text(policy)
    code = main(["drill", "--policy", str(file), "--json", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_the_readmes_policy_with_its_own_names_resolves_a_bad_deploy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = readme_policy()
    assert "checkout" not in policy and "orders-api:live" in policy

    code, doc, _ = drill(tmp_path, capsys, policy)  # the default scenario: the first step is a rollback

    assert code == 0
    assert doc["scenario"] == "bad-deploy (orders-5xx)" and doc["outcome"] == "resolved" and doc["passed"]
    assert doc["incident"]["alarm"] == "orders-5xx-rate"  # the real intake matched the policy's own alarm
    assert doc["incident"]["target_key"] == "codedeploy:orders/orders-live"
    assert [(a["action"], a["scope"]) for a in doc["actions"]] == [("rollback", "canary"), ("rollback", "full")]
    assert doc["alias_name"] == "orders-api:live" and doc["alias_final"] == {"1": 1.0}
    notes = doc["own_policy"]["notes"]
    assert any(n.startswith("synthesised: alarm orders-5xx-rate on metric AWS/Lambda Errors") for n in notes)
    assert any("runbooks/orders-team" in n for n in doc["notifications"])


def test_a_flag_policy_resolves_with_flag_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = drill(tmp_path, capsys, FLAG_POLICY, "--scenario", "flag")

    assert code == 0 and doc["outcome"] == "resolved"
    assert doc["incident"]["alarm"] == "billing-5xx-drill"  # a name the glob matches, said so
    assert any("billing-5xx-drill" in n and "glob" in n for n in doc["own_policy"]["notes"])
    assert [a["action"] for a in doc["actions"]] == ["flag_off"]


def test_no_change_in_scope_closes_without_action(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = drill(tmp_path, capsys, readme_policy(), "--scenario", "no-change")

    assert code == 0 and doc["outcome"] == "closed_no_action" and doc["actions"] == []


def test_an_unknown_name_is_one_line_listing_the_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = drill(tmp_path, capsys, readme_policy(), "--name", "nope")

    assert code == 2 and doc is None
    assert err.count("\n") == 1 and "no policy named 'nope'; the file has: orders-5xx" in err


def test_a_scenario_the_policy_cannot_express_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = drill(tmp_path, capsys, readme_policy(), "--scenario", "flag")

    assert code == 2 and doc is None
    assert err.count("\n") == 1
    assert "cannot drill flag: its ladder has no flag_off step" in err
    assert "(it can drill: bad-deploy, not-the-deploy, no-change)" in err


def test_an_invalid_file_gets_policy_checks_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, err = drill(tmp_path, capsys, readme_policy().replace("30m", "30 minutes"))

    assert code == 2 and doc is None
    assert "policies[0].trigger.require_change_within: invalid duration '30 minutes'" in err
