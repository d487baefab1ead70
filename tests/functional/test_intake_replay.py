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
    event = load_event("intake/alarm.json")
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
    incident_id = intake(holding, load_event("intake/alarm.json"))["incident_id"]

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

    incident_id = intake(holding, load_event("intake/alarm.json"))["incident_id"]
    target = "codedeploy:checkout/checkout-prod"
    before = int(lock_items(holding)[0]["expires_at_epoch"]["N"])

    store(holding).renew_lock(target, incident_id, 7200 + 3600)
    with pytest.raises(LockLost, match="no longer holds the lock"):
        store(holding).renew_lock(target, "someone-else", 60)

    [lock] = lock_items(holding)
    assert lock["incident_id"]["S"] == incident_id and int(lock["expires_at_epoch"]["N"]) >= before + 3600
