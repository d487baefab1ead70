"""`rollguard drill --all`'s closing table: one row per scenario, PASS/FAIL, and a count of the failures."""

import io

import pytest
from rollguard_cli.drills import StreamedTimeline, event_line, render_summary, summary_row, timeline_onset
from rollguard_cli.main import main


def result(scenario: str, outcome: str, expected: str, passed: bool, wall: float) -> dict[str, object]:
    return {
        "scenario": scenario,
        "outcome": outcome,
        "expected_outcome": expected,
        "passed": passed,
        "wall_time_s": wall,
    }


def test_the_table_has_a_row_per_scenario_and_counts_the_failures() -> None:
    rows = [
        summary_row(result("bad-deploy", "resolved", "resolved", True, 3.214)),
        summary_row(result("no-change", "escalated", "closed_no_action", False, 12.0)),
    ]

    lines = render_summary(rows).splitlines()

    assert lines[0].split() == ["SCENARIO", "OUTCOME", "EXPECTED", "RESULT", "WALL", "S"]
    assert lines[1].split() == ["bad-deploy", "resolved", "resolved", "PASS", "3.2"]
    assert lines[2].split() == ["no-change", "escalated", "closed_no_action", "FAIL", "12.0"]
    assert lines[3] == "1 of 2 drills passed, 1 failed"
    # The columns line up: every row's outcome starts where the header's does.
    assert {line.index(word) for line, word in zip(lines[:3], ["OUTCOME", "resolved", "escalated"], strict=True)} == {
        lines[0].index("OUTCOME")
    }


def test_an_all_passing_table_says_so_without_a_failure_count() -> None:
    rows = [summary_row(result("bad-deploy", "resolved", "resolved", True, 1.0))]

    assert render_summary(rows).splitlines()[-1] == "1 of 1 drills passed"


def test_all_with_a_scenario_name_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "--all", "bad-deploy"]) == 2
    assert capsys.readouterr().err.startswith("error: --all runs every scenario")


def test_a_streamed_event_is_the_line_the_timeline_prints_at_the_end() -> None:
    events = [
        {"at": "2026-12-01T21:22:08Z", "kind": "alarm_received", "summary": "fired"}
        | {"parameters": {"state_timestamp": "2026-12-01T21:22:01Z"}},
        {"at": "2026-12-01T21:27:09Z", "kind": "action", "summary": "rolled back", "parameters": {}},
    ]
    out = io.StringIO()
    stream = StreamedTimeline(out)
    for event in events:
        stream(event)

    assert out.getvalue().splitlines() == [event_line(e, timeline_onset(events)) for e in events]
    assert out.getvalue().splitlines()[1] == "  T+ 5m08s  action           rolled back"
