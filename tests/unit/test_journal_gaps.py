"""The journal's gap logic, without AWS: which events have a scope, how a gap is keyed, when a window is complete."""

from typing import Any

from rollguard.journal import GAP, Completeness, Gap, gap_id, scope_of

from tests.conftest import load_event


def gap(scope: str = "appconfig:checkout/prod", at: str = "2026-12-01T11:58:00.000Z") -> Gap:
    return Gap(scope_key=scope, change_id=f"{GAP}e-1", at=at, region="us-east-1")


def test_a_window_with_no_gap_and_an_empty_dead_letter_queue_is_complete() -> None:
    assert Completeness(since="a", until="b").complete


def test_an_open_gap_or_a_dead_letter_makes_the_window_incomplete() -> None:
    assert not Completeness(since="a", until="b", gaps=[gap()]).complete
    assert not Completeness(since="a", until="b", dead_letters=1).complete


def test_the_description_names_the_window_the_scopes_and_the_queue() -> None:
    text = Completeness(
        since="2026-12-01T11:30:00.000Z",
        until="2026-12-01T12:00:00.000Z",
        gaps=[gap(), gap()],
        dead_letters=1,
    ).describe()

    assert text == (
        "the change journal may be missing events between 2026-12-01T11:30:00.000Z and 2026-12-01T12:00:00.000Z "
        "(2 events of appconfig:checkout/prod could not be recorded; 1 message in the journal's dead-letter queue)"
    )


def test_a_gap_is_keyed_by_the_event_id_so_every_retry_finds_the_same_gap() -> None:
    event = load_event("journal/appconfig-deployment-complete.json")

    assert gap_id(event) == f"{GAP}c53dbd72-c1a0-2302-9ed6-c076e9128277"
    assert gap_id(dict(event)) == gap_id(event)


def test_an_event_without_an_id_is_keyed_by_its_content() -> None:
    event: dict[str, Any] = {"time": "2026-12-01T12:00:00Z", "detail": {"x": 1}}

    assert gap_id(event) == gap_id(dict(reversed(list(event.items()))))
    assert gap_id(event) != gap_id({**event, "time": "2026-12-01T12:00:01Z"})


def test_the_scope_is_read_from_the_event_alone() -> None:
    appconfig = load_event("journal/appconfig-deployment-complete.json")
    codedeploy = load_event("journal/codedeploy-deployment-state-change.json")

    assert scope_of(appconfig) == ("appconfig:MyApp/MyEnv", "us-east-1")
    assert scope_of(codedeploy) == ("codedeploy:myApplication/myDeploymentGroup", "us-east-1")
    assert scope_of(load_event("journal/codedeploy-instance-state-change.json")) is None
