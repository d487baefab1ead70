"""Incidents and per-target locks in DynamoDB.

Opening an incident is one transaction: take the target's lock (free or expired), create the
incident, append the first audit event. Exactly one of many concurrent alarms wins it; the others
join the open incident.
"""

import json
from dataclasses import dataclass
from typing import Any

from rollguard import clock
from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.audit import AuditEvent, from_item, put_request, to_item


@dataclass(frozen=True)
class OpenResult:
    opened: bool
    incident_id: str
    status: str


class IncidentStore:
    def __init__(self, dynamodb: Any, incidents_table: str, locks_table: str, audit_table: str):
        self._db = dynamodb
        self.incidents_table = incidents_table
        self.locks_table = locks_table
        self.audit_table = audit_table

    def open_or_join(self, incident: dict[str, Any], lock_ttl_seconds: int, first_event: AuditEvent) -> OpenResult:
        now = clock.now()
        lock = {
            "target_key": incident["target_key"],
            "incident_id": incident["incident_id"],
            "acquired_at": clock.iso(now),
            "expires_at_epoch": int(now.timestamp()) + lock_ttl_seconds,
        }
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.locks_table,
                            "Item": to_item(lock),
                            "ConditionExpression": "attribute_not_exists(target_key) OR expires_at_epoch < :now",
                            "ExpressionAttributeValues": {":now": {"N": str(int(now.timestamp()))}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.incidents_table,
                            "Item": to_item(incident),
                            "ConditionExpression": "attribute_not_exists(incident_id)",
                        }
                    },
                    {"Put": put_request(self.audit_table, first_event)},
                ]
            )
            return OpenResult(True, incident["incident_id"], incident["status"])
        except AWS_FAILURES as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc, f"opening an incident for {incident['target_key']}") from exc
        holder = self.lock_holder(incident["target_key"])
        if holder is None:
            # The lock vanished between our attempt and the read (the incident just closed): try once more.
            return self.open_or_join(incident, lock_ttl_seconds, first_event)
        current = self.get(holder) or {}
        return OpenResult(False, holder, str(current.get("status", "unknown")))

    def lock_holder(self, target_key: str) -> str | None:
        try:
            item = self._db.get_item(
                TableName=self.locks_table, Key={"target_key": {"S": target_key}}, ConsistentRead=True
            ).get("Item")
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading the lock for {target_key}") from exc
        return item["incident_id"]["S"] if item else None

    def get(self, incident_id: str) -> dict[str, Any] | None:
        try:
            item = self._db.get_item(
                TableName=self.incidents_table, Key={"incident_id": {"S": incident_id}}, ConsistentRead=True
            ).get("Item")
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading incident {incident_id}") from exc
        return from_item(item) if item else None

    def update(self, incident_id: str, add: dict[str, int] | None = None, **fields: Any) -> None:
        names, values, sets, adds = {}, {}, [], []
        for i, (key, value) in enumerate(fields.items()):
            names[f"#s{i}"] = key
            values[f":s{i}"] = value
            sets.append(f"#s{i} = :s{i}")
        for i, (key, value) in enumerate((add or {}).items()):
            names[f"#a{i}"] = key
            values[f":a{i}"] = value
            adds.append(f"#a{i} :a{i}")
        expression = " ".join(
            part
            for part in ("SET " + ", ".join(sets) if sets else "", "ADD " + ", ".join(adds) if adds else "")
            if part
        )
        try:
            self._db.update_item(
                TableName=self.incidents_table,
                Key={"incident_id": {"S": incident_id}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(incident_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except AWS_FAILURES as exc:
            raise translate(
                exc, f"updating incident {incident_id}", frozenset({"ConditionalCheckFailedException"})
            ) from exc

    def claim_token(self, incident_id: str, token: str, decision: str) -> None:
        """Take the waiting task token off the incident, once: a second approver finds it gone."""
        try:
            self._db.update_item(
                TableName=self.incidents_table,
                Key={"incident_id": {"S": incident_id}},
                UpdateExpression="REMOVE task_token SET approval_decision = :d, #s = :s",
                ConditionExpression="task_token = :t",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":t": {"S": token}, ":d": {"S": decision}, ":s": {"S": "open"}},
            )
        except AWS_FAILURES as exc:
            raise translate(exc, f"claiming the approval of incident {incident_id}") from exc

    def release_lock(self, target_key: str, incident_id: str) -> bool:
        """Free the target if ``incident_id`` still holds it; False when it was already free or taken over."""
        try:
            self._db.delete_item(
                TableName=self.locks_table,
                Key={"target_key": {"S": target_key}},
                ConditionExpression="incident_id = :i",
                ExpressionAttributeValues={":i": {"S": incident_id}},
            )
            return True
        except AWS_FAILURES as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"releasing the lock on {target_key}") from exc


def execution_input_of(incident: dict[str, Any]) -> dict[str, Any]:
    """The state machine input stored with the incident, so a failed start can be retried as is."""
    return dict(json.loads(incident["execution_input"]))
