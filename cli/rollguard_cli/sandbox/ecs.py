"""An Amazon ECS service behind the sandbox's load balancer (opt-in: ``Sandbox(..., load_balancer=LoadBalancerSpec(...),
ecs=EcsServiceSpec(...))``). moto 5.2.5 stores clusters, task definitions and services but never runs a deployment:
UpdateService overwrites fields, ``deployments[]`` never changes, and the service deployments API does not exist. This
module runs the deployments on the World's virtual clock and keeps moto's service object truthful at every moment
(its ``deployments``, ``taskDefinition``, ``runningCount``/``pendingCount``); docs/sandbox-ecs.md has the table with
the contract tests. Each behaviour and its source:

- Rolling update, the ``ECS`` deployment controller ("Deploy Amazon ECS services by replacing tasks"; API
  "DeploymentConfiguration": ``maximumPercent`` is the upper limit on tasks in RUNNING or PENDING state, rounded
  down; ``minimumHealthyPercent`` the lower limit on RUNNING healthy tasks, rounded up). UpdateService with another
  task definition (or ``forceNewDeployment``) creates a PRIMARY deployment (``ecs-svc/<digits>``, rolloutState
  IN_PROGRESS) and turns the previous one ACTIVE; old tasks are stopped while the healthy count stays at or above the
  minimum, new ones started while the total stays at or below the maximum; a task is healthy (RUNNING, registered in
  the target group) ``task_start_seconds`` after launch. When the primary has desiredCount running and no other
  deployment has a task, it is COMPLETED and the others leave DescribeServices. A second UpdateService mid-rollout
  makes another PRIMARY; every older deployment is drained ("Deploy Amazon ECS services by replacing tasks": a
  service can have several ACTIVE deployments).
- The deployment circuit breaker ("How the Amazon ECS deployment circuit breaker detects failures"; API
  "ServiceDeploymentCircuitBreaker": threshold 0.5 × desired task count, minimum 3, maximum 200; API
  "DeploymentCircuitBreaker": only for the rolling update (``ECS``) controller; ``resetOnHealthyTask`` defaults to
  true): a task of a ``fails_to_start`` revision stops before it is healthy (failedTasks counts up); at the threshold
  the deployment's rolloutState is FAILED and no task is launched for it; with ``rollback`` a new PRIMARY deployment
  runs the last COMPLETED deployment's task definition. A task that starts and is healthy resets the count: tasks that
  serve errors never trip it.
- Service deployments ("View service history using Amazon ECS service deployments"; API ListServiceDeployments,
  DescribeServiceDeployments, DescribeServiceRevisions, StopServiceDeployment), answered from runner.py's botocore
  ``before-call`` hook in botocore's shapes: each deployment is a service deployment with source and target service
  revisions; a circuit breaker rollback is the same service deployment in ROLLBACK_IN_PROGRESS then
  ROLLBACK_SUCCESSFUL, with ``rollback``; ListServiceDeployments filters by status and createdAt, newest first,
  paginated. StopServiceDeployment ROLLBACK ("Stopping Amazon ECS service deployments"): PENDING or IN_PROGRESS move
  to ROLLBACK_REQUESTED, then the rollback to the previous service revision starts; the ROLLBACK/STOP states
  continue; any other state is refused with ``ConflictException``; an unknown ARN is
  ``ServiceDeploymentNotFoundException``.
- Events ("Amazon ECS service deployment state change events"): ``ECS Deployment State Change`` from ``aws.ecs``,
  SERVICE_DEPLOYMENT_IN_PROGRESS / _COMPLETED (INFO) and _FAILED (ERROR), resources the service ARN, detail
  eventType, eventName, deploymentId, updatedAt, reason; queued to the World's EventBridge outbox.
- A CODE_DEPLOY controller service ("Amazon ECS blue/green deployments with CodeDeploy"): CreateService makes the
  initial task set itself (PRIMARY, scale 100 PERCENT, on the spec's target group), so the sandbox creates it in moto's
  backend as ECS would, not through CreateTaskSet (which AWS keeps for the EXTERNAL controller). UpdateService with
  a taskDefinition is refused with ``InvalidParameterException`` "Unable to update task definition on services with
  a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment." (the error AWS answers, as
  seen in cdklabs/cdk-ecs-codedeploy#121). Who serves its target groups is read from moto's task sets at each call.

Choices where AWS does not say: a service deployment's id is the digits of its ``ecs-svc/<digits>`` deployment; a
circuit breaker failure without rollback leaves the service deployment STOPPED (ServiceDeploymentStatus has no
FAILED); a deployment replaced mid-rollout by a newer one is STOPPED; StopServiceDeployment without ``stopType`` is a
ROLLBACK and ``ABORT`` is refused (the API reference: "The valid values are ROLLBACK"). Stopped tasks leave the target
group at once (no deregistration delay).
"""

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.utils import parse_timestamp

from rollguard_cli.sandbox.world import moto_time

Answer = tuple[int, dict[str, Any]]
ACCOUNT, REGION = "123456789012", "us-east-1"
EVENT = "ECS Deployment State Change"
CODE_DEPLOY_TASK_DEFINITION = (
    "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
    "Use AWS CodeDeploy to trigger a new deployment."
)
FINISHED = {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}
STOPPABLE = {"PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"}
LIST_PAGE = 20  # ListServiceDeployments' default maxResults
ROLLBACK_REQUESTED_FOR = timedelta(seconds=5)  # how long ROLLBACK_REQUESTED lasts: AWS does not say


@dataclass(frozen=True)
class EcsServiceSpec:
    cluster: str = "prod"
    service: str = "payments"
    family: str = "payments"
    container: str = "web"
    container_port: int = 8080
    revisions: int = 2  # task definitions family:1..revisions
    live_revision: int = 1  # what the service runs, steady, when the sandbox starts
    desired_count: int = 4
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    circuit_breaker: tuple[bool, bool] = (True, True)  # (enable, rollback)
    task_start_seconds: float = 30.0  # launch until RUNNING and healthy in the target group
    controller: Literal["ECS", "CODE_DEPLOY"] = "ECS"
    target_group: str = "checkout-blue"  # one of the LoadBalancerSpec's target groups
    # ("family:revision", time) -> share of a task's requests that end in a target 5XX
    error_rate: Callable[[str, datetime], float] = field(default=lambda label, at: 0.0)
    fails_to_start: frozenset[int] = frozenset()  # revisions whose essential container exits before healthy


def _error(code: str, message: str, **fields: Any) -> Answer:
    return 400, {"Error": {"Code": code, "Message": message}, "message": message, **fields}


def _label(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1]


@dataclass
class _Task:
    deployment: "_Deployment"
    launched: datetime
    state: str = "PENDING"  # then RUNNING (healthy) or STOPPED


@dataclass
class _Revision:
    id: str
    arn: str
    task_definition: str
    created_at: datetime


@dataclass
class _ServiceDeployment:
    id: str
    arn: str
    created_at: datetime
    target: _Revision
    sources: list[_Revision]
    configuration: dict[str, Any]
    status: str = "IN_PROGRESS"
    status_reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    updated_at: datetime | None = None
    rollback: dict[str, Any] | None = None
    breaker_status: str = "MONITORING"
    threshold: int = 3
    deployments: list["_Deployment"] = field(default_factory=list)


@dataclass
class _Deployment:
    id: str
    task_definition: str
    desired: int
    created_at: datetime
    service_deployment: _ServiceDeployment
    status: str = "PRIMARY"
    rollout_state: str = "IN_PROGRESS"
    reason: str = ""
    updated_at: datetime | None = None
    failed_tasks: int = 0
    breaker_failures: int = 0
    tasks: list[_Task] = field(default_factory=list)
    revision: _Revision | None = None  # the service revision it runs (a rollback's: the one rolled back to)

    def count(self, state: str) -> int:
        return sum(1 for t in self.tasks if t.state == state)

    def live(self) -> int:
        return sum(1 for t in self.tasks if t.state != "STOPPED")

    def shape(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "taskDefinition": self.task_definition,
            "desiredCount": self.desired,
            "pendingCount": self.count("PENDING"),
            "runningCount": self.count("RUNNING"),
            "failedTasks": self.failed_tasks,
            "createdAt": moto_time(self.created_at),
            "updatedAt": moto_time(self.updated_at or self.created_at),
            "launchType": "FARGATE",
            "platformFamily": "FARGATE",
            "rolloutState": self.rollout_state,
            "rolloutStateReason": self.reason,
        }


class EcsService:
    """The spec's service on moto: its deployments run here, on the World's timers."""

    def __init__(
        self,
        spec: EcsServiceSpec,
        now: Callable[[], datetime],
        schedule: Callable[[datetime, Callable[[], None]], Any],
        enqueue: Callable[[dict[str, Any]], None],
    ):
        self.spec, self.now, self.schedule, self.enqueue = spec, now, schedule, enqueue
        self.backend: Any = None  # moto's ECS backend, set at provisioning
        self.target_groups: dict[str, str] = {}  # name → ARN (the load balancer's)
        self.deployments: list[_Deployment] = []  # shown in DescribeServices: PRIMARY first
        self.service_deployments: list[_ServiceDeployment] = []
        self.revisions: list[_Revision] = []
        self.history: list[tuple[datetime, dict[str, int]]] = []  # healthy tasks per label, over time
        self.last_completed: _Deployment | None = None
        self.desired = spec.desired_count
        self.configuration: dict[str, Any] = {
            "maximumPercent": spec.maximum_percent,
            "minimumHealthyPercent": spec.minimum_healthy_percent,
            "deploymentCircuitBreaker": {"enable": spec.circuit_breaker[0], "rollback": spec.circuit_breaker[1]},
        }
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ provisioning (plain boto3)

    def provision(self, ecs: Any, ec2: Any, backend: Any, target_groups: dict[str, str], subnets: list[str]) -> None:
        """Cluster, task definitions and service through plain boto3; the tasks run in the load balancer's subnets
        (``awsvpc`` needs a network configuration, "Amazon ECS task networking options for Fargate")."""
        spec = self.spec
        if spec.target_group not in target_groups:
            raise ValueError(f"{spec.target_group!r} is not one of the load balancer's target groups")
        if not 1 <= spec.live_revision <= spec.revisions:
            raise ValueError("live_revision must be one of 1..revisions")
        self.backend, self.target_groups = backend, dict(target_groups)
        ecs.create_cluster(clusterName=spec.cluster)
        for n in range(1, spec.revisions + 1):
            ecs.register_task_definition(
                family=spec.family,
                taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{spec.family}-task",
                executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{spec.family}-execution",
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="256",
                memory="512",
                containerDefinitions=[
                    {
                        "name": spec.container,
                        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{spec.family}:{n}",
                        "essential": True,
                        "memory": 512,
                        "portMappings": [{"containerPort": spec.container_port, "protocol": "tcp"}],
                    }
                ],
            )
        live = f"{spec.family}:{spec.live_revision}"
        vpc = ec2.describe_subnets(SubnetIds=subnets)["Subnets"][0]["VpcId"]
        groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        network = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [groups[0]["GroupId"]]}}
        load_balancers = [
            {
                "targetGroupArn": target_groups[spec.target_group],
                "containerName": spec.container,
                "containerPort": spec.container_port,
            }
        ]
        ecs.create_service(
            cluster=spec.cluster,
            serviceName=spec.service,
            taskDefinition=live,
            desiredCount=spec.desired_count,
            launchType="FARGATE",
            loadBalancers=load_balancers,
            deploymentController={"type": spec.controller},
            deploymentConfiguration=self.configuration,
            networkConfiguration=network,
        )
        service = self.moto_service()
        service.deployment_configuration = self.configuration  # moto drops it
        if spec.controller == "CODE_DEPLOY":
            # CreateService makes the initial task set of a CODE_DEPLOY service itself (CreateTaskSet is refused for
            # it on AWS): created in moto's backend, as ECS does, and made PRIMARY.
            task_set = backend.create_task_set(
                spec.service,
                spec.cluster,
                live,
                load_balancers=load_balancers,
                launch_type="FARGATE",
                network_configuration=network,
            )
            task_set.scale = {"value": 100.0, "unit": "PERCENT"}  # set after: moto's run_task fails for awsvpc tasks
            backend.update_service_primary_task_set(spec.cluster, spec.service, task_set.task_set_arn)
            return
        # The service starts steady: its first deployment COMPLETED, desiredCount tasks healthy.
        now = self.now()
        arn = backend.describe_task_definition(live).arn
        first = self._start(arn, now, sources=[], deployment_id=service.deployments[0]["id"])
        for _ in range(self.desired):
            first.tasks.append(_Task(first, now, "RUNNING"))
        self._complete(first, now, announce=False)
        self._publish()

    @property
    def _service_key(self) -> str:
        return f"{self.spec.cluster}:{self.spec.service}"

    def moto_service(self) -> Any:
        return self.backend.services[self._service_key]

    @property
    def service_arn(self) -> str:
        return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{self.spec.cluster}/{self.spec.service}"

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{self.spec.cluster}"

    def threshold(self) -> int:
        """API "ServiceDeploymentCircuitBreaker": 0.5 × desired task count, minimum 3, maximum 200."""
        return min(max(math.ceil(0.5 * self.desired), 3), 200)

    def modelled(self, cluster: str, service: str) -> bool:
        return cluster.rsplit("/", 1)[-1] == self.spec.cluster and service.rsplit("/", 1)[-1] == self.spec.service

    # ------------------------------------------------------------------ UpdateService (moto_ext routes it here)

    def update_service(self, props: dict[str, Any]) -> Any:
        """UpdateService as ECS carries it out; raises moto's own exceptions for AWS's refusals."""
        from moto.ecs.exceptions import InvalidParameterException

        service = self.moto_service()
        task_definition = props.get("task_definition")
        if self.spec.controller == "CODE_DEPLOY" and task_definition:
            raise InvalidParameterException(CODE_DEPLOY_TASK_DEFINITION)
        if self.spec.controller == "CODE_DEPLOY":
            return None  # moto's own update for the rest
        arn = self.backend.describe_task_definition(task_definition).arn if task_definition else None
        with self._lock:
            now = self.now()
            if props.get("desired_count") is not None:
                self.desired = int(props["desired_count"])
                service.desired_count = self.desired
            if props.get("deployment_configuration"):
                self.configuration = {**self.configuration, **props["deployment_configuration"]}
                service.deployment_configuration = self.configuration
            primary = self.deployments[0]
            if (arn is not None and arn != primary.task_definition) or props.get("force_new_deployment"):
                self._new_deployment(arn or primary.task_definition, now)
            else:
                primary.desired = self.desired
            self._step()
        return service

    def _new_deployment(self, task_definition: str, now: datetime) -> _Deployment:
        running = [d for d in self.deployments if d.live()]
        previous = self.deployments[0] if self.deployments else None
        if previous is not None and previous.service_deployment.status not in FINISHED:
            sd = previous.service_deployment  # replaced mid-rollout by a newer deployment
            sd.status, sd.status_reason = "STOPPED", "Replaced by a newer service deployment."
            sd.stopped_at = sd.finished_at = sd.updated_at = now
        sources = list({id(r): r for d in running if (r := d.revision) is not None}.values())
        if not sources and previous is not None and previous.revision is not None:
            sources = [previous.revision]
        deployment = self._start(task_definition, now, sources=sources)
        self._announce(deployment, "SERVICE_DEPLOYMENT_IN_PROGRESS", deployment.reason)
        return deployment

    def _start(
        self,
        task_definition: str,
        now: datetime,
        sources: list[_Revision],
        deployment_id: str | None = None,
        service_deployment: _ServiceDeployment | None = None,
        revision: _Revision | None = None,
    ) -> _Deployment:
        from moto.moto_api._internal import mock_random

        deployment_id = deployment_id or f"ecs-svc/{mock_random.randint(10**18, 10**19 - 1)}"
        digits = deployment_id.split("/", 1)[1]
        if service_deployment is None:
            revision = revision or _Revision(
                digits,
                f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{self.spec.cluster}/{self.spec.service}/{digits}",
                task_definition,
                now,
            )
            self.revisions.append(revision)
            service_deployment = _ServiceDeployment(
                id=digits,
                arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{self.spec.cluster}/{self.spec.service}/"
                f"{digits}",
                created_at=now,
                started_at=now,
                updated_at=now,
                target=revision,
                sources=list(sources),
                configuration=dict(self.configuration),
                threshold=self.threshold(),
                breaker_status="MONITORING" if self._breaker()[0] else "DISABLED",
            )
            self.service_deployments.append(service_deployment)
        for d in self.deployments:
            d.status, d.updated_at = "ACTIVE", now
        deployment = _Deployment(
            deployment_id,
            task_definition,
            self.desired,
            now,
            service_deployment,
            updated_at=now,
            reason=f"ECS deployment {deployment_id} in progress.",
            revision=revision or service_deployment.target,
        )
        service_deployment.deployments.append(deployment)
        self.deployments.insert(0, deployment)
        return deployment

    def _breaker(self) -> tuple[bool, bool]:
        breaker = self.configuration.get("deploymentCircuitBreaker") or {}
        enabled = self.spec.controller == "ECS" and bool(breaker.get("enable"))
        return enabled, enabled and bool(breaker.get("rollback"))

    # ------------------------------------------------------------------ the scheduler

    def _step(self) -> None:
        """Stop old tasks while the healthy count stays at or above the minimum, then launch the primary's while the
        total stays at or below the maximum (API "DeploymentConfiguration")."""
        now = self.now()
        primary = self.deployments[0]
        high = math.floor(self.desired * int(self.configuration["maximumPercent"]) / 100)
        low = math.ceil(self.desired * int(self.configuration["minimumHealthyPercent"]) / 100)
        old = [d for d in self.deployments[1:]]
        for d in old:
            for task in d.tasks:
                if task.state == "PENDING":
                    task.state = "STOPPED"  # an old deployment's task still starting is not waited for
        healthy = sum(d.count("RUNNING") for d in self.deployments)
        for d in reversed(old):
            for task in d.tasks:
                if task.state == "RUNNING" and healthy - 1 >= low:
                    task.state, healthy = "STOPPED", healthy - 1
        for d in old:
            d.updated_at = now
        if primary.rollout_state != "FAILED":
            total = sum(d.live() for d in self.deployments)
            while primary.live() < self.desired and total < high:
                task = _Task(primary, now)
                primary.tasks.append(task)
                total += 1
                self.schedule(now + timedelta(seconds=self.spec.task_start_seconds), self._started(task))
            surplus = primary.count("RUNNING") - self.desired  # scaled in
            for task in primary.tasks:
                if surplus > 0 and task.state == "RUNNING":
                    task.state, surplus = "STOPPED", surplus - 1
        primary.updated_at = now
        # A drained deployment leaves DescribeServices; a FAILED one stays until the rollback completes.
        self.deployments = [primary] + [d for d in old if d.live() or d.rollout_state == "FAILED"]
        if (
            primary.rollout_state == "IN_PROGRESS"
            and primary.count("RUNNING") >= self.desired
            and not any(d.live() for d in self.deployments[1:])
        ):
            self._complete(primary, now)
            self.deployments = [primary]
        self._publish()

    def _started(self, task: _Task) -> Callable[[], None]:
        def done() -> None:
            with self._lock:
                if task.state != "PENDING":
                    return
                d = task.deployment
                revision = int(d.task_definition.rsplit(":", 1)[1])
                if revision in self.spec.fails_to_start:
                    task.state = "STOPPED"  # the essential container exited before the task was healthy
                    d.failed_tasks += 1
                    d.breaker_failures += 1
                    sd = d.service_deployment
                    enabled, _ = self._breaker()
                    if enabled and d is self.deployments[0] and d.breaker_failures >= sd.threshold:
                        self._fail(d)
                else:
                    task.state = "RUNNING"
                    d.breaker_failures = 0  # resetOnHealthyTask (default true)
                self._step()

        return done

    def _fail(self, d: _Deployment) -> None:
        now = self.now()
        sd = d.service_deployment
        d.rollout_state, d.updated_at = "FAILED", now
        d.reason = "ECS deployment circuit breaker: task failed to start."
        sd.breaker_status, sd.updated_at = "TRIGGERED", now
        self._announce(d, "SERVICE_DEPLOYMENT_FAILED", d.reason, event_type="ERROR")
        _, rollback = self._breaker()
        last = self.last_completed
        if sd.status.startswith("ROLLBACK"):
            sd.status, sd.status_reason = "ROLLBACK_FAILED", d.reason  # the rollback itself failed
            sd.finished_at = now
        elif rollback and last is not None and last.revision is not None:
            self._roll_back(
                sd,
                "Circuit breaker triggered.",
                last.revision,
                f"ECS deployment circuit breaker: rolling back to deploymentId {last.id}.",
            )
        else:
            sd.status, sd.status_reason = "STOPPED", d.reason
            sd.finished_at = sd.stopped_at = now

    def _roll_back(self, sd: _ServiceDeployment, why: str, to: _Revision, reason: str | None = None) -> None:
        """A rollback is a new PRIMARY deployment of the last completed one's task definition, in the same service
        deployment ("How the Amazon ECS deployment circuit breaker detects failures"; "Stopping Amazon ECS service
        deployments")."""
        now = self.now()
        sd.status, sd.updated_at = "ROLLBACK_IN_PROGRESS", now
        sd.rollback = {"reason": why, "startedAt": now, "serviceRevisionArn": to.arn}
        rolled = self._start(to.task_definition, now, sources=[], service_deployment=sd, revision=to)
        rolled.reason = reason or rolled.reason
        self._announce(rolled, "SERVICE_DEPLOYMENT_IN_PROGRESS", rolled.reason)

    def _complete(self, d: _Deployment, now: datetime, announce: bool = True) -> None:
        d.rollout_state, d.updated_at = "COMPLETED", now
        d.reason = f"ECS deployment {d.id} completed."
        sd = d.service_deployment
        if sd.status in {"ROLLBACK_IN_PROGRESS", "ROLLBACK_REQUESTED"}:
            sd.status = "ROLLBACK_SUCCESSFUL"
        elif sd.status not in FINISHED:
            sd.status = "SUCCESSFUL"
        sd.finished_at = sd.updated_at = now
        if sd.breaker_status == "MONITORING":
            sd.breaker_status = "MONITORING_COMPLETE"
        self.last_completed = d
        if announce:
            self._announce(d, "SERVICE_DEPLOYMENT_COMPLETED", d.reason)

    def _publish(self) -> None:
        """moto's service object says what ECS would say now; the healthy tasks per label join the history."""
        service = self.moto_service()
        service.deployments = [d.shape() for d in self.deployments]
        service.task_definition = self.deployments[0].task_definition
        service.running_count = sum(d.count("RUNNING") for d in self.deployments)
        service.pending_count = sum(d.count("PENDING") for d in self.deployments)
        service.desired_count = self.desired
        healthy: dict[str, int] = {}
        for d in self.deployments:
            if d.count("RUNNING"):
                label = _label(d.task_definition)
                healthy[label] = healthy.get(label, 0) + d.count("RUNNING")
        if not self.history or self.history[-1][1] != healthy:
            self.history.append((self.now(), healthy))

    def _announce(self, d: _Deployment, name: str, reason: str, event_type: str = "INFO") -> None:
        """The event of "Amazon ECS service deployment state change events"."""
        now = self.now()
        self.enqueue(
            {
                "version": "0",
                "id": f"ecs-{d.id.split('/', 1)[1]}-{name.lower()}",
                "detail-type": EVENT,
                "source": "aws.ecs",
                "account": ACCOUNT,
                "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [self.service_arn],
                "detail": {
                    "eventType": event_type,
                    "eventName": name,
                    "deploymentId": d.id,
                    "updatedAt": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                    "reason": reason,
                },
            }
        )

    # ------------------------------------------------------------------ who serves a target group

    def serving(self, target_group: str, at: datetime) -> dict[str, float]:
        """The share of each task definition ("family:revision") among the healthy tasks registered in
        ``target_group`` at ``at``: the deployments' running tasks (ECS controller), or moto's task sets on that group,
        each weighted by its scale × the desired count while it is PRIMARY or ACTIVE and STEADY_STATE (CODE_DEPLOY)."""
        counts: dict[str, float] = {}
        if self.spec.controller == "CODE_DEPLOY":
            arn = self.target_groups.get(target_group)
            service = self.backend.services.get(self._service_key)  # None while the sandbox is still provisioning it
            for task_set in service.task_sets if service is not None else []:
                if task_set.status not in {"PRIMARY", "ACTIVE"} or task_set.stabilityStatus != "STEADY_STATE":
                    continue
                if not any(lb.get("targetGroupArn") == arn for lb in task_set.load_balancers):
                    continue
                scale = task_set.scale or {}
                value = float(scale.get("value", 0.0))
                tasks = value if scale.get("unit") == "COUNT" else value / 100 * service.desired_count
                label = _label(task_set.task_definition)
                counts[label] = counts.get(label, 0.0) + tasks
        elif target_group == self.spec.target_group:
            current: dict[str, int] = {}
            for moment, healthy in self.history:
                if moment > at:
                    break
                current = healthy
            counts = {k: float(v) for k, v in current.items()}
        total = sum(counts.values())
        return {k: v / total for k, v in counts.items() if v > 0} if total else {}

    def error_rate(self, target_group: str, zone: str, at: datetime) -> float:
        """The load balancer's error model for a group: Σ share × error_rate(label) over what serves it."""
        return sum(share * self.spec.error_rate(label, at) for label, share in self.serving(target_group, at).items())

    # ------------------------------------------------------------------ the service deployments API

    def answer(self, operation: str, params: dict[str, Any]) -> Answer | None:
        method = getattr(self, f"_{operation}", None)
        if method is None:
            return None
        with self._lock:
            result: Answer = method(**params)
            return result

    def _find_service(self, cluster: str | None, service: str) -> bool:
        return self.modelled(cluster or "default", service) or (
            service.startswith("arn:") and self.modelled(service.rsplit("/", 2)[-2], service)
        )

    def _brief(self, sd: _ServiceDeployment) -> dict[str, Any]:
        brief = {
            "serviceDeploymentArn": sd.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "createdAt": sd.created_at,
            "startedAt": sd.started_at,
            "finishedAt": sd.finished_at,
            "targetServiceRevisionArn": sd.target.arn,
            "status": sd.status,
            "statusReason": sd.status_reason,
        }
        return {k: v for k, v in brief.items() if v is not None}

    def _summary(self, revision: _Revision) -> dict[str, Any]:
        mine = [d for d in self.deployments if d.task_definition == revision.task_definition]
        return {
            "arn": revision.arn,
            "requestedTaskCount": self.desired if mine and mine[0] is self.deployments[0] else 0,
            "runningTaskCount": sum(d.count("RUNNING") for d in mine),
            "pendingTaskCount": sum(d.count("PENDING") for d in mine),
        }

    def _ListServiceDeployments(  # noqa: N802 - named after the API operation
        self,
        service: str,
        cluster: str | None = None,
        status: list[str] | None = None,
        createdAt: dict[str, Any] | None = None,  # noqa: N803
        nextToken: str | None = None,  # noqa: N803
        maxResults: int | None = None,  # noqa: N803
    ) -> Answer:
        if not self._find_service(cluster, service):
            return _error("ServiceNotFoundException", "Service not found.")
        found = sorted(self.service_deployments, key=lambda s: s.created_at, reverse=True)
        if status:
            found = [s for s in found if s.status in status]
        window = createdAt or {}
        if window.get("before") is not None:
            found = [s for s in found if s.created_at < _moment(window["before"])]
        if window.get("after") is not None:
            found = [s for s in found if s.created_at > _moment(window["after"])]
        start = int(nextToken or 0)
        size = maxResults or LIST_PAGE
        body: dict[str, Any] = {"serviceDeployments": [self._brief(s) for s in found[start : start + size]]}
        if start + size < len(found):
            body["nextToken"] = str(start + size)
        return 200, body

    def _DescribeServiceDeployments(self, serviceDeploymentArns: list[str]) -> Answer:  # noqa: N802,N803
        by_arn = {s.arn: s for s in self.service_deployments}
        found, failures = [], []
        for arn in serviceDeploymentArns:
            sd = by_arn.get(arn)
            if sd is None:
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            shape = {
                **self._brief(sd),
                "updatedAt": sd.updated_at,
                "stoppedAt": sd.stopped_at,
                "sourceServiceRevisions": [self._summary(r) for r in sd.sources],
                "targetServiceRevision": self._summary(sd.target),
                "deploymentConfiguration": sd.configuration,
                "rollback": sd.rollback,
                "deploymentCircuitBreaker": {
                    "status": sd.breaker_status,
                    "failureCount": max((d.failed_tasks for d in sd.deployments), default=0),
                    "threshold": sd.threshold,
                },
            }
            found.append({k: v for k, v in shape.items() if v is not None})
        return 200, {"serviceDeployments": found, "failures": failures}

    def _DescribeServiceRevisions(self, serviceRevisionArns: list[str]) -> Answer:  # noqa: N802,N803
        by_arn = {r.arn: r for r in self.revisions}
        found, failures = [], []
        for arn in serviceRevisionArns:
            revision = by_arn.get(arn)
            if revision is None:
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            found.append(
                {
                    "serviceRevisionArn": revision.arn,
                    "serviceArn": self.service_arn,
                    "clusterArn": self.cluster_arn,
                    "taskDefinition": revision.task_definition,
                    "launchType": "FARGATE",
                    "platformFamily": "FARGATE",
                    "loadBalancers": [
                        {
                            "targetGroupArn": self.target_groups[self.spec.target_group],
                            "containerName": self.spec.container,
                            "containerPort": self.spec.container_port,
                        }
                    ],
                    "createdAt": revision.created_at,
                }
            )
        return 200, {"serviceRevisions": found, "failures": failures}

    def _StopServiceDeployment(self, serviceDeploymentArn: str, stopType: str = "ROLLBACK") -> Answer:  # noqa: N802,N803
        sd = next((s for s in self.service_deployments if s.arn == serviceDeploymentArn), None)
        if sd is None:
            return _error(
                "ServiceDeploymentNotFoundException",
                f"The service deployment {serviceDeploymentArn} does not exist.",
            )
        if stopType != "ROLLBACK":
            return _error("InvalidParameterException", "The valid values for stopType are ROLLBACK.")
        if sd.status not in STOPPABLE:
            return _error(
                "ConflictException",
                f"The service deployment is in {sd.status} state and cannot be stopped.",
                resourceIds=[sd.arn],
            )
        if sd.status in {"PENDING", "IN_PROGRESS"}:
            sd.status, sd.updated_at = "ROLLBACK_REQUESTED", self.now()

            def start() -> None:
                with self._lock:
                    if sd.status != "ROLLBACK_REQUESTED":
                        return
                    previous = sd.sources[0] if sd.sources else None
                    if previous is None:
                        return
                    self._roll_back(
                        sd,
                        "StopServiceDeployment (ROLLBACK)",
                        previous,
                    )
                    self._step()

            self.schedule(self.now() + ROLLBACK_REQUESTED_FOR, start)
        return 200, {"serviceDeploymentArn": sd.arn}


def _moment(value: Any) -> datetime:
    """A createdAt bound as the caller gave it (datetime, epoch seconds or text), in UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return parse_timestamp(value).astimezone(UTC)
