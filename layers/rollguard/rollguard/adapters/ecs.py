"""Amazon ECS: a service, its deployments (the service deployments API: what ECS deployed, from which revision, how
it ended) and its task sets; roll a rolling-update service back with UpdateService or ECS's own StopServiceDeployment.

ECS's history lives in two places. DescribeServices shows the deployments still running (PRIMARY, and ACTIVE ones
being replaced, ids ``ecs-svc/…``, what "ECS Deployment State Change" events carry). The service deployments API
(ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions; "View service history using Amazon
ECS service deployments") keeps finished ones too, with the task definition each one went to and from: that is where
the last-known-good revision comes from.
"""

from typing import Any

from rollguard.adapters.aws_errors import AWS_FAILURES, translate
from rollguard.clock import aws_iso
from rollguard.errors import RollbackFailed, TargetNotFound
from rollguard.incident import DeploymentRef

_NOT_FOUND = frozenset(
    {
        "ClusterNotFoundException",
        "ServiceNotFoundException",
        "ServiceNotActiveException",
        "ServiceDeploymentNotFoundException",
    }
)
# API "ServiceDeployment", status: the statuses of a deployment still under way, and of one ECS rolled back.
IN_FLIGHT = frozenset({"PENDING", "IN_PROGRESS"})
ROLLING_BACK = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"})
# In the vocabulary Assess shares with CodeDeploy: in flight, succeeded, or undone (stopped, rolled back).
_STATUS = {
    "PENDING": "InProgress",
    "IN_PROGRESS": "InProgress",
    "SUCCESSFUL": "Succeeded",
    "STOP_REQUESTED": "Stopped",
    "STOPPED": "Stopped",
    "ROLLBACK_REQUESTED": "Stopped",
    "ROLLBACK_IN_PROGRESS": "Stopped",
    "ROLLBACK_SUCCESSFUL": "Stopped",
    "ROLLBACK_FAILED": "Failed",
}
ROLLBACK_CREATOR = "ecsRollback"  # a deployment back to an earlier revision of the family: undoing, never blamed
_BATCH = 20  # DescribeServiceDeployments and DescribeServiceRevisions take at most 20 ARNs


def task_definition_label(arn: str) -> str:
    """``family:revision``, the name a task definition goes by in logs, the console and Rollguard's messages."""
    return arn.rsplit("/", 1)[-1]


def _revision_number(arn: str) -> int:
    try:
        return int(arn.rsplit(":", 1)[-1])
    except ValueError:
        return 0


def short_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


class EcsServices:
    def __init__(self, client: Any):
        self._ecs = client

    def service(self, cluster: str, service: str) -> dict[str, Any]:
        """DescribeServices of one service; a missing or deleted service is TargetNotFound (ECS answers it in
        ``failures``, not as an error)."""
        try:
            found = self._ecs.describe_services(cluster=cluster, services=[service])
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading ECS service {cluster}/{service}", _NOT_FOUND) from exc
        services = [s for s in found.get("services", []) if s.get("status") != "INACTIVE"]
        if not services:
            why = ", ".join(f.get("reason", "?") for f in found.get("failures", [])) or "INACTIVE"
            raise TargetNotFound(f"reading ECS service {cluster}/{service}: {why}")
        return dict(services[0])

    def deployments(self, cluster: str, service: str, since: Any | None = None) -> list[DeploymentRef]:
        """The service's deployments (created after ``since`` if given), newest first, each with the task definition
        it deploys (its target service revision) and its status in CodeDeploy's words (``description`` keeps ECS's)."""
        kwargs: dict[str, Any] = {"cluster": cluster, "service": service}
        if since is not None:
            kwargs["createdAt"] = {"after": since}
        doing = f"listing the deployments of ECS service {cluster}/{service}"
        try:
            arns: list[str] = []
            while True:
                page = self._ecs.list_service_deployments(**kwargs)
                arns += [d["serviceDeploymentArn"] for d in page.get("serviceDeployments", [])]
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            found: list[dict[str, Any]] = []
            for i in range(0, len(arns), _BATCH):
                found += self._ecs.describe_service_deployments(serviceDeploymentArns=arns[i : i + _BATCH])[
                    "serviceDeployments"
                ]
            revisions = self._revisions(
                sorted({d["targetServiceRevision"]["arn"] for d in found if d.get("targetServiceRevision")})
                + sorted({s["arn"] for d in found for s in d.get("sourceServiceRevisions", [])})
            )
        except AWS_FAILURES as exc:
            raise translate(exc, doing, _NOT_FOUND) from exc
        refs = [self._ref(d, revisions) for d in found]
        return sorted(refs, key=lambda d: d.create_time, reverse=True)

    def _revisions(self, arns: list[str]) -> dict[str, str]:
        """Service revision ARN → its task definition ARN."""
        unique = list(dict.fromkeys(arns))
        out: dict[str, str] = {}
        for i in range(0, len(unique), _BATCH):
            for revision in self._ecs.describe_service_revisions(serviceRevisionArns=unique[i : i + _BATCH])[
                "serviceRevisions"
            ]:
                out[revision["serviceRevisionArn"]] = revision.get("taskDefinition", "")
        return out

    @staticmethod
    def _ref(deployment: dict[str, Any], revisions: dict[str, str]) -> DeploymentRef:
        target = revisions.get((deployment.get("targetServiceRevision") or {}).get("arn", ""), "")
        sources = [revisions.get(s["arn"], "") for s in deployment.get("sourceServiceRevisions", [])]
        status = str(deployment.get("status", "PENDING"))
        # Going back to an earlier revision of the family is someone undoing a change (ECS's circuit breaker,
        # Rollguard, or a person), not a change to blame.
        back = bool(sources) and all(s and _revision_number(s) > _revision_number(target) for s in sources)
        created = aws_iso(deployment.get("createdAt") or deployment.get("startedAt"))
        finished = aws_iso(deployment.get("finishedAt") or deployment.get("stoppedAt"))
        return DeploymentRef(
            deployment_id=short_id(deployment["serviceDeploymentArn"]),
            status=_STATUS.get(status, "InProgress"),
            revision={
                "serviceDeploymentArn": deployment["serviceDeploymentArn"],
                "taskDefinition": target,
                "sourceTaskDefinitions": [s for s in sources if s],
                "ecsStatus": status,
            },
            revision_label=task_definition_label(target) if target else "?",
            create_time=created or "",
            complete_time=finished,
            compute_platform="ECS",
            creator=ROLLBACK_CREATOR if back else "user",
            description=f"ECS {status}" + (f": {deployment['statusReason']}" if deployment.get("statusReason") else ""),
        )

    def roll_back_to(self, cluster: str, service: str, task_definition: str) -> str:
        """UpdateService to ``task_definition``: ECS starts a new rolling deployment of it; the id of that (PRIMARY)
        deployment is returned."""
        try:
            updated = self._ecs.update_service(cluster=cluster, service=service, taskDefinition=task_definition)
        except AWS_FAILURES as exc:
            raise translate(
                exc,
                f"updating ECS service {cluster}/{service} to {task_definition_label(task_definition)}",
                _NOT_FOUND,
                RollbackFailed,
            ) from exc
        return primary_deployment(updated["service"]).get("id", "")

    def stop_with_rollback(self, service_deployment_arn: str) -> str:
        """StopServiceDeployment with stopType ROLLBACK: ECS rolls an in-progress deployment back to the service
        revision before it ("Stopping Amazon ECS service deployments")."""
        try:
            self._ecs.stop_service_deployment(serviceDeploymentArn=service_deployment_arn, stopType="ROLLBACK")
        except AWS_FAILURES as exc:
            raise translate(
                exc,
                f"stopping ECS deployment {short_id(service_deployment_arn)} with rollback",
                _NOT_FOUND,
                RollbackFailed,
            ) from exc
        return service_deployment_arn

    def describe_deployment(self, service_deployment_arn: str) -> dict[str, Any]:
        try:
            found = self._ecs.describe_service_deployments(serviceDeploymentArns=[service_deployment_arn])
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading ECS deployment {short_id(service_deployment_arn)}", _NOT_FOUND) from exc
        if not found.get("serviceDeployments"):
            raise TargetNotFound(f"ECS service deployment {service_deployment_arn} not found")
        return dict(found["serviceDeployments"][0])


def primary_deployment(service: dict[str, Any]) -> dict[str, Any]:
    """The deployment ECS is rolling the service to (DescribeServices, status PRIMARY)."""
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})


def task_set_groups(service: dict[str, Any]) -> dict[str, str]:
    """For a CODE_DEPLOY-controlled service: task definition label → the target group ARN its task set serves."""
    out: dict[str, str] = {}
    for task_set in service.get("taskSets", []):
        for lb in task_set.get("loadBalancers", []):
            if lb.get("targetGroupArn"):
                out[task_definition_label(task_set.get("taskDefinition", ""))] = lb["targetGroupArn"]
    return out
