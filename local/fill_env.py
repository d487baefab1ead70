"""Fill local/env.json's placeholders from a deployed stack, for `sam local invoke --env-vars`.

    aws cloudformation describe-stacks --stack-name rollguard --output json \\
      | python3 local/fill_env.py > local/env.deployed.json

Placeholders: ``<Output:Key>`` (the stack's output Key), ``<Parameter:Name>`` (the value the stack was deployed with)
and ``<StackName>``. Any placeholder the stack does not resolve fails, naming it: a half-filled file would point a
handler at a table named ``<Output:...>``. Standard library only; reads the describe-stacks JSON on stdin, or from
the file named as the first argument.
"""

import json
import re
import sys
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent / "env.json"
PLACEHOLDER = re.compile(r"<(Output|Parameter):([A-Za-z0-9]+)>|<StackName>")


def fill(env: dict[str, dict[str, str]], stack: dict[str, Any]) -> dict[str, dict[str, str]]:
    values = {
        "Output": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        "Parameter": {
            p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in stack.get("Parameters", [])
        },
    }
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "<StackName>":
            return str(stack["StackName"])
        kind, key = match.group(1), match.group(2)
        if key not in values[kind]:
            missing.append(match.group(0))
            return match.group(0)
        return values[kind][key]

    filled = {
        function: {k: PLACEHOLDER.sub(one, v) for k, v in variables.items()} for function, variables in env.items()
    }
    if missing:
        raise SystemExit(f"stack {stack.get('StackName')} does not resolve {', '.join(sorted(set(missing)))}")
    return filled


def main(argv: list[str]) -> int:
    described = json.loads(Path(argv[1]).read_text() if len(argv) > 1 else sys.stdin.read())
    stacks = described.get("Stacks", [described])
    if len(stacks) != 1:
        raise SystemExit(f"describe-stacks gave {len(stacks)} stacks; name one with --stack-name")
    print(json.dumps(fill(json.loads(TEMPLATE.read_text()), stacks[0]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
