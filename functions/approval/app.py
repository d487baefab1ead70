"""Approval: store the task token with the incident and ask on-call to approve or deny the gated step."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard.approvals import ApprovalRequest, request_approval
from rollguard.runtime import audit_log, incident_store, notifier
from rollguard.settings import ApprovalSettings, settings_for

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="state.incident_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ApprovalRequest.model_validate(event)  # holds the task token: never logged
    s = settings_for(ApprovalSettings)
    result = request_approval(request, incident_store(s), audit_log(s), notifier(s), s.stack_name or "")
    metrics.add_metric(name="ApprovalsRequested", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")
