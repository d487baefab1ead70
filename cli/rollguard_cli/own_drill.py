"""Drill your own policy: ``rollguard drill --policy FILE [--name POLICY] [--scenario …]``.

One policy of the file becomes one ``Scenario`` of the drills (drills.py): the sandbox's service takes the policy's
own names (its CodeDeploy application and group, a Lambda function behind an alias, its AppConfig application,
environment and the profiles its steps name, its load balancer), the alarm is the policy's own trigger alarm on a
synthesised metric, and the scenario breaks the service one way. ``run_scenario`` then runs the real intake, state
machine and handlers with FILE as their policy file, so what matches the alarm is the real intake reading that file.

What cannot be read from a policy is synthesised and said (``OwnDrill.notes``): the function behind the group (unless
``verify.slice`` names it), the alarm's metric and threshold (from ``verify.max_error_rate``), and a name for a glob.
"""

import fnmatch
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollguard.durations import format_duration
from rollguard.policy import ConfigRevertStep, FlagStep, Policy, PolicyFile, load_policy_file

from rollguard_cli.boundary import OperatorError
from rollguard_cli.drills import SETTINGS, Scenario, Stage, _decide, run_scenario
from rollguard_cli.sandbox.load_balancer import LoadBalancerSpec, RuleSpec, TargetGroupSpec
from rollguard_cli.sandbox.runner import REGION, TABLES, Sandbox
from rollguard_cli.sandbox.world import ServiceSpec, SliceMetricSpec

# What each scenario does to the service, and what the policy's ladder should make of it.
SCENARIOS = {
    "bad-deploy": "a deployment of revision 2 fails requests; the policy's rollback (or revert) should resolve it",
    "not-the-deploy": "everything fails 3 minutes after revision 2 shipped; going back cannot help, so it escalates",
    "flag": "a flag turned on leaks errors; the policy's flag_off should resolve it",
    "config": "a configuration push breaks the service; the policy's config_revert should resolve it",
    "no-change": "the alarm fires with no change in the policy's scope; the incident closes without action",
}
EXPECTED = {
    "bad-deploy": "resolved",
    "not-the-deploy": "escalated",
    "flag": "resolved",
    "config": "resolved",
    "no-change": "closed_no_action",
}
DRILL_NAMESPACE = "RollguardDrill"  # the synthesised metric's namespace (the world's aggregate ErrorRate)
REQUESTS_PER_MINUTE = 1000  # the sandbox service's traffic, raised when verify.min_requests needs more


@dataclass
class OwnDrill:
    policy: Policy
    scenario: Scenario
    service: ServiceSpec
    load_balancer: LoadBalancerSpec | None
    notes: list[str] = field(default_factory=list)  # what was synthesised or stood in, said before the timeline


def pick_policy(doc: PolicyFile, name: str | None, file: Path) -> Policy:
    if name is None:
        return doc.policies[0]
    found = next((p for p in doc.policies if p.name == name), None)
    if found is None:
        names = ", ".join(p.name for p in doc.policies)
        raise OperatorError(f"{file}: no policy named {name!r}; the file has: {names}")
    return found


def default_scenario(policy: Policy) -> str:
    """The scenario the policy's first ladder step is for."""
    first = policy.ladder[0].action
    if first in {"rollback", "revert_recent_change"} and (policy.target.codedeploy or first == "rollback"):
        return "bad-deploy"
    if first == "flag_off":
        return "flag"
    if first == "config_revert":
        return "config"
    raise OperatorError(
        f"policy {policy.name!r}: no scenario drills a first step {first}; "
        f"choose one with --scenario ({', '.join(possible(policy)) or 'none fits'})"
    )


def why_not(policy: Policy, scenario: str) -> str | None:
    """Why ``policy`` cannot express ``scenario``, or None."""
    actions = {step.action for step in policy.ladder}
    if scenario in {"bad-deploy", "not-the-deploy"}:
        if policy.target.codedeploy is None:
            return "it has no target.codedeploy, so no deployment is in its scope"
        if not actions & {"rollback", "revert_recent_change"}:
            return "its ladder has no rollback or revert_recent_change step"
    if scenario == "flag" and "flag_off" not in actions:
        return "its ladder has no flag_off step"
    if scenario == "config" and "config_revert" not in actions:
        return "its ladder has no config_revert step"
    if scenario in {"flag", "config"} and policy.target.appconfig is None:
        return "it has no target.appconfig, so no flag or configuration change is in its scope"
    return None


def possible(policy: Policy) -> list[str]:
    return [name for name in SCENARIOS if why_not(policy, name) is None]


_GLOB = re.compile(r"[*?[]")


def alarm_name(doc: PolicyFile, policy: Policy, notes: list[str]) -> str:
    """The policy's first literal alarm name, or a name its first glob matches (said in ``notes``)."""
    literal = next((a for a in policy.alarm_patterns if not _GLOB.search(a)), None)
    name = literal or _name_for(policy.trigger.alarms[0])
    if literal is None:
        notes.append(f"synthesised: alarm name {name!r}, which the policy's glob {policy.trigger.alarms[0]!r} matches")
    claimed = doc.match(name)
    if claimed is None or claimed.name != policy.name:
        owner = claimed.name if claimed else "no policy"
        raise OperatorError(f"alarm {name!r} of policy {policy.name!r} is claimed by {owner} in the file")
    return name


def _name_for(glob: str) -> str:
    """A name the glob matches: ``*`` as "drill", ``?`` as "x", a set as its first member (a negated one: a character
    it leaves out)."""
    out, i = "", 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out += "drill"
        elif char == "?":
            out += "x"
        elif char == "[" and (end := glob.find("]", i + 2)) != -1:
            members = glob[i + 1 : end]
            if members.startswith("!"):
                out += next(c for c in "xyz0123456789" if not fnmatch.fnmatchcase(c, glob[i : end + 1]))
            else:
                out += members[0]
            i = end
        else:
            out += char
        i += 1
    if not fnmatch.fnmatchcase(out, glob):
        raise OperatorError(f"cannot make up an alarm name that {glob!r} matches: add a literal name to trigger.alarms")
    return out[:255]


def _appconfig(policy: Policy) -> tuple[str, str, dict[str, dict[str, Any]]] | None:
    """The AppConfig application and environment the service loads, and each profile's first document: a feature flags
    profile per flag step's profile (with its flags, off), a freeform profile per config_revert step's."""
    steps = [s for s in policy.ladder if isinstance(s, FlagStep | ConfigRevertStep)]
    scope = policy.target.appconfig
    if not steps and scope is None:
        return None
    ref = steps[0].flag if steps and isinstance(steps[0], FlagStep) else steps[0].config if steps else scope
    assert ref is not None
    regions = {r for s in steps for r in (s.flag if isinstance(s, FlagStep) else s.config).regions} | set(
        scope.regions if scope else []
    )
    if regions - {REGION}:
        raise OperatorError(
            f"policy {policy.name!r} names AppConfig regions {', '.join(sorted(regions))}: the sandbox runs one "
            f"region, {REGION}; drill a copy of the policy without regions"
        )
    documents: dict[str, dict[str, Any]] = {}
    for step in steps:
        if isinstance(step, FlagStep):
            doc = documents.setdefault(step.flag.profile, {"version": "1", "flags": {}, "values": {}})
            doc["flags"][step.flag.name] = {"name": step.flag.name}
            doc["values"][step.flag.name] = {"enabled": False}
    for step in steps:
        if isinstance(step, ConfigRevertStep):
            documents.setdefault(step.config.profile, dict(SETTINGS))
    return ref.application, ref.environment, documents


def plan(path: Path, name: str | None = None, scenario: str | None = None) -> OwnDrill:
    """Read and validate FILE (PolicyFileInvalid), pick the policy and the scenario, and say what the drill builds."""
    doc = load_policy_file(path)
    policy = pick_policy(doc, name, path).with_defaults(doc.defaults)
    scenario = scenario or default_scenario(policy)
    if scenario not in SCENARIOS:
        raise OperatorError(f"unknown scenario {scenario!r} for --policy; known: {', '.join(SCENARIOS)}")
    reason = why_not(policy, scenario)
    if reason is not None:
        fits = ", ".join(possible(policy)) or "none"
        raise OperatorError(f"policy {policy.name!r} cannot drill {scenario}: {reason} (it can drill: {fits})")
    if policy.target.ecs is not None:
        raise OperatorError(
            f"policy {policy.name!r} targets ECS service {policy.target.ecs.cluster}/{policy.target.ecs.service}: "
            "drilling an ECS policy of your own is not built yet; the ecs-* drills (rollguard drill --list) run "
            "both shapes"
        )
    notes: list[str] = []
    alarm = alarm_name(doc, policy, notes)
    target = policy.target
    cd = target.codedeploy
    slice_ = policy.verify.slice
    dims = dict(slice_.dimensions) if slice_ else {}
    application = cd.application if cd else f"{policy.name}-standin"
    function = dims.get("FunctionName") or application
    alias = dims["Resource"].split(":", 1)[1] if ":" in dims.get("Resource", "") else "live"
    if cd is not None:
        notes.append(
            f"built: CodeDeploy application {cd.application} / group {cd.deployment_group} (Lambda platform), "
            f"function {function} behind alias {alias}"
            + ("" if "FunctionName" in dims else " (the function's name is the application's: the policy names none)")
            + "; if the group really deploys ECS or EC2/on-premises (Server), the sandbox stands a Lambda function in "
            "for it"
        )
    appconfig = _appconfig(policy)
    if appconfig is not None:
        app, env, documents = appconfig
        kinds = ", ".join(
            f"{p} ({'flags: ' + ', '.join(d['flags']) if 'flags' in d else 'freeform'})" for p, d in documents.items()
        )
        notes.append(f"built: AppConfig application {app} / environment {env}" + (f", profiles {kinds}" * bool(kinds)))
    rpm = max(REQUESTS_PER_MINUTE, 20 * policy.verify.min_requests)
    service = ServiceSpec(
        application=application,
        deployment_group=cd.deployment_group if cd else f"{policy.name}-standin",
        function=function,
        alias=alias,
        requests_per_minute=rpm,
        metric_namespace=DRILL_NAMESPACE,
        appconfig_application=appconfig[0] if appconfig else "none",
        appconfig_environment=appconfig[1] if appconfig else "none",
        appconfig_profiles=tuple(appconfig[2]) if appconfig else (),
        slice_metrics=(
            SliceMetricSpec(
                slice_.namespace,
                slice_.errors_metric,
                slice_.requests_metric,
                tuple(slice_.dimensions.items()),
                slice_.version_dimension,
            )
            if slice_
            else None
        ),
    )
    alarm_args = _alarm(alarm, policy, service, notes)
    load_balancer = _load_balancer(policy, notes)
    expected = EXPECTED[scenario]
    shadow = policy.mode == "shadow" and scenario in {"bad-deploy", "flag", "config"}
    if shadow:
        expected = "escalated"
        notes.append("the policy runs in shadow mode: it records what it would do, changes nothing, and escalates")
    if policy.trigger.require_change_within < 5 * 60 and scenario != "no-change":
        notes.append(
            f"warning: require_change_within {format_duration(policy.trigger.require_change_within)} is shorter than "
            "the 2-3 minutes the sandbox's alarm takes to fire after the change: the change may be out of scope"
        )
    gated = any(step.approval is not None and step.approval.required for step in policy.ladder)
    if gated:
        notes.append("the drill approves each gated step as on-call would, 90 s after it asks")
    expected_alias = _expected_alias(policy, scenario, shadow)
    built = Scenario(
        name=f"{scenario} ({policy.name})",
        description=f"{policy.name} from {path}: {SCENARIOS[scenario]}.",
        expected_outcome=expected,
        setup=_setup(scenario, policy, appconfig[2] if appconfig else None, cd is not None),
        respond=_approve_each if gated else None,
        expected_alias=expected_alias,
        load_balancer=load_balancer,
        alarm=alarm_args,
    )
    return OwnDrill(policy, built, service, load_balancer, notes)


def run(drill: OwnDrill, path: Path, on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The drill through the real path, FILE as the intake's policy file; the result of ``run_scenario``, with what
    was built and synthesised under ``own_policy``."""
    result = run_scenario(drill.scenario, service=drill.service, policy_file=path.resolve(), on_event=on_event)
    result["own_policy"] = {"file": str(path), "policy": drill.policy.name, "notes": drill.notes}
    return result


def _expected_alias(policy: Policy, scenario: str, shadow: bool) -> dict[str, float] | None:
    """Who the alias should route to at the end: revision 1 once a bad deploy is undone (or nothing was deployed);
    revision 2 when nothing was changed (shadow); None when the ladder decides (a rollback tried in not-the-deploy,
    a canary only ladder left to CodeDeploy)."""
    if shadow:
        return {"2": 1.0}
    if scenario == "not-the-deploy":
        return None
    if scenario == "bad-deploy":
        full = [s for s in policy.ladder if s.action == "revert_recent_change" or s.scope == "full"]
        return {"1": 1.0} if any(s.action in {"rollback", "revert_recent_change"} for s in full) else None
    return {"1": 1.0}


def _alarm(name: str, policy: Policy, service: ServiceSpec, notes: list[str]) -> dict[str, Any]:
    """A CloudWatch metric alarm of that name: on the policy's slice metric (errors, Sum, over the fixed dimensions)
    when it has ``verify.slice``, else on the sandbox's aggregate error rate; above ``verify.max_error_rate`` in 2 of 3
    datapoints."""
    rate = policy.verify.max_error_rate
    slice_ = policy.verify.slice
    if slice_ is not None:
        period = slice_.period if slice_.period % 60 == 0 else 60
        threshold = round(rate * service.requests_per_minute * period / 60, 3)
        metric = {
            "Namespace": slice_.namespace,
            "MetricName": slice_.errors_metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in slice_.dimensions.items()],
            "Statistic": "Sum",
            "Period": period,
        }
        why = (
            f"{slice_.namespace} {slice_.errors_metric} {dict(slice_.dimensions)} (Sum; the policy's verify.slice), "
            f"threshold {threshold:g} errors per {format_duration(period)} "
            f"(verify.max_error_rate {rate:.1%} of {service.requests_per_minute} requests a minute)"
        )
    else:
        threshold = round(rate * 100, 3)
        metric = {
            "Namespace": DRILL_NAMESPACE,
            "MetricName": "ErrorRate",
            "Dimensions": [{"Name": "Service", "Value": service.function}],
            "Statistic": "Average",
            "Period": 60,
        }
        why = (
            f"{DRILL_NAMESPACE} ErrorRate {{Service: {service.function}}} (Average, percent of requests failing), "
            f"threshold {threshold:g} (verify.max_error_rate {rate:.1%}), period 1m"
        )
    notes.append(f"synthesised: alarm {name} on metric {why}, ALARM at 2 of 3 datapoints above it")
    return {
        "AlarmName": name,
        "AlarmDescription": f"rollguard drill of policy {policy.name}",
        **metric,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "missing",
    }


def _load_balancer(policy: Policy, notes: list[str]) -> LoadBalancerSpec | None:
    lb = policy.target.load_balancer
    if lb is None:
        return None
    names: list[str] = []
    for step in policy.ladder:
        if step.action == "shift_traffic":
            names += [n for n in (step.away_from, step.to) if n not in names]
    names = names or [f"{lb.name}-blue", f"{lb.name}-green"]
    groups = tuple(TargetGroupSpec(n, 100 if i == 0 else 0) for i, n in enumerate(names))
    port = lb.listener_port or 80
    notes.append(
        f"built: load balancer {lb.name}, listener HTTP:{port} forwarding to {', '.join(names)} ({names[0]} serving); "
        "the drill's failure is in the Lambda service, not behind it"
    )
    rule = RuleSpec(priority=lb.rule_priority) if lb.rule_priority is not None else None
    return LoadBalancerSpec(name=lb.name, target_groups=groups, listener_port=port, rule=rule)


def _setup(
    scenario: str, policy: Policy, documents: dict[str, dict[str, Any]] | None, deployed: bool
) -> Callable[[Stage], None]:
    rate = policy.verify.max_error_rate
    healthy, bad = min(0.01, rate / 5), min(0.9, max(0.2, 4 * rate))
    # Long enough that what the setup itself changed (the first release, the first configuration) is out of scope.
    quiet = max(20 * 60, policy.trigger.require_change_within + 5 * 60)
    flag = next((s.flag for s in policy.ladder if isinstance(s, FlagStep)), None)
    config = next((s.config for s in policy.ladder if isinstance(s, ConfigRevertStep)), None)

    def setup(stage: Stage) -> None:
        stage.behave(lambda version, live: healthy)
        if documents is not None:
            stage.appconfig(documents)
            for profile, document in documents.items():  # a profile with a history, so a revert has a version to go to
                if "flags" not in document:
                    stage.push(profile, document)
        if deployed:
            stage.deploy("1")
        else:
            stage.publish("1")  # the first release: the alias created with the function, no deployment in scope
        stage.sb.advance(quiet)
        if scenario == "bad-deploy":
            stage.behave(lambda version, live: bad if version == "2" else None)
            stage.deploy("2")
        elif scenario == "not-the-deploy":
            stage.deploy("2")
            stage.sb.advance(3 * 60)
            stage.behave(lambda version, live: bad)
        elif scenario == "flag":
            assert flag is not None
            stage.behave(lambda version, live: bad if live.flag(flag.name, flag.profile) else None)
            stage.flip(flag.name, True, flag.profile)
        elif scenario == "config":
            assert config is not None
            stage.behave(lambda version, live: bad if (live.setting("timeout_ms", config.profile) or 0) < 100 else None)
            stage.push(config.profile, {**SETTINGS, "timeout_ms": 50})  # a typo: 50 ms instead of 500
        else:  # no-change
            stage.behave(lambda version, live: bad)

    return setup


def _approve_each(sb: Sandbox, incident_id: str, timeout_s: float = 120.0) -> None:
    """On-call approves every gated step as it asks, until the execution ends."""
    ddb, sfn = sb.client("dynamodb"), sb.client("stepfunctions")
    arn = sb.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{incident_id}"
    approved: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
        item = ddb.get_item(TableName=TABLES["IncidentsTable"], Key={"incident_id": {"S": incident_id}}).get("Item")
        token = (item or {}).get("task_token", {}).get("S")
        if token and token not in approved:
            _decide(True, "drill: on-call approves the step")(sb, incident_id)
            approved.add(token)
        time.sleep(0.02)
