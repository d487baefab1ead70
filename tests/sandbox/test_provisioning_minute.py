"""A minute that ends while a drill's sandbox provisions (its clock is real time plus jumps) is emitted before the
drill's stage exists; and a sandbox that fails to start leaves nothing behind. The fault matrix crashed on both: an
IndexError from the ECS drill's error model, then "Table already exists" for every later case in that worker."""

from datetime import UTC, datetime

import pytest
from rollguard_cli.drills import SCENARIOS, scenario_sandbox
from rollguard_cli.sandbox.runner import Sandbox

pytestmark = pytest.mark.slow  # sandboxes on moto

AT = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize("drill", ["ecs-bad-deploy", "bad-target-group", "bad-deploy"])
def test_the_error_models_answer_before_the_stage_exists(drill: str) -> None:
    sandbox, stages = scenario_sandbox(SCENARIOS[drill])

    assert stages == []
    assert sandbox.world.error_rate("7", AT, {}) == 0.0
    if sandbox.ecs is not None:
        assert sandbox.ecs.spec.error_rate("payments:3", AT) == 0.0
    if sandbox.load_balancer_spec is not None:
        assert sandbox.load_balancer_spec.error_rate("checkout-blue", "use1-az1", AT) == 0.0


def test_a_sandbox_that_fails_to_start_stops_what_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Sandbox, spec: object) -> None:
        raise RuntimeError("provisioning failed")

    sandbox, _ = scenario_sandbox(SCENARIOS["bad-target-group"])
    with monkeypatch.context() as patched:
        patched.setattr(Sandbox, "_provision_load_balancer", broken)
        with pytest.raises(RuntimeError, match="provisioning failed"), sandbox:
            pass  # the tables were created before the load balancer failed

    with Sandbox(error_model=lambda label, at, config: 0.01) as sb:  # would find them: "Table already exists"
        assert sb.client("dynamodb").list_tables()["TableNames"]
