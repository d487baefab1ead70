"""``rollguard``: the operator CLI (policy check, drills, incident review)."""

import argparse
import json
import sys
from pathlib import Path

from rollguard_cli import review_commands


def _policy_check(paths: list[str]) -> int:
    from rollguard.policy import PolicyFileInvalid, load_policy_file

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
        for policy in doc.policies:
            cd = policy.target.codedeploy
            ladder = " → ".join(f"{s.action} {s.scope} ({s.verify.window}s)" for s in policy.ladder)
            print(
                f"ok: {file}: {policy.name}: alarms {', '.join(policy.trigger.alarms)} → "
                f"codedeploy {cd.application}/{cd.deployment_group}: {ladder}"
            )
    return status


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
    drill = commands.add_parser("drill", help="run a simulated incident end to end on the local sandbox")
    drill.add_argument("scenario", nargs="?")
    drill.add_argument("--list", action="store_true", help="list the scenarios")
    drill.add_argument("--json", action="store_true", help="one JSON object on stdout")
    drill.add_argument("--out", metavar="DIR", help="write audit events, execution history and timeline here")
    review_commands.add_commands(commands)
    args = parser.parse_args(argv)
    if hasattr(args, "handler"):
        return review_commands.run(args)
    if args.command == "policy":
        return _policy_check(args.paths)
    return _drill(args)


if __name__ == "__main__":
    sys.exit(main())
