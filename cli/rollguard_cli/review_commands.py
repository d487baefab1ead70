"""``rollguard incidents``, ``rollguard timeline`` and ``rollguard report``: reviewing incidents from a drill's
``--out`` folder (``--from DIR``) or a deployed stack (``--stack NAME``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rollguard.accounts import ACCOUNT_ID, REGION
from rollguard.alarm_event import parse_aws_time
from rollguard.audit import AUTOMATION
from rollguard.durations import parse_duration

from rollguard_cli.boundary import add_aws_options, check_out_file
from rollguard_cli.review import (
    FolderSource,
    Review,
    ReviewError,
    Source,
    StackSource,
    event_line,
    load_review,
    span,
    timeline_onset,
)

FOLLOW_SECONDS = 3.0  # how often `timeline --follow` reads the audit table


def add_commands(commands: Any) -> None:
    """Register the review commands on the CLI's subparsers; each sets ``func`` (see main.py)."""

    def with_source(parser: argparse.ArgumentParser) -> None:
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--from", dest="folder", metavar="DIR", help="a folder written by `rollguard drill --out`")
        where.add_argument("--stack", metavar="NAME", help="a deployed Rollguard stack (reads its outputs)")
        add_aws_options(parser, "the stack's region (default: your AWS configuration's)")

    incidents = commands.add_parser("incidents", help="recent incidents with their time to mitigate and recover")
    with_source(incidents)
    incidents.add_argument("--since", metavar="DURATION", help="only incidents opened this long ago or later, e.g. 7d")
    incidents.add_argument(
        "--target", metavar="KEY", type=target_key, help=f"one target: {TARGET_FORMS}, e.g. codedeploy:checkout/prod"
    )
    incidents.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="at most this many, newest first (default 20)"
    )
    incidents.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    incidents.set_defaults(func=_reviewing(_incidents))

    timeline = commands.add_parser("timeline", help="every audit event of an incident, in order")
    timeline.add_argument("incident_id", metavar="INCIDENT", help="the incident id (the execution name)")
    with_source(timeline)
    timeline.add_argument("--json", action="store_true", help="the audit events as a JSON array")
    timeline.add_argument(
        "--follow",
        action="store_true",
        help=f"with --stack: print each new audit event (every {FOLLOW_SECONDS:g}s) until the incident is closed",
    )
    timeline.set_defaults(func=_reviewing(_timeline))

    report = commands.add_parser("report", help="a postmortem draft of an incident (Markdown or one HTML file)")
    report.add_argument("incident_id", metavar="INCIDENT", help="the incident id (the execution name)")
    with_source(report)
    report.add_argument(
        "--format", choices=["md", "html"], default="md", help="Markdown, or one self-contained HTML file (default md)"
    )
    report.add_argument(
        "--out", metavar="FILE", help="write here instead of printing (a new file; missing folders are created)"
    )
    report.set_defaults(func=_reviewing(_report))


def _reviewing(command: Callable[[argparse.Namespace, Source], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` run on the source its arguments name. A problem (a wrong id, folder or stack; no region or
    credentials; AWS refusing) stops it with one ``error:`` line and exit 2, said by boundary.py for every command."""

    def run(args: argparse.Namespace) -> int:
        return int(command(args, _source(args)))

    return run


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return value


# The forms of Target.key (rollguard.policy): what the Incidents table's by_target index is keyed by.
TARGET_FORMS = (
    "codedeploy:APPLICATION/GROUP, ecs:CLUSTER/SERVICE, appconfig:APPLICATION/ENVIRONMENT or elb:NAME, "
    "each optionally after ACCOUNT/REGION/ for a target in another account or region"
)
# A target away from home is keyed ACCOUNT/REGION/KEY (rollguard.accounts.target_key).
_TARGET_KEY = re.compile(rf"(?:{ACCOUNT_ID}/{REGION}/)?(?:(?:codedeploy|ecs|appconfig):[^/\s]+/[^/\s]+|elb:[^/\s]+)")


def target_key(text: str) -> str:
    if not _TARGET_KEY.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a target; expected {TARGET_FORMS}")
    return text


def _source(args: argparse.Namespace) -> Source:
    if getattr(args, "follow", False) and (args.folder or args.json):  # said before reading the folder
        raise ReviewError("--follow polls a stack's audit table: give --stack NAME, without --json")
    if args.folder:
        return FolderSource(Path(args.folder))
    import boto3

    return StackSource(args.stack, boto3.Session(region_name=args.region))


# ---------------------------------------------------------------- incidents


def incident_row(review: Review) -> dict[str, Any]:
    record = review.record
    return {
        "incident_id": record.incident_id,
        "policy": record.policy,
        "target": record.target_key,
        "outcome": review.outcome,
        "opened_at": record.opened_at,
        "alarm_onset": review.onset.isoformat() if review.onset else None,
        "time_to_mitigate_s": _rounded(review.time_to_first_action),
        "time_to_recover_s": _rounded(review.time_to_recovery),
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def render_incidents(rows: list[dict[str, Any]]) -> str:
    header = ["INCIDENT", "POLICY", "TARGET", "OUTCOME", "OPENED (UTC)", "TO MITIGATE", "TO RECOVER"]
    table = [
        [
            r["incident_id"],
            r["policy"],
            r["target"],
            r["outcome"],
            parse_aws_time(r["opened_at"]).strftime("%Y-%m-%d %H:%M:%S") if r["opened_at"] else "—",
            span(r["time_to_mitigate_s"]),
            span(r["time_to_recover_s"]),
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *table]
    )


def _incidents(args: argparse.Namespace, source: Source) -> int:
    since = datetime.now(UTC) - timedelta(seconds=parse_since(args.since)) if args.since else None
    records = source.incidents(since=since, target=args.target)[: args.limit]
    rows = [incident_row(Review(r, source.audit(r.incident_id), None)) for r in records]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no incidents in {source.describe()}")
    else:
        print(render_incidents(rows))
    return 0


def parse_since(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ReviewError(f"--since: {exc}") from exc


# ---------------------------------------------------------------- timeline


def render_timeline(review: Review) -> str:
    record = review.record
    onset = review.onset.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if review.onset else "unknown"
    lines = [
        f"Incident {record.incident_id} — {review.outcome}",
        f"Policy {record.policy} · target {record.target_key} · alarm {record.alarm}",
        f"Alarm onset {onset}; T is measured from it.",
        "",
    ]
    for event in review.events:
        at = parse_aws_time(event["at"])
        kind = event.get("kind", "").replace("_", " ")
        actor = event.get("actor", AUTOMATION)
        by = "" if actor == AUTOMATION else f" [by {actor}]"
        lines.append(
            f"  {review.offset(at):>9}  {at.astimezone(UTC):%H:%M:%S}  {kind:<16} {event.get('result', ''):<15}"
            f"{event.get('summary', '')}{by}"
        )
        reason = event.get("reason", "")
        if reason and reason not in event.get("summary", ""):
            lines.append(f"{'':>49}why: {reason}")
    lines += [
        "",
        f"Time to first action {span(review.time_to_first_action)} · time to recovery {span(review.time_to_recovery)}"
        f" · {len(review.events)} audit events",
    ]
    return "\n".join(lines)


sleep = time.sleep  # between polls of `timeline --follow` (a test writes events here)


def follow(source: Source, incident_id: str) -> int:
    """Print the incident's audit events as they are written (one line each, a drill's timeline format), polling
    every FOLLOW_SECONDS, until its incident_closed event; Ctrl-C stops it quietly (exit 0)."""
    printed: set[str] = set()
    try:
        while True:
            events = source.audit(incident_id)
            onset = timeline_onset(events)
            for event in (e for e in events if e["event_key"] not in printed):
                printed.add(event["event_key"])
                print(event_line(event, onset), flush=True)
                if event["kind"] == "incident_closed":
                    return 0
            sleep(FOLLOW_SECONDS)
    except KeyboardInterrupt:
        return 0


def _timeline(args: argparse.Namespace, source: Source) -> int:
    if args.follow:
        source.incident(args.incident_id)  # a wrong id is an error now, not a wait for events that never come
        return follow(source, args.incident_id)
    record = source.incident(args.incident_id)
    review = Review(record, source.audit(args.incident_id), None)
    print(json.dumps(review.events, indent=2) if args.json else render_timeline(review))
    return 0


# ---------------------------------------------------------------- report


def _report(args: argparse.Namespace, source: Source) -> int:
    from rollguard_cli.report import DRILL_NOTE, render

    out = Path(args.out) if args.out else None
    if out:
        check_out_file(out)  # before reading the incident: on a stack that is several AWS calls
    # Only drills write --from folders, and their clock is the sandbox's: say so in the draft.
    text = render(load_review(source, args.incident_id), args.format, note=DRILL_NOTE if args.folder else "")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
