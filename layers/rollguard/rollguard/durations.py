"""Human durations in policies: ``90s``, ``5m``, ``1h``, ``1h30m``."""

import re

_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONGEST_TEXT = 32  # '1d23h59m59s' is 11; longer is a mistake, and its digits would only feed int()


def _quoted(value: object) -> str:
    """The value as written, cut short: an error line stays one readable line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises ValueError naming the accepted form."""
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string such as '90s', '5m' or '1h', not {_quoted(text)}")
    compact = text.strip().lower()
    parts = _PART.findall(compact) if len(compact) <= _LONGEST_TEXT else []
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(
            f"invalid duration {_quoted(text)}: use a number and a unit (s, m, h, d), e.g. '90s', '5m', '1h30m'"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"invalid duration {_quoted(text)}: must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
