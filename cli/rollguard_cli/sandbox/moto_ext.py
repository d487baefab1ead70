"""The one place where the sandbox fills moto's gaps (moto 5.2.5). Every patch keeps AWS's real
request and response shapes — botocore serialises and parses them — so handlers cannot tell.

- Lambda: ``Invoke`` of a registered function runs the real handler in-process (moto would need Docker),
  answering as the Lambda service does, ``FunctionError: Unhandled`` and ``errorType`` included.
- CodeDeploy: ``StopDeployment`` (with automatic rollback as a new deployment and ``rollbackInfo``),
  deployment progress and traffic shifting (delegated to the World), one active deployment per group
  (``DeploymentLimitExceededException``), timestamps on the sandbox clock.
- Step Functions: a ``Wait`` state and a ``Retry`` back-off advance the virtual clock instead of sleeping, and a
  task's timeout (TimeoutSeconds/TimeoutSecondsPath, e.g. an approval's deadline) is counted on that clock.
- CloudWatch: reads (DescribeAlarms, GetMetricData, GetMetricStatistics) first bring the World up to
  the clock, since moto evaluates no alarms and publishes no metrics by itself.

AppConfig's deployment side, which moto lacks entirely, is the other half of this boundary: sandbox/appconfig.py
answers those operations from a botocore before-call hook (installed by runner.py), in AppConfig's shapes.
"""

import contextlib
import json
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.cloudwatch.responses import CloudWatchResponse
from moto.codedeploy import responses as cd_responses
from moto.codedeploy.exceptions import CodeDeployException
from moto.codedeploy.models import CodeDeployBackend
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from rollguard.adapters.codedeploy import revision_label

from rollguard_cli.sandbox.clock import VirtualClock
from rollguard_cli.sandbox.world import World

Handler = Callable[[dict[str, Any], Any], Any]


class DeploymentLimitExceeded(CodeDeployException):
    code = 400

    def __init__(self, message: str):
        super().__init__("DeploymentLimitExceededException", message)


class DeploymentAlreadyCompleted(CodeDeployException):
    code = 400

    def __init__(self, message: str):
        super().__init__("DeploymentAlreadyCompletedException", message)


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class CallLog:
    """What the sandbox saw: Lambda invocations, and each AWS call by the function making it."""

    invocations: list[dict[str, Any]] = field(default_factory=list)
    aws_calls: list[tuple[str, str, str]] = field(default_factory=list)  # (function, service, operation)
    # IAM (sandbox/iam.py): each (function, action, resource) a function's call was authorized on, and each denial.
    iam_authorized: list[tuple[str, str, str]] = field(default_factory=list)
    iam_denied: list[dict[str, str]] = field(default_factory=list)
    current: threading.local = field(default_factory=threading.local)

    def caller(self) -> str:
        return getattr(self.current, "function", "") or ""


class MotoExtensions:
    def __init__(
        self, clock: VirtualClock, world: World, handlers: dict[str, Handler], log: CallLog, stdout: Any
    ) -> None:
        self.clock, self.world, self.handlers, self.log = clock, world, handlers, log
        self.stdout = stdout  # where a handler's prints (Powertools' EMF metrics) go, as CloudWatch Logs would
        self._requests = 0

    @contextmanager
    def installed(self) -> Iterator["MotoExtensions"]:
        ext = self
        original_invoke = LambdaSimpleBackend.invoke
        original_create = CodeDeployBackend.create_deployment
        original_info = cd_responses._deployment_info

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: dict[str, str]
        ) -> Any:
            name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
            if name not in ext.handlers:
                return original_invoke(backend, function_name, qualifier, body, headers, response_headers)
            payload = ext._run_handler(name, json.loads(body) if body else {}, response_headers)
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
            active = [
                d
                for d in backend.deployments.values()
                if d.application_name == application_name
                and d.deployment_group_name == deployment_group_name
                and d.status in {"Created", "Queued", "InProgress", "Ready", "Baking"}
            ]
            if active:
                raise DeploymentLimitExceeded(
                    f"The Deployment Group '{deployment_group_name}' already has an active Deployment "
                    f"'{active[0].deployment_id}'"
                )
            deployment_id = original_create(backend, application_name, deployment_group_name, revision, *args, **kwargs)
            ext.world.on_deployment_created(backend.deployments[deployment_id], revision_label(revision))
            return str(deployment_id)

        def stop_deployment(backend: Any, deployment_id: str, auto_rollback_enabled: bool) -> dict[str, str]:
            deployment = backend.get_deployment(deployment_id)
            if deployment.status in {"Succeeded", "Failed", "Stopped"}:
                raise DeploymentAlreadyCompleted(f"Deployment {deployment_id} has already completed")
            ext.world.on_deployment_stopped(deployment)
            deployment.rollback_info = {}
            if auto_rollback_enabled:
                previous = getattr(deployment, "previous_revision", None) or _previous_revision(backend, deployment)
                rollback_id = original_create(
                    backend,
                    deployment.application_name,
                    deployment.deployment_group_name,
                    previous,
                    None,
                    f"Automatic rollback of {deployment_id}",
                )
                rollback = backend.deployments[rollback_id]
                rollback.creator = "codeDeployRollback"
                rollback.rollback_info = {"rollbackTriggeringDeploymentId": deployment_id}
                ext.world.on_rollback(deployment, rollback)
                deployment.rollback_info = {
                    "rollbackDeploymentId": rollback_id,
                    "rollbackMessage": f"Deployment {deployment_id} was stopped; rolled back by {rollback_id}",
                }
                return {"status": "Succeeded", "statusMessage": f"Stopped; rolled back by {rollback_id}"}
            return {"status": "Succeeded", "statusMessage": "Stopped without rollback"}

        def stop_response(response: Any) -> ActionResult:
            return ActionResult(
                stop_deployment(
                    response.codedeploy_backend,
                    response._get_param("deploymentId"),
                    bool(response._get_param("autoRollbackEnabled")),
                )
            )

        def deployment_info(deployment: Any) -> dict[str, Any]:
            info = original_info(deployment)
            info["rollbackInfo"] = getattr(deployment, "rollback_info", {}) or {}
            return info

        def wait_interval(wait_function: Any, env: Any, wait_seconds: int) -> None:
            ext.clock.advance(wait_seconds)
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
                ext.world.sync()
                return original(response)

            return read

        with ExitStack() as stack:
            for target, attribute, value in [
                (LambdaSimpleBackend, "invoke", invoke),  # use_docker=False selects this backend
                (CodeDeployBackend, "create_deployment", create_deployment),
                (CodeDeployBackend, "stop_deployment", stop_deployment),
                (cd_responses.CodeDeployResponse, "stop_deployment", stop_response),
                (cd_responses, "_deployment_info", deployment_info),
                (WaitFunction, "_wait_interval", wait_interval),
                (retrier_decl, "time", RetryBackoff),
                (execute_state, "threading", SimpleNamespace(Event=VirtualEvent)),
                (CloudWatchResponse, "describe_alarms", syncing(CloudWatchResponse.describe_alarms)),
                (CloudWatchResponse, "get_metric_data", syncing(CloudWatchResponse.get_metric_data)),
                (CloudWatchResponse, "get_metric_statistics", syncing(CloudWatchResponse.get_metric_statistics)),
            ]:
                stack.enter_context(mock.patch.object(target, attribute, value, create=True))
            yield self

    def _run_handler(self, name: str, event: dict[str, Any], response_headers: dict[str, str]) -> bytes:
        self._requests += 1
        context = LambdaContext(function_name=name, aws_request_id=f"sandbox-{self._requests:06d}")
        outer = self.log.caller()
        self.log.current.function = name
        record: dict[str, Any] = {"function": name, "at": self.clock.now().isoformat(), "error": None}
        self.log.invocations.append(record)
        try:
            with contextlib.redirect_stdout(self.stdout):
                result = self.handlers[name](event, context)
            return json.dumps(result).encode("utf-8")
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
            self.log.current.function = outer


def _previous_revision(backend: Any, deployment: Any) -> dict[str, Any]:
    """The revision of the group's last succeeded deployment before ``deployment`` (what CodeDeploy restores)."""
    earlier = sorted(
        (
            d
            for d in backend.deployments.values()
            if d.deployment_group_name == deployment.deployment_group_name
            and d.status == "Succeeded"
            and d.create_time < deployment.create_time
        ),
        key=lambda d: d.create_time,
    )
    if not earlier:
        raise CodeDeployException("InvalidRevisionException", "no previous revision to roll back to")
    return dict(earlier[-1].revision)
