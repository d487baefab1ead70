"""AWS console addresses of what an incident involves: the alarm, the Step Functions execution, CodeDeploy
deployments. The escalation notification and the postmortem draft link the same pages through these."""

from urllib.parse import quote


def _console(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


def alarm_url(region: str, alarm_name: str) -> str:
    return f"{_console(region)}/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(alarm_name, safe='')}"


def execution_url(region: str, execution_arn: str) -> str:
    return f"{_console(region)}/states/home?region={region}#/v2/executions/details/{execution_arn}"


def state_machine_url(region: str, state_machine_arn: str) -> str:
    """The state machine's page, listing its executions (template.yaml's StepFunctionsConsoleUrl output)."""
    return f"{_console(region)}/states/home?region={region}#/statemachines/view/{state_machine_arn}"


def deployment_url(region: str, deployment_id: str) -> str:
    """A CodeDeploy deployment (not an ECS service deployment: those have no page of their own)."""
    return f"{_console(region)}/codesuite/codedeploy/deployments/{quote(deployment_id, safe='')}?region={region}"


def ecs_deployments_url(region: str, cluster: str, service: str) -> str:
    """An ECS service's deployments tab, where its service deployments (rolling updates) are listed."""
    return (
        f"{_console(region)}/ecs/v2/clusters/{quote(cluster, safe='')}/services/{quote(service, safe='')}"
        f"/deployments?region={region}"
    )
