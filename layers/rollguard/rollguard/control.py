"""The pause switch: one item in the locks table. While paused, alarms still open incidents and people are
told, but no action runs."""

from typing import Any

from rollguard import clock
from rollguard.adapters.aws_errors import AWS_FAILURES, translate
from rollguard.adapters.dynamo import from_item, to_item

PAUSE_KEY = "control#pause"


class Control:
    def __init__(self, dynamodb: Any, locks_table: str):
        self._db = dynamodb
        self._table = locks_table

    def pause(self, reason: str, who: str) -> dict[str, Any]:
        item = {"target_key": PAUSE_KEY, "reason": reason or "no reason given", "by": who, "at": clock.iso()}
        try:
            self._db.put_item(TableName=self._table, Item=to_item(item))
        except AWS_FAILURES as exc:
            raise translate(exc, f"pausing Rollguard in {self._table}") from exc
        return item

    def resume(self) -> bool:
        """True if Rollguard was paused."""
        try:
            old = self._db.delete_item(
                TableName=self._table, Key={"target_key": {"S": PAUSE_KEY}}, ReturnValues="ALL_OLD"
            ).get("Attributes")
        except AWS_FAILURES as exc:
            raise translate(exc, f"resuming Rollguard in {self._table}") from exc
        return old is not None

    def paused(self) -> dict[str, Any] | None:
        """The pause (reason, by, at) or None."""
        try:
            item = self._db.get_item(
                TableName=self._table, Key={"target_key": {"S": PAUSE_KEY}}, ConsistentRead=True
            ).get("Item")
        except AWS_FAILURES as exc:
            raise translate(exc, f"reading the pause switch in {self._table}") from exc
        return from_item(item) if item else None
