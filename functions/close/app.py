"""Close: record the outcome, release the target's lock, notify the escalation topic."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.closing import close
from rollguard.incident import CloseRequest
from rollguard.runtime import audit_log, incident_store, notifier

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="state.incident_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = close(CloseRequest.model_validate(event), audit_log(), incident_store(), notifier())
    metrics.add_metric(name=f"Incidents{result.outcome.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
