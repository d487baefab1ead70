"""The critical path's function (the Remediation function: the intake, Assess and Act) builds its wiring
during Init, where the CPU is a full vCPU's (rollguard.runtime.at_init); a function that cannot be wired still starts,
and fails its first invocation by name."""

from pathlib import Path

import pytest
from rollguard import clients, runtime
from rollguard.errors import FunctionMisconfigured
from rollguard.policy import PolicyFileInvalid
from rollguard_cli.sandbox.runner import Sandbox, load_handler

from tests.conftest import REPO, context, hold_executions, load_event

pytestmark = pytest.mark.slow  # the handlers on the sandbox (moto)


def test_the_intake_reads_and_validates_its_policy_during_init(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text((REPO / "policies" / "sandbox.yaml").read_text())
    with Sandbox(error_model=lambda label, at, config: 0.01, policy_file=policy) as sb:
        hold_executions(sb)  # forgets the wiring, as a new container starts with none
        intake = load_handler("remediation")  # Init
        policy.unlink()  # the invocation has no file to read: the policy must be in memory already

        result = intake.lambda_handler(load_event("remediation/intake/alarm.json"), context())

    assert result["status"] == "opened" and result["incident_id"].startswith("checkout-5xx-")


def test_the_remediation_function_builds_its_clients_and_adapters_during_init(sandbox: Sandbox) -> None:
    runtime.reset()  # a new container
    load_handler("remediation")  # Init

    assert runtime.remediation_deps.cache_info().currsize == 1  # what every invocation is given
    created = clients.client.cache_info().misses
    for service in ("codedeploy", "cloudwatch", "dynamodb"):
        clients.client(service)
    assert clients.client.cache_info().misses == created  # no client left for a CodeDeploy incident to create
    clients.client("ec2")  # the zonal shift's, made at its first use: not during Init, which it would cost ~150 ms
    assert clients.client.cache_info().misses == created + 1


@pytest.mark.parametrize(
    ("policy", "error", "reason"),
    [
        (None, FunctionMisconfigured, "no policy of yours is deployed"),
        ("version: 1\npolicies: [{name: x}]\n", PolicyFileInvalid, "trigger: Field required"),
    ],
    ids=["no-policy-deployed", "invalid-policy"],
)
def test_an_intake_that_cannot_be_wired_starts_and_fails_its_first_invocation_by_name(
    sandbox: Sandbox, tmp_path: Path, policy: str | None, error: type[Exception], reason: str
) -> None:
    """An error raised during Init would fail the Init phase, and the event's retries and dead-letter queue would see
    Lambda's Init error instead of the name the README tells on-call about."""
    path = tmp_path / "policy.yaml"
    if policy is not None:
        path.write_text(policy)
    sandbox.set_env(POLICY_FILE=str(path))

    intake = load_handler("remediation")  # Init does not raise

    with pytest.raises(error, match=reason):
        intake.lambda_handler(load_event("remediation/intake/alarm.json"), context())
