"""The change journal: what changed in a policy's scope, when, and by whom.

EventBridge feeds it CodeDeploy deployment state changes, ECS service deployment state changes and AppConfig
deployment events; at incident time Rollguard reads the changes that started before the alarm, newest first.

Nothing is dropped silently. An event the journal cannot record leaves a *gap* item in its scope (resolved when a
retry records the event), the function fails so that Lambda retries it and, after its retries, dead-letters it.
When even the gap cannot be written, the journal sends the event to its dead-letter queue itself. Assess reads
both (``Journal.window``): open gaps in the window, or anything in the dead-letter queue, mean the window may be
missing changes.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError
from pydantic import BaseModel, Field

from rollguard import clock
from rollguard.accounts import journal_scope
from rollguard.adapters.aws_errors import AWS_FAILURES, error_code, translate
from rollguard.adapters.dynamo import from_item, to_item
from rollguard.clock import parse_aws_time
from rollguard.errors import ChangeNotRecorded, RollguardError

ChangeKind = Literal["deploy", "flag", "config"]
CODEDEPLOY_EVENT = "CodeDeploy Deployment State-change Notification"
ECS_EVENT = "ECS Deployment State Change"  # "Amazon ECS service deployment state change events"
APPCONFIG_EVENTS = {
    "On Deployment Start": "DEPLOYING",
    "On Deployment Complete": "COMPLETE",
    "On Deployment Rollback": "ROLLED_BACK",
}
NOT_LIVE = {"STOP", "FAILURE", "ROLLED_BACK"}  # a change that was undone cannot be to blame
FEATURE_FLAGS = "AWS.AppConfig.FeatureFlags"
GAP = "gap#"  # change_id prefix of a gap item: gap#<EventBridge event id>
CONDITION_FAILED = "ConditionalCheckFailedException"


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


def ecs_scope(service_arn: str) -> str:
    """``ecs:<cluster>/<service>`` from a service ARN (arn:aws:ecs:<region>:<account>:service/<cluster>/<service>); a
    service ARN in the old short format (service/<service>) names no cluster, and its scope says so: ``ecs:?/…``."""
    parts = service_arn.split(":service/", 1)[1].split("/")
    return f"ecs:{parts[0]}/{parts[1]}" if len(parts) == 2 else f"ecs:?/{parts[-1]}"


def scope_of(event: dict[str, Any], home_account: str | None = None) -> tuple[str, str] | None:
    """(scope, region) of an event the journal keeps, read from the event alone so that a gap can be marked
    whatever fails later; None for events the journal does not keep. An event of another account than
    ``home_account`` (a member account's, forwarded) has that account in its scope (accounts.journal_scope)."""
    detail, kind_of_event = event.get("detail") or {}, event.get("detail-type")
    found: tuple[str, str] | None = None
    if event.get("source") == "aws.codedeploy" and kind_of_event == CODEDEPLOY_EVENT:
        found = (
            codedeploy_scope(detail["application"], detail["deploymentGroup"]),
            detail.get("region") or event["region"],
        )
    elif event.get("source") == "aws.appconfig" and kind_of_event in APPCONFIG_EVENTS:
        found = appconfig_scope(detail["Application"]["Name"], detail["Environment"]["Name"]), event["region"]
    elif event.get("source") == "aws.ecs" and kind_of_event == ECS_EVENT:
        found = ecs_scope(event["resources"][0]), event["region"]
    if found is None:
        return None
    return journal_scope(found[0], member_account_of(event, home_account)), found[1]


def member_account_of(event: dict[str, Any], home_account: str | None) -> str | None:
    """The event's account when it is not the stack's own (None when the stack's account is not known)."""
    account = event.get("account")
    return str(account) if home_account is not None and account and account != home_account else None


def change_from_event(event: dict[str, Any], profile_type: Any, home_account: str | None = None) -> Change | None:
    """The change an EventBridge event reports, or None for events the journal does not keep.

    ``profile_type(region, application_id, profile_id)`` tells a flag profile from a freeform one; for a member
    account's profile it is asked with ``account=`` (only that account can read it). The change's scope is
    scope_of's.
    """
    member_account = member_account_of(event, home_account)
    detail, kind_of_event = event.get("detail") or {}, event.get("detail-type")
    at = clock.iso(parse_aws_time(event["time"]))
    if event.get("source") == "aws.codedeploy" and kind_of_event == CODEDEPLOY_EVENT:
        return Change(
            scope_key=journal_scope(codedeploy_scope(detail["application"], detail["deploymentGroup"]), member_account),
            change_id=detail["deploymentId"],
            kind="deploy",
            at=at,
            state=detail["state"],
            region=detail.get("region") or event["region"],
            by="codedeploy",
            detail={"deployment_id": detail["deploymentId"]},
        )
    if event.get("source") == "aws.ecs" and kind_of_event == ECS_EVENT:
        return Change(
            scope_key=journal_scope(ecs_scope(event["resources"][0]), member_account),
            change_id=detail["deploymentId"],  # ecs-svc/…: DescribeServices' id of the deployment
            kind="deploy",
            at=at,
            state=detail["eventName"].removeprefix("SERVICE_DEPLOYMENT_"),  # IN_PROGRESS, COMPLETED, FAILED
            region=event["region"],
            by="ecs",
            detail={"deployment_id": detail["deploymentId"], "reason": detail.get("reason", "")},
        )
    if event.get("source") == "aws.appconfig" and kind_of_event in APPCONFIG_EVENTS:
        app, env, profile = detail["Application"], detail["Environment"], detail["ConfigurationProfile"]
        region = event["region"]
        where = {} if member_account is None else {"account": member_account}
        kind: ChangeKind = (
            "flag" if profile_type(region, app["Id"], profile["Id"], **where) == FEATURE_FLAGS else "config"
        )
        return Change(
            scope_key=journal_scope(appconfig_scope(app["Name"], env["Name"]), member_account),
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


class Gap(BaseModel):
    """An event the journal received and could not record: until a retry records it, a change in its scope at about
    its time may be missing."""

    scope_key: str
    change_id: str  # GAP + the EventBridge event id, the same on every retry of the event
    kind: Literal["gap"] = "gap"
    at: str  # the event's time: the window it may leave incomplete
    state: Literal["open", "resolved"] = "open"
    region: str
    detail: dict[str, Any] = Field(default_factory=dict)  # the event (id, detail-type) and the error


class Completeness(BaseModel):
    """Whether the journal may be missing changes between ``since`` and ``until``, and why."""

    since: str
    until: str
    gaps: list[Gap] = Field(default_factory=list)  # open gaps of the scopes in the window
    dead_letters: int = 0  # events in the journal's dead-letter queue, of any scope and time

    @property
    def complete(self) -> bool:
        return not self.gaps and not self.dead_letters

    def describe(self) -> str:
        why = []
        if self.gaps:
            scopes = ", ".join(sorted({g.scope_key for g in self.gaps}))
            why.append(f"{_count(len(self.gaps), 'event')} of {scopes} could not be recorded")
        if self.dead_letters:
            why.append(f"{_count(self.dead_letters, 'message')} in the journal's dead-letter queue")
        return f"the change journal may be missing events between {self.since} and {self.until} ({'; '.join(why)})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class JournalWindow(BaseModel):
    changes: list[Change]  # live, newest first
    completeness: Completeness


def gap_id(event: dict[str, Any]) -> str:
    """The gap's key: the event's id, which Lambda's and EventBridge's retries keep."""
    event_id = event.get("id") or hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()
    return f"{GAP}{event_id}"


class DeadLetters:
    """The journal's dead-letter queue. Lambda sends an event there after its retries; the journal sends one itself
    on each attempt that could mark no gap, so an event may be there more than once (replaying it is idempotent).
    Its depth is the health record Assess reads: any message may be a change, of any scope and time."""

    def __init__(self, sqs: Callable[[], Any], queue_url: str):
        self._sqs = sqs  # a client factory: only Assess and the journal's failures need SQS, not every cold start
        self._url = queue_url

    def send(self, event: dict[str, Any], reason: str) -> None:
        try:
            self._sqs().send_message(
                QueueUrl=self._url,
                MessageBody=json.dumps(event, default=str),
                MessageAttributes={"Reason": {"DataType": "String", "StringValue": reason[:1024]}},
            )
        except AWS_FAILURES as exc:
            raise translate(exc, f"dead-lettering event {event.get('id')}") from exc

    def waiting(self) -> int:
        """Messages in the queue, visible or being looked at (an operator replaying them has not finished)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            found = self._sqs().get_queue_attributes(QueueUrl=self._url, AttributeNames=names)["Attributes"]
        except AWS_FAILURES as exc:
            raise translate(exc, "reading the change journal's dead-letter queue") from exc
        return sum(int(found.get(name, 0)) for name in names)


class Journal:
    def __init__(self, dynamodb: Any, table: str, dead_letters: DeadLetters | None = None):
        self._db = dynamodb
        self._table = table
        self.dead_letters = dead_letters

    def _key(self, scope_key: str, change_id: str) -> dict[str, Any]:
        return {"scope_key": {"S": scope_key}, "change_id": {"S": change_id}}

    def _conditional(self, doing: str, **request: Any) -> bool:
        """One conditional write: True if made, False if its condition failed (the caller says why that is fine)."""
        write = self._db.update_item if "UpdateExpression" in request else self._db.put_item
        try:
            write(TableName=self._table, **request)
        except AWS_FAILURES as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise translate(exc, f"{doing} in {self._table}") from exc
        return True

    def record(self, change: Change) -> None:
        """Insert or update by (scope, change id): the earliest event fixes when it started, the latest its state.
        Retries deliver events late and out of order: an older event never overwrites a newer state."""
        recorded = self._conditional(
            f"recording change {change.change_id}",
            Key=self._key(change.scope_key, change.change_id),
            UpdateExpression=(
                "SET #state = :state, state_at = :at, updated_at = :now, #kind = :kind, #region = :region, "
                "#at = if_not_exists(#at, :at), #by = if_not_exists(#by, :by), "
                "detail = if_not_exists(detail, :detail)"
            ),
            ConditionExpression="attribute_not_exists(state_at) OR state_at <= :at",
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
        if not recorded:  # a newer state is already there; this older event may still say when it started
            self._conditional(
                f"recording when change {change.change_id} started",
                Key=self._key(change.scope_key, change.change_id),
                UpdateExpression="SET #at = :at",
                ConditionExpression="#at > :at",  # failed: it started no earlier than recorded, nothing to do
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":at": {"S": change.at}},
            )

    def mark_gap(self, gap: Gap) -> None:
        """Write the gap once: a retry of the same event finds it there (condition failed), which is fine."""
        self._conditional(
            f"marking gap {gap.change_id}",
            Item=to_item({**gap.model_dump(mode="json"), "opened_at": clock.iso()}),
            ConditionExpression="attribute_not_exists(change_id)",
        )

    def resolve_gap(self, scope_key: str, change_id: str) -> None:
        """The event is recorded now: its gap, if one is open, no longer makes the window incomplete. Usually
        there is none (condition failed), which is fine."""
        self._conditional(
            f"resolving gap {change_id}",
            Key=self._key(scope_key, change_id),
            UpdateExpression="SET #state = :resolved, resolved_at = :now",
            ConditionExpression="#state = :open",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item({":resolved": "resolved", ":open": "open", ":now": clock.iso()}),
        )

    def _items(self, scope_keys: list[str], since: str, until: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
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
                    found.extend(from_item(item) for item in page["Items"])
            except AWS_FAILURES as exc:
                raise translate(exc, f"reading changes of {scope} from {self._table}") from exc
        return found

    def changes(self, scope_keys: list[str], since: str, until: str) -> list[Change]:
        """Live changes in any of the scopes that started in [since, until], newest first."""
        return self.window(scope_keys, since, until, dead_letters=False).changes

    def window(self, scope_keys: list[str], since: str, until: str, dead_letters: bool = True) -> JournalWindow:
        """The live changes of [since, until], and whether the journal may be missing some: open gaps in the
        window, or (with ``dead_letters``) events waiting in the dead-letter queue."""
        items = self._items(scope_keys, since, until)
        changes = [Change.model_validate(i) for i in items if not str(i["change_id"]).startswith(GAP)]
        gaps = [Gap.model_validate(i) for i in items if str(i["change_id"]).startswith(GAP)]
        waiting = self.dead_letters.waiting() if dead_letters and self.dead_letters else 0
        return JournalWindow(
            changes=sorted((c for c in changes if c.state not in NOT_LIVE), key=lambda c: c.at, reverse=True),
            completeness=Completeness(
                since=since, until=until, gaps=[g for g in gaps if g.state == "open"], dead_letters=waiting
            ),
        )

    def not_recorded(self, event: dict[str, Any], scope: tuple[str, str], failure: Exception) -> ChangeNotRecorded:
        """Leave a durable marker for an event that could not be recorded, and the error to fail with (so that
        Lambda retries the event): a gap item, else the event in the dead-letter queue."""
        what = f"{event.get('detail-type')} event {event.get('id')} of {scope[0]}"
        gap = Gap(
            scope_key=scope[0],
            change_id=gap_id(event),
            at=clock.iso(parse_aws_time(event["time"])),
            region=scope[1],
            detail={"event_id": event.get("id"), "detail_type": event.get("detail-type"), "error": str(failure)},
        )
        try:
            self.mark_gap(gap)
            return ChangeNotRecorded(f"{what} not recorded ({failure}); its gap is marked in the journal")
        except (RollguardError, BotoCoreError) as gap_failure:
            unmarked = f"{what} not recorded ({failure}) and its gap not marked ({gap_failure})"
        if self.dead_letters is None:
            return ChangeNotRecorded(f"{unmarked}; no dead-letter queue is configured")
        try:
            self.dead_letters.send(event, unmarked)
        except (RollguardError, BotoCoreError) as dlq_failure:
            return ChangeNotRecorded(f"{unmarked}; nor dead-lettered ({dlq_failure}): Lambda's retries remain")
        return ChangeNotRecorded(f"{unmarked}; the event is in the journal's dead-letter queue")


def profile_type_from(appconfig_client_for: Any) -> Any:
    """A ``profile_type(region, application_id, profile_id, account=None)`` reading GetConfigurationProfile with
    ``appconfig_client_for(region, account)``'s client (account None: the stack's own)."""

    def profile_type(region: str, application_id: str, profile_id: str, account: str | None = None) -> str:
        try:
            profile = appconfig_client_for(region, account).get_configuration_profile(
                ApplicationId=application_id, ConfigurationProfileId=profile_id
            )
        except AWS_FAILURES as exc:
            raise translate(
                exc, f"reading configuration profile {profile_id}", frozenset({"ResourceNotFoundException"})
            ) from exc
        return str(profile.get("Type", "AWS.Freeform"))

    return profile_type


class JournalResult(BaseModel):
    status: Literal["recorded", "ignored"]
    reason: str
    change: Change | None = None


def record_event(event: Any, journal: Journal, profile_type: Any, home_account: str | None = None) -> JournalResult:
    """One EventBridge event in: the change recorded, or why the event was ignored. An event that cannot be
    recorded raises ChangeNotRecorded after leaving its marker, so that Lambda retries it. ``home_account``: the
    stack's (the handler's function ARN says it); a member account's changes are journalled under that account."""
    if not isinstance(event, dict) or "detail" not in event or "time" not in event:
        return JournalResult(status="ignored", reason="not an EventBridge event with a time and a detail")
    try:
        scope = scope_of(event, home_account)
    except KeyError as exc:
        return _lacks(event, exc)
    if scope is None:
        return JournalResult(
            status="ignored", reason=f"{event.get('source')} / {event.get('detail-type')} is not a change"
        )
    try:
        change = change_from_event(event, profile_type, home_account)
        assert change is not None  # scope_of and change_from_event keep the same events
        journal.record(change)
        journal.resolve_gap(change.scope_key, gap_id(event))
    except KeyError as exc:
        return _lacks(event, exc)
    except (RollguardError, BotoCoreError) as exc:  # the profile's type could not be read, or the write failed
        raise journal.not_recorded(event, scope, exc) from exc
    return JournalResult(status="recorded", reason=f"{change.kind} {change.change_id} {change.state}", change=change)


def _lacks(event: dict[str, Any], missing: KeyError) -> JournalResult:
    return JournalResult(status="ignored", reason=f"{event.get('detail-type')} event lacks {missing}")
