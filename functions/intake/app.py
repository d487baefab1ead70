"""Intake: a CloudWatch alarm state change (via EventBridge) → open or join an incident."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.alarm_event import correlation_id
from rollguard.intake import handle_alarm_event
from rollguard.runtime import at_init, intake_deps_for, intake_wiring

logger = Logger()
metrics = Metrics()
at_init(intake_wiring)  # settings, the policy file, clients: on Init's full vCPU (rollguard.runtime)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(correlation_id(event))  # the event id, when it is one a log line can carry
    result = handle_alarm_event(event, intake_deps_for(context))
    metrics.add_metric(name=f"Alarms{result.status.capitalize()}", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
