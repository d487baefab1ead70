"""Append-only audit events: one per thing that happened, never updated, never deleted.

Each event is written with ``attribute_not_exists`` so a retried write cannot overwrite history;
the functions' IAM grants no UpdateItem/DeleteItem on the table. Query by incident (table key) or
by target over time (GSI ``by_target``).
"""

import secrets
from typing import Any

from pydantic import BaseModel, Field

from rollguard import clock
from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.adapters.dynamo import from_item, to_item

AUTOMATION = "rollguard-automation"


class AuditEvent(BaseModel):
    incident_id: str
    target_key: str
    kind: str
    actor: str = AUTOMATION
    result: str = "ok"
    reason: str = ""
    summary: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    at: str = Field(default_factory=clock.iso)
    event_key: str = ""
    # Where it happened, for a target away from the stack's account and region (rollguard.accounts): the account,
    # the region and the role assumed there. Absent at home.
    account: str | None = None
    region: str | None = None
    role_arn: str | None = None

    def model_post_init(self, _context: Any) -> None:
        if not self.event_key:
            # Time first so a query by incident comes back in order; the suffix keeps keys unique.
            self.event_key = f"{self.at}#{self.kind}#{secrets.token_hex(3)}"


def step_event_key(kind: str, step: int, suffix: str = "") -> str:
    """One audit event per step and kind: the state machine retries whole tasks, and a retry that gets this far
    again finds its event written (AuditLog.append answers False) instead of recording the step twice."""
    return f"{kind}#step{step + 1}{f'#{suffix}' if suffix else ''}"


def put_request(table: str, event: AuditEvent) -> dict[str, Any]:
    return {
        "TableName": table,
        "Item": to_item(event.model_dump()),
        "ConditionExpression": "attribute_not_exists(incident_id)",
    }


class AuditLog:
    def __init__(self, dynamodb: Any, table: str):
        self._db = dynamodb
        self._table = table

    def append(self, event: AuditEvent) -> bool:
        """Write ``event``; False when an event with the same key already exists (a duplicate delivery)."""
        try:
            self._db.put_item(**put_request(self._table, event))
            return True
        except AWS_FAILURES as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"appending audit event {event.kind} to {self._table}") from exc

    def for_incident(self, incident_id: str) -> list[dict[str, Any]]:
        return self._query(
            KeyConditionExpression="incident_id = :i", ExpressionAttributeValues={":i": {"S": incident_id}}
        )

    def for_target(self, target_key: str, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        """Events for ``target_key`` with ``since <= at <= until`` (ISO timestamps; either bound may be open)."""
        values: dict[str, Any] = {":t": {"S": target_key}}
        condition = "target_key = :t"
        if since and until:
            condition += " AND #at BETWEEN :a AND :b"
        elif since:
            condition += " AND #at >= :a"
        elif until:
            condition += " AND #at <= :b"
        if since:
            values[":a"] = {"S": since}
        if until:
            values[":b"] = {"S": until}
        names = {"#at": "at"} if since or until else None
        return self._query(
            IndexName="by_target",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            **({"ExpressionAttributeNames": names} if names else {}),
        )

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator = self._db.get_paginator("query")
        try:
            for page in paginator.paginate(TableName=self._table, **kwargs):
                events.extend(from_item(item) for item in page["Items"])
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading audit events from {self._table}") from exc
        return sorted(events, key=lambda e: (e["at"], e["event_key"]))
