"""CodeDeploy's blue/green deployments of ECS services as AWS documents them, moving the real listener in moto.

moto 5.2.5 records an ECS deployment and does nothing. Here a deployment of an ECS AppSpec creates the replacement task
set in moto's ECS backend and shifts the production listener's forward weights in moto's ELBv2 backend (the truth of
who serves traffic, sandbox/load_balancer.py) on the sandbox clock; the life it shares with Lambda (stop, rollback,
alarms, events) is codedeploy.Deployments'. Each behaviour, with its source (CodeDeploy User Guide or API Reference):

- "Deployment configurations on an Amazon ECS compute platform": ``CodeDeployDefault.ECSAllAtOnce``,
  ``ECSCanary10Percent5Minutes``/``15Minutes``, ``ECSLinear10PercentEvery1Minutes``/``3Minutes``, and custom ones with
  ``computePlatform: ECS``. A configuration of another platform is refused (codedeploy.Deployments.check_config).
- CreateDeploymentGroup (API, Errors): the group's one ECS service must exist and use the ``CODE_DEPLOY`` deployment
  controller (``InvalidECSServiceException``, with the text AWS answers: "Deployment group's ECS service must be
  configured for a CODE_DEPLOY deployment controller."); ``deploymentStyle`` BLUE_GREEN / WITH_TRAFFIC_CONTROL
  (``InvalidDeploymentStyleException``); one target group pair of two target groups that exist, and a production
  listener that exists (``InvalidTargetGroupPairException``); no ``elbInfoList`` / ``targetGroupInfoList``
  (``InvalidLoadBalancerInfoException``).
- "AppSpec 'resources' section for Amazon ECS deployments": ``Type: AWS::ECS::Service``, ``TaskDefinition``,
  ``LoadBalancerInfo.ContainerName`` / ``ContainerPort`` (a number) required; optional ``PlatformVersion``,
  ``NetworkConfiguration.AwsvpcConfiguration`` ("All or none of the settings ... must be specified"; none: "CodeDeploy
  uses the current network Amazon ECS settings"), ``CapacityProviderStrategy``. "AppSpec 'hooks' section for an Amazon
  ECS deployment": ``BeforeInstall``, ``AfterInstall``, ``AfterAllowTestTraffic``, ``BeforeAllowTraffic``,
  ``AfterAllowTraffic``. An AppSpec that is not of this shape is ``InvalidRevisionException`` (API "CreateDeployment").
- Deployment failures (API "ErrorInformation" codes): the group's service gone or no longer ``CODE_DEPLOY``:
  ``INVALID_ECS_SERVICE``; the task definition missing, or the container name/port not in it: ``ECS_UPDATE_ERROR``
  with ECS's own refusal of the task set ("The container web does not have a container port 8080 defined."); a hook
  function that does not exist: ``HOOK_EXECUTION_FAILURE``.
- "What happens during an Amazon ECS deployment" / "Deployments on an Amazon ECS compute platform": the original task
  set is the service's ``PRIMARY`` one, on the target group the listener sends production traffic to; Install creates
  the replacement task set (the AppSpec's task definition, the original's launch type and network settings) on the
  pair's other target group; once it is ready (READY_DELAY after) AllowTraffic shifts the production listener's
  weights per the configuration; then the replacement becomes ``PRIMARY`` (UpdateServicePrimaryTaskSet) and, after the
  group's ``terminationWaitTimeInMinutes`` ("the number of minutes before deleting the original (blue) task set", API
  "BlueInstanceTerminationOption"), the original task set is deleted and the deployment is ``Succeeded``.
- "Redeployments and deployment rollbacks": "CodeDeploy implements rollbacks by rerouting traffic from the replacement
  task set to the original task set": the rollback deployment (creator ``codeDeployRollback``) puts 100% of production
  traffic on the original task set's target group, makes it ``PRIMARY`` again and deletes the replacement.
- Stopped or failed without rollback, "components remain in their current state" ("What happens during an Amazon ECS
  deployment"): traffic stays split if the stop came mid-canary and both task sets stay.

Sandbox assumptions, not found on an AWS page: a deployment whose listener splits production traffic over both target
groups (what a stop without rollback leaves) fails with ``ECS_UPDATE_ERROR``, as a Lambda alias left on two versions
does; the deployment stays ``InProgress`` during the termination wait; a group without a deployment configuration uses
``CodeDeployDefault.ECSAllAtOnce``; READY_DELAY (AWS waits for the tasks to be healthy, which the sandbox does not run).

Not modelled: running the lifecycle hooks (their functions must exist; they are not invoked, so a hook cannot fail
the deployment), the test listener and its traffic (``testTrafficRoute`` is accepted and left alone), the tasks
themselves (counts, health checks), ``deploymentReadyOption`` ``STOP_DEPLOYMENT`` and ContinueDeployment (refused as
not modelled), ``KEEP_ALIVE``, several ECS services or target group pairs per group, listener rules.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moto.awslambda.exceptions import UnknownFunctionException
from moto.core.exceptions import JsonRESTError, ServiceException

from rollguard_cli.sandbox.codedeploy import (
    CodeDeployError,
    Deployments,
    TrafficRouting,
    _Run,
    appspec_body,
)
from rollguard_cli.sandbox.load_balancer import forward_weights

READY_DELAY = timedelta(seconds=60)  # Install → the replacement task set ready for traffic (AWS: its tasks healthy)
HOOKS = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic")
CODE_DEPLOY_CONTROLLER = "Deployment group's ECS service must be configured for a CODE_DEPLOY deployment controller."


def _invalid(message: str) -> CodeDeployError:
    return CodeDeployError("InvalidRevisionException", f"The AppSpec is not a valid ECS AppSpec: {message}")


@dataclass(frozen=True)
class EcsAppSpec:
    """The ``Resources`` and ``Hooks`` of an ECS AppSpec, in the ECS API's shapes."""

    task_definition: str
    container_name: str
    container_port: int
    platform_version: str | None = None
    network_configuration: dict[str, Any] | None = None  # {"awsvpcConfiguration": {...}} as CreateTaskSet takes it
    capacity_provider_strategy: tuple[dict[str, Any], ...] = ()
    hooks: tuple[tuple[str, str], ...] = ()  # (lifecycle event, Lambda function)

    @classmethod
    def parse(cls, revision: dict[str, Any]) -> "EcsAppSpec":
        spec = appspec_body(revision)
        try:
            [resource] = spec["Resources"][0].values()
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise _invalid("Resources must hold one target service") from exc
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::ECS::Service":
            raise _invalid("the resource's Type must be AWS::ECS::Service")
        props = resource.get("Properties") or {}
        info = props.get("LoadBalancerInfo") or {}
        if not props.get("TaskDefinition") or not info.get("ContainerName") or "ContainerPort" not in info:
            raise _invalid("TaskDefinition, LoadBalancerInfo.ContainerName and ContainerPort are required")
        port = info["ContainerPort"]
        if isinstance(port, bool) or not isinstance(port, int):
            raise _invalid("ContainerPort must be a number")
        network = None
        if props.get("NetworkConfiguration"):
            vpc = (props["NetworkConfiguration"] or {}).get("AwsvpcConfiguration") or {}
            keys = ("Subnets", "SecurityGroups", "AssignPublicIp")
            if not all(k in vpc for k in keys):
                raise _invalid("all or none of the settings under NetworkConfiguration must be specified")
            network = {
                "awsvpcConfiguration": {
                    "subnets": list(vpc["Subnets"]),
                    "securityGroups": list(vpc["SecurityGroups"]),
                    "assignPublicIp": str(vpc["AssignPublicIp"]),
                }
            }
        strategy = tuple(
            {k[0].lower() + k[1:]: v for k, v in item.items()} for item in props.get("CapacityProviderStrategy") or []
        )
        hooks: list[tuple[str, str]] = []
        for entry in spec.get("Hooks") or []:
            for event, function in (entry or {}).items():
                if event not in HOOKS:
                    raise _invalid(f"{event} is not a lifecycle event hook of an ECS deployment ({', '.join(HOOKS)})")
                hooks.append((str(event), str(function)))
        return cls(
            str(props["TaskDefinition"]),
            str(info["ContainerName"]),
            port,
            str(props["PlatformVersion"]) if props.get("PlatformVersion") else None,
            network,
            strategy,
            tuple(hooks),
        )

    def revision(self, task_definition: str | None = None) -> dict[str, Any]:
        """This AppSpec as an ``AppSpecContent`` revision, with another task definition if given (a rollback)."""
        props: dict[str, Any] = {
            "TaskDefinition": task_definition or self.task_definition,
            "LoadBalancerInfo": {"ContainerName": self.container_name, "ContainerPort": self.container_port},
        }
        if self.platform_version:
            props["PlatformVersion"] = self.platform_version
        body = {"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": props}}]}
        return {"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(body)}}


@dataclass(frozen=True)
class _Pair:
    """The group's target group pair and production listener, resolved in moto's ELBv2 backend."""

    listener: Any
    target_groups: tuple[str, str]  # ARNs, in the group's order


class EcsDeployments(Deployments):
    """CodeDeploy's ECS deployments on moto's ECS and ELBv2 backends (codedeploy.LambdaDeployments hands them here)."""

    platform = "ECS"
    rollback_config = "CodeDeployDefault.ECSAllAtOnce"

    lambda_: Any = None  # moto's Lambda backend (hook functions), set by LambdaDeployments.ecs

    @property
    def ecs(self) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[self.codedeploy.account_id][self.codedeploy.region_name]

    @property
    def elbv2(self) -> Any:
        from moto.elbv2.models import elbv2_backends

        return elbv2_backends[self.codedeploy.account_id][self.codedeploy.region_name]

    def parse(self, revision: dict[str, Any]) -> EcsAppSpec:
        return EcsAppSpec.parse(revision)

    # ------------------------------------------------------------- the deployment group

    def _service(self, group_services: list[dict[str, Any]]) -> Any:
        [entry] = group_services
        return self.ecs.services.get(f"{entry.get('clusterName')}:{entry.get('serviceName')}")

    def _pair(self, load_balancer_info: dict[str, Any]) -> _Pair | None:
        pairs = load_balancer_info.get("targetGroupPairInfoList") or []
        if len(pairs) != 1:
            return None
        names = [g.get("name") for g in pairs[0].get("targetGroups") or []]
        arns = {tg.name: arn for arn, tg in self.elbv2.target_groups.items()}
        listeners = (pairs[0].get("prodTrafficRoute") or {}).get("listenerArns") or []
        found = [
            lb.listeners[arn] for lb in self.elbv2.load_balancers.values() for arn in listeners if arn in lb.listeners
        ]
        if len(names) != 2 or not all(n in arns for n in names) or len(listeners) != 1 or not found:
            return None
        return _Pair(found[0], (arns[names[0]], arns[names[1]]))

    def admit_group(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateDeploymentGroup's refusals for an ECS application; returns the parameters moto then records."""
        style = params.get("deployment_style") or {}
        if style != {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}:
            raise CodeDeployError(
                "InvalidDeploymentStyleException",
                "An ECS deployment group's deploymentStyle must be BLUE_GREEN with WITH_TRAFFIC_CONTROL",
            )
        services = params.get("ecs_services") or []
        if len(services) != 1:
            raise CodeDeployError("InvalidECSServiceException", "An ECS deployment group takes one ECS service")
        service = self._service(services)
        if service is None:
            raise CodeDeployError(
                "InvalidECSServiceException",
                f"The ECS service {services[0].get('serviceName')} in cluster {services[0].get('clusterName')} "
                "does not exist",
            )
        if (service.deployment_controller or {}).get("type") != "CODE_DEPLOY":
            raise CodeDeployError("InvalidECSServiceException", CODE_DEPLOY_CONTROLLER)
        info = params.get("load_balancer_info") or {}
        for legacy in ("elbInfoList", "targetGroupInfoList"):
            if info.get(legacy):
                raise CodeDeployError(
                    "InvalidLoadBalancerInfoException",
                    f"For ECS deployment group, loadBalancerInfo must not contain {legacy}",
                )
        if self._pair(info) is None:
            raise CodeDeployError(
                "InvalidTargetGroupPairException",
                "An ECS deployment group needs one target group pair: two existing target groups and one existing "
                "production listener",
            )
        ready = ((params.get("blue_green_deployment_configuration") or {}).get("deploymentReadyOption") or {}).get(
            "actionOnTimeout", "CONTINUE_DEPLOYMENT"
        )
        if ready != "CONTINUE_DEPLOYMENT":
            raise CodeDeployError(
                "InvalidBlueGreenDeploymentConfigurationException",
                "The sandbox does not model deploymentReadyOption STOP_DEPLOYMENT (ContinueDeployment)",
            )
        config = params.get("deployment_config_name")
        if config:
            self.check_config(str(config), self.platform)
        else:
            params = {**params, "deployment_config_name": "CodeDeployDefault.ECSAllAtOnce"}
        return params

    # ------------------------------------------------------------- a deployment's life

    def _start(self, deployment: Any, routing: TrafficRouting, now: datetime) -> None:
        """Validate against ECS and ELBv2 as CodeDeploy would, then Install: the replacement task set."""
        spec = self.parse(deployment.revision)
        group = deployment.deployment_group
        service = self._service(group.ecs_services) if len(group.ecs_services) == 1 else None
        if service is None:
            return self._fail(deployment, "INVALID_ECS_SERVICE", "The deployment group's ECS service does not exist")
        if (service.deployment_controller or {}).get("type") != "CODE_DEPLOY":
            return self._fail(deployment, "INVALID_ECS_SERVICE", CODE_DEPLOY_CONTROLLER)
        pair = self._pair(group.load_balancer_info or {})
        if pair is None:
            return self._fail(
                deployment,
                "ELASTIC_LOAD_BALANCING_INVALID",
                "The deployment group's target groups or listener are gone",
            )
        weights = forward_weights(pair.listener.default_actions)
        serving = [arn for arn in pair.target_groups if weights.get(arn, 0) > 0]
        if len(serving) != 1:
            return self._fail(
                deployment,
                "ECS_UPDATE_ERROR",
                "The production listener does not send all production traffic to one target group of the pair "
                f"(weights {weights}); CodeDeploy cannot tell the original task set",
            )
        [blue] = serving
        [green] = [arn for arn in pair.target_groups if arn != blue]
        on_blue = [ts for ts in service.task_sets if any(lb.get("targetGroupArn") == blue for lb in ts.load_balancers)]
        original = next((ts for ts in on_blue if ts.status == "PRIMARY"), on_blue[0] if on_blue else None)
        if original is None:
            return self._fail(
                deployment, "ECS_UPDATE_ERROR", "No task set of the service serves the production target group"
            )
        try:
            task_definition = self.ecs.describe_task_definition(spec.task_definition)
        except (JsonRESTError, ServiceException):
            return self._fail(
                deployment, "ECS_UPDATE_ERROR", f"Unable to describe task definition {spec.task_definition}"
            )
        container = next(
            (c for c in task_definition.container_definitions if c.get("name") == spec.container_name), None
        )
        if container is None:
            return self._fail(
                deployment,
                "ECS_UPDATE_ERROR",
                f"The container {spec.container_name} does not exist in the task definition {task_definition.arn}.",
            )
        if spec.container_port not in [m.get("containerPort") for m in container.get("portMappings") or []]:
            return self._fail(
                deployment,
                "ECS_UPDATE_ERROR",
                f"The container {spec.container_name} does not have a container port {spec.container_port} defined.",
            )
        for event, function in spec.hooks:
            try:
                self.lambda_.get_function(function, None)
            except UnknownFunctionException:
                return self._fail(
                    deployment,
                    "HOOK_EXECUTION_FAILURE",
                    f"The {event} hook's Lambda function {function} does not exist",
                )
        try:
            replacement = self.ecs.create_task_set(
                service.name,
                service.cluster_name,
                task_definition.arn,
                external_id=deployment.deployment_id,
                network_configuration=spec.network_configuration or original.network_configuration,
                load_balancers=[
                    {
                        "targetGroupArn": green,
                        "containerName": spec.container_name,
                        "containerPort": spec.container_port,
                    }
                ],
                launch_type=None if spec.capacity_provider_strategy else original.launch_type,
                capacity_provider_strategy=list(spec.capacity_provider_strategy) or None,
                platform_version=spec.platform_version or original.platform_version,
                scale={"value": 100.0, "unit": "PERCENT"},
            )
        except (JsonRESTError, ServiceException) as exc:
            return self._fail(
                deployment, "ECS_UPDATE_ERROR", f"The replacement task set was not created: {exc.message}"
            )
        run = _Run(
            spec,
            routing,
            now,
            state={
                "service": service,
                "listener": pair.listener,
                "blue": blue,
                "green": green,
                "original": original.task_set_arn,
                "original_task_definition": original.task_definition,
                "replacement": replacement.task_set_arn,
            },
        )
        self._begin_shifting(deployment, run, now + READY_DELAY)  # AllowTraffic once the replacement is ready

    def _forward(self, run: _Run, green_share: float) -> None:
        """ModifyListener on moto's backend (the World's on_listener_changed follows it): the pair's weights."""
        green = round(green_share * 100)
        actions = [
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": run.state["blue"], "Weight": 100 - green},
                        {"TargetGroupArn": run.state["green"], "Weight": green},
                    ]
                },
            }
        ]
        self.elbv2.modify_listener(run.state["listener"].arn, actions=actions)

    def _apply_share(self, deployment: Any, run: _Run, share: float) -> None:
        self._forward(run, share)

    def _all_traffic_shifted(self, deployment: Any, run: _Run) -> None:
        """The replacement becomes PRIMARY; the original is deleted after terminationWaitTimeInMinutes."""
        service = run.state["service"]
        self.ecs.update_service_primary_task_set(service.cluster_name, service.name, run.state["replacement"])
        termination = (deployment.deployment_group.blue_green_deployment_configuration or {}).get(
            "terminateBlueInstancesOnDeploymentSuccess"
        ) or {}
        wait = timedelta(minutes=int(termination.get("terminationWaitTimeInMinutes") or 0))
        run.timers.append(self._schedule(self.now() + wait, lambda: self._terminate_original(deployment)))

    def _terminate_original(self, deployment: Any) -> None:
        with self._lock:
            run = self._runs.get(deployment.deployment_id)
            if run is None or deployment.status != "InProgress" or run.stopping:
                return
            self._delete_task_set(run, run.state["original"])
            self._succeed(deployment)

    def _delete_task_set(self, run: _Run, arn: str) -> None:
        service = run.state["service"]
        if any(ts.task_set_arn == arn for ts in service.task_sets):
            self.ecs.delete_task_set(service.cluster_name, service.name, arn)

    def _restore(self, deployment: Any, run: _Run | None) -> dict[str, Any]:
        """Production traffic back on the original task set's target group, the original PRIMARY again, the
        replacement deleted; the rollback deployment's revision names the original task definition."""
        if run is None:
            return dict(deployment.revision)
        service = run.state["service"]
        self._forward(run, 0.0)
        if any(ts.task_set_arn == run.state["original"] for ts in service.task_sets):
            self.ecs.update_service_primary_task_set(service.cluster_name, service.name, run.state["original"])
        self._delete_task_set(run, run.state["replacement"])
        return run.spec.revision(run.state["original_task_definition"])


def provision_ecs_deployment_group(
    codedeploy_client: Any,
    *,
    application: str,
    group: str,
    cluster: str,
    service: str,
    listener_arn: str,
    target_groups: tuple[str, str],
    role_arn: str,
    alarms: tuple[str, ...] = (),
    auto_rollback_events: tuple[str, ...] = (),
    config: str = "CodeDeployDefault.ECSAllAtOnce",
    termination_wait_minutes: int = 5,
) -> str:
    """An ECS blue/green deployment group through CreateDeploymentGroup (plain boto3; the application must exist
    with ``computePlatform: ECS``). ``target_groups`` are names, the one serving production first. Returns its id."""
    params: dict[str, Any] = {
        "applicationName": application,
        "deploymentGroupName": group,
        "deploymentConfigName": config,
        "serviceRoleArn": role_arn,
        "ecsServices": [{"serviceName": service, "clusterName": cluster}],
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": termination_wait_minutes,
            },
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
        "loadBalancerInfo": {
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": target_groups[0]}, {"name": target_groups[1]}],
                    "prodTrafficRoute": {"listenerArns": [listener_arn]},
                }
            ]
        },
    }
    if alarms:
        params["alarmConfiguration"] = {"enabled": True, "alarms": [{"name": a} for a in alarms]}
    if auto_rollback_events:
        params["autoRollbackConfiguration"] = {"enabled": True, "events": list(auto_rollback_events)}
    return str(codedeploy_client.create_deployment_group(**params)["deploymentGroupId"])
