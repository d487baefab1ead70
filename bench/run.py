"""Rollguard benchmarks: every figure measured in one run, so ratios between them mean something.

    .venv/bin/python bench/run.py            # full run, plain-text table
    .venv/bin/python bench/run.py --quick    # fewer samples (smoke run)
    .venv/bin/python bench/run.py --json     # the same numbers as JSON

Figures (see bench/README.md):
  1. intake latency per event, warm, in-process on the sandbox: opening a new incident vs joining one
  2. cold import time of each handler module (boto3 + app.py) as a ratio to ``import boto3`` alone (informational)
  3. state transitions and Lambda invocations of a bad-deploy incident (to first action, whole incident)
  4. wall time of the drill suite
  5. per critical-path function, from the build output: Init CPU and first-invocation CPU, with and without .pyc
  6. a latency model of alarm → first mitigating call, cold and warm stacks, every term printed
  7. AWS calls (DynamoDB) per intake event: open, join, duplicate
"""

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import cold  # noqa: E402
import state_size  # noqa: E402

HANDLERS = ["remediation", "verify", "close"]  # the intake is the Remediation function's since 1eabbdc
ALARM = "checkout-5xx-rate"  # claimed by policies/sandbox.yaml
TRANSITION_PRICE_USD = 0.025 / 1000  # Step Functions Standard, per state transition

GOALS = {
    "cold_ms": 2000,  # issue 14
    "warm_ms": 1000,
    "transitions_to_first_action": 8,
    "transitions_per_incident": 40,
}


@dataclass(frozen=True)
class Sizes:
    intake_rounds: int  # each round: one open, then `joins_per_round` joins of that incident
    joins_per_round: int
    intake_warmup_rounds: int
    import_runs: int  # per module, and per module for the boto3 baseline
    cold_runs: int  # per critical-path function, with and without .pyc


FULL = Sizes(intake_rounds=200, joins_per_round=3, intake_warmup_rounds=10, import_runs=9, cold_runs=5)
QUICK = Sizes(intake_rounds=20, joins_per_round=2, intake_warmup_rounds=3, import_runs=3, cold_runs=1)


# ---------------------------------------------------------------------------------------------- helpers


def summary_ms(samples_ns: list[int]) -> dict[str, Any]:
    ms = sorted(s / 1e6 for s in samples_ns)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(p99, 2)}


def alarm_event(event_id: str) -> dict[str, Any]:
    """An EventBridge "CloudWatch Alarm State Change" event (single-metric alarm) going to ALARM."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2019-10-02T17:04:40Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ALARM}"],
        "detail": {
            "alarmName": ALARM,
            "configuration": {
                "description": "checkout error rate above 5%",
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "dimensions": {"Service": "checkout"},
                                "name": "ErrorRate",
                                "namespace": "Checkout",
                            },
                            "period": 60,
                            "stat": "Average",
                        },
                        "returnData": True,
                    }
                ],
            },
            "previousState": {
                "reason": "Threshold Crossed: 2 out of the last 3 datapoints were not greater than the threshold (5.0)",
                "timestamp": "2019-10-02T16:54:40.987+0000",
                "value": "OK",
            },
            "state": {
                "reason": "Threshold Crossed: 2 out of the last 3 datapoints were greater than the threshold (5.0)",
                "reasonData": '{"version":"1.0","statistic":"Average","period":60,"threshold":5.0}',
                "timestamp": "2019-10-02T17:04:40.989+0000",
                "value": "ALARM",
            },
        },
    }


class EmptyTables:
    """Deletes every item of the given DynamoDB tables (moto's TransactWriteItems deep-copies whole tables,
    so its cost grows with their size: emptying them between rounds keeps every round alike)."""

    def __init__(self, ddb: Any, tables: list[str]):
        self.ddb = ddb
        self.keys = {
            t: [k["AttributeName"] for k in ddb.describe_table(TableName=t)["Table"]["KeySchema"]] for t in tables
        }

    def __call__(self) -> None:
        for table, names in self.keys.items():
            for item in self.ddb.scan(TableName=table)["Items"]:
                self.ddb.delete_item(TableName=table, Key={n: item[n] for n in names})


@contextlib.contextmanager
def quiet_powertools_metrics() -> Iterator[None]:
    """The bench calls handlers directly, so each invocation's EMF metrics line would land on stdout, and a
    handler that records no metric warns. None of it is a figure; keep the table readable."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        warnings.filterwarnings("ignore", message="Dimension '.*' has already been added")
        yield


class StubStepFunctions:
    """Stands in for StartExecution so that opening an incident does not run the state machine."""

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, str]:  # noqa: A002, N803
        return {"executionArn": f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:{name}"}


# ---------------------------------------------------------------------------------------------- figure 1


def bench_intake(sizes: Sizes) -> dict[str, Any]:
    """Open vs join latency, through the Lambda handler (Powertools decorators) and the domain function.

    Rounds interleave everything measured so drift on a shared machine hits all series alike: each round
    starts from empty tables (so the lock is free), opens one incident, then joins it ``joins_per_round``
    times; even rounds go through the handler, odd rounds call ``rollguard.intake.handle_alarm_event``.
    """
    from rollguard import runtime
    from rollguard.intake import handle_alarm_event
    from rollguard_cli.sandbox.moto_ext import LambdaContext
    from rollguard_cli.sandbox.runner import TABLES, Sandbox

    samples: dict[str, list[int]] = {"handler_open": [], "handler_join": [], "domain_open": [], "domain_join": []}
    with quiet_powertools_metrics(), Sandbox(error_model=lambda label, at, config: 0.01) as sb:
        handler = sb.handlers["rollguard-remediation"]
        context = LambdaContext(function_name="rollguard-remediation", aws_request_id="b-1")
        deps = runtime.intake_deps_for(context)  # cached: the handler uses this very object
        deps.stepfunctions = StubStepFunctions()
        policy = deps.policies.match(ALARM)
        if policy is None:
            raise RuntimeError(f"no policy in {sb.policy_file} claims {ALARM}")
        empty_tables = EmptyTables(sb.client("dynamodb"), list(TABLES.values()))

        def via_handler(event: dict[str, Any]) -> str:
            return str(handler(event, context)["status"])

        def via_domain(event: dict[str, Any]) -> str:
            return handle_alarm_event(event, deps).status

        def timed(call: Any, expected: str) -> int:
            event = alarm_event(str(uuid.uuid4()))
            start = time.perf_counter_ns()
            status = call(event)
            elapsed = time.perf_counter_ns() - start
            if status != expected:
                raise RuntimeError(f"intake answered {status!r}, the bench expected {expected!r}")
            return elapsed

        total = sizes.intake_warmup_rounds + sizes.intake_rounds
        for i in range(total):
            layer, call = ("handler", via_handler) if i % 2 == 0 else ("domain", via_domain)
            empty_tables()
            opened = timed(call, "opened")
            joined = [timed(call, "joined") for _ in range(sizes.joins_per_round)]
            if i >= sizes.intake_warmup_rounds:
                samples[f"{layer}_open"].append(opened)
                samples[f"{layer}_join"].extend(joined)
    return {name: summary_ms(values) for name, values in samples.items()}


# ---------------------------------------------------------------------------------------------- figure 2

IMPORT_PROBE = """
import importlib.util, json, sys, time
path = sys.argv[1]
t0 = time.perf_counter()
import boto3
if path:
    spec = importlib.util.spec_from_file_location("rollguard_function_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000}))
"""


def import_ms(handler: str | None) -> float:
    """Import time of boto3 (+ functions/<handler>/app.py) in a fresh interpreter, in ms."""
    layer = REPO / "layers" / "rollguard"
    function_dir = REPO / "functions" / handler if handler else None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "rollguard",
        "POWERTOOLS_METRICS_NAMESPACE": "Rollguard",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join(str(p) for p in (layer, function_dir) if p),
    }
    path = str(function_dir / "app.py") if function_dir else ""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, path], env=env, capture_output=True, text=True, check=True
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["ms"])


def bench_imports(sizes: Sizes) -> dict[str, Any]:
    """Interleaved: boto3, remediation, boto3, verify, ... repeated; medians per module and for the baseline."""
    for handler in [None, *HANDLERS]:  # untimed: bytecode caches written, files in the page cache
        import_ms(handler)
    baseline: list[float] = []
    runs: dict[str, list[float]] = {h: [] for h in HANDLERS}
    for _ in range(sizes.import_runs):
        for handler in HANDLERS:
            baseline.append(import_ms(None))
            runs[handler].append(import_ms(handler))
    boto3_ms = statistics.median(baseline)
    result: dict[str, Any] = {"boto3": {"n": len(baseline), "median_ms": round(boto3_ms, 1)}}
    for handler, values in runs.items():
        median = statistics.median(values)
        result[handler] = {"n": len(values), "median_ms": round(median, 1), "ratio": round(median / boto3_ms, 2)}
    return result


# ---------------------------------------------------------------------------------------------- figure 7


def intake_calls_per_event() -> dict[str, Any]:
    """The AWS calls the intake makes for one event, as the sandbox counts them (CallLog.aws_calls records every
    call, by function): a new incident, a second alarm joining it, and that event delivered again (EventBridge
    delivers at least once)."""
    from rollguard_cli.sandbox.moto_ext import LambdaContext
    from rollguard_cli.sandbox.runner import Sandbox

    counted: dict[str, Any] = {}
    with quiet_powertools_metrics(), Sandbox(error_model=lambda label, at, config: 0.01) as sb:
        handler = sb.handlers["rollguard-remediation"]
        context = LambdaContext(function_name="rollguard-remediation", aws_request_id="bench-calls")
        joining = alarm_event(str(uuid.uuid4()))
        for case, event in [("open", alarm_event(str(uuid.uuid4()))), ("join", joining), ("duplicate", joining)]:
            before = len(sb.log.aws_calls)
            with sb.acting_as("rollguard-remediation"):
                status = str(handler(event, context)["status"])
            calls = [f"{service}:{operation}" for _, service, operation in sb.log.aws_calls[before:]]
            counted[case] = {
                "status": status,
                "calls": calls,
                "dynamodb": sum(c.startswith("dynamodb:") for c in calls),
            }
    return counted


# ---------------------------------------------------------------------------------------------- figures 3, 4


def bench_drills() -> dict[str, Any]:
    """Every drill once; the bad-deploy one also gives the transition and invocation counts."""
    from rollguard_cli.drills import SCENARIOS, run_drill

    drills = {}
    for name in SCENARIOS:
        with quiet_powertools_metrics():
            result = run_drill(name)
        drills[name] = {
            key: result[key]
            for key in (
                "outcome",
                "expected_outcome",
                "passed",
                "wall_time_s",
                "state_transitions",
                "lambda_invocations",
                "transitions_to_first_action",
                "invocations_to_first_action",
            )
        }
    bad = drills["bad-deploy"]
    transitions = {
        "to_first_action": bad["transitions_to_first_action"],
        "invocations_to_first_action": bad["invocations_to_first_action"],
        "per_incident": bad["state_transitions"],
        "invocations_per_incident": bad["lambda_invocations"],
        "cost_per_incident_usd": bad["state_transitions"] * TRANSITION_PRICE_USD,
    }
    suite = {"drills": drills, "total_wall_time_s": round(sum(d["wall_time_s"] for d in drills.values()), 2)}
    return {"transitions": transitions, "suite": suite}


# ---------------------------------------------------------------------------------------------- report


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    table: list[tuple[str, str, str, str]] = []
    intake = results["intake"]
    for key, label, note in [
        ("handler_open", "intake: new incident (handler)", "StartExecution stubbed [a]"),
        ("handler_join", "intake: join open incident (handler)", "Powertools decorators included"),
        ("domain_open", "intake: new incident (domain fn)", "handle_alarm_event, StartExecution stubbed [a]"),
        ("domain_join", "intake: join open incident (domain fn)", "handle_alarm_event"),
    ]:
        s = intake[key]
        table.append((label, f"p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms", "-", f"n={s['n']}; {note}"))

    imports = results["imports"]
    base = imports["boto3"]
    table.append(("cold import: boto3 alone", f"{base['median_ms']:.1f} ms", "-", f"median of {base['n']} [b]"))
    for handler in HANDLERS:
        s = imports[handler]
        table.append(
            (
                f"cold import: boto3 + {handler}/app.py",
                f"{s['median_ms']:.1f} ms  x{s['ratio']:.2f}",
                "-",
                f"median of {s['n']}; informational: it rewards deferring work to the slower phase [c]",
            )
        )

    cold_path = results["cold"]
    baseline = cold_path["variants"].get("baseline")
    for name, f in cold_path["variants"]["pyc"].items():
        n = f"median of {f['n']}, paired"
        before = baseline[name] if baseline else None

        def was(key: str, before: dict[str, Any] | None = before) -> str:
            if not before:
                return ""
            return f"  (was {before[key]:.1f})" if before[key] is not None else "  (was no cold start)"

        task = f"{name} ({f['function']})"
        if f["cold_start"]:
            table += [
                (
                    f"{task}: Init CPU (import app)",
                    f"{f['init_cpu_ms']:.1f} ms{was('init_cpu_ms')}",
                    "-",
                    f"{n}; from the build, hash .pyc [d]",
                ),
                (
                    f"{task}: Init CPU without .pyc",
                    f"{cold_path['variants']['no_pyc'][name]['init_cpu_ms']:.1f} ms  x{f['bytecode_ratio']:.2f}",
                    "-",
                    f"{n}; the same build, .pyc removed (what SAM's python3.13 builder shipped)",
                ),
            ]
        else:
            before_init = (
                f"; the baseline's {before['function']} had {before['init_cpu_ms']:.1f} ms"
                if (before and before["init_cpu_ms"] is not None)
                else ""
            )
            table.append(
                (
                    f"{task}: no cold start",
                    "0 ms",
                    "-",
                    f"it runs in the environment the previous task left idle [d]{before_init}",
                )
            )
        table += [
            (
                f"{task}: first invocation CPU",
                f"{f['first_invocation_cpu_ms']:.1f} ms{was('first_invocation_cpu_ms')}",
                "-",
                f"{n}; at {f['memory_mb']} MB; outcome {f['outcome']}; {len(f['aws_calls'])} AWS calls: "
                f"{', '.join(f['aws_calls'])}",
            ),
            (
                f"{task}: first invocation CPU to its hand-off",
                f"{f['first_path_cpu_ms']:.1f} ms{was('first_path_cpu_ms')}",
                "-",
                f"{n}; up to and including {f['path_calls'][-1] if cold.HANDOFF[name] else 'its return'} [d]",
            ),
            *(
                [
                    (
                        f"{task}: CPU after its hand-off",
                        f"{f['first_invocation_cpu_ms'] - f['first_path_cpu_ms']:.1f} ms",
                        "-",
                        f"{n}; what it still runs after StartExecution returns, at {f['memory_mb']} MB: the time "
                        "before its environment is idle for Assess, against the Step Functions transitions before "
                        "Assess is invoked [d]",
                    )
                ]
                if name == "intake"
                else []
            ),
            (
                f"{task}: warm invocation CPU",
                f"{f['warm_invocation_cpu_ms']:.1f} ms{was('warm_invocation_cpu_ms')}",
                "-",
                f"{n}; the same input again (a retry); outcome {f['warm_outcome']}",
            ),
        ]
    models = [("", results["model"])]
    if "baseline_model" in results:
        models.append((f" (baseline {cold_path['baseline']})", results["baseline_model"]))
    for suffix, model in models:
        for stack, goal in (("cold", GOALS["cold_ms"]), ("warm", GOALS["warm_ms"])):
            m = model[stack]
            verdict = "ok" if m["total_ms"] <= goal else "OVER GOAL"
            table.append(
                (
                    f"model{suffix}: alarm → first mitigating call, {stack} stack",
                    f"{m['total_ms']:.0f} ms",
                    f"<= {goal}",
                    verdict,
                )
            )
            table += [(f"  {stack}: {label}", f"{ms:.0f} ms", "", "") for label, ms in m["terms"]]
    size = results["state_size"]
    largest = sorted(size["parts"].items(), key=lambda kv: -kv[1])[:4]
    table.append(
        (
            "worst-case state size (assessment.changes capped)",
            f"{size['bytes']:,} B",
            f"< {size['limit']:,}",
            f"{size['headroom']:,} B to spare; largest parts: {', '.join(f'{k} {v:,}' for k, v in largest)} "
            "(bench/state_size.py)",
        )
    )
    for case, c in results["intake_calls"].items():
        table.append(
            (
                f"intake: DynamoDB calls per event, {case}",
                str(c["dynamodb"]),
                "join <= 2" if case == "join" else "-",
                f"status {c['status']}; {', '.join(c['calls'])} (sandbox CallLog)",
            )
        )

    t = results["drills"]["transitions"]
    first_ok = t["to_first_action"] is not None and t["to_first_action"] <= GOALS["transitions_to_first_action"]
    table += [
        (
            "transitions to first mitigating call",
            f"{t['to_first_action']} ({t['invocations_to_first_action']} Lambda invocations)",
            f"<= {GOALS['transitions_to_first_action']}",
            f"bad-deploy drill; {'ok' if first_ok else 'OVER GOAL'}",
        ),
        (
            "transitions per incident",
            f"{t['per_incident']} ({t['invocations_per_incident']} Lambda invocations)",
            f"<= {GOALS['transitions_per_incident']}",
            f"bad-deploy drill; {'ok' if t['per_incident'] <= GOALS['transitions_per_incident'] else 'OVER GOAL'}",
        ),
        (
            "Step Functions cost per incident",
            f"${t['cost_per_incident_usd']:.6f}",
            "-",
            f"${t['cost_per_incident_usd'] * 1000:.4f} per 1,000 incidents, at $0.025 / 1,000 transitions",
        ),
    ]

    suite = results["drills"]["suite"]
    for name, d in suite["drills"].items():
        check = "as expected" if d["passed"] else f"expected {d['expected_outcome']}; FAILED"
        first = (
            f"; first action after {d['transitions_to_first_action']} transitions / "
            f"{d['invocations_to_first_action']} invocations"
            if d["transitions_to_first_action"]
            else ""
        )
        table.append(
            (
                f"drill {name}: wall time",
                f"{d['wall_time_s']:.2f} s",
                "-",
                f"outcome {d['outcome']} ({check}); {d['state_transitions']} transitions{first}",
            )
        )
    table.append(
        ("drill suite: total wall time", f"{suite['total_wall_time_s']:.2f} s", "-", f"{len(suite['drills'])} drills")
    )
    return table


def render(results: dict[str, Any]) -> str:
    header = ("figure", "value", "goal", "note")
    table = [header, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(3)]

    def line(row: tuple[str, str, str, str]) -> str:
        return " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + " | " + row[3]

    rule = "-+-".join("-" * w for w in widths) + "-+-" + "-" * 20
    machine = results["machine"]
    return "\n".join(
        [
            line(header),
            rule,
            *(line(row) for row in table[1:]),
            "",
            "[a] opening calls StartExecution; here a stub returns an executionArn, so the state machine does not",
            "    run in moto's thread during the measurement. Everything else (policy match, DynamoDB lock",
            "    transaction, audit, incident update) runs against moto in-process, as do joins. Tables are",
            "    emptied between rounds: moto's TransactWriteItems copies whole tables, DynamoDB's cost does not grow.",
            "    Latency is dominated by botocore + moto serialisation; it is not AWS network latency.",
            "[c] the import-ratio goal (<= x1.3) is retired (issue 14): boto3 + pydantic alone is ~x1.45 and it",
            "    rewarded moving work from Init (a full vCPU) to the first invocation (256 MB: 0.145 vCPU).",
            "[d] bench/cold.py: the layer and functions built by their Makefiles (this machine's wheels), each",
            "    function in a fresh interpreter (-I -S -B, sys.path as the runtime's), against `rollguard sandbox",
            "    serve --scenario bad-deploy` in its own process, one fresh world per incident path: the bad deploy",
            "    injected, the intake given the alarm (it opens the incident), Assess and Act given the inputs the ASL",
            "    gives them (the execution's input; then Assess's result at its ResultPath), Act's first invocation",
            "    making the canary rollback's CreateDeployment; CPU = time.process_time() of the function's process.",
            f"    Model: {cold.MODEL_NOTE}",
            *[f"    assumed: {key} = {ms:g} ms: {why}" for key, (ms, why) in cold.ASSUMED_MS.items()],
            "[b] each import measured in a fresh interpreter (perf_counter around the imports, interpreter start",
            "    excluded), with bytecode caches already written; runs interleaved (boto3, a handler, ...).",
            "",
            f"machine: Python {machine['python']} ({machine['implementation']}), {machine['cpu_count']} CPUs, "
            f"{machine['platform']}",
            f"command: {machine['command']}   ({'quick' if results['quick'] else 'full'} run, "
            f"{results['bench_wall_time_s']:.1f} s)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also build git revision REV's layer and functions and run them paired with this tree's (before/after)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    started = time.perf_counter()
    results: dict[str, Any] = {"quick": args.quick}
    # Subprocess imports first, while this process runs no moto threads of its own.
    results["imports"] = bench_imports(sizes)
    results["cold"] = cold.bench_cold_path(sizes.cold_runs, args.baseline)
    results["intake"] = bench_intake(sizes)
    results["intake_calls"] = intake_calls_per_event()
    results["state_size"] = state_size.state_size()
    results["drills"] = bench_drills()
    transitions = results["drills"]["transitions"]["to_first_action"] or 0
    variants = results["cold"]["variants"]
    results["model"] = cold.latency_model(variants["pyc"], transitions)
    if "baseline" in variants:
        results["baseline_model"] = cold.latency_model(variants["baseline"], transitions)
    results["bench_wall_time_s"] = round(time.perf_counter() - started, 1)
    results["machine"] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
    }
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
