"""The EventBridge "CloudWatch Alarm State Change" event: what Rollguard acts on, validated and bounded.

Only what Rollguard acts on must be valid: the envelope's ``id``, ``source``, ``account``, ``region``, ``time`` and
``resources``, and the detail's ``alarmName`` and ``state`` (``value``, ``reason``, ``timestamp``). Every other field
(``version``, ``previousState``, ``configuration``, ``reasonData``, anything new) is a side field: when it is odd it
falls back to its default, because an alarm must never be dropped for a field Rollguard does not use.

Limits, from AWS's documentation:
- EventBridge, "AWS service event metadata": ``id`` is a version 4 UUID, ``account`` a 12-digit number, and only
  AWS services send a ``source`` that begins with ``aws.``.
- CloudWatch API Reference, PutMetricAlarm and MetricAlarm: ``AlarmName`` is 1 to 255 characters, UTF-8 without
  ASCII control characters; ``AlarmArn`` is at most 1,600. SetAlarmState: ``StateReason`` is at most 1,023
  characters and ``StateReasonData`` at most 4,000.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)

from rollguard.clock import parse_aws_time

__all__ = [
    "STATE_CHANGE",
    "AlarmDetail",
    "AlarmState",
    "AlarmStateChange",
    "Origin",
    "correlation_id",
    "foreign",
    "parse_aws_time",
    "shown",
]

STATE_CHANGE = "CloudWatch Alarm State Change"
SOURCE = "aws.cloudwatch"

ALARM_NAME_MAX = 255  # PutMetricAlarm AlarmName: 1-255 characters
ALARM_ARN_MAX = 1600  # MetricAlarm AlarmArn: at most 1,600 characters
REASON_MAX = 1023  # SetAlarmState StateReason: at most 1,023 characters (longer is cut, not refused)
REASON_DATA_MAX = 4000  # SetAlarmState StateReasonData: at most 4,000 characters
EVENT_ID_MAX = 128  # EventBridge ids are UUIDs (36 characters); room for other producers, well under a key's size
TIMESTAMP_MAX = 64

_EVENT_ID = re.compile(rf"^[!-~]{{1,{EVENT_ID_MAX}}}$")  # printable ASCII, no space
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def shown(value: Any, limit: int = 80) -> str:
    """An untrusted value for a reason or a log line: quoted, escaped (no lone surrogate gets through) and short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utf8(value: Any) -> Any:
    """Refuse what DynamoDB and a JSON response cannot carry: a lone surrogate is not UTF-8 (checked before the
    type, so the reason says so rather than pydantic's "unable to parse raw data")."""
    if isinstance(value, str) and (bad := _SURROGATE.search(value)):
        raise ValueError(f"not valid UTF-8: a lone surrogate at character {bad.start()}")
    return value


def _no_control(text: str) -> str:
    if bad := _CONTROL.search(text):
        raise ValueError(f"ASCII control character {bad.group()!r} at {bad.start()}: CloudWatch allows none in a name")
    return text


def _aware_time(text: str) -> str:
    try:
        moment = parse_aws_time(text)
    except ValueError:
        raise ValueError("not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a time zone (Z or +0000)")
    if not 1970 <= moment.year <= 9998:  # later steps subtract and add days to it
        raise ValueError(f"year {moment.year} is out of range")
    return text


def _clean_reason(text: str) -> str:
    """Display text only: cut to CloudWatch's own limit and replace lone surrogates rather than refuse the alarm."""
    return _SURROGATE.sub("\ufffd", text[:REASON_MAX])


def _side(default: Callable[[], Any]) -> WrapValidator:
    """A side field that does not validate takes its default instead of rejecting the event."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return default()

    return WrapValidator(validate)


UTF8 = BeforeValidator(_utf8)
Timestamp = Annotated[str, Field(max_length=TIMESTAMP_MAX), UTF8, AfterValidator(_aware_time)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AlarmState(_Model):
    value: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: str = ""
    reasonData: Annotated[str | None, Field(max_length=REASON_DATA_MAX), _side(lambda: None)] = None  # noqa: N815 - AWS's name
    timestamp: Timestamp

    _reason = field_validator("reason", mode="after")(_clean_reason)

    @property
    def at(self) -> datetime:
        return parse_aws_time(self.timestamp)


class _SideState(_Model):
    """previousState: nothing Rollguard decides on, so any part of it may be odd."""

    value: str | None = None
    reason: str | None = None
    timestamp: str | None = None


class AlarmDetail(_Model):
    alarmName: Annotated[str, Field(min_length=1, max_length=ALARM_NAME_MAX), UTF8, AfterValidator(_no_control)]  # noqa: N815
    state: AlarmState
    previousState: Annotated[_SideState | None, _side(lambda: None)] = None  # noqa: N815
    configuration: Annotated[dict[str, Any], _side(dict)] = Field(default_factory=dict)

    @property
    def composite(self) -> bool:
        return "alarmRule" in self.configuration

    def triggering_alarms(self) -> list[str]:
        """For a composite alarm: the child alarm ARNs that tripped it (from reasonData)."""
        try:
            data = json.loads(self.state.reasonData or "{}")
        except json.JSONDecodeError:
            return []
        found = data.get("triggeringAlarms", []) if isinstance(data, dict) else []
        return [str(t.get("arn", "")) for t in found if isinstance(t, dict)] if isinstance(found, list) else []


class AlarmStateChange(_Model):
    """The envelope and detail, as EventBridge delivers them; ``version`` and ``replay-name`` are not read."""

    id: Annotated[str, Field(min_length=1, max_length=EVENT_ID_MAX, pattern=_EVENT_ID.pattern), UTF8]
    detail_type: str = Field(alias="detail-type")
    source: Annotated[str, Field(max_length=64), UTF8]
    account: Annotated[str, Field(pattern=r"^[0-9]{12}$")]
    region: Annotated[str, Field(max_length=32), UTF8]
    time: Timestamp
    resources: list[Annotated[str, Field(max_length=ALARM_ARN_MAX), UTF8]] = Field(default_factory=list, max_length=10)
    detail: AlarmDetail

    @property
    def alarm_arn(self) -> str:
        return self.resources[0] if self.resources else ""


def correlation_id(raw: Any) -> str | None:
    """The event's id for every log line of its invocation, or None when it is not an id (a log line carrying a lone
    surrogate cannot be written, and a huge one would repeat in every line)."""
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and _EVENT_ID.fullmatch(value) else None


@dataclass(frozen=True)
class Origin:
    """Where this stack runs: it acts on alarms of its own account and region, sent by CloudWatch."""

    account: str
    region: str
    partition: str = "aws"

    @classmethod
    def of_function(cls, function_arn: str, region: str) -> "Origin":
        """From the Lambda context's ``invoked_function_arn``: arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME."""
        parts = function_arn.split(":")
        return cls(account=parts[4], region=region, partition=parts[1])


def foreign(
    event: AlarmStateChange, origin: Origin, elsewhere: Callable[[str, str], str | None] | None = None
) -> str | None:
    """Why ``event`` is not this stack's to act on, in one line naming the field and both values; None if it is.

    An alarm of another account or region is this stack's only when ``elsewhere(account, region)`` answers None (a
    member account a policy names: rollguard.accounts.refused); its answer otherwise says why not. EventBridge keeps
    the ``account`` and ``region`` of the event's origin when a rule forwards it to another account's bus ("Sending
    and receiving events between AWS accounts in Amazon EventBridge")."""
    if event.source != SOURCE:
        return f"event {shown(event.id)}: source {shown(event.source)} is not this stack's {shown(SOURCE)}"
    if (event.account, event.region) != (origin.account, origin.region):
        why = "no member accounts" if elsewhere is None else elsewhere(event.account, event.region)
        if why is not None:
            field, got, expected = (
                ("account", event.account, origin.account)
                if event.account != origin.account
                else ("region", event.region, origin.region)
            )
            return f"event {shown(event.id)}: {field} {shown(got)} is not this stack's {shown(expected)}: {why}"
    name = event.detail.alarmName
    for i, arn in enumerate(event.resources):
        # arn:PARTITION:cloudwatch:REGION:ACCOUNT:alarm:NAME (the name may itself contain ':').
        parts = arn.split(":", 6)
        if parts[:1] != ["arn"] or parts[2:] != ["cloudwatch", event.region, event.account, "alarm", name]:
            return f"event {shown(event.id)}: resources[{i}] {shown(arn)} is not alarm {shown(name)} of this stack"
    return None
