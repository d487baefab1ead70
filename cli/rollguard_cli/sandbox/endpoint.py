"""The sandbox as a local AWS endpoint (``rollguard sandbox serve``).

Every request an SDK signs for a service is read with that service's botocore model (moto's request parsers and
operation router), made through the sandbox's own boto3 client, and answered in the protocol's wire format (moto's
response serializers). Going through the sandbox's client is the point: a request from ``aws`` or another
terminal meets the same extensions, refusals and virtual clock as a drill's own calls (AppConfig deployments, ECS
service deployments, zonal shifts, alarm evaluation), so there is no second model of AWS here and no code per
operation. Calls arrive with no Rollguard function as their caller, so IAM is not evaluated for them: they are
the operator's, as a drill's own calls are.

Which service a request is for comes from its SigV4 credential scope (``Credential=…/<region>/<service>/aws4_request``),
as AWS reads it; which operation, from ``X-Amz-Target`` (JSON protocols), ``Action`` (query) or the method and path
(REST), as botocore serialised it ("AWS service protocols", smithy.io).
"""

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError
from botocore.response import StreamingBody
from moto.core.exceptions import ServiceException
from moto.core.model import OperationModel, ServiceModel
from moto.core.parse import PROTOCOL_PARSERS, RequestParserError
from moto.core.request import Request, determine_request_protocol
from moto.core.routing import get_service_router
from moto.core.serialize import get_serializer_class
from moto.core.utils import get_service_model
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

# SigV4 signing name → the botocore services under it that the sandbox answers. Two share a name: AppConfig and
# AppConfig Data sign as "appconfig" (told apart by their paths); ELB's two APIs sign as "elasticloadbalancing"
# (only v2, Version=2015-12-01, is modelled).
SIGNING_NAMES: dict[str, tuple[str, ...]] = {
    "dynamodb": ("dynamodb",),
    "states": ("stepfunctions",),
    "cloudformation": ("cloudformation",),
    "sts": ("sts",),
    "sns": ("sns",),
    "sqs": ("sqs",),
    "monitoring": ("cloudwatch",),
    "appconfig": ("appconfig", "appconfigdata"),
    "lambda": ("lambda",),
    "codedeploy": ("codedeploy",),
    "ecs": ("ecs",),
    "elasticloadbalancing": ("elbv2",),
    "arc-zonal-shift": ("arc-zonal-shift",),
    "logs": ("logs",),
    "events": ("events",),
    "iam": ("iam",),
}
logger = logging.getLogger(__name__)
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class UnknownRequest(Exception):
    """A request this endpoint cannot read as an AWS call (unsigned, a service it does not answer, no operation)."""


class Endpoint:
    """A WSGI application: ``call(service, operation, params, region)`` makes the call (the sandbox's client);
    ``control(route, method)`` answers the sandbox's own routes (``/rollguard-sandbox/...``), as moto's server
    answers ``/moto-api/``."""

    def __init__(
        self,
        call: Callable[[str, str, dict[str, Any], str], dict[str, Any]],
        control: Callable[[str, str], tuple[int, dict[str, Any]]] | None = None,
    ) -> None:
        self._call = call
        self._control = control
        self._models: dict[str, ServiceModel] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        if request.path.startswith("/rollguard-sandbox/"):
            if self._control is None:
                return _json(404, {"error": f"no sandbox route {request.path}"})
            return _json(*self._control(request.path.removeprefix("/rollguard-sandbox/"), request.method))
        try:
            service, region, operation, params = self.read(request)
        except UnknownRequest as unknown:
            return _json(400, {"__type": "UnknownOperationException", "message": str(unknown)})
        model = self._model(service)
        protocol = _protocol(model, request)
        serializer = get_serializer_class(service, protocol)(operation)
        try:
            result: Any = _read_streams(self._call(service, operation.name, params, region))
        except ClientError as error:
            result = _service_error(error)
        except ParamValidationError as invalid:  # the SDK validated client-side; a hand-made request may not have
            result = AwsError("ValidationException", str(invalid))
        except Exception as failed:  # the sandbox's own fault, said as AWS says its own: a 500 the SDK retries
            logger.exception("sandbox failed answering %s %s", service, operation.name)
            result = AwsError("InternalFailure", f"the sandbox failed: {type(failed).__name__}: {failed}")
        answer = serializer.serialize(result)
        status = 500 if isinstance(result, AwsError) and result.code == "InternalFailure" else answer["status_code"]
        response = Response(answer["body"], status=status, headers=answer["headers"])
        if "Content-Type" not in answer["headers"]:
            response.headers["Content-Type"] = getattr(serializer, "CONTENT_TYPE", "text/plain")
        return response

    def read(self, request: Request) -> tuple[str, str, OperationModel, dict[str, Any]]:
        """(botocore service name, region, operation, parameters) of a signed AWS request."""
        scope = CREDENTIAL_SCOPE.search(request.headers.get("Authorization", ""))
        if scope is None:
            raise UnknownRequest("not a SigV4-signed AWS request (no credential scope in Authorization)")
        region, signing_name = scope.groups()
        candidates = SIGNING_NAMES.get(signing_name)
        if candidates is None:
            raise UnknownRequest(f"the sandbox does not answer service {signing_name!r}")
        for service in candidates:
            model = self._model(service)
            found = self._operation(model, request)
            if found is not None:
                operation, uri_params = found
                protocol = _protocol(model, request)
                parser = PROTOCOL_PARSERS[protocol](operation, map_type=dict)
                try:
                    params = parser.parse(
                        {
                            "method": request.method,
                            "values": request.values,
                            "headers": request.headers,
                            "body": request.get_data(),
                            "url_path": request.path,
                            "url_params": uri_params,
                        }
                    )
                except (RequestParserError, ValueError, KeyError) as malformed:
                    raise UnknownRequest(f"a malformed {service} {operation.name} request: {malformed}") from malformed
                return service, region, operation, _plain(params)
        raise UnknownRequest(f"no {signing_name} operation is {request.method} {request.path}")

    def _model(self, service: str) -> ServiceModel:
        with self._lock:
            if service not in self._models:
                self._models[service] = get_service_model(service)
            return self._models[service]

    @staticmethod
    def _operation(model: ServiceModel, request: Request) -> tuple[OperationModel, dict[str, Any]] | None:
        target = request.headers.get("X-Amz-Target")
        name = target.rsplit(".", 1)[-1] if target else request.values.get("Action")
        if name:
            return (model.operation_model(name), {}) if name in model.operation_names else None
        if model.protocol not in {"rest-json", "rest-xml"}:
            return None
        try:
            operation, uri_params = get_service_router(model.service_name).match(request)
        except NotFound:
            return None
        return operation, dict(uri_params)


def _read_streams(value: Any) -> Any:
    """A payload botocore hands back as a stream (AppConfig's hosted configuration ``Content``), as the bytes the
    serializers write."""
    if isinstance(value, StreamingBody):
        return value.read()
    if isinstance(value, dict):
        return {key: _read_streams(item) for key, item in value.items()}
    return value


def _protocol(model: ServiceModel, request: Request) -> str:
    return determine_request_protocol(model, request.headers.get("Content-Type"))


def _plain(value: Any) -> Any:
    """The parsers' mappings as plain dicts and lists, as a boto3 call takes them."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class AwsError(ServiceException):
    """An error answer, written by the serializers with the error's shape from the service's model (its HTTP status
    included) when the model has one."""


def _service_error(error: ClientError) -> AwsError:
    details = error.response.get("Error", {})
    answer = AwsError(details.get("Code", "InternalFailure"), details.get("Message", str(error)))
    # The error's own members go back with it, as AWS sends them (DynamoDB's CancellationReasons: "Error
    # handling with DynamoDB", a TransactionCanceledException names each item's reason); the serializer writes those
    # the error's shape has, from the exception's attributes (moto's ServiceException).
    for member, value in error.response.items():
        if member not in {"Error", "ResponseMetadata", "code", "message"}:
            setattr(answer, member, value)
    return answer


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, headers={"Content-Type": "application/json"})
