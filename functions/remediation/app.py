"""Remediation: everything an incident runs before its first mitigating call, in one function. The alarm rule invokes
it with a CloudWatch alarm state change (the intake: open or join an incident, start the state machine); the state
machine invokes it with its Assess and Act tasks (``RemediationTask.task``). Assess then runs in the execution
environment the intake has just left idle, and Act in the one Assess left: one cold start before the mitigating call
on a cold stack, not three (README "The cold path")."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from rollguard import telemetry
from rollguard.act import act
from rollguard.alarm_event import correlation_id
from rollguard.assess import assess
from rollguard.errors import RollguardError
from rollguard.incident import RemediationTask
from rollguard.intake import handle_alarm_event
from rollguard.runtime import at_init, deps_for, intake_deps_for, intake_wiring, remediation_deps, remediation_deps_for

logger = Logger()
metrics = Metrics()
# Settings, the policy file, clients, adapters: on Init's full vCPU (rollguard.runtime).
at_init(intake_wiring)
at_init(remediation_deps)


@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """A state machine task carries ``task``; anything else is the alarm rule's event, which the intake judges. An
    EventBridge event's top-level fields are its envelope's (version, id, detail-type, source, account, time, region,
    resources, detail: "Amazon EventBridge event structure reference", EventBridge User Guide), and a rule without an
    input transformer delivers the event as matched, so none is a task."""
    if isinstance(event, dict) and "task" in event:
        return remediation_task(event, context)
    return intake(event, context)


@logger.inject_lambda_context
def intake(event: Any, context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(correlation_id(event))  # the event id, when it is one a log line can carry
    result = handle_alarm_event(event, intake_deps_for(context))
    metrics.add_metric(name=f"Alarms{result.status.capitalize()}", unit=MetricUnit.Count, value=1)
    return result.model_dump(mode="json")


@logger.inject_lambda_context(correlation_id_path="state.incident_id")
def remediation_task(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = RemediationTask.model_validate(event)
    state = request.state
    if request.task == "assess":
        assessment = assess(state, deps_for(state))
        metrics.add_dimension(name="decision", value=str(assessment.decision))
        metrics.add_metric(name="Assessments", unit=MetricUnit.Count, value=1)
        return assessment.model_dump(mode="json")
    try:
        # AppConfig waits end before the function's timeout, so a step that runs out of time still records why.
        progress = act(state, remediation_deps_for(context, state))
    except RollguardError as exc:  # counted as a failed action, then raised on for the state machine
        telemetry.emit(metrics, telemetry.failed_action(state, exc))
        raise
    telemetry.emit(metrics, telemetry.after_action(state, progress))
    return progress.model_dump(mode="json")
