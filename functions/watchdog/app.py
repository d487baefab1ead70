"""Watchdog: a remediation execution that failed, timed out or was aborted → escalate, release the lock."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.runtime import audit_log, control, incident_store, notifier, target_adapters
from rollguard.settings import WatchdogSettings, settings_for
from rollguard.watchdog import on_execution_ended

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="detail.name")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s = settings_for(WatchdogSettings)
    result = on_execution_ended(event, incident_store(s), audit_log(s), notifier(s), target_adapters, control(s))
    logger.info(result.reason, extra={"status": result.status})
    metrics.add_metric(name=f"Watchdog{result.status.title()}", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
