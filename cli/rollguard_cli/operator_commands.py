"""Operator commands against a deployed stack: approve / deny a gated step, pause / resume / status.

What stops them (a wrong id or stack, an approval that cannot be given, no region or credentials) is one ``error:``
line and exit 2, said by boundary.py for every command."""

import argparse
import json
from typing import Any

from rollguard.incident import REASON_MAX

from rollguard_cli.boundary import add_aws_options
from rollguard_cli.review import stack_outputs


def add_parsers(commands: Any) -> None:
    for verb, text in (
        ("approve", "approve the gated step an incident is waiting on"),
        ("deny", "deny the gated step an incident is waiting on (the incident escalates)"),
    ):
        parser = commands.add_parser(verb, help=text)
        parser.add_argument("incident", metavar="INCIDENT", help="the incident id (the execution name)")
        parser.add_argument(
            "--reason",
            default="",
            type=_reason,
            help=f"recorded in the audit trail with your IAM identity (at most {REASON_MAX} characters)",
        )
        _stack_args(parser)
        parser.set_defaults(func=_decide)
    pause = commands.add_parser("pause", help="stop all automated actions (incidents still open and notify)")
    pause.add_argument("--reason", default="", help="shown in every incident blocked by the pause")
    _stack_args(pause)
    pause.set_defaults(func=_pause)
    resume = commands.add_parser("resume", help="let automated actions run again")
    _stack_args(resume)
    resume.set_defaults(func=_resume)
    status = commands.add_parser("status", help="paused or not, and the targets with an open incident")
    _stack_args(status)
    status.add_argument("--json", action="store_true", help="one JSON object: the pause and the open incidents")
    status.set_defaults(func=_status)


def _stack_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="NAME", help="the deployed Rollguard stack")
    add_aws_options(parser, "the stack's region (default: your AWS configuration's)")


def _session(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.session.Session(region_name=args.region) if args.region else boto3.session.Session()


def _store_and_audit(session: Any, outputs: dict[str, str]) -> tuple[Any, Any]:
    from rollguard.audit import AuditLog
    from rollguard.store import IncidentStore

    ddb = session.client("dynamodb")
    store = IncidentStore(ddb, outputs["IncidentsTableName"], outputs["LocksTableName"], outputs["AuditTableName"])
    return store, AuditLog(ddb, outputs["AuditTableName"])


def _identity(session: Any) -> str:
    return str(session.client("sts").get_caller_identity()["Arn"])


def _reason(text: str) -> str:
    """A decision's reason goes into the incident's state, whose size Step Functions caps."""
    if len(text) > REASON_MAX:
        raise argparse.ArgumentTypeError(f"{len(text)} characters; at most {REASON_MAX}")
    return text


def _decide(args: argparse.Namespace) -> int:
    from rollguard.approvals import decide

    session = _session(args)
    outputs = stack_outputs(
        session.client("cloudformation"), args.stack, ("IncidentsTableName", "AuditTableName", "LocksTableName")
    )
    store, audit = _store_and_audit(session, outputs)
    decision = decide(
        args.incident,
        args.command == "approve",
        args.reason,
        _identity(session),
        store,
        audit,
        session.client("stepfunctions"),
    )
    verdict = "approved" if decision.approved else "denied"
    print(f"{verdict}: incident {decision.incident_id} step {decision.step + 1} by {decision.approver}")
    return 0


def _control(args: argparse.Namespace) -> tuple[Any, Any]:
    from rollguard.control import Control

    session = _session(args)
    outputs = stack_outputs(session.client("cloudformation"), args.stack, ("LocksTableName",))
    return session, Control(session.client("dynamodb"), outputs["LocksTableName"])


def _pause(args: argparse.Namespace) -> int:
    session, control = _control(args)
    item = control.pause(args.reason, _identity(session))
    print(f"paused by {item['by']} at {item['at']}: {item['reason']}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    _, control = _control(args)
    was_paused = control.resume()
    print("resumed: automated actions run again" if was_paused else "was not paused")
    return 0


def _status(args: argparse.Namespace) -> int:
    from rollguard.adapters.dynamo import from_item
    from rollguard.control import PAUSE_KEY
    from rollguard.store import EVENT_PREFIX

    session, control = _control(args)
    outputs = stack_outputs(session.client("cloudformation"), args.stack, ("LocksTableName",))
    locks = session.client("dynamodb").get_paginator("scan").paginate(TableName=outputs["LocksTableName"])
    held = [from_item(item) for page in locks for item in page["Items"]]
    pause = control.paused()
    open_incidents = [
        {"target_key": lock["target_key"], "incident_id": lock["incident_id"], "since": lock.get("acquired_at")}
        for lock in sorted(held, key=lambda lock: lock["target_key"])
        if lock["target_key"] != PAUSE_KEY and not lock["target_key"].startswith(EVENT_PREFIX)
    ]
    if args.json:
        paused = {k: pause.get(k) for k in ("by", "at", "reason")} if pause else None
        print(json.dumps({"stack": args.stack, "paused": paused, "open_incidents": open_incidents}, indent=2))
        return 0
    print(f"paused by {pause['by']} at {pause['at']}: {pause['reason']}" if pause else "active: not paused")
    for lock in open_incidents:
        print(f"open: {lock['target_key']}  incident {lock['incident_id']}  since {lock['since'] or '?'}")
    if not open_incidents:
        print("no open incident")
    return 0
