"""`rollguard sandbox serve` (issue 12, point 2): the sandbox as a local AWS endpoint, used from other processes as
an operator would use it from another terminal — plain boto3, and the CLI's own `--stack` commands with
`--endpoint-url` — through an approval incident to its end, then stopped cleanly."""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib import request as urlrequest
from urllib.error import HTTPError

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.slow  # a sandbox in a subprocess, and a CLI process per command

ROOT = Path(__file__).resolve().parents[2]
STACK = "rollguard"
# Guards against a hung process, not measurements: generous, because CI's two cores may be busy (a `timeline
# --follow` once took more than 120 s there).
HANG_GUARD_S = 600.0


def _env() -> dict[str, str]:
    """No AWS configuration of this machine's: the endpoint is all a command needs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "cli"), str(ROOT / "layers" / "rollguard"), str(ROOT)])
    return env


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    lines: "queue.Queue[str]" = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, timeout_s: float = HANG_GUARD_S) -> re.Match[str]:
        """The first line serve printed (from the start) that matches ``pattern``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.seen:
                if (found := re.search(pattern, line)) is not None:
                    return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"serve never printed {pattern!r}; it printed:\n" + "\n".join(self.seen))
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                continue


def rollguard(*argv: str, timeout: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rollguard_cli.main", *argv], capture_output=True, text=True, env=_env(), timeout=timeout
    )


def start_serve(*argv: str) -> Served:
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "rollguard_cli.main", "sandbox", "serve", "--port", "0", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    served = Served(process, "", lines)
    served.url = served.wait_for(r"serving at (http://127\.0\.0\.1:\d+)").group(1)
    return served


@pytest.fixture
def served() -> Iterator[Served]:
    running = start_serve("--speed", "30")
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=30)


def client(served: Served, service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=served.url,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def test_an_approval_incident_run_from_another_terminal(served: Served, tmp_path: Path) -> None:
    """The issue's "done when": serve in one terminal, `approve … --endpoint-url` in another, the incident resolves."""
    at = ["--stack", STACK, "--endpoint-url", served.url]
    status = rollguard("status", *at, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["open_incidents"] == []

    injected = rollguard("sandbox", "inject", "--endpoint-url", served.url)
    assert injected.returncode == 0, injected.stderr
    assert injected.stdout.startswith("injected into approval-granted: Revision 7 is bad")
    incident = served.wait_for(r"incident (\S+) opened").group(1)
    served.wait_for(r"page: \[Rollguard\] APPROVAL NEEDED: checkout-5xx")

    approved = rollguard("approve", incident, *at, "--reason", "the canary graphs agree")
    assert (approved.returncode, approved.stderr) == (0, "")
    assert approved.stdout == f"approved: incident {incident} step 1 by arn:aws:sts::123456789012:user/moto\n"

    followed = rollguard("timeline", incident, "--follow", *at)
    assert followed.returncode == 0, followed.stderr
    kinds = [re.match(r"\s*T[+-]\s*\S+\s+(\S+)", line).group(1) for line in followed.stdout.splitlines()]  # type: ignore[union-attr]
    assert kinds == [
        "alarm_received",
        "assessed",
        "approval_requested",
        "approval",
        "action",
        "verification",
        "incident_closed",
    ]  # in time order: the approval was written on the sandbox's clock, not this machine's
    assert "RESOLVED" in followed.stdout.splitlines()[-1]
    served.wait_for(r"page: \[Rollguard\] RESOLVED: checkout-5xx")

    listed = rollguard("incidents", *at, "--json")
    assert [(i["incident_id"], i["outcome"]) for i in json.loads(listed.stdout)] == [(incident, "resolved")]
    report = tmp_path / "postmortem.md"
    written = rollguard("report", incident, *at, "--out", str(report))
    assert (written.returncode, written.stderr) == (0, ""), written.stderr
    assert incident in report.read_text() and "the canary graphs agree" in report.read_text()
    # What Rollguard did is real in the sandbox's AWS: the alias serves revision 6 again.
    alias = client(served, "lambda").get_alias(FunctionName="checkout", Name="live")
    assert alias["FunctionVersion"] == "6" and "RoutingConfig" not in alias

    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=60) == 0
    served.wait_for(r"^sandbox stopped$")
    port = int(served.url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_a_plain_boto3_client_sees_the_sandbox_in_each_protocol(served: Served) -> None:
    """JSON (DynamoDB), query (CloudFormation) and REST-JSON (AppConfig) requests, read with the service's model and
    answered in its wire format, AWS's errors included; AppConfig's deployment strategies are the sandbox's own."""
    assert "rollguard-audit" in client(served, "dynamodb").list_tables()["TableNames"]
    [stack] = client(served, "cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["AuditTableName"] == "rollguard-audit"
    assert outputs["RemediationStateMachineArn"].endswith(":stateMachine:rollguard-remediation")
    strategies = client(served, "appconfig").list_deployment_strategies()["Items"]
    assert "AppConfig.AllAtOnce" in [s["Name"] for s in strategies]  # predefined: moto has no strategies
    with pytest.raises(ClientError) as missing:
        client(served, "dynamodb").get_item(TableName="no-such-table", Key={"k": {"S": "v"}})
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as unknown:
        client(served, "cloudformation").describe_stacks(StackName="not-deployed")
    assert unknown.value.response["Error"]["Message"] == "Stack with id not-deployed does not exist"
    with pytest.raises(ClientError) as unserved:
        client(served, "s3").list_buckets()
    assert unserved.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    unsigned = urlrequest.Request(
        served.url, data=b"{}", headers={"X-Amz-Target": "DynamoDB_20120810.ListTables"}, method="POST"
    )
    with pytest.raises(HTTPError) as refused:
        urlrequest.urlopen(unsigned, timeout=30)
    assert refused.value.code == 400
    assert json.loads(refused.value.read()) == {
        "__type": "UnknownOperationException",
        "message": "not a SigV4-signed AWS request (no credential scope in Authorization)",
    }


def test_inject_twice_and_a_busy_port_are_one_line_errors(served: Served) -> None:
    assert rollguard("sandbox", "inject", "--endpoint-url", served.url).returncode == 0
    again = rollguard("sandbox", "inject", "--endpoint-url", served.url)
    assert (again.returncode, again.stdout) == (2, "")
    assert again.stderr == (
        f"error: sandbox at {served.url}: scenario approval-granted's change was already injected\n"
    )
    port = served.url.rsplit(":", 1)[1]
    busy = rollguard("sandbox", "serve", "--port", port)
    assert busy.returncode == 2
    assert busy.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert busy.stderr.endswith("choose another --port\n") and busy.stderr.count("\n") == 1


def list_flags(url: str) -> tuple[str, str]:
    """`rollguard flags list` against the endpoint: the profile's version and whether new-pricing is on."""
    listed = rollguard(
        "flags", "list", "--application", "checkout", "--profile", "checkout-flags", "--endpoint-url", url
    )
    assert listed.returncode == 0, listed.stderr
    version = re.search(r"^checkout/checkout-flags v(\d+) ", listed.stdout, re.MULTILINE)
    flag = re.search(r"^new-pricing\s+(on|off)\b", listed.stdout, re.MULTILINE)
    assert version and flag, listed.stdout
    return version.group(1), flag.group(1)


def test_flags_read_through_the_endpoint_and_sigterm_stops_it() -> None:
    """`flags list` reads AppConfig's hosted configuration, a streamed payload, through the endpoint; `--inject`
    makes the flag scenario's change at start; SIGTERM stops serve as Ctrl-C does."""
    running = start_serve("--scenario", "flag-kill-switch", "--speed", "30", "--inject")
    try:
        running.wait_for(r"^injected: Turning on the new-pricing flag")
        listed = list_flags(running.url)
        # The served clock runs on while the command starts (seconds on a loaded machine, minutes served), so the
        # listing may come after Rollguard's kill switch: either way it must be the version it names.
        assert listed in {("2", "on"), ("3", "off")}, listed
        running.wait_for(r"incident_closed\s+RESOLVED")
        assert list_flags(running.url) == ("3", "off")  # the kill switch's version, read through the endpoint
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=60) == 0
        running.wait_for(r"^sandbox stopped$")
    finally:
        if running.process.poll() is None:
            running.process.kill()
