"""The assess, act, verify and close handlers on moto, driven by the events in events/ — called one
after another the way the state machine would, without the state machine."""

import json
from typing import Any

import pytest
from rollguard.errors import PermissionDenied, TargetNotFound
from rollguard_cli.drills import SCENARIOS, Stage
from rollguard_cli.sandbox.runner import TABLES, Sandbox
from rollguard_cli.sandbox.world import aws_time

from tests.conftest import as_invoked, audit_events, context, incident_item, load_event, lock_items

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)


def call(sb: Sandbox, task: str, event: dict[str, Any]) -> dict[str, Any]:
    function, payload = as_invoked(task, event)
    return dict(sb.handlers[function](payload, context(function)))


def open_incident(sb: Sandbox, state: dict[str, Any]) -> None:
    ddb = sb.client("dynamodb")
    ddb.put_item(
        TableName=TABLES["IncidentsTable"],
        Item={
            "incident_id": {"S": state["incident_id"]},
            "target_key": {"S": state["target_key"]},
            "status": {"S": "open"},
            "opened_at": {"S": state["opened_at"]},
        },
    )
    ddb.put_item(
        TableName=TABLES["LocksTable"],
        Item={
            "target_key": {"S": state["target_key"]},
            "incident_id": {"S": state["incident_id"]},
            "expires_at_epoch": {"N": "4102444800"},
        },
    )


@pytest.fixture
def bad_deploy(sandbox: Sandbox) -> dict[str, Any]:
    """Revision 7 is live and failing, revision 6 was good; the alarm is in ALARM. Returns the incident."""
    sandbox.world.publish = None  # no EventBridge: these tests call the handlers themselves
    stage = Stage(sandbox)
    sandbox.world.error_rate = stage.error_rate
    stage.deploy("6")
    sandbox.advance(20 * 60)
    stage.behave(lambda v, live: 0.2 if v == "7" else None)
    stage.deploy("7")
    sandbox.advance(3 * 60)
    state = load_event("remediation/assess-incident.json")["state"]
    state["alarm"]["state_timestamp"] = aws_time(sandbox.clock.now())
    open_incident(sandbox, state)
    return state


def test_assess_act_verify_close_chain_resolves_a_bad_deploy(sandbox: Sandbox, bad_deploy: dict[str, Any]) -> None:
    state = dict(bad_deploy)
    state["assessment"] = call(sandbox, "assess", state)
    assert state["assessment"]["decision"] == "act"
    assert state["assessment"]["bad"]["revision_label"] == "7"
    assert state["assessment"]["last_good"]["revision_label"] == "6"

    state["progress"] = call(sandbox, "act", state)
    assert (state["progress"]["scope"], state["progress"]["judge"]) == ("canary", "slice")
    canary = state["progress"]["rollback_deployment_id"]
    cd = sandbox.client("codedeploy")
    config = cd.get_deployment(deploymentId=canary)["deploymentInfo"]["deploymentConfigName"]
    # A 5-minute window, extended once, plus a minute's margin: CodeDeploy shifts the rest after 11 minutes.
    assert config == "Rollguard-LambdaCanary10Percent11Minutes"
    assert cd.get_deployment_config(deploymentConfigName=config)["deploymentConfigInfo"]["trafficRoutingConfig"] == {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 11},
    }
    assert sandbox.routing() == {"7": 0.9, "6": 0.1}

    sandbox.advance(state["progress"]["wait_seconds"])
    state["progress"] = call(sandbox, "verify", state)
    assert (state["progress"]["verdict"], state["progress"]["next"]) == ("recovered", "act")

    state["progress"] = call(sandbox, "act", state)
    assert state["progress"]["full_rollback_done"] is True
    assert state["progress"]["rollback_deployment_id"] == canary, "widening lets the canary finish"
    assert state["progress"]["wait_seconds"] > 300, "the window starts once CodeDeploy has shifted the rest"
    sandbox.advance(state["progress"]["wait_seconds"])
    assert sandbox.routing() == {"6": 1.0}
    state["progress"] = call(sandbox, "verify", state)
    assert (state["progress"]["verdict"], state["progress"]["next"]) == ("recovered", "resolve")

    closed = call(sandbox, "close", {"state": state, "outcome": "resolved"})
    assert closed["outcome"] == "resolved" and closed["notified"] is True
    assert [e["kind"] for e in audit_events(sandbox, state["incident_id"])] == [
        "assessed",
        "action",
        "verification",
        "action",
        "verification",
        "incident_closed",
    ]
    assert incident_item(sandbox, state["incident_id"])["status"] == "resolved"
    assert lock_items(sandbox) == []


def test_act_denied_by_codedeploy_raises_the_named_error_and_records_the_failure(
    sandbox: Sandbox, bad_deploy: dict[str, Any]
) -> None:
    state = dict(bad_deploy)
    state["assessment"] = call(sandbox, "assess", state)
    sandbox.inject_fault("CreateDeployment", "AccessDeniedException", "no codedeploy:CreateDeployment")

    with pytest.raises(PermissionDenied, match="AccessDeniedException: no codedeploy:CreateDeployment"):
        call(sandbox, "act", state)

    [failed] = [e for e in audit_events(sandbox, state["incident_id"]) if e["kind"] == "action"]
    assert failed["result"] == "failed" and failed["reason"].startswith("PermissionDenied: ")


def test_assess_names_a_missing_deployment_group(sandbox: Sandbox, bad_deploy: dict[str, Any]) -> None:
    state = json.loads(json.dumps(bad_deploy))
    state["policy"]["target"]["codedeploy"]["deployment_group"] = "deleted-group"

    with pytest.raises(TargetNotFound, match="checkout/deleted-group"):
        call(sandbox, "assess", state)


def test_verify_declares_nothing_from_missing_data(sandbox: Sandbox, bad_deploy: dict[str, Any]) -> None:
    state = dict(bad_deploy)
    state["assessment"] = call(sandbox, "assess", state)
    state["progress"] = call(sandbox, "act", state)
    state["assessment"]["last_good"]["revision_label"] = "a-version-nobody-serves"

    state["progress"] = call(sandbox, "verify", state)

    assert (state["progress"]["verdict"], state["progress"]["next"]) == ("inconclusive", "wait_again")


def test_close_after_an_error_escalates_with_the_reason_and_releases_the_lock(sandbox: Sandbox) -> None:
    request = load_event("close/escalated-after-error.json")
    open_incident(sandbox, request["state"])

    result = call(sandbox, "close", request)

    assert result["outcome"] == "escalated"
    assert result["reason"].startswith("PermissionDenied: deploying CodeDeployDefault.LambdaAllAtOnce")
    assert lock_items(sandbox) == []
    [message] = sandbox.notifications()
    assert "ESCALATED" in message and "AccessDeniedException" in message
    assert "https://wiki.example.com/runbooks/checkout" in message


def test_close_twice_records_one_closing_event(sandbox: Sandbox) -> None:
    request = load_event("close/escalated-after-error.json")
    open_incident(sandbox, request["state"])

    call(sandbox, "close", request)
    call(sandbox, "close", request)  # the state machine's Retry may run it again

    closing = [e for e in audit_events(sandbox, request["state"]["incident_id"]) if e["kind"] == "incident_closed"]
    assert len(closing) == 1


def test_audit_events_are_queryable_by_target_over_time(sandbox: Sandbox, bad_deploy: dict[str, Any]) -> None:
    from rollguard.audit import AuditLog

    state = dict(bad_deploy)
    before = sandbox.clock.now().isoformat()
    state["assessment"] = call(sandbox, "assess", state)
    sandbox.advance(600)
    middle = sandbox.clock.now().isoformat()
    state["progress"] = call(sandbox, "act", state)

    log = AuditLog(sandbox.client("dynamodb"), TABLES["AuditTable"])
    everything = log.for_target("codedeploy:checkout/checkout-prod")
    early = log.for_target("codedeploy:checkout/checkout-prod", until=middle)

    assert [e["kind"] for e in everything] == ["assessed", "action"]
    assert [e["kind"] for e in early] == ["assessed"]
    assert all(e["at"] >= before[:19] for e in everything)
    assert log.for_target("codedeploy:other/group") == []


def test_a_retried_act_continues_with_the_deployment_it_already_created(
    sandbox: Sandbox, bad_deploy: dict[str, Any]
) -> None:
    """Step Functions retries the whole task when anything after CreateDeployment fails (an audit write, a lost
    response): the retry finds Rollguard's deployment for this incident and step, and creates no second one."""
    state = dict(bad_deploy)
    state["assessment"] = call(sandbox, "assess", state)

    first = call(sandbox, "act", state)
    again = call(sandbox, "act", state)

    assert again["rollback_deployment_id"] == first["rollback_deployment_id"]
    cd = sandbox.client("codedeploy")
    ids = cd.list_deployments(applicationName="checkout", deploymentGroupName="checkout-prod")["deployments"]
    ours = [
        i
        for i in cd.batch_get_deployments(deploymentIds=ids)["deploymentsInfo"]
        if i.get("description", "").startswith("Rollguard")
    ]
    assert len(ours) == 1, "one canary, however often the step ran"


def test_a_retried_stop_of_an_in_flight_deployment_continues_once_codedeploy_rolled_it_back(sandbox: Sandbox) -> None:
    """The stop answered Pending, then the step is retried after CodeDeploy finished the rollback: nothing is
    stopped or deployed again; the step continues with CodeDeploy's rollback deployment."""
    sandbox.world.publish = None
    stage = Stage(sandbox)
    sandbox.world.error_rate = stage.error_rate
    SCENARIOS["in-flight-canary"].setup(stage)
    sandbox.advance(3 * 60)  # the alarm fires while revision 7's own canary still shifts
    state = load_event("remediation/assess-incident.json")["state"]
    state["alarm"]["state_timestamp"] = aws_time(sandbox.clock.now())
    open_incident(sandbox, state)
    state["assessment"] = call(sandbox, "assess", state)
    assert state["assessment"]["in_flight"] is True

    first = call(sandbox, "act", state)
    assert first["stop_pending"] == state["assessment"]["bad"]["deployment_id"]
    sandbox.advance(30)
    cd = sandbox.client("codedeploy")
    before = set(cd.list_deployments(applicationName="checkout", deploymentGroupName="checkout-prod")["deployments"])
    again = call(sandbox, "act", state)

    after = set(cd.list_deployments(applicationName="checkout", deploymentGroupName="checkout-prod")["deployments"])
    assert after == before, "the retry neither stops nor deploys anything"
    assert again["full_rollback_done"] is True and again["rollback_deployment_id"] in before
    assert sandbox.routing() == {"6": 1.0}


def test_a_stakeholder_publish_that_failed_is_retried_without_paging_on_call_twice(sandbox: Sandbox) -> None:
    from rollguard import runtime
    from rollguard.closing import close
    from rollguard.errors import TransientAwsError
    from rollguard.incident import CloseRequest
    from rollguard.settings import CloseSettings, settings_for

    request = load_event("close/escalated-after-error.json")
    open_incident(sandbox, request["state"])
    s = settings_for(CloseSettings)
    stakeholders = runtime.stakeholders(s)
    attempts: list[str] = []

    class ThrottledOnce:
        def publish(self, *args: Any, **kwargs: Any) -> str:
            attempts.append("publish")
            if len(attempts) == 1:
                raise TransientAwsError("publishing to the stakeholder topic: Throttled: Rate exceeded")
            return str(stakeholders.publish(*args, **kwargs))

    audit, store = runtime.audit_log(s), runtime.incident_store(s)
    closing = (CloseRequest.model_validate(request), audit, store, runtime.notifier(s))
    with pytest.raises(TransientAwsError):
        close(*closing, ThrottledOnce())  # type: ignore[arg-type]
    close(*closing, ThrottledOnce())  # type: ignore[arg-type]  # the state machine's retry

    assert len(sandbox.notifications()) == 1 and len(sandbox.stakeholder_notifications()) == 1
