"""The one place where the sandbox fills moto's gaps (moto 5.2.5). Every patch keeps AWS's real
request and response shapes — botocore serialises and parses them — so handlers cannot tell.

- Lambda: ``Invoke`` of a registered function runs the real handler in-process (moto would need Docker),
  answering as the Lambda service does, ``FunctionError: Unhandled`` and ``errorType`` included. An asynchronous
  ``Invoke`` (``InvocationType=Event``) is answered 202 and handed to sandbox/lambda_async.py: retries, then the
  function's dead-letter queue or on-failure destination.
- CodeDeploy: ``StopDeployment``, ``CreateDeploymentConfig``/``GetDeploymentConfig``, ``errorInformation`` and
  ``rollbackInfo`` in deployment reads, ``alarmConfiguration`` and the last attempted/successful deployment in group
  reads, one active deployment per group (``DeploymentLimitExceededException``, API "CreateDeployment"), and the
  refusals of CreateDeployment/CreateDeploymentGroup by the application's compute platform; what a deployment then
  does is sandbox/codedeploy.py's (the Lambda alias) or sandbox/codedeploy_ecs.py's (ECS task sets and the listener).
- Lambda: ``CreateAlias``/``UpdateAlias`` tell the World, which reads its traffic split from the alias.
- ELBv2: ``ModifyListener``/``ModifyRule``/``CreateRule``/``DeleteRule`` tell the World, which reads the load
  balancer's weights from moto's listener and rules (sandbox/load_balancer.py).
- ECS: ``UpdateService`` of the sandbox's ECS service (sandbox/ecs.py) starts a deployment there instead of
  overwriting moto's fields, and is refused as AWS refuses it (a taskDefinition on a CODE_DEPLOY service).
- Step Functions: a ``Wait`` state and a ``Retry`` back-off advance the virtual clock instead of sleeping, and a
  task's timeout (TimeoutSeconds/TimeoutSecondsPath, e.g. an approval's deadline) is counted on that clock.
- CloudWatch: reads (DescribeAlarms, GetMetricData, GetMetricStatistics) first bring the World up to
  the clock, since moto evaluates no alarms and publishes no metrics by itself. GetMetricData and GetMetricStatistics
  read the one metric whose dimensions are exactly the query's ("Amazon CloudWatch concepts", Dimensions: each unique
  combination of dimensions is a separate metric); moto matches a subset of them (and GetMetricData with
  dimensions ignores the namespace), which would sum an ALB's per-zone series into its per-load-balancer one.
  GetMetricData computes metric math expressions (moto returns an expression only when it is a bare query id): the
  arithmetic subset the alarm evaluator reads (alarm_eval.py), over the other queries' values per timestamp, and
  returns only the queries with ReturnData ("GetMetricData", CloudWatch API Reference). An alarm on metric math or on
  an anomaly detection band is evaluated by the World through the same evaluator (sandbox/world.py).

AppConfig's deployment side, which moto lacks entirely, is the other half of this boundary: sandbox/appconfig.py
answers those operations from a botocore before-call hook (installed by runner.py), in AppConfig's shapes; so does
sandbox/zonal_shift.py for ARC zonal shift (``arc-zonal-shift``), which moto does not have at all.
"""

import builtins
import copy
import json
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from time import monotonic
from types import SimpleNamespace
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudwatch.exceptions import ValidationError as CloudWatchValidationError
from moto.cloudwatch.models import CloudWatchBackend
from moto.cloudwatch.responses import CloudWatchResponse
from moto.codedeploy import responses as cd_responses
from moto.codedeploy.models import CodeDeployBackend
from moto.core.responses import ActionResult
from moto.dynamodb.responses import DynamoHandler
from moto.ecs.models import EC2ContainerServiceBackend
from moto.elbv2.models import ELBv2Backend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

from rollguard_cli.alarm_eval import AlarmNotEvaluable, compute, parse_expression, references
from rollguard_cli.sandbox.clock import VirtualClock
from rollguard_cli.sandbox.codedeploy import ACTIVE, CodeDeployError, LambdaDeployments
from rollguard_cli.sandbox.world import World

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class Budget:
    """An invocation's time against its Timeout: real time running plus the time it waited (clock.sleep). Jumps
    of the virtual clock made by others (a drill's "ten minutes later") are not the function's time."""

    timeout: float
    started: float = field(default_factory=monotonic)
    slept: float = 0.0

    def remaining(self) -> float:
        return self.timeout - (monotonic() - self.started) - self.slept


class InvocationTimedOut(BaseException):
    """Lambda stops a function at its Timeout. A BaseException, so that no handler's ``except Exception`` can
    swallow the stop (on Lambda the runtime is killed)."""


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    budget: Budget | None = None  # None: a handler called directly by a test, outside any invocation
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        if self.budget is None:
            return 30_000
        return max(0, int(self.budget.remaining() * 1000))


@dataclass
class CallLog:
    """What the sandbox saw: Lambda invocations, and each AWS call by the function making it."""

    invocations: list[dict[str, Any]] = field(default_factory=list)
    aws_calls: list[tuple[str, str, str]] = field(default_factory=list)  # (caller_task(), service, operation)
    # IAM (sandbox/iam.py): each (function, action, resource) a function's call was authorized on, and each denial.
    iam_authorized: list[tuple[str, str, str]] = field(default_factory=list)
    iam_denied: list[dict[str, str]] = field(default_factory=list)
    current: threading.local = field(default_factory=threading.local)

    def caller(self) -> str:
        """The function making the calls on this thread: whose role IAM judges them against."""
        return getattr(self.current, "function", "") or ""

    def caller_task(self) -> str:
        """The caller, and the task it runs when one function serves several (the Remediation function's ``intake``,
        ``assess`` and ``act``): ``rollguard-remediation/act``. Calls are recorded, and faults aimed, by it, so one
        task's calls are told apart from another's."""
        task = getattr(self.current, "task", None)
        return f"{self.caller()}/{task}" if task else self.caller()

    @contextmanager
    def as_world(self) -> Iterator[None]:
        """The world's own calls (metrics, alarms) made on a handler's thread are not that function's calls: IAM
        must not judge them against its role, and they do not count against its Timeout."""
        saved = (self.caller(), getattr(self.current, "task", None), getattr(self.current, "budget", None))
        self.current.function, self.current.task, self.current.budget = "", None, None
        try:
            yield
        finally:
            self.current.function, self.current.task, self.current.budget = saved


# The task a function serving several runs when its event names none, as its handler dispatches: the Remediation
# function's events from the alarm rule are its intake's (functions/remediation/app.py).
UNTASKED = {"rollguard-remediation": "intake"}


class MotoExtensions:
    def __init__(
        self,
        clock: VirtualClock,
        world: World,
        codedeploy: LambdaDeployments,
        handlers: dict[str, Handler],
        log: CallLog,
        stdout: Any,
        timeouts: dict[str, int] | None = None,
    ) -> None:
        self.clock, self.world, self.codedeploy, self.handlers, self.log = clock, world, codedeploy, handlers, log
        self.timeouts = timeouts or {}  # function name → its Timeout in seconds (template.yaml)
        self.stdout = stdout  # where a handler's prints (Powertools' EMF metrics) go, as CloudWatch Logs would
        self._requests = 0
        self.asynchronous: Any = None  # lambda_async.AsyncInvocations, set by the sandbox
        self.ecs: Any = None  # ecs.EcsService, set by the sandbox when it has an ECS service

    @contextmanager
    def installed(self) -> Iterator["MotoExtensions"]:
        ext = self
        original_invoke = LambdaSimpleBackend.invoke
        original_create = CodeDeployBackend.create_deployment
        original_create_group = CodeDeployBackend.create_deployment_group
        self.codedeploy.create_original = original_create
        original_info = cd_responses._deployment_info
        original_group_info = cd_responses._deployment_group_info

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: dict[str, str]
        ) -> Any:
            name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
            if name not in ext.handlers:
                return original_invoke(backend, function_name, qualifier, body, headers, response_headers)
            event = json.loads(body) if body else {}
            if headers.get("X-Amz-Invocation-Type") == "Event" and ext.asynchronous is not None:
                ext.asynchronous.invoke(name, event)  # the first attempt now; the result is not the caller's
                response_headers["Content-Length"] = "0"
                return b""
            payload = ext._run_handler(name, event, response_headers)
            response_headers["Content-Length"] = str(len(payload))
            return payload

        def create_deployment(
            backend: Any,
            application_name: str,
            deployment_group_name: str,
            revision: dict[str, Any],
            *args: Any,
            **kwargs: Any,
        ) -> str:
            config = kwargs.get("deployment_config_name") or (args[0] if args else None)
            # DeploymentConfigDoesNotExistException, a configuration of another compute platform, an AppSpec that is
            # not the platform's: refused before moto records the deployment (which would then block the group).
            ext.codedeploy.admit(backend, application_name, deployment_group_name, revision, config and str(config))
            active = [
                d
                for d in backend.deployments.values()
                if d.application_name == application_name
                and d.deployment_group_name == deployment_group_name
                and d.status in ACTIVE
            ]
            if active:
                raise CodeDeployError(
                    "DeploymentLimitExceededException",
                    f"The Deployment Group '{deployment_group_name}' already has an active Deployment "
                    f"'{active[0].deployment_id}'",
                )
            deployment_id = original_create(backend, application_name, deployment_group_name, revision, *args, **kwargs)
            ext.codedeploy.created(backend.deployments[deployment_id])
            return str(deployment_id)

        def create_deployment_group(backend: Any, application_name: str, *args: Any, **kwargs: Any) -> str:
            # moto's response passes every parameter by keyword; the ECS group's refusals, by compute platform.
            kwargs = ext.codedeploy.admit_group(backend, application_name, kwargs)
            return str(original_create_group(backend, application_name, *args, **kwargs))

        def respond(method: Callable[[Any], dict[str, Any]]) -> Callable[[Any], ActionResult]:
            return lambda response: ActionResult(method(response))

        def stop_response(response: Any) -> dict[str, Any]:
            deployment = response.codedeploy_backend.get_deployment(response._get_param("deploymentId"))
            return ext.codedeploy.stop(deployment, bool(response._get_param("autoRollbackEnabled")))

        def create_config_response(response: Any) -> dict[str, Any]:
            body = {
                k: response._get_param(k) for k in ("computePlatform", "trafficRoutingConfig", "minimumHealthyHosts")
            }
            return ext.codedeploy.create_config(response._get_param("deploymentConfigName"), body)

        def get_config_response(response: Any) -> dict[str, Any]:
            return {"deploymentConfigInfo": ext.codedeploy.get_config(response._get_param("deploymentConfigName"))}

        def deployment_info(deployment: Any) -> dict[str, Any]:
            info = original_info(deployment)
            info["rollbackInfo"] = getattr(deployment, "rollback_info", {}) or {}
            info["errorInformation"] = getattr(deployment, "error_information", {}) or {}
            return info

        def deployment_group_info(group: Any) -> dict[str, Any]:
            info = original_group_info(group)
            info["alarmConfiguration"] = group.alarm_configuration or {}  # moto answers {} whatever was set
            # moto answers {} for both; CodeDeploy reports the group's last attempted and last successful deployment.
            backend = ext.codedeploy.codedeploy
            mine = [d for d in (backend.deployments.values() if backend else []) if d.deployment_group is group]
            for key, found in (
                ("lastAttemptedDeployment", mine[-1:]),
                ("lastSuccessfulDeployment", [d for d in mine if d.status == "Succeeded"][-1:]),
            ):
                if found:
                    info[key] = {
                        "deploymentId": found[0].deployment_id,
                        "status": found[0].status,
                        "endTime": found[0].complete_time,
                        "createTime": found[0].create_time,
                    }
            return info

        def alias_changed(original: Callable[..., Any]) -> Callable[..., Any]:
            def change(backend: Any, *args: Any, **kwargs: Any) -> Any:
                alias = original(backend, *args, **kwargs)
                ext.world.on_alias_changed()
                return alias

            return change

        def listener_changed(original: Callable[..., Any]) -> Callable[..., Any]:
            def change(backend: Any, *args: Any, **kwargs: Any) -> Any:
                result = original(backend, *args, **kwargs)
                ext.world.on_listener_changed()
                return result

            return change

        def wait_interval(wait_function: Any, env: Any, wait_seconds: int) -> None:
            ext.clock.advance(wait_seconds)
            with ext.log.as_world():
                ext.world.sync()
                ext.world.deliver()

        class RetryBackoff:
            """Stands in for the ``time`` module inside moto's retrier: back-off passes on the virtual clock."""

            @staticmethod
            def sleep(seconds: float) -> None:
                ext.clock.advance(seconds)

        class VirtualEvent:
            """threading.Event for moto's task timeouts: ``wait(timeout)`` counts the sandbox's clock."""

            def __init__(self) -> None:
                self._event = threading.Event()

            def set(self) -> None:
                self._event.set()

            def is_set(self) -> bool:
                return self._event.is_set()

            def wait(self, timeout: float | None = None) -> bool:
                if timeout is None:
                    return self._event.wait()
                deadline = ext.clock.now() + timedelta(seconds=timeout)
                while not self._event.wait(0.01):
                    if ext.clock.now() >= deadline:
                        return False
                return True

        def syncing(original: Callable[..., Any]) -> Callable[..., Any]:
            def read(response: Any) -> Any:
                with ext.log.as_world():  # runs on the reading function's thread
                    ext.world.sync()
                return original(response)

            return read

        exact = threading.local()  # while a metric read runs: the datapoints renamed by their exact dimensions

        def metric_key(name: str, dimensions: Any) -> str:
            pairs = sorted((d.name, d.value) if hasattr(d, "name") else (d["Name"], d["Value"]) for d in dimensions)
            return name + "\x00" + json.dumps(pairs)

        original_all_metrics = CloudWatchBackend.get_all_metrics

        def all_metrics(backend: Any) -> Any:
            data = original_all_metrics(backend)
            if not getattr(exact, "on", False):
                return data
            renamed = []
            for datum in data:
                twin = copy.copy(datum)
                twin.name, twin.dimensions = metric_key(datum.name, datum.dimensions), []
                renamed.append(twin)
            return renamed

        @contextmanager
        def exact_dimensions() -> Iterator[None]:
            exact.on = True
            try:
                yield
            finally:
                exact.on = False

        original_metric_data = CloudWatchBackend.get_metric_data
        original_statistics = CloudWatchBackend.get_metric_statistics

        def get_metric_data(backend: Any, queries: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            rewritten = []
            for query in queries:
                if "MetricStat" in query:
                    stat = query["MetricStat"]
                    metric = stat["Metric"]
                    query = {
                        **query,
                        "Label": query.get("Label") or f"{metric['MetricName']} {stat['Stat']}",
                        "MetricStat": {
                            **stat,
                            "Metric": {
                                "Namespace": metric["Namespace"],
                                "MetricName": metric_key(metric["MetricName"], metric.get("Dimensions", [])),
                            },
                        },
                    }
                rewritten.append(query)
            stats = [{**q, "ReturnData": True} for q in rewritten if "MetricStat" in q]
            with exact_dimensions():
                results = original_metric_data(backend, stats, *args, **kwargs) if stats else []
            return metric_math(rewritten, results, kwargs.get("scan_by", args[2] if len(args) > 2 else None))

        def metric_math(queries: list[dict[str, Any]], results: list[dict[str, Any]], scan_by: Any) -> Any:
            """GetMetricData's expressions, which moto does not compute: the arithmetic subset of metric math
            (alarm_eval.parse_expression) over the other queries' values at each timestamp, in the order given; the
            results of the queries with ReturnData (default true), as GetMetricData returns them."""
            by_id = {r["id"]: dict(zip(r["timestamps"], r["values"], strict=True)) for r in results}
            labels = {r["id"]: r["label"] for r in results}
            for query in queries:
                if "Expression" not in query:
                    continue
                try:
                    tree = parse_expression(query["Expression"])
                except AlarmNotEvaluable as exc:
                    raise CloudWatchValidationError(f"The sandbox does not evaluate this expression: {exc}") from None
                moments = sorted({t for i in references(tree) for t in by_id.get(i, {})})
                computed = {t: compute(tree, {i: by_id.get(i, {}).get(t) for i in references(tree)}) for t in moments}
                by_id[query["Id"]] = {t: v for t, v in computed.items() if v is not None}
                labels[query["Id"]] = query.get("Label") or query["Id"]
            out = []
            for query in queries:
                if not query.get("ReturnData", True):
                    continue
                series = sorted(by_id.get(query["Id"], {}).items(), reverse=scan_by == "TimestampDescending")
                out.append(
                    {
                        "id": query["Id"],
                        "label": labels.get(query["Id"], query["Id"]),
                        "values": [v for _, v in series],
                        "timestamps": [t for t, _ in series],
                        "status_code": "Complete",
                    }
                )
            return out

        def get_metric_statistics(
            backend: Any,
            namespace: str,
            metric_name: str,
            start: Any,
            end: Any,
            period: int,
            stats: Any,
            dimensions: list[dict[str, str]],
            unit: str | None = None,
        ) -> Any:
            with exact_dimensions():
                return original_statistics(
                    backend, namespace, metric_key(metric_name, dimensions or []), start, end, period, stats, [], unit
                )

        dynamodb_lock = threading.RLock()

        def one_at_a_time(original: Callable[..., Any]) -> Callable[..., Any]:
            """moto's DynamoDB is not thread-safe: a read serialising an item while the state machine's thread
            updates it fails with "dictionary changed size during iteration". DynamoDB is, so the sandbox takes
            one DynamoDB request at a time (a short, in-memory section that waits on nothing)."""

            def call(response: Any) -> Any:
                with dynamodb_lock:
                    return original(response)

            return call

        original_print = builtins.print

        original_update_service = EC2ContainerServiceBackend.update_service

        def update_service(backend: Any, service_properties: dict[str, Any]) -> Any:
            props = dict(service_properties)
            if ext.ecs is not None and ext.ecs.modelled(props.get("cluster", "default"), props.get("service", "")):
                with ext.world._lock:
                    updated = ext.ecs.update_service(props)
                if updated is not None:
                    return updated
            return original_update_service(backend, service_properties)

        def handler_print(*args: Any, **kwargs: Any) -> None:
            """A handler's prints (Powertools' EMF metrics) go where CloudWatch Logs would take them. Per thread:
            contextlib.redirect_stdout swaps the process's sys.stdout, which races with the CLI's own capture."""
            if ext.log.caller() and "file" not in kwargs:
                kwargs["file"] = ext.stdout
            original_print(*args, **kwargs)

        with ExitStack() as stack:
            for target, attribute, value in [
                (builtins, "print", handler_print),
                (LambdaSimpleBackend, "invoke", invoke),  # use_docker=False selects this backend
                (CodeDeployBackend, "create_deployment", create_deployment),
                (CodeDeployBackend, "create_deployment_group", create_deployment_group),
                (EC2ContainerServiceBackend, "update_service", update_service),
                (cd_responses.CodeDeployResponse, "stop_deployment", respond(stop_response)),
                (cd_responses.CodeDeployResponse, "create_deployment_config", respond(create_config_response)),
                (cd_responses.CodeDeployResponse, "get_deployment_config", respond(get_config_response)),
                (cd_responses, "_deployment_info", deployment_info),
                (cd_responses, "_deployment_group_info", deployment_group_info),
                (LambdaBackend, "create_alias", alias_changed(LambdaBackend.create_alias)),
                (LambdaBackend, "update_alias", alias_changed(LambdaBackend.update_alias)),
                (ELBv2Backend, "modify_listener", listener_changed(ELBv2Backend.modify_listener)),
                (ELBv2Backend, "modify_rule", listener_changed(ELBv2Backend.modify_rule)),
                (ELBv2Backend, "create_rule", listener_changed(ELBv2Backend.create_rule)),
                (ELBv2Backend, "delete_rule", listener_changed(ELBv2Backend.delete_rule)),
                (WaitFunction, "_wait_interval", wait_interval),
                (retrier_decl, "time", RetryBackoff),
                (execute_state, "threading", SimpleNamespace(Event=VirtualEvent)),
                (DynamoHandler, "call_action", one_at_a_time(DynamoHandler.call_action)),
                (CloudWatchBackend, "get_all_metrics", all_metrics),
                (CloudWatchBackend, "get_metric_data", get_metric_data),
                (CloudWatchBackend, "get_metric_statistics", get_metric_statistics),
                (CloudWatchResponse, "describe_alarms", syncing(CloudWatchResponse.describe_alarms)),
                (CloudWatchResponse, "get_metric_data", syncing(CloudWatchResponse.get_metric_data)),
                (CloudWatchResponse, "get_metric_statistics", syncing(CloudWatchResponse.get_metric_statistics)),
            ]:
                stack.enter_context(mock.patch.object(target, attribute, value, create=True))
            yield self

    def sleep(self, seconds: float) -> None:
        """The domain's clock.sleep in the sandbox: the wait passes on the virtual clock and counts towards the
        running function's Timeout."""
        self.clock.advance(seconds)
        budget = getattr(self.log.current, "budget", None)
        if budget is not None:
            budget.slept += seconds
        self.check_deadline()

    def check_deadline(self) -> None:
        """Lambda stops a function that outlives its Timeout ("Configure Lambda function timeout"); the sandbox
        looks when the function waits or calls AWS, and stops it there."""
        budget = getattr(self.log.current, "budget", None)
        if budget is not None and budget.remaining() < 0:
            raise InvocationTimedOut()

    def run_async(self, name: str, event: dict[str, Any], request_id: str) -> dict[str, Any] | None:
        """One attempt of an asynchronous invocation: the handler's error payload, or None if it succeeded."""
        headers: dict[str, str] = {}
        payload = self._run_handler(name, event, headers, request_id)
        return dict(json.loads(payload)) if "x-amz-function-error" in headers else None

    def _run_handler(
        self, name: str, event: dict[str, Any], response_headers: dict[str, str], request_id: str | None = None
    ) -> bytes:
        self._requests += 1
        timeout = self.timeouts.get(name, 30)
        budget = Budget(timeout)
        request_id = request_id or f"sandbox-{self._requests:06d}"
        context = LambdaContext(function_name=name, aws_request_id=request_id, budget=budget)
        outer = (self.log.caller(), getattr(self.log.current, "task", None), getattr(self.log.current, "budget", None))
        task = (
            event.get("task") if isinstance(event, dict) and isinstance(event.get("task"), str) else UNTASKED.get(name)
        )
        self.log.current.function, self.log.current.task, self.log.current.budget = name, task, budget
        record: dict[str, Any] = {"function": name, "at": self.clock.now().isoformat(), "error": None}
        self.log.invocations.append(record)
        try:
            result = self.handlers[name](event, context)
            self.check_deadline()
            return json.dumps(result).encode("utf-8")
        except InvocationTimedOut:
            # What Lambda returns for a timed-out invocation ("Configure Lambda function timeout"); the errorType
            # Sandbox.Timedout is what managed runtimes report (seen in public state machines, not on an AWS page).
            record["error"] = "Sandbox.Timedout"
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                }
            ).encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - the Lambda service reports any handler exception this way
            record["error"] = type(exc).__name__
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode("utf-8")
        finally:
            self.log.current.function, self.log.current.task, self.log.current.budget = outer
