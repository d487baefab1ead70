"""Flag hygiene rules on in-memory FeatureFlags documents, at fixed dates."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rollguard.flags import (
    FeatureFlagsDocument,
    FlagDocumentInvalid,
    FlagType,
    describe_flags,
    lifetime_of,
    load_document,
    stale_flags,
)

from tests.unit.builders import POLICIES

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EXAMPLE = POLICIES / "flags" / "checkout-flags.json"


def days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def flag_doc(*flags: tuple[str, dict[str, Any], dict[str, Any]]) -> FeatureFlagsDocument:
    """A document from (name, definition extras, values) triples."""
    return FeatureFlagsDocument.model_validate(
        {
            "version": "1",
            "flags": {name: {"name": name, **definition} for name, definition, _ in flags},
            "values": {name: values for name, _, values in flags},
        }
    )


def healthy(**values: Any) -> dict[str, Any]:
    return {"enabled": True, "owner": "team-a", "purpose": "p", "type": "release", "expires": "2026-12-31", **values}


def reasons(document: FeatureFlagsDocument, **kwargs: Any) -> list[tuple[str, str]]:
    return [(f.flag, f.reason) for f in stale_flags(document, NOW, **kwargs)]


# ---------------------------------------------------------------------------- each reason


def test_a_healthy_release_flag_has_no_findings() -> None:
    assert stale_flags(flag_doc(("a", {"_createdAt": days_ago(10)}, healthy())), NOW) == []


def test_past_its_expiry_date_is_expired_and_says_since_when() -> None:
    (finding,) = stale_flags(flag_doc(("a", {"_createdAt": days_ago(5)}, healthy(expires="2026-11-20"))), NOW)
    assert (finding.reason, finding.detail) == ("expired", "expired on 2026-11-20 (6 days ago)")


def test_the_expiry_date_itself_is_the_last_valid_day() -> None:
    document = flag_doc(("a", {"_createdAt": days_ago(5)}, healthy(expires="2026-11-26")))
    assert stale_flags(document, NOW) == []
    assert [(f.reason) for f in stale_flags(document, NOW + timedelta(days=1))] == ["expired"]


@pytest.mark.parametrize(
    ("kind", "lifetime_days"),
    [("release", 30), ("experiment", 90), ("operational", 365)],
)
def test_older_than_its_types_lifetime_is_too_old(kind: str, lifetime_days: int) -> None:
    values = healthy(type=kind, expires="2099-01-01")
    young = flag_doc(("a", {"_createdAt": days_ago(lifetime_days - 1)}, values))
    old = flag_doc(("a", {"_createdAt": days_ago(lifetime_days + 1)}, values))
    assert stale_flags(young, NOW) == []
    (finding,) = stale_flags(old, NOW)
    assert finding.reason == "too_old"
    assert finding.detail.endswith(f"ago: past the {lifetime_days}-day lifetime of a {kind} flag")
    assert f"{lifetime_days + 1} days ago" in finding.detail


def test_age_comes_from_the_created_attribute_when_appconfig_did_not_stamp_created_at() -> None:
    (finding,) = stale_flags(flag_doc(("a", {}, healthy(created="2026-09-01"))), NOW)
    assert finding.reason == "too_old"
    assert finding.detail.startswith("created 2026-09-01, 86 days ago")


def test_created_at_wins_over_the_created_attribute() -> None:
    document = flag_doc(("a", {"_createdAt": days_ago(3)}, healthy(created="2020-01-01")))
    assert stale_flags(document, NOW) == []
    assert describe_flags(document, NOW)[0].age_days == 3


def test_no_expiry_and_no_known_age_is_reported_as_age_unknown() -> None:
    values = healthy()
    del values["expires"]
    (finding,) = stale_flags(flag_doc(("a", {}, values)), NOW)
    assert finding.reason == "age_unknown"


def test_unknown_age_is_not_reported_when_an_expiry_can_still_catch_the_flag() -> None:
    assert stale_flags(flag_doc(("a", {}, healthy())), NOW) == []


@pytest.mark.parametrize("owner", [None, "", "   "])
def test_a_flag_without_owner_is_ownerless(owner: str | None) -> None:
    values = healthy(owner=owner)
    if owner is None:
        del values["owner"]
    (finding,) = stale_flags(flag_doc(("a", {"_createdAt": days_ago(1)}, values)), NOW)
    assert (finding.reason, finding.owner) == ("ownerless", None)


def test_a_deprecated_flag_that_is_still_enabled_is_reported() -> None:
    definition = {"_createdAt": days_ago(1), "_deprecation": {"status": "planned", "date": "2026-12-15"}}
    (finding,) = stale_flags(flag_doc(("a", definition, healthy())), NOW)
    assert finding.reason == "deprecated"
    assert finding.detail == "planned for deprecation (deprecation date 2026-12-15) but still enabled"


def test_a_deprecated_disabled_flag_is_fine_until_its_deprecation_date_passes() -> None:
    definition = {"_createdAt": days_ago(1), "_deprecation": {"status": "planned", "date": "2026-11-30"}}
    document = flag_doc(("a", definition, healthy(enabled=False)))
    assert stale_flags(document, NOW) == []
    (finding,) = stale_flags(document, datetime(2026, 12, 1, tzinfo=UTC))
    assert finding.detail == "deprecation date 2026-11-30 has passed and it is still in the profile"


def test_a_disabled_flag_deprecated_without_a_date_is_left_alone() -> None:
    definition = {"_createdAt": days_ago(1), "_deprecation": {"status": "planned"}}
    assert stale_flags(flag_doc(("a", definition, healthy(enabled=False))), NOW) == []


def test_one_flag_can_have_several_findings_in_a_fixed_order() -> None:
    values = healthy(expires="2026-01-01")
    del values["owner"]
    definition = {"_createdAt": days_ago(400), "_deprecation": {"status": "planned"}}
    assert reasons(flag_doc(("a", definition, values))) == [
        ("a", "expired"),
        ("a", "too_old"),
        ("a", "ownerless"),
        ("a", "deprecated"),
    ]


# ---------------------------------------------------------------------------- kill switches and --max-age


def test_a_kill_switch_never_goes_stale() -> None:
    values = healthy(type="kill_switch", expires="2020-01-01")
    document = flag_doc(("kill", {"_createdAt": "2019-01-01T00:00:00Z"}, values))
    assert stale_flags(document, NOW) == []
    assert stale_flags(document, NOW, max_age=timedelta(days=1)) == []
    assert lifetime_of(FlagType.KILL_SWITCH, timedelta(days=1)) is None


def test_a_kill_switch_without_known_age_is_not_age_unknown() -> None:
    assert stale_flags(flag_doc(("kill", {}, {"enabled": True, "owner": "o", "type": "kill_switch"})), NOW) == []


def test_a_kill_switch_still_needs_an_owner() -> None:
    assert reasons(flag_doc(("kill", {}, {"enabled": True, "type": "kill_switch"}))) == [("kill", "ownerless")]


def test_max_age_replaces_every_lifetime_but_a_kill_switch() -> None:
    document = flag_doc(
        ("rel", {"_createdAt": days_ago(8)}, healthy(type="release", expires="2099-01-01")),
        ("ops", {"_createdAt": days_ago(8)}, healthy(type="operational", expires="2099-01-01")),
        ("fresh", {"_createdAt": days_ago(6)}, healthy(type="experiment", expires="2099-01-01")),
        ("kill", {"_createdAt": days_ago(800)}, healthy(type="kill_switch")),
    )
    assert stale_flags(document, NOW) == []
    found = stale_flags(document, NOW, max_age=timedelta(days=7))
    assert [(f.flag, f.reason) for f in found] == [("rel", "too_old"), ("ops", "too_old")]
    assert found[0].detail.endswith("past the 7-day maximum age")


def test_max_age_is_also_stricter_than_nothing_for_an_untyped_flag() -> None:
    values = {"enabled": True, "owner": "o", "expires": "2099-01-01"}
    document = flag_doc(("a", {"_createdAt": days_ago(40)}, values))
    assert reasons(document) == [("a", "metadata")]
    assert reasons(document, max_age=timedelta(hours=36)) == [("a", "too_old"), ("a", "metadata")]
    assert stale_flags(document, NOW, max_age=timedelta(hours=36))[0].detail.endswith("past the 36h maximum age")


# ---------------------------------------------------------------------------- metadata problems


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"type": "permanent"}, "unknown type 'permanent' (known: release, operational, experiment, kill_switch)"),
        ({"type": None}, "no type attribute (release, operational, experiment, kill_switch)"),
        ({"type": ""}, "no type attribute (release, operational, experiment, kill_switch)"),
        ({"expires": "next spring"}, "expires 'next spring' is not an ISO date (YYYY-MM-DD)"),
        ({"owner": 42}, "owner must be a string, not 42"),
    ],
)
def test_unusable_metadata_is_reported_not_silently_ignored(values: dict[str, Any], problem: str) -> None:
    merged = {k: v for k, v in {**healthy(), **values}.items() if v is not None}
    found = stale_flags(flag_doc(("a", {"_createdAt": days_ago(1)}, merged)), NOW)
    assert problem in [f.detail for f in found if f.reason == "metadata"]


# ---------------------------------------------------------------------------- the document


def test_unknown_keys_appconfig_adds_are_kept_not_rejected() -> None:
    document = load_document(
        {
            "version": "1",
            "_futureKey": 1,
            "flags": {"a": {"name": "a", "_newThing": {"x": 1}, "attributes": {"owner": {"constraints": {}}}}},
            "values": {"a": {"enabled": False, "_newThing": True, "owner": "o"}},
        },
        "test",
    )
    assert document.model_extra == {"_futureKey": 1}
    assert document.flags["a"].model_extra == {"_newThing": {"x": 1}}
    assert document.values["a"].attribute_values == {"owner": "o"}  # AppConfig's own _-keys are not attributes


def test_a_flag_without_values_is_off_with_no_attributes() -> None:
    document = load_document({"version": "1", "flags": {"a": {"name": "a"}}}, "test")
    (row,) = describe_flags(document, NOW)
    assert (row.enabled, row.owner, row.type) == (False, None, None)


def test_a_multi_variant_flag_is_enabled_when_a_variant_is() -> None:
    variants = [{"name": "off", "enabled": False, "rule": "(eq $tier 'free')"}, {"name": "default", "enabled": True}]
    document = flag_doc(("a", {}, {"_variants": variants, "owner": "o"}))
    assert describe_flags(document, NOW)[0].enabled is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "f.json: not JSON: "),
        ("[]", "f.json: a FeatureFlags document is a JSON object with a 'version'"),
        ({"version": "2"}, "f.json: version: Input should be '1'"),
        ({"flags": {}}, "f.json: version: Field required"),
        ({"version": "1", "flags": {"Bad Name": {}}}, "f.json: flags: Value error, flag key 'Bad Name' does not match"),
        ({"version": "1", "values": {"a": {"enabled": "maybe"}}}, "f.json: values.a.enabled: Input should be"),
    ],
)
def test_an_invalid_document_is_refused_with_the_source_and_the_field(content: Any, message: str) -> None:
    with pytest.raises(FlagDocumentInvalid) as caught:
        load_document(content, "f.json")
    assert str(caught.value).startswith(message)


def test_an_attribute_key_must_follow_appconfigs_pattern() -> None:
    with pytest.raises(FlagDocumentInvalid, match="attribute key 'Owner'"):
        load_document({"version": "1", "flags": {"a": {"attributes": {"Owner": {}}}}}, "f.json")


def test_appconfig_timestamps_with_z_and_milliseconds_are_read() -> None:
    document = flag_doc(("a", {"_createdAt": "2026-11-25T11:59:59.500Z"}, healthy()))
    assert describe_flags(document, NOW)[0].age_days == 1


# ---------------------------------------------------------------------------- the example profile


def test_the_example_profile_is_a_valid_document_with_one_planted_stale_flag() -> None:
    document = load_document(EXAMPLE.read_bytes(), str(EXAMPLE))
    rows = {row.name: row for row in describe_flags(document, NOW)}
    assert rows["card-payments"].type is FlagType.KILL_SWITCH
    assert rows["new-pricing"].type is FlagType.RELEASE
    assert reasons(document) == [
        ("holiday-banner", "expired"),
        ("holiday-banner", "too_old"),
        ("holiday-banner", "ownerless"),
    ]


def test_the_example_profile_keeps_appconfigs_key_rules() -> None:
    raw = json.loads(EXAMPLE.read_text())
    assert set(raw) == {"version", "flags", "values"}
    assert set(raw["flags"]) == set(raw["values"])
    for name, definition in raw["flags"].items():
        assert definition["name"] == name
        # Rollguard's metadata are declared attributes, so the AppConfig console shows them.
        declared = set(definition["attributes"])
        assert set(raw["values"][name]) - {"enabled"} <= declared, name
