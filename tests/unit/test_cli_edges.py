"""The CLI's rough edges (issue 12, point 4): every way a command is stopped is one ``error:`` line and exit 2,
never a traceback — no AWS region or credentials, an unreachable endpoint, a bad ``--out``, a closed stdout, a bad
``--limit`` or ``--target`` — and ``--version``, ``--json`` and help on every argument."""

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rollguard import clients
from rollguard_cli import drills
from rollguard_cli.boundary import describe_aws_error
from rollguard_cli.main import build_parser, main

from tests.conftest import EXPECTED_OUTCOMES
from tests.unit.builders import POLICIES

ROOT = Path(__file__).resolve().parents[2]
INCIDENT = "checkout-5xx-20261126T140808Z-16db35"

# Every command that talks to AWS, with the arguments it needs to get that far.
AWS_COMMANDS = [
    ["incidents", "--stack", "rollguard"],
    ["timeline", INCIDENT, "--stack", "rollguard"],
    ["report", INCIDENT, "--stack", "rollguard"],
    ["approve", INCIDENT, "--stack", "rollguard"],
    ["deny", INCIDENT, "--stack", "rollguard"],
    ["pause", "--stack", "rollguard"],
    ["resume", "--stack", "rollguard"],
    ["status", "--stack", "rollguard"],
    ["flags", "list", "--application", "checkout", "--profile", "flags"],
    ["flags", "stale", "--application", "checkout", "--profile", "flags"],
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    assert caught.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """An environment with no AWS configuration at all: no region, no credentials, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    clients.client.cache_clear()
    yield
    clients.client.cache_clear()


def write_drill_folder(folder: Path, notes: int = 0) -> Path:
    """The smallest ``drill --out`` folder the review commands read: an open incident's audit events."""
    folder.mkdir(parents=True, exist_ok=True)
    base = {"incident_id": INCIDENT, "target_key": "codedeploy:checkout/checkout-prod", "result": "ok"}
    events: list[dict[str, Any]] = [
        dict(
            base,
            kind="alarm_received",
            at="2026-11-26T14:08:08.000Z",
            event_key="0",
            parameters={"alarm": "checkout-5xx-rate", "state_timestamp": "2026-11-26T14:08:00.000Z"},
        )
    ]
    events += [
        dict(base, kind="note", at=f"2026-11-26T14:09:00.{i:06d}Z", event_key=f"{i + 1}", summary="x" * 60)
        for i in range(notes)
    ]
    (folder / "audit-events.json").write_text(json.dumps(events), encoding="utf-8")
    return folder


# ---------------------------------------------------------------- 1. no region, no credentials, no endpoint


@pytest.mark.parametrize("argv", AWS_COMMANDS, ids=" ".join)
def test_no_region_is_one_line_naming_how_to_set_it(
    no_aws: None, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert run(capsys, *argv) == (2, "", "error: no AWS region: pass --region or set AWS_REGION/AWS_DEFAULT_REGION\n")


@pytest.mark.parametrize("argv", AWS_COMMANDS, ids=" ".join)
def test_no_credentials_is_one_line_naming_how_to_set_them(
    no_aws: None, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv, "--region", "eu-west-1")
    assert (code, out) == (2, "")
    assert err == (
        "error: no AWS credentials found (botocore NoCredentialsError): configure a profile "
        "(aws configure, aws sso login) or set AWS_PROFILE\n"
    )


def test_an_unknown_profile_is_named(
    no_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")
    assert run(capsys, "status", "--stack", "rollguard", "--region", "eu-west-1") == (
        2,
        "",
        "error: AWS profile 'nope' not found (botocore ProfileNotFound): check AWS_PROFILE\n",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (  # the discard port: nothing listens; a loopback endpoint is a sandbox serve, or was meant to be
            "http://127.0.0.1:9",
            "nothing answers at http://127.0.0.1:9/ (botocore EndpointConnectionError): "
            "is `rollguard sandbox serve` running on that port?",
        ),
        (
            "http://unreachable.invalid:9",
            "cannot reach AWS at http://unreachable.invalid:9/ (botocore EndpointConnectionError): "
            "check the region and the network",
        ),
    ],
)
@pytest.mark.parametrize("by", ["AWS_ENDPOINT_URL", "--endpoint-url"])
def test_an_unreachable_endpoint_is_one_line_naming_it(
    no_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, expected: str, by: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    argv = ["incidents", "--stack", "rollguard", "--region", "eu-west-1"]
    if by == "AWS_ENDPOINT_URL":
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    else:
        argv += ["--endpoint-url", url]
    assert run(capsys, *argv) == (2, "", f"error: {expected}\n")


@pytest.mark.parametrize("argv", AWS_COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("url", "reason"),
    [("127.0.0.1:4599", "not a URL; give one such as http://127.0.0.1:4599"), ("http://h:port", "Port could not")],
)
def test_a_malformed_endpoint_url_is_one_line_naming_it(
    no_aws: None, capsys: pytest.CaptureFixture[str], argv: list[str], url: str, reason: str
) -> None:
    code, out, err = run(capsys, *argv, "--endpoint-url", url)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: --endpoint-url {url!r}: {reason}") and err.count("\n") == 1


def test_a_loopback_endpoint_needs_no_credentials_or_region_and_leaves_the_environment_as_it_was(
    no_aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signed with the sandbox's placeholder keys, so the request reaches the endpoint (nothing listens on the
    discard port) instead of stopping at "no credentials"; and nothing of that stays after the command."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_PROFILE", "my-real-account")
    before = dict(os.environ)
    code, _, err = run(capsys, "pause", "--stack", "rollguard", "--endpoint-url", "http://localhost:9")
    assert code == 2 and err.startswith("error: nothing answers at http://localhost:9/")
    assert dict(os.environ) == before


def client_error(code: str, message: str = "nope", operation: str = "GetItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (client_error("ExpiredToken"), "AWS credentials expired (ExpiredToken on GetItem): refresh them, e.g. aws sso"),
        (client_error("InvalidClientTokenId"), "AWS rejected the credentials (InvalidClientTokenId on GetItem)"),
        (client_error("AccessDeniedException", "not\nallowed"), "AWS refused GetItem: AccessDeniedException: not"),
    ],
)
def test_aws_refusals_say_what_was_refused(error: ClientError, message: str) -> None:
    assert describe_aws_error(error).startswith(message)


# ---------------------------------------------------------------- 2. report --out


def test_report_out_into_missing_folders_creates_them_as_drill_out_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_drill_folder(tmp_path / "drill")
    target = tmp_path / "reports" / "2026" / "postmortem.md"
    code, out, err = run(capsys, "report", INCIDENT, "--from", str(source), "--out", str(target))
    assert (code, out, err) == (0, f"wrote {target}\n", "")
    assert target.read_text(encoding="utf-8").startswith(f"# Postmortem draft: {INCIDENT}")


def test_report_out_onto_an_existing_file_is_refused_and_the_file_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_drill_folder(tmp_path / "drill")
    target = tmp_path / "postmortem.md"
    target.write_text("my edits", encoding="utf-8")
    assert run(capsys, "report", INCIDENT, "--from", str(source), "--out", str(target)) == (
        2,
        "",
        f"error: --out {target}: already exists; remove it or choose another path\n",
    )
    assert target.read_text(encoding="utf-8") == "my edits"


def test_report_out_onto_a_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_drill_folder(tmp_path / "drill")
    assert run(capsys, "report", INCIDENT, "--from", str(source), "--out", str(tmp_path)) == (
        2,
        "",
        f"error: --out {tmp_path}: is a directory; give a file path\n",
    )


def test_report_out_under_a_file_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_drill_folder(tmp_path / "drill")
    (tmp_path / "notes").write_text("", encoding="utf-8")
    target = tmp_path / "notes" / "postmortem.md"
    assert run(capsys, "report", INCIDENT, "--from", str(source), "--out", str(target)) == (
        2,
        "",
        f"error: --out {target}: {tmp_path / 'notes'} is not a directory\n",
    )


# ---------------------------------------------------------------- 3. drill --out


@pytest.fixture
def no_drill(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drill takes seconds: a refused --out must be refused before one runs."""

    def refuse(name: str) -> dict[str, Any]:
        raise AssertionError(f"the drill {name} ran")

    monkeypatch.setattr(drills, "run_drill", refuse)


def test_drill_out_onto_an_existing_file_is_refused_before_the_drill_runs(
    no_drill: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "drill.txt"
    target.write_text("", encoding="utf-8")
    assert run(capsys, "drill", "bad-deploy", "--out", str(target)) == (
        2,
        "",
        f"error: --out {target}: exists and is not a directory\n",
    )


def test_drill_out_under_a_file_is_refused_before_the_drill_runs(
    no_drill: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes").write_text("", encoding="utf-8")
    target = tmp_path / "notes" / "drill"
    assert run(capsys, "drill", "bad-deploy", "--out", str(target)) == (
        2,
        "",
        f"error: --out {target}: {tmp_path / 'notes'} is not a directory\n",
    )


# ---------------------------------------------------------------- 4. stdout closed early


def test_json_piped_into_head_exits_quietly_without_a_traceback(tmp_path: Path) -> None:
    # Far more than a pipe's buffer (64 KiB), so the CLI is still writing when head has gone.
    source = write_drill_folder(tmp_path / "drill", notes=3000)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "cli"), str(ROOT / "layers" / "rollguard")]))
    cli = subprocess.Popen(
        [sys.executable, "-m", "rollguard_cli.main", "timeline", INCIDENT, "--from", str(source), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert cli.stdout is not None and cli.stderr is not None
    head = subprocess.run(["head", "-c", "10"], stdin=cli.stdout, capture_output=True, check=True, timeout=60)
    cli.stdout.close()
    err = cli.stderr.read().decode()
    cli.stderr.close()
    assert cli.wait(timeout=60) == 1
    assert head.stdout == b"[\n  {\n    "
    assert err == ""


# ---------------------------------------------------------------- 5. --limit and --target


@pytest.mark.parametrize("limit", ["0", "-1", "ten"])
def test_limit_must_be_a_positive_whole_number(tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str) -> None:
    source = write_drill_folder(tmp_path / "drill")
    shown = repr(limit) if limit == "ten" else limit
    assert usage_error(capsys, "incidents", "--from", str(source), "--limit", limit) == (
        f"rollguard incidents: error: argument --limit: expected a whole number of at least 1, got {shown}"
    )


@pytest.mark.parametrize(
    "target",
    ["checkout", "codedeploy:checkout", "lambda:checkout/live", "ecs:a/b/c", "elb:", "2222/us-east-1/elb:x"],
)
def test_a_malformed_target_is_refused_with_the_expected_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    source = write_drill_folder(tmp_path / "drill")
    assert usage_error(capsys, "incidents", "--from", str(source), "--target", target) == (
        f"rollguard incidents: error: argument --target: {target!r} is not a target; expected "
        "codedeploy:APPLICATION/GROUP, ecs:CLUSTER/SERVICE, appconfig:APPLICATION/ENVIRONMENT or elb:NAME, "
        "each optionally after ACCOUNT/REGION/ for a target in another account or region"
    )


@pytest.mark.parametrize(
    "target",
    [
        "codedeploy:checkout/checkout-prod",
        "ecs:prod/payments",
        "appconfig:checkout/prod",
        "elb:checkout",
        "222222222222/eu-west-1/codedeploy:checkout/checkout-prod",  # a member account's target
    ],
)
def test_every_target_form_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str) -> None:
    source = write_drill_folder(tmp_path / "drill")
    code, out, _ = run(capsys, "incidents", "--from", str(source), "--target", target, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["target"] for r in rows] == ([target] if target == "codedeploy:checkout/checkout-prod" else [])


# ---------------------------------------------------------------- 6. --version


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"rollguard {version('rollguard')}\n"


# ---------------------------------------------------------------- 7. --json


def test_policy_check_json_is_one_document_with_the_ok_lines_fields(capsys: pytest.CaptureFixture[str]) -> None:
    path = POLICIES / "rollguard.yaml"
    code, out, err = run(capsys, "policy", "check", str(path), "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["files"] == [str(path)] and result["problems"] == [] and result["warnings"] == []
    assert result["policies"][0] == {
        "file": str(path),
        "name": "checkout-5xx",
        "alarms": ["checkout-5xx-rate", "checkout-p99-*"],
        "target": "codedeploy:checkout/checkout-prod",
        "ladder": [
            {"action": "rollback", "describe": "rollback canary", "verify_window_s": 300},
            {"action": "rollback", "describe": "rollback full", "verify_window_s": 300},
        ],
    }


def test_policy_check_json_of_a_bad_file_lists_its_problems_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n", encoding="utf-8")
    code, out, err = run(capsys, "policy", "check", str(path), "--json")
    assert (code, err) == (2, "")
    assert json.loads(out) == {
        "files": [str(path)],
        "policies": [],
        "problems": [
            {"file": str(path), "path": "", "reason": "a policy file is a mapping with 'version' and 'policies'"}
        ],
        "warnings": [],
    }


def test_drill_list_json_names_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "drill", "--list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert {s["name"]: s["expected_outcome"] for s in listed} == EXPECTED_OUTCOMES
    assert all(s["description"] for s in listed)


# status --json needs a stack: tests/functional/test_operator_commands.py


# ---------------------------------------------------------------- 8. help on every argument


def walk(parser: argparse.ArgumentParser, prog: str = "rollguard") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        yield prog, action
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            for name, sub in action.choices.items():
                assert name in helped, f"{prog} {name} has no help"
                yield from walk(sub, f"{prog} {name}")


def test_every_argument_of_every_command_has_help() -> None:
    actions = list(walk(build_parser()))
    assert len(actions) > 60  # the walk reached the subcommands
    missing = [f"{prog}: {action.option_strings or action.dest}" for prog, action in actions if not action.help]
    assert missing == []
