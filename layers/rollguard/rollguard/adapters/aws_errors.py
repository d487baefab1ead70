"""Translate botocore's ClientError into Rollguard's named domain errors."""

from botocore.exceptions import ClientError

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
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(
    exc: ClientError,
    doing: str,
    not_found: frozenset[str] = frozenset(),
    otherwise: type[RollguardError] = AwsCallFailed,
) -> RollguardError:
    """A domain error whose message says what Rollguard was doing and what AWS answered."""
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "")
    text = f"{doing}: {code}: {message}".rstrip(": ")
    if code in _THROTTLING:
        return TransientAwsError(text)
    if code in _DENIED:
        return PermissionDenied(text)
    if code in not_found:
        return TargetNotFound(text)
    return otherwise(text)
