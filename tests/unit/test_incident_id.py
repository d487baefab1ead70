"""incident_id_for: a readable, unique incident id that is also a valid Step Functions execution name."""

import re

import pytest
from rollguard import clock
from rollguard.intake import incident_id_for

from tests.unit.builders import ONSET

EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # the characters CloudWatch Logs accepts, at most 80
LONGEST_POLICY_NAME = "p" + "x" * 47  # the policy name pattern allows 48 characters
EVENT_ID = "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
AT = clock.iso(ONSET)  # 2025-03-04T12:00:00.000Z, how intake stamps an incident


def test_the_id_names_the_policy_and_the_utc_time() -> None:
    incident_id = incident_id_for("checkout-5xx", EVENT_ID, AT)
    assert re.fullmatch(r"checkout-5xx-20250304T120000Z-[0-9a-f]{6}", incident_id)


@pytest.mark.parametrize("policy_name", ["a", "checkout-5xx", "payments_errors", LONGEST_POLICY_NAME])
@pytest.mark.parametrize("at", [AT, ONSET.isoformat(), "2025-12-31T23:59:59.999Z"])
def test_the_id_is_a_valid_execution_name(policy_name: str, at: str) -> None:
    assert EXECUTION_NAME.fullmatch(incident_id_for(policy_name, EVENT_ID, at))


def test_the_longest_policy_name_still_fits_in_80_characters() -> None:
    assert len(incident_id_for(LONGEST_POLICY_NAME, EVENT_ID, AT)) <= 80


def test_the_same_inputs_give_the_same_id() -> None:
    assert incident_id_for("checkout-5xx", EVENT_ID, AT) == incident_id_for("checkout-5xx", EVENT_ID, AT)


def test_different_event_ids_at_the_same_moment_give_different_ids() -> None:
    ids = {incident_id_for("checkout-5xx", f"event-{n}", AT) for n in range(50)}
    assert len(ids) == 50


def test_different_moments_give_different_ids() -> None:
    later = clock.iso(ONSET.replace(second=1))
    assert incident_id_for("checkout-5xx", EVENT_ID, AT) != incident_id_for("checkout-5xx", EVENT_ID, later)
