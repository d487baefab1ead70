"""Stand up the sandbox: moto with Rollguard's tables, topic, functions and the real state machine,
handlers loaded from functions/<name>/app.py, the World wired to CodeDeploy and CloudWatch."""

import importlib.util
import io
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import boto3
import yaml
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws
from moto.awslambda.exceptions import UnknownAliasException, UnknownFunctionException
from moto.core.config import DefaultConfig, default_user_config
from rollguard import clock as domain_clock
from rollguard import runtime
from rollguard.adapters.dynamo import from_item

from rollguard_cli.sandbox.appconfig import AppConfigDeployments
from rollguard_cli.sandbox.clock import VirtualClock
from rollguard_cli.sandbox.codedeploy import LambdaDeployments
from rollguard_cli.sandbox.ecs import EcsService, EcsServiceSpec
from rollguard_cli.sandbox.iam import Enforcer, iam_prefix, sandbox_enforcer
from rollguard_cli.sandbox.lambda_async import AsyncInvocations, async_configs
from rollguard_cli.sandbox.load_balancer import (
    NAMESPACE as ALB_NAMESPACE,
)
from rollguard_cli.sandbox.load_balancer import (
    LoadBalancerSpec,
    LoadBalancerTraffic,
    ProvisionedLoadBalancer,
    alarm_dimensions,
    routing_from_backend,
    weight_errors,
)
from rollguard_cli.sandbox.moto_ext import CallLog, MotoExtensions
from rollguard_cli.sandbox.organization import Organization
from rollguard_cli.sandbox.world import ErrorModel, ServiceSpec, World, transition
from rollguard_cli.sandbox.zonal_shift import ManagedResource, ZonalShifts, zonal_shift_enabled

REPO = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTIONS = {
    "journal": "JournalFunction",
    "remediation": "RemediationFunction",
    "verify": "VerifyFunction",
    "close": "CloseFunction",
    "approval": "ApprovalFunction",
    "watchdog": "WatchdogFunction",
}
TABLES = {
    "IncidentsTable": "rollguard-incidents",
    "AuditTable": "rollguard-audit",
    "LocksTable": "rollguard-locks",
    "ChangesTable": "rollguard-changes",
}
QUEUES = {
    "IntakeDeadLetterQueue": "rollguard-intake-dead-letters",
    "JournalDeadLetterQueue": "rollguard-journal-dead-letters",
    "FailedInvocationsQueue": "rollguard-failed-invocations",
}


def load_template(path: Path = REPO / "template.yaml") -> dict[str, Any]:
    """template.yaml with CloudFormation's short tags (!Ref, !Sub, ...) read as plain {tag: value} maps."""

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {suffix: value}

    Loader.add_multi_constructor("!", tagged)
    return dict(yaml.load(path.read_text(), Loader=Loader))  # noqa: S506 - SafeLoader subclass


def function_timeouts(template: dict[str, Any] | None = None) -> dict[str, int]:
    """Each sandbox function's Timeout: its own in template.yaml, else the Globals' (Lambda's default is 3 s)."""
    template = template or load_template()
    default = int(template.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    resources = template["Resources"]
    return {
        f"rollguard-{name}": int(resources[logical]["Properties"].get("Timeout", default))
        for name, logical in FUNCTIONS.items()
    }


def load_handler(name: str) -> ModuleType:
    """functions/<name>/app.py as its own module (every function's file is called app.py)."""
    spec = importlib.util.spec_from_file_location(f"rollguard_function_{name}", REPO / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _resolve_refs(value: Any, refs: dict[str, str]) -> Any:
    """A rule pattern from template.yaml with its !Ref intrinsics replaced by the sandbox's resources."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in refs:
            return refs[value["Ref"]]
        return {k: _resolve_refs(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, refs) for v in value]
    return value


def matches_pattern(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's exact-value matching (the subset Rollguard's rules use): every key present, and its
    value one of the listed values, recursively."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        if isinstance(expected, dict):
            if not isinstance(event[key], dict) or not matches_pattern(expected, event[key]):
                return False
        elif event[key] not in expected:
            return False
    return True


@dataclass
class Fault:
    """A fault on an AWS call. ``kind``:
    - ``error``: AWS answers with an error instead (botocore raises it as the real ClientError);
    - ``timeout``: the request never reaches AWS and the caller sees botocore's ReadTimeoutError;
    - ``lost``: AWS carries the call out, and its response is lost: the caller sees ReadTimeoutError.
    Each fault stands for what is left once botocore's own retries are spent, so ``times=1`` reaches the caller."""

    operation: str
    code: str
    message: str
    function: str | None
    times: int
    status: int
    region: str | None = None
    kind: Literal["error", "timeout", "lost"] = "error"
    fired: int = 0

    def matches(self, caller_task: str, operation: str, region: str) -> bool:
        """``function`` names a function (any of its tasks) or one task of it (CallLog.caller_task)."""
        return (
            operation == self.operation
            and self.fired < self.times
            and self.function in (None, caller_task, caller_task.split("/")[0])
            and self.region in (None, region)
        )

    def fire(self) -> tuple[AWSResponse, dict[str, Any]]:
        self.fired += 1
        if self.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=f"https://sandbox.invalid/{self.operation}")
        return _answer(self.status, {"Error": {"Code": self.code, "Message": self.message}})


def _answer(status: int, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    """What a botocore before-call handler returns to answer in place of AWS."""
    parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status})
    return AWSResponse("https://sandbox.invalid", status, HTTPHeaders(), None), parsed


class Sandbox:
    """``with Sandbox(error_model) as sb:`` — everything Rollguard needs, on moto, on a virtual clock."""

    def __init__(
        self,
        error_model: ErrorModel,
        service: ServiceSpec | None = None,
        policy_file: Path = REPO / "policies" / "sandbox.yaml",
        log_stream: io.TextIOBase | None = None,
        load_balancer: LoadBalancerSpec | None = None,
        ecs: EcsServiceSpec | None = None,
        organization: Organization | None = None,
    ):
        """``organization``: a central stack and member accounts (sandbox/organization.py); the World's service then
        runs in its ``service_account``, and the drill's own calls there are ``service_client``'s."""
        if ecs is not None and load_balancer is None:
            raise ValueError("an ECS service registers its tasks in a target group: give load_balancer= too")
        self.clock = VirtualClock()
        self.service = service or ServiceSpec()
        self.world = World(clock=self.clock, service=self.service, error_rate=error_model)
        self.log = CallLog()
        self.policy_file = policy_file
        self.organization = organization
        self.service_account = organization.service_account if organization else ACCOUNT
        # Access keys of the member roles' sessions (AssumeRole's answers): the session's ARN and its account.
        self.sessions: dict[str, tuple[str, str]] = {}
        self._service_clients: dict[tuple[str, str], Any] = {}
        self.log_stream = log_stream or io.StringIO()
        self.handlers: dict[str, Any] = {}
        self.faults: list[Fault] = []
        self.published: list[dict[str, Any]] = []  # every SNS Publish, as sent
        # Called with each audit event (a plain dict, as AuditLog reads it) once its write succeeded, on the writer's
        # thread: a drill streams its timeline through this.
        self.audit_watchers: list[Callable[[dict[str, Any]], None]] = []
        self.appconfig = AppConfigDeployments(self.clock, publish=self.world.enqueue)
        self.codedeploy = LambdaDeployments(self.world.now, self.world.schedule, self.world.cancel, self.world.enqueue)
        self._env: dict[str, str | None] = {}
        self._stack: list[Any] = []
        self.iam: Enforcer | None = None  # IAM from template.yaml, enforced on every function's call once provisioned
        # ARC zonal shift (sandbox/zonal_shift.py) over moto's load balancers; answered whether or not a drill has one.
        self.zonal_shifts = ZonalShifts(now=self.world.now, resources=self._managed_resource, zone_ids=self._zone_ids)
        self.load_balancer_spec = load_balancer
        self.load_balancer: ProvisionedLoadBalancer | None = None  # set once provisioned (load_balancer given)
        # An ECS service behind the load balancer (sandbox/ecs.py): its deployments run on the World's clock.
        self.ecs: EcsService | None = (
            None if ecs is None else EcsService(ecs, self.world.now, self.world.schedule, self.world.enqueue)
        )

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "Sandbox":
        try:
            return self._start()
        except BaseException:
            # What was started is stopped (moto's mock, the session's hooks, the environment): a sandbox that failed to
            # start must not leave the next one, in the same process, to find its tables.
            self.__exit__(None, None, None)
            raise

    def _start(self) -> "Sandbox":
        self._set_env(
            {
                "AWS_ACCESS_KEY_ID": "sandbox",
                "AWS_SECRET_ACCESS_KEY": "sandbox",
                "AWS_SESSION_TOKEN": "sandbox",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": None,
                "INCIDENTS_TABLE": TABLES["IncidentsTable"],
                "AUDIT_TABLE": TABLES["AuditTable"],
                "LOCKS_TABLE": TABLES["LocksTable"],
                "CHANGES_TABLE": TABLES["ChangesTable"],
                "APPCONFIG_STRATEGY": "Rollguard-Immediate",
                "POLICY_FILE": str(self.policy_file),
                "POWERTOOLS_SERVICE_NAME": "rollguard",
                "POWERTOOLS_METRICS_NAMESPACE": "Rollguard",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": None,
                "LOG_LEVEL": "INFO",
                **self._member_environment(),
            }
        )
        # Powertools warns when a handler that raised flushed no metric; the sandbox reports the error instead.
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        self._stack.append(lambda: self._warnings.__exit__(None, None, None))
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        # moto would set boto3's default session to None while it runs ("Configuration", moto docs:
        # core.reset_boto3_session), and a moto worker thread making a client then would give boto3 a session of
        # its own, without the hooks below, which every later client would use (boto3 fills a None default session
        # on first use, unlocked). The sandbox swaps the session itself, in one assignment.
        config: DefaultConfig = {
            "core": {**default_user_config["core"], "reset_boto3_session": False},
            "stepfunctions": {"execute_state_machine": True},
            "lambda": {"use_docker": False},
        }
        mocked = mock_aws(config=config)
        mocked.start()
        self._stack.append(mocked.stop)
        session = boto3.session.Session(region_name=REGION)
        # A before-call handler that returns (response, parsed) answers in place of AWS: fault injection.
        session.events.register("before-parameter-build", self._keep_params)
        session.events.register("before-call", self._record_call)  # type: ignore[arg-type]
        session.events.register("after-call", self._audit_written)
        session.events.register("after-call", self._remember_session)
        session.events.register("after-call", self._lose_response)
        # The previous session back when it stops, or a plain one: never None, which a worker thread outliving the
        # sandbox would fill with a session of its own just as the next sandbox sets its own.
        previous_session = boto3.DEFAULT_SESSION or boto3.session.Session()
        self._stack.append(lambda: setattr(boto3, "DEFAULT_SESSION", previous_session))
        boto3.DEFAULT_SESSION = session  # hooked before any thread can make a client from it
        self._stack.append(domain_clock.reset)
        runtime.reset()
        self._stack.append(runtime.reset)
        for name in FUNCTIONS:
            self.handlers[name] = load_handler(name).lambda_handler
        self._route_logs()
        ext = self.ext = MotoExtensions(
            self.clock, self.world, self.codedeploy, self.handlers, self.log, self.log_stream, function_timeouts()
        )
        domain_clock.use(self.clock.now, sleeper=ext.sleep)
        patches = ext.installed()
        patches.__enter__()
        self._stack.append(lambda: patches.__exit__(None, None, None))
        self._provision()
        shape = self.organization.central_parameters if self.organization else None
        self.iam = sandbox_enforcer(self, parameters=shape)
        ext.asynchronous = self.asynchronous = AsyncInvocations(
            configs=async_configs(load_template()["Resources"], self._function_ids(), self.queue_urls),
            run=ext.run_async,
            send=self._send_as,
            now=self.world.now,
            schedule=self.world.schedule,
            later=self.world.later,
            account=ACCOUNT,
            region=REGION,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        while self._stack:
            self._stack.pop()()
        for key, value in self._env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _set_env(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            self._env.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def set_env(self, **values: str) -> None:
        self._set_env(dict(values))
        runtime.reset()

    def _route_logs(self) -> None:
        """Powertools logs JSON to stdout; in the sandbox it goes to ``log_stream`` (stdout stays the CLI's).
        Metrics (EMF, printed) are redirected there per invocation by the Lambda router."""
        for handler in logging.getLogger("rollguard").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self.log_stream)  # type: ignore[arg-type]

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """before-call sees the serialised request; keep the API parameters for the AppConfig answers."""
        context["sandbox_params"] = dict(params)

    def _record_call(
        self, model: Any, context: dict[str, Any], request_signer: Any, **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        service = model.service_model.endpoint_prefix
        region = getattr(request_signer, "_region_name", REGION)
        caller, task = self.log.caller(), self.log.caller_task()
        self.ext.check_deadline()  # a function past its Timeout makes no more calls
        self.log.aws_calls.append((task, service, model.name))
        credentials = getattr(request_signer, "_credentials", None)
        session = self.sessions.get(getattr(credentials, "access_key", ""))
        denied = self._authorize(caller, model, context.get("sandbox_params", {}), region, session)
        if denied is not None:
            return denied
        if service == "sns" and model.name == "Publish":
            self.published.append(dict(context.get("sandbox_params", {})))
        for fault in self.faults:
            if fault.matches(task, model.name, region):
                if fault.kind != "lost":
                    return fault.fire()
                fault.fired += 1
                context["sandbox_lost"] = True  # answered by AWS below, then lost on the way back (after-call)
                break
        if service == "appconfig":
            answered = self.appconfig.answer(region, model.name, context.get("sandbox_params", {}))
            if answered is not None:
                return _answer(*answered)
        if service == "ecs" and self.ecs is not None:
            with self.log.as_world():  # the service's tasks as they are now on the virtual clock
                self.world.sync()
            answered = self.ecs.answer(model.name, context.get("sandbox_params", {}))
            if answered is not None:
                return _answer(*answered)
        if service == "arc-zonal-shift":
            return _answer(*self.zonal_shifts.answer(region, model.name, context.get("sandbox_params", {})))
        if service == "elasticloadbalancing" and model.name in {
            "CreateListener",
            "ModifyListener",
            "CreateRule",
            "ModifyRule",
        }:
            refused = weight_errors(context.get("sandbox_params", {}))
            if refused is not None:  # "TargetGroupTuple": the range is 0 to 999 (moto accepts any weight)
                return _answer(400, {"Error": {"Code": "ValidationError", "Message": refused, "Type": "Sender"}})
        return None

    def _audit_written(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        """Tell ``audit_watchers`` of each audit event a PutItem or TransactWriteItems wrote (AuditLog.append,
        store.py's first event of an incident)."""
        if not self.audit_watchers or http_response.status_code >= 300:
            return
        params = context.get("sandbox_params", {})
        puts = [params] if model.name == "PutItem" else []
        if model.name == "TransactWriteItems":
            puts = [t["Put"] for t in params.get("TransactItems", []) if "Put" in t]
        for put in puts:
            if put.get("TableName") == TABLES["AuditTable"]:
                event = from_item(put["Item"])
                for watch in self.audit_watchers:
                    watch(event)

    @staticmethod
    def _lose_response(context: dict[str, Any], **_: Any) -> None:
        """A ``lost`` fault: the call was carried out; its caller never hears so."""
        if context.pop("sandbox_lost", False):
            raise ReadTimeoutError(endpoint_url="https://sandbox.invalid (response lost)")

    def _authorize(
        self, caller: str, model: Any, params: dict[str, Any], region: str, session: tuple[str, str] | None = None
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        """IAM first, as in AWS: a Rollguard function's call that its statements do not grant gets the service's
        access-denied error (sandbox/iam.py). A call made with a member role's credentials (``session``: the
        session's ARN and account) is judged by that role's statements instead, and an AssumeRole also by the role's
        trust (sandbox/organization.py). Calls with no function caller are not evaluated."""
        if self.iam is None or caller not in self.iam.functions:
            return None
        service = iam_prefix(model.service_model.endpoint_prefix, model.service_model.service_id)
        if session is not None and self.organization is not None:
            session_arn, account = session
            enforcer = self.organization.role_enforcer(account, self.iam.lookups_in(account))
            decision = enforcer.check(session_arn, service, model.name, params, region)
        else:
            decision = self.iam.check(caller, service, model.name, params, region)
        if decision is None:
            return None
        if decision.allowed and service == "sts" and model.name == "AssumeRole":
            decision = self._trusted(decision, params)
        self.log.iam_authorized.extend((caller, action, resource) for action, resource in decision.authorized)
        if decision.allowed:
            return None
        self.log.iam_denied.append(decision.record())
        return _answer(*decision.error_response())

    def _trusted(self, decision: Any, params: dict[str, Any]) -> Any:
        """An AssumeRole the caller's own statements allow still needs the role's trust (sandbox/organization.py)."""
        role_arn, session_name = str(params.get("RoleArn", "")), str(params.get("RoleSessionName", ""))
        caller_role = re.sub(r":sts::(\d+):assumed-role/([^/]+)/.*", r":iam::\1:role/\2", decision.principal)
        if self.organization is not None and not self.organization.trust_refuses(caller_role, role_arn, session_name):
            return decision
        return replace(decision, denied=("sts:AssumeRole", role_arn), trust=True)

    def _remember_session(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        """The access key of each member role session a function assumed: its later calls are that role's."""
        if model.name == "AssumeRole" and "Credentials" in parsed and self.log.caller():
            arn = parsed["AssumedRoleUser"]["Arn"]
            self.sessions[parsed["Credentials"]["AccessKeyId"]] = (arn, arn.split(":")[4])

    def _member_environment(self) -> dict[str, str | None]:
        """The Remediation function's member-account variables, from the central stack's parameters."""
        names = {
            "MemberRoleName": "MEMBER_ROLE_NAME",
            "MemberAccountIds": "MEMBER_ACCOUNTS",
            "OrganizationId": "ORGANIZATION_ID",
        }
        if self.organization is None:
            return dict.fromkeys(names.values())
        return {names[k]: v for k, v in self.organization.central_parameters.items()}

    def service_client(self, service: str) -> Any:
        """A client of the service team in the account the World's service runs in (no Rollguard function's role):
        the drill's deployments, alarms and functions. At home, ``client``."""
        return self.client_in(self.service_account, service)

    def client_in(self, account: str, service: str) -> Any:
        """A client of that account's own people (a role there that no Rollguard function has); ``client`` at home."""
        if account == ACCOUNT:
            return self.client(service)
        if (account, service) not in self._service_clients:
            credentials = self.client("sts").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/service-team", RoleSessionName="service-team"
            )["Credentials"]
            self._service_clients[(account, service)] = boto3.client(  # type: ignore[call-overload]
                service,
                region_name=REGION,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        return self._service_clients[(account, service)]

    def alarm_elsewhere(self, account: str, alarm: dict[str, Any]) -> None:
        """An alarm of ``account`` (PutMetricAlarm's arguments) goes into ALARM now, and CloudWatch's state change event
        is published on that account's default bus. The World evaluates the service's account's alarms only; this
        one is set as SetAlarmState would, with the event CloudWatch emits for it (world.transition)."""
        from moto.cloudwatch.models import cloudwatch_backends

        self.client_in(account, "cloudwatch").put_metric_alarm(**alarm)
        found = cloudwatch_backends[account][REGION].alarms[alarm["AlarmName"]]
        reason = "Threshold Crossed: set by the drill in another account"
        self.publish_event(transition(found, "ALARM", reason, "{}", self.clock.now()))

    @staticmethod
    def _function_ids() -> dict[str, str]:
        return {f"rollguard-{name}": logical for name, logical in FUNCTIONS.items()}

    def _send_as(self, function: str, queue_url: str, body: str, attributes: dict[str, Any]) -> None:
        """Lambda delivers a failed event with the function's execution role ("Dead-letter queues", Lambda guide)."""

        def send() -> None:
            self.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)

        if self.iam is None or function not in self.iam.functions:
            return send()  # a function a test added: its role is not modelled
        with self.acting_as(function):
            send()

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """Inside the block, calls on this thread are made as ``function`` (``"rollguard-remediation"``) would make
        them: attributed to it and authorized against its role's statements in template.yaml. For contract tests and
        scripts that drive plain boto3."""
        if self.iam is None or function not in self.iam.functions:
            raise ValueError(f"{function!r} is not one of the sandbox's functions")
        outer = getattr(self.log.current, "function", None)
        self.log.current.function = function
        try:
            yield
        finally:
            self.log.current.function = outer

    def inject_fault(
        self,
        operation: str,
        code: str,
        message: str = "injected by the sandbox",
        function: str | None = None,
        times: int = 1_000_000,
        status: int = 400,
        region: str | None = None,
        kind: Literal["error", "timeout", "lost"] = "error",
    ) -> "Fault":
        """Make ``operation`` (called by ``function``, or by anyone, in ``region`` or any) fail with AWS's
        error shape, time out, or lose its response after AWS carried it out (``kind``, see Fault)."""
        fault = Fault(operation, code, message, function, times, status, region, kind)
        self.faults.append(fault)
        return fault

    # ------------------------------------------------------------------ provisioning from template.yaml

    def client(self, service: str, region: str = REGION) -> Any:
        return boto3.client(service, region_name=region)  # type: ignore[call-overload]

    def _provision(self) -> None:
        template = load_template()
        resources = template["Resources"]
        ddb = self.client("dynamodb")
        for logical, name in TABLES.items():
            props = resources[logical]["Properties"]
            indexes = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")
            kwargs = {k: props[k] for k in indexes if k in props}
            ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **kwargs)
        self.queue_urls = self._provision_queues(resources)
        self.set_env(JOURNAL_DEAD_LETTER_QUEUE_URL=self.queue_urls["JournalDeadLetterQueue"])
        sns = self.client("sns")
        self.topic_arn = sns.create_topic(Name="rollguard-escalations")["TopicArn"]
        sqs = self.client("sqs")
        self.inbox_url = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=self.inbox_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"}
        )
        self.stakeholder_topic_arn = sns.create_topic(Name="rollguard-outcomes")["TopicArn"]
        self.set_env(ESCALATION_TOPIC_ARN=self.topic_arn, STAKEHOLDER_TOPIC_ARN=self.stakeholder_topic_arn)

        role = self.role_arn = self.client("iam").create_role(
            RoleName="rollguard-sandbox",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        lam = self.client("lambda")
        arns = {}
        for name, logical in FUNCTIONS.items():
            arns[logical] = lam.create_function(
                FunctionName=f"rollguard-{name}",
                Runtime="python3.13",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": b"handled in-process by the sandbox"},
                Architectures=["arm64"],
            )["FunctionArn"]
        self.handlers.update({f"rollguard-{name}": self.handlers.pop(name) for name in list(FUNCTIONS)})

        machine = resources["RemediationStateMachine"]["Properties"]
        substitutions = {
            "RemediationFunctionArn": arns["RemediationFunction"],
            "VerifyFunctionArn": arns["VerifyFunction"],
            "CloseFunctionArn": arns["CloseFunction"],
            "ApprovalFunctionArn": arns["ApprovalFunction"],
            "LocksTableName": TABLES["LocksTable"],
            "EscalationTopicArn": self.topic_arn,
        }
        assert set(substitutions) == set(machine["DefinitionSubstitutions"]), "template substitutions changed"
        definition = (REPO / machine["DefinitionUri"]).read_text()
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", value)
        sfn = self.client("stepfunctions")
        self.state_machine_arn = sfn.create_state_machine(
            name="rollguard-remediation", definition=definition, roleArn=role, type="STANDARD"
        )["stateMachineArn"]
        self.set_env(STATE_MACHINE_ARN=self.state_machine_arn)

        self.service_role_arn = self.role_arn  # the service's function's role, in the service's account
        if self.service_account != ACCOUNT:
            self.service_role_arn = self.service_client("iam").create_role(
                RoleName="checkout-function",
                AssumeRolePolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            )["Role"]["Arn"]
        self.world.cloudwatch = self.service_client("cloudwatch")
        from moto.awslambda_simple.models import lambda_simple_backends
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.codedeploy.models import codedeploy_backends

        where = self.service_account  # the World's service, in the central account or a member's
        self.world.cloudwatch_backend = self.codedeploy.cloudwatch = cloudwatch_backends[where][REGION]
        self.codedeploy.codedeploy = codedeploy_backends[where][REGION]
        self.codedeploy.lambda_ = lambda_simple_backends[where][REGION]
        self.world.after_alarms = self.codedeploy.alarms_evaluated
        self.world.read_routing = lambda: self.routing()
        self.world.publish = self.publish_event
        svc = self.service
        self.world.read_config = lambda profile: self.appconfig.deployed_document(
            REGION, svc.appconfig_application, svc.appconfig_environment, profile
        )
        if self.load_balancer_spec is not None:
            self._provision_load_balancer(self.load_balancer_spec)
        refs = {"RemediationStateMachine": self.state_machine_arn}
        self.rules = [
            (_resolve_refs(event["Properties"]["Pattern"], refs), f"rollguard-{name}")
            for name, logical in FUNCTIONS.items()
            for event in resources[logical]["Properties"].get("Events", {}).values()
            if event["Type"] == "EventBridgeRule"
        ]

    # ------------------------------------------------------------------ the load balancer and zonal shift

    def _provision_load_balancer(self, spec: LoadBalancerSpec) -> None:
        from moto.elbv2.models import elbv2_backends

        from rollguard_cli.sandbox import load_balancer

        if self.ecs is not None:  # each target group's errors come from the tasks that serve it
            spec = replace(spec, error_rate=self.ecs.error_rate)
        lb = self.load_balancer = load_balancer.provision(self.client("ec2"), self.client("elbv2"), spec)
        backend = elbv2_backends[ACCOUNT][REGION]
        ids = {zone_id: name for name, zone_id in lb.zone_ids.items()}

        def away_from(moment: Any) -> str | None:
            shift = self.zonal_shifts.applied(lb.arn, moment)
            return shift.away_from if shift is not None and shift.away_from in ids else None

        self.world.traffic = LoadBalancerTraffic(lb, lambda: routing_from_backend(backend, lb), away_from)
        self.world.traffic.record(self.world.now())
        if self.ecs is not None:
            from moto.ecs.models import ecs_backends

            subnets = [
                zone["SubnetId"]
                for zone in self.client("elbv2").describe_load_balancers(LoadBalancerArns=[lb.arn])["LoadBalancers"][0][
                    "AvailabilityZones"
                ]
            ]
            self.ecs.provision(
                self.client("ecs"), self.client("ec2"), ecs_backends[ACCOUNT][REGION], lb.target_groups, subnets
            )
            self.ext.ecs = self.ecs
        self.world.sync()  # the load balancer serves from now: its first minute starts at the next boundary

    def ecs_deploy(self, revision: int) -> dict[str, Any]:
        """UpdateService to ``family:revision``, as the service team deploys (no Rollguard function's role)."""
        if self.ecs is None:
            raise ValueError("this sandbox has no ECS service (Sandbox(..., ecs=EcsServiceSpec()))")
        spec = self.ecs.spec
        return dict(
            self.client("ecs").update_service(
                cluster=spec.cluster, service=spec.service, taskDefinition=f"{spec.family}:{revision}"
            )["service"]
        )

    def _managed_resource(self, region: str, arn: str) -> ManagedResource | None:
        """A load balancer is a managed resource of ARC while zonal shift is enabled on it (moto's ELBv2 backend)."""
        from moto.elbv2.models import elbv2_backends

        found = elbv2_backends[ACCOUNT][region].load_balancers.get(arn)
        if found is None or not zonal_shift_enabled(found.attrs):
            return None
        zones = {subnet.availability_zone_id: subnet.availability_zone for subnet in found.subnets}
        return ManagedResource(arn=arn, name=found.name, zones=zones)

    def _zone_ids(self, region: str) -> set[str]:
        from moto.ec2.models import ec2_backends

        return {zone.zone_id for zone in ec2_backends[ACCOUNT][region].describe_availability_zones()}

    def traffic_weights(self) -> dict[str, float]:
        """Who the load balancer's listener sends traffic to now, from moto: {target group name: share}."""
        if self.world.traffic is None:
            raise ValueError("this sandbox has no load balancer (Sandbox(..., load_balancer=LoadBalancerSpec()))")
        return dict(self.world.traffic.weights())

    def shifted_away(self) -> str | None:
        """The Availability Zone ID the load balancer's applied zonal shift keeps traffic away from now, or None."""
        if self.load_balancer is None:
            return None
        shift = self.zonal_shifts.applied(self.load_balancer.arn, self.world.now())
        return shift.away_from if shift is not None else None

    def put_alb_alarm(
        self,
        name: str,
        metric: str = "HTTPCode_Target_5XX_Count",
        threshold: float = 50.0,
        zone: str | None = None,
        target_group: str | None = None,
        evaluation_periods: int = 3,
        datapoints_to_alarm: int = 2,
        treat_missing_data: str = "notBreaching",
    ) -> dict[str, Any]:
        """A CloudWatch alarm on the load balancer's ``metric`` (Sum per minute): for the whole load balancer, one zone
        (``zone="us-east-1b"``) or one target group (``target_group="checkout-green"``). Zero 5XX counts are not
        published by ALB, hence ``notBreaching`` for missing data by default. Returns the PutMetricAlarm arguments."""
        if self.load_balancer is None:
            raise ValueError("this sandbox has no load balancer (Sandbox(..., load_balancer=LoadBalancerSpec()))")
        alarm = {
            "AlarmName": name,
            "AlarmDescription": f"{metric} of {self.load_balancer.spec.name}" + (f" in {zone}" if zone else ""),
            "Namespace": ALB_NAMESPACE,
            "MetricName": metric,
            "Dimensions": alarm_dimensions(self.load_balancer, zone=zone, target_group=target_group),
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": evaluation_periods,
            "DatapointsToAlarm": datapoints_to_alarm,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": treat_missing_data,
        }
        self.client("cloudwatch").put_metric_alarm(**alarm)
        return alarm

    def _provision_queues(self, resources: dict[str, Any]) -> dict[str, str]:
        """The template's queues, with their retention and encryption: logical id → queue URL."""
        queues = {logical for logical, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
        assert queues == set(QUEUES), "template queues changed"
        sqs, urls = self.client("sqs"), {}
        for logical, name in QUEUES.items():
            props = resources[logical]["Properties"]
            attributes = {k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k]) for k in props}
            urls[logical] = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return urls

    def dead_letters(self, logical: str) -> list[dict[str, Any]]:
        """The messages waiting in one of the template's queues (left there: receiving hides them for 0 s)."""
        sqs = self.client("sqs")
        found = sqs.receive_message(
            QueueUrl=self.queue_urls[logical],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        )
        return list(found.get("Messages", []))

    def routing(self, function: str | None = None, alias: str | None = None) -> dict[str, float]:
        """Who serves the service's traffic, from its Lambda alias: {version: share} ({} before it exists)."""
        try:
            return self.codedeploy.routing(function or self.service.function, alias or self.service.alias)
        except (UnknownAliasException, UnknownFunctionException):
            return {}

    def publish_event(self, event: dict[str, Any]) -> None:
        """EventBridge: every rule in template.yaml whose pattern matches invokes its function (async). A member
        account's event reaches them only through its forwarding rules and the bus's policy (organization.py)."""
        if event.get("account", ACCOUNT) != ACCOUNT and not (self.organization and self.organization.forward(event)):
            return
        for pattern, function in self.rules:
            if matches_pattern(pattern, event):
                self.client("lambda").invoke(
                    FunctionName=function, InvocationType="Event", Payload=json.dumps(event, default=str).encode()
                )

    # ------------------------------------------------------------------ driving time

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.world.sync()
        self.world.deliver()

    def run_until_incident(self, max_minutes: int = 60, seen: set[str] | None = None) -> str | None:
        """Let simulated minutes pass until an execution (other than ``seen``) starts; its name (the incident id)
        or None."""
        sfn = self.client("stepfunctions")
        for _ in range(max_minutes * 6):
            self.advance(10)
            executions = sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
            fresh = [e["name"] for e in executions if e["name"] not in (seen or set())]
            if fresh:
                return str(fresh[0])
        return None

    def wait_for_execution(self, incident_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll the interpreter until the execution ends (it runs on moto's thread)."""
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{incident_id}"
        deadline = time.monotonic() + timeout_s
        while True:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                if described["status"] in {"FAILED", "TIMED_OUT", "ABORTED"}:
                    self._announce_execution_end(described)
                return dict(described)
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {incident_id} still RUNNING after {timeout_s}s")
            time.sleep(0.02)

    def _announce_execution_end(self, described: dict[str, Any]) -> None:
        """Step Functions' "Execution Status Change" event, which moto's interpreter does not emit."""
        self.publish_event(
            {
                "version": "0",
                "id": f"sfn-{described['name']}",
                "detail-type": "Step Functions Execution Status Change",
                "source": "aws.states",
                "account": ACCOUNT,
                "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [described["executionArn"]],
                "detail": {
                    "executionArn": described["executionArn"],
                    "stateMachineArn": self.state_machine_arn,
                    "name": described["name"],
                    "status": described["status"],
                    "input": described.get("input", "{}"),
                    "output": described.get("output"),
                    "error": described.get("error"),
                    "cause": described.get("cause"),
                },
            }
        )

    def history(self, incident_id: str) -> list[dict[str, Any]]:
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{incident_id}"
        pages = self.client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=arn)
        return [event for page in pages for event in page["events"]]

    def notifications(self) -> list[str]:
        """What an email subscriber of the escalation (on-call) topic received (subject and body), in order."""
        return self._texts(self.topic_arn)

    def stakeholder_notifications(self) -> list[str]:
        """What a subscriber of the stakeholder topic (every incident's outcome) received."""
        return self._texts(self.stakeholder_topic_arn)

    def _texts(self, topic_arn: str) -> list[str]:
        texts = []
        for params in (p for p in self.published if p.get("TopicArn", topic_arn) == topic_arn):
            body = params.get("Message", "")
            if params.get("MessageStructure") == "json":
                per_protocol = json.loads(body)
                body = per_protocol.get("email", per_protocol["default"])
            texts.append(f"Subject: {params.get('Subject', '')}\n\n{body}")
        return texts

    def chat_notifications(self) -> list[str]:
        """What a chat integration (an SQS/HTTPS subscriber: the topic's default message) received."""
        sqs = self.client("sqs")
        messages: list[str] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(message["Body"])
                sqs.delete_message(QueueUrl=self.inbox_url, ReceiptHandle=message["ReceiptHandle"])
