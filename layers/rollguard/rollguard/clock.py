"""The one source of "now" for the domain.

On AWS it is the wall clock. The local sandbox swaps in a virtual clock so that a drill's
verification windows pass in no real time while every timestamp stays consistent.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
_sleeper: Callable[[float], None] = time.sleep


def now() -> datetime:
    return _source()


def sleep(seconds: float) -> None:
    """Wait for AWS to make progress; in the sandbox the wait passes on the virtual clock (and counts
    towards the function's timeout there, as it does on Lambda)."""
    _sleeper(seconds)


def use(source: Callable[[], datetime], sleeper: Callable[[float], None] | None = None) -> None:
    global _source, _sleeper
    _source = source
    _sleeper = sleeper or time.sleep


def reset() -> None:
    use(lambda: datetime.now(UTC))


def iso(moment: datetime | None = None) -> str:
    """UTC timestamp with milliseconds and a Z suffix; sorts lexically."""
    moment = moment or now()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def aws_iso(value: Any) -> str | None:
    """A timestamp as boto3 returns it (datetime) or as a string, written as text; None stays None."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def parse_aws_time(text: str) -> datetime:
    """CloudWatch writes ``2019-10-02T17:04:40.989+0000``; EventBridge writes ``...Z``."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
