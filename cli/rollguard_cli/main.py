"""``rollguard``: the operator CLI (policy check, drills, flag hygiene, incident review, operator commands).

Every subcommand registers the same way: its parser sets ``func``, which takes the parsed arguments and returns the
exit code. ``main`` only parses and calls it.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rollguard.policy import LadderStep

from rollguard_cli import flags_cli, operator_commands, review_commands


def _policy_check(paths: list[str]) -> int:
    from rollguard.policy import PolicyFileInvalid, load_policy_file, policy_warnings

    files = [f for p in paths for f in (sorted(Path(p).glob("*.y*ml")) if Path(p).is_dir() else [Path(p)])]
    if not files:
        print(f"no policy files found in {' '.join(paths)}", file=sys.stderr)
        return 2
    status = 0
    for file in files:
        try:
            doc = load_policy_file(file)
        except PolicyFileInvalid as exc:
            status = 2
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stderr)
            continue
        for warning in policy_warnings(doc, str(file)):
            print(f"warning: {warning}", file=sys.stderr)
        for policy in doc.policies:
            ladder = " → ".join(_describe_step(s) for s in policy.ladder)
            print(
                f"ok: {file}: {policy.name}: alarms {', '.join(policy.trigger.alarms)} → {policy.target.key}: {ladder}"
            )
    return status


def _describe_step(step: "LadderStep") -> str:
    from rollguard.actions import action_for

    return f"{action_for(step.action).describe(step)} ({step.verify.window}s)"


def _policy(args: argparse.Namespace) -> int:
    return _policy_check(args.paths)


def _drill(args: argparse.Namespace) -> int:
    from rollguard_cli.drills import SCENARIOS, public, render_timeline, run_drill, write_out

    if args.list or not args.scenario:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<18} expect {scenario.expected_outcome:<17} {scenario.description}")
        return 0 if args.list else 2
    if args.scenario not in SCENARIOS:
        print(f"unknown scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    result = run_drill(args.scenario)
    if args.out:
        write_out(result, Path(args.out))
    if args.json:
        print(json.dumps(public(result), default=str))
    else:
        print(render_timeline(result))
    return 0 if result["passed"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rollguard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    policy = commands.add_parser("policy", help="policy files")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate policy files (exit 2 on any problem)")
    check.add_argument("paths", nargs="+", metavar="PATH")
    check.set_defaults(func=_policy)
    drill = commands.add_parser("drill", help="run a simulated incident end to end on the local sandbox")
    drill.add_argument("scenario", nargs="?")
    drill.add_argument("--list", action="store_true", help="list the scenarios")
    drill.add_argument("--json", action="store_true", help="one JSON object on stdout")
    drill.add_argument("--out", metavar="DIR", help="write audit events, execution history and timeline here")
    drill.set_defaults(func=_drill)
    flags_cli.add_parser(commands)
    review_commands.add_commands(commands)
    operator_commands.add_parsers(commands)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
