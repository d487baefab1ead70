"""The change journal on moto under DynamoDB faults: it never drops a change silently. An event it cannot record
leaves a gap (or, when even that fails, goes to the dead-letter queue) and raises, so that Lambda retries it."""

import json
from typing import Any

import pytest
from rollguard.errors import ChangeNotRecorded
from rollguard.journal import GAP, DeadLetters, Journal, record_event
from rollguard_cli.sandbox.runner import TABLES, Sandbox

from tests.conftest import load_event

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)

SCOPE = "appconfig:MyApp/MyEnv"
WIDE = ("2000", "3000")  # every time the sample events carry


def freeform(region: str, application: str, profile: str) -> str:
    return "AWS.Freeform"


@pytest.fixture
def journal(sandbox: Sandbox) -> Journal:
    sqs = sandbox.client("sqs")
    url = sqs.create_queue(QueueName="journal-dead-letters")["QueueUrl"]
    return Journal(sandbox.client("dynamodb"), TABLES["ChangesTable"], DeadLetters(lambda: sqs, url))


def dead_lettered(sandbox: Sandbox, journal: Journal) -> list[dict[str, Any]]:
    assert journal.dead_letters is not None
    url = journal.dead_letters._url
    messages = sandbox.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_a_failed_write_marks_a_gap_in_the_scope_and_raises_so_lambda_retries(
    sandbox: Sandbox, journal: Journal
) -> None:
    event = load_event("journal/appconfig-deployment-complete.json")
    sandbox.inject_fault("UpdateItem", "InternalServerError", "DynamoDB is having a bad day", status=500)

    with pytest.raises(ChangeNotRecorded, match="its gap is marked in the journal"):
        record_event(event, journal, freeform)

    window = journal.window([SCOPE], *WIDE)
    assert window.changes == []
    [gap] = window.completeness.gaps
    assert (gap.change_id, gap.at, gap.state) == (f"{GAP}{event['id']}", "2022-07-09T01:44:15.000Z", "open")
    assert "InternalServerError" in gap.detail["error"]
    assert not window.completeness.complete


def test_a_retry_that_records_the_change_resolves_its_gap(sandbox: Sandbox, journal: Journal) -> None:
    event = load_event("journal/appconfig-deployment-complete.json")
    sandbox.inject_fault("UpdateItem", "ThrottlingException", "Rate exceeded", times=1)
    with pytest.raises(ChangeNotRecorded):
        record_event(event, journal, freeform)

    result = record_event(event, journal, freeform)  # Lambda's retry of the same event

    assert result.status == "recorded"
    window = journal.window([SCOPE], *WIDE)
    assert [c.change_id for c in window.changes] == ["us-east-1:pgil2o7:1"]
    assert window.completeness.complete


def test_every_failed_attempt_of_one_event_keeps_one_gap(sandbox: Sandbox, journal: Journal) -> None:
    event = load_event("journal/appconfig-deployment-complete.json")
    sandbox.inject_fault("UpdateItem", "InternalServerError", "still down", status=500)

    for _ in range(3):  # the first attempt and Lambda's two retries: the gap's conditional put fails, as it should
        with pytest.raises(ChangeNotRecorded, match="its gap is marked"):
            record_event(event, journal, freeform)

    assert len(journal.window([SCOPE], *WIDE).completeness.gaps) == 1


def test_when_the_gap_cannot_be_written_either_the_event_goes_to_the_dead_letter_queue(
    sandbox: Sandbox, journal: Journal
) -> None:
    event = load_event("journal/appconfig-deployment-complete.json")
    for operation in ("UpdateItem", "PutItem"):
        sandbox.inject_fault(operation, "AccessDeniedException", "the role lost its grant")

    with pytest.raises(ChangeNotRecorded, match="the event is in the journal's dead-letter queue"):
        record_event(event, journal, freeform)

    assert dead_lettered(sandbox, journal) == [event]
    sandbox.faults.clear()
    completeness = journal.window([SCOPE], *WIDE).completeness
    assert (completeness.gaps, completeness.dead_letters) == ([], 1)
    assert not completeness.complete


def test_when_nothing_can_be_written_the_function_still_fails(sandbox: Sandbox, journal: Journal) -> None:
    event = load_event("journal/appconfig-deployment-complete.json")
    for operation in ("UpdateItem", "PutItem", "SendMessage"):
        sandbox.inject_fault(operation, "InternalServerError", "everything is down", status=500)

    with pytest.raises(ChangeNotRecorded, match="nor dead-lettered .*Lambda's retries remain"):
        record_event(event, journal, freeform)


def test_a_profile_whose_type_cannot_be_read_leaves_a_gap(sandbox: Sandbox, journal: Journal) -> None:
    from rollguard.errors import PermissionDenied

    def denied(region: str, application: str, profile: str) -> str:
        raise PermissionDenied("reading configuration profile ga3tqep: AccessDeniedException: not in eu-west-1")

    with pytest.raises(ChangeNotRecorded, match="AccessDeniedException"):
        record_event(load_event("journal/appconfig-deployment-complete.json"), journal, denied)

    assert len(journal.window([SCOPE], *WIDE).completeness.gaps) == 1


def test_a_late_retry_of_an_older_event_neither_revives_an_undone_change_nor_moves_its_start(
    sandbox: Sandbox, journal: Journal
) -> None:
    start = load_event("journal/appconfig-deployment-complete.json")
    start["detail-type"], start["time"], start["id"] = "On Deployment Start", "2022-07-09T01:40:00Z", "start"
    rolled_back = load_event("journal/appconfig-deployment-complete.json")
    rolled_back["detail-type"], rolled_back["id"] = "On Deployment Rollback", "rollback"

    record_event(rolled_back, journal, freeform)
    record_event(start, journal, freeform)  # retried by Lambda, it arrives after the rollback

    [item] = sandbox.client("dynamodb").scan(TableName=TABLES["ChangesTable"])["Items"]
    assert (item["state"]["S"], item["at"]["S"]) == ("ROLLED_BACK", "2022-07-09T01:40:00.000Z")
    assert journal.changes([SCOPE], *WIDE) == [], "an undone change is never blamed"


def test_a_read_of_the_journal_does_not_ask_the_queue_unless_assess_wants_completeness(
    sandbox: Sandbox, journal: Journal
) -> None:
    from rollguard.errors import PermissionDenied

    sandbox.inject_fault("GetQueueAttributes", "AccessDeniedException", "Assess only")

    assert journal.changes([SCOPE], *WIDE) == []
    with pytest.raises(PermissionDenied, match="reading the change journal's dead-letter queue"):
        journal.window([SCOPE], *WIDE)
