"""The sandbox's hooks (fault injection, IAM, the call log) live on boto3's default session, and moto's worker threads
create boto3 clients from that same default session, some of them after the test that started them has ended (a held
execution's Step Functions task). moto resets the default session to None when a mock starts, unless told not to
("Configuration", moto docs: core.reset_boto3_session); a thread that created a client in that window made boto3
set up a session of its own, and when it landed after the sandbox's, every client the test made next bypassed the
sandbox: a fault injected never fired."""

import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from rollguard_cli.sandbox.runner import REGION, TABLES, Sandbox

pytestmark = pytest.mark.slow  # sandboxes on moto


@pytest.fixture
def client_maker() -> Iterator[None]:
    """A thread creating default-session clients without pause, as moto's Step Functions workers do, in a process
    that has a default session (as every process does once a sandbox has stopped)."""
    boto3.DEFAULT_SESSION = boto3.session.Session()
    stop = threading.Event()

    def make() -> None:
        while not stop.is_set():
            boto3.client("sqs", region_name=REGION)

    thread = threading.Thread(target=make, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


def test_a_client_made_during_start_by_another_thread_does_not_take_the_sandboxs_session(client_maker: None) -> None:
    for _ in range(8):  # the old sandbox lost its session in the first or second start here
        with Sandbox(error_model=lambda label, at, config: 0.0) as sb:
            sb.inject_fault("GetItem", "InternalServerError", "injected", status=500)
            with pytest.raises(ClientError, match="InternalServerError"):
                sb.client("dynamodb").get_item(TableName=TABLES["LocksTable"], Key={"target_key": {"S": "t"}})


def test_the_session_before_the_sandbox_is_the_session_after_it() -> None:
    before = boto3.session.Session(region_name=REGION)
    boto3.DEFAULT_SESSION = before
    with Sandbox(error_model=lambda label, at, config: 0.0):
        assert boto3.DEFAULT_SESSION is not None and boto3.DEFAULT_SESSION is not before
    assert boto3.DEFAULT_SESSION is before


def test_a_process_without_a_default_session_is_left_with_a_plain_one_not_none() -> None:
    boto3.DEFAULT_SESSION = None
    with Sandbox(error_model=lambda label, at, config: 0.0):
        hooked = boto3.DEFAULT_SESSION
    assert boto3.DEFAULT_SESSION is not None and boto3.DEFAULT_SESSION is not hooked
