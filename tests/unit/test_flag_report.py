"""The weekly report's assembly, with in-memory stand-ins for AppConfig and SNS."""

from datetime import UTC, datetime
from typing import Any

import pytest
from rollguard.adapters.appconfig_flags import FlagProfile
from rollguard.errors import PermissionDenied
from rollguard.flag_report import FlagProfilesInvalid, FlagReportDeps, parse_profiles, publish_flag_report
from rollguard.flags import load_document

AS_OF = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STALE = {"version": "1", "flags": {"old": {}}, "values": {"old": {"enabled": True, "type": "release"}}}


class Reader:
    def __init__(self, documents: dict[str, dict[str, Any]]):
        self.documents = documents

    def latest(self, application: str, profile: str) -> FlagProfile:
        if application not in self.documents:
            raise PermissionDenied(f"reading {application}: AccessDeniedException: no")
        return FlagProfile(application, profile, "a1", "p1", 3, load_document(self.documents[application], "t"))


class Notifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        self.sent.append((subject, message, attributes))
        return "m-1"


def deps(profiles: str, documents: dict[str, dict[str, Any]]) -> tuple[FlagReportDeps, Notifier]:
    notifier = Notifier()
    return FlagReportDeps(reader=Reader(documents), notifier=notifier, profiles=parse_profiles(profiles)), notifier


@pytest.mark.parametrize("text", ["", "[]"])
def test_no_profiles_checks_nothing_and_says_so(text: str) -> None:
    wiring, notifier = deps(text, {})
    report = publish_flag_report(wiring, AS_OF)
    assert (report.published, notifier.sent) == (False, [])
    assert report.summary == "FLAG_PROFILES names no profile: nothing checked, nothing published"


@pytest.mark.parametrize(
    "text",
    ["{", '{"application": "a", "profile": "p"}', '[{"application": "a"}]', '[{"application": "", "profile": "p"}]'],
)
def test_flag_profiles_must_be_a_list_of_application_and_profile(text: str) -> None:
    with pytest.raises(FlagProfilesInvalid):
        parse_profiles(text)


def test_the_message_has_one_line_per_finding_and_one_per_unreadable_profile() -> None:
    wiring, notifier = deps(
        '[{"application": "checkout", "profile": "flags"}, {"application": "payments", "profile": "flags"}]',
        {"checkout": STALE},
    )
    report = publish_flag_report(wiring, AS_OF)
    assert (report.published, report.message_id, report.stale_flag_count, report.unreadable_count) == (
        True,
        "m-1",
        1,
        1,
    )
    ((subject, message, attributes),) = notifier.sent
    assert subject == "[Rollguard] Flag hygiene: 1 stale flag(s) in 2 profile(s), 1 unreadable"
    assert attributes == {"kind": "flag_hygiene"}
    lines = message.splitlines()
    assert lines[2:5] == [
        "checkout/flags v3: old: age_unknown: no expires, no _createdAt and no created attribute: "
        "nothing tells when it goes stale",
        "checkout/flags v3: old: ownerless: no owner attribute: nobody to ask whether it can go",
        "payments/flags: cannot read: PermissionDenied: reading payments: AccessDeniedException: no",
    ]
