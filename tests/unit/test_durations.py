"""Human durations in policy files: parsing, rejection messages, and formatting for people."""

import pytest
from rollguard.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1d2h3m4s", 93784),
    ],
)
def test_parse_duration_reads_each_unit_and_combinations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "seconds"), [(" 5m ", 300), ("\t90s\n", 90), ("5M", 300), ("1H30M", 5400)])
def test_parse_duration_ignores_surrounding_whitespace_and_case(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "   ", "5", "m5", "5x", "-5m", "1.5h", "5 m", "five minutes"])
def test_parse_duration_rejects_malformed_text_naming_the_accepted_form(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "a number and a unit (s, m, h, d)" in message
    assert "'90s', '5m', '1h30m'" in message


@pytest.mark.parametrize("text", ["0s", "0m", "0h0m"])
def test_parse_duration_rejects_zero(text: str) -> None:
    with pytest.raises(ValueError, match="must be longer than zero") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("value", [5, 1.5, None, ["5m"]])
def test_parse_duration_rejects_non_strings_naming_the_accepted_form(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "must be a string such as '90s', '5m' or '1h'" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (59.4, "59s"),
        (59.6, "1m"),
        (60, "1m"),
        (65, "1m05s"),
        (90, "1m30s"),
        (3599, "59m59s"),
        (3600, "1h"),
        (3660, "1h01m"),
        (5400, "1h30m"),
        (86400, "24h"),
    ],
)
def test_format_duration_is_compact_and_readable(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_drops_seconds_beyond_an_hour() -> None:
    assert format_duration(3661) == "1h01m"


@pytest.mark.parametrize("seconds", [30, 90, 300, 3599, 3600, 5400, 7200])
def test_format_duration_output_parses_back_to_the_same_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_a_very_long_duration_is_rejected_in_a_short_message() -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration("1" * 100_000 + "s")
    assert len(str(caught.value)) < 200
