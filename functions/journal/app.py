"""Journal: CodeDeploy and AppConfig deployment events (via EventBridge) → the change journal."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.journal import record_event
from rollguard.runtime import journal, journal_profile_type
from rollguard.settings import JournalSettings, settings_for

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    function_arn = context.invoked_function_arn  # arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME
    home_account = function_arn.split(":")[4]
    profile_type = journal_profile_type(function_arn)
    result = record_event(event, journal(settings_for(JournalSettings)), profile_type, home_account)
    logger.info(result.reason, extra={"status": result.status})
    metrics.add_metric(name=f"Changes{result.status.title()}", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
