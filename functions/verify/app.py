"""Verify: judge the step after its window and choose widen, next step, resolve or escalate."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.incident import ExecutionState
from rollguard.runtime import deps_for
from rollguard.verify import verify

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="incident_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = ExecutionState.model_validate(event)
    result = verify(state, deps_for(state))
    metrics.add_dimension(name="verdict", value=str(result.verdict))
    metrics.add_metric(name="Verifications", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
