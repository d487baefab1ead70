"""The change journal: what changed in a policy's scope, when, and by whom.

EventBridge feeds it CodeDeploy deployment state changes and AppConfig deployment events; at incident
time Rollguard reads the changes that started before the alarm, newest first.
"""

from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from rollguard import clock
from rollguard.adapters.aws_errors import translate
from rollguard.audit import from_item, to_item
from rollguard.clock import parse_aws_time

ChangeKind = Literal["deploy", "flag", "config"]
CODEDEPLOY_EVENT = "CodeDeploy Deployment State-change Notification"
APPCONFIG_EVENTS = {
    "On Deployment Start": "DEPLOYING",
    "On Deployment Complete": "COMPLETE",
    "On Deployment Rollback": "ROLLED_BACK",
}
NOT_LIVE = {"STOP", "FAILURE", "ROLLED_BACK"}  # a change that was undone cannot be to blame
FEATURE_FLAGS = "AWS.AppConfig.FeatureFlags"


class Change(BaseModel):
    scope_key: str
    change_id: str
    kind: ChangeKind
    at: str
    state: str
    region: str
    by: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def started(self) -> datetime:
        return parse_aws_time(self.at)

    def describe(self) -> str:
        d = self.detail
        if self.kind == "deploy":
            if "revision" in d:  # from CodeDeploy's API: the revision and status are known
                return f"deployment {d['deployment_id']} (revision {d['revision']}, {d.get('status', self.state)})"
            return f"deployment {d.get('deployment_id')} of {self.scope_key.removeprefix('codedeploy:')}"
        what = "flag profile" if self.kind == "flag" else "configuration profile"
        return (
            f"{what} {d.get('profile')} version {d.get('version')} deployed to {d.get('environment')} "
            f"in {self.region} (deployment {d.get('deployment_number')})"
        )


def codedeploy_scope(application: str, group: str) -> str:
    return f"codedeploy:{application}/{group}"


def appconfig_scope(application: str, environment: str) -> str:
    return f"appconfig:{application}/{environment}"


def change_from_event(event: dict[str, Any], profile_type: Any) -> Change | None:
    """The change an EventBridge event reports, or None for events the journal does not keep.

    ``profile_type(region, application_id, profile_id)`` tells a flag profile from a freeform one.
    """
    detail, kind_of_event = event.get("detail") or {}, event.get("detail-type")
    at = clock.iso(parse_aws_time(event["time"]))
    if event.get("source") == "aws.codedeploy" and kind_of_event == CODEDEPLOY_EVENT:
        return Change(
            scope_key=codedeploy_scope(detail["application"], detail["deploymentGroup"]),
            change_id=detail["deploymentId"],
            kind="deploy",
            at=at,
            state=detail["state"],
            region=detail.get("region") or event["region"],
            by="codedeploy",
            detail={"deployment_id": detail["deploymentId"]},
        )
    if event.get("source") == "aws.appconfig" and kind_of_event in APPCONFIG_EVENTS:
        app, env, profile = detail["Application"], detail["Environment"], detail["ConfigurationProfile"]
        region = event["region"]
        kind: ChangeKind = "flag" if profile_type(region, app["Id"], profile["Id"]) == FEATURE_FLAGS else "config"
        return Change(
            scope_key=appconfig_scope(app["Name"], env["Name"]),
            change_id=f"{region}:{env['Id']}:{detail['DeploymentNumber']}",
            kind=kind,
            at=at,
            state=APPCONFIG_EVENTS[kind_of_event],
            region=region,
            by="appconfig",
            detail={
                "application": app["Name"],
                "application_id": app["Id"],
                "environment": env["Name"],
                "environment_id": env["Id"],
                "profile": profile["Name"],
                "profile_id": profile["Id"],
                "version": str(detail["ConfigurationVersion"]),
                "deployment_number": detail["DeploymentNumber"],
            },
        )
    return None


class Journal:
    def __init__(self, dynamodb: Any, table: str):
        self._db = dynamodb
        self._table = table

    def record(self, change: Change) -> None:
        """Insert or update by (scope, change id): the first event fixes when it started, the last its state."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"scope_key": {"S": change.scope_key}, "change_id": {"S": change.change_id}},
                UpdateExpression=(
                    "SET #state = :state, updated_at = :now, #kind = :kind, #region = :region, "
                    "#at = if_not_exists(#at, :at), #by = if_not_exists(#by, :by), "
                    "detail = if_not_exists(detail, :detail)"
                ),
                ExpressionAttributeNames={
                    "#state": "state",
                    "#kind": "kind",
                    "#at": "at",
                    "#by": "by",
                    "#region": "region",
                },
                ExpressionAttributeValues=to_item(
                    {
                        ":state": change.state,
                        ":now": clock.iso(),
                        ":kind": change.kind,
                        ":region": change.region,
                        ":at": change.at,
                        ":by": change.by,
                        ":detail": change.detail,
                    }
                ),
            )
        except ClientError as exc:
            raise translate(exc, f"recording change {change.change_id} in {self._table}") from exc

    def changes(self, scope_keys: list[str], since: str, until: str) -> list[Change]:
        """Live changes in any of the scopes that started in [since, until], newest first."""
        found: list[Change] = []
        for scope in scope_keys:
            try:
                pages = self._db.get_paginator("query").paginate(
                    TableName=self._table,
                    IndexName="by_time",
                    KeyConditionExpression="scope_key = :s AND #at BETWEEN :a AND :b",
                    ExpressionAttributeNames={"#at": "at"},
                    ExpressionAttributeValues={":s": {"S": scope}, ":a": {"S": since}, ":b": {"S": until}},
                )
                for page in pages:
                    found.extend(Change.model_validate(from_item(item)) for item in page["Items"])
            except ClientError as exc:
                raise translate(exc, f"reading changes of {scope} from {self._table}") from exc
        return sorted((c for c in found if c.state not in NOT_LIVE), key=lambda c: c.at, reverse=True)


def profile_type_from(appconfig_client_for: Any) -> Any:
    """A ``profile_type(region, application_id, profile_id)`` reading GetConfigurationProfile."""

    def profile_type(region: str, application_id: str, profile_id: str) -> str:
        try:
            profile = appconfig_client_for(region).get_configuration_profile(
                ApplicationId=application_id, ConfigurationProfileId=profile_id
            )
        except ClientError as exc:
            raise translate(
                exc, f"reading configuration profile {profile_id}", frozenset({"ResourceNotFoundException"})
            ) from exc
        return str(profile.get("Type", "AWS.Freeform"))

    return profile_type


class JournalResult(BaseModel):
    status: Literal["recorded", "ignored"]
    reason: str
    change: Change | None = None


def record_event(event: Any, journal: Journal, profile_type: Any) -> JournalResult:
    """One EventBridge event in: the change recorded, or why the event was ignored."""
    if not isinstance(event, dict) or "detail" not in event or "time" not in event:
        return JournalResult(status="ignored", reason="not an EventBridge event with a time and a detail")
    try:
        change = change_from_event(event, profile_type)
    except KeyError as exc:
        return JournalResult(status="ignored", reason=f"{event.get('detail-type')} event lacks {exc}")
    if change is None:
        return JournalResult(
            status="ignored", reason=f"{event.get('source')} / {event.get('detail-type')} is not a change"
        )
    journal.record(change)
    return JournalResult(status="recorded", reason=f"{change.kind} {change.change_id} {change.state}", change=change)
