"""Remediation: the state machine's Assess and Act tasks in one function, so that an incident's first step runs in
the execution environment its assessment has just warmed: one cold start fewer before the mitigating call (README
"The cold path"). The state machine says which task it runs (``RemediationTask.task``)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard import telemetry
from rollguard.act import act
from rollguard.assess import assess
from rollguard.errors import RollguardError
from rollguard.incident import RemediationTask
from rollguard.runtime import at_init, remediation_deps, remediation_deps_for

logger = Logger()
metrics = Metrics()
at_init(remediation_deps)  # settings, clients, adapters: on Init's full vCPU (rollguard.runtime)


@logger.inject_lambda_context(correlation_id_path="state.incident_id")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RemediationTask.model_validate(event)
    state = request.state
    if request.task == "assess":
        assessment = assess(state, remediation_deps())
        metrics.add_dimension(name="decision", value=str(assessment.decision))
        metrics.add_metric(name="Assessments", unit=MetricUnit.Count, value=1)
        return assessment.model_dump(mode="json")
    try:
        # AppConfig waits end before the function's timeout, so a step that runs out of time still records why.
        progress = act(state, remediation_deps_for(context))
    except RollguardError as exc:  # counted as a failed action, then raised on for the state machine
        telemetry.emit(metrics, telemetry.failed_action(state, exc))
        raise
    telemetry.emit(metrics, telemetry.after_action(state, progress))
    return progress.model_dump(mode="json")
