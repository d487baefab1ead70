"""The operator CLI: `rollguard policy check` and `rollguard drill --list`, called in-process."""

from pathlib import Path

import pytest
from rollguard.policy import load_policy_file
from rollguard_cli.main import main

from tests.conftest import EXPECTED_OUTCOMES
from tests.unit.builders import POLICIES, as_yaml, document, policy_dict


def lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.fixture
def bad_policy_file(tmp_path: Path) -> Path:
    policy = policy_dict()
    policy["ladder"][0]["action"] = "restart"
    del policy["target"]
    path = tmp_path / "bad.yaml"
    path.write_text(as_yaml(document(policy)), encoding="utf-8")
    return path


def test_policy_check_of_the_shipped_policy_prints_one_ok_line_per_policy(capsys: pytest.CaptureFixture[str]) -> None:
    path = POLICIES / "rollguard.yaml"
    assert main(["policy", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert lines(out) == [
        f"ok: {path}: checkout-5xx: alarms checkout-5xx-rate, checkout-p99-* → codedeploy:checkout/checkout-prod: "
        "rollback canary (300s) → rollback full (300s)",
        f"ok: {path}: payments-errors: alarms payments-api-5xx → codedeploy:payments/payments-ecs-prod: "
        "rollback canary (300s) → rollback full (600s)",
    ]


def test_policy_check_of_the_sandbox_policy_prints_one_ok_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = POLICIES / "sandbox.yaml"
    assert main(["policy", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert len(lines(out)) == 1
    assert lines(out)[0].startswith(f"ok: {path}: checkout-5xx: alarms checkout-5xx-rate → ")


def test_policy_check_of_the_policies_directory_checks_every_yaml_file(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(POLICIES.glob("*.y*ml"))
    assert {f.name for f in files} >= {"rollguard.yaml", "sandbox.yaml"}
    assert main(["policy", "check", str(POLICIES)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    expected = [(str(f), p.name) for f in files for p in load_policy_file(f).policies]
    printed = [tuple(line.split(": ")[1:3]) for line in lines(out)]
    assert all(line.startswith("ok: ") for line in lines(out))
    assert printed == expected


def test_policy_check_of_a_bad_file_exits_2_with_one_error_line_per_problem(
    bad_policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "check", str(bad_policy_file)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert sorted(lines(err)) == [
        f"error: {bad_policy_file}: policies[0].ladder[0]: unknown action 'restart' "
        "(known: rollback, flag_off, flag_on, config_revert, revert_recent_change, shift_traffic, zonal_shift)",
        f"error: {bad_policy_file}: policies[0].target: Field required",
    ]


def test_policy_check_reports_a_root_problem_as_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    assert main(["policy", "check", str(path)]) == 2
    assert lines(capsys.readouterr().err) == [
        f"error: {path}: <root>: a policy file is a mapping with 'version' and 'policies'"
    ]


def test_policy_check_keeps_checking_after_a_bad_file_and_still_exits_2(
    bad_policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = POLICIES / "sandbox.yaml"
    assert main(["policy", "check", str(bad_policy_file), str(good)]) == 2
    out, err = capsys.readouterr()
    assert lines(out) and all(line.startswith(f"ok: {good}: ") for line in lines(out))
    assert err and all(line.startswith(f"error: {bad_policy_file}: ") for line in lines(err))


def test_policy_check_of_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.yaml"
    assert main(["policy", "check", str(path)]) == 2
    assert lines(capsys.readouterr().err) == [f"error: {path}: <root>: cannot read: No such file or directory"]


def test_policy_check_of_a_directory_without_policies_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "check", str(tmp_path)]) == 2
    assert "no policy files found" in capsys.readouterr().err


def test_policy_check_of_a_non_utf8_file_exits_2_with_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\n")
    assert main(["policy", "check", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: ")


def test_policy_check_without_a_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["policy", "check"])
    assert caught.value.code == 2
    assert "PATH" in capsys.readouterr().err


def test_drill_list_names_every_scenario_with_its_expected_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "--list"]) == 0
    listed = {line.split()[0]: line.split()[2] for line in lines(capsys.readouterr().out)}
    assert listed == EXPECTED_OUTCOMES


def test_drill_without_a_scenario_lists_them_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill"]) == 2
    assert "bad-deploy" in capsys.readouterr().out


def test_drill_of_an_unknown_scenario_exits_2_naming_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "meteor-strike"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "unknown scenario 'meteor-strike'" in err
    assert "bad-deploy, not-the-deploy, no-recent-deploy" in err
