"""A mainstream IaC security scanner (checkov, pinned in the Makefile) over template.yaml and member-account.yaml.

checkov reads the SAM template as CloudFormation: it has checks for AWS::Serverless::Function, but it does not
expand the transform, so it never sees the roles, rules and the AWS::StepFunctions::StateMachine SAM generates,
nor Globals. So it scans two documents: template.yaml as written, and the template after the SAM transform
(sam_transform.py, run in the tools environment), which is what CloudFormation deploys. SAM carries each
resource's Metadata over, so one inline suppression covers both.

Every finding is fixed in the template or suppressed there with checkov's own mechanism and a written reason:

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_117
            comment: "why this check does not apply here"

A copy of both documents with those suppressions removed is scanned in the same run, so a suppression whose
check would pass anyway fails the test: exceptions do not outlive their reason.

member-account.yaml (plain CloudFormation: nothing to transform) is scanned in the same run under the same rules, and
so is its own unsuppressed copy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from iam import MEMBER_TEMPLATE_PATH, REPO_ROOT, TEMPLATE_PATH, load_template

pytestmark = pytest.mark.slow  # runs checkov and the SAM transform, from their own environments

MAKEFILE = REPO_ROOT / "Makefile"
MIN_REASON = 20


def _checkov_bin() -> Path:
    configured = os.environ.get("ROLLGUARD_CHECKOV_BIN")
    directory = Path(configured) if configured else REPO_ROOT / ".venv-checkov" / "bin"
    checkov = directory / "checkov"
    if not checkov.is_file():
        if configured:  # make test says where it is: missing there is an error, not a skip
            pytest.fail(f"ROLLGUARD_CHECKOV_BIN={configured} has no checkov")
        pytest.skip("checkov not found: run `make test` (it builds .venv-checkov) or set ROLLGUARD_CHECKOV_BIN")
    return checkov


def _tools_python() -> Path:
    directory = Path(os.environ.get("ROLLGUARD_TOOLS_BIN", REPO_ROOT / ".venv-tools" / "bin"))
    python = directory / "python"
    if not python.is_file():
        pytest.skip(f"no tools environment at {directory} for the SAM transform: run `make test`")
    return python


def pinned_checkov_version() -> str:
    match = re.search(r"^CHECKOV_VERSION := (\S+)$", MAKEFILE.read_text(encoding="utf-8"), re.M)
    assert match, "Makefile pins no CHECKOV_VERSION"
    return match.group(1)


def _without_checkov_suppressions(template: dict[str, Any]) -> dict[str, Any]:
    stripped = json.loads(json.dumps(template))
    for resource in stripped.get("Resources", {}).values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            metadata.pop("checkov", None)
    return stripped


def _resource_id(check: dict[str, Any]) -> str:
    """checkov names resources Type.LogicalId; the logical id is what both documents share."""
    return str(check["resource"]).rsplit(".", 1)[-1]


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One checkov run over the six documents; results by document name."""
    checkov, python = _checkov_bin(), _tools_python()
    work = tmp_path_factory.mktemp("iac-scan")
    transformed_text = subprocess.run(
        [str(python), str(REPO_ROOT / "tests" / "template" / "sam_transform.py"), str(TEMPLATE_PATH)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    transformed = json.loads(transformed_text)
    documents = {
        "template.yaml": TEMPLATE_PATH,
        "transformed": work / "transformed.json",
        "template.yaml, unsuppressed": work / "template-unsuppressed.json",
        "transformed, unsuppressed": work / "transformed-unsuppressed.json",
        "member-account.yaml": MEMBER_TEMPLATE_PATH,
        "member-account.yaml, unsuppressed": work / "member-account-unsuppressed.json",
    }
    documents["transformed"].write_text(json.dumps(transformed), encoding="utf-8")
    documents["template.yaml, unsuppressed"].write_text(
        json.dumps(_without_checkov_suppressions(load_template())), encoding="utf-8"
    )
    documents["transformed, unsuppressed"].write_text(
        json.dumps(_without_checkov_suppressions(transformed)), encoding="utf-8"
    )
    documents["member-account.yaml, unsuppressed"].write_text(
        json.dumps(_without_checkov_suppressions(load_template(MEMBER_TEMPLATE_PATH))), encoding="utf-8"
    )
    args = [str(checkov), "--framework", "cloudformation", "--output", "json", "--skip-download"]
    for path in documents.values():
        args += ["--file", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=work)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: some check failed, which the tests report
    report = json.loads(result.stdout)
    assert isinstance(report, dict), f"expected one cloudformation report, got {type(report)}"
    by_file: dict[str, dict[str, Any]] = {
        name: {"failed": [], "skipped": [], "passed": [], "path": path} for name, path in documents.items()
    }
    names = {path.name: name for name, path in documents.items()}
    for kind in ("failed", "skipped", "passed"):
        for check in report["results"][f"{kind}_checks"]:
            by_file[names[Path(check["file_path"]).name]][kind].append(check)
    by_file["summary"] = report["summary"]
    return by_file


def test_checkov_is_the_pinned_version(scan: dict[str, Any]) -> None:
    assert scan["summary"]["checkov_version"] == pinned_checkov_version()
    assert scan["summary"]["parsing_errors"] == 0


# The documents as deployed; each also has an unsuppressed copy in the scan.
SCANNED = ["template.yaml", "transformed", "member-account.yaml"]


@pytest.mark.parametrize("document", SCANNED)
def test_no_failed_checks(scan: dict[str, Any], document: str) -> None:
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in scan[document]["failed"]]
    assert not failed, (
        f"checkov findings in {document}:\n  "
        + "\n  ".join(failed)
        + "\nFix the resource, or add to its Metadata: checkov: skip: [{id: CKV_..., comment: why}]"
    )


def test_every_resource_is_scanned(scan: dict[str, Any]) -> None:
    """checkov saw every resource (a parse problem would silently shrink the scan)."""
    for document, source in (("template.yaml", load_template()), ("transformed", None)):
        checks = scan[document]["failed"] + scan[document]["skipped"] + scan[document]["passed"]
        scanned = {_resource_id(c) for c in checks}
        if source is not None:
            # The types checkov has checks for, as written in template.yaml.
            expected = {
                logical_id
                for logical_id, r in source["Resources"].items()
                if r["Type"]
                in {
                    "AWS::Serverless::Function",
                    "AWS::Logs::LogGroup",
                    "AWS::DynamoDB::Table",
                    "AWS::SQS::Queue",
                    "AWS::SNS::Topic",
                }
            }
            assert expected <= scanned, sorted(expected - scanned)
    transformed_roles = {_resource_id(c) for c in scan["transformed"]["passed"] if "AWS::IAM::Role" in c["resource"]}
    assert "RemediationFunctionRole" in transformed_roles and "RemediationStateMachineRole" in transformed_roles
    member = scan["member-account.yaml"]
    member_roles = {_resource_id(c) for c in member["failed"] + member["skipped"] + member["passed"]}
    assert {"ForwardingRole", "ExecutionRole"} <= member_roles


@pytest.mark.parametrize("document", SCANNED)
def test_every_suppression_has_a_reason(scan: dict[str, Any], document: str) -> None:
    for check in scan[document]["skipped"]:
        comment = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(comment.strip()) >= MIN_REASON, f"{check['check_id']} on {check['resource']}: no written reason"


@pytest.mark.parametrize("document", SCANNED)
def test_no_suppression_is_stale(scan: dict[str, Any], document: str) -> None:
    would_fail = {(c["check_id"], _resource_id(c)) for c in scan[f"{document}, unsuppressed"]["failed"]}
    stale = sorted(
        f"{c['check_id']} on {_resource_id(c)}"
        for c in scan[document]["skipped"]
        if (c["check_id"], _resource_id(c)) not in would_fail
    )
    assert not stale, f"{document}: checkov suppressions for checks that pass anyway, delete them: {stale}"
