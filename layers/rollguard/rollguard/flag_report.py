"""The weekly flag hygiene report: stale flags of the configured AppConfig profiles, published to SNS."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from rollguard.adapters.appconfig_flags import AppConfigFlags
from rollguard.adapters.notify import Notifier
from rollguard.errors import RollguardError
from rollguard.flags import Finding, stale_flags

logger = logging.getLogger(__name__)


class FlagProfilesInvalid(RollguardError):
    """FLAG_PROFILES is not a JSON list of {"application": ..., "profile": ...}."""


class ProfileRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    application: str = Field(min_length=1)  # name or id
    profile: str = Field(min_length=1)


def parse_profiles(text: str) -> list[ProfileRef]:
    try:
        return TypeAdapter(list[ProfileRef]).validate_python(json.loads(text or "[]"))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise FlagProfilesInvalid(
            f'FLAG_PROFILES must be a JSON list of {{"application": ..., "profile": ...}}: {exc}'
        ) from exc


class ProfileResult(BaseModel):
    application: str
    profile: str
    version: int | None = None
    flags: int = 0
    findings: list[Finding] = Field(default_factory=list)
    error: str | None = None  # the profile could not be read; the others are still reported

    @property
    def label(self) -> str:
        return f"{self.application}/{self.profile}" + (f" v{self.version}" if self.version is not None else "")


class FlagReport(BaseModel):
    as_of: datetime
    profiles: list[ProfileResult]
    # Counts; the findings themselves are in `profiles`.
    finding_count: int
    stale_flag_count: int
    unreadable_count: int
    published: bool = False
    message_id: str | None = None
    summary: str = ""


@dataclass
class FlagReportDeps:
    reader: AppConfigFlags
    notifier: Notifier
    profiles: list[ProfileRef]


def build_report(profiles: list[ProfileRef], reader: AppConfigFlags, as_of: datetime) -> FlagReport:
    results = []
    for ref in profiles:
        try:
            read = reader.latest(ref.application, ref.profile)
        except RollguardError as exc:
            # One unreadable profile must not hide the stale flags of the others.
            logger.warning("cannot read flag profile %s/%s: %s", ref.application, ref.profile, exc)
            results.append(ProfileResult(application=ref.application, profile=ref.profile, error=_named(exc)))
            continue
        results.append(
            ProfileResult(
                application=ref.application,
                profile=ref.profile,
                version=read.version,
                flags=len(read.document.flags),
                findings=stale_flags(read.document, as_of),
            )
        )
    return FlagReport(
        as_of=as_of,
        profiles=results,
        finding_count=sum(len(r.findings) for r in results),
        stale_flag_count=sum(len({f.flag for f in r.findings}) for r in results),
        unreadable_count=sum(r.error is not None for r in results),
    )


def _named(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def render(report: FlagReport) -> tuple[str, str]:
    """Subject and plain-text body: one line per finding, each naming its profile, so lines can be grepped."""
    subject = f"[Rollguard] Flag hygiene: {report.stale_flag_count} stale flag(s) in {len(report.profiles)} profile(s)"
    if report.unreadable_count:
        subject += f", {report.unreadable_count} unreadable"
    lines = [
        f"Rollguard flag hygiene report as of {report.as_of.date().isoformat()}: "
        f"{report.finding_count} finding(s) on {report.stale_flag_count} flag(s).",
        "",
    ]
    for result in report.profiles:
        if result.error:
            lines.append(f"{result.application}/{result.profile}: cannot read: {result.error}")
        lines.extend(f"{result.label}: {finding.line()}" for finding in result.findings)
    lines += [
        "",
        "Owners: remove the flag from code and profile, or set a later `expires` and a reason in `purpose`.",
        "Check any profile with: rollguard flags stale --application APP --profile PROFILE",
    ]
    return subject, "\n".join(lines)


def publish_flag_report(deps: FlagReportDeps, as_of: datetime) -> FlagReport:
    report = build_report(deps.profiles, deps.reader, as_of)
    if not report.finding_count and not report.unreadable_count:
        if deps.profiles:
            report.summary = f"nothing stale in {len(report.profiles)} profile(s): nothing published"
            logger.info(report.summary)
        else:
            report.summary = "FLAG_PROFILES names no profile: nothing checked, nothing published"
            logger.warning(report.summary)
        return report
    subject, body = render(report)
    report.message_id = deps.notifier.publish(subject, body, {"kind": "flag_hygiene"})
    report.published = True
    report.summary = subject.removeprefix("[Rollguard] ")
    logger.info("published flag hygiene report: %s", report.summary)
    return report
