"""Act: take the next step of the policy's ladder (canary rollback, widen, full rollback)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard import telemetry
from rollguard.act import act
from rollguard.errors import RollguardError
from rollguard.incident import ExecutionState
from rollguard.runtime import at_init, remediation_deps, remediation_deps_for

logger = Logger()
metrics = Metrics()
at_init(remediation_deps)  # settings, clients, adapters: on Init's full vCPU (rollguard.runtime)


@logger.inject_lambda_context(correlation_id_path="incident_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = ExecutionState.model_validate(event)
    try:
        # AppConfig waits end before the function's timeout, so a step that runs out of time still records why.
        result = act(state, remediation_deps_for(context))
    except RollguardError as exc:  # counted as a failed action, then raised on for the state machine
        telemetry.emit(metrics, telemetry.failed_action(state, exc))
        raise
    telemetry.emit(metrics, telemetry.after_action(state, result))
    return result.model_dump(mode="json")
