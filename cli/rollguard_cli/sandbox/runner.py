"""Stand up the sandbox: moto with Rollguard's tables, topic, functions and the real state machine,
handlers loaded from functions/<name>/app.py, the World wired to CodeDeploy and CloudWatch."""

import importlib.util
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import yaml
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws
from rollguard import clock as domain_clock
from rollguard import runtime

from rollguard_cli.sandbox.clock import VirtualClock
from rollguard_cli.sandbox.moto_ext import CallLog, MotoExtensions
from rollguard_cli.sandbox.world import ErrorModel, ServiceSpec, World

REPO = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTIONS = {
    "intake": "IntakeFunction",
    "assess": "AssessFunction",
    "act": "ActFunction",
    "verify": "VerifyFunction",
    "close": "CloseFunction",
}
TABLES = {"IncidentsTable": "rollguard-incidents", "AuditTable": "rollguard-audit", "LocksTable": "rollguard-locks"}


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


def load_handler(name: str) -> ModuleType:
    """functions/<name>/app.py as its own module (every function's file is called app.py)."""
    spec = importlib.util.spec_from_file_location(f"rollguard_function_{name}", REPO / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Fault:
    """An AWS error answered in place of a real call (botocore raises it as the real ClientError)."""

    operation: str
    code: str
    message: str
    function: str | None
    times: int
    status: int
    fired: int = 0

    def matches(self, caller: str, operation: str) -> bool:
        return operation == self.operation and self.fired < self.times and self.function in (None, caller)

    def fire(self) -> tuple[AWSResponse, dict[str, Any]]:
        self.fired += 1
        parsed = {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        return AWSResponse("https://sandbox.invalid", self.status, HTTPHeaders(), None), parsed


class Sandbox:
    """``with Sandbox(error_model) as sb:`` — everything Rollguard needs, on moto, on a virtual clock."""

    def __init__(
        self,
        error_model: ErrorModel,
        service: ServiceSpec | None = None,
        policy_file: Path = REPO / "policies" / "sandbox.yaml",
        log_stream: io.TextIOBase | None = None,
    ):
        self.clock = VirtualClock()
        self.service = service or ServiceSpec()
        self.world = World(clock=self.clock, service=self.service, error_rate=error_model)
        self.log = CallLog()
        self.policy_file = policy_file
        self.log_stream = log_stream or io.StringIO()
        self.handlers: dict[str, Any] = {}
        self.delivered: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._env: dict[str, str | None] = {}
        self._stack: list[Any] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "Sandbox":
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
                "POLICY_FILE": str(self.policy_file),
                "POWERTOOLS_SERVICE_NAME": "rollguard",
                "POWERTOOLS_METRICS_NAMESPACE": "Rollguard",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": None,
                "LOG_LEVEL": "INFO",
            }
        )
        mocked = mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        mocked.start()
        self._stack.append(mocked.stop)
        boto3.setup_default_session(region_name=REGION)
        # A before-call handler that returns (response, parsed) answers in place of AWS: fault injection.
        boto3.DEFAULT_SESSION.events.register("before-call", self._record_call)  # type: ignore[union-attr,arg-type]
        domain_clock.use(self.clock.now)
        self._stack.append(domain_clock.reset)
        runtime.reset()
        self._stack.append(runtime.reset)
        for name in FUNCTIONS:
            self.handlers[name] = load_handler(name).lambda_handler
        self._route_logs()
        ext = MotoExtensions(self.clock, self.world, self.handlers, self.log, self.log_stream)
        patches = ext.installed()
        patches.__enter__()
        self._stack.append(lambda: patches.__exit__(None, None, None))
        self._provision()
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

    def _record_call(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        service = model.service_model.endpoint_prefix
        caller = self.log.caller()
        self.log.aws_calls.append((caller, service, model.name))
        for fault in self.faults:
            if fault.matches(caller, model.name):
                return fault.fire()
        return None

    def inject_fault(
        self,
        operation: str,
        code: str,
        message: str = "injected by the sandbox",
        function: str | None = None,
        times: int = 1_000_000,
        status: int = 400,
    ) -> "Fault":
        """Make ``operation`` (called by ``function``, or by anyone) fail with AWS's error shape."""
        fault = Fault(operation, code, message, function, times, status)
        self.faults.append(fault)
        return fault

    # ------------------------------------------------------------------ provisioning from template.yaml

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]

    def _provision(self) -> None:
        template = load_template()
        resources = template["Resources"]
        ddb = self.client("dynamodb")
        for logical, name in TABLES.items():
            props = resources[logical]["Properties"]
            kwargs = {
                k: props[k] for k in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes") if k in props
            }
            ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **kwargs)
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
        self.set_env(ESCALATION_TOPIC_ARN=self.topic_arn)

        role = self.client("iam").create_role(
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
            "AssessFunctionArn": arns["AssessFunction"],
            "ActFunctionArn": arns["ActFunction"],
            "VerifyFunctionArn": arns["VerifyFunction"],
            "CloseFunctionArn": arns["CloseFunction"],
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

        self.world.cloudwatch = self.client("cloudwatch")
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.codedeploy.models import codedeploy_backends

        self.world.cloudwatch_backend = cloudwatch_backends[ACCOUNT][REGION]
        self.world.codedeploy_backend = codedeploy_backends[ACCOUNT][REGION]
        self.world.deliver_alarm_event = self._deliver_to_intake

    def _deliver_to_intake(self, event: dict[str, Any]) -> None:
        """The EventBridge rule's pattern from template.yaml decides, as EventBridge would."""
        self.delivered.append(event)
        if event["detail"]["state"]["value"] == "ALARM":
            self.client("lambda").invoke(
                FunctionName="rollguard-intake", InvocationType="Event", Payload=json.dumps(event).encode()
            )

    # ------------------------------------------------------------------ driving time

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.world.sync()
        self.world.deliver()

    def run_until_incident(self, max_minutes: int = 60) -> str | None:
        """Let simulated minutes pass until an execution starts; its name (the incident id) or None."""
        sfn = self.client("stepfunctions")
        for _ in range(max_minutes * 6):
            self.advance(10)
            executions = sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
            if executions:
                return str(executions[0]["name"])
        return None

    def wait_for_execution(self, incident_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll the interpreter until the execution ends (it runs on moto's thread)."""
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{incident_id}"
        deadline = time.monotonic() + timeout_s
        while True:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return dict(described)
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {incident_id} still RUNNING after {timeout_s}s")
            time.sleep(0.02)

    def history(self, incident_id: str) -> list[dict[str, Any]]:
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{incident_id}"
        pages = self.client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=arn)
        return [event for page in pages for event in page["events"]]

    def notifications(self) -> list[str]:
        sqs = self.client("sqs")
        messages: list[str] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(message["Body"])
                sqs.delete_message(QueueUrl=self.inbox_url, ReceiptHandle=message["ReceiptHandle"])
