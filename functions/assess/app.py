"""Assess: is the alarm still firing, which deployment is to blame, what is last-known-good."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.assess import assess
from rollguard.incident import ExecutionState
from rollguard.runtime import at_init, remediation_deps

logger = Logger()
metrics = Metrics()
at_init(remediation_deps)  # settings, clients, adapters: on Init's full vCPU (rollguard.runtime)


@logger.inject_lambda_context(correlation_id_path="incident_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = assess(ExecutionState.model_validate(event), remediation_deps())
    metrics.add_dimension(name="decision", value=str(result.decision))
    metrics.add_metric(name="Assessments", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
