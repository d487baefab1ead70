"""Flag hygiene: the ``AWS.AppConfig.FeatureFlags`` document, Rollguard's metadata attributes, stale flags.

A flag's hygiene metadata are ordinary AppConfig flag attributes, so they travel with the flag and the
AppConfig console shows them: ``owner``, ``purpose``, ``type`` (release | operational | experiment |
kill_switch), ``expires`` (an ISO date, the last day the flag may live) and, for profiles whose flags
AppConfig never stamped with ``_createdAt``, ``created`` (an ISO date). Their values sit in
``values[<flag>]`` next to ``enabled``.

Everything here is pure: no AWS, no clock. Callers pass ``now``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rollguard.durations import format_duration
from rollguard.errors import RollguardError

# AppConfig's key pattern for flags and attributes (the FeatureFlags type reference).
KEY = re.compile(r"^[a-z][a-zA-Z\d_-]{0,63}$")


class FlagDocumentInvalid(RollguardError):
    """The content is not an AWS.AppConfig.FeatureFlags document Rollguard can read."""


class FlagType(StrEnum):
    RELEASE = "release"
    OPERATIONAL = "operational"
    EXPERIMENT = "experiment"
    KILL_SWITCH = "kill_switch"


# How long a flag of each type may live. A kill switch is kept on purpose, so it never goes stale.
DEFAULT_LIFETIMES: dict[FlagType, dt.timedelta | None] = {
    FlagType.RELEASE: dt.timedelta(days=30),
    FlagType.EXPERIMENT: dt.timedelta(days=90),
    FlagType.OPERATIONAL: dt.timedelta(days=365),
    FlagType.KILL_SWITCH: None,
}


# ---------------------------------------------------------------------------- the AppConfig document


class _Tolerant(BaseModel):
    """AppConfig adds keys over time (``_variants``, timestamps): keep what we do not know, never reject it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Deprecation(_Tolerant):
    status: str | None = None  # AppConfig knows one value: "planned"
    date: str | None = None  # an ISO date, when AppConfig's console sets one


class AttributeDefinition(_Tolerant):
    description: str | None = None
    constraints: dict[str, Any] | None = None


class FlagDefinition(_Tolerant):
    name: str | None = None
    description: str | None = None
    created_at: str | None = Field(default=None, alias="_createdAt")
    updated_at: str | None = Field(default=None, alias="_updatedAt")
    deprecation: Deprecation | None = Field(default=None, alias="_deprecation")
    attributes: dict[str, AttributeDefinition] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _attribute_keys(cls, value: dict[str, AttributeDefinition]) -> dict[str, AttributeDefinition]:
        _check_keys(value, "attribute")
        return value


class Variant(_Tolerant):
    name: str
    enabled: bool = Field(default=False, strict=True)
    rule: str | None = None
    attribute_values: dict[str, Any] = Field(default_factory=dict, alias="attributeValues")


class FlagValue(_Tolerant):
    """``values[<flag>]``: ``enabled``, AppConfig's own ``_``-keys, and every attribute value (the extras)."""

    # Strict: AppConfig only takes JSON booleans, so "yes" must not quietly read as on.
    enabled: bool | None = Field(default=None, strict=True)
    created_at: str | None = Field(default=None, alias="_createdAt")
    updated_at: str | None = Field(default=None, alias="_updatedAt")
    variants: list[Variant] = Field(default_factory=list, alias="_variants")

    @property
    def attribute_values(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items() if not k.startswith("_")}

    @property
    def is_enabled(self) -> bool:
        # A multi-variant flag may leave out the top-level switch: it is on if any variant is.
        if self.enabled is not None:
            return self.enabled
        return any(v.enabled for v in self.variants)


class FeatureFlagsDocument(_Tolerant):
    version: Literal["1"]
    flags: dict[str, FlagDefinition] = Field(default_factory=dict)
    values: dict[str, FlagValue] = Field(default_factory=dict)

    @field_validator("flags", "values")
    @classmethod
    def _flag_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_keys(value, "flag")
        return value

    def value_of(self, name: str) -> FlagValue:
        """A flag without an entry in ``values`` is off and has no attribute values."""
        return self.values.get(name) or FlagValue()


def _check_keys(mapping: dict[str, Any], kind: str) -> None:
    bad = [k for k in mapping if not KEY.match(k)]
    if bad:
        raise ValueError(
            f"{kind} key {bad[0]!r} does not match {KEY.pattern} (a lowercase letter, then letters, digits, _ or -)"
        )


def load_document(content: bytes | str | dict[str, Any], source: str) -> FeatureFlagsDocument:
    """Parse a FeatureFlags document (JSON text or already-decoded); errors name the source and the field."""
    if isinstance(content, bytes | str):
        try:
            content = json.loads(content)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FlagDocumentInvalid(f"{source}: not JSON: {exc}") from exc
    if not isinstance(content, dict):
        raise FlagDocumentInvalid(f"{source}: a FeatureFlags document is a JSON object with a 'version'")
    try:
        return FeatureFlagsDocument.model_validate(content)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise FlagDocumentInvalid(f"{source}: {where}: {first['msg']}{more}") from exc


# ---------------------------------------------------------------------------- hygiene metadata


class Hygiene(BaseModel):
    """Rollguard's reading of one flag's metadata; ``problems`` lists values it could not use."""

    model_config = ConfigDict(frozen=True)

    owner: str | None = None
    purpose: str | None = None
    type: FlagType | None = None
    expires: dt.date | None = None
    created: dt.datetime | None = None
    problems: tuple[str, ...] = ()


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _parse_moment(text: str) -> dt.datetime:
    # fromisoformat takes dates, "Z" and fractional seconds (AppConfig writes "2024-01-31T10:00:00.000Z").
    return _as_utc(dt.datetime.fromisoformat(text.strip()))


def hygiene_of(definition: FlagDefinition, value: FlagValue) -> Hygiene:
    attrs = value.attribute_values
    problems: list[str] = []

    def text(key: str) -> str | None:
        raw = attrs.get(key)
        if raw is None:
            return None
        if not isinstance(raw, str):
            problems.append(f"{key} must be a string, not {raw!r}")
            return None
        return raw.strip() or None

    kind: FlagType | None = None
    raw_type = text("type")
    if raw_type is None:
        if isinstance(attrs.get("type"), str | None):  # a non-string was reported by text()
            problems.append(f"no type attribute ({', '.join(t.value for t in FlagType)})")
    elif raw_type in FlagType._value2member_map_:
        kind = FlagType(raw_type)
    else:
        problems.append(f"unknown type {raw_type!r} (known: {', '.join(t.value for t in FlagType)})")

    expires: dt.date | None = None
    raw_expires = text("expires")
    if raw_expires is not None:
        try:
            expires = dt.date.fromisoformat(raw_expires)
        except ValueError:
            problems.append(f"expires {raw_expires!r} is not an ISO date (YYYY-MM-DD)")

    # Age: AppConfig's own stamp first (set by the console), then the team's `created` attribute.
    created: dt.datetime | None = None
    for where, raw in (("_createdAt", definition.created_at), ("created", text("created"))):
        if raw is None or created is not None:
            continue
        try:
            created = _parse_moment(raw)
        except ValueError:
            problems.append(f"{where} {raw!r} is not an ISO date or time")

    return Hygiene(
        owner=text("owner"),
        purpose=text("purpose"),
        type=kind,
        expires=expires,
        created=created,
        problems=tuple(problems),
    )


class FlagInfo(BaseModel):
    """One row of ``rollguard flags list``."""

    name: str
    enabled: bool
    type: FlagType | None
    owner: str | None
    purpose: str | None
    expires: dt.date | None
    created: dt.datetime | None
    age_days: int | None
    deprecated: bool


def describe_flags(document: FeatureFlagsDocument, now: dt.datetime) -> list[FlagInfo]:
    now = _as_utc(now)
    rows = []
    for name, definition in document.flags.items():
        value = document.value_of(name)
        meta = hygiene_of(definition, value)
        rows.append(
            FlagInfo(
                name=name,
                enabled=value.is_enabled,
                type=meta.type,
                owner=meta.owner,
                purpose=meta.purpose,
                expires=meta.expires,
                created=meta.created,
                age_days=(now - meta.created).days if meta.created else None,
                deprecated=definition.deprecation is not None and definition.deprecation.status == "planned",
            )
        )
    return rows


# ---------------------------------------------------------------------------- staleness

Reason = Literal["expired", "too_old", "age_unknown", "ownerless", "deprecated", "metadata"]


class Finding(BaseModel):
    flag: str
    reason: Reason
    detail: str
    type: FlagType | None
    owner: str | None
    enabled: bool

    def line(self) -> str:
        return f"{self.flag}: {self.reason}: {self.detail}"


def lifetime_of(kind: FlagType | None, max_age: dt.timedelta | None = None) -> dt.timedelta | None:
    """How long a flag may live; ``max_age`` replaces every lifetime except a kill switch's (none)."""
    if kind is FlagType.KILL_SWITCH:
        return None
    if max_age is not None:
        return max_age
    return DEFAULT_LIFETIMES[kind] if kind is not None else None


def _days(span: dt.timedelta) -> str:
    days = span.days
    return "1 day" if days == 1 else f"{days} days"


def _span(span: dt.timedelta) -> str:
    """ "30-day" for whole days, else the policy-file form ("36h")."""
    if span % dt.timedelta(days=1) == dt.timedelta(0):
        return f"{span.days}-day"
    return format_duration(span.total_seconds())


def stale_flags(document: FeatureFlagsDocument, now: dt.datetime, max_age: dt.timedelta | None = None) -> list[Finding]:
    """Every hygiene finding, flag by flag in document order; a flag may have several.

    A kill switch never goes stale (no expiry, no lifetime), but it still needs an owner, and
    a deprecated one still has to go.
    """
    now = _as_utc(now)
    findings: list[Finding] = []
    for name, definition in document.flags.items():
        findings.extend(_findings_for(name, definition, document.value_of(name), now, max_age))
    return findings


def _findings_for(
    name: str, definition: FlagDefinition, value: FlagValue, now: dt.datetime, max_age: dt.timedelta | None
) -> list[Finding]:
    meta = hygiene_of(definition, value)
    enabled = value.is_enabled
    today = now.date()
    found: list[tuple[Reason, str]] = []

    kill_switch = meta.type is FlagType.KILL_SWITCH
    if not kill_switch and meta.expires is not None and today > meta.expires:
        found.append(("expired", f"expired on {meta.expires.isoformat()} ({_days(today - meta.expires)} ago)"))
    lifetime = lifetime_of(meta.type, max_age)
    if lifetime is not None and meta.created is not None and now - meta.created > lifetime:
        limit = (
            f"the {_span(lifetime)} maximum age"
            if max_age is not None
            else f"the {_span(lifetime)} lifetime of a {meta.type} flag"
        )
        age = f"created {meta.created.date().isoformat()}, {_days(now - meta.created)} ago"
        found.append(("too_old", f"{age}: past {limit}"))
    if not kill_switch and meta.expires is None and meta.created is None:
        # Only worth saying when nothing else could ever mark the flag stale.
        found.append(
            ("age_unknown", "no expires, no _createdAt and no created attribute: nothing tells when it goes stale")
        )
    if meta.owner is None:
        found.append(("ownerless", "no owner attribute: nobody to ask whether it can go"))
    if definition.deprecation is not None and definition.deprecation.status == "planned":
        on_text = definition.deprecation.date
        on = _date_or_none(on_text)
        if enabled:
            when = f" (deprecation date {on_text})" if on_text else ""
            found.append(("deprecated", f"planned for deprecation{when} but still enabled"))
        elif on is not None and today > on:
            found.append(("deprecated", f"deprecation date {on.isoformat()} has passed and it is still in the profile"))
    found.extend(("metadata", problem) for problem in meta.problems)
    return [
        Finding(flag=name, reason=reason, detail=detail, type=meta.type, owner=meta.owner, enabled=enabled)
        for reason, detail in found
    ]


def _date_or_none(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None
