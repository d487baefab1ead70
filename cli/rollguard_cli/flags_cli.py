"""``rollguard flags list|stale``: flag hygiene of an AppConfig FeatureFlags profile or an exported document.

Exit codes: 0 done (and, with --fail-on-stale, nothing stale); 1 stale flags with --fail-on-stale;
2 a usage error or a source that cannot be read.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollguard_cli.boundary import add_aws_options

if TYPE_CHECKING:
    from rollguard.flags import FeatureFlagsDocument


def _max_age(text: str) -> timedelta:
    from rollguard.durations import parse_duration

    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    flags = commands.add_parser("flags", help="feature flag hygiene of an AppConfig FeatureFlags profile")
    flags_commands = flags.add_subparsers(dest="flags_command", required=True, metavar="COMMAND", help="what to do")
    helps = {
        "list": "every flag with its state, type, owner, expiry and age",
        "stale": "flags past expiry, older than their type allows, ownerless, or deprecated but still deployed",
    }
    for name, text in helps.items():
        sub = flags_commands.add_parser(name, help=text, description=text)
        source = sub.add_argument_group("source: --file, or --application with --profile")
        source.add_argument("--file", metavar="PATH", help="a FeatureFlags JSON document (an exported profile)")
        source.add_argument("--application", metavar="APP", help="AppConfig application name or id")
        source.add_argument("--profile", metavar="PROFILE", help="configuration profile name or id")
        add_aws_options(source, "AWS region of the application (default: the AWS configuration's)")
        sub.add_argument("--json", action="store_true", help="one JSON object on stdout")
        if name == "stale":
            sub.add_argument(
                "--max-age",
                type=_max_age,
                metavar="DURATION",
                help="replace every type's lifetime (not a kill switch's), e.g. 30d",
            )
            sub.add_argument("--fail-on-stale", action="store_true", help="exit 1 when anything is stale (CI)")
        sub.set_defaults(func=run, flags_parser=sub)


def _check_source(args: argparse.Namespace) -> None:
    parser: argparse.ArgumentParser = args.flags_parser
    if args.file and (args.application or args.profile or args.region):
        parser.error("--file cannot be combined with --application, --profile or --region")
    if not args.file and not (args.application and args.profile):
        parser.error("give --file PATH, or --application and --profile")


def _load(args: argparse.Namespace) -> tuple[FeatureFlagsDocument, dict[str, Any], str]:
    """The document, a description of where it came from (for --json) and a label (for people)."""
    from rollguard.flags import FlagDocumentInvalid, load_document

    if args.file:
        path = Path(args.file)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise FlagDocumentInvalid(f"{path}: cannot read: {exc.strerror}") from exc
        return load_document(content, str(path)), {"file": str(path)}, str(path)

    from rollguard import clients
    from rollguard.adapters.appconfig_flags import AppConfigFlags

    appconfig = clients.client("appconfig", args.region)
    read = AppConfigFlags(appconfig).latest(args.application, args.profile)
    source = {
        "application": args.application,
        "profile": args.profile,
        "application_id": read.application_id,
        "profile_id": read.profile_id,
        "version": read.version,
        "region": appconfig.meta.region_name,
    }
    return read.document, source, f"{read.label} ({appconfig.meta.region_name})"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _list(document: FeatureFlagsDocument, source: dict[str, Any], label: str, as_json: bool) -> int:
    from rollguard import clock
    from rollguard.flags import describe_flags

    now = clock.now()
    rows = describe_flags(document, now)
    if as_json:
        print(
            json.dumps({"source": source, "as_of": clock.iso(now), "flags": [r.model_dump(mode="json") for r in rows]})
        )
        return 0
    print(f"{label}: {len(rows)} flag(s)")
    if rows:
        table = [["NAME", "ENABLED", "TYPE", "OWNER", "EXPIRES", "AGE"]]
        for r in rows:
            table.append(
                [
                    r.name + (" (deprecated)" if r.deprecated else ""),
                    "on" if r.enabled else "off",
                    r.type.value if r.type else "-",
                    r.owner or "-",
                    r.expires.isoformat() if r.expires else "-",
                    f"{r.age_days}d" if r.age_days is not None else "?",
                ]
            )
        print("\n".join(_table(table)))
    return 0


def _stale(
    document: FeatureFlagsDocument,
    source: dict[str, Any],
    label: str,
    args: argparse.Namespace,
) -> int:
    from rollguard import clock
    from rollguard.flags import stale_flags

    now = clock.now()
    findings = stale_flags(document, now, max_age=args.max_age)
    stale = list(dict.fromkeys(f.flag for f in findings))
    if args.json:
        print(
            json.dumps(
                {
                    "source": source,
                    "checked_at": clock.iso(now),
                    "max_age_seconds": int(args.max_age.total_seconds()) if args.max_age else None,
                    "flags_checked": len(document.flags),
                    "stale_flags": stale,
                    "findings": [f.model_dump(mode="json") for f in findings],
                }
            )
        )
    elif findings:
        print("\n".join(_table([[f.flag, f.reason, f.detail] for f in findings])))
        print(f"{len(stale)} of {len(document.flags)} flag(s) need attention in {label} ({len(findings)} finding(s))")
    else:
        print(f"no stale flags among the {len(document.flags)} in {label}")
    return 1 if findings and args.fail_on_stale else 0


def run(args: argparse.Namespace) -> int:
    _check_source(args)
    # An unreadable source, a missing profile, no credentials or region: nothing is checked, and boundary.py says
    # why in one error line (exit 2).
    document, source, label = _load(args)
    if args.flags_command == "list":
        return _list(document, source, label, args.json)
    return _stale(document, source, label, args)
