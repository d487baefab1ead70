"""Operator commands against a deployed stack: approve / deny a gated step, pause / resume / status."""

import argparse
import sys
from typing import Any

from rollguard_cli.review import ReviewError, stack_outputs


def add_parsers(commands: Any) -> None:
    for verb, text in (
        ("approve", "approve the gated step an incident is waiting on"),
        ("deny", "deny the gated step an incident is waiting on (the incident escalates)"),
    ):
        parser = commands.add_parser(verb, help=text)
        parser.add_argument("incident")
        parser.add_argument("--reason", default="", help="recorded in the audit trail with your IAM identity")
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
    status.set_defaults(func=_status)


def _stack_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, metavar="NAME", help="the deployed Rollguard stack")
    parser.add_argument("--region", help="the stack's region (default: your AWS configuration's)")


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


def _decide(args: argparse.Namespace) -> int:
    from rollguard.approvals import ApprovalError, decide

    session = _session(args)
    try:
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
    except (ApprovalError, ReviewError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = "approved" if decision.approved else "denied"
    print(f"{verdict}: incident {decision.incident_id} step {decision.step + 1} by {decision.approver}")
    return 0


def _control(args: argparse.Namespace) -> tuple[Any, Any]:
    from rollguard.control import Control

    session = _session(args)
    outputs = stack_outputs(session.client("cloudformation"), args.stack, ("LocksTableName",))
    return session, Control(session.client("dynamodb"), outputs["LocksTableName"])


def _pause(args: argparse.Namespace) -> int:
    try:
        session, control = _control(args)
        item = control.pause(args.reason, _identity(session))
    except ReviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"paused by {item['by']} at {item['at']}: {item['reason']}")
    return 0


def _resume(args: argparse.Namespace) -> int:
    try:
        _, control = _control(args)
        was_paused = control.resume()
    except ReviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("resumed: automated actions run again" if was_paused else "was not paused")
    return 0


def _status(args: argparse.Namespace) -> int:
    from rollguard.adapters.dynamo import from_item
    from rollguard.control import PAUSE_KEY

    try:
        session, control = _control(args)
        outputs = stack_outputs(session.client("cloudformation"), args.stack, ("LocksTableName",))
        locks = session.client("dynamodb").get_paginator("scan").paginate(TableName=outputs["LocksTableName"])
        held = [from_item(item) for page in locks for item in page["Items"]]
    except ReviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pause = control.paused()
    print(f"paused by {pause['by']} at {pause['at']}: {pause['reason']}" if pause else "active: not paused")
    open_incidents = [lock for lock in held if lock["target_key"] != PAUSE_KEY]
    for lock in sorted(open_incidents, key=lambda lock: lock["target_key"]):
        print(f"open: {lock['target_key']}  incident {lock['incident_id']}  since {lock.get('acquired_at', '?')}")
    if not open_incidents:
        print("no open incident")
    return 0
