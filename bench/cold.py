"""The cold path, measured (bench/README.md, figures 5-8): what an incident feels when every function is cold.

Each function runs from the build output (layers/rollguard/Makefile and functions/Makefile, this machine's wheels) in
a fresh interpreter, with sys.path as the python3.13 runtime sets it and nothing else imported: Init is the import of
its handler module, the first invocation is one call of the handler, against `rollguard sandbox serve --scenario
bad-deploy` (the sandbox as a loopback AWS endpoint, in its own process, so its CPU is not the function's).

The three functions are one real incident's path, in order, in a fresh served world each time: the scenario's bad
deploy injected, the intake given an alarm event for the served alarm (it opens the incident and takes the lock), the
alarm left to reach ALARM in the world, Assess given the input the state machine gives it (the execution's input, read
back from Step Functions), and Act given what the state machine gives it next (the execution input with Assess's
result at the Assess state's ResultPath, both read from statemachines/remediation.asl.json). Act's first invocation
makes the mitigating call (the canary rollback's CreateDeployment) in the bench's process. The intake starts a
one-state execution of its own state machine (a Pass state) rather than the served stack's, whose Lambda tasks run
in-process in the server and would act first.

CPU is time.process_time() of the function's process. Runs are paired and interleaved: each round runs the path with
this tree's build (hash-based .pyc), then the same build with its .pyc removed, then (--baseline REV) REV's build.
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
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "local"))
from fill_env import fill  # noqa: E402

# The functions before the first mitigating call, in order (intake → StartExecution → Assess → Act), and where each
# one's part of the path ends: the intake's at its StartExecution (what it does after does not delay Assess), Assess's
# at its return, Act's at the mitigating call.
CRITICAL_PATH = {
    "intake": "IntakeFunction",
    "assess": "AssessFunction",
    "act": "ActFunction",
}
HANDOFF = {"intake": {"stepfunctions:StartExecution"}, "assess": set[str]()}
# The calls that change what serves traffic: any of them ends Act's part of the path (the bad-deploy world makes the
# first, the canary rollback; the others are the other ladder actions' first calls).
MITIGATING = {
    "codedeploy:CreateDeployment",
    "codedeploy:StopDeployment",
    "codedeploy:ContinueDeployment",
    "appconfig:StartDeployment",
    "appconfig:StopDeployment",
    "ecs:UpdateService",
    "elbv2:ModifyListener",
    "elbv2:ModifyRule",
    "arc-zonal-shift:StartZonalShift",
}
HANDOFF["act"] = MITIGATING
# "At 1,769 MB, a function has the equivalent of one vCPU" (Lambda DG, "Configure Lambda function memory")
VCPU_MB = 1769
SCENARIO = "bad-deploy"
ALARM = "checkout-5xx-rate"  # the scenario's alarm, claimed by policies/sandbox.yaml (the served world's policy)
# The served clock's speed. The alarm reaches ALARM some 30 simulated seconds after the inject: at 4x, about 8 real
# seconds for the bench's intake to open the incident first (the server's own intake then joins it).
SERVE_SPEED = 4

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


@dataclass(frozen=True)
class Build:
    """One build of the layer and the critical-path functions, and the MemorySize its template gives each."""

    label: str
    path: Path
    memory_mb: dict[str, int]


def memory_sizes(template_text: str) -> dict[str, int]:
    """Each critical-path function's MemorySize: its own in the template, else the Globals' (Lambda's default 128)."""
    from rollguard_cli.sandbox.runner import load_template

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as copy:
        copy.write(template_text)
        copy.flush()
        template = load_template(Path(copy.name))
    default = int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    resources = template["Resources"]
    return {
        name: int(resources[logical]["Properties"].get("MemorySize", default))
        for name, logical in CRITICAL_PATH.items()
    }


def build(source: Path, into: Path) -> Path:
    """The layer and the critical-path functions of the tree at ``source``, built by its Makefiles as `sam build`
    runs them (this machine's wheels, so the layer can be imported here)."""
    python_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    env["WHEEL_PLATFORM"] = ""
    targets = [("RollguardLayer", source / "layers" / "rollguard", source / "layers" / "rollguard" / "Makefile")]
    targets += [
        (logical, source / "functions" / name, source / "functions" / "Makefile")
        for name, logical in CRITICAL_PATH.items()
    ]
    for logical, folder, makefile in targets:
        scratch = into.parent / f"scratch-{into.name}" / logical
        shutil.copytree(folder, scratch, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(
            ["make", "--no-print-directory", "--makefile", str(makefile), f"build-{logical}"],
            cwd=scratch,
            env={**env, "ARTIFACTS_DIR": str(into / logical)},
            check=True,
            capture_output=True,
        )
    return into


def builds(into: Path, baseline: str | None) -> list[Build]:
    """This tree's build; the same without its .pyc (what SAM's python3.13 builder shipped); and, given a git revision,
    that revision's build (its layer, functions, packaging and template), for before/after figures from one run."""
    memory = memory_sizes((REPO / "template.yaml").read_text())
    built = build(REPO, into / "pyc")
    bare = into / "no-pyc"
    shutil.copytree(built, bare, ignore=shutil.ignore_patterns("__pycache__"))
    result = [Build("pyc", built, memory), Build("no_pyc", bare, memory)]
    if baseline:
        tree = into / "baseline-src"
        tree.mkdir()
        paths = ["layers/rollguard", "functions", "packaging", "template.yaml"]
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", baseline, *paths], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        memory = memory_sizes((tree / "template.yaml").read_text())
        result.append(Build("baseline", build(tree, into / "baseline"), memory))
    return result


# ------------------------------------------------------------------------------------------------ the sandbox


@contextlib.contextmanager
def sandbox_endpoint() -> Iterator[str]:
    """`rollguard sandbox serve --scenario bad-deploy` on a free loopback port; its URL once it says it serves."""
    command = [sys.executable, "-m", "rollguard_cli.main", "sandbox", "serve", "--scenario", SCENARIO]
    command += ["--port", "0", "--speed", str(SERVE_SPEED)]
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


def operator_client(url: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


HOLD = {
    "Comment": "The bench's stand-in for the remediation state machine: the execution's input is what the intake "
    "started, and nothing runs (the bench runs Assess and Act itself, with the inputs the real ASL gives them).",
    "StartAt": "Hold",
    "States": {"Hold": {"Type": "Pass", "End": True}},
}


def function_environments(url: str) -> dict[str, dict[str, str]]:
    """local/env.json filled from the sandbox's deployed stack, as `sam local invoke --env-vars` would be; the intake
    starts executions of the bench's one-state machine (HOLD) and reads the served world's policy."""
    stack = operator_client(url, "cloudformation").describe_stacks(StackName="rollguard")["Stacks"][0]
    stack["Parameters"] = [
        {"ParameterKey": "PolicyFileName", "ParameterValue": "policy.yaml"},
        {"ParameterKey": "AppConfigStrategyName", "ParameterValue": "Rollguard-Immediate"},
    ]
    wanted = json.loads((REPO / "local" / "env.json").read_text())
    filled = fill({logical: wanted[logical] for logical in CRITICAL_PATH.values()}, stack)
    hold = operator_client(url, "stepfunctions").create_state_machine(
        name="rollguard-bench-hold",
        definition=json.dumps(HOLD),
        roleArn="arn:aws:iam::123456789012:role/rollguard-bench-hold",
    )
    filled["IntakeFunction"]["STATE_MACHINE_ARN"] = hold["stateMachineArn"]
    filled["IntakeFunction"]["POLICY_FILE"] = str(REPO / "policies" / "sandbox.yaml")
    return filled


def alarm_event(now: datetime) -> dict[str, Any]:
    """events/intake/alarm.json (the scenario's alarm going to ALARM) with a fresh id, stamped with the served clock."""
    event: dict[str, Any] = json.loads((REPO / "events" / "intake" / "alarm.json").read_text())
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"
    event["id"] = str(uuid.uuid4())
    event["time"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["detail"]["state"]["timestamp"] = stamp
    if event["detail"]["alarmName"] != ALARM:
        raise RuntimeError(f"events/intake/alarm.json names {event['detail']['alarmName']}, not {ALARM}")
    return event


def wait_for_alarm(url: str, state: str, timeout_s: float = 120.0) -> None:
    cloudwatch = operator_client(url, "cloudwatch")
    deadline = time.monotonic() + timeout_s
    while cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]["StateValue"] != state:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{ALARM} not {state} in the served world after {timeout_s:g} s")
        time.sleep(0.2)


def started_input(url: str, state_machine_arn: str) -> dict[str, Any]:
    """The input of the one execution the intake started."""
    sfn = operator_client(url, "stepfunctions")
    executions = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    if len(executions) != 1:
        raise RuntimeError(f"the intake started {len(executions)} executions, the bench expected 1")
    return dict(json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"]))


# ------------------------------------------------------------------------------------------------ the state machine


def task_state(resource: str) -> dict[str, Any]:
    """The Task state of statemachines/remediation.asl.json that invokes ``resource`` (``${AssessFunctionArn}``)."""
    asl = json.loads((REPO / "statemachines" / "remediation.asl.json").read_text())
    found = [s for s in asl["States"].values() if s.get("Resource") == resource]
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} states invoke {resource}; the bench replays exactly one")
    state: dict[str, Any] = found[0]
    if any(key in state for key in ("InputPath", "Parameters", "ResultSelector", "OutputPath")):
        raise RuntimeError(f"the state invoking {resource} shapes its input or output: the bench does not replay that")
    return state


def after(state: dict[str, Any], state_input: dict[str, Any], result: Any) -> dict[str, Any]:
    """A Task state's output: its input with the result at ResultPath ("$.name"; the ASL's top-level form)."""
    path = state.get("ResultPath", "$")
    if not re.fullmatch(r"\$\.[A-Za-z_]\w*", path):
        raise RuntimeError(f"ResultPath {path}: the bench applies only $.name")
    return {**state_input, path[2:]: result}


# ------------------------------------------------------------------------------------------------ one cold start

# Run with -I -S -B: no site, no PYTHON* variables, nothing written. sys.path as the runtime sets it: the function,
# the layer's python/, the standard library, then boto3's folder (the runtime's own boto3 comes last too). Each AWS
# call is recorded with the invocation's CPU when it returned.
PROBE = r"""
import json, sys, time
function_dir, layer_dir, boto3_dir, event_path, name, memory = sys.argv[1:7]
sys.path[:] = [function_dir, layer_dir, *sys.path, boto3_dir]
t0 = time.process_time()
import app
init = time.process_time() - t0
import botocore.client
calls = []
started = [0.0]
make_api_call = botocore.client.BaseClient._make_api_call
def counting(self, operation, params):
    try:
        return make_api_call(self, operation, params)
    finally:
        cpu = (time.process_time() - started[0]) * 1000
        calls.append((self.meta.service_model.service_name + ":" + operation, cpu))
botocore.client.BaseClient._make_api_call = counting
class Context:
    function_name = name
    memory_limit_in_mb = int(memory)
    function_version = "$LATEST"
    aws_request_id = "bench-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + name
    def get_remaining_time_in_millis(self):
        return 30_000
event = json.load(open(event_path))
def invoke():
    del calls[:]
    started[0] = time.process_time()
    try:
        result, outcome = app.lambda_handler(event, Context()), "ok"
    except Exception as exc:
        result, outcome = None, type(exc).__name__ + ": " + str(exc)[:300]
    return {"cpu": (time.process_time() - started[0]) * 1000, "outcome": outcome, "result": result,
            "calls": list(calls)}
first = invoke()
second = invoke()
print(json.dumps({"init": init * 1000, "first": first, "second": second}))
"""


def cold_start(built: Build, name: str, env: dict[str, str], url: str, event: dict[str, Any]) -> dict[str, Any]:
    """One cold start of ``name`` from ``built``: Init, its first invocation with ``event``, and the same again."""
    import boto3

    logical = CRITICAL_PATH[name]
    boto3_dir = Path(boto3.__file__).resolve().parents[1]
    args = [str(built.path / logical), str(built.path / "RollguardLayer" / "python"), str(boto3_dir)]
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
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(built.memory_mb[name]),
        **env,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as event_file:
        json.dump(event, event_file)
        event_file.flush()
        command = [sys.executable, "-I", "-S", "-B", "-c", PROBE, *args, event_file.name, f"rollguard-{name}"]
        command.append(str(built.memory_mb[name]))
        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    for invocation in (result["first"], result["second"]):
        invocation["path_cpu"], invocation["path_calls"] = until_handoff(name, invocation)
    return result


def until_handoff(name: str, invocation: dict[str, Any]) -> tuple[float, list[str]]:
    """The invocation's CPU and calls up to and including the call that ends its part of the path (HANDOFF), or the
    whole invocation when it makes none (Assess; a retried Act, which finds its step done)."""
    calls: list[str] = []
    for call, cpu in invocation["calls"]:
        calls.append(call)
        if call in HANDOFF[name]:
            return float(cpu), calls
    return float(invocation["cpu"]), calls


def incident_path(built: Build, url: str) -> dict[str, dict[str, Any]]:
    """intake → Assess → Act of one incident in the served world (a fresh one: `url` is used once)."""
    from rollguard_cli.serve import inject, sandbox_now

    envs = function_environments(url)
    inject(url)
    intake = cold_start(built, "intake", envs["IntakeFunction"], url, alarm_event(sandbox_now(url)))
    status = (intake["first"]["result"] or {}).get("status", intake["first"]["outcome"])
    if status != "opened":
        raise RuntimeError(
            f"the bench's intake answered {status!r}, not 'opened': the served alarm fired first (its own intake "
            f"opened the incident); lower SERVE_SPEED ({SERVE_SPEED})"
        )
    execution_input = started_input(url, envs["IntakeFunction"]["STATE_MACHINE_ARN"])
    wait_for_alarm(url, "ALARM")  # what Assess confirms; the served intake joins the bench's incident
    assess_state = task_state("${AssessFunctionArn}")  # the StartAt state: its input is the execution's
    assess = cold_start(built, "assess", envs["AssessFunction"], url, execution_input)
    assessment = assess["first"]["result"]
    if not assessment or assessment.get("decision") != "act" or assessment.get("gate", {}).get("required"):
        raise RuntimeError(f"Assess did not decide an ungated act: {assess['first']['outcome']}; {assessment}")
    task_state("${ActFunctionArn}")  # the Choice's "act" branch; checked to take its input as it comes
    act = cold_start(built, "act", envs["ActFunction"], url, after(assess_state, execution_input, assessment))
    if not MITIGATING & set(act["first"]["path_calls"]):
        raise RuntimeError(f"Act made no mitigating call: {act['first']['outcome']}; {act['first']['calls']}")
    return {"intake": intake, "assess": assess, "act": act}


def bench_cold_path(runs: int, baseline: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rollguard-bench-") as tmp:
        variants = builds(Path(tmp), baseline)
        samples: dict[str, list[dict[str, dict[str, Any]]]] = {b.label: [] for b in variants}
        for _ in range(runs):
            for built in variants:
                with sandbox_endpoint() as url:
                    samples[built.label].append(incident_path(built, url))
    result: dict[str, Any] = {"baseline": baseline, "variants": {}}
    for built in variants:
        runs_of = samples[built.label]
        result["variants"][built.label] = {
            name: summarize([run[name] for run in runs_of], built.memory_mb[name]) for name in CRITICAL_PATH
        }
    for name, pyc in result["variants"]["pyc"].items():
        bare = result["variants"]["no_pyc"][name]
        pyc["bytecode_ratio"] = round(bare["init_cpu_ms"] / max(pyc["init_cpu_ms"], 0.1), 2)
    return result


def summarize(samples: list[dict[str, Any]], memory_mb: int) -> dict[str, Any]:
    def median(values: Iterator[float]) -> float:
        return round(statistics.median(values), 1)

    last = samples[-1]
    return {
        "n": len(samples),
        "memory_mb": memory_mb,
        "init_cpu_ms": median(s["init"] for s in samples),
        "first_invocation_cpu_ms": median(s["first"]["cpu"] for s in samples),
        "first_path_cpu_ms": median(s["first"]["path_cpu"] for s in samples),
        "warm_invocation_cpu_ms": median(s["second"]["cpu"] for s in samples),
        "outcome": last["first"]["outcome"],
        "warm_outcome": last["second"]["outcome"],
        "aws_calls": [call for call, _ in last["first"]["calls"]],
        "path_calls": last["first"]["path_calls"],
    }


# ------------------------------------------------------------------------------------------------ the model

MODEL_NOTE = (
    "Init CPU counts at a full vCPU (DESIGN.md; AWS documents no Init share), invocation CPU at MemorySize/1769 of a "
    "vCPU (Lambda DG, 'Configure Lambda function memory'), each function's MemorySize from its build's template.yaml; "
    "this machine's CPU taken as Graviton's. Each function's part ends at its hand-off: the intake's at "
    "StartExecution, Assess's at its return, Act's at the mitigating call (CPU and calls counted up to it). Warm: a "
    "second invocation with the same input (a retry, answered idempotently: the same parsing and reads, no second "
    "mitigating call), with the first invocation's calls."
)


def latency_model(cold: dict[str, Any], transitions_before_act: int) -> dict[str, Any]:
    """alarm → first mitigating call, as a sum of printed terms: measured CPU (Init at a full vCPU, invocations at
    the memory's share of one) plus the assumed service latencies above."""
    a = {key: value for key, (value, _) in ASSUMED_MS.items()}

    def terms(stack: str) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = [("EventBridge delivery [assumed]", a["eventbridge"])]
        for name in CRITICAL_PATH:
            f = cold[name]
            share = f["memory_mb"] / VCPU_MB
            if stack == "cold":
                out.append((f"{name}: cold start overhead [assumed]", a["cold_start_overhead"]))
                out.append((f"{name}: Init CPU {f['init_cpu_ms']:.0f} ms at 1 vCPU [measured]", f["init_cpu_ms"]))
                cpu = f["first_path_cpu_ms"]
            else:
                cpu = f["warm_invocation_cpu_ms"]
            calls = f["path_calls"]
            if name != "intake":
                out.append((f"{name}: Lambda invoke overhead [assumed]", a["invoke_overhead"]))
            out.append(
                (
                    f"{name}: invocation CPU {cpu:.0f} ms at {f['memory_mb']} MB = {share:.3f} vCPU [measured]",
                    cpu / share,
                )
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
