"""Lambda's asynchronous invocation (``InvocationType=Event``, how EventBridge invokes a function), which moto
runs once and forgets. What the Lambda service does with a function error, as the Lambda developer guide says:

- It retries: by default "two more times, with a one-minute wait between the first two attempts, and two minutes
  between the second and third attempts"; function errors include timeouts ("How Lambda handles errors and retries
  with asynchronous invocation"). ``EventInvokeConfig.MaximumRetryAttempts`` (0-2) sets how many.
- Then it keeps the event, if the function says where. A dead-letter queue receives "the original event payload
  with no modifications to the message body", with the attributes RequestID, ErrorCode (a 3-digit HTTP code) and
  ErrorMessage (truncated to 1 KB), sent with the function's execution role ("Dead-letter queues"). An on-failure
  destination receives an invocation record: requestContext (condition ``RetriesExhausted``, approximateInvokeCount),
  requestPayload, responseContext and responsePayload ("Capturing records of Lambda asynchronous invocations").
  With neither, or when the send is refused, the event is gone.

Not modelled: throttling and service errors (retried for up to 6 hours), MaximumEventAgeInSeconds, duplicate
deliveries, SNS targets, and EventBridge's own delivery retries and rule dead-letter queues (the sandbox's Invoke
of a function never fails, so EventBridge would never retry).
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

RETRY_WAITS = (60, 120)  # seconds before the second and the third attempt
# The Invoke's HTTP status: a function error is answered 200 with X-Amz-Function-Error (Invoke, Lambda API reference).
FUNCTION_ERROR_STATUS = "200"

# (function, event, request id) -> the error payload ({"errorType", "errorMessage"}), or None when it succeeded.
Run = Callable[[str, dict[str, Any], str], dict[str, Any] | None]
# (function, queue URL, body, message attributes): SendMessage made with the function's role.
Send = Callable[[str, str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class AsyncConfig:
    retries: int = 2
    dead_letter_queue: str | None = None  # queue URL
    on_failure_queue: str | None = None  # queue URL of an SQS on-failure destination


def _queue(target: Any, queue_urls: dict[str, str], where: str) -> str:
    """The queue a template's ``!GetAtt Queue.Arn`` names (as the sandbox's template loader reads it)."""
    if not (isinstance(target, dict) and set(target) == {"GetAtt"} and str(target["GetAtt"]).endswith(".Arn")):
        raise ValueError(f"{where}: only !GetAtt <Queue>.Arn is modelled, not {target!r}")
    return queue_urls[str(target["GetAtt"]).removesuffix(".Arn")]


def async_configs(resources: dict[str, Any], functions: dict[str, str], queue_urls: dict[str, str]) -> dict[str, Any]:
    """Each function's retries and failure queues from template.yaml (``functions``: name → logical id)."""
    configs = {}
    for name, logical in functions.items():
        props = resources[logical]["Properties"]
        dlq, invoke = props.get("DeadLetterQueue"), props.get("EventInvokeConfig", {})
        on_failure = invoke.get("DestinationConfig", {}).get("OnFailure")
        for kind in (dlq or {}).get("Type"), (on_failure or {}).get("Type"):
            if kind not in (None, "SQS"):
                raise ValueError(f"{logical}: only SQS failure targets are modelled, not {kind}")
        configs[name] = AsyncConfig(
            retries=int(invoke.get("MaximumRetryAttempts", 2)),
            dead_letter_queue=_queue(dlq["TargetArn"], queue_urls, logical) if dlq else None,
            on_failure_queue=_queue(on_failure["Destination"], queue_urls, logical) if on_failure else None,
        )
    return configs


@dataclass
class AsyncInvocations:
    """The Lambda service's queue of asynchronous events: attempts now, retries on the virtual clock."""

    configs: dict[str, AsyncConfig]
    run: Run
    send: Send
    now: Callable[[], datetime]
    schedule: Callable[[datetime, Callable[[], None]], object]  # a timer on the virtual clock
    later: Callable[[Callable[[], None]], None]  # run outside any in-flight AWS request (at the next delivery)
    account: str = "123456789012"
    region: str = "us-east-1"
    dropped: list[dict[str, Any]] = field(default_factory=list)  # events Lambda discarded, and why

    def invoke(self, function: str, event: dict[str, Any]) -> None:
        self._attempt(function, event, str(uuid.uuid4()), 1)

    def _attempt(self, function: str, event: dict[str, Any], request_id: str, attempt: int) -> None:
        error = self.run(function, event, request_id)
        if error is None:
            return
        config = self.configs.get(function, AsyncConfig())
        if attempt <= config.retries:

            def retry() -> None:
                self._attempt(function, event, request_id, attempt + 1)

            self.schedule(self.now() + timedelta(seconds=RETRY_WAITS[attempt - 1]), lambda: self.later(retry))
            return
        self._give_up(function, event, request_id, attempt, error, config)

    def _give_up(
        self,
        function: str,
        event: dict[str, Any],
        request_id: str,
        attempts: int,
        error: dict[str, Any],
        config: AsyncConfig,
    ) -> None:
        if not (config.dead_letter_queue or config.on_failure_queue):
            self.dropped.append({"function": function, "event": event, "why": "no dead-letter queue or destination"})
        if config.dead_letter_queue:
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": FUNCTION_ERROR_STATUS},
                "ErrorMessage": {"DataType": "String", "StringValue": str(error.get("errorMessage", ""))[:1024]},
            }
            self._send(function, config.dead_letter_queue, json.dumps(event), attributes, event)
        if config.on_failure_queue:
            record = self._record(function, event, request_id, attempts, error)
            self._send(function, config.on_failure_queue, json.dumps(record), {}, event)

    def _send(self, function: str, url: str, body: str, attributes: dict[str, Any], event: dict[str, Any]) -> None:
        try:
            self.send(function, url, body, attributes)
        except ClientError as exc:  # Lambda counts DeadLetterErrors / DestinationDeliveryFailures and drops it
            self.dropped.append({"function": function, "event": event, "why": str(exc)})

    def _record(
        self, function: str, event: dict[str, Any], request_id: str, attempts: int, error: dict[str, Any]
    ) -> dict[str, Any]:
        moment = self.now()
        return {
            "version": "1.0",
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"arn:aws:lambda:{self.region}:{self.account}:function:{function}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": error,
        }
