"""``rollguard``: the operator CLI (policy check, drills, flag hygiene, incident review, operator commands, backtest,
triggers).

Every subcommand registers the same way: its parser sets ``func``, which takes the parsed arguments and returns the
exit code. ``main`` only parses and calls it through ``boundary.run``, which turns what stops a command (no region,
no credentials, AWS refusing, a wrong id or path, a closed stdout) into one ``error:`` line and exit 2.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollguard.policy import LadderStep

from rollguard_cli import backtest, boundary, flags_cli, operator_commands, review_commands, serve, triggers


def policy_check(paths: list[str]) -> dict[str, Any]:
    """The files checked, their policies (the fields of each ``ok:`` line), problems and warnings, as the one model
    both ``policy check`` renderings print."""
    from rollguard.policy import PolicyFileInvalid, load_policy_file, policy_warnings

    files = [f for p in paths for f in (sorted(Path(p).glob("*.y*ml")) if Path(p).is_dir() else [Path(p)])]
    if not files:
        raise boundary.OperatorError(f"no policy files found in {' '.join(paths)}")
    result: dict[str, Any] = {"files": [str(f) for f in files], "policies": [], "problems": [], "warnings": []}
    for file in files:
        try:
            doc = load_policy_file(file)
        except PolicyFileInvalid as exc:
            result["problems"] += [asdict(problem) for problem in exc.problems]
            continue
        result["warnings"] += [asdict(warning) for warning in policy_warnings(doc, str(file))]
        result["policies"] += [
            {
                "file": str(file),
                "name": policy.name,
                "alarms": policy.alarm_patterns,
                "target": policy.target.key,
                "ladder": [_step(s) for s in policy.ladder],
            }
            for policy in doc.policies
        ]
    return result


def _step(step: "LadderStep") -> dict[str, Any]:
    from rollguard.actions import action_for

    return {
        "action": step.action,
        "describe": action_for(step.action).describe(step),
        "verify_window_s": step.verify.window,
    }


def _where(item: dict[str, Any]) -> str:
    return f"{item['file']}: {item['path'] or '<root>'}: {item['reason']}"


def _policy(args: argparse.Namespace) -> int:
    result = policy_check(args.paths)
    status = 2 if result["problems"] else 0
    if args.json:
        print(json.dumps(result, indent=2))
        return status
    for file in result["files"]:
        for problem in (p for p in result["problems"] if p["file"] == file):
            print(f"error: {_where(problem)}", file=sys.stderr)
        for warning in (w for w in result["warnings"] if w["file"] == file):
            print(f"warning: {_where(warning)}", file=sys.stderr)
        for policy in (p for p in result["policies"] if p["file"] == file):
            ladder = " → ".join(f"{s['describe']} ({s['verify_window_s']}s)" for s in policy["ladder"])
            print(f"ok: {file}: {policy['name']}: alarms {', '.join(policy['alarms'])} → {policy['target']}: {ladder}")
    return status


def _drill(args: argparse.Namespace) -> int:
    from rollguard_cli.drills import SCENARIOS, public, run_drill, write_out

    if args.policy is not None:
        return _own_drill(args)
    if args.name or args.own_scenario:
        raise boundary.OperatorError("--name and --scenario drill a policy of your own: give --policy FILE too")
    if args.all:
        return _drill_all(args)
    if args.list or not args.scenario:
        listing = [
            {"name": s.name, "expected_outcome": s.expected_outcome, "description": s.description}
            for s in SCENARIOS.values()
        ]
        if args.json:
            print(json.dumps(listing, indent=2))
        else:
            for s in listing:
                print(f"{s['name']:<18} expect {s['expected_outcome']:<17} {s['description']}")
        return 0 if args.list else 2
    if args.scenario not in SCENARIOS:
        raise boundary.OperatorError(f"unknown scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}")
    if args.out:
        boundary.check_out_dir(Path(args.out))  # before the drill: it takes seconds
    scenario = SCENARIOS[args.scenario]
    result = _run_streamed(partial(run_drill, scenario.name), scenario.name, scenario.description, args.json)
    if args.out:
        write_out(result, Path(args.out))
    if args.json:
        print(json.dumps(public(result), default=str))
    return 0 if result["passed"] else 1


def _run_streamed(run: Callable[..., dict[str, Any]], name: str, description: str, as_json: bool) -> dict[str, Any]:
    """``run(on_event=…)`` a drill; in text, its title first, each audit event as it is written, then the rest of its
    timeline (the incident, the state at the end, the outcome). --json prints nothing here: one object, at the end."""
    from rollguard_cli.drills import StreamedTimeline, render_timeline, timeline_title

    if as_json:
        return run(on_event=None)
    print(timeline_title(name, description) + "\n", flush=True)
    result = run(on_event=StreamedTimeline())
    print(render_timeline(result, streamed=True))
    return result


def _drill_all(args: argparse.Namespace) -> int:
    """``drill --all``: every scenario, each timeline as ``drill NAME`` prints it, then one table; exit 1 if any
    failed (a drill whose alarm never opened an incident is a failure too, not the end of the run)."""
    from rollguard_cli.drills import SCENARIOS, NoIncident, public, render_summary, run_drill, summary_row, write_out

    if args.scenario or args.list:
        raise boundary.OperatorError("--all runs every scenario: give no scenario name and no --list")
    if args.out:
        boundary.check_out_dir(Path(args.out))  # one folder per scenario inside it
    results, rows = [], []
    for name, scenario in SCENARIOS.items():
        started = time.perf_counter()
        try:
            result = _run_streamed(partial(run_drill, name), name, scenario.description, args.json)
        except NoIncident as exc:
            if not args.json:
                print(f"Drill {name}: FAIL — {exc}\n")
            wall_s = round(time.perf_counter() - started, 2)
            rows.append(
                {"scenario": name, "outcome": "no incident", "expected": scenario.expected_outcome, "passed": False}
                | {"wall_s": wall_s}
            )
            continue
        if args.out:
            write_out(result, Path(args.out) / name)
        results.append(public(result))
        rows.append(summary_row(result))
        if not args.json:
            print(flush=True)
    if args.json:
        print(json.dumps({"drills": results, "summary": rows}, default=str))
    else:
        print(render_summary(rows))
    return 0 if all(r["passed"] for r in rows) else 1


def _own_drill(args: argparse.Namespace) -> int:
    """``drill --policy FILE``: the policy's own targets and alarm in the sandbox (own_drill.py), the same timeline."""
    from rollguard.policy import PolicyFileInvalid

    from rollguard_cli import own_drill
    from rollguard_cli.drills import public, write_out

    if args.scenario or args.list or args.all:
        raise boundary.OperatorError("with --policy, choose the scenario with --scenario (not a built-in drill's name)")
    path = Path(args.policy)
    try:
        drill = own_drill.plan(path, args.name, args.own_scenario)
    except PolicyFileInvalid as exc:  # as `policy check` says it: one line per problem
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.out:
        boundary.check_out_dir(Path(args.out))  # before the drill: it takes seconds
    if not args.json:
        print("\n".join(drill.notes) + "\n")
    scenario = drill.scenario
    result = _run_streamed(partial(own_drill.run, drill, path), scenario.name, scenario.description, args.json)
    if args.out:
        write_out(result, Path(args.out))
    if args.json:
        print(json.dumps(public(result), default=str))
    return 0 if result["passed"] else 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rollguard")
    except PackageNotFoundError:
        return "unknown (the rollguard distribution is not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollguard", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    policy = commands.add_parser("policy", help="policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND", help="what to do")
    check = policy_commands.add_parser("check", help="validate policy files (exit 2 on any problem)")
    check.add_argument("paths", nargs="+", metavar="PATH", help="a policy file, or a directory of *.yaml/*.yml files")
    check.add_argument(
        "--json", action="store_true", help="one JSON object on stdout: files, policies, problems, warnings"
    )
    check.set_defaults(func=_policy)
    drill = commands.add_parser("drill", help="run a simulated incident end to end on the local sandbox")
    drill.add_argument("scenario", nargs="?", metavar="SCENARIO", help="the scenario to run (see --list)")
    drill.add_argument("--list", action="store_true", help="list the scenarios")
    drill.add_argument(
        "--all", action="store_true", help="run every scenario, then a table of them all (exit 1 if any failed)"
    )
    drill.add_argument(
        "--policy",
        metavar="FILE",
        help="drill your own policy file: its targets and alarm are built in the sandbox with its own names",
    )
    drill.add_argument("--name", metavar="POLICY", help="with --policy: the policy to drill (default: the first)")
    drill.add_argument(
        "--scenario",
        dest="own_scenario",
        choices=["bad-deploy", "not-the-deploy", "flag", "config", "no-change"],
        help="with --policy: how the service breaks (default: what the policy's first ladder step is for)",
    )
    drill.add_argument("--json", action="store_true", help="one JSON document on stdout")
    drill.add_argument(
        "--out", metavar="DIR", help="write audit events, execution history and timeline here (created if missing)"
    )
    drill.set_defaults(func=_drill)
    flags_cli.add_parser(commands)
    review_commands.add_commands(commands)
    operator_commands.add_parsers(commands)
    serve.add_parser(commands)
    backtest.add_parser(commands)
    triggers.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return boundary.run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
