"""`rollguard flags list|stale --file`: output, JSON shape and exit codes (0 fine, 1 stale for CI, 2 unusable)."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rollguard import clock
from rollguard_cli.main import main

from tests.unit.builders import POLICIES

EXAMPLE = str(POLICIES / "flags" / "checkout-flags.json")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def fixed_clock() -> Iterator[datetime]:
    clock.use(lambda: NOW)
    yield NOW
    clock.reset()


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "flags.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return str(path)


HEALTHY = {
    "version": "1",
    "flags": {"a": {"name": "a", "_createdAt": "2026-11-29T00:00:00Z"}},
    "values": {"a": {"enabled": True, "owner": "o", "type": "release", "expires": "2026-12-31"}},
}


def test_stale_prints_each_finding_and_a_summary(fixed_clock: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flags", "stale", "--file", EXAMPLE]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        "holiday-banner  expired    expired on 2026-01-15 (319 days ago)",
        "holiday-banner  too_old    created 2025-11-20, 374 days ago: past the 30-day lifetime of a release flag",
        "holiday-banner  ownerless  no owner attribute: nobody to ask whether it can go",
        f"1 of 4 flag(s) need attention in {EXAMPLE} (3 finding(s))",
    ]


def test_the_planted_flag_is_stale_whatever_the_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flags", "stale", "--file", EXAMPLE, "--json"]) == 0
    assert "holiday-banner" in json.loads(capsys.readouterr().out)["stale_flags"]


def test_fail_on_stale_exits_1_when_anything_is_stale(fixed_clock: datetime) -> None:
    assert main(["flags", "stale", "--file", EXAMPLE, "--fail-on-stale"]) == 1


def test_fail_on_stale_exits_0_when_nothing_is_stale(
    fixed_clock: datetime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEALTHY)
    assert main(["flags", "stale", "--file", path, "--fail-on-stale"]) == 0
    assert capsys.readouterr().out == f"no stale flags among the 1 in {path}\n"


def test_stale_json_shape(fixed_clock: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flags", "stale", "--file", EXAMPLE, "--json", "--max-age", "10d"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"source", "checked_at", "max_age_seconds", "flags_checked", "stale_flags", "findings"}
    assert report["source"] == {"file": EXAMPLE}
    assert (report["max_age_seconds"], report["flags_checked"]) == (864000, 4)
    # --max-age 10d catches the 13-day-old release flag and the operational one; never the kill switch.
    assert report["stale_flags"] == ["new-pricing", "recommendations-cache", "holiday-banner"]
    assert report["findings"][0] == {
        "flag": "new-pricing",
        "reason": "too_old",
        "detail": "created 2026-11-16, 13 days ago: past the 10-day maximum age",
        "type": "release",
        "owner": "team-checkout",
        "enabled": True,
    }


def test_list_json_shape(fixed_clock: datetime, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flags", "list", "--file", EXAMPLE, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert (listing["source"], listing["as_of"]) == ({"file": EXAMPLE}, "2026-11-30T09:00:00.000Z")
    assert listing["flags"][3] == {
        "name": "holiday-banner",
        "enabled": True,
        "type": "release",
        "owner": None,
        "purpose": "Holiday sale 2025",
        "expires": "2026-01-15",
        "created": "2025-11-20T16:45:00Z",
        "age_days": 374,
        "deprecated": False,
    }


def test_list_marks_deprecated_flags_and_unknown_ages(
    fixed_clock: datetime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {"version": "1", "flags": {"old": {"_deprecation": {"status": "planned"}}}, "values": {}}
    path = write(tmp_path, document)
    assert main(["flags", "list", "--file", path]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "NAME              ENABLED  TYPE  OWNER  EXPIRES  AGE",
        "old (deprecated)  off      -     -      -        ?",
    ]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{", "not JSON: "),
        ({"version": "1", "values": {"a": {"enabled": "yes"}}}, "values.a.enabled: Input should be a valid boolean"),
    ],
)
def test_an_invalid_document_exits_2_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, error: str
) -> None:
    path = write(tmp_path, content)
    assert main(["flags", "stale", "--file", path, "--fail-on-stale"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: {path}: {error}")


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flags", "list", "--file", str(tmp_path / "absent.json")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'absent.json'}: cannot read: No such file or directory\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["flags", "stale"], "give --file PATH, or --application and --profile"),
        (["flags", "list", "--application", "checkout"], "give --file PATH, or --application and --profile"),
        (["flags", "list", "--file", EXAMPLE, "--profile", "flags"], "--file cannot be combined with"),
        (["flags", "stale", "--file", EXAMPLE, "--max-age", "a month"], "invalid duration 'a month'"),
        (["flags"], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err
