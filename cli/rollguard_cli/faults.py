"""The fault matrix: every AWS call a drill's functions make, failed every way AWS can fail it, and Rollguard's
promises checked after each run (issue 9).

A case is (drill, function, operation, kind, repeat). Kinds are what a caller can see ("Common Errors" in each
AWS API reference; botocore's ReadTimeoutError): a throttle, a 5xx, an access denial, a read timeout before the
call reached AWS, and a response lost after AWS carried the call out. ``once`` fails the first such call,
``persistent`` every one. The promises, checked against the drill's fault-free run (its baseline):
one outcome per incident (incident, audit and execution agree), the lock released, the audit's opening and
closing events, a notification, no mutation made twice nor recorded twice, and a transient fault once ending as the
baseline did.

    python -m rollguard_cli.faults [--sample N] [--jobs J] [--json FILE] [--drill NAME ...]
"""

import argparse
import json
import logging
import multiprocessing
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rollguard.adapters.ecs import ROLLBACK_CREATOR as ECS_ROLLBACK_CREATOR
from rollguard.adapters.ecs import EcsServices
from rollguard.incident import CLOSED

from rollguard_cli.drills import SCENARIOS, NoIncident, run_scenario
from rollguard_cli.sandbox.runner import REGION, Sandbox

# The mutating paths: a completed deployment canaried back and widened, an in-flight one stopped with rollback, a flag
# turned off, a listener's weights shifted in two steps, a zonal shift started; and the canary rollback in a member
# account, through its assumed execution role (AssumeRole's faults included); and a step gated on a human's approval
# (the approval function's token, audit event and page).
DRILLS = (
    "bad-deploy",
    "member-bad-deploy",
    "approval-granted",
    "in-flight-canary",
    "flag-kill-switch",
    "bad-target-group",
    "sick-zone",
    "ecs-bad-deploy",
    "ecs-rolling-bad-deploy",
)
Kind = Literal["throttle", "5xx", "denied", "timeout", "lost"]
KINDS: tuple[Kind, ...] = ("throttle", "5xx", "denied", "timeout", "lost")
REPEATS = {"once": 1, "persistent": 1_000_000}
CASES_PER_WORKER = 25
TRANSIENT = frozenset({"throttle", "5xx", "timeout", "lost"})
# Calls that change a target; their effects are counted, and a mutation made twice is a violation.
MUTATIONS = frozenset(
    {
        "CreateDeployment",
        "StopDeployment",
        "StartDeployment",
        "CreateHostedConfigurationVersion",
        "ModifyListener",
        "ModifyRule",
        "StartZonalShift",
        "CancelZonalShift",
        "UpdateService",
        "StopServiceDeployment",
    }
)


def _error(kind: Kind, service: str) -> tuple[str, int]:
    """The error code and HTTP status AWS answers for ``kind`` ("Common Errors"; SNS throttles as Throttled and
    the query-protocol CloudWatch as Throttling)."""
    if kind == "throttle":
        return {"sns": "Throttled", "monitoring": "Throttling"}.get(service, "ThrottlingException"), 400
    if kind == "5xx":
        return "InternalFailure", 500
    return ("AccessDenied" if service in {"sns", "monitoring"} else "AccessDeniedException"), 400


@dataclass(frozen=True)
class Case:
    drill: str
    function: str
    service: str
    operation: str
    kind: Kind
    repeat: str

    @property
    def name(self) -> str:
        return f"{self.drill}:{self.function}:{self.operation}:{self.kind}:{self.repeat}"


@dataclass
class Run:
    """What one run of a drill left behind: enough to check every promise."""

    outcome: str
    execution_status: str
    lock_released: bool
    audit_kinds: list[str]
    closed_result: str | None
    notified: bool
    alias_final: dict[str, float]
    flags: dict[str, Any]
    effects: dict[str, int]
    duplicates: list[str]
    calls: list[tuple[str, str, str]]
    error: str = ""
    actions_per_step: dict[int, int] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)  # the load balancer's weights and zonal shift at the end


@dataclass
class CaseResult:
    case: Case
    violations: list[str]
    fired: int
    outcome: str
    seconds: float
    reason: str = ""


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)

    @property
    def violations(self) -> list[CaseResult]:
        return [r for r in self.results if r.violations]

    def counts(self) -> dict[str, int]:
        return dict(Counter(v.split(":")[0] for r in self.results for v in r.violations))


def _observe(sb: Sandbox) -> dict[str, Any]:
    """The targets' state after the incident, and what Rollguard did to them (from AWS's side, not the audit)."""
    cd = sb.service_client("codedeploy")  # where the service's deployments are (a member account's, across accounts)
    ids = [
        deployment
        for app in cd.list_applications()["applications"]
        for group in cd.list_deployment_groups(applicationName=app)["deploymentGroups"]
        for deployment in cd.list_deployments(applicationName=app, deploymentGroupName=group)["deployments"]
    ]
    infos = cd.batch_get_deployments(deploymentIds=ids)["deploymentsInfo"] if ids else []
    ours = [d.get("description", "") for d in infos if d.get("description", "").startswith("Rollguard")]
    config_ours = [
        f"{d.profile_name}#{d.version}"
        for runs in sb.appconfig.deployments.values()
        for d in runs
        if "incident" in d.description
    ]
    svc = sb.service
    flags = {
        profile: sb.appconfig.deployed_document(REGION, svc.appconfig_application, svc.appconfig_environment, profile)
        for profile in svc.appconfig_profiles
    }
    shifts = [s.comment.split(":")[0] for s in sb.zonal_shifts.shifts if s.comment.startswith("Rollguard")]
    return {
        "dead_letters": len(sb.dead_letters("IntakeDeadLetterQueue")),
        "effects": {
            "codedeploy": len(ours),
            "appconfig": len(config_ours),
            "zonal_shift": len(shifts),
            "ecs": _ecs_rollbacks(sb),
        },
        "duplicates": [d for d, n in Counter(ours + config_ours + shifts).items() if n > 1],
        "flags": flags,
    }


def _ecs_rollbacks(sb: Sandbox) -> int:
    """ECS deployments back to an earlier revision of the family (Rollguard's UpdateService rollbacks), read from ECS
    through the service deployments API the way Assess reads them (adapters/ecs.py)."""
    if sb.ecs is None:
        return 0
    spec = sb.ecs.spec
    history = EcsServices(sb.client("ecs")).deployments(spec.cluster, spec.service)
    return sum(1 for d in history if d.creator == ECS_ROLLBACK_CREATOR)


def run(drill: str, case: Case | None = None) -> tuple[Run, int]:
    """Run ``drill`` with ``case``'s fault injected (none for the baseline); the run and how often the fault fired."""
    faults: list[Any] = []

    def inject(sb: Sandbox) -> None:
        if case is None:
            return
        code, status = _error(case.kind, case.service)
        kind = {"timeout": "timeout", "lost": "lost"}.get(case.kind, "error")
        faults.append(
            sb.inject_fault(
                case.operation,
                code,
                f"injected by the fault matrix ({case.kind})",
                function=case.function,
                times=REPEATS[case.repeat],
                status=status,
                kind=kind,  # type: ignore[arg-type]
            )
        )

    try:
        result = run_scenario(SCENARIOS[drill], prepare=inject, observe=_observe)
    except NoIncident as exc:
        # The intake failed on every attempt Lambda made: the event must be in the intake's dead-letter queue, whose
        # alarm pages on-call (template.yaml; the sandbox does not evaluate SQS metrics, tests/template checks it).
        kept = bool(exc.observed and exc.observed["dead_letters"])
        lost = "" if kept else f"{exc}, and the event is not in the intake's dead-letter queue"
        empty = Run("dead-lettered" if kept else "none", "none", True, [], None, kept, {}, {}, {}, [], [], lost)
        return empty, sum(f.fired for f in faults)
    except (RuntimeError, TimeoutError) as exc:
        empty = Run("none", "none", False, [], None, False, {}, {}, {}, [], [], error=str(exc))
        return empty, sum(f.fired for f in faults)
    closed = next((e for e in result["audit_events"] if e["kind"] == "incident_closed"), None)
    observed = result["observed"]
    return (
        Run(
            outcome=result["outcome"],
            execution_status=result["execution_status"],
            lock_released=result["lock_released"],
            audit_kinds=[e["kind"] for e in result["audit_events"]],
            closed_result=closed["result"] if closed else None,
            notified=bool(result["notifications"]),
            alias_final=result["alias_final"],
            flags=observed["flags"],
            effects=observed["effects"],
            duplicates=observed["duplicates"],
            calls=[tuple(c.split(":", 2)) for c in result["aws_calls"]],  # type: ignore[misc]
            actions_per_step=dict(
                Counter(e["parameters"].get("step", -1) for e in result["audit_events"] if e["kind"] == "action")
            ),
            traffic={
                **(result.get("traffic_final") or {}),
                **({"ecs": result["ecs_final"]} if "ecs_final" in result else {}),
            },
        ),
        sum(f.fired for f in faults),
    )


def violations(case: Case, got: Run, baseline: Run) -> list[str]:
    """Each broken promise, as ``promise: what was seen``."""
    if got.error:
        return [f"incident lost: {got.error}"]
    if got.outcome == "dead-lettered":
        if case.repeat == "once" and case.kind in TRANSIENT:
            return ["transient fault changed the end: one failed intake attempt dead-lettered the alarm"]
        return []
    found = []
    if got.outcome not in CLOSED:
        found.append(f"left open: the incident is {got.outcome}")
    if got.closed_result != got.outcome:
        found.append(f"outcome disagrees: incident {got.outcome}, audit {got.closed_result}")
    if not got.lock_released:
        found.append("lock held: the target's lock outlived the incident")
    if "alarm_received" not in got.audit_kinds or "incident_closed" not in got.audit_kinds:
        found.append("audit incomplete: no opening or no closing event")
    if not got.notified:
        found.append("nobody told: no notification names the incident")
    if any(n > 1 for n in got.actions_per_step.values()):
        found.append(f"recorded twice: action events per step {got.actions_per_step}")
    if got.duplicates:
        found.append(f"acted twice: {', '.join(got.duplicates)}")
    for target, count in got.effects.items():
        if count > baseline.effects.get(target, 0):
            found.append(f"acted twice: {count} {target} changes, the baseline made {baseline.effects[target]}")
    if case.kind in TRANSIENT and case.repeat == "once":
        end = (got.outcome, got.alias_final, got.flags, got.traffic)
        if end != (baseline.outcome, baseline.alias_final, baseline.flags, baseline.traffic):
            found.append(
                f"transient fault changed the end: {got.outcome}, alias {got.alias_final}, traffic {got.traffic} "
                f"(baseline {baseline.outcome}, alias {baseline.alias_final}, traffic {baseline.traffic})"
            )
    elif got.outcome == "resolved" and (got.alias_final, got.flags, got.traffic) != (
        baseline.alias_final,
        baseline.flags,
        baseline.traffic,
    ):
        found.append("false recovery: resolved, but the target is not where the baseline left it")
    return found


def cases(baselines: dict[str, Run]) -> list[Case]:
    """Every (function, operation) pair each drill's functions call × every kind × once/persistent."""
    return [
        Case(drill, function, service, operation, kind, repeat)
        for drill, base in baselines.items()
        for function, service, operation in sorted(set(base.calls))
        if function.startswith("rollguard-")
        for kind in KINDS
        for repeat in REPEATS
    ]


def sample(all_cases: list[Case], n: int, seed: int = 9) -> list[Case]:
    """A fixed, spread-out subset: every drill and kind represented, the same cases on every run."""
    if n >= len(all_cases):
        return all_cases
    return sorted(random.Random(seed).sample(all_cases, n), key=lambda c: c.name)


_BASELINES: dict[str, Run] = {}


def _run_case(case: Case) -> CaseResult:
    started = time.perf_counter()
    try:
        got, fired = run(case.drill, case)
    except Exception as crashed:  # the sandbox's own failure: this case's violation, not the end of the whole matrix
        crash = f"the drill crashed: {type(crashed).__name__}: {crashed}"
        return CaseResult(case, [crash], 0, "crashed", round(time.perf_counter() - started, 2), traceback.format_exc())
    found = violations(case, got, _BASELINES[case.drill])
    if fired == 0:
        found = [*found, f"not exercised: {case.operation} was never called by {case.function}"]
    return CaseResult(case, found, fired, got.outcome, round(time.perf_counter() - started, 2), got.error)


def baselines(drills: Iterable[str] = DRILLS) -> dict[str, Run]:
    found = {}
    for drill in drills:
        base, _ = run(drill)
        if base.outcome != SCENARIOS[drill].expected_outcome:
            raise RuntimeError(f"drill {drill} ended {base.outcome} without faults")
        found[drill] = base
    return found


def run_matrix(selected: list[Case], jobs: int = 1) -> Report:
    if jobs > 1:
        # A fresh worker every few cases: a long-lived one grows (moto's state and the interpreter's caches) until the
        # kernel kills it, and a Pool whose worker was killed waits for its task forever.
        with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=CASES_PER_WORKER) as pool:
            return Report(list(pool.imap(_run_case, selected)))
    return Report([_run_case(c) for c in selected])


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # the interpreter logs every failed state; we count them
    parser = argparse.ArgumentParser(prog="python -m rollguard_cli.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="run a fixed sample of N cases (0: the full matrix)")
    parser.add_argument("--jobs", type=int, default=1, help="processes to run cases in")
    parser.add_argument("--json", help="write every case's result to this file")
    parser.add_argument("--drill", action="append", choices=DRILLS, help="only this drill's cases (repeatable)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    _BASELINES.update(baselines(args.drill or DRILLS))
    everything = cases(_BASELINES)
    selected = sample(everything, args.sample) if args.sample else everything
    report = run_matrix(selected, args.jobs)
    for r in report.violations:
        print(f"VIOLATION {r.case.name}: {'; '.join(r.violations)}")
    pairs = len({(c.drill, c.function, c.operation) for c in selected})
    print(
        f"fault matrix: {len(selected)} cases ({pairs} function×operation pairs × {len(KINDS)} kinds × "
        f"{len(REPEATS)} repeats, of {len(everything)}), {len(report.violations)} with violations; "
        f"by promise: {json.dumps(report.counts())}; {time.perf_counter() - started:.0f}s"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump([asdict(r) for r in report.results], out, indent=1, default=str)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
