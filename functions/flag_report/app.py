"""Flag report: weekly, publish the stale flags of the FLAG_PROFILES profiles to the escalation topic."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.flag_report import publish_flag_report
from rollguard.runtime import flag_report_deps

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    scheduled = parse(event=event, model=EventBridgeModel)
    # Judged as of the scheduled time, so a retried invocation reports exactly the same findings.
    report = publish_flag_report(flag_report_deps(), as_of=scheduled.time)
    metrics.add_metric(name="StaleFlags", unit=MetricUnit.Count, value=report.stale_flag_count)
    metrics.add_metric(name="UnreadableFlagProfiles", unit=MetricUnit.Count, value=report.unreadable_count)
    return report.model_dump(mode="json")
