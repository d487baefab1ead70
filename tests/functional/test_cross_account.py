"""One central Rollguard stack acting in a member account of an AWS Organization (issue 15), on moto.

moto keeps its state per account: a call made with the credentials of an ``sts:AssumeRole`` on
``arn:aws:iam::222222222222:role/rollguard-execution`` lands in account 222222222222's backends, so what the member's
service is (its Lambda function, alias, CodeDeploy group and deployment, its alarm) is created there with such
credentials, and the stack's own tables stay in the default account, 123456789012. The tests then show that the
intake opens the incident with where the target lives, that Assess, Act, Verify and Close's adapters
(``runtime.deps_for`` / ``runtime.target_adapters``) reach that account through ``clients.AssumedRole`` (the
``sts:AssumeRole`` that tests/template/test_iam_coverage.py credits to RemediationFunction, VerifyFunction and
CloseFunction), and that a target at home is wired as before.

moto has no StopDeployment; ``stop_deployment`` below fills that gap the way the sandbox does (sandbox/moto_ext.py):
the stopped deployment, in whichever account's backend the request reached, and its rollback deployment."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.codedeploy import responses as cd_responses
from moto.codedeploy.models import codedeploy_backends
from moto.core.responses import ActionResult
from rollguard import clients, runtime
from rollguard.accounts import Location, Members, locate, session_name, target_key
from rollguard.act import act
from rollguard.alarm_event import Origin
from rollguard.assess import assess
from rollguard.audit import AuditLog
from rollguard.errors import PermissionDenied, TargetNotFound
from rollguard.incident import ActionRecord, Assessment, DeploymentRef, ExecutionState, Progress
from rollguard.intake import IntakeDeps, IntakeResult, handle_alarm_event, incident_id_for
from rollguard.policy import Policy, PolicyFile, PolicyFileInvalid, load_policy_file
from rollguard.settings import JournalSettings, settings_for
from rollguard.store import IncidentStore
from rollguard.verify import verify
from rollguard_cli.sandbox.runner import TABLES, load_handler, load_template

from tests.conftest import context, load_event
from tests.unit.builders import as_yaml, document, policy_dict

pytestmark = pytest.mark.slow  # moto, several accounts

HOME = "123456789012"  # moto's default account: the central stack's
MEMBER = "222222222222"
STRANGER = "333333333333"  # no policy names it
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{MEMBER}:role/rollguard-execution"
ORIGIN = Origin(account=HOME, region=REGION)
APP, GROUP = "checkout", "checkout-prod"
ALARM = "checkout-5xx-rate"
TARGET = f"codedeploy:{APP}/{GROUP}"
MEMBER_KEY = f"{MEMBER}/{REGION}/{TARGET}"


# ---------------------------------------------------------------- the stack's own account, on moto


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plain moto, with the environment template.yaml gives the Remediation and Verify functions and the stack's
    tables (from template.yaml) in the home account. The wiring is forgotten before and after."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "INCIDENTS_TABLE": TABLES["IncidentsTable"],
        "AUDIT_TABLE": TABLES["AuditTable"],
        "LOCKS_TABLE": TABLES["LocksTable"],
        "CHANGES_TABLE": TABLES["ChangesTable"],
        "APPCONFIG_STRATEGY": "Rollguard-Immediate",
        "POWERTOOLS_SERVICE_NAME": "rollguard",
        "POWERTOOLS_METRICS_NAMESPACE": "Rollguard",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    with mock_aws():
        resources = load_template()["Resources"]
        ddb = boto3.client("dynamodb", region_name=REGION)
        for logical, table in TABLES.items():
            props = resources[logical]["Properties"]
            keys = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")
            ddb.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST", **{k: props[k] for k in keys if k in props}
            )
        queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="rollguard-journal-dead-letters")
        monkeypatch.setenv("JOURNAL_DEAD_LETTER_QUEUE_URL", queue["QueueUrl"])
        sns = boto3.client("sns", region_name=REGION)
        monkeypatch.setenv("ESCALATION_TOPIC_ARN", sns.create_topic(Name="rollguard-escalations")["TopicArn"])
        monkeypatch.setenv("STAKEHOLDER_TOPIC_ARN", sns.create_topic(Name="rollguard-outcomes")["TopicArn"])
        yield
    runtime.reset()


def store() -> IncidentStore:
    return IncidentStore(
        boto3.client("dynamodb", region_name=REGION),
        TABLES["IncidentsTable"],
        TABLES["LocksTable"],
        TABLES["AuditTable"],
    )


def audit() -> AuditLog:
    return AuditLog(boto3.client("dynamodb", region_name=REGION), TABLES["AuditTable"])


def locks() -> list[str]:
    """The targets' lock keys (not the alarm event ids the intake remembers for replays)."""
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLES["LocksTable"])["Items"]
    return sorted(i["target_key"]["S"] for i in items if not i["target_key"]["S"].startswith("event#"))


def state_machine() -> str:
    """A state machine that only records its executions (moto runs none by default)."""
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return str(
        boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="rollguard-remediation",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{HOME}:role/rollguard-states",
        )["stateMachineArn"]
    )


# ---------------------------------------------------------------- policies and alarm events


MEMBER_POLICY = policy_dict(
    name="checkout-5xx-member",
    target={"account": MEMBER, "region": REGION, "codedeploy": {"application": APP, "deployment_group": GROUP}},
)
HOME_POLICY = policy_dict()  # policies/sandbox.yaml's: no account, no region


def policy_file(tmp_path: Path, *policies: dict[str, Any]) -> PolicyFile:
    path = tmp_path / "policies.yaml"
    path.write_text(as_yaml(document(*(policies or (HOME_POLICY, MEMBER_POLICY)))))
    return load_policy_file(str(path))


def member_policy() -> Policy:
    """MEMBER_POLICY as the intake hands it on: claimed by an alarm of the member account, with the defaults."""
    policy = PolicyFile.model_validate(document(MEMBER_POLICY)).match(ALARM, MEMBER, REGION, ORIGIN)
    assert policy is not None
    return policy


def alarm_event(account: str, event_id: str = "5f1d6a0e-2b7c-4d0c-9a51-1f3c0b2e7d11") -> dict[str, Any]:
    """events/remediation/intake/alarm.json as sent from ``account`` (forwarded unchanged to the central bus), the
    alarm entering ALARM now."""
    event = load_event("remediation/intake/alarm.json")
    now = datetime.now(UTC)
    event.update(
        id=event_id,
        account=account,
        time=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        resources=[f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{ALARM}"],
    )
    event["detail"]["state"]["timestamp"] = now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return event


def intake_deps(policies: PolicyFile, members: Members | None = None) -> IntakeDeps:
    return IntakeDeps(
        policies=policies,
        store=store(),
        audit=audit(),
        stepfunctions=boto3.client("stepfunctions", region_name=REGION),
        state_machine_arn=state_machine(),
        origin=ORIGIN,
        members=members or Members(),
    )


def opened_state(result: IntakeResult) -> ExecutionState:
    """The execution's input the intake started (and stored on the incident), as the state machine hands it on."""
    assert result.status == "opened", result.reason
    assert result.incident_id is not None
    incident = store().incident(result.incident_id)
    assert incident is not None and incident.execution_input is not None
    return ExecutionState.model_validate(incident.execution_input)


SUSPECT_IN_FLIGHT = Assessment(
    decision="act",
    reason="a deployment in flight",
    summary="Acting.",
    in_flight=True,
    bad=DeploymentRef(
        deployment_id="d-SUSPECT",
        status="InProgress",
        revision={},
        revision_label="2",
        create_time="2026-12-02T13:00:00Z",
        compute_platform="Lambda",
    ),
)


def close_function(state: ExecutionState, outcome: str) -> dict[str, Any]:
    """The Close function's handler (functions/close/app.py), as the state machine invokes it."""
    request = {"state": state.model_dump(mode="json"), "outcome": outcome}
    return dict(load_handler("close").lambda_handler(request, context("rollguard-close")))


# ---------------------------------------------------------------- the member account's service


def member_client(service: str) -> Any:
    """A client with the member execution role's credentials: moto puts what it makes in account 222222222222."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=ROLE, RoleSessionName="test-setup")[
        "Credentials"
    ]
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def provision_member_service() -> str:
    """In the member account: the checkout function (versions 1 and 2) behind its alias ``live``, its CodeDeploy
    application and group, a deployment of version 2 under way, and the alarm in ALARM. The deployment's id."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = member_client("iam").create_role(RoleName="checkout", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    lam = member_client("lambda")
    lam.create_function(
        FunctionName=APP,
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": b"v1"},
        Publish=True,
    )
    lam.update_function_code(FunctionName=APP, ZipFile=b"v2")
    lam.publish_version(FunctionName=APP)
    lam.create_alias(FunctionName=APP, Name="live", FunctionVersion="1")
    cd = member_client("codedeploy")
    cd.create_application(applicationName=APP, computePlatform="Lambda")
    cd.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=GROUP,
        serviceRoleArn=f"arn:aws:iam::{MEMBER}:role/codedeploy",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        deploymentConfigName="CodeDeployDefault.LambdaCanary10Percent5Minutes",
    )
    appspec = {
        "version": 0.0,
        "Resources": [
            {
                "checkout": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Name": APP, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"},
                }
            }
        ],
    }
    deployment = cd.create_deployment(
        applicationName=APP,
        deploymentGroupName=GROUP,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
    )["deploymentId"]
    cw = member_client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="Checkout",
        MetricName="ErrorRate",
        Dimensions=[{"Name": "Service", "Value": APP}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed")
    return str(deployment)


@pytest.fixture
def stop_deployment(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """StopDeployment for moto (which has none): the deployment in the backend of the account the request reached
    is stopped and, with autoRollbackEnabled, rolled back by a new deployment of CodeDeploy's (creator
    codeDeployRollback; done at once, moto runs no deployment) named in its rollbackInfo, as "StopDeployment" and
    "Redeploy and roll back a deployment with CodeDeploy" describe. Each call's account is recorded."""
    reached: list[str] = []
    original_info = cd_responses._deployment_info

    def stop(response: Any) -> ActionResult:
        backend = response.codedeploy_backend
        reached.append(backend.account_id)
        deployment = backend.get_deployment(response._get_param("deploymentId"))
        deployment.status = "Stopped"
        if response._get_param("autoRollbackEnabled"):
            rollback_id = backend.create_deployment(
                deployment.application_name, deployment.deployment_group_name, deployment.revision
            )
            backend.deployments[rollback_id].creator = "codeDeployRollback"
            backend.deployments[rollback_id].status = "Succeeded"
            deployment.rollback_info = {"rollbackDeploymentId": rollback_id, "rollbackMessage": "stopped by a user"}
        return ActionResult({"status": "Succeeded", "statusMessage": "stopped"})

    def deployment_info(deployment: Any) -> dict[str, Any]:
        return {**original_info(deployment), "rollbackInfo": getattr(deployment, "rollback_info", {})}

    monkeypatch.setattr(cd_responses.CodeDeployResponse, "stop_deployment", stop, raising=False)
    monkeypatch.setattr(cd_responses, "_deployment_info", deployment_info)
    return reached


# ---------------------------------------------------------------- 1. Assess, Act, Verify, Close in the member account


def test_an_incident_in_a_member_account_is_assessed_acted_on_and_verified_there_through_its_role(
    aws: None, tmp_path: Path, stop_deployment: list[str]
) -> None:
    """The whole path on moto, each step wired as its function wires it: the intake opens the incident; Assess, Act
    and Verify run on ``runtime.deps_for(state)`` (what functions/remediation and functions/verify hand them); Close
    runs through its handler, on ``runtime.target_adapters(state)``."""
    suspect = provision_member_service()
    state = opened_state(handle_alarm_event(alarm_event(MEMBER), intake_deps(policy_file(tmp_path))))

    source = runtime.clients_for(state.location, state.incident_id)
    assert isinstance(source, clients.AssumedRole)
    assert (source.role_arn, source.session_name, source.region) == (ROLE, f"rollguard-{state.incident_id}", REGION)

    assessment = assess(state, runtime.deps_for(state))
    assert assessment.decision == "act", assessment.reason
    assert assessment.bad is not None and assessment.bad.deployment_id == suspect and assessment.in_flight

    state = state.model_copy(update={"assessment": assessment})
    progress = act(state, runtime.deps_for(state))

    member, home = codedeploy_backends[MEMBER][REGION], codedeploy_backends[HOME][REGION]
    assert stop_deployment == [MEMBER]  # the one StopDeployment reached the member account
    assert member.deployments[suspect].status == "Stopped"
    rollback_id = vars(member.deployments[suspect])["rollback_info"]["rollbackDeploymentId"]
    assert progress.rollback_deployment_id == rollback_id and progress.full_rollback_done
    assert home.deployments == {} and home.applications == {}  # nothing of the service's at home

    verified = verify(state.model_copy(update={"progress": progress}), runtime.deps_for(state))
    # Verify judged the member account's alarm (there is none at home): in ALARM, without the datapoints to say more
    assert verified.verdict == "inconclusive" and f"{ALARM} is ALARM" in verified.reason

    events = {e["kind"]: e for e in audit().for_incident(state.incident_id)}
    for kind in ("alarm_received", "assessed", "action", "verification"):
        assert (events[kind]["account"], events[kind]["region"], events[kind]["role_arn"]) == (MEMBER, REGION, ROLE)
        assert events[kind]["target_key"] == MEMBER_KEY
    assert suspect in events["action"]["parameters"]["deployment_ids"]

    # Close and the watchdog read (and would undo) the same target through the same role.
    closing = runtime.target_adapters(state)
    assert closing.codedeploy.get(rollback_id)["creator"] == "codeDeployRollback"
    with pytest.raises(TargetNotFound):
        runtime.target_adapters().codedeploy.get(rollback_id)  # not in the stack's own account
    closed = close_function(state.model_copy(update={"progress": verified}), "resolved")
    assert closed["outcome"] == "resolved" and locks() == []
    [closing_event] = [e for e in audit().for_incident(state.incident_id) if e["kind"] == "incident_closed"]
    assert (closing_event["account"], closing_event["role_arn"]) == (MEMBER, ROLE)
    # where Close found the target, read in the member account
    assert rollback_id in closing_event["parameters"]["target_state"]


def test_the_member_accounts_adapters_see_its_resources_and_the_home_ones_do_not(aws: None) -> None:
    """The adapters of ``deps_for(state)`` themselves: CodeDeploy and CloudWatch in the member account."""
    suspect = provision_member_service()
    location = Location(account=MEMBER, region=REGION, role_arn=ROLE)
    state = ExecutionState.model_validate(
        {
            "incident_id": "checkout-5xx-member-20261202T131911Z-abcdef",
            "opened_at": "2026-12-02T13:19:11Z",
            "target_key": MEMBER_KEY,
            "policy": member_policy().model_dump(mode="json"),
            "alarm": {
                "name": ALARM,
                "arn": f"arn:aws:cloudwatch:{REGION}:{MEMBER}:alarm:{ALARM}",
                "region": REGION,
                "account": MEMBER,
                "state": "ALARM",
                "state_timestamp": "2026-12-02T13:19:11.000+0000",
                "event_id": "e-1",
            },
            "location": location.model_dump(),
        }
    )
    away = runtime.deps_for(state)
    at_home = runtime.remediation_deps()

    assert away is not at_home and away.region == REGION
    assert [d.deployment_id for d in away.codedeploy.deployments(APP, GROUP)] == [suspect]
    assert away.cloudwatch.alarm(ALARM).state == "ALARM"
    assert at_home.codedeploy.deployments(APP, GROUP) == []
    with pytest.raises(TargetNotFound):
        at_home.cloudwatch.alarm(ALARM)


# ---------------------------------------------------------------- 2. the session is named after the incident


def test_the_session_is_named_after_the_incident_and_moto_sees_the_member_role(aws: None) -> None:
    incident_id = incident_id_for("checkout-5xx-member", "5f1d6a0e", "2026-12-02T13:19:11Z")
    source = runtime.clients_for(Location(account=MEMBER, region=REGION, role_arn=ROLE), incident_id)

    identity = source.client("sts").get_caller_identity()

    assert identity["Account"] == MEMBER
    assert identity["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/rollguard-execution/rollguard-{incident_id}"
    # The same incident's next step in this container reuses the role's clients; another incident has its own.
    assert runtime.clients_for(Location(account=MEMBER, region=REGION, role_arn=ROLE), incident_id) is source
    assert runtime.clients_for(Location(account=MEMBER, region=REGION, role_arn=ROLE), incident_id + "x") is not source


def test_a_long_incident_id_gives_a_session_name_within_64_characters_that_keeps_its_time_and_hash(aws: None) -> None:
    incident_id = incident_id_for("p" * 60, "5f1d6a0e-2b7c-4d0c-9a51-1f3c0b2e7d11", "2026-12-02T13:19:11Z")
    name = session_name(incident_id)

    assert len(f"rollguard-{incident_id}") > 64
    assert len(name) <= 64 and name.startswith("rollguard-p")
    assert name.endswith(incident_id[-24:]) and incident_id[-24:].startswith("-20261202T131911Z-")

    stub = StubSts()
    clients.AssumedRole(ROLE, name, REGION, sts=stub).client("codedeploy")
    assert stub.calls == [{"RoleArn": ROLE, "RoleSessionName": name}]
    # and STS (moto) takes it: the assumed-role ARN ends with it
    arn = clients.AssumedRole(ROLE, name, REGION).client("sts").get_caller_identity()["Arn"]
    assert arn.endswith(f"/rollguard-execution/{name}")


# ---------------------------------------------------------------- 3. and 4. STS refusals and expiring credentials


class StubSts:
    """STS's AssumeRole, recorded: each call answers credentials expiring ``expires_in`` from now, or raises
    ``error``."""

    def __init__(self, expires_in: timedelta = timedelta(hours=1), error: Exception | None = None):
        self.expires_in, self.error = expires_in, error
        self.calls: list[dict[str, Any]] = []

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {
            "Credentials": {
                "AccessKeyId": f"ASIASTUB{len(self.calls):012d}",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": datetime.now(UTC) + self.expires_in,
            }
        }


def access_denied() -> ClientError:
    message = (
        f"User: arn:aws:sts::{HOME}:assumed-role/rollguard-RemediationFunctionRole/rollguard-remediation is not "
        f"authorized to perform: sts:AssumeRole on resource: {ROLE}"
    )
    return ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "AssumeRole")


def refuse_member_role(monkeypatch: pytest.MonkeyPatch) -> StubSts:
    """Every member role runtime.clients_for assumes is refused by STS (AccessDenied); the STS stub that refuses."""
    refusing = StubSts(error=access_denied())

    class Refused(clients.AssumedRole):
        def __init__(self, role_arn: str, session_name: str, region: str, sts: Any = None):
            super().__init__(role_arn, session_name, region, sts=refusing)

    monkeypatch.setattr(clients, "AssumedRole", Refused)
    return refusing


def test_an_assume_role_that_aws_refuses_is_permission_denied_naming_the_role_and_the_session() -> None:
    source = clients.AssumedRole(ROLE, "rollguard-checkout-5xx-member-x", REGION, sts=StubSts(error=access_denied()))
    deferred = source.on_first_use("ecs")  # made without assuming anything

    with pytest.raises(PermissionDenied) as refused:
        source.client("codedeploy")

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"assuming {ROLE} as rollguard-checkout-5xx-member-x: AccessDenied: User: ")
    with pytest.raises(PermissionDenied, match="rollguard-checkout-5xx-member-x"):
        deferred.list_services  # noqa: B018 - the first use assumes the role, and is refused the same way


def test_act_refused_its_role_in_the_member_account_fails_the_step_by_name_and_records_it(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member stack is missing, or its trust does not admit the central function: Act raises PermissionDenied
    (the state machine's Catch escalates) and the step's failure is on the incident's audit trail."""
    state = opened_state(handle_alarm_event(alarm_event(MEMBER), intake_deps(policy_file(tmp_path))))
    refusing = refuse_member_role(monkeypatch)
    state = state.model_copy(update={"assessment": SUSPECT_IN_FLIGHT})

    with pytest.raises(PermissionDenied, match=f"assuming {ROLE} as rollguard-{state.incident_id}"):
        act(state, runtime.deps_for(state))

    assert [c["RoleSessionName"] for c in refusing.calls] == [f"rollguard-{state.incident_id}"]
    [failed] = [e for e in audit().for_incident(state.incident_id) if e["kind"] == "action"]
    assert failed["result"] == "failed" and "PermissionDenied" in failed["reason"]
    assert failed["account"] == MEMBER and failed["role_arn"] == ROLE


def test_credentials_within_900_seconds_of_expiry_are_renewed_before_the_next_client() -> None:
    stub = StubSts(expires_in=timedelta(seconds=840))  # 14 minutes left: less than RENEW_BEFORE_S
    source = clients.AssumedRole(ROLE, "rollguard-i", REGION, sts=stub)

    first = source.client("codedeploy")
    second = source.client("codedeploy")

    assert clients.RENEW_BEFORE_S == 900
    assert len(stub.calls) == 2  # assumed again
    assert second is not first  # not a client of the old credentials
    assert second._request_signer._credentials.access_key == "ASIASTUB000000000002"


def test_credentials_far_from_expiry_and_their_clients_are_reused() -> None:
    stub = StubSts(expires_in=timedelta(seconds=960))
    source = clients.AssumedRole(ROLE, "rollguard-i", REGION, sts=stub)

    first = source.client("codedeploy")

    assert source.client("codedeploy") is first
    assert source.client("cloudwatch") is not first
    assert source.client("codedeploy", "eu-west-1").meta.region_name == "eu-west-1"
    assert len(stub.calls) == 1  # one AssumeRole for every client of the incident's step


def test_close_still_closes_an_incident_whose_member_role_is_refused_and_says_what_it_could_not_read(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Close (its handler) with the member role refused: the target's adapters are wired without assuming it, so
    the incident is settled, its lock released and on-call told, with the refusal as where the target was left."""
    state = opened_state(handle_alarm_event(alarm_event(MEMBER), intake_deps(policy_file(tmp_path))))
    refusing = refuse_member_role(monkeypatch)
    taken = ActionRecord(
        step=0, action="rollback", scope="canary", started_at=state.opened_at, result="ok", deployment_ids=["d-SUSPECT"]
    )
    progress = Progress(
        step=0,
        action="rollback",
        scope="canary",
        summary="Step 1: stopped d-SUSPECT",
        wait_seconds=300,
        judge="aggregate",
        stop_pending="d-SUSPECT",
        full_rollback_done=True,
        actions=[taken],
    )
    state = state.model_copy(update={"assessment": SUSPECT_IN_FLIGHT, "progress": progress})

    closed = close_function(state, "escalated")

    assert closed["outcome"] == "escalated" and closed["notified"]
    assert locks() == []
    assert [c["RoleSessionName"] for c in refusing.calls] == [f"rollguard-{state.incident_id}"]
    [closing_event] = [e for e in audit().for_incident(state.incident_id) if e["kind"] == "incident_closed"]
    target_state = closing_event["parameters"]["target_state"]
    assert target_state.startswith(f"unknown: PermissionDenied: assuming {ROLE} as rollguard-{state.incident_id}")


# ---------------------------------------------------------------- 5. the intake


def test_an_alarm_of_a_member_account_opens_an_incident_on_its_target_there(aws: None, tmp_path: Path) -> None:
    deps = intake_deps(policy_file(tmp_path))

    result = handle_alarm_event(alarm_event(MEMBER), deps)

    state = opened_state(result)
    assert state.policy.name == "checkout-5xx-member"
    assert state.location == Location(account=MEMBER, region=REGION, role_arn=ROLE)
    assert state.target_key == MEMBER_KEY and locks() == [MEMBER_KEY]
    assert state.alarm.account == MEMBER
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [execution] = sfn.list_executions(stateMachineArn=deps.state_machine_arn)["executions"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert execution["name"] == result.incident_id
    assert started["location"] == {"account": MEMBER, "region": REGION, "role_arn": ROLE}
    [received] = audit().for_incident(state.incident_id)
    assert received["kind"] == "alarm_received" and received["target_key"] == MEMBER_KEY
    assert (received["account"], received["region"], received["role_arn"]) == (MEMBER, REGION, ROLE)


def test_an_alarm_of_an_account_no_policy_names_is_refused_and_recorded_once_per_event(
    aws: None, tmp_path: Path
) -> None:
    deps = intake_deps(policy_file(tmp_path))
    event = alarm_event(STRANGER)

    first = handle_alarm_event(event, deps)
    again = handle_alarm_event(event, deps)  # EventBridge delivers at least once

    assert first.status == again.status == "rejected"
    assert "account '333333333333' is not this stack's '123456789012'" in first.reason
    assert f"no policy names a target in account {STRANGER}, region {REGION}" in first.reason
    [refused] = audit().for_target(f"account:{STRANGER}/{REGION}")
    assert refused["kind"] == "alarm_refused" and refused["incident_id"] == f"refused#{STRANGER}"
    assert refused["result"] == "rejected" and refused["reason"] == first.reason
    assert (refused["account"], refused["region"]) == (STRANGER, REGION)
    assert refused["parameters"]["event_id"] == event["id"]
    assert locks() == [] and store().incident(f"refused#{STRANGER}") is None

    handle_alarm_event(alarm_event(STRANGER, event_id="another-event"), deps)
    assert len(audit().for_target(f"account:{STRANGER}/{REGION}")) == 2  # one record per event, not per account


def test_member_account_ids_refuse_an_account_they_do_not_list_even_when_a_policy_names_it(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the intake's own wiring (runtime.intake_deps): MEMBER_ACCOUNTS is the MemberAccountIds parameter."""
    policy_file(tmp_path)
    monkeypatch.setenv("POLICY_FILE", str(tmp_path / "policies.yaml"))
    monkeypatch.setenv("STATE_MACHINE_ARN", state_machine())
    function_arn = f"arn:aws:lambda:{REGION}:{HOME}:function:rollguard-remediation"

    monkeypatch.setenv("MEMBER_ACCOUNTS", "444444444444, 555555555555")
    runtime.reset()
    listing_others = runtime.intake_deps(function_arn)
    assert listing_others.members.accounts == {"444444444444", "555555555555"}
    refused = handle_alarm_event(alarm_event(MEMBER), listing_others)
    at_home = handle_alarm_event(alarm_event(HOME, event_id="home-event"), listing_others)

    assert refused.status == "rejected"
    assert f"account {MEMBER} is not one of this stack's member accounts (MemberAccountIds)" in refused.reason
    [recorded] = audit().for_target(f"account:{MEMBER}/{REGION}")
    assert recorded["kind"] == "alarm_refused" and "MemberAccountIds" in recorded["reason"]
    assert at_home.status == "opened"  # the stack's own account needs no listing

    monkeypatch.setenv("MEMBER_ACCOUNTS", f"444444444444,{MEMBER}")
    runtime.reset()
    listed = handle_alarm_event(alarm_event(MEMBER, event_id="member-event"), runtime.intake_deps(function_arn))
    assert opened_state(listed).target_key == MEMBER_KEY
    assert locks() == sorted([TARGET, MEMBER_KEY])


def test_the_same_alarm_name_in_two_accounts_is_claimed_by_two_policies(aws: None, tmp_path: Path) -> None:
    """Both policies claim checkout-5xx-rate; the file is valid (an alarm of each account is its own alarm), and each
    alarm opens its own incident on its own target."""
    deps = intake_deps(policy_file(tmp_path, HOME_POLICY, MEMBER_POLICY))

    home = opened_state(handle_alarm_event(alarm_event(HOME, event_id="home-event"), deps))
    member = opened_state(handle_alarm_event(alarm_event(MEMBER, event_id="member-event"), deps))

    assert (home.policy.name, member.policy.name) == ("checkout-5xx", "checkout-5xx-member")
    assert (home.target_key, member.target_key) == (TARGET, MEMBER_KEY)
    assert home.incident_id != member.incident_id
    assert locks() == sorted([TARGET, MEMBER_KEY])


def test_two_policies_claiming_one_alarm_in_the_same_place_are_still_refused(tmp_path: Path) -> None:
    twin = policy_dict(name="checkout-5xx-twin", target=MEMBER_POLICY["target"])

    with pytest.raises(
        PolicyFileInvalid,
        match="policies\\[1\\].trigger.alarms\\[0\\]: alarm 'checkout-5xx-rate' is also claimed by "
        "policy 'checkout-5xx-member': one alarm, one policy",
    ):
        policy_file(tmp_path, MEMBER_POLICY, twin)


# ---------------------------------------------------------------- 6. a target at home: the single-account stack


def test_a_target_at_home_keeps_its_key_no_location_and_the_home_wiring(aws: None, tmp_path: Path) -> None:
    deps = intake_deps(policy_file(tmp_path, HOME_POLICY))

    state = opened_state(handle_alarm_event(alarm_event(HOME), deps))

    assert state.location is None and state.where() == {}
    assert state.target_key == TARGET and locks() == [TARGET]
    [received] = audit().for_incident(state.incident_id)
    assert received.get("account") is None and received.get("role_arn") is None
    assert runtime.clients_for(state.location, state.incident_id) is clients.HOME
    assert runtime.deps_for(state) is runtime.remediation_deps()  # the cached wiring, no role assumed


def test_a_target_in_the_stacks_own_account_in_another_region_uses_its_own_role_there() -> None:
    policy = policy_dict(
        name="checkout-5xx-eu", target={"region": "eu-west-1", "codedeploy": HOME_POLICY["target"]["codedeploy"]}
    )
    target = PolicyFile.model_validate(document(policy)).policies[0].target

    location = locate(target, ORIGIN, Members())
    source = runtime.clients_for(location, "i")

    assert location == Location(account=HOME, region="eu-west-1", role_arn=None)
    assert target_key(target, location) == f"{HOME}/eu-west-1/{TARGET}"
    assert isinstance(source, clients.InRegion) and source.region == "eu-west-1"
    assert locate(PolicyFile.model_validate(document(HOME_POLICY)).policies[0].target, ORIGIN, Members()) is None


# ---------------------------------------------------------------- the change journal across accounts


def appconfig_event(account: str, app: dict[str, str], env: dict[str, str], profile: dict[str, str]) -> dict[str, Any]:
    """events/journal/appconfig-deployment-complete.json (AppConfig's own sample) as sent from ``account``, naming
    that account's application, environment and profile."""
    event = load_event("journal/appconfig-deployment-complete.json")
    event.update(account=account, id=f"appconfig-{account}", time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    event["detail"].update(Application=app, Environment=env, ConfigurationProfile=profile)
    return event


def appconfig_in(client: Any, profile_type: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """checkout and its profile of ``profile_type``, made with ``client`` (in its account); the environment prod is
    only named by the event (the journal reads the profile alone, and moto has no CreateEnvironment)."""
    app = client.create_application(Name="checkout")
    profile = client.create_configuration_profile(
        ApplicationId=app["Id"], Name="checkout-flags", LocationUri="hosted", Type=profile_type
    )
    return (
        {"Id": app["Id"], "Name": "checkout"},
        {"Id": "pgil2o7", "Name": "prod"},
        {"Id": profile["Id"], "Name": "checkout-flags"},
    )


def test_a_member_accounts_appconfig_change_is_journalled_under_its_account_read_with_its_role(aws: None) -> None:
    """The journal tells a flag change from a configuration change by the profile's type, which only the member
    account can read (GetConfigurationProfile with its execution role, in a rollguard-journal session: the
    JournalFunction's sts:AssumeRole); the change is kept under ``<account>/appconfig:…``, apart from the same names
    at home."""
    journal_handler = load_handler("journal").lambda_handler
    member = appconfig_in(member_client("appconfig"), "AWS.AppConfig.FeatureFlags")
    home = appconfig_in(boto3.client("appconfig", region_name=REGION), "AWS.Freeform")

    in_member = journal_handler(appconfig_event(MEMBER, *member), context("rollguard-journal"))
    at_home = journal_handler(appconfig_event(HOME, *home), context("rollguard-journal"))

    assert (in_member["status"], in_member["change"]["kind"]) == ("recorded", "flag")
    assert in_member["change"]["scope_key"] == f"{MEMBER}/appconfig:checkout/prod"
    assert (at_home["change"]["kind"], at_home["change"]["scope_key"]) == ("config", "appconfig:checkout/prod")
    assert any(session == "rollguard-journal" and role == ROLE for role, session, _ in runtime._ASSUMED)
    # Assess of a member target asks for the member's scope (accounts.journal_scope) and finds only its change.
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = runtime.journal(settings_for(JournalSettings)).changes([f"{MEMBER}/appconfig:checkout/prod"], since, until)
    assert [(c.kind, c.detail["application_id"]) for c in found] == [("flag", member[0]["Id"])]
