"""A virtual clock: real time keeps running, and the sandbox can jump it forward (a Wait state, a
scenario's "ten minutes later"), so verification windows cost no real time."""

import threading
from datetime import UTC, datetime, timedelta
from time import monotonic


class VirtualClock:
    def __init__(self, start: datetime | None = None):
        self._start = (start or datetime.now(UTC)).replace(microsecond=0)
        self._origin = monotonic()
        self._jumped = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=monotonic() - self._origin + self._jumped)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._jumped += seconds
