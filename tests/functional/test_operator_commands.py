"""`rollguard approve|deny|pause|resume|status --stack NAME` against a stack on moto, and the approval path
end to end through the real state machine."""

import contextlib
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rollguard import clock
from rollguard.approvals import ApprovalError, decide
from rollguard.audit import AuditEvent, AuditLog
from rollguard.errors import TransientAwsError
from rollguard.store import IncidentStore
from rollguard_cli.drills import SCENARIOS, Scenario, _awaiting_approval, run_scenario
from rollguard_cli.main import main
from rollguard_cli.sandbox.runner import TABLES, Sandbox
from rollguard_cli.serve import deploy_stack

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)

STACK = "rollguard"


def make_stack(sb: Sandbox) -> None:
    """The stack deployed into the sandbox as `rollguard sandbox serve` deploys it: template.yaml's outputs."""
    deploy_stack(sb, STACK)


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def put_incident(sb: Sandbox, incident_id: str, **fields: str) -> None:
    item = {
        "incident_id": {"S": incident_id},
        "target_key": {"S": "codedeploy:checkout/checkout-prod"},
        "status": {"S": fields.pop("status", "open")},
    }
    item.update({k: {"S": v} for k, v in fields.items()})
    sb.client("dynamodb").put_item(TableName=TABLES["IncidentsTable"], Item=item)


def test_approving_through_the_cli_resumes_the_execution_and_audits_who(tmp_path: Any) -> None:
    seen: dict[str, Any] = {}

    def approve_with_the_cli(sb: Sandbox, incident_id: str) -> None:
        make_stack(sb)
        assert _awaiting_approval(sb, incident_id)
        item = sb.client("dynamodb").get_item(
            TableName=TABLES["IncidentsTable"], Key={"incident_id": {"S": incident_id}}
        )["Item"]
        seen["token"] = item["task_token"]["S"]
        seen["first"] = cli("approve", incident_id, "--stack", STACK, "--reason", "graphs agree")
        seen["second"] = cli("approve", incident_id, "--stack", STACK, "--reason", "me too")
        seen["log"] = sb.log_stream.getvalue()

    granted = SCENARIOS["approval-granted"]
    result = run_scenario(Scenario("cli-approval", "", "resolved", granted.setup, granted.policy, approve_with_the_cli))

    code, out, _ = seen["first"]
    assert code == 0 and out.startswith("approved: incident ") and "step 1 by arn:aws:sts::" in out
    code, _, err = seen["second"]
    assert code == 2 and "is not waiting for approval" in err and "already approved by arn:aws:sts::" in err
    assert result["outcome"] == "resolved"
    [approval] = [e for e in result["audit_events"] if e["kind"] == "approval"]
    assert approval["actor"].startswith("arn:aws:sts::") and approval["reason"] == "graphs agree"
    [action] = [e for e in result["audit_events"] if e["kind"] == "action"]
    assert action["parameters"]["approved_by"] == approval["actor"]
    token = seen["token"]
    everything = json.dumps(result["audit_events"]) + "".join(result["notifications"]) + seen["log"]
    assert token not in everything, "the task token appears in no audit event, notification or log line"


def test_the_approval_request_tells_on_call_exactly_how_to_answer() -> None:
    def look(sb: Sandbox, incident_id: str) -> None:
        assert _awaiting_approval(sb, incident_id)
        # The token is stored before the page goes out: wait for the page itself (it runs on another thread).
        deadline = time.monotonic() + 30
        while not [n for n in sb.notifications() if "APPROVAL NEEDED" in n] and time.monotonic() < deadline:
            time.sleep(0.02)
        look.pages = [n for n in sb.notifications() if "APPROVAL NEEDED" in n]  # type: ignore[attr-defined]
        sb.advance(16 * 60)

    denied = SCENARIOS["approval-timeout"]
    run_scenario(Scenario("page", "", "escalated", denied.setup, denied.policy, look))

    [page] = look.pages  # type: ignore[attr-defined]
    for fact in (
        "Proposed: step 1: full rollback of deployment",
        "Deadline:",
        "if nobody answers: escalate",
        "rollguard approve checkout-5xx-",
        "rollguard deny checkout-5xx-",
        "--reason",
        "https://wiki.example.com/runbooks/checkout",
    ):
        assert fact in page


def test_approving_an_unknown_incident_says_so(sandbox: Sandbox) -> None:
    make_stack(sandbox)

    code, _, err = cli("approve", "no-such-incident", "--stack", STACK)

    assert code == 2 and "unknown incident no-such-incident" in err


def test_approving_an_incident_that_is_not_waiting_says_so(sandbox: Sandbox) -> None:
    make_stack(sandbox)
    put_incident(sandbox, "inc-1", status="resolved")

    code, _, err = cli("deny", "inc-1", "--stack", STACK)

    assert code == 2 and "incident inc-1 is not waiting for approval (status resolved)" in err


def test_an_approval_is_recorded_at_its_decision_not_after_the_execution_it_resumed(sandbox: Sandbox) -> None:
    """SendTaskSuccess resumes the execution at once, and its action can be audited before the approver's process
    writes its own event (seen under load from `sandbox serve`): the approval keeps the time it was decided."""
    put_incident(sandbox, "inc-3", status="awaiting_approval", task_token="token-3", awaiting_step="0")
    db = sandbox.client("dynamodb")
    audit = AuditLog(db, TABLES["AuditTable"])
    store = IncidentStore(db, TABLES["IncidentsTable"], TABLES["LocksTable"], TABLES["AuditTable"])
    decided = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    now = [decided]

    class ResumesAndActs:
        def send_task_success(self, taskToken: str, output: str) -> None:
            now[0] += timedelta(seconds=30)
            audit.append(AuditEvent(incident_id="inc-3", target_key="codedeploy:checkout/checkout-prod", kind="action"))
            now[0] += timedelta(seconds=30)

    clock.use(lambda: now[0])
    try:
        decide(
            "inc-3",
            True,
            "graphs agree",
            "arn:aws:sts::123456789012:assumed-role/oncall/ana",
            store,
            audit,
            ResumesAndActs(),
        )
    finally:
        clock.reset()

    kinds = [(event["kind"], event["at"]) for event in audit.for_incident("inc-3")]
    assert kinds == [("approval", "2026-12-02T12:00:00.000Z"), ("action", "2026-12-02T12:00:30.000Z")]
    assert store.get("inc-3")["approval_decision"].endswith(" at 2026-12-02T12:00:00.000Z")  # type: ignore[index]


def test_an_audit_write_that_fails_after_the_decision_took_effect_says_it_took_effect(sandbox: Sandbox) -> None:
    class Throttled(AuditLog):
        def append(self, event: AuditEvent) -> bool:
            raise TransientAwsError("appending audit event approval to rollguard-audit: ThrottlingException")

    class Resumes:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send_task_failure(self, taskToken: str, error: str, cause: str) -> None:
            self.sent.append(error)

    put_incident(sandbox, "inc-4", status="awaiting_approval", task_token="token-4", awaiting_step="1")
    db = sandbox.client("dynamodb")
    store = IncidentStore(db, TABLES["IncidentsTable"], TABLES["LocksTable"], TABLES["AuditTable"])
    stepfunctions = Resumes()

    with pytest.raises(ApprovalError) as raised:
        decide("inc-4", False, "fix-forward", "ana", store, Throttled(db, TABLES["AuditTable"]), stepfunctions)

    assert stepfunctions.sent == ["ApprovalDenied"]
    assert str(raised.value).startswith(
        "incident inc-4: denied and the execution was failed with ApprovalDenied, but the approval's audit event was"
        " not written (appending audit event approval to rollguard-audit: ThrottlingException)"
    )
    assert store.get("inc-4")["approval_decision"].startswith("denied by ana at ")  # type: ignore[index]


def test_an_approval_after_the_incident_closed_is_refused_and_leaves_it_closed(sandbox: Sandbox) -> None:
    """The approval function stored its token, then failed (its page was denied, say): the execution escalated and
    closed. A late approver must neither claim the incident nor mark it open again."""
    make_stack(sandbox)
    db = sandbox.client("dynamodb")
    store = IncidentStore(db, TABLES["IncidentsTable"], TABLES["LocksTable"], TABLES["AuditTable"])
    put_incident(sandbox, "inc-5", status="awaiting_approval", task_token="token-5", awaiting_step="0")
    store.settle("inc-5", "escalated", "state machine", "the approval request failed")
    # An incident closed before closing removed the token (or by hand) still holds one.
    put_incident(sandbox, "inc-6", status="escalated", task_token="token-6", awaiting_step="0", closed_by="watchdog")

    assert "task_token" not in store.get("inc-5")  # type: ignore[operator]
    code, _, err = cli("approve", "inc-5", "--stack", STACK)
    assert code == 2 and "incident inc-5 is not waiting for approval (status escalated)" in err
    code, _, err = cli("approve", "inc-6", "--stack", STACK)
    assert code == 2 and "incident inc-6 is not waiting for approval (status escalated): it closed first" in err
    assert [store.get(i)["status"] for i in ("inc-5", "inc-6")] == ["escalated", "escalated"]  # type: ignore[index]


def test_a_token_whose_execution_moved_on_is_an_expired_window(sandbox: Sandbox) -> None:
    make_stack(sandbox)
    put_incident(sandbox, "inc-2", status="awaiting_approval", task_token="a-token-nobody-waits-for", awaiting_step="0")

    code, _, err = cli("approve", "inc-2", "--stack", STACK)

    assert code == 2 and "the approval window has closed" in err


def test_a_stack_that_is_not_rollguard_is_named(sandbox: Sandbox) -> None:
    code, _, err = cli("pause", "--stack", "nothing-here")

    assert code == 2 and "cannot read stack nothing-here" in err


def test_an_approval_request_retried_after_its_response_was_lost_is_recorded_once_and_the_new_token_answers() -> None:
    """The state machine retries the waitForTaskToken task on Lambda.ServiceException, which can come after the
    function ran. Tokens come from the task's context object (SendTaskSuccess, Step Functions API Reference); here the
    lost attempt's token differs from the retry's, the harder case: the one stored last must be the one answered."""

    def lose_the_first_response(sb: Sandbox) -> None:
        real = sb.handlers["rollguard-approval"]

        def handler(event: dict[str, Any], context: Any) -> Any:
            real({**event, "task_token": "the-first-attempt's-token"}, context)  # ran; its response never came back
            return real(event, context)

        sb.handlers["rollguard-approval"] = handler

    granted = SCENARIOS["approval-granted"]
    result = run_scenario(granted, prepare=lose_the_first_response)

    assert result["outcome"] == "resolved"  # the approval answered the retry's token, the one the execution waits on
    kinds = [e["kind"] for e in result["audit_events"]]
    assert kinds.count("approval_requested") == 1 and kinds.count("approval") == 1
    pages = [n for n in result["notifications"] if "APPROVAL NEEDED" in n]
    assert len(pages) == 2  # paged again: the first page may have been what failed


def test_pause_status_resume(sandbox: Sandbox) -> None:
    make_stack(sandbox)

    assert cli("status", "--stack", STACK)[1].startswith("active: not paused")
    code, out, _ = cli("pause", "--stack", STACK, "--reason", "migration")
    assert code == 0 and "paused by arn:aws:sts::" in out and out.rstrip().endswith(": migration")
    assert cli("status", "--stack", STACK)[1].startswith("paused by arn:aws:sts::")
    assert cli("resume", "--stack", STACK)[1].startswith("resumed")
    assert cli("resume", "--stack", STACK)[1].startswith("was not paused")


@pytest.mark.parametrize("name", ["approval-granted", "approval-denied", "approval-timeout"])
def test_approval_drills(drill_runs: dict[str, Any], name: str) -> None:
    doc = json.loads(drill_runs[name]["stdout"])

    assert drill_runs[name]["exit"] == 0 and doc["outcome"] == doc["expected_outcome"]
    kinds = [e["kind"] for e in doc["audit_events"]]
    assert "approval_requested" in kinds
    if name == "approval-granted":
        [approval] = [e for e in doc["audit_events"] if e["kind"] == "approval"]
        assert approval["result"] == "approved" and approval["actor"].startswith("arn:aws:sts::")
    if name == "approval-denied":
        assert doc["reason"].startswith("ApprovalDenied: ") and doc["actions"] == []
    if name == "approval-timeout":
        assert doc["reason"] == "nobody approved the gated step in time (approval.on_timeout: escalate)"


def test_the_watchdog_escalates_an_open_incident_from_the_sample_event(sandbox: Sandbox) -> None:
    from tests.conftest import context, load_event

    event = load_event("watchdog/execution-timed-out.json")
    incident_id = event["detail"]["name"]
    put_incident(sandbox, incident_id, status="open")

    result = sandbox.handlers["rollguard-watchdog"](event, context("rollguard-watchdog"))

    assert result["status"] == "escalated"
    assert result["reason"] == "the remediation execution TIMED_OUT: States.Timeout The execution timed out"
    [page] = sandbox.notifications()
    assert "ESCALATED" in page and incident_id in page
    again = sandbox.handlers["rollguard-watchdog"](event, context("rollguard-watchdog"))
    assert again["status"] == "ignored" and "already closed" in again["reason"]


def test_the_approval_function_stores_the_token_and_pages_without_it(sandbox: Sandbox) -> None:
    from tests.conftest import context, load_event

    event = load_event("approval/request.json")
    incident_id = event["state"]["incident_id"]
    put_incident(sandbox, incident_id, status="open")
    lock = {"target_key": {"S": "codedeploy:checkout/checkout-prod"}, "incident_id": {"S": incident_id}}
    sandbox.client("dynamodb").put_item(TableName=TABLES["LocksTable"], Item=lock)  # an open incident holds it

    result = sandbox.handlers["rollguard-approval"](event, context("rollguard-approval"))

    item = sandbox.client("dynamodb").get_item(
        TableName=TABLES["IncidentsTable"], Key={"incident_id": {"S": incident_id}}
    )["Item"]
    assert item["task_token"]["S"] == event["task_token"] and item["status"]["S"] == "awaiting_approval"
    assert result["step"] == 0 and "Waiting for a human to approve step 1" in result["summary"]
    [page] = sandbox.notifications()
    assert "APPROVAL NEEDED" in page and event["task_token"] not in page
    assert event["task_token"] not in sandbox.log_stream.getvalue()


def test_status_json_is_the_pause_and_the_open_incidents(sandbox: Sandbox) -> None:
    make_stack(sandbox)
    sandbox.client("dynamodb").put_item(
        TableName=TABLES["LocksTable"],
        Item={
            "target_key": {"S": "codedeploy:checkout/checkout-prod"},
            "incident_id": {"S": "inc-3"},
            "acquired_at": {"S": "2026-11-26T14:08:08Z"},
        },
    )
    sandbox.client("dynamodb").put_item(  # an alarm event already seen (store.py): not an open incident
        TableName=TABLES["LocksTable"],
        Item={"target_key": {"S": "event#64f54d82"}, "incident_id": {"S": "inc-3"}},
    )
    assert cli("pause", "--stack", STACK, "--reason", "migration")[0] == 0

    code, out, err = cli("status", "--stack", STACK, "--json")

    assert (code, err) == (0, "")
    status = json.loads(out)
    assert status["stack"] == STACK
    assert status["paused"]["reason"] == "migration" and status["paused"]["by"].startswith("arn:aws:sts::")
    assert status["open_incidents"] == [
        {"target_key": "codedeploy:checkout/checkout-prod", "incident_id": "inc-3", "since": "2026-11-26T14:08:08Z"}
    ]


def test_aws_refusing_a_call_is_one_error_line_not_a_traceback(sandbox: Sandbox) -> None:
    """A stack whose outputs name tables that are gone: DynamoDB's ClientError reaches the CLI's boundary."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            name: {"Value": "deleted-table"} for name in ("IncidentsTableName", "AuditTableName", "LocksTableName")
        },
    }
    sandbox.client("cloudformation").create_stack(StackName="gone", TemplateBody=json.dumps(template))

    assert cli("timeline", "inc-1", "--stack", "gone") == (
        2,
        "",
        "error: AWS refused GetItem: ResourceNotFoundException: Requested resource not found\n",
    )
    # A refusal an adapter translated into a domain error (rollguard.adapters.aws_errors) is one line too.
    code, out, err = cli("pause", "--stack", "gone")
    assert (code, out) == (2, "") and err.startswith("error: ") and "deleted-table" in err
    assert len(err.splitlines()) == 1
