"""How `rollguard policy check` copes with big and hostile policy files: wall time, peak memory, what it prints.

    .venv/bin/python bench/policy_check.py           # every case, plain-text table
    .venv/bin/python bench/policy_check.py --json    # the same numbers as JSON

Each case is a generated file checked by the real CLI (``rollguard_cli.main.main``) in a fresh interpreter, so its
peak RSS (VmHWM) is that file's alone, interpreter included; see the ``tiny`` row for the floor. A case
still running after ``--timeout`` seconds is killed and reported as such.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def _policy(i: int, alarms: list[str]) -> str:
    return (
        f"  - name: p{i:05d}\n"
        f"    trigger: {{alarms: [{', '.join(repr(a) for a in alarms)}]}}\n"
        f"    target: {{codedeploy: {{application: app{i}, deployment_group: group{i}}}}}\n"
        "    ladder: [{action: rollback, scope: full, verify: {window: 5m}}]\n"
    )


def _document(policies: list[str]) -> str:
    return "version: 1\npolicies:\n" + "".join(policies)


def distinct_services(n: int) -> str:
    """n teams, each with a literal alarm and a glob of its own (`svc-0042-5xx`, `svc-0042-p99-*`)."""
    return _document([_policy(i, [f"svc-{i:04d}-5xx", f"svc-{i:04d}-p99-*"]) for i in range(n)])


def shared_prefix(n: int) -> str:
    """n globs under one literal prefix, the hard case for prefix buckets (`checkout-0042-*`)."""
    return _document([_policy(i, [f"checkout-{i:04d}-*", f"checkout-{i:04d}"]) for i in range(n)])


def leading_star(n: int) -> str:
    """n globs that start with `*` (no literal prefix): only their literal suffixes tell them apart."""
    return _document([_policy(i, [f"*-{i:04d}-5xx"]) for i in range(n)])


def floating(n: int) -> str:
    """n globs with neither a literal prefix nor a suffix (`*-0042-*`): each can meet every other, the worst case."""
    return _document([_policy(i, [f"*-{i:04d}-*"]) for i in range(n)])


def of_size(size: int) -> str:
    """As many whole policies as fit in ``size`` bytes (the issue's 20 MB file; the largest file allowed)."""
    policies, total = [], len(_document([]).encode())
    while (
        total
        + len(next_one := _policy(len(policies), [f"svc-{len(policies):05d}-5xx", f"svc-{len(policies):05d}-p99-*"]))
        <= size
    ):
        policies.append(next_one)
        total += len(next_one.encode())
    return _document(policies)


def nested(depth: int) -> str:
    return "version: 1\npolicies: " + "[" * depth + "]" * depth + "\n"


def aliases(levels: int) -> str:
    """A 'billion laughs' document: each anchor repeats the previous one nine times."""
    lines = ["version: 1", 'a0: &a0 ["lol"]']
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]" for k in range(1, levels + 1)]
    lines.append(f"policies: *a{levels}")
    return "\n".join(lines) + "\n"


CASES: dict[str, tuple[str, Callable[[], str]]] = {
    "tiny": (
        "policies/rollguard.yaml (the floor: interpreter + imports)",
        lambda: (REPO / "policies/rollguard.yaml").read_text(),
    ),
    "distinct-3000": ("3,000 policies, a literal and a glob each", lambda: distinct_services(3000)),
    "shared-prefix-3000": ("3,000 policies, globs under one prefix", lambda: shared_prefix(3000)),
    "leading-star-3000": ("3,000 policies, globs starting with *", lambda: leading_star(3000)),
    "floating-3000": ("3,000 policies, globs *-NNNN-* (all overlap)", lambda: floating(3000)),
    "largest-allowed": ("as many policies as fit in 1 MiB", lambda: of_size(1024 * 1024)),
    "nesting-1000": ("[[[...]]] 1,000 levels deep", lambda: nested(1000)),
    "nesting-100000": ("[[[...]]] 100,000 levels deep", lambda: nested(100_000)),
    "aliases-9": ("9 levels of 9 aliases (9^9 leaves)", lambda: aliases(9)),
    "size-20MB": ("a 20 MB file of policies", lambda: of_size(20 * MIB)),
}


def peak_rss_mib() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; ru_maxrss would carry over the
    peak of the bench process that forked it (which built the 20 MB text)."""
    try:
        status = Path("/proc/self/status").read_text()
        return round(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024, 1)
    except (OSError, StopIteration):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_one(path: str) -> None:
    """Child process: check one file with the CLI, report time, peak RSS and what it printed."""
    import contextlib
    import io

    from rollguard_cli.main import main

    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: int | str = main(["policy", "check", path])
        except BaseException as exc:  # noqa: BLE001 - the bench reports a crash instead of dying with it
            code = f"crashed: {type(exc).__name__}"
    elapsed = time.perf_counter() - started
    lines = (out.getvalue() + err.getvalue()).splitlines()
    report = {
        "exit": code,
        "seconds": round(elapsed, 3),
        "peak_rss_mib": peak_rss_mib(),
        "lines": len(lines),
        "first_line": (lines[0] if lines else "")[:200],
    }
    print(json.dumps(report))


def measure(name: str, make: Callable[[], str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(make(), encoding="utf-8")
        size = path.stat().st_size
        try:
            child = subprocess.run(
                [sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return {"exit": f"killed after {timeout:.0f} s", "seconds": timeout, "bytes": size}
    last = child.stdout.strip().splitlines()[-1] if child.stdout.strip() else "{}"
    result = dict(json.loads(last)) if last.startswith("{") else {"exit": f"died ({child.returncode})"}
    result["bytes"] = size
    return result


def render(results: dict[str, Any]) -> str:
    rows = [("case", "size", "exit", "time", "peak RSS", "lines", "first line printed")]
    for name, r in results["cases"].items():
        rows.append(
            (
                name,
                f"{r['bytes'] / MIB:.2f} MiB" if r["bytes"] >= MIB // 10 else f"{r['bytes']} B",
                str(r.get("exit")),
                f"{r['seconds']:.2f} s",
                f"{r['peak_rss_mib']} MiB" if "peak_rss_mib" in r else "-",
                str(r.get("lines", "-")),
                str(r.get("first_line", ""))[:110],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:6])) + " | " + row[6] for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths) + "-+-" + "-" * 20)
    lines += ["", *(f"{name}: {CASES[name][0]}" for name in results["cases"])]
    m = results["machine"]
    lines.append(f"machine: Python {m['python']}, {m['cpu_count']} CPUs, {m['platform']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case is killed")
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="run only these cases")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one)
        return 0
    names = args.only or list(CASES)
    results: dict[str, Any] = {"cases": {name: measure(name, CASES[name][1], args.timeout) for name in names}}
    results["machine"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
