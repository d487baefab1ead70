"""The build ships bytecode Lambda uses: `sam build` leaves a hash-based .pyc (PEP 552, checked-hash) next to every
module of the RollguardLayer and of every function, and importing each handler from the build output compiles nothing
from source (packaging/bytecode.mk: why a timestamp-based .pyc, or none, means compiling at every cold start)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from iam import REPO_ROOT, resources_of_type
from sam_project import copy_project, sam_cli

FLAG_HASH_BASED = 0b01  # PEP 552: the .pyc's flags word
FLAG_CHECK_SOURCE = 0b10

# Run in a fresh interpreter with -I -S -B (no site, no PYTHON* variables, no bytecode written): sys.path as the
# python3.13 runtime sets it (the function's folder, then the layer's python/), then the standard library, then where
# boto3 is (the runtime's own boto3 stands last too). Records every module SourceFileLoader compiles from source.
PROBE = r"""
import importlib.machinery, json, sys
function_dir, layer_dir, boto3_dir = sys.argv[1:4]
sys.path[:] = [function_dir, layer_dir, *sys.path, boto3_dir]
compiled = []
source_to_code = importlib.machinery.SourceFileLoader.source_to_code
def recording(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return source_to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = recording
import app
modules = {
    name: {"origin": getattr(m.__spec__, "origin", None), "cached": getattr(m.__spec__, "cached", None)}
    for name, m in list(sys.modules.items()) if getattr(m, "__spec__", None) is not None
}
print(json.dumps({"compiled": compiled, "modules": modules, "handler": callable(getattr(app, "lambda_handler", None))}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` of a copy of the repository (with a policy of "yours", as the PoliciesLayer demands), with this
    machine's wheels (WHEEL_PLATFORM empty) so that the built layer can be imported here; the bytecode is the same."""
    sam = sam_cli()
    tmp = tmp_path_factory.mktemp("bytecode")
    project = copy_project(tmp / "project", "functions", "layers", "packaging")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "WHEEL_PLATFORM": "",
    }
    build_dir = tmp / "build"
    done = subprocess.run(
        [str(sam), "build", "--build-dir", str(build_dir)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return build_dir


def functions(template: dict[str, Any]) -> list[str]:
    return sorted(resources_of_type(template, "AWS::Serverless::Function"))


def test_the_layer_and_every_function_are_built_by_the_bytecode_makefiles(template: dict[str, Any]) -> None:
    assert template["Resources"]["RollguardLayer"]["Metadata"] == {
        "BuildMethod": "makefile",
        "BuildArchitecture": "arm64",
    }
    for logical_id in functions(template):
        metadata = template["Resources"][logical_id]["Metadata"]
        assert (metadata["BuildMethod"], metadata["ContextPath"]) == ("makefile", "functions"), logical_id
    # The layer's wheels are the template's architecture unless a test asks for this machine's.
    assert "WHEEL_PLATFORM ?= manylinux2014_aarch64" in (REPO_ROOT / "layers" / "rollguard" / "Makefile").read_text()
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]


def pyc_header(pyc: Path) -> tuple[bytes, int, bytes]:
    data = pyc.read_bytes()[:16]
    return data[:4], int.from_bytes(data[4:8], "little"), data[8:16]


@pytest.mark.slow  # runs sam build, from the tools environment
def test_every_module_built_has_a_checked_hash_pyc_of_its_source(built: Path, template: dict[str, Any]) -> None:
    assert sorted(p.name for p in built.iterdir() if p.is_dir()) == sorted(
        [*functions(template), "PoliciesLayer", "RollguardLayer"]
    )
    sources = sorted(built.rglob("*.py"))
    assert len([s for s in sources if "RollguardLayer" in s.parts]) > 400  # rollguard, pydantic, Powertools, PyYAML
    wrong = []
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        if not pyc.is_file():
            wrong.append(f"{source.relative_to(built)}: no .pyc")
            continue
        magic, flags, source_hash = pyc_header(pyc)
        if magic != importlib.util.MAGIC_NUMBER or flags != FLAG_HASH_BASED | FLAG_CHECK_SOURCE:
            wrong.append(f"{source.relative_to(built)}: magic {magic!r}, flags {flags:#b} (not a checked-hash .pyc)")
        elif source_hash != importlib.util.source_hash(source.read_bytes()):
            wrong.append(f"{source.relative_to(built)}: the .pyc is not of this source")
    assert not wrong, "\n".join(wrong[:20])
    assert not list((built / "RollguardLayer" / "python").glob("bin")), "the dependencies' scripts are not shipped"


@pytest.mark.slow  # runs sam build, from the tools environment
def test_the_layer_ships_libyaml_so_the_intake_parses_its_policy_in_c(built: Path) -> None:
    """The intake reads its policy during Init with PyYAML's CSafeLoader when PyYAML has libyaml (rollguard.policy):
    about 1 ms for policies/sandbox.yaml, read and validated, against some 3 ms for the pure-Python parser alone. A
    layer whose PyYAML lacks the extension would fall back silently."""
    assert list((built / "RollguardLayer" / "python" / "yaml").glob("_yaml.*.so")), "PyYAML without libyaml"


@pytest.mark.slow  # runs sam build, from the tools environment
def test_importing_every_handler_from_the_build_compiles_nothing_from_source(
    built: Path, template: dict[str, Any]
) -> None:
    import boto3

    layer = built / "RollguardLayer" / "python"
    boto3_dir = Path(boto3.__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "1"}
    for logical_id in functions(template):
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-c", PROBE, str(built / logical_id), str(layer), str(boto3_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{logical_id}: {done.stderr}"
        report = json.loads(done.stdout)
        assert report["handler"], f"{logical_id}: app.lambda_handler"
        from_build = {name: m for name, m in report["modules"].items() if str(m["origin"]).startswith(str(built))}
        assert "app" in from_build and "rollguard" in from_build and "pydantic" in from_build, logical_id
        assert [p for p in report["compiled"] if p.startswith(str(built))] == [], f"{logical_id} compiled from source"
        assert all(
            m["cached"] and Path(m["cached"]).is_file() for m in from_build.values() if m["origin"].endswith(".py")
        )
        # Nothing the layer ships was taken from this machine's environment instead.
        shipped = {p.name.removesuffix(".py") for p in layer.iterdir() if not p.name.endswith(".dist-info")}
        elsewhere = [n for n, m in report["modules"].items() if n.split(".")[0] in shipped and n not in from_build]
        assert not [n for n in elsewhere if report["modules"][n]["origin"] not in (None, "built-in", "frozen")], (
            logical_id,
            elsewhere,
        )
