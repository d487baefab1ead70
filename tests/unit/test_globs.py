"""Alarm-name globs: when two can claim the same alarm, exactly as fnmatch (and so Policy.matches) reads them."""

import fnmatch

import pytest
from rollguard.globs import Glob, TooManyComparisons, clashes, common_match, shared_claim, tokens


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a*b", [("lit", "a"), ("star", ""), ("lit", "b")]),
        ("a**?", [("lit", "a"), ("star", ""), ("any", "")]),
        ("[abc]", [("set", "[abc]")]),
        ("[!]x]", [("set", "[!]x]")]),
        ("[]]", [("set", "[]]")]),
        ("[ab", [("lit", "["), ("lit", "a"), ("lit", "b")]),  # no closing bracket: a literal [
        ("[!]", [("lit", "["), ("lit", "!"), ("lit", "]")]),
    ],
)
def test_tokens_read_a_pattern_as_fnmatch_does(pattern: str, expected: list[tuple[str, str]]) -> None:
    assert list(tokens(pattern)) == expected


@pytest.mark.parametrize(
    ("pattern", "prefix", "suffix"),
    [("checkout-*-5xx", "checkout-", "-5xx"), ("*x", "", "x"), ("plain", "plain", "plain"), ("a[bc]d", "a", "d")],
)
def test_every_claimed_name_starts_with_the_prefix_and_ends_with_the_suffix(
    pattern: str, prefix: str, suffix: str
) -> None:
    glob = Glob.of(pattern)
    assert (glob.prefix, glob.suffix) == (prefix, suffix)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("a*", "*b"),
        ("[!a]", "?"),
        ("[a-c]x", "[c-e]?"),
        ("*[]]*", "x]y"),
        ("*-1-*", "*-2-*"),
        ("[\x00-\uffff]", "\U0001f600"),  # the set does not reach the astral plane: no overlap here
    ],
)
def test_a_common_match_is_matched_by_both_or_there_is_none(a: str, b: str) -> None:
    found = common_match(Glob.of(a), Glob.of(b))
    if found is None:
        assert not any(fnmatch.fnmatchcase(c, a) and fnmatch.fnmatchcase(c, b) for c in ["\U0001f600", "x"])
    else:
        assert fnmatch.fnmatchcase(found, a) and fnmatch.fnmatchcase(found, b)


@pytest.mark.parametrize(("a", "b"), [("a*", "b*"), ("[ab]", "[cd]"), ("[!a]", "a"), ("x[z-a]", "x?"), ("a?", "a")])
def test_globs_no_string_matches_both_have_no_common_match(a: str, b: str) -> None:
    assert common_match(Glob.of(a), Glob.of(b)) is None


def test_a_literal_claim_counts_as_the_policy_reads_it() -> None:
    """`web[1]` is claimed literally (Policy.matches tries the name first) and as the glob matching `web1`."""
    assert shared_claim(Glob.of("web[1]"), Glob.of("web?1?")) == "web[1]"
    assert shared_claim(Glob.of("web[1]"), Glob.of("web1")) == "web1"
    assert shared_claim(Glob.of("web[1]"), Glob.of("web2")) is None


def test_clashes_name_the_earliest_other_owner_for_each_later_entry() -> None:
    entries = [(0, "checkout-*"), (0, "payments-5xx"), (1, "checkout-5xx"), (2, "*-5xx"), (2, "search-p99")]
    found = [(c.later, c.earlier, c.name) for c in clashes(entries)]
    assert found == [(2, 0, "checkout-5xx"), (3, 0, "checkout-5xx")]


def test_entries_of_one_owner_never_clash() -> None:
    assert clashes([(0, "a*"), (0, "ab"), (0, "*b")]) == []


def test_past_its_budget_the_check_stops_instead_of_running_on() -> None:
    entries = [(i, f"*-{i}-*") for i in range(200)]
    with pytest.raises(TooManyComparisons, match="more than 1,000 pairs") as caught:
        clashes(entries, budget=1000)
    assert caught.value.found and all(c.earlier == 0 for c in caught.value.found)
