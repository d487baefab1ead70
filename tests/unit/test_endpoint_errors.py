"""The sandbox endpoint answers an AWS error with the error's own members, as AWS does: a client reading DynamoDB's
CancellationReasons (the intake's join does) sees them through `rollguard sandbox serve` as in-process."""

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.endpoint import Endpoint
from werkzeug.serving import make_server

REASONS = [
    {"Code": "None"},
    {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": {"k": {"S": "held"}}},
]


def cancelled(service: str, operation: str, params: dict[str, Any], region: str) -> dict[str, Any]:
    raise ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": REASONS,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


@pytest.fixture
def url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, Endpoint(cancelled), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_a_cancelled_transaction_carries_its_reasons_through_the_endpoint(url: str) -> None:
    ddb = boto3.client(
        "dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    put = {"Put": {"TableName": "t", "Item": {"k": {"S": "held"}}}}

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=[put, put])

    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert refused.value.response["CancellationReasons"] == REASONS
