"""The policy loader on generated documents: whatever the text, ``parse_policy_document`` returns a PolicyFile or raises
PolicyFileInvalid whose every problem is one line; and the glob-overlap check agrees with brute force."""

import copy
import fnmatch
import itertools
import string
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from rollguard.globs import Glob, clashes, common_match, shared_claim
from rollguard.policy import PolicyFile, PolicyFileInvalid, parse_policy_document

from tests.property.conftest import examples
from tests.unit.builders import SANDBOX_DOCUMENT

pytestmark = pytest.mark.slow  # thousands of generated examples


def check(text: str) -> PolicyFile | None:
    """The loader's only outcomes: a document, or PolicyFileInvalid with one-line problems (never a traceback)."""
    try:
        return parse_policy_document(text, "p.yaml")
    except PolicyFileInvalid as exc:
        assert exc.problems
        for problem in exc.problems:
            line = str(problem)
            assert "\n" not in line and len(line) < 2_000, line
        return None


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["5m", "90s", "1h30m", "0s", "7d", "25h", "-1m", "1.5h", "5 m", "rollback", "canary", "full"])
    | st.from_regex(r"[0-9]{1,6}[smhdx]{0,2}", fullmatch=True)
)
KEYS = st.sampled_from(
    ["version", "defaults", "policies", "name", "trigger", "alarms", "target", "codedeploy", "ladder", "action",
     "scope", "verify", "window", "approval", "timeout", "brakes", "cooldown", "lock_ttl", "mode", "freeze"]
) | st.text(max_size=6)  # fmt: skip
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=16
)


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter: the pure one dominated these tests


def dumped(doc: Any, flow: bool) -> str:
    return yaml.dump(doc, Dumper=DUMPER, default_flow_style=flow, allow_unicode=True, sort_keys=False)


@examples(1_000)
@given(text=st.text(max_size=300))
def test_any_text_is_a_policy_file_or_a_one_line_problem(text: str) -> None:
    check(text)


@examples(800)
@given(doc=VALUES, flow=st.booleans())
def test_any_yaml_value_is_a_policy_file_or_a_one_line_problem(doc: Any, flow: bool) -> None:
    check(dumped(doc, flow))


PATHS = [
    ("version",),
    ("defaults",),
    ("policies",),
    ("policies", 0),
    ("policies", 0, "name"),
    ("policies", 0, "trigger"),
    ("policies", 0, "trigger", "alarms"),
    ("policies", 0, "trigger", "require_change_within"),
    ("policies", 0, "target", "codedeploy"),
    ("policies", 0, "ladder"),
    ("policies", 0, "ladder", 0, "action"),
    ("policies", 0, "ladder", 0, "verify", "window"),
    ("policies", 0, "ladder", 1, "scope"),
    ("policies", 0, "verify", "slice", "period"),
    ("policies", 0, "verify", "max_error_rate"),
    ("policies", 0, "escalate"),
]


@examples(1_000)
@given(path=st.sampled_from(PATHS), value=VALUES, flow=st.booleans())
def test_a_valid_document_with_any_one_field_replaced_loads_or_names_a_problem(
    path: tuple[Any, ...], value: Any, flow: bool
) -> None:
    doc = copy.deepcopy(SANDBOX_DOCUMENT)
    where: Any = doc
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    check(dumped(doc, flow))


@examples(500)
@given(cut=st.integers(0, 10_000), junk=st.text(string.printable + "\t\x00\x85\u2028\ufeff", max_size=4))
def test_a_valid_document_cut_or_spliced_anywhere_loads_or_names_a_problem(cut: int, junk: str) -> None:
    text = dumped(SANDBOX_DOCUMENT, flow=False)
    at = cut % (len(text) + 1)
    check(text[:at] + junk + text[at:])


def nested(depth: int, style: str) -> str:
    if style == "block":  # "-" on a line, the next level indented under it
        return "".join("  " * (i + 1) + "-\n" for i in range(depth)) + "  " * (depth + 1) + "x\n"
    opener, closer = ("[", "]") if style == "flow-list" else ("{a: ", "}")
    return " " + opener * depth + "x" + closer * depth + "\n"


@examples(200)
@given(depth=st.integers(0, 2_000), style=st.sampled_from(["flow-list", "flow-map", "block"]))
def test_nesting_of_any_depth_is_a_document_or_one_line(depth: int, style: str) -> None:
    check("version: 1\npolicies:" + nested(depth, style))


# ---------------------------------------------------------------- glob overlaps: exact, by brute force

PATTERN_CHARS = "ab-[]!*?"
PATTERNS = st.text(PATTERN_CHARS, max_size=6)
# Every string of up to 4 characters over the letters the patterns use and one they do not: a miss by the walk with a
# witness this short is caught (a found witness is always checked, whatever its length).
WORDS = ["".join(w) for n in range(5) for w in itertools.product("ab-[]!x", repeat=n)]


@examples(1_200)
@given(a=PATTERNS, b=PATTERNS)
def test_two_globs_share_a_string_exactly_when_the_walk_finds_one(a: str, b: str) -> None:
    found = common_match(Glob.of(a), Glob.of(b))
    if found is not None:
        assert fnmatch.fnmatchcase(found, a) and fnmatch.fnmatchcase(found, b)
    else:
        assert not any(fnmatch.fnmatchcase(w, a) and fnmatch.fnmatchcase(w, b) for w in WORDS)


@examples(500)
@given(owners=st.lists(st.lists(PATTERNS.filter(bool), min_size=1, max_size=3), min_size=1, max_size=5))
def test_indexed_clashes_are_exactly_the_pairwise_ones(owners: list[list[str]]) -> None:
    entries = [(i, p) for i, patterns in enumerate(owners) for p in patterns]
    expected = {}
    for later, (owner, pattern) in enumerate(entries):
        for earlier in range(later):
            if entries[earlier][0] != owner and shared_claim(Glob.of(entries[earlier][1]), Glob.of(pattern)):
                expected[later] = earlier
                break
    assert {c.later: c.earlier for c in clashes(entries)} == expected
