"""The cold path, measured (bench/README.md, figures 5-8): what an incident feels when every function is cold.

Each function runs from the build output (layers/rollguard/Makefile and functions/Makefile, this machine's wheels) in
a fresh interpreter, with sys.path as the python3.13 runtime sets it and nothing else imported: Init is the import of
its handler module, the first invocation is one call of the handler with a sample event from events/<function>/,
against `rollguard sandbox serve` (the sandbox as a loopback AWS endpoint, in its own process, so its CPU is not the
function's). CPU is time.process_time() of the function's process. Runs are paired and interleaved: each round runs
every function with hash-based .pyc, then the same build with its .pyc removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "local"))
from fill_env import fill  # noqa: E402

# The functions before the first mitigating call, in order (intake → StartExecution → Assess → Act), and the event
# each is measured with. Act's sample events are shadow-mode steps, which make no mitigating call: measured enforced.
CRITICAL_PATH = {
    "intake": ("IntakeFunction", "intake/alarm.json"),
    "assess": ("AssessFunction", "assess/incident.json"),
    "act": ("ActFunction", "act/first-step-canary.json"),
}
MEMORY_MB = 256  # template.yaml Globals.Function.MemorySize
VCPU_MB = (
    1769  # "At 1,769 MB, a function has the equivalent of one vCPU" (Lambda DG, "Configure Lambda function memory")
)

# Latencies the bench cannot measure here. None is a documented AWS figure unless cited; each is printed with the model.
ASSUMED_MS = {
    "eventbridge": (500.0, "EventBridge: alarm state change to the rule's Lambda target (AWS documents no figure)"),
    "cold_start_overhead": (
        150.0,
        "Lambda: environment and runtime start before the Init code runs (AWS documents no figure; DESIGN.md "
        "measured 77-91 ms for a python3.13 hello world's whole Init)",
    ),
    "aws_call": (15.0, "one in-region AWS API call over a kept-alive HTTPS connection (assumed)"),
    "tls_per_client": (30.0, "TLS handshake of each client's first call in a cold container (assumed)"),
    "transition": (50.0, "Step Functions Standard: one state transition (AWS documents no figure)"),
    "invoke_overhead": (20.0, "Lambda: a warm synchronous Invoke's own overhead (assumed)"),
}


# ------------------------------------------------------------------------------------------------ the build


def build(into: Path) -> tuple[Path, Path]:
    """The layer and the critical-path functions built by their Makefiles (as `sam build` runs them), and a copy of
    that build without its .pyc (what SAM's python3.13 builder shipped). Returns (with bytecode, without)."""
    python_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    env["WHEEL_PLATFORM"] = ""  # this machine's wheels, so the layer can be imported here
    built = into / "pyc"
    targets = [("RollguardLayer", REPO / "layers" / "rollguard", REPO / "layers" / "rollguard" / "Makefile")]
    targets += [
        (logical, REPO / "functions" / name, REPO / "functions" / "Makefile")
        for name, (logical, _) in CRITICAL_PATH.items()
    ]
    for logical, source, makefile in targets:
        scratch = into / "scratch" / logical
        shutil.copytree(source, scratch, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(
            ["make", "--no-print-directory", "--makefile", str(makefile), f"build-{logical}"],
            cwd=scratch,
            env={**env, "ARTIFACTS_DIR": str(built / logical)},
            check=True,
            capture_output=True,
        )
    bare = into / "no-pyc"
    shutil.copytree(built, bare, ignore=shutil.ignore_patterns("__pycache__"))
    return built, bare


# ------------------------------------------------------------------------------------------------ the sandbox


@contextlib.contextmanager
def sandbox_endpoint() -> Iterator[str]:
    """`rollguard sandbox serve --scenario bad-deploy` on a free loopback port; its URL once it says it serves."""
    command = [
        sys.executable,
        "-m",
        "rollguard_cli.main",
        "sandbox",
        "serve",
        "--scenario",
        "bad-deploy",
        "--port",
        "0",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "cli"), str(REPO / "layers" / "rollguard")])}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        for line in server.stdout:
            found = re.search(r"serving at (http://\S+)", line)
            if found:
                break
        else:
            raise RuntimeError(f"rollguard sandbox serve exited ({server.wait()}) before serving")
        yield found.group(1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def function_environments(url: str) -> dict[str, dict[str, str]]:
    """local/env.json filled from the sandbox's deployed stack, as `sam local invoke --env-vars` would be."""
    import boto3

    cloudformation = boto3.client(
        "cloudformation",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    stack = cloudformation.describe_stacks(StackName="rollguard")["Stacks"][0]
    stack["Parameters"] = [
        {"ParameterKey": "PolicyFileName", "ParameterValue": "policy.yaml"},
        {"ParameterKey": "AppConfigStrategyName", "ParameterValue": "Rollguard-Immediate"},
    ]
    wanted = json.loads((REPO / "local" / "env.json").read_text())
    filled = fill({logical: wanted[logical] for logical, _ in CRITICAL_PATH.values()}, stack)
    filled["IntakeFunction"]["POLICY_FILE"] = str(REPO / "policies" / "sandbox.yaml")  # the serve world's policy
    return filled


# ------------------------------------------------------------------------------------------------ one cold start

# Run with -I -S -B: no site, no PYTHON* variables, nothing written. sys.path as the runtime sets it: the function,
# the layer's python/, the standard library, then boto3's folder (the runtime's own boto3 comes last too).
PROBE = r"""
import json, sys, time
function_dir, layer_dir, boto3_dir, event_path, name = sys.argv[1:6]
sys.path[:] = [function_dir, layer_dir, *sys.path, boto3_dir]
t0 = time.process_time()
import app
init = time.process_time() - t0
import botocore.client
calls = []
make_api_call = botocore.client.BaseClient._make_api_call
def counting(self, operation, params):
    calls.append(self.meta.service_model.service_name + ":" + operation)
    return make_api_call(self, operation, params)
botocore.client.BaseClient._make_api_call = counting
class Context:
    function_name = name
    memory_limit_in_mb = 256
    function_version = "$LATEST"
    aws_request_id = "bench-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + name
    def get_remaining_time_in_millis(self):
        return 30_000
event = json.load(open(event_path))
if name == "rollguard-act":
    event["policy"]["mode"] = "enforce"
def invoke():
    t = time.process_time()
    try:
        app.lambda_handler(event, Context())
        outcome = "ok"
    except Exception as exc:
        outcome = type(exc).__name__
    return (time.process_time() - t), outcome
first, outcome = invoke()
first_calls = list(calls)
second, second_outcome = invoke()
print(json.dumps({"init": init * 1000, "first": first * 1000, "second": second * 1000, "outcome": outcome,
                  "second_outcome": second_outcome, "calls": first_calls, "second_calls": calls[len(first_calls):]}))
"""


def cold_start(build_dir: Path, name: str, env: dict[str, str], url: str) -> dict[str, Any]:
    import boto3

    logical, event = CRITICAL_PATH[name]
    boto3_dir = Path(boto3.__file__).resolve().parents[1]
    args = [str(build_dir / logical), str(build_dir / "RollguardLayer" / "python"), str(boto3_dir)]
    environment = {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "rollguard",
        "POWERTOOLS_METRICS_NAMESPACE": "Rollguard",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "AWS_LAMBDA_FUNCTION_NAME": f"rollguard-{name}",
        **env,
    }
    command = [sys.executable, "-I", "-S", "-B", "-c", PROBE, *args, str(REPO / "events" / event), f"rollguard-{name}"]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_cold_path(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rollguard-bench-") as tmp:
        built, bare = build(Path(tmp))
        with sandbox_endpoint() as url:
            envs = function_environments(url)
            samples: dict[str, dict[str, list[dict[str, Any]]]] = {
                variant: {name: [] for name in CRITICAL_PATH} for variant in ("pyc", "no_pyc")
            }
            for _ in range(runs):
                for name, (logical, _) in CRITICAL_PATH.items():
                    samples["pyc"][name].append(cold_start(built, name, envs[logical], url))
                    samples["no_pyc"][name].append(cold_start(bare, name, envs[logical], url))
    result: dict[str, Any] = {}
    for name in CRITICAL_PATH:
        with_pyc, without = samples["pyc"][name], samples["no_pyc"][name]
        last = with_pyc[-1]
        result[name] = {
            "n": len(with_pyc),
            "init_cpu_ms": round(statistics.median(s["init"] for s in with_pyc), 1),
            "first_invocation_cpu_ms": round(statistics.median(s["first"] for s in with_pyc), 1),
            "warm_invocation_cpu_ms": round(statistics.median(s["second"] for s in with_pyc), 1),
            "init_cpu_ms_without_pyc": round(statistics.median(s["init"] for s in without), 1),
            "first_invocation_cpu_ms_without_pyc": round(statistics.median(s["first"] for s in without), 1),
            "outcome": last["outcome"],
            "warm_outcome": last["second_outcome"],
            "aws_calls": last["calls"],
            "warm_aws_calls": last["second_calls"],
        }
        result[name]["bytecode_ratio"] = round(
            result[name]["init_cpu_ms_without_pyc"] / max(result[name]["init_cpu_ms"], 0.1), 2
        )
    return result


# ------------------------------------------------------------------------------------------------ the model

MODEL_NOTE = (
    "Init CPU counts at a full vCPU (DESIGN.md; AWS documents no Init share), invocation CPU at 256/1769 of a vCPU "
    "(Lambda DG, 'Configure Lambda function memory'); this machine's CPU taken as Graviton's; Act's calls counted up "
    "to the end of its invocation (an upper bound on those before the mitigating call)."
)


def latency_model(cold: dict[str, Any], transitions_before_act: int) -> dict[str, Any]:
    """alarm → first mitigating call, as a sum of printed terms: measured CPU (Init at a full vCPU, invocations at
    the memory's share of one) plus the assumed service latencies above."""
    a = {key: value for key, (value, _) in ASSUMED_MS.items()}
    share = MEMORY_MB / VCPU_MB

    def terms(stack: str) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = [("EventBridge delivery [assumed]", a["eventbridge"])]
        for name in CRITICAL_PATH:
            f = cold[name]
            if stack == "cold":
                out.append((f"{name}: cold start overhead [assumed]", a["cold_start_overhead"]))
                out.append((f"{name}: Init CPU {f['init_cpu_ms']:.0f} ms at 1 vCPU [measured]", f["init_cpu_ms"]))
                cpu, calls = f["first_invocation_cpu_ms"], f["aws_calls"]
            else:
                cpu, calls = f["warm_invocation_cpu_ms"], f["warm_aws_calls"]
            if name != "intake":
                out.append((f"{name}: Lambda invoke overhead [assumed]", a["invoke_overhead"]))
            out.append(
                (f"{name}: invocation CPU {cpu:.0f} ms at {MEMORY_MB} MB = {share:.3f} vCPU [measured]", cpu / share)
            )
            services = {c.split(":")[0] for c in calls}
            out.append(
                (f"{name}: {len(calls)} AWS calls [counted] x {a['aws_call']:.0f} ms", len(calls) * a["aws_call"])
            )
            if stack == "cold":
                out.append((f"{name}: TLS to {len(services)} services [assumed]", len(services) * a["tls_per_client"]))
            if name == "intake":
                out.append(
                    (
                        f"Step Functions: {transitions_before_act} transitions [drill] x {a['transition']:.0f} ms",
                        transitions_before_act * a["transition"],
                    )
                )
        return out

    model = {}
    for stack in ("cold", "warm"):
        t = terms(stack)
        model[stack] = {
            "terms": [(label, round(ms, 1)) for label, ms in t],
            "total_ms": round(sum(ms for _, ms in t), 1),
        }
    return model
