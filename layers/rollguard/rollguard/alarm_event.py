"""The EventBridge "CloudWatch Alarm State Change" event, parsed with Powertools' parser."""

import json
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from rollguard.clock import parse_aws_time

__all__ = ["STATE_CHANGE", "AlarmDetail", "AlarmState", "AlarmStateChange", "parse_aws_time"]

STATE_CHANGE = "CloudWatch Alarm State Change"


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: str = ""
    reasonData: str | None = None  # noqa: N815 - AWS's field name
    timestamp: str

    @property
    def at(self) -> datetime:
        return parse_aws_time(self.timestamp)


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    alarmName: str = Field(min_length=1)  # noqa: N815
    state: AlarmState
    previousState: AlarmState | None = None  # noqa: N815
    configuration: dict[str, Any] = Field(default_factory=dict)

    @property
    def composite(self) -> bool:
        return "alarmRule" in self.configuration

    def triggering_alarms(self) -> list[str]:
        """For a composite alarm: the child alarm ARNs that tripped it (from reasonData)."""
        try:
            data = json.loads(self.state.reasonData or "{}")
        except json.JSONDecodeError:
            return []
        return [t.get("arn", "") for t in data.get("triggeringAlarms", []) if isinstance(t, dict)]


class AlarmStateChange(EventBridgeModel):
    detail: AlarmDetail  # type: ignore[assignment]
