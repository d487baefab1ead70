"""Drills: whole incidents through the sandbox, end to end, with an expected outcome.

Each scenario sets the simulated checkout service up (revisions deployed through CodeDeploy, an error
model saying how each revision behaves over time), then lets simulated minutes pass until the alarm
fires and Rollguard's execution runs to its end.
"""

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rollguard.adapters.dynamo import from_item
from rollguard.alarm_event import parse_aws_time
from rollguard.audit import AuditLog
from rollguard.clock import iso as domain_iso
from rollguard.incident import IncidentItem

from rollguard_cli.review import (
    INCIDENT_FILE,
    LEAD_IN,
    METRIC_FILE,
    alarm_onset,
    event_line,
    read_alarm_metric,
    timeline_line,
    timeline_onset,
)
from rollguard_cli.sandbox.codedeploy_ecs import provision_ecs_deployment_group
from rollguard_cli.sandbox.ecs import EcsServiceSpec
from rollguard_cli.sandbox.iam import summary as iam_summary
from rollguard_cli.sandbox.load_balancer import LoadBalancerSpec, TargetGroupSpec
from rollguard_cli.sandbox.organization import MemberAccount, Organization
from rollguard_cli.sandbox.runner import REPO, TABLES, Sandbox
from rollguard_cli.sandbox.world import ServiceSpec, SliceMetricSpec


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expected_outcome: str
    # Deploys revisions and pushes configuration, and says how the service behaves (Stage.behave).
    setup: Callable[["Stage"], None]
    policy: str = "sandbox.yaml"  # in policies/
    # What people do once the incident is open (approve, deny, or let time pass).
    respond: Callable[[Sandbox, str], None] | None = None
    # Who the service's alias (checkout:live) routes traffic to when the incident is over: {version: share}.
    expected_alias: dict[str, float] | None = None
    # More settings of the deployment group (its alarms, its automatic rollbacks).
    group: dict[str, Any] | None = None
    # The service also behind an Application Load Balancer (its error model is the stage's, Stage.behave_traffic).
    load_balancer: LoadBalancerSpec | None = None
    # Where the load balancer sends traffic when the incident is over: {"weights": {target group: share},
    # "shifted_away": AZ ID or None}.
    expected_traffic: dict[str, Any] | None = None
    # An ECS service behind that load balancer (its tasks' error rate is the stage's, Stage.behave, by task
    # definition label "family:revision"), and the task definition it runs when the incident is over.
    ecs: EcsServiceSpec | None = None
    expected_task_definition: str | None = None
    # The alarm the scenario's policy claims (PutMetricAlarm arguments): CHECKOUT_ALARM unless said otherwise.
    alarm: dict[str, Any] | None = None
    # Instead: the alarms the policy defines (trigger.define), created as `rollguard triggers emit` declares them.
    alarm_from_policy: bool = False
    # The simulated service, when it is not the default checkout one (e.g. publishing per-revision metrics).
    service: ServiceSpec | None = None
    # A central stack and member accounts (sandbox/organization.py), made fresh for each run; the service runs in
    # the organization's service_account.
    organization: Callable[[], Organization] | None = None
    # More of what must hold once the incident is over: {what: held}, each in the result and required to pass.
    expectations: Callable[[Sandbox, str], dict[str, bool]] | None = None


class Live:
    """The configuration the simulated service has loaded through its AppConfig agent."""

    def __init__(self, config: dict[str, Any]):
        self.config = config

    def flag(self, name: str, profile: str = "checkout-flags") -> bool:
        return bool(self.config.get(profile, {}).get("values", {}).get(name, {}).get("enabled", False))

    def setting(self, key: str, profile: str = "checkout-settings") -> Any:
        return self.config.get(profile, {}).get(key)


FLAGS = {
    "version": "1",
    "flags": {
        "new-pricing": {"name": "new-pricing", "description": "New pricing engine"},
        "checkout-kill-switch": {"name": "checkout-kill-switch", "description": "Disables checkout"},
    },
    "values": {"new-pricing": {"enabled": False}, "checkout-kill-switch": {"enabled": False}},
}
SETTINGS = {"timeout_ms": 2000, "retries": 2}
# The alarm every drill's policy claims: the checkout error rate above 5% in 2 of 3 one-minute datapoints.
CHECKOUT_ALARM: dict[str, Any] = {
    "AlarmName": "checkout-5xx-rate",
    "AlarmDescription": "checkout error rate above 5%",
    "Namespace": "Checkout",
    "MetricName": "ErrorRate",
    "Dimensions": [{"Name": "Service", "Value": "checkout"}],
    "Statistic": "Average",
    "Period": 60,
    "EvaluationPeriods": 3,
    "DatapointsToAlarm": 2,
    "Threshold": 5.0,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "missing",
}


class Stage:
    """What a scenario may do to the world before the alarm fires."""

    def __init__(
        self,
        sandbox: Sandbox,
        group: dict[str, Any] | None = None,
        alarm: dict[str, Any] | None = None,
        alarm_from_policy: bool = False,
    ):
        """``group``: more of the deployment group's settings (alarmConfiguration, autoRollbackConfiguration);
        ``alarm``: the alarm to create (CHECKOUT_ALARM by default), or with ``alarm_from_policy`` the alarms the
        sandbox's policy file defines, each created with the properties ``rollguard triggers emit`` gives its
        AWS::CloudWatch::Alarm (CloudFormation creates the resource with PutMetricAlarm and those parameters). The
        service's names (CodeDeploy application and group, function and alias, AppConfig application and
        environment) are the sandbox's ``ServiceSpec``."""
        self.sb = sandbox
        svc = self.svc = sandbox.service
        self.rates: list[tuple[datetime, Callable[[str, Live], float | None]]] = []
        self.traffic_rates: list[tuple[datetime, Callable[[str, str], float | None]]] = []
        self.handled: set[str] = set()  # incidents a scenario ran to their end before the one it is about
        cd = sandbox.service_client("codedeploy")  # the service team's, in the service's account
        cd.create_application(applicationName=svc.application, computePlatform="Lambda")
        cd.create_deployment_group(
            applicationName=svc.application,
            deploymentGroupName=svc.deployment_group,
            serviceRoleArn=f"arn:aws:iam::{sandbox.service_account}:role/codedeploy",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            **(group or {}),
        )
        cloudwatch = sandbox.service_client("cloudwatch")
        if alarm_from_policy:
            from rollguard.policy import load_policy_file

            from rollguard_cli.triggers import defined_alarms

            for _, properties in defined_alarms(load_policy_file(sandbox.policy_file)):
                cloudwatch.put_metric_alarm(**properties)
        else:
            cloudwatch.put_metric_alarm(**(alarm or CHECKOUT_ALARM))
        # The service's function whose alias CodeDeploy shifts (SAM's AutoPublishAlias: live).
        self.lam = sandbox.service_client("lambda")
        self.lam.create_function(
            FunctionName=svc.function,
            Runtime="python3.13",
            Role=sandbox.service_role_arn,
            Handler="app.handler",
            Code={"ZipFile": b"the simulated service"},
        )
        self.published = 0

    def publish(self, version: str) -> None:
        """Publish versions of the service's function up to ``version`` (each build is a new version)."""
        function = self.svc.function
        while self.published < int(version):
            self.lam.update_function_configuration(FunctionName=function, Description=f"build {self.published + 1}")
            self.published = int(self.lam.publish_version(FunctionName=function)["Version"])
        if not self.sb.routing():  # the first release: SAM's AutoPublishAlias creates the alias
            self.lam.create_alias(FunctionName=function, Name=self.svc.alias, FunctionVersion=version)

    def deploy(
        self,
        version: str,
        config: str = "CodeDeployDefault.LambdaAllAtOnce",
        settle: bool = True,
        revision_type: str = "AppSpecContent",
    ) -> str:
        """Deploy ``version`` of the service's function through CodeDeploy (a Lambda AppSpec, sent as an
        ``AppSpecContent`` or a ``String`` revision)."""
        self.publish(version)
        # Like SAM's pipeline, the AppSpec names the version the alias points at now as CurrentVersion.
        live = max(self.sb.routing().items(), key=lambda item: item[1])[0]
        spec = {
            "version": 0.0,
            "Resources": [
                {
                    self.svc.function: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Name": self.svc.function,
                            "Alias": self.svc.alias,
                            "CurrentVersion": live,
                            "TargetVersion": version,
                        },
                    }
                }
            ],
        }
        key = "appSpecContent" if revision_type == "AppSpecContent" else "string"
        deployment_id = self.sb.service_client("codedeploy").create_deployment(
            applicationName=self.svc.application,
            deploymentGroupName=self.svc.deployment_group,
            deploymentConfigName=config,
            revision={"revisionType": revision_type, key: {"content": json.dumps(spec)}},
            description=f"release {version}",
        )["deploymentId"]
        if settle:
            self.sb.advance(60)  # an all-at-once Lambda deployment completes within its minute
        return str(deployment_id)

    def ecs_release(self, revision: int, config: str = "CodeDeployDefault.ECSAllAtOnce") -> str:
        """Deploy ``family:revision`` of the ECS service blue/green through CodeDeploy, as its pipeline would (an
        ECS AppSpec: the task definition's ARN and the container the load balancer routes to), until it is done."""
        assert self.sb.ecs is not None
        spec = self.sb.ecs.spec
        arn = self.sb.client("ecs").describe_task_definition(taskDefinition=f"{spec.family}:{revision}")[
            "taskDefinition"
        ]["taskDefinitionArn"]
        appspec = {
            "version": 0.0,
            "Resources": [
                {
                    "TargetService": {
                        "Type": "AWS::ECS::Service",
                        "Properties": {
                            "TaskDefinition": arn,
                            "LoadBalancerInfo": {"ContainerName": spec.container, "ContainerPort": spec.container_port},
                        },
                    }
                }
            ],
        }
        cd = self.sb.client("codedeploy")
        deployment_id = cd.create_deployment(
            applicationName=ECS_APPLICATION,
            deploymentGroupName=ECS_GROUP,
            deploymentConfigName=config,
            revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": json.dumps(appspec)}},
            description=f"release {spec.family}:{revision}",
        )["deploymentId"]
        for _ in range(40):  # ready, shifted, the original task set kept for the termination wait, then done
            self.sb.advance(30)
            if cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] in {"Succeeded", "Failed"}:
                break
        return str(deployment_id)

    def ecs_roll(self, revision: int) -> None:
        """Deploy ``family:revision`` with ECS's rolling update (UpdateService), until the rollout completes."""
        assert self.sb.ecs is not None
        spec = self.sb.ecs.spec
        self.sb.ecs_deploy(revision)
        for _ in range(40):
            self.sb.advance(30)
            found = self.sb.client("ecs").describe_services(cluster=spec.cluster, services=[spec.service])
            deployments = found["services"][0]["deployments"]
            if len(deployments) == 1 and deployments[0].get("rolloutState") == "COMPLETED":
                break

    def incident(self) -> str:
        """Let the alarm fire and an incident run to its end (a scenario's earlier incident)."""
        incident_id = self.sb.run_until_incident(max_minutes=30, seen=self.handled)
        if incident_id is None:
            raise RuntimeError("the alarm never opened the earlier incident")
        self.sb.wait_for_execution(incident_id)
        self.handled.add(incident_id)
        return incident_id

    def pause(self, reason: str) -> None:
        """``rollguard pause``, as an operator would run it."""
        from rollguard.control import Control

        Control(self.sb.client("dynamodb"), TABLES["LocksTable"]).pause(reason, "arn:aws:iam::123456789012:user/oncall")

    def behave(self, rate: Callable[[str, Live], float | None]) -> None:
        """From now on, ``rate(version, live_config)`` is the error rate (None: no change from before)."""
        self.rates.append((self.sb.clock.now(), rate))

    def error_rate(self, label: str, at: datetime, config: dict[str, Any]) -> float:
        value, live = 0.01, Live(config)
        for since, rate in self.rates:
            if at >= since and (override := rate(label, live)) is not None:
                value = override
        return value

    def behave_traffic(self, rate: Callable[[str, str], float | None]) -> None:
        """From now on, ``rate(target_group, zone)`` is the error rate behind the load balancer (None: as before)."""
        self.traffic_rates.append((self.sb.clock.now(), rate))

    def traffic_error_rate(self, target_group: str, zone: str, at: datetime) -> float:
        value = 0.01
        for since, rate in self.traffic_rates:
            if at >= since and (override := rate(target_group, zone)) is not None:
                value = override
        return value

    # ------------------------------------------------------------------ AppConfig

    def appconfig(self, documents: dict[str, dict[str, Any]] | None = None) -> None:
        """The service's AppConfig application and environment (its ``ServiceSpec``), a hosted profile per entry of
        ``documents`` (profile name → first document: a feature flags profile when it has ``flags``, else freeform;
        the checkout flags and settings by default), each deployed, and the strategy Rollguard's stack creates."""
        documents = documents or {"checkout-flags": FLAGS, "checkout-settings": SETTINGS}
        self.documents = documents
        ac = self.sb.client("appconfig")
        self.app_id = ac.create_application(Name=self.svc.appconfig_application)["Id"]
        self.env_id = ac.create_environment(ApplicationId=self.app_id, Name=self.svc.appconfig_environment)["Id"]
        self.profiles = {
            name: ac.create_configuration_profile(
                ApplicationId=self.app_id,
                Name=name,
                LocationUri="hosted",
                Type="AWS.AppConfig.FeatureFlags" if "flags" in document else "AWS.Freeform",
            )["Id"]
            for name, document in documents.items()
        }
        self.strategy_id = ac.create_deployment_strategy(
            Name="Rollguard-Immediate",
            DeploymentDurationInMinutes=0,
            GrowthFactor=100,
            FinalBakeTimeInMinutes=0,
            ReplicateTo="NONE",
        )["Id"]
        for name, document in documents.items():
            self.push(name, document)

    def push(self, profile: str, document: dict[str, Any], strategy: str | None = None, settle: bool = True) -> int:
        """A person changes configuration: a new hosted version, deployed with ``strategy`` (the immediate one by
        default); settles for a minute unless told not to."""
        ac = self.sb.client("appconfig")
        version = ac.create_hosted_configuration_version(
            ApplicationId=self.app_id,
            ConfigurationProfileId=self.profiles[profile],
            Content=json.dumps(document).encode(),
            ContentType="application/json",
        )["VersionNumber"]
        ac.start_deployment(
            ApplicationId=self.app_id,
            EnvironmentId=self.env_id,
            DeploymentStrategyId=strategy or self.strategy_id,
            ConfigurationProfileId=self.profiles[profile],
            ConfigurationVersion=str(version),
            Description=f"{profile} by a human",
        )
        if settle:
            self.sb.advance(60)
        return int(version)

    def flip(self, flag: str, enabled: bool, profile: str = "checkout-flags") -> int:
        document = json.loads(json.dumps(self.documents[profile]))
        document["values"][flag]["enabled"] = enabled
        return self.push(profile, document)


def _bad_deploy(stage: Stage) -> None:
    stage.deploy("6")
    stage.sb.advance(20 * 60)
    stage.behave(lambda v, live: 0.20 if v == "7" else None)
    stage.deploy("7")


# The drills across accounts: the central stack (123456789012) acts for member account B through its execution role.
# Member account A runs the same service and alarm names, and no policy names it; the outsider is not in the
# organization but forwards its events anyway (a stray StackSet instance, a copied template).
MEMBER_A, MEMBER_B, OUTSIDER = "111111111111", "222222222222", "999999999999"


def _organization() -> Organization:
    return Organization(
        members=(MemberAccount(MEMBER_A), MemberAccount(MEMBER_B), MemberAccount(OUTSIDER, in_organization=False)),
        service_account=MEMBER_B,
    )


def _acted_through_member_b(sb: Sandbox, incident_id: str) -> dict[str, bool]:
    """The incident's target is in B, every call on it was made with B's execution role in the incident's session,
    and the audit trail says so."""
    from rollguard.accounts import session_name

    ddb = sb.client("dynamodb")
    key = {"incident_id": {"S": incident_id}}
    incident = IncidentItem.model_validate(from_item(ddb.get_item(TableName=TABLES["IncidentsTable"], Key=key)["Item"]))
    location = (incident.execution_input or {}).get("location")
    role = f"arn:aws:iam::{MEMBER_B}:role/rollguard-execution"
    session = f"arn:aws:sts::{MEMBER_B}:assumed-role/rollguard-execution/{session_name(incident_id)}"
    audit = AuditLog(ddb, TABLES["AuditTable"]).for_incident(incident_id)
    return {
        f"the incident's target is in {MEMBER_B} through {role}": location
        == {"account": MEMBER_B, "region": "us-east-1", "role_arn": role},
        f"its lock and brakes are keyed {MEMBER_B}/us-east-1/…": incident.target_key.startswith(
            f"{MEMBER_B}/us-east-1/"
        ),
        "Rollguard's calls in B were made in the incident's session": session
        in {arn for arn, _ in sb.sessions.values()},
        f"every audit event names {MEMBER_B} and the role, two actions among them": [e["kind"] for e in audit].count(
            "action"
        )
        == 2
        and all(e.get("account") == MEMBER_B and e.get("role_arn") == role for e in audit),
    }


def _alarms_from_elsewhere(stage: Stage) -> None:
    """The same alarm fires in member account A (named by no policy) and in the outsider, then B's bad deploy."""
    stage.sb.alarm_elsewhere(MEMBER_A, CHECKOUT_ALARM)
    stage.sb.alarm_elsewhere(OUTSIDER, CHECKOUT_ALARM)
    stage.sb.advance(10)
    _bad_deploy(stage)


def _refused_and_recorded(sb: Sandbox, incident_id: str) -> dict[str, bool]:
    ddb = sb.client("dynamodb")
    refused = AuditLog(ddb, TABLES["AuditTable"]).for_target(f"account:{MEMBER_A}/us-east-1")
    incidents = [from_item(i) for i in ddb.scan(TableName=TABLES["IncidentsTable"])["Items"]]
    assert sb.organization is not None
    return {
        f"{MEMBER_A}'s alarm is refused and recorded under account:{MEMBER_A}/us-east-1": [
            (e["kind"], e["result"]) for e in refused
        ]
        == [("alarm_refused", "rejected")],
        f"the central bus refused the outsider {OUTSIDER}'s forwarded alarm": [
            u.account for u in sb.organization.undelivered
        ]
        == [OUTSIDER],
        f"only {MEMBER_B}'s incident was opened": [i["incident_id"] for i in incidents] == [incident_id],
        **_acted_through_member_b(sb, incident_id),
    }


def _not_the_deploy(stage: Stage) -> None:
    stage.deploy("6")
    stage.sb.advance(20 * 60)
    stage.deploy("7")
    stage.sb.advance(3 * 60)
    stage.behave(lambda v, live: 0.20)  # a downstream dependency fails: every revision suffers alike


def _no_recent_deploy(stage: Stage) -> None:
    stage.deploy("6")
    stage.sb.advance(60 * 60)
    stage.deploy("7")
    stage.sb.advance(2 * 60 * 60)
    stage.behave(lambda v, live: 0.20)


def _paused(stage: Stage) -> None:
    stage.pause("change freeze for the payments migration")
    _bad_deploy(stage)


def _cooldown(stage: Stage) -> None:
    _bad_deploy(stage)
    stage.incident()  # Rollguard rolls revision 7 back and resolves
    stage.sb.advance(60)
    stage.behave(lambda v, live: 0.20 if v == "8" else None)
    stage.deploy("8")  # another bad release, inside the 30-minute cooldown


def _awaiting_approval(sb: Sandbox, incident_id: str, timeout_s: float = 30.0) -> bool:
    """Until the execution has asked for approval (the task token is stored with the incident): True; False when the
    incident closed without asking (a step before the gate failed), leaving on-call nothing to answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        item = (
            sb.client("dynamodb")
            .get_item(TableName=TABLES["IncidentsTable"], Key={"incident_id": {"S": incident_id}}, ConsistentRead=True)
            .get("Item")
            or {}
        )
        if "task_token" in item:
            return True
        if "closed_by" in item:
            return False
        if time.monotonic() > deadline:
            raise RuntimeError(f"incident {incident_id} never asked for approval")
        time.sleep(0.02)  # the execution runs on the sandbox's threads: poll its table, as on-call's pager would


def _decide(approve: bool, reason: str) -> Callable[[Sandbox, str], None]:
    def respond(sb: Sandbox, incident_id: str) -> None:
        from rollguard.approvals import ApprovalError, decide
        from rollguard.store import IncidentStore

        if not _awaiting_approval(sb, incident_id):
            return
        sb.advance(90)  # on-call reads the page
        approver = sb.client("sts").get_caller_identity()["Arn"]
        ddb = sb.client("dynamodb")
        store = IncidentStore(ddb, TABLES["IncidentsTable"], TABLES["LocksTable"], TABLES["AuditTable"])
        try:
            decide(
                incident_id,
                approve,
                reason,
                approver,
                store,
                AuditLog(ddb, TABLES["AuditTable"]),
                sb.client("stepfunctions"),
            )
        except ApprovalError as refused:
            # What on-call's terminal would print (the incident closed meanwhile, say); the drill's outcome tells
            # whether that was expected.
            sb.log_stream.write(f"on-call's {'approval' if approve else 'denial'} refused: {refused}\n")

    return respond


def _nobody_answers(sb: Sandbox, incident_id: str) -> None:
    _awaiting_approval(sb, incident_id)
    sb.advance(16 * 60)  # past the policy's 15-minute approval timeout


def _flag_kill_switch(stage: Stage) -> None:
    stage.appconfig()
    stage.deploy("6")
    stage.sb.advance(45 * 60)
    stage.behave(lambda v, live: 0.15 if live.flag("new-pricing") else None)  # the new pricing engine leaks errors
    stage.flip("new-pricing", True)


def _config_drift(stage: Stage) -> None:
    stage.appconfig()
    stage.deploy("6")
    stage.sb.advance(45 * 60)
    stage.behave(lambda v, live: 0.25 if (live.setting("timeout_ms") or 0) < 100 else None)
    stage.push("checkout-settings", {**SETTINGS, "timeout_ms": 50})  # a typo: 50 ms instead of 500


def _blame_the_flag(stage: Stage) -> None:
    stage.appconfig()
    stage.deploy("6")
    stage.sb.advance(20 * 60)
    stage.deploy("7")  # a healthy release
    stage.sb.advance(10 * 60)
    stage.behave(lambda v, live: 0.15 if live.flag("new-pricing") else None)
    stage.flip("new-pricing", True)  # the later change is the culprit


def _blame_the_deploy(stage: Stage) -> None:
    stage.appconfig()
    stage.deploy("6")
    stage.sb.advance(20 * 60)
    stage.flip("new-pricing", True)  # harmless on its own
    stage.sb.advance(10 * 60)
    stage.behave(lambda v, live: 0.20 if v == "7" else None)
    stage.deploy("7")  # the later change is the culprit


def _in_flight_canary(stage: Stage) -> None:
    """Revision 7 goes out as a 50% canary for 30 minutes and fails while it is still shifting."""
    stage.deploy("6")
    stage.sb.advance(20 * 60)
    stage.sb.client("codedeploy").create_deployment_config(
        deploymentConfigName="Checkout.LambdaCanary50Percent30Minutes",
        computePlatform="Lambda",
        trafficRoutingConfig={
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 50, "canaryInterval": 30},
        },
    )
    stage.behave(lambda v, live: 0.30 if v == "7" else None)
    stage.deploy("7", config="Checkout.LambdaCanary50Percent30Minutes", settle=False)


def _string_revisions(stage: Stage) -> None:
    """The pipeline sends its AppSpecs as String revisions (as the AWS CLI's --revision does)."""
    stage.deploy("6", revision_type="String")
    stage.sb.advance(20 * 60)
    stage.behave(lambda v, live: 0.20 if v == "7" else None)
    stage.deploy("7", revision_type="String")


# The team put its alarm on the deployment group too (SAM DeploymentPreference.Alarms), with automatic rollback.
GROUP_WATCHES_THE_ALARM = {
    "alarmConfiguration": {"enabled": True, "alarms": [{"name": "checkout-5xx-rate"}]},
    "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
}


SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "bad-deploy",
            "Revision 7 fails 20% of requests; the canary rollback to 6 is healthy, so Rollguard "
            "widens it to a full rollback and the alarm recovers.",
            "resolved",
            _bad_deploy,
            expected_alias={"6": 1.0},
        ),
        Scenario(
            "not-the-deploy",
            "A dependency fails 3 minutes after revision 7 shipped; the canary slice on 6 is "
            "as bad as the rest, so Rollguard stops moving traffic and escalates.",
            "escalated",
            _not_the_deploy,
            expected_alias={"7": 1.0},
        ),
        Scenario(
            "no-recent-deploy",
            "The error rate climbs two hours after the last deployment; Rollguard records "
            "that no deploy is to blame, notifies, and closes without acting.",
            "closed_no_action",
            _no_recent_deploy,
            expected_alias={"7": 1.0},
        ),
        Scenario(
            "in-flight-canary",
            "Revision 7 fails while its own 50% canary is still shifting; Rollguard stops it with automatic "
            "rollback (StopDeployment answers Pending), CodeDeploy rolls back to 6, and the alarm recovers.",
            "resolved",
            _in_flight_canary,
            expected_alias={"6": 1.0},
        ),
        Scenario(
            "string-revision",
            "The pipeline deploys String AppSpec revisions; Rollguard's rollback names the alias's live version "
            "as CurrentVersion in the same revision type, so CodeDeploy accepts it, and the alarm recovers.",
            "resolved",
            _string_revisions,
            expected_alias={"6": 1.0},
        ),
        Scenario(
            "group-alarm",
            "The deployment group watches the same alarm and rolls back on it; Rollguard's rollback overrides the "
            "group's alarm configuration, so CodeDeploy neither stops it nor rolls it back to 7.",
            "resolved",
            _bad_deploy,
            expected_alias={"6": 1.0},
            group=GROUP_WATCHES_THE_ALARM,
        ),
    ]
}


SCENARIOS.update(
    {
        s.name: s
        for s in [
            Scenario(
                "flag-kill-switch",
                "Turning on the new-pricing flag leaks 15% errors; Rollguard turns the flag off "
                "and the alarm recovers, without rolling anything back.",
                "resolved",
                _flag_kill_switch,
                "sandbox-kill-switch.yaml",
                expected_alias={"6": 1.0},
            ),
            Scenario(
                "config-drift",
                "A configuration push sets a 50 ms timeout; Rollguard redeploys the previous "
                "configuration version and the alarm recovers.",
                "resolved",
                _config_drift,
                "sandbox-config.yaml",
                expected_alias={"6": 1.0},
            ),
            Scenario(
                "blame-the-flag",
                "A healthy release, then a flag flip that breaks checkout; revert_recent_change "
                "undoes the most recent change first — the flag — and that recovers.",
                "resolved",
                _blame_the_flag,
                "sandbox-blame.yaml",
                expected_alias={"7": 1.0},
            ),
            Scenario(
                "blame-the-deploy",
                "A harmless flag flip, then a bad release; revert_recent_change rolls the "
                "release back first and that recovers.",
                "resolved",
                _blame_the_deploy,
                "sandbox-blame.yaml",
                expected_alias={"6": 1.0},
            ),
        ]
    }
)


SCENARIOS.update(
    {
        s.name: s
        for s in [
            Scenario(
                "shadow-mode",
                "Revision 7 is bad, but the policy runs in shadow: Rollguard records what it would have rolled back, "
                "changes nothing, and escalates.",
                "escalated",
                _bad_deploy,
                "sandbox-shadow.yaml",
                expected_alias={"7": 1.0},
            ),
            Scenario(
                "paused",
                "An operator paused Rollguard; the alarm still opens an incident, the rollback is blocked and the "
                "incident escalates with the reason.",
                "escalated",
                _paused,
                expected_alias={"7": 1.0},
            ),
            Scenario(
                "approval-granted",
                "Revision 7 is bad and the policy gates the rollback on a human; on-call approves and the rollback "
                "recovers the service.",
                "resolved",
                _bad_deploy,
                "sandbox-approval.yaml",
                _decide(True, "the canary graphs agree, roll it back"),
                expected_alias={"6": 1.0},
            ),
            Scenario(
                "approval-denied",
                "Revision 7 is bad; on-call denies the gated rollback (a fix-forward is ready) and the incident "
                "escalates with the reason.",
                "escalated",
                _bad_deploy,
                "sandbox-approval.yaml",
                _decide(False, "fix-forward 7.1 is already deploying"),
                expected_alias={"7": 1.0},
            ),
            Scenario(
                "approval-timeout",
                "Revision 7 is bad; nobody answers the approval request within 15 minutes and the policy says "
                "escalate.",
                "escalated",
                _bad_deploy,
                "sandbox-approval.yaml",
                _nobody_answers,
                expected_alias={"7": 1.0},
            ),
            Scenario(
                "cooldown",
                "A second bad release lands a minute after Rollguard rolled back the first; the cooldown blocks a "
                "second automated action and the incident escalates.",
                "escalated",
                _cooldown,
                expected_alias={"8": 1.0},
            ),
        ]
    }
)


def _flag_off_while_baking(stage: Stage) -> None:
    stage.appconfig()
    stage.deploy("6")
    stage.sb.advance(45 * 60)
    stage.behave(lambda v, live: 0.15 if live.flag("new-pricing") else None)
    # A human turns the flag on with AppConfig.AllAtOnce, which bakes 10 minutes: the alarm fires while it bakes.
    document = json.loads(json.dumps(FLAGS))
    document["values"]["new-pricing"]["enabled"] = True
    stage.push("checkout-flags", document, strategy="AppConfig.AllAtOnce", settle=False)


SCENARIOS["flag-off-while-baking"] = Scenario(
    "flag-off-while-baking",
    "The new-pricing flag goes on with AppConfig.AllAtOnce and leaks 15% errors while its deployment still bakes; "
    "Rollguard stops that deployment (AppConfig rolls it back), deploys the flag off, and the alarm recovers.",
    "resolved",
    _flag_off_while_baking,
    "sandbox-kill-switch.yaml",
    expected_alias={"6": 1.0},
)


def _journal_outage(stage: Stage) -> None:
    stage.appconfig()
    stage.deploy("6")
    stage.sb.advance(45 * 60)
    # DynamoDB refuses the journal's writes (the rest of Rollguard still reaches it): the flip is neither recorded
    # nor marked as a gap, so the journal keeps its events in its dead-letter queue, and Lambda retries them.
    for operation in ("UpdateItem", "PutItem"):
        stage.sb.inject_fault(
            operation, "InternalServerError", "DynamoDB is unavailable", function="rollguard-journal", status=500
        )
    stage.behave(lambda v, live: 0.15 if live.flag("new-pricing") else None)
    stage.flip("new-pricing", True)


SCENARIOS["journal-outage"] = Scenario(
    "journal-outage",
    "The new-pricing flag goes on and leaks 15% errors while DynamoDB refuses the change journal's writes; the "
    "journal keeps the events in its dead-letter queue, and Rollguard escalates that it cannot tell what changed "
    "instead of closing with 'no change'.",
    "escalated",
    _journal_outage,
    "sandbox-kill-switch.yaml",
    expected_alias={"6": 1.0},
)


# The traffic drills: the checkout service behind checkout-alb, its HTTP:80 listener forwarding to checkout-blue
# (weight 100, serving) and checkout-green (weight 0), in three zones (moto: us-east-1b is use1-az1).
CHECKOUT_ALB = LoadBalancerSpec(name="checkout-alb")


def _bad_target_group(stage: Stage) -> None:
    stage.sb.put_alb_alarm("checkout-alb-5xx", threshold=100)
    stage.sb.advance(20 * 60)  # healthy first: the report charts 15 minutes before the alarm
    stage.behave_traffic(lambda group, zone: 0.25 if group == "checkout-blue" else None)


def _sick_zone(stage: Stage) -> None:
    stage.sb.put_alb_alarm("checkout-alb-5xx-us-east-1b", zone="us-east-1b", threshold=50)
    stage.sb.advance(20 * 60)  # healthy first: the report charts 15 minutes before the alarm
    stage.behave_traffic(lambda group, zone: 0.40 if zone == "us-east-1b" else None)


def _shift_does_not_help(stage: Stage) -> None:
    stage.sb.put_alb_alarm("checkout-alb-5xx", threshold=100)
    stage.sb.advance(20 * 60)  # healthy first: the report charts 15 minutes before the alarm
    stage.behave_traffic(lambda group, zone: 0.25)  # a dependency both pools call


SCENARIOS.update(
    {
        s.name: s
        for s in [
            Scenario(
                "bad-target-group",
                "The checkout-blue pool behind the load balancer fails 25% of requests; Rollguard shifts 10% of its "
                "traffic to checkout-green, finds that slice healthy, shifts the rest, and the alarm recovers.",
                "resolved",
                _bad_target_group,
                "sandbox-traffic.yaml",
                load_balancer=CHECKOUT_ALB,
                expected_traffic={"weights": {"checkout-green": 1.0}, "shifted_away": None},
            ),
            Scenario(
                "sick-zone",
                "Targets in us-east-1b fail 40% of requests; Rollguard shifts the load balancer away from that zone "
                "with ARC (for 2 hours), the other zones serve cleanly, and the shift is kept until it expires.",
                "resolved",
                _sick_zone,
                "sandbox-traffic.yaml",
                load_balancer=CHECKOUT_ALB,
                expected_traffic={"weights": {"checkout-blue": 1.0}, "shifted_away": "use1-az1"},
            ),
            Scenario(
                "shift-does-not-help",
                "A dependency fails 25% of requests in both pools; the 10% Rollguard shifts to checkout-green is as "
                "bad as the rest, so Rollguard moves the traffic back and escalates.",
                "escalated",
                _shift_does_not_help,
                "sandbox-traffic.yaml",
                load_balancer=CHECKOUT_ALB,
                expected_traffic={"weights": {"checkout-blue": 1.0}, "shifted_away": None},
            ),
        ]
    }
)


# The ECS drills: the payments service on cluster prod, behind payments-alb, whose HTTP:80 listener forwards to
# payments-blue (weight 100, serving payments:1) and payments-green (weight 0); task definitions payments:1..3, four
# tasks. Blue/green drills deploy it through CodeDeploy (payments/payments-prod), the rolling drill with ECS itself.
PAYMENTS_ALB = LoadBalancerSpec(
    name="payments-alb",
    target_groups=(TargetGroupSpec("payments-blue", 100), TargetGroupSpec("payments-green", 0)),
    zonal_shift=False,
)
ECS_APPLICATION, ECS_GROUP = "payments", "payments-prod"
PAYMENTS_BLUE_GREEN = EcsServiceSpec(revisions=3, controller="CODE_DEPLOY", target_group="payments-blue")
PAYMENTS_ROLLING = EcsServiceSpec(revisions=3, controller="ECS", target_group="payments-blue")


def _ecs_blue_green(stage: Stage, bad: Callable[[str, Live], float | None]) -> None:
    sb = stage.sb
    assert sb.load_balancer is not None
    cd = sb.client("codedeploy")
    cd.create_application(applicationName=ECS_APPLICATION, computePlatform="ECS")
    provision_ecs_deployment_group(
        cd,
        application=ECS_APPLICATION,
        group=ECS_GROUP,
        cluster=PAYMENTS_BLUE_GREEN.cluster,
        service=PAYMENTS_BLUE_GREEN.service,
        listener_arn=sb.load_balancer.listener_arn,
        target_groups=("payments-blue", "payments-green"),
        role_arn="arn:aws:iam::123456789012:role/codedeploy-ecs",
        termination_wait_minutes=1,
    )
    sb.put_alb_alarm("payments-bg-5xx", threshold=100)
    stage.behave(bad)
    stage.ecs_release(2)  # a good release: payments:2 on payments-green
    sb.advance(15 * 60)  # healthy first: the report charts 15 minutes before the alarm
    stage.ecs_release(3)  # the release to blame: payments:3 on payments-blue


def _ecs_bad_deploy(stage: Stage) -> None:
    _ecs_blue_green(stage, lambda label, live: 0.25 if label == "payments:3" else None)


def _ecs_not_the_deploy(stage: Stage) -> None:
    # payments:3 ships while a dependency every revision calls starts failing: going back does not help.
    _ecs_blue_green(stage, lambda label, live: None)
    stage.behave(lambda label, live: 0.25)


def _ecs_rolling_bad_deploy(stage: Stage) -> None:
    stage.sb.put_alb_alarm("payments-5xx", threshold=100)
    stage.behave(lambda label, live: 0.25 if label == "payments:3" else None)
    stage.ecs_roll(2)  # a good release
    stage.sb.advance(15 * 60)  # healthy first: the report charts 15 minutes before the alarm
    stage.ecs_roll(3)  # the release to blame: its tasks start and pass health checks, so no circuit breaker trips


SCENARIOS.update(
    {
        s.name: s
        for s in [
            Scenario(
                "ecs-bad-deploy",
                "Release payments:3 of the ECS service, deployed blue/green by CodeDeploy, fails 25% of requests; "
                "Rollguard canaries 10% back to payments:2 on the other target group, finds that slice healthy, "
                "lets CodeDeploy move the rest, and the alarm recovers.",
                "resolved",
                _ecs_bad_deploy,
                "sandbox-ecs.yaml",
                load_balancer=PAYMENTS_ALB,
                expected_traffic={"weights": {"payments-green": 1.0}, "shifted_away": None},
                ecs=PAYMENTS_BLUE_GREEN,
                expected_task_definition="payments:2",
            ),
            Scenario(
                "ecs-not-the-deploy",
                "A dependency fails 25% of the ECS service's requests just as payments:3 ships; the 10% canaried back "
                "to payments:2 is as bad as the rest, so Rollguard stops its canary (traffic back on payments:3) and "
                "escalates: the deploy is not the cause.",
                "escalated",
                _ecs_not_the_deploy,
                "sandbox-ecs.yaml",
                load_balancer=PAYMENTS_ALB,
                expected_traffic={"weights": {"payments-blue": 1.0}, "shifted_away": None},
                ecs=PAYMENTS_BLUE_GREEN,
                expected_task_definition="payments:3",
            ),
            Scenario(
                "ecs-rolling-bad-deploy",
                "Release payments:3, rolled out by ECS itself, fails 25% of requests (its tasks are healthy, so the "
                "circuit breaker does not trip); Rollguard rolls the service back to payments:2 with UpdateService, "
                "waits for ECS to replace the tasks, and the alarm recovers.",
                "resolved",
                _ecs_rolling_bad_deploy,
                "sandbox-ecs.yaml",
                load_balancer=PAYMENTS_ALB,
                expected_traffic={"weights": {"payments-blue": 1.0}, "shifted_away": None},
                ecs=PAYMENTS_ROLLING,
                expected_task_definition="payments:2",
            ),
        ]
    }
)


def _baseline_deploy(stage: Stage) -> None:
    """Revision 6 serves long enough for the anomaly band to have trained (alarm_eval: an hour's lag, 30 datapoints),
    then revision 7 fails 20% of requests."""
    stage.deploy("6")
    stage.sb.advance(100 * 60)
    stage.behave(lambda v, live: 0.20 if v == "7" else None)
    stage.deploy("7")


# The checkout service publishing its own per-revision metrics (Checkout Errors and Requests by Service and Version,
# and by Service alone), which the baseline policy's trigger and slice read.
CHECKOUT_OWN_METRICS = ServiceSpec(
    slice_metrics=SliceMetricSpec(
        namespace="Checkout",
        errors_metric="Errors",
        requests_metric="Requests",
        dimensions=(("Service", "checkout"),),
        version_dimension="Version",
    )
)

SCENARIOS["baseline-deploy"] = Scenario(
    "baseline-deploy",
    "The policy defines its trigger: the error rate (metric math) above its anomaly detection band. Revision 7 fails "
    "20% of requests, far above the band trained on revision 6's 1%; the canary back to 6 is healthy, the full "
    "rollback brings the rate back into the band, and the alarm recovers.",
    "resolved",
    _baseline_deploy,
    "sandbox-baseline.yaml",
    expected_alias={"6": 1.0},
    alarm_from_policy=True,
    service=CHECKOUT_OWN_METRICS,
)


# Across accounts (sandbox/organization.py): the central stack and the organization's member accounts, account B's
# checkout rolled back to 6 in both.
ACROSS_ACCOUNTS: dict[str, Any] = {
    "policy": "sandbox-organization.yaml",
    "expected_alias": {"6": 1.0},
    "organization": _organization,
}
SCENARIOS.update(
    {
        s.name: s
        for s in [
            Scenario(
                "member-bad-deploy",
                "Revision 7 fails in member account 222222222222; the central stack assumes that account's execution "
                "role for the incident, rolls back the canary, widens it to a full rollback, and the alarm recovers.",
                "resolved",
                _bad_deploy,
                expectations=_acted_through_member_b,
                **ACROSS_ACCOUNTS,
            ),
            Scenario(
                "member-not-allowed",
                "The same alarm fires in member account 111111111111, which no policy names, and in 999999999999, "
                "outside the organization: the first is refused and recorded, the bus refuses the second, and only "
                "account 222222222222's bad deploy is rolled back.",
                "resolved",
                _alarms_from_elsewhere,
                expectations=_refused_and_recorded,
                **ACROSS_ACCOUNTS,
            ),
        ]
    }
)


def _seconds_between(start: datetime, end_iso: str) -> float:
    return round((parse_aws_time(end_iso) - start).total_seconds(), 1)


class NoIncident(RuntimeError):
    """The alarm opened no incident; ``observed`` is what ``observe`` read of the sandbox then."""

    def __init__(self, message: str, observed: Any = None) -> None:
        super().__init__(message)
        self.observed = observed


def run_drill(name: str, on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    return run_scenario(SCENARIOS[name], on_event=on_event)


def scenario_sandbox(
    scenario: Scenario, service: ServiceSpec | None = None, policy_file: Path | None = None
) -> tuple[Sandbox, list[Stage]]:
    """The sandbox a scenario runs in, its service's behaviour read from the scenario's Stage: once the sandbox is
    entered, append ``stage_for(scenario, sb)`` to the list (the error models read it)."""
    stages: list[Stage] = []
    # The sandbox's clock is real time plus jumps, so a minute can end while it provisions, before the stage exists:
    # that minute is emitted with nothing failing (the scenario has not started).
    load_balancer = None
    if scenario.load_balancer is not None:
        load_balancer = replace(
            scenario.load_balancer,
            error_rate=lambda group, zone, at: stages[0].traffic_error_rate(group, zone, at) if stages else 0.0,
        )
    ecs = None
    if scenario.ecs is not None:
        ecs = replace(scenario.ecs, error_rate=lambda label, at: stages[0].error_rate(label, at, {}) if stages else 0.0)
    sandbox = Sandbox(
        error_model=lambda label, at, config: stages[0].error_rate(label, at, config) if stages else 0.0,
        service=service or scenario.service,
        policy_file=policy_file or REPO / "policies" / scenario.policy,
        load_balancer=load_balancer,
        ecs=ecs,
        organization=scenario.organization() if scenario.organization else None,
    )
    return sandbox, stages


def stage_for(scenario: Scenario, sb: Sandbox) -> Stage:
    return Stage(sb, scenario.group, scenario.alarm, scenario.alarm_from_policy)


def run_scenario(
    scenario: Scenario,
    service: ServiceSpec | None = None,
    prepare: Callable[[Sandbox], None] | None = None,
    policy_file: Path | None = None,
    observe: Callable[[Sandbox], Any] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` in a fresh sandbox; ``prepare`` may inject faults before the alarm fires, ``observe``
    reads the sandbox once the incident is over (its answer is the result's ``observed``); ``on_event`` is told of
    each entry of the incident's timeline as it happens (``stream_timeline``)."""
    wall = time.perf_counter()
    sandbox, stages = scenario_sandbox(scenario, service, policy_file)
    with sandbox as sb:
        stages.append(stage_for(scenario, sb))
        scenario.setup(stages[0])
        if prepare is not None:
            prepare(sb)
        if on_event is not None:
            stream_timeline(sb, stages[0].handled, on_event)
        incident_id = sb.run_until_incident(max_minutes=30, seen=stages[0].handled)
        if incident_id is None:
            raise NoIncident(
                f"drill {scenario.name}: the alarm never opened an incident", observe(sb) if observe else None
            )
        if scenario.respond is not None:
            scenario.respond(sb, incident_id)
        execution = sb.wait_for_execution(incident_id)
        sb.advance(60)  # what AWS finishes after the incident closed (a stop answered Pending) shows in the alias
        ddb = sb.client("dynamodb")
        audit = AuditLog(ddb, TABLES["AuditTable"]).for_incident(incident_id)
        incident = ddb.get_item(TableName=TABLES["IncidentsTable"], Key={"incident_id": {"S": incident_id}})["Item"]
        # The report charts the alarm's metric: read it from CloudWatch before the sandbox (and its data) goes.
        onset = alarm_onset(audit) or sb.clock.now()
        metric = read_alarm_metric(
            sb.service_client("cloudwatch"), from_item(incident)["alarm"], onset - LEAD_IN, sb.clock.now()
        )
        result = summarise(
            scenario,
            incident_id,
            execution,
            history=sb.history(incident_id),
            audit=audit,
            notifications=[n for n in sb.notifications() if incident_id in n],
            incident=incident,
            locks_left=[
                i
                for i in ddb.scan(TableName=TABLES["LocksTable"])["Items"]
                if not i["target_key"]["S"].startswith(("control#", "event#"))  # the pause switch, event ids seen
            ],
            invocations=list(sb.log.invocations),
            aws_calls=list(sb.log.aws_calls),
            wall_s=time.perf_counter() - wall,
            alias=[{"at": domain_iso(at), "routing": routing} for at, routing in sb.world.history],
        )
        result["alias_name"] = f"{sb.service.function}:{sb.service.alias}"
        if scenario.expectations is not None:
            result["expectations"] = scenario.expectations(sb, incident_id)
            result["passed"] = result["passed"] and all(result["expectations"].values())
        result["observed"] = observe(sb) if observe is not None else None
        result["expected_traffic"] = scenario.expected_traffic
        if sb.load_balancer is not None:
            weights = {name: share for name, share in sb.traffic_weights().items() if share > 0}
            result["traffic_final"] = {"weights": weights, "shifted_away": sb.shifted_away()}
            if scenario.expected_traffic is not None:
                result["passed"] = result["passed"] and result["traffic_final"] == scenario.expected_traffic
            result["traffic_history"] = traffic_history(sb)
        if sb.ecs is not None:
            result["ecs_final"] = ecs_state(sb)
            expected = scenario.expected_task_definition
            result["passed"] = result["passed"] and (expected is None or result["ecs_final"]["serving"] == [expected])
    result["incident"] = from_item(incident)
    result["metric"] = metric.model_dump(mode="json") if metric else None
    # A call the template does not grant fails the drill, as it would fail the incident in AWS.
    result["iam"] = iam_summary(sandbox.log.iam_authorized, sandbox.log.iam_denied)
    result["passed"] = result["passed"] and not result["iam"]["denied"]
    return result


def stream_timeline(sb: Sandbox, handled: set[str], on_event: Callable[[dict[str, Any]], None]) -> None:
    """Tell ``on_event`` of each entry of the incident's timeline as it happens, the entries ``render_timeline``
    interleaves by time: each audit event once its write succeeded (not those of the earlier incidents a scenario
    ran first, ``handled``), and from the first of them on, each change of who serves traffic, as ``{"at", "kind",
    "summary"}``: the Lambda alias's split (kind ``alias``) and the load balancer listener's (kind ``listener``)."""
    opened: list[bool] = []
    alias_name = f"{sb.service.function}:{sb.service.alias}"

    def audit(event: dict[str, Any]) -> None:
        if event["incident_id"] not in handled:
            opened.append(True)
            on_event(event)

    def traffic(kind: str) -> None:
        if not opened:  # a change before the incident opened (the deploy it is about) is not on its timeline
            return
        if kind == "alias":
            at, routing = sb.world.history[-1]
            summary = alias_line(alias_name, routing)
        else:
            at, balanced = sb.world.traffic.history[-1]
            summary = listener_line(listener_shares(sb, balanced))
        on_event({"at": domain_iso(at), "kind": kind, "summary": summary})

    sb.audit_watchers.append(audit)
    sb.world.watchers.append(traffic)


def listener_shares(sb: Sandbox, routing: Any) -> dict[str, float]:
    """A listener's default-action split (a load_balancer.Routing) as {target group name: share}."""
    assert sb.load_balancer is not None
    names = {arn: name for name, arn in sb.load_balancer.target_groups.items()}
    weights = routing.routes[-1][1]
    total = sum(weights.values())
    return {names.get(arn, arn): w / total for arn, w in weights.items() if total and w}


def traffic_history(sb: Sandbox) -> list[dict[str, Any]]:
    """The listener's default-action split over time ({target group name: share}), as moto's ELBv2 held it."""
    assert sb.world.traffic is not None
    return [{"at": domain_iso(at), "weights": listener_shares(sb, routing)} for at, routing in sb.world.traffic.history]


def ecs_state(sb: Sandbox) -> dict[str, Any]:
    """What the ECS service runs now: its task definition, and the task definitions serving its target groups."""
    assert sb.ecs is not None and sb.load_balancer is not None
    spec = sb.ecs.spec
    service = sb.client("ecs").describe_services(cluster=spec.cluster, services=[spec.service])["services"][0]
    now = sb.world.now()
    serving: set[str] = set()
    for group in sb.load_balancer.target_groups:
        if sb.traffic_weights().get(group, 0) > 0:
            serving |= {label for label, share in sb.ecs.serving(group, now).items() if share > 0}
    return {
        "service": f"{spec.cluster}/{spec.service}",
        "task_definition": service["taskDefinition"].rsplit("/", 1)[-1],
        "serving": sorted(serving),
    }


def _count_to_first_action(history: list[dict[str, Any]]) -> tuple[int, int]:
    transitions = invocations = 0
    for event in history:
        if event["type"].endswith("StateEntered"):
            transitions += 1
            if event["stateEnteredEventDetails"]["name"] == "Take the next remediation step":
                return transitions, invocations + 1
        if event["type"] == "LambdaFunctionScheduled":
            invocations += 1
    return transitions, invocations


def summarise(
    scenario: Scenario,
    incident_id: str,
    execution: dict[str, Any],
    history: list[dict[str, Any]],
    audit: list[dict[str, Any]],
    notifications: list[str],
    incident: dict[str, Any],
    locks_left: list[Any],
    invocations: list[dict[str, Any]],
    aws_calls: list[Any],
    wall_s: float,
    alias: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    onset_text = next((e["parameters"]["state_timestamp"] for e in audit if e["kind"] == "alarm_received"), None)
    onset = parse_aws_time(onset_text) if onset_text else parse_aws_time(audit[0]["at"])
    verdicts = [e for e in audit if e["kind"] == "verification"]
    actions = []
    for event in (e for e in audit if e["kind"] == "action"):
        p = event["parameters"]
        verdict = next(
            (v["result"] for v in verdicts if v["parameters"].get("step") == p.get("step") and v["at"] >= event["at"]),
            None,
        )
        ids = list(p.get("deployment_ids", []))
        # A stop that answered Pending: CodeDeploy's rollback id is recorded by the next verification.
        found = next(
            (
                v["parameters"].get("rollback_deployment_id")
                for v in verdicts
                if v["parameters"].get("step") == p.get("step")
            ),
            None,
        )
        if found and found not in ids:
            ids.append(found)
        actions.append(
            {
                "action": p.get("action"),
                "scope": p.get("scope"),
                "started_at": p.get("started_at"),
                "result": event["result"],
                "verdict": verdict,
                "deployment_ids": ids,
                "detail": event["summary"],
            }
        )
    outcome = incident.get("status", {}).get("S", "unknown")
    closed = next((e for e in audit if e["kind"] == "incident_closed"), None)
    recovered = next((v for v in reversed(verdicts) if v["result"] == "recovered"), None)
    transitions = sum(1 for e in history if e["type"].endswith("StateEntered"))
    to_first = _count_to_first_action(history) if actions else (None, None)
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "outcome": outcome,
        "expected_outcome": scenario.expected_outcome,
        "passed": outcome == scenario.expected_outcome
        and execution["status"] == "SUCCEEDED"
        and not locks_left
        and (scenario.expected_alias is None or (alias or [{"routing": {}}])[-1]["routing"] == scenario.expected_alias),
        "expected_alias": scenario.expected_alias,
        "incident_id": incident_id,
        "execution_status": execution["status"],
        "reason": closed["reason"] if closed else "",
        "actions": actions,
        "time_to_first_action_s": _seconds_between(onset, actions[0]["started_at"]) if actions else None,
        "time_to_recovery_s": (
            _seconds_between(onset, recovered["at"]) if recovered and outcome == "resolved" else None
        ),
        "state_transitions": transitions,
        "lambda_invocations": sum(1 for e in history if e["type"] == "LambdaFunctionScheduled"),
        "transitions_to_first_action": to_first[0],
        "invocations_to_first_action": to_first[1],
        "lock_released": not locks_left,
        "audit_events": audit,
        "notifications": notifications,
        "aws_calls": sorted({f"{fn or 'sandbox'}:{svc}:{op}" for fn, svc, op in aws_calls}),
        "wall_time_s": round(wall_s, 2),
        # The checkout:live alias over time ({version: share}), as Lambda reported it: who served the traffic.
        "alias_history": alias or [],
        "alias_final": (alias or [{"routing": {}}])[-1]["routing"],
        "execution_history": history,
    }


def format_routing(routing: dict[str, float]) -> str:
    return " · ".join(f"v{v} {share:.0%}" for v, share in sorted(routing.items(), key=lambda i: -i[1])) or "none"


def alias_line(alias_name: str, routing: dict[str, float]) -> str:
    """An alias entry's summary in the timeline: who the alias sends traffic to ({version: share})."""
    return f"{alias_name} → {format_routing(routing)}"


def listener_line(weights: dict[str, float]) -> str:
    """A listener entry's summary in the timeline: where the load balancer sends traffic ({target group: share})."""
    return " · ".join(f"{group} {share:.0%}" for group, share in sorted(weights.items())) or "no weights"


class StreamedTimeline:
    """``run_scenario(on_event=...)``: print each entry of the timeline as it happens (``stream_timeline``: the audit
    events, the alias and listener changes), in the timeline's line format, T measured from the first event seen (the
    alarm's state change when that is it, as it is in every drill).
    The events arrive inside the functions, whose stdout the sandbox redirects: write to the stream of now."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.onset: datetime | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self.onset is None:
            self.onset = timeline_onset([event])
        print(event_line(event, self.onset), file=self.stream, flush=True)


def timeline_title(name: str, description: str) -> str:
    return f"Drill {name}: {description}"


def render_timeline(result: dict[str, Any], streamed: bool = False) -> str:
    """The drill's timeline; ``streamed``: only what follows its entries once they were streamed (StreamedTimeline):
    the incident, the state at the end and the outcome."""
    audit = result["audit_events"]
    onset = timeline_onset(audit)
    mark = "PASS" if result["passed"] else "FAIL"
    incident = f"Incident {result['incident_id']}  (execution {result['execution_status']})"
    lines = ["", incident] if streamed else [timeline_title(result["scenario"], result["description"]), incident, ""]
    start = audit[0]["at"] if audit else ""
    alias_name = result.get("alias_name", "checkout:live")
    alias = [
        (a["at"], "alias", alias_line(alias_name, a["routing"]))
        for a in result.get("alias_history", [])
        if a["at"] >= start
    ]
    listener = [
        (t["at"], "listener", listener_line(t["weights"]))
        for t in result.get("traffic_history", [])
        if t["at"] >= start
    ]
    # The alias and listener entries are their changes since the incident opened, as stream_timeline tells them while
    # the drill runs: a Lambda alias that is not the drill's service (a load balancer drill's) never moves, so it has
    # none. Within one millisecond a change goes before the audit event: it happened in the call the event records,
    # and that is the order a streamed timeline prints them in.
    if not streamed:
        changes = sorted(alias + listener, key=lambda e: e[0])
        entries = sorted([*changes, *((e["at"], e["kind"], e["summary"]) for e in audit)], key=lambda e: e[0])
        lines += [timeline_line(at, kind, summary, onset) for at, kind, summary in entries]
    traffic = result.get("traffic_final")
    if traffic is not None:
        shares = " · ".join(f"{group} {share:.0%}" for group, share in sorted(traffic["weights"].items()))
        away = f"; shifted away from {traffic['shifted_away']}" if traffic["shifted_away"] else ""
        lines.append(f"  Load balancer at the end: {shares or 'no weights'}{away}")
        if result.get("ecs_final"):
            ecs = result["ecs_final"]
            lines.append(
                f"  ECS service {ecs['service']} at the end: task definition {ecs['task_definition']}; serving "
                f"{', '.join(ecs['serving']) or 'nothing'}"
            )
    if traffic is None or alias:
        lines.append(f"  Alias {alias_name} at the end: {format_routing(result.get('alias_final', {}))}")
    first = result["time_to_first_action_s"]
    recovery = result["time_to_recovery_s"]
    lines += [
        "",
        f"Outcome: {result['outcome']} (expected {result['expected_outcome']}) — {mark}",
        f"Time to first action: {first if first is not None else '—'} s   "
        f"time to recovery: {recovery if recovery is not None else '—'} s (simulated)",
        f"State transitions: {result['state_transitions']}   Lambda invocations: {result['lambda_invocations']}"
        f"   lock released: {'yes' if result['lock_released'] else 'NO'}   wall time: {result['wall_time_s']} s",
    ]
    lines += [f"{'held' if held else 'FAILED'}: {what}" for what, held in (result.get("expectations") or {}).items()]
    lines += [f"IAM denied ({d['code']}): {d['message']}" for d in result.get("iam", {}).get("denied", [])]
    return "\n".join(lines)


def summary_row(result: dict[str, Any]) -> dict[str, Any]:
    """One scenario's line of ``drill --all``'s table."""
    return {
        "scenario": result["scenario"],
        "outcome": result["outcome"],
        "expected": result["expected_outcome"],
        "passed": bool(result["passed"]),
        "wall_s": result["wall_time_s"],
    }


def render_summary(rows: list[dict[str, Any]]) -> str:
    """The table ``drill --all`` ends with: scenario, outcome, expected, PASS/FAIL, wall seconds; then a count."""
    header = ["SCENARIO", "OUTCOME", "EXPECTED", "RESULT", "WALL S"]
    table = [
        [r["scenario"], r["outcome"], r["expected"], "PASS" if r["passed"] else "FAIL", f"{r['wall_s']:.1f}"]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *table]]
    failed = sum(1 for r in rows if not r["passed"])
    lines.append(f"{len(rows) - failed} of {len(rows)} drills passed" + (f", {failed} failed" if failed else ""))
    return "\n".join(lines)


def write_out(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit-events.json").write_text(json.dumps(result["audit_events"], indent=2, default=str))
    (out / "execution-history.json").write_text(json.dumps(result["execution_history"], indent=2, default=str))
    (out / "notifications.txt").write_text("\n\n---\n\n".join(result["notifications"]))
    (out / "drill.json").write_text(json.dumps(public(result), indent=2, default=str))
    (out / "timeline.txt").write_text(render_timeline(result) + "\n")
    # What `rollguard incidents/timeline/report --from DIR` read, then the reports made from them that way.
    (out / INCIDENT_FILE).write_text(json.dumps(result["incident"], indent=2, default=str))
    if result.get("metric"):
        (out / METRIC_FILE).write_text(json.dumps(result["metric"], indent=2))
    from rollguard_cli.report import write_reports

    write_reports(out, result["incident_id"])


def public(result: dict[str, Any]) -> dict[str, Any]:
    """The --json document: everything but the bulky execution history and metric (they go to --out)."""
    return {k: v for k, v in result.items() if k not in {"execution_history", "metric"}}
