"""The cold path, measured (bench/README.md, figures 5-8): what an incident feels when every function is cold.

Each function runs from the build output (layers/rollguard/Makefile and functions/Makefile, this machine's wheels) in
a fresh interpreter, with sys.path as the python3.13 runtime sets it and nothing else imported: Init is the import of
its handler module, the first invocation is one call of the handler, against `rollguard sandbox serve --scenario
bad-deploy` (the sandbox as a loopback AWS endpoint, in its own process, so its CPU is not the function's).

The three tasks are one real incident's path, in order, in a fresh served world each time: the scenario's bad deploy
injected, the intake given an alarm event for the served alarm (it opens the incident and takes the lock), the alarm
left to reach ALARM in the world, the Assess task given the input the state machine gives it (the execution's input,
read back from Step Functions), and the Act task given what the state machine gives it next (Assess's result at its
ResultPath). Which function serves each task, and the payload it gets (Parameters), come from the build's own
template.yaml and statemachines/remediation.asl.json, so a baseline build with other functions is replayed as it
was: a function serving two tasks (the Remediation function) runs both in one process, one cold start, as Lambda
runs them in the environment the first left idle. Act's first invocation makes the mitigating call (the canary
rollback's CreateDeployment) in the bench's process. The intake starts a one-state execution of its own state machine
(a Pass state) rather than the served stack's, whose Lambda tasks run in-process in the server and would act first.

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
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "local"))
from fill_env import fill  # noqa: E402

# The tasks before the first mitigating call, in order (intake → StartExecution → Assess → Act), and where each one's
# part of the path ends: the intake's at its StartExecution (what it does after does not delay Assess), Assess's at its
# return, Act's at the mitigating call.
TASKS = ("intake", "assess", "act")
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
class Task:
    """One task of the critical path: the function serving it and the state machine state invoking it (none for the
    intake, which EventBridge invokes)."""

    name: str
    function: str  # its logical id in the build's template.yaml
    state: dict[str, Any] | None


@dataclass(frozen=True)
class Build:
    """One build of the layer and the critical-path functions: the tasks as its template and ASL wire them, the
    MemorySize its template gives each function, and its local/env.json."""

    label: str
    path: Path
    tasks: list[Task]
    memory_mb: dict[str, int]  # logical id → MemorySize
    env: dict[str, dict[str, str]]  # logical id → the variables local/env.json names


def critical_path(tree: Path, template: dict[str, Any]) -> list[Task]:
    """intake, Assess, Act as ``tree`` (its ``template``) wires them: the StartAt state is Assess, and the state its
    Choice takes for an ungated ``act`` is Act; each state's function is its Resource's DefinitionSubstitution
    (``!GetAtt X.Arn``)."""
    substitutions = template["Resources"]["RemediationStateMachine"]["Properties"]["DefinitionSubstitutions"]
    asl = json.loads((tree / "statemachines" / "remediation.asl.json").read_text())

    def function_of(state: dict[str, Any]) -> str:
        key = re.fullmatch(r"\$\{(\w+)\}", state["Resource"])
        if key is None or "GetAtt" not in substitutions.get(key.group(1), {}):
            raise RuntimeError(
                f"the bench reads a Task's function from ${{X}} = !GetAtt X.Arn, not {state['Resource']}"
            )
        return str(substitutions[key.group(1)]["GetAtt"]).split(".")[0]

    assess = asl["States"][asl["StartAt"]]
    choice = asl["States"][assess["Next"]]
    [act_name] = [
        c["Next"]
        for c in choice["Choices"]
        if c.get("Variable") == "$.assessment.decision" and c.get("StringEquals") == "act"
    ]
    act = asl["States"][act_name]
    return [
        Task("intake", intake_function(template), None),
        Task("assess", function_of(assess), assess),
        Task("act", function_of(act), act),
    ]


def intake_function(template: dict[str, Any]) -> str:
    """The function the alarm rule invokes: the one whose EventBridge rule matches CloudWatch alarm state changes
    (IntakeFunction before it and Assess and Act became one function, RemediationFunction since)."""
    [logical] = [
        logical
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "EventBridgeRule"
        and event["Properties"]["Pattern"].get("detail-type") == ["CloudWatch Alarm State Change"]
    ]
    return str(logical)


def functions_of(tasks: list[Task]) -> list[str]:
    """The critical path's functions in the order an incident meets them, each once."""
    return list(dict.fromkeys(t.function for t in tasks))


def memory_sizes(template: dict[str, Any], functions: list[str]) -> dict[str, int]:
    """Each function's MemorySize: its own in the template, else the Globals' (Lambda's default 128)."""
    default = int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    resources = template["Resources"]
    return {logical: int(resources[logical]["Properties"].get("MemorySize", default)) for logical in functions}


def build(source: Path, template: dict[str, Any], into: Path, functions: list[str]) -> Path:
    """The layer and ``functions`` of the tree at ``source`` (its ``template``), built by its Makefiles as `sam build`
    runs them (this machine's wheels, so the layer can be imported here)."""
    python_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{python_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    env["WHEEL_PLATFORM"] = ""
    resources = template["Resources"]
    targets = [("RollguardLayer", source / "layers" / "rollguard", source / "layers" / "rollguard" / "Makefile")]
    targets += [
        (logical, source / resources[logical]["Properties"]["CodeUri"], source / "functions" / "Makefile")
        for logical in functions
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


def tree_build(label: str, tree: Path, into: Path) -> Build:
    from rollguard_cli.sandbox.runner import load_template

    template = load_template(tree / "template.yaml")  # read once: the tasks, memory sizes and code folders are in it
    tasks = critical_path(tree, template)
    functions = functions_of(tasks)
    env = json.loads((tree / "local" / "env.json").read_text())
    built = build(tree, template, into, functions)
    return Build(label, built, tasks, memory_sizes(template, functions), {f: env[f] for f in functions})


def builds(into: Path, baseline: str | None) -> list[Build]:
    """This tree's build; the same without its .pyc (what SAM's python3.13 builder shipped); and, given a git revision,
    that revision's build (its layer, functions, packaging, template, ASL and env.json), for before/after figures
    from one run."""
    built = tree_build("pyc", REPO, into / "pyc")
    bare = into / "no-pyc"
    shutil.copytree(built.path, bare, ignore=shutil.ignore_patterns("__pycache__"))
    result = [built, replace(built, label="no_pyc", path=bare)]
    if baseline:
        tree = into / "baseline-src"
        tree.mkdir()
        paths = ["layers/rollguard", "functions", "packaging", "template.yaml", "statemachines", "local/env.json"]
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", baseline, *paths], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        result.append(tree_build("baseline", tree, into / "baseline"))
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


def function_environments(url: str, built: Build) -> dict[str, dict[str, str]]:
    """local/env.json filled from the sandbox's deployed stack, as `sam local invoke --env-vars` would be; the intake
    starts executions of the bench's one-state machine (HOLD) and reads the served world's policy."""
    stack = operator_client(url, "cloudformation").describe_stacks(StackName="rollguard")["Stacks"][0]
    stack["Parameters"] = [
        {"ParameterKey": "PolicyFileName", "ParameterValue": "policy.yaml"},
        {"ParameterKey": "AppConfigStrategyName", "ParameterValue": "Rollguard-Immediate"},
    ]
    filled = fill(built.env, stack)
    hold = operator_client(url, "stepfunctions").create_state_machine(
        name="rollguard-bench-hold",
        definition=json.dumps(HOLD),
        roleArn="arn:aws:iam::123456789012:role/rollguard-bench-hold",
    )
    intake = built.tasks[0].function
    filled[intake]["STATE_MACHINE_ARN"] = hold["stateMachineArn"]
    filled[intake]["POLICY_FILE"] = str(REPO / "policies" / "sandbox.yaml")
    return filled


def alarm_event(now: datetime) -> dict[str, Any]:
    """events/remediation/intake/alarm.json (the scenario's alarm going to ALARM) with a fresh id, stamped with the
    served clock."""
    event: dict[str, Any] = json.loads((REPO / "events" / "remediation" / "intake" / "alarm.json").read_text())
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"
    event["id"] = str(uuid.uuid4())
    event["time"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["detail"]["state"]["timestamp"] = stamp
    if event["detail"]["alarmName"] != ALARM:
        raise RuntimeError(f"events/remediation/intake/alarm.json names {event['detail']['alarmName']}, not {ALARM}")
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


def task_input(state: dict[str, Any], state_input: dict[str, Any]) -> dict[str, Any]:
    """What a Task state passes its function: its input, or its Parameters with each ``key.$`` path ("$" or "$.name")
    read from the input. The bench replays only these forms and says so of any other."""
    if any(key in state for key in ("InputPath", "ResultSelector", "OutputPath")):
        raise RuntimeError("the state shapes its input or output beyond Parameters: the bench does not replay that")
    parameters = state.get("Parameters")
    if parameters is None:
        return state_input
    payload: dict[str, Any] = {}
    for key, value in parameters.items():
        if not key.endswith(".$"):
            if isinstance(value, (dict, list)):
                raise RuntimeError(f"Parameters.{key}: the bench replays only flat Parameters")
            payload[key] = value
        elif value == "$":
            payload[key[:-2]] = state_input
        elif re.fullmatch(r"\$\.[A-Za-z_]\w*", value):
            payload[key[:-2]] = state_input[value[2:]]
        else:
            raise RuntimeError(f"Parameters.{key} = {value}: the bench reads only $ and $.name")
    return payload


def after(state: dict[str, Any], state_input: dict[str, Any], result: Any) -> dict[str, Any]:
    """A Task state's output: its input with the result at ResultPath ("$.name"; the ASL's top-level form)."""
    path = state.get("ResultPath", "$")
    if not re.fullmatch(r"\$\.[A-Za-z_]\w*", path):
        raise RuntimeError(f"ResultPath {path}: the bench applies only $.name")
    return {**state_input, path[2:]: result}


# ------------------------------------------------------------------------------------------------ one cold start

# Run with -I -S -B: no site, no PYTHON* variables, nothing written. sys.path as the runtime sets it: the function,
# the layer's python/, the standard library, then boto3's folder (the runtime's own boto3 comes last too). Init is
# timed and printed; then each line read from stdin is an event, invoked twice (the second is a retry of the same
# input), and answered on one line of stdout; what the function itself prints (its logs, its EMF metrics) goes to
# stderr. Each AWS call is recorded with the invocation's CPU when it returned.
PROBE = r"""
import json, sys, time
function_dir, layer_dir, boto3_dir, name, memory = sys.argv[1:6]
sys.path[:] = [function_dir, layer_dir, *sys.path, boto3_dir]
answers, sys.stdout = sys.stdout, sys.stderr
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
def invoke(event):
    del calls[:]
    started[0] = time.process_time()
    try:
        result, outcome = app.lambda_handler(event, Context()), "ok"
    except Exception as exc:
        result, outcome = None, type(exc).__name__ + ": " + str(exc)[:300]
    return {"cpu": (time.process_time() - started[0]) * 1000, "outcome": outcome, "result": result,
            "calls": list(calls)}
print(json.dumps({"init": init * 1000}), file=answers, flush=True)
for line in sys.stdin:
    event = json.loads(line)
    first = invoke(event)
    second = invoke(event)
    print(json.dumps({"first": first, "second": second}), file=answers, flush=True)
"""


class ColdFunction:
    """One cold start of a function from a build, in its own process: ``init_ms``, then ``invoke(event)`` for each
    task it serves, in the same process (the same execution environment, as Lambda reuses an idle one)."""

    def __init__(self, built: Build, logical: str, env: dict[str, str], url: str) -> None:
        import boto3

        boto3_dir = Path(boto3.__file__).resolve().parents[1]
        name = f"rollguard-{logical.removesuffix('Function').lower()}"
        args = [str(built.path / logical), str(built.path / "RollguardLayer" / "python"), str(boto3_dir), name]
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
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(built.memory_mb[logical]),
            **env,
        }
        command = [sys.executable, "-I", "-S", "-B", "-c", PROBE, *args, str(built.memory_mb[logical])]
        self.logical = logical
        self.printed = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by close(); read back if it dies
        self.process = subprocess.Popen(
            command, env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.printed, text=True
        )
        self.init_ms = float(self._answer()["init"])
        self.services: set[str] = set()  # the services this environment has called: their connections are open

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            self.printed.seek(0)
            raise RuntimeError(f"{self.logical} exited {self.process.returncode}: {self.printed.read()[-2000:]}")
        return dict(json.loads(line))

    def invoke(self, task: str, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` invoked twice (the second a retry of the same input); each invocation's CPU and calls up to its
        hand-off, and the services it opened connections to first."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        result = self._answer()
        for invocation in (result["first"], result["second"]):
            invocation["path_cpu"], invocation["path_calls"] = until_handoff(task, invocation)
        services = {call.split(":")[0] for call in result["first"]["path_calls"]}
        result["new_services"] = sorted(services - self.services)
        self.services |= {
            call.split(":")[0] for invocation in (result["first"], result["second"]) for call, _ in invocation["calls"]
        }
        return result

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.printed.close()


def until_handoff(task: str, invocation: dict[str, Any]) -> tuple[float, list[str]]:
    """The invocation's CPU and calls up to and including the call that ends its part of the path (HANDOFF), or the
    whole invocation when it makes none (Assess; a retried Act, which finds its step done)."""
    calls: list[str] = []
    for call, cpu in invocation["calls"]:
        calls.append(call)
        if call in HANDOFF[task]:
            return float(cpu), calls
    return float(invocation["cpu"]), calls


def incident_path(built: Build, url: str) -> dict[str, dict[str, Any]]:
    """intake → Assess → Act of one incident in the served world (a fresh one: `url` is used once), each task run by
    the function the build's ASL names, each function cold once."""
    from rollguard_cli.serve import inject, sandbox_now

    envs = function_environments(url, built)
    inject(url)
    started: dict[str, ColdFunction] = {}
    path: dict[str, dict[str, Any]] = {}
    try:

        def run(task: Task, event: dict[str, Any]) -> dict[str, Any]:
            cold = task.function not in started
            if cold:
                started[task.function] = ColdFunction(built, task.function, envs[task.function], url)
            function = started[task.function]
            result = function.invoke(task.name, event)
            path[task.name] = {"function": task.function, "init": function.init_ms if cold else None, **result}
            return result

        intake, assess, act = built.tasks
        opened = run(intake, alarm_event(sandbox_now(url)))["first"]
        status = (opened["result"] or {}).get("status", opened["outcome"])
        if status != "opened":
            raise RuntimeError(
                f"the bench's intake answered {status!r}, not 'opened': the served alarm fired first (its own intake "
                f"opened the incident); lower SERVE_SPEED ({SERVE_SPEED})"
            )
        state = started_input(url, envs[intake.function]["STATE_MACHINE_ARN"])
        wait_for_alarm(url, "ALARM")  # what Assess confirms; the served intake joins the bench's incident
        assert assess.state is not None and act.state is not None
        assessed = run(assess, task_input(assess.state, state))["first"]
        assessment = assessed["result"]
        if not assessment or assessment.get("decision") != "act" or assessment.get("gate", {}).get("required"):
            raise RuntimeError(f"Assess did not decide an ungated act: {assessed['outcome']}; {assessment}")
        acted = run(act, task_input(act.state, after(assess.state, state, assessment)))["first"]
        if not MITIGATING & set(acted["path_calls"]):
            raise RuntimeError(f"Act made no mitigating call: {acted['outcome']}; {acted['calls']}")
        return path
    finally:
        for function in started.values():
            function.close()


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
            task.name: summarize([run[task.name] for run in runs_of], built.memory_mb[task.function])
            for task in built.tasks
        }
    for name, pyc in result["variants"]["pyc"].items():
        bare = result["variants"]["no_pyc"][name]
        if pyc["cold_start"]:
            pyc["bytecode_ratio"] = round(bare["init_cpu_ms"] / max(pyc["init_cpu_ms"], 0.1), 2)
    return result


def summarize(samples: list[dict[str, Any]], memory_mb: int) -> dict[str, Any]:
    """One task over the runs: its function, whether the task met it cold (its Init then counts), and medians."""

    def median(values: Iterator[float]) -> float:
        return round(statistics.median(values), 1)

    last = samples[-1]
    cold = last["init"] is not None
    return {
        "n": len(samples),
        "function": last["function"],
        "memory_mb": memory_mb,
        "cold_start": cold,
        "init_cpu_ms": median(s["init"] for s in samples) if cold else None,
        "first_invocation_cpu_ms": median(s["first"]["cpu"] for s in samples),
        "first_path_cpu_ms": median(s["first"]["path_cpu"] for s in samples),
        "warm_invocation_cpu_ms": median(s["second"]["cpu"] for s in samples),
        "outcome": last["first"]["outcome"],
        "warm_outcome": last["second"]["outcome"],
        "aws_calls": [call for call, _ in last["first"]["calls"]],
        "path_calls": last["first"]["path_calls"],
        "new_services": last["new_services"],
    }


# ------------------------------------------------------------------------------------------------ the model

MODEL_NOTE = (
    "Init CPU counts at a full vCPU (DESIGN.md; AWS documents no Init share), invocation CPU at MemorySize/1769 of a "
    "vCPU (Lambda DG, 'Configure Lambda function memory'), each function's MemorySize from its build's template.yaml; "
    "this machine's CPU taken as Graviton's. Each task's part ends at its hand-off: the intake's at StartExecution, "
    "Assess's at its return, Act's at the mitigating call (CPU and calls counted up to it). A function serving several "
    "tasks starts cold once; a later task runs in the environment the one before left idle, on its open connections "
    "(Lambda may reuse an idle environment, Operator Guide 'Lambda execution environments'; it does not promise to): "
    "Assess after the intake when the intake has returned by the time Step Functions invokes Assess (its CPU after "
    "StartExecution is printed), Act after Assess, which has returned before Act is invoked. "
    "Warm: a second invocation with the same input (a retry, answered idempotently: the same parsing and reads, no "
    "second mitigating call), with the first invocation's calls."
)


def latency_model(cold: dict[str, Any], transitions_before_act: int) -> dict[str, Any]:
    """alarm → first mitigating call, as a sum of printed terms: measured CPU (Init at a full vCPU, invocations at
    the memory's share of one) plus the assumed service latencies above."""
    a = {key: value for key, (value, _) in ASSUMED_MS.items()}

    def terms(stack: str) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = [("EventBridge delivery [assumed]", a["eventbridge"])]
        for name in TASKS:
            f = cold[name]
            share = f["memory_mb"] / VCPU_MB
            if stack == "cold":
                if f["cold_start"]:
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
            out.append(
                (f"{name}: {len(calls)} AWS calls [counted] x {a['aws_call']:.0f} ms", len(calls) * a["aws_call"])
            )
            opened = f["new_services"]
            if stack == "cold" and opened:
                out.append((f"{name}: TLS to {len(opened)} new services [assumed]", len(opened) * a["tls_per_client"]))
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
