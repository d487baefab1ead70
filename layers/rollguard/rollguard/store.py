"""Incidents and per-target locks in DynamoDB.

Opening an incident is one transaction: take the target's lock (free or expired), create the
incident, append the first audit event. Exactly one of many concurrent alarms wins it; the others
join the open incident, in a second transaction.

Two DynamoDB calls for an alarm that joins: the failed open answers who holds the lock (each item asks for
``ReturnValuesOnConditionCheckFailure: ALL_OLD``, so the CancellationReasons carry the item that failed its
condition: "CancellationReason", DynamoDB API reference), then one TransactWriteItems joins it: still held by
that incident, the incident not closed, its alarm count, the audit event (append-only) and the event id's
record, all or nothing ("TransactWriteItems": up to 100 actions on distinct items, atomically). A reason
without its item (an SDK or emulator that drops it) falls back to reading the lock.
"""

from dataclasses import dataclass
from typing import Any

from rollguard import clock
from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.adapters.dynamo import from_item, to_item
from rollguard.audit import AuditEvent, put_request
from rollguard.errors import LockLost, TargetNotFound, TransientAwsError
from rollguard.incident import CLOSED, IncidentItem

OPEN_ATTEMPTS = 5
# How long an alarm event id is remembered: EventBridge retries a delivery for up to 24 hours by default
# ("Event retry policy and using dead-letter queues", EventBridge user guide), and Lambda keeps an asynchronous
# event for at most 6 hours ("Configuring error handling for asynchronous invocation"). DynamoDB's TTL deletes
# the record some time after it expires, and the condition below treats an expired record as gone.
REPLAY_WINDOW_S = 24 * 3600
EVENT_PREFIX = "event#"
STARTING = "starting"  # an incident whose execution has not started yet (IncidentItem.status)


@dataclass(frozen=True)
class OpenResult:
    opened: bool
    incident_id: str
    status: str
    fresh: bool = True  # the event was recorded now; False: a delivery of an event already recorded
    incident: IncidentItem | None = None  # the incident as the store last read it, when it had to


def _cancelled(exc: Exception, names: tuple[str, ...]) -> dict[str, dict[str, Any] | None]:
    """The items of a cancelled transaction whose condition failed, by name, each with its item as it was when
    DynamoDB returned it (ALL_OLD), else None. Any other failure is the caller's to translate."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return {
        name: reason.get("Item")
        for name, reason in zip(names, reasons, strict=False)
        if reason.get("Code") == "ConditionalCheckFailed"
    }


class IncidentStore:
    def __init__(self, dynamodb: Any, incidents_table: str, locks_table: str, audit_table: str):
        self._db = dynamodb
        self.incidents_table = incidents_table
        self.locks_table = locks_table
        self.audit_table = audit_table

    def open_or_join(
        self, incident: IncidentItem, lock_ttl_seconds: int, first_event: AuditEvent, event_id: str = ""
    ) -> OpenResult:
        """Open ``incident`` if its target is free, else join whoever holds it. An alarm event id seen in the last
        REPLAY_WINDOW_S (a redelivery, a replay from an archive) never opens a second incident, nor counts twice:
        it is a duplicate of the one it opened or joined, even after that one closed. A lock that changed hands
        between the attempt and the join is tried again, a few times, then left to the event's retry."""
        for _ in range(OPEN_ATTEMPTS):
            failed = self._try_open(incident, lock_ttl_seconds, first_event, event_id)
            if failed is None:
                return OpenResult(True, incident.incident_id, incident.status)
            holder = self._holder(failed, "event", f"{EVENT_PREFIX}{event_id}") if event_id else None
            holder = holder or self._holder(failed, "lock", incident.target_key)
            if holder is None:
                continue
            joined = self._join(holder, incident.target_key, first_event, event_id)
            if joined is not None:
                return joined
        raise TransientAwsError(
            f"opening an incident for {incident.target_key}: its lock changed hands {OPEN_ATTEMPTS} times; "
            "the event's retry tries again"
        )

    def _holder(self, failed: dict[str, dict[str, Any] | None], name: str, key: str) -> str | None:
        """The incident named on the lock-table item ``key`` whose condition failed, from the cancellation
        reason's item, or read when the reason came without it."""
        if name not in failed:
            return None
        item = failed[name]
        if item is not None and "incident_id" in item:
            return str(item["incident_id"]["S"])
        return self.lock_holder(key)

    def _try_open(
        self, incident: IncidentItem, lock_ttl_seconds: int, first_event: AuditEvent, event_id: str
    ) -> dict[str, dict[str, Any] | None] | None:
        """One transaction: lock, incident, first audit event and the event id's record. None if it committed,
        else the conditions that failed ("lock", "event", ...) with the items that failed them."""
        now = clock.now()
        epoch = int(now.timestamp())
        lock = {
            "target_key": incident.target_key,
            "incident_id": incident.incident_id,
            "acquired_at": clock.iso(now),
            "expires_at_epoch": epoch + lock_ttl_seconds,
        }
        free = self._free(epoch)
        items = [
            {"Put": {"TableName": self.locks_table, "Item": to_item(lock), **free}},
            {
                "Put": {
                    "TableName": self.incidents_table,
                    "Item": to_item(incident.stored()),
                    "ConditionExpression": "attribute_not_exists(incident_id)",
                }
            },
            {"Put": put_request(self.audit_table, first_event)},
        ]
        if event_id:
            items.append({"Put": self._event_record(event_id, incident.incident_id, epoch)})
        failed = self._transact(
            items, ("lock", "incident", "audit", "event"), f"opening an incident for {incident.target_key}"
        )
        if failed is None:
            return None
        return failed or {"lock": None, "event": None}  # no reasons given: look at both

    def _join(self, holder: str, target_key: str, first_event: AuditEvent, event_id: str) -> OpenResult | None:
        """Record the alarm on ``holder`` in one transaction, conditional on ``holder`` still holding the target's
        lock and being neither closed nor still starting; None when the lock changed hands or the incident closed
        (the caller tries to open again). A duplicate (its audit event or event record already written) or an
        incident still starting answers with the incident as DynamoDB returned it."""
        event = first_event.model_copy(update={"incident_id": holder})
        failed = self._try_join(holder, target_key, event, event_id, allow_starting=False)
        if failed is None:
            return OpenResult(False, holder, "open")
        stored = failed.get("incident")
        current = IncidentItem.model_validate(from_item(stored)) if stored else None
        status = current.status if current else ("open" if "incident" not in failed else "unknown")
        if "audit" in failed or "event" in failed:
            return OpenResult(False, holder, status, fresh=False, incident=current)
        if "lock" in failed or current is None or status != STARTING:
            return None  # the lock changed hands, or the incident closed or is gone
        # The incident's execution failed to start earlier: join it all the same (the caller retries the start).
        failed = self._try_join(holder, target_key, event, event_id, allow_starting=True)
        if failed is None:
            return OpenResult(False, holder, STARTING, incident=current)
        if "audit" in failed or "event" in failed:
            return OpenResult(False, holder, STARTING, fresh=False, incident=current)
        return None

    def _try_join(
        self, holder: str, target_key: str, event: AuditEvent, event_id: str, allow_starting: bool
    ) -> dict[str, dict[str, Any] | None] | None:
        epoch = int(clock.now().timestamp())
        not_in = sorted(CLOSED) if allow_starting else sorted(CLOSED | {STARTING})
        statuses = {f":s{i}": {"S": status} for i, status in enumerate(not_in)}
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.incidents_table,
                    "Key": {"incident_id": {"S": holder}},
                    "UpdateExpression": "ADD alarm_count :one",
                    "ConditionExpression": f"attribute_exists(incident_id) AND NOT (#s IN ({', '.join(statuses)}))",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":one": {"N": "1"}, **statuses},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {"Put": put_request(self.audit_table, event)},
            {
                "ConditionCheck": {
                    "TableName": self.locks_table,
                    "Key": {"target_key": {"S": target_key}},
                    "ConditionExpression": "incident_id = :i",
                    "ExpressionAttributeValues": {":i": {"S": holder}},
                }
            },
        ]
        if event_id:
            items.append({"Put": self._event_record(event_id, holder, epoch)})
        # Cancelled for another reason (a conflicting transaction, capacity): raised for the event's retry.
        return self._transact(
            items, ("incident", "audit", "lock", "event"), f"recording an alarm on incident {holder}", unexplained=True
        )

    def _transact(
        self, items: list[dict[str, Any]], names: tuple[str, ...], what: str, unexplained: bool = False
    ) -> dict[str, dict[str, Any] | None] | None:
        """One TransactWriteItems: None if it committed, else the items (by ``names``, in order) whose condition
        failed, empty when DynamoDB named none; with ``unexplained``, that case is raised as transient instead. Any
        other failure is raised as Rollguard's error."""
        try:
            self._db.transact_write_items(TransactItems=items)
            return None
        except AWS_FAILURES as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc, what) from exc
            failed = _cancelled(exc, names)
            if unexplained and not failed:
                raise translate(exc, what, otherwise=TransientAwsError) from exc
            return failed

    def _event_record(self, event_id: str, incident_id: str, epoch: int) -> dict[str, Any]:
        seen = {
            "target_key": f"{EVENT_PREFIX}{event_id}",
            "incident_id": incident_id,
            "expires_at_epoch": epoch + REPLAY_WINDOW_S,
        }
        return {"TableName": self.locks_table, "Item": to_item(seen), **self._free(epoch)}

    @staticmethod
    def _free(epoch: int) -> dict[str, Any]:
        """The condition of taking a lock-table item: absent, or expired (TTL deletes late)."""
        return {
            "ConditionExpression": "attribute_not_exists(target_key) OR expires_at_epoch < :now",
            "ExpressionAttributeValues": {":now": {"N": str(epoch)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def event_incident(self, event_id: str) -> str | None:
        """The incident an alarm event id opened, while its record lasts (REPLAY_WINDOW_S)."""
        return self.lock_holder(f"{EVENT_PREFIX}{event_id}")

    def lock_holder(self, target_key: str) -> str | None:
        try:
            item = self._db.get_item(
                TableName=self.locks_table, Key={"target_key": {"S": target_key}}, ConsistentRead=True
            ).get("Item")
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading the lock for {target_key}") from exc
        return item["incident_id"]["S"] if item else None

    def incident(self, incident_id: str) -> IncidentItem | None:
        """The incident's item, read consistently; None when there is no such incident."""
        item = self.get(incident_id)
        return IncidentItem.model_validate(item) if item is not None else None

    def get(self, incident_id: str) -> dict[str, Any] | None:
        """The incident's stored attributes as plain data (``execution_input`` as JSON text). Prefer ``incident``;
        approvals and closing still read this form."""
        try:
            item = self._db.get_item(
                TableName=self.incidents_table, Key={"incident_id": {"S": incident_id}}, ConsistentRead=True
            ).get("Item")
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading incident {incident_id}") from exc
        return from_item(item) if item else None

    def update(self, incident_id: str, add: dict[str, int] | None = None, **fields: Any) -> None:
        """SET ``fields`` and ADD ``add`` on the incident's item; each name must be an IncidentItem attribute."""
        unknown = sorted(set(fields).union(add or {}) - set(IncidentItem.model_fields))
        if unknown:
            raise ValueError(f"not attributes of an incident item (rollguard.incident.IncidentItem): {unknown}")
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

    def settle(self, incident_id: str, outcome: str, closed_by: str, reason: str) -> dict[str, Any]:
        """Give the incident its outcome once: the first closer (the state machine, or the watchdog after a dead
        execution) wins; a later one, or a retry, gets the incident as the winner left it (``closed_by`` says
        who), so both tell the same story."""
        values = {":o": outcome, ":b": closed_by, ":t": clock.iso(), ":c": "closed", ":r": reason[:1000]}
        try:
            item = self._db.update_item(
                TableName=self.incidents_table,
                Key={"incident_id": {"S": incident_id}},
                # A closed incident waits for nobody: its task token goes (SET and REMOVE in one expression, "Update
                # expressions", DynamoDB Developer Guide), so a late approver is told it is closed instead of claiming
                # it (claim_token) and marking it open again.
                UpdateExpression="SET #s = :o, closed_by = :b, closed_at = :t, current_step = :c, outcome_reason = :r "
                "REMOVE task_token",
                ConditionExpression="attribute_exists(incident_id) AND attribute_not_exists(closed_by)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item(values),
                ReturnValues="ALL_NEW",
            )["Attributes"]
            return from_item(item)
        except AWS_FAILURES as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc, f"settling the outcome of incident {incident_id}") from exc
        current = self.get(incident_id)
        if current is None:
            raise TargetNotFound(f"settling the outcome of incident {incident_id}: no such incident")
        return current

    def remember(self, incident_id: str, name: str, value: Any) -> Any:
        """Store ``value`` under ``name`` on the incident unless something is stored there already, and answer what
        is stored: the first attempt of a step records what it found before changing anything, and a retry (after
        a lost response) gets that, not what the first attempt left."""
        if name not in IncidentItem.model_fields:
            raise ValueError(f"{name} is not an attribute of the incident item (rollguard.incident.IncidentItem)")
        try:
            item = self._db.update_item(
                TableName=self.incidents_table,
                Key={"incident_id": {"S": incident_id}},
                UpdateExpression="SET #n = if_not_exists(#n, :v)",
                ConditionExpression="attribute_exists(incident_id)",
                ExpressionAttributeNames={"#n": name},
                ExpressionAttributeValues=to_item({":v": value}),
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except AWS_FAILURES as exc:
            raise translate(
                exc, f"recording {name} on incident {incident_id}", frozenset({"ConditionalCheckFailedException"})
            ) from exc
        return from_item(item)[name]

    def claim_token(self, incident_id: str, token: str, decision: str) -> bool:
        """Take the waiting task token off the incident, once: False when it is gone (a second approver, or the
        incident closed)."""
        try:
            self._db.update_item(
                TableName=self.incidents_table,
                Key={"incident_id": {"S": incident_id}},
                UpdateExpression="REMOVE task_token SET approval_decision = :d, #s = :s",
                ConditionExpression="task_token = :t AND attribute_not_exists(closed_by)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":t": {"S": token}, ":d": {"S": decision}, ":s": {"S": "open"}},
            )
        except AWS_FAILURES as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"claiming the approval of incident {incident_id}") from exc
        return True

    def renew_lock(self, target_key: str, incident_id: str, seconds: int) -> None:
        """Keep the target's lock for ``seconds`` more, if ``incident_id`` still holds it. LockLost if not: the lock
        expired and another incident took the target, so this one must not act on it."""
        expires = int(clock.now().timestamp()) + seconds
        try:
            self._db.update_item(
                TableName=self.locks_table,
                Key={"target_key": {"S": target_key}},
                UpdateExpression="SET expires_at_epoch = :e",
                ConditionExpression="incident_id = :i",
                ExpressionAttributeValues={":e": {"N": str(expires)}, ":i": {"S": incident_id}},
            )
        except AWS_FAILURES as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise LockLost(
                    f"incident {incident_id} no longer holds the lock on {target_key} (it expired, and the target "
                    "may be another incident's now): Rollguard stops acting on it"
                ) from exc
            raise translate(exc, f"renewing the lock on {target_key}") from exc

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
