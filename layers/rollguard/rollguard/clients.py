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
        return getattr(HOME.client(self._service, self._region), name)


class Home:
    """The clients of the stack's own account: the function's execution role."""

    def client(self, service: str, region: str | None = None) -> Any:
        return client(service) if region is None else client(service, region)  # one cache entry per client

    def on_first_use(self, service: str, region: str | None = None) -> Any:
        return OnFirstUse(service, region)

    def wired(self, service: str) -> Any:
        """A client the wiring holds from Init on (rollguard.runtime): made now, with the function's own role."""
        return self.client(service)


HOME = Home()


class InRegion(Home):
    """The stack's own account, in another region than the stack's: the function's own role, regional clients."""

    def __init__(self, region: str):
        self.region = region

    def client(self, service: str, region: str | None = None) -> Any:
        return client(service, region or self.region)

    def on_first_use(self, service: str, region: str | None = None) -> Any:
        return OnFirstUse(service, region or self.region)


# Credentials this close to their expiry are renewed before a client is made from them: an invocation (at most the
# function's Timeout, 420 s for Act) must not outlive the credentials it started with.
RENEW_BEFORE_S = 900


class AssumedRole:
    """The clients of a member account: made with the credentials of ``role_arn``, assumed with AWS STS in a session
    named ``session_name`` ("AssumeRole", AWS STS API Reference; one hour, the default DurationSeconds). The role is
    assumed at the first client, not before: a step that reads nothing on the target assumes nothing. Clients are made
    by ``boto3.client`` with the credentials passed, so they share the default session's configuration (and, in the
    sandbox, its hooks)."""

    def __init__(self, role_arn: str, session_name: str, region: str, sts: Any = None):
        self.role_arn, self.session_name, self.region = role_arn, session_name, region
        self._sts = sts
        self._credentials: dict[str, Any] | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    def _fresh_credentials(self) -> dict[str, Any]:
        from datetime import UTC, datetime, timedelta

        from rollguard.adapters.aws_errors import AWS_FAILURES, translate

        credentials = self._credentials
        if credentials is not None and credentials["Expiration"] - timedelta(seconds=RENEW_BEFORE_S) > datetime.now(
            UTC
        ):
            return credentials
        try:
            response = (self._sts or client("sts")).assume_role(
                RoleArn=self.role_arn, RoleSessionName=self.session_name
            )
        except AWS_FAILURES as exc:
            raise translate(exc, f"assuming {self.role_arn} as {self.session_name}") from exc
        self._credentials = response["Credentials"]
        self._clients.clear()  # made with the old credentials
        return self._credentials

    def client(self, service: str, region: str | None = None) -> Any:
        credentials = self._fresh_credentials()
        key = (service, region or self.region)
        if key not in self._clients:
            self._clients[key] = boto3.client(  # type: ignore[call-overload]
                service,
                region_name=key[1],
                config=_CONFIG,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        return self._clients[key]

    def on_first_use(self, service: str, region: str | None = None) -> Any:
        return _Deferred(self, service, region)

    def wired(self, service: str) -> Any:
        """Made at first use: wiring a step assumes no role, so a refused AssumeRole fails the step that reads the
        target, not the wiring of Close or the watchdog (rollguard.runtime._on_target)."""
        return self.on_first_use(service)


class _Deferred:
    """An AssumedRole client made (and the role assumed) at its first use."""

    def __init__(self, source: AssumedRole, service: str, region: str | None):
        self._source, self._service, self._region = source, service, region

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source.client(self._service, self._region), name)
