"""`rollguard timeline INCIDENT --follow --stack NAME` on moto: events written between polls are printed as they
arrive, in the drill timeline's line format, until the incident is closed; Ctrl-C exits 0."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from rollguard.audit import AuditEvent, AuditLog
from rollguard_cli import review_commands
from rollguard_cli.review import event_line
from rollguard_cli.sandbox.runner import TABLES, Sandbox

from tests.functional.test_operator_commands import STACK, cli, make_stack, put_incident

pytestmark = pytest.mark.slow  # moto

INCIDENT = "checkout-5xx-20261201T212201Z-d00dfc"
ONSET = datetime(2026, 12, 1, 21, 22, 1, tzinfo=UTC)  # the alarm's state change: what T is measured from


def event(kind: str, at: str, summary: str) -> AuditEvent:
    parameters = {"state_timestamp": "2026-12-01T21:22:01Z"} if kind == "alarm_received" else {}
    return AuditEvent(
        incident_id=INCIDENT,
        target_key="codedeploy:checkout/checkout-prod",
        kind=kind,
        at=at,
        summary=summary,
        parameters=parameters,
    )


@pytest.fixture
def stack(sandbox: Sandbox) -> Iterator[AuditLog]:
    make_stack(sandbox)
    put_incident(sandbox, INCIDENT)
    yield AuditLog(sandbox.client("dynamodb"), TABLES["AuditTable"])


def test_follow_prints_each_event_as_it_is_written_until_the_incident_closes(
    stack: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = [
        event("alarm_received", "2026-12-01T21:22:02Z", "checkout-5xx-rate → ALARM"),
        event("action", "2026-12-01T21:27:03Z", "canary rollback to revision 6"),
        event("incident_closed", "2026-12-01T21:39:03Z", "RESOLVED"),
    ]
    later = iter(written[1:])
    stack.append(written[0])
    polls: list[float] = []

    def between_polls(seconds: float) -> None:  # a poll's wait: the incident goes on meanwhile
        polls.append(seconds)
        stack.append(next(later))

    monkeypatch.setattr(review_commands, "sleep", between_polls)
    code, out, err = cli("timeline", INCIDENT, "--stack", STACK, "--follow")

    assert (code, err) == (0, "")
    events = stack.for_incident(INCIDENT)
    assert out.splitlines() == [event_line(e, ONSET) for e in events]
    assert out.splitlines()[1] == "  T+ 5m02s  action           canary rollback to revision 6"
    assert polls == [review_commands.FOLLOW_SECONDS] * 2  # stopped at incident_closed, no wait after it


def test_ctrl_c_while_following_exits_0_quietly(stack: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.append(event("alarm_received", "2026-12-01T21:22:02Z", "checkout-5xx-rate → ALARM"))

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(review_commands, "sleep", interrupted)
    code, out, err = cli("timeline", INCIDENT, "--stack", STACK, "--follow")

    assert (code, err) == (0, "")
    assert out.splitlines() == ["  T+    1s  alarm_received   checkout-5xx-rate → ALARM"]


def test_follow_of_a_folder_is_a_one_line_error(tmp_path: object) -> None:
    code, _, err = cli("timeline", INCIDENT, "--from", str(tmp_path), "--follow")

    assert code == 2 and err.startswith("error: --follow polls a stack")
