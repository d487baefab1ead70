"""A copy of the repository that `sam build` accepts (the PoliciesLayer demands a policy of "yours"), and the sam CLI
of the tools environment: shared by the tests that run the real build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from iam import REPO_ROOT

POLICIES = REPO_ROOT / "policies"
# An edited policy: the example with an alarm of "yours".
OWN_POLICY = (POLICIES / "rollguard.yaml").read_text().replace("checkout-5xx-rate", "orders-api-5xx")


def sam_cli() -> Path:
    tools_bin = Path(os.environ.get("ROLLGUARD_TOOLS_BIN", REPO_ROOT / ".venv-tools" / "bin"))
    if not (tools_bin / "sam").is_file():
        pytest.skip(f"no sam in {tools_bin}: create .venv-tools (the Makefile does) or set ROLLGUARD_TOOLS_BIN")
    return tools_bin / "sam"


def copy_project(project: Path, *folders: str) -> Path:
    """template.yaml, policies/ with OWN_POLICY in policies/deploy/, and the given folders, without bytecode caches."""
    project.mkdir()
    shutil.copy(REPO_ROOT / "template.yaml", project)
    skip = shutil.ignore_patterns("__pycache__")
    for folder in ("policies", *folders):
        shutil.copytree(REPO_ROOT / folder, project / folder, ignore=skip)
    (project / "policies" / "deploy" / "policy.yaml").write_text(OWN_POLICY)
    return project
