"""Translate botocore's failures into Rollguard's named domain errors."""

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as TransportError

from rollguard.errors import AwsCallFailed, PermissionDenied, RollguardError, TargetNotFound, TransientAwsError

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "Throttled",  # SNS's throttling code (its API reference's ThrottledException)
    "RequestTimeout",  # what error_code calls a request whose response never came
}
# What boto3 raises when the response never came (a read timeout, a dropped connection) once its retries are spent.
# The call may or may not have been carried out: transient, and a retry must find what was done (issue 9).
AWS_FAILURES = (ClientError, TransportError, HTTPClientError)
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
}


def error_code(exc: ClientError | TransportError | HTTPClientError) -> str:
    if not isinstance(exc, ClientError):
        return "RequestTimeout"
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(
    exc: ClientError | TransportError | HTTPClientError,
    doing: str,
    not_found: frozenset[str] = frozenset(),
    otherwise: type[RollguardError] = AwsCallFailed,
) -> RollguardError:
    """A domain error whose message says what Rollguard was doing and what AWS answered."""
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else str(exc)
    text = f"{doing}: {code}: {message}".rstrip(": ")
    if code in _THROTTLING:
        return TransientAwsError(text)
    if code in _DENIED:
        return PermissionDenied(text)
    if code in not_found:
        return TargetNotFound(text)
    return otherwise(text)
