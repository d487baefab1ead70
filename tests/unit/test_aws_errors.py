"""translate: botocore ClientError → Rollguard's named domain errors, with what was being done."""

import pytest
from botocore.exceptions import ClientError
from rollguard.adapters.aws_errors import error_code, translate
from rollguard.errors import (
    AwsCallFailed,
    PermissionDenied,
    RollbackFailed,
    TargetNotFound,
    TransientAwsError,
)

DOING = "listing deployments of checkout/checkout-prod"
NOT_FOUND = frozenset({"DeploymentGroupDoesNotExistException"})


def client_error(code: str, message: str = "something happened", operation: str = "ListDeployments") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    "code",
    [
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
    ],
)
def test_throttling_and_transient_faults_become_transient_errors(code: str) -> None:
    assert type(translate(client_error(code), DOING, NOT_FOUND)) is TransientAwsError


@pytest.mark.parametrize(
    "code",
    [
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    ],
)
def test_refusals_become_permission_denied(code: str) -> None:
    assert type(translate(client_error(code), DOING, NOT_FOUND)) is PermissionDenied


def test_a_listed_not_found_code_becomes_target_not_found() -> None:
    error = translate(client_error("DeploymentGroupDoesNotExistException"), DOING, NOT_FOUND)
    assert type(error) is TargetNotFound


def test_a_not_found_code_the_caller_did_not_list_is_not_target_not_found() -> None:
    error = translate(client_error("DeploymentGroupDoesNotExistException"), DOING)
    assert type(error) is AwsCallFailed


def test_any_other_code_becomes_aws_call_failed_by_default() -> None:
    assert type(translate(client_error("ValidationException"), DOING, NOT_FOUND)) is AwsCallFailed


def test_any_other_code_becomes_the_callers_otherwise_class() -> None:
    error = translate(client_error("DeploymentLimitExceededException"), DOING, NOT_FOUND, RollbackFailed)
    assert type(error) is RollbackFailed


def test_the_otherwise_class_does_not_override_throttling_or_permissions() -> None:
    assert type(translate(client_error("ThrottlingException"), DOING, otherwise=RollbackFailed)) is TransientAwsError
    assert type(translate(client_error("AccessDeniedException"), DOING, otherwise=RollbackFailed)) is PermissionDenied


def test_the_message_says_what_was_being_done_the_code_and_what_aws_said() -> None:
    error = translate(client_error("ThrottlingException", "Rate exceeded"), DOING)
    assert str(error) == "listing deployments of checkout/checkout-prod: ThrottlingException: Rate exceeded"


def test_an_empty_aws_message_leaves_no_dangling_separator() -> None:
    error = translate(client_error("AccessDeniedException", ""), DOING)
    assert str(error) == "listing deployments of checkout/checkout-prod: AccessDeniedException"


def test_a_response_without_an_error_code_falls_to_the_otherwise_class() -> None:
    bare = ClientError({}, "ListDeployments")
    assert error_code(bare) == ""
    assert type(translate(bare, DOING, NOT_FOUND)) is AwsCallFailed
