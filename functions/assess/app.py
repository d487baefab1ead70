"""Assess: is the alarm still firing, which deployment is to blame, what is last-known-good."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.incident import ExecutionState
from rollguard.remediation import assess
from rollguard.runtime import remediation_deps

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="incident_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return assess(ExecutionState.model_validate(event), remediation_deps()).model_dump(mode="json")
