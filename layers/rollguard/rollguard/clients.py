"""Cached boto3 clients with botocore's standard retry mode (throttling and transient faults retried)."""

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)


@cache
def client(service: str, region: str | None = None) -> Any:
    return boto3.client(service, region_name=region, config=_CONFIG)  # type: ignore[call-overload]


def dynamodb() -> Any:
    return client("dynamodb")


class OnFirstUse:
    """A client made at its first use, for the adapters of targets an incident may not have: the critical path's
    functions build their wiring during Init (rollguard.runtime), and creating EC2's client alone takes some 150 ms of
    CPU (its service model is the largest), more than DynamoDB's, CloudWatch's and CodeDeploy's together. Every
    attribute is the cached client's."""

    def __init__(self, service: str, region: str | None = None):
        self._service, self._region = service, region

    def __getattr__(self, name: str) -> Any:
        return getattr(client(self._service, self._region), name)
