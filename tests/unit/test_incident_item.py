"""The one model of an Incidents table item (rollguard.incident.IncidentItem): written by the intake through the store,
read back by the CLI, under the attribute names deployed tables hold."""

import json
from typing import Any

import pytest
from rollguard.adapters.dynamo import from_item, to_item
from rollguard.incident import IncidentItem
from rollguard.store import IncidentStore

OPENING = {
    "incident_id": "checkout-5xx-20250304T120004Z-a1b2c3",
    "target_key": "codedeploy:checkout/checkout-prod",
    "policy": "checkout-5xx",
    "status": "starting",
    "opened_at": "2025-03-04T12:00:04Z",
    "alarm": "checkout-5xx-rate",
    "alarm_count": 1,
    "current_step": "opening",
}


def test_an_opened_incident_is_stored_with_exactly_the_opening_attributes() -> None:
    execution_input = {"incident_id": OPENING["incident_id"], "policy": {"name": "checkout-5xx", "mode": None}}
    item = IncidentItem(**OPENING, execution_input=execution_input)  # type: ignore[arg-type]

    stored = item.stored()

    assert stored == {**OPENING, "execution_input": json.dumps(execution_input)}
    assert IncidentItem.model_validate(from_item(to_item(stored))) == item


def test_a_closed_incident_reads_back_with_what_the_functions_set() -> None:
    attributes = {
        **OPENING,
        "status": "resolved",
        "execution_input": "{not json",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:rollguard:x",
        "suspect_deployment": "d-BAD",
        "closed_by": "state machine",
        "closed_at": "2025-03-04T12:20:00Z",
        "outcome_reason": "recovered",
        "notified_at": "2025-03-04T12:20:01Z",
        "something_newer": "ignored",
    }

    item = IncidentItem.model_validate(attributes)

    assert item.execution_input is None and item.policy_doc == {}
    assert (item.closed_by, item.outcome_reason, item.suspect_deployment) == ("state machine", "recovered", "d-BAD")


class RecordingDynamoDB:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def update_item(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_the_store_updates_only_attributes_of_the_item() -> None:
    db = RecordingDynamoDB()
    store = IncidentStore(db, "incidents", "locks", "audit")

    store.update("i-1", add={"alarm_count": 1}, current_step="assessed")
    with pytest.raises(ValueError, match="current_stpe"):
        store.update("i-1", current_stpe="assessed")

    assert len(db.calls) == 1
    assert db.calls[0]["ExpressionAttributeNames"] == {"#s0": "current_step", "#a0": "alarm_count"}


def test_incidents_opened_in_the_same_millisecond_list_in_one_order_whatever_order_they_were_read_in() -> None:
    from rollguard_cli.review import newest_first

    same_moment = [
        IncidentItem(incident_id=f"checkout-5xx-20250304T120004Z-{tag}", opened_at="2025-03-04T12:00:04.370Z")
        for tag in ("bff971", "d03e7c", "0a1b2c")
    ]
    later = IncidentItem(incident_id="checkout-5xx-20250304T130000Z-ffffff", opened_at="2025-03-04T13:00:00.000Z")

    listed = [newest_first(records, None, None) for records in ([*same_moment, later], [later, *same_moment[::-1]])]

    assert listed[0] == listed[1]
    assert [r.incident_id[-6:] for r in listed[0]] == ["ffffff", "d03e7c", "bff971", "0a1b2c"]
