"""The PoliciesLayer ships the operator's own policies and nothing else: never the example (policies/rollguard.yaml),
the drills' policies (policies/sandbox*.yaml) or the tests' policies, and a build without a policy of the operator's
fails with what to do (policies/deploy/Makefile, template.yaml's PoliciesLayer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sam_project import OWN_POLICY, POLICIES, copy_project, sam_cli

DEPLOY = POLICIES / "deploy"
EXAMPLES = sorted(POLICIES.glob("*.y*ml"))


def test_the_layer_is_built_from_the_folder_the_operator_fills(template: dict[str, Any]) -> None:
    layer = template["Resources"]["PoliciesLayer"]
    assert layer["Properties"]["ContentUri"] == "policies/deploy/"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert (DEPLOY / "Makefile").is_file()
    intake = template["Resources"]["RemediationFunction"]["Properties"]  # its intake reads the policy
    assert intake["Environment"]["Variables"]["POLICY_FILE"] == {"Fn::Sub": "/opt/${PolicyFileName}"}


def test_the_policy_file_parameter_names_no_example(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["PolicyFileName"]
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch(parameter["Default"])
    assert parameter["Default"] not in {p.name for p in EXAMPLES}
    assert not pattern.fullmatch("deploy/policy.yaml") and not pattern.fullmatch("../rollguard.yaml")
    assert "policies/deploy/" in parameter["ConstraintDescription"]


def test_the_declared_layer_content_holds_no_example_or_drill_policy() -> None:
    shipped = [p for p in DEPLOY.iterdir() if p.suffix in {".yaml", ".yml"}]
    examples = {p.read_bytes() for p in EXAMPLES}
    assert not [p.name for p in shipped if p.name.startswith("sandbox") or p.read_bytes() in examples]


def make_build(folder: Path, artifacts: Path, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    """What `sam build` does: the folder's copy as the working directory, this repository's Makefile, ARTIFACTS_DIR."""
    return subprocess.run(
        ["make", "--no-print-directory", "--makefile", str(DEPLOY / "Makefile"), "build-PoliciesLayer"],
        cwd=folder,
        env={"PATH": path, "ARTIFACTS_DIR": str(artifacts)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    scratch = tmp_path / "scratch"
    shutil.copytree(DEPLOY, scratch)
    return scratch


def test_a_build_without_a_policy_of_yours_is_refused_saying_what_to_do(folder: Path, tmp_path: Path) -> None:
    built = make_build(folder, tmp_path / "artifacts")

    assert built.returncode != 0
    assert "refusing to build: policies/deploy/ holds no policy of yours" in built.stderr
    assert "Copy policies/rollguard.yaml to policies/deploy/policy.yaml" in built.stderr
    assert "Before your first deploy" in built.stderr
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("example", [p.name for p in EXAMPLES])
def test_an_unedited_copy_of_an_example_is_refused(folder: Path, tmp_path: Path, example: str) -> None:
    shutil.copy(POLICIES / example, folder / "policy.yaml")

    built = make_build(folder, tmp_path / "artifacts")

    assert built.returncode != 0
    assert f"policies/deploy/policy.yaml is an unedited copy of policies/{example}" in built.stderr


def test_a_policy_named_like_a_drills_is_refused(folder: Path, tmp_path: Path) -> None:
    (folder / "sandbox-mine.yaml").write_text(OWN_POLICY)

    built = make_build(folder, tmp_path / "artifacts")

    assert built.returncode != 0 and "named like a drill's policy" in built.stderr


def test_the_built_layer_holds_exactly_your_policy_files(folder: Path, tmp_path: Path) -> None:
    (folder / "policy.yaml").write_text(OWN_POLICY)
    (folder / "payments.yml").write_text(OWN_POLICY.replace("orders-api-5xx", "payments-5xx"))

    built = make_build(folder, tmp_path / "artifacts")

    assert built.returncode == 0, built.stderr
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == ["payments.yml", "policy.yaml"]
    assert (tmp_path / "artifacts" / "policy.yaml").read_text() == OWN_POLICY


def test_a_policy_the_checker_rejects_is_refused_when_the_cli_is_on_path(folder: Path, tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "rollguard").is_file():
        pytest.skip(f"no rollguard CLI next to {sys.executable}")
    (folder / "policy.yaml").write_text("version: 1\npolicies: [{name: mine}]\n")

    built = make_build(folder, tmp_path / "artifacts", path=f"{bin_dir}:/usr/bin:/bin")

    assert built.returncode != 0
    assert "trigger: Field required" in built.stderr and "'rollguard policy check' rejects" in built.stderr


@pytest.mark.slow  # runs sam build, from the tools environment
def test_sam_build_ships_only_your_policy_in_the_layer(tmp_path: Path) -> None:
    """The real `sam build` of the layer, on a copy of the repository's template and policies/ with one own policy."""
    project = copy_project(tmp_path / "project")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}

    def build() -> subprocess.CompletedProcess[str]:
        command = [str(sam_cli()), "build", "PoliciesLayer", "--build-dir", str(tmp_path / "build")]
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)

    built = build()
    assert built.returncode == 0, built.stdout + built.stderr
    assert sorted(p.name for p in (tmp_path / "build" / "PoliciesLayer").iterdir()) == ["policy.yaml"]

    (project / "policies" / "deploy" / "policy.yaml").unlink()
    refused = build()
    assert refused.returncode != 0
    assert "holds no policy of yours" in refused.stdout + refused.stderr
