"""An alarm event delivered again (EventBridge's retries, a replay from an archive) never opens a second incident,
and closing is settled once, whoever closes (issue 9)."""

from typing import Any

import pytest
from botocore.exceptions import ClientError
from rollguard.audit import AuditEvent
from rollguard.errors import TransientAwsError
from rollguard.incident import IncidentItem
from rollguard.store import OPEN_ATTEMPTS, IncidentStore
from rollguard_cli.sandbox.runner import TABLES, Sandbox

from tests.conftest import audit_events, incident_item, load_event, lock_items
from tests.functional.test_intake import executions, holding, intake  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)


def store(sb: Sandbox) -> IncidentStore:
    return IncidentStore(sb.client("dynamodb"), TABLES["IncidentsTable"], TABLES["LocksTable"], TABLES["AuditTable"])


def test_an_event_replayed_after_its_incident_closed_is_recorded_not_reopened(holding: Sandbox) -> None:  # noqa: F811
    event = load_event("remediation/intake/alarm.json")
    first = intake(holding, event)
    incident_id = first["incident_id"]
    store(holding).settle(incident_id, "resolved", "state machine", "recovered")
    assert store(holding).release_lock("codedeploy:checkout/checkout-prod", incident_id)
    holding.advance(3600)

    again = intake(holding, event)

    assert again["status"] == "duplicate" and again["incident_id"] == incident_id
    assert [e["name"] for e in executions(holding)] == [incident_id]
    assert lock_items(holding) == []
    assert incident_item(holding, incident_id)["status"] == "resolved"
    assert [e["kind"] for e in audit_events(holding, incident_id)].count("alarm_replayed") == 1


def test_the_first_closer_settles_the_outcome_and_a_later_one_gets_it(holding: Sandbox) -> None:  # noqa: F811
    incident_id = intake(holding, load_event("remediation/intake/alarm.json"))["incident_id"]

    first = store(holding).settle(incident_id, "resolved", "state machine", "recovered")
    later = store(holding).settle(incident_id, "escalated", "watchdog", "the execution FAILED")

    assert (first["status"], first["closed_by"]) == ("resolved", "state machine")
    assert (later["status"], later["closed_by"], later["outcome_reason"]) == ("resolved", "state machine", "recovered")


class _LockThatKeepsVanishing:
    """DynamoDB as seen in a race: the lock is taken when the transaction runs, gone when it is read."""

    def __init__(self) -> None:
        self.transactions = 0

    def transact_write_items(self, **_: Any) -> None:
        self.transactions += 1
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "lock"}}, "TransactWriteItems")

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {}


def test_opening_gives_up_after_a_few_races_instead_of_recursing() -> None:
    db = _LockThatKeepsVanishing()
    first = AuditEvent(incident_id="i", target_key="t", kind="alarm_received")

    with pytest.raises(TransientAwsError, match="changed hands"):
        IncidentStore(db, "incidents", "locks", "audit").open_or_join(
            IncidentItem(incident_id="i", target_key="t", status="starting"), 60, first, event_id="e"
        )
    assert db.transactions == OPEN_ATTEMPTS


def test_a_lock_is_renewed_only_by_its_owner(holding: Sandbox) -> None:  # noqa: F811
    from rollguard.errors import LockLost

    incident_id = intake(holding, load_event("remediation/intake/alarm.json"))["incident_id"]
    target = "codedeploy:checkout/checkout-prod"
    before = int(lock_items(holding)[0]["expires_at_epoch"]["N"])

    store(holding).renew_lock(target, incident_id, 7200 + 3600)
    with pytest.raises(LockLost, match="no longer holds the lock"):
        store(holding).renew_lock(target, "someone-else", 60)

    [lock] = lock_items(holding)
    assert lock["incident_id"]["S"] == incident_id and int(lock["expires_at_epoch"]["N"]) >= before + 3600


# ---------------------------------------------------------------- a join: two DynamoDB calls, every guarantee kept


def lock_table(sb: Sandbox) -> list[dict[str, Any]]:
    """Every item of the locks table: the targets' locks and the alarm event ids' records."""
    return list(sb.client("dynamodb").scan(TableName=TABLES["LocksTable"])["Items"])


def dynamodb_calls(sb: Sandbox, event: dict[str, Any]) -> tuple[str, list[str]]:
    """The intake's status for ``event`` and the DynamoDB operations it made, as the sandbox records them
    (CallLog.aws_calls, by function: what ``make bench`` counts)."""
    before = len(sb.log.aws_calls)
    with sb.acting_as("rollguard-remediation"):
        status = intake(sb, event)["status"]
    return status, [op for function, service, op in sb.log.aws_calls[before:] if service == "dynamodb"]


def test_an_alarm_joins_an_open_incident_in_two_dynamodb_calls_and_is_recorded_once(holding: Sandbox) -> None:  # noqa: F811
    base = load_event("remediation/intake/alarm.json")
    opened = intake(holding, {**base, "id": "first"})["incident_id"]

    joined = dynamodb_calls(holding, {**base, "id": "second"})
    again = dynamodb_calls(holding, {**base, "id": "second"})

    # The failed open names the lock's holder; one transaction joins it (lock held by it, incident open, count,
    # audit event, event id record).
    assert joined == ("joined", ["TransactWriteItems", "TransactWriteItems"])
    assert again == ("duplicate", ["TransactWriteItems", "TransactWriteItems"])
    assert incident_item(holding, opened)["alarm_count"] == 2
    received = [e for e in audit_events(holding, opened) if e["kind"] == "alarm_received"]
    assert sorted(e["event_key"] for e in received) == ["alarm#first", "alarm#second"]
    records = {i["target_key"]["S"]: i["incident_id"]["S"] for i in lock_table(holding)}
    assert records["event#second"] == opened  # a replay of the joining event finds the incident it joined
    assert holding.log.iam_denied == []


def test_a_replay_of_an_event_that_joined_is_a_duplicate_even_after_the_incident_closed(holding: Sandbox) -> None:  # noqa: F811
    base = load_event("remediation/intake/alarm.json")
    opened = intake(holding, {**base, "id": "first"})["incident_id"]
    assert intake(holding, {**base, "id": "second"})["status"] == "joined"
    store(holding).settle(opened, "resolved", "state machine", "recovered")
    assert store(holding).release_lock("codedeploy:checkout/checkout-prod", opened)
    holding.advance(3600)

    again = intake(holding, {**base, "id": "second"})

    assert (again["status"], again["incident_id"]) == ("duplicate", opened)
    assert [e["name"] for e in executions(holding)] == [opened]
    assert incident_item(holding, opened)["alarm_count"] == 2
    assert [e["kind"] for e in audit_events(holding, opened)].count("alarm_replayed") == 1


def test_an_alarm_never_joins_a_closed_incident_that_still_holds_the_lock(holding: Sandbox) -> None:  # noqa: F811
    """Between settling and releasing, the lock still names a closed incident: the join's condition fails, nothing
    is written, and the event's retry opens a new incident once the lock is free."""
    base = load_event("remediation/intake/alarm.json")
    opened = intake(holding, {**base, "id": "first"})["incident_id"]
    store(holding).settle(opened, "resolved", "state machine", "recovered")

    with pytest.raises(TransientAwsError, match="changed hands"):
        intake(holding, {**base, "id": "late"})

    assert incident_item(holding, opened)["alarm_count"] == 1
    assert "alarm#late" not in [e["event_key"] for e in audit_events(holding, opened)]
    assert "event#late" not in [i["target_key"]["S"] for i in lock_table(holding)]
    assert store(holding).release_lock("codedeploy:checkout/checkout-prod", opened)
    assert intake(holding, {**base, "id": "late"})["status"] == "opened"


class _ReasonsWithoutItems:
    """DynamoDB through an SDK that drops the cancelled items: the lock's holder is read instead."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:  # noqa: N803
        self.calls.append("TransactWriteItems")
        if len(self.calls) == 1:
            reasons = [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}, {"Code": "None"}, {"Code": "None"}]
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "x"}, "CancellationReasons": reasons}
            raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]
        assert TransactItems[2]["ConditionCheck"]["ExpressionAttributeValues"] == {":i": {"S": "holder"}}

    def get_item(self, **_: Any) -> dict[str, Any]:
        self.calls.append("GetItem")
        return {"Item": {"target_key": {"S": "t"}, "incident_id": {"S": "holder"}}}


def test_a_cancellation_without_the_failed_item_reads_the_lock_and_still_joins() -> None:
    db = _ReasonsWithoutItems()
    first = AuditEvent(incident_id="i", target_key="t", kind="alarm_received", event_key="alarm#e")

    result = IncidentStore(db, "incidents", "locks", "audit").open_or_join(
        IncidentItem(incident_id="i", target_key="t", status="starting"), 60, first, event_id="e"
    )

    assert (result.opened, result.incident_id, result.fresh) == (False, "holder", True)
    assert db.calls == ["TransactWriteItems", "GetItem", "TransactWriteItems"]
