"""Close: record the outcome, release the target's lock, notify the escalation topic."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard import telemetry
from rollguard.closing import close
from rollguard.incident import CloseRequest
from rollguard.runtime import audit_log, control, incident_store, notifier, stakeholders, target_adapters
from rollguard.settings import CloseSettings, settings_for

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="state.incident_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CloseRequest.model_validate(event)
    s = settings_for(CloseSettings)
    result = close(
        request,
        audit_log(s),
        incident_store(s),
        notifier(s),
        stakeholders(s),
        adapters=target_adapters(request.state),
        control=control(s),
    )
    telemetry.emit(metrics, telemetry.after_close(request.state, result))
    return result.model_dump(mode="json")
