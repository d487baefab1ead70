"""Whether alarm-name patterns can claim the same alarm: ``fnmatch`` globs (``*``, ``?``, ``[...]``, ``[!...]``).

A policy claims each entry of ``trigger.alarms`` twice over, as ``Policy.matches`` reads it: the literal name, and
every name the glob matches. Two entries clash when some alarm name is claimed by both. The test is exact, not a
heuristic: the two patterns are walked together (a product of the two automata), and a set ``[...]`` is judged by
``fnmatch`` itself on the few characters where its answer can change, so no reimplementation of its ranges,
negation or odd brackets can disagree with the matcher the intake uses.

Checking every pair is quadratic. Two names claimed by both entries start with both literal prefixes and end with
both literal suffixes, so only entries whose prefixes are prefixes of one another (and whose suffixes are suffixes of
one another) are compared, found through sorted indexes. Literal names are compared through a dict.
"""

from __future__ import annotations

import fnmatch
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

Token = tuple[str, str]  # ("lit", c) · ("any", "") for ? · ("star", "") for * · ("set", "[...]")
STAR: Token = ("star", "")
ANY: Token = ("any", "")
_FRIENDLY = "x0a-_."  # tried first, so a witness reads like an alarm name
_MAX_CHAR = chr(0x10FFFF)


def tokens(pattern: str) -> tuple[Token, ...]:
    """``pattern`` as fnmatch reads it (the same scan as ``fnmatch.translate``): a ``[`` with no closing ``]`` is a
    literal, a ``]`` right after ``[`` or ``[!`` belongs to the set, consecutive stars are one."""
    out: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != STAR:
                out.append(STAR)
        elif c == "?":
            out.append(ANY)
        elif c == "[":
            j = i + 1 if i < n and pattern[i] == "!" else i
            j = j + 1 if j < n and pattern[j] == "]" else j
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(("lit", "["))
            else:
                out.append(("set", pattern[i - 1 : j + 1]))
                i = j + 1
        else:
            out.append(("lit", c))
    return tuple(out)


@dataclass(frozen=True)
class Glob:
    text: str
    parts: tuple[Token, ...]
    prefix: str  # the literal characters before the first wildcard: every claimed name starts with them
    suffix: str  # and ends with these, the literal characters after the last one

    @classmethod
    def of(cls, text: str) -> Glob:
        parts = tokens(text)
        wild = [k for k, (kind, _) in enumerate(parts) if kind != "lit"]
        if not wild:
            return cls(text, parts, text, text)
        prefix = "".join(c for _, c in parts[: wild[0]])
        suffix = "".join(c for _, c in parts[wild[-1] + 1 :])
        return cls(text, parts, prefix, suffix)

    @property
    def literal(self) -> bool:
        return all(kind == "lit" for kind, _ in self.parts)


def _admits(token: Token, ch: str) -> bool:
    kind, value = token
    if kind == "lit":
        return ch == value
    if kind == "set":
        return fnmatch.fnmatchcase(ch, value)
    return True


def _boundaries(token: Token) -> list[str]:
    """The characters where a set's answer can change: each character written in it, the one after it, and the
    first of all. A set is a union of ranges whose ends are written in it, so one of these lies in every stretch of
    characters it treats alike."""
    if token[0] != "set":
        return []
    written = set(token[1])
    return ["\x00", *sorted(written), *sorted(chr(ord(c) + 1) for c in written if c != _MAX_CHAR)]


@lru_cache(maxsize=65536)
def _meet(a: Token, b: Token) -> str | None:
    """A character both tokens accept, or None."""
    if a[0] == "lit":
        return a[1] if _admits(b, a[1]) else None
    if b[0] == "lit":
        return b[1] if _admits(a, b[1]) else None
    for ch in [*_FRIENDLY, *_boundaries(a), *_boundaries(b)]:
        if _admits(a, ch) and _admits(b, ch):
            return ch
    return None


def common_match(a: Glob, b: Glob) -> str | None:
    """A string both globs match, or None when no string does: a breadth-first walk over pairs of positions, one in
    each pattern, which visits each pair once (at most 256 × 256 for two alarm-length patterns)."""
    A, B = a.parts, b.parts  # noqa: N806
    parent: dict[tuple[int, int], tuple[tuple[int, int], str] | None] = {(0, 0): None}
    queue = deque([(0, 0)])
    while queue:
        state = queue.popleft()
        if state == (len(A), len(B)):
            return _spelled(parent, state)
        for nxt, ch in _moves(A, B, *state):
            if nxt not in parent:
                parent[nxt] = (state, ch)
                queue.append(nxt)
    return None


def _moves(A: Sequence[Token], B: Sequence[Token], i: int, j: int) -> Iterator[tuple[tuple[int, int], str]]:  # noqa: N803
    if i < len(A) and A[i] == STAR:
        yield (i + 1, j), ""  # the star matches nothing more
    if j < len(B) and B[j] == STAR:
        yield (i, j + 1), ""
    if i < len(A) and j < len(B) and (ch := _meet(A[i], B[j])) is not None:
        nxt = (i if A[i] == STAR else i + 1, j if B[j] == STAR else j + 1)
        if nxt != (i, j):
            yield nxt, ch


def _spelled(parent: dict[tuple[int, int], tuple[tuple[int, int], str] | None], state: tuple[int, int]) -> str:
    chars = []
    while (step := parent[state]) is not None:
        state, ch = step
        chars.append(ch)
    return "".join(reversed(chars))


def shared_claim(a: Glob, b: Glob) -> str | None:
    """An alarm name both entries claim (literally or as globs), or None when none can be."""
    if a.text == b.text or fnmatch.fnmatchcase(b.text, a.text):
        return b.text
    if fnmatch.fnmatchcase(a.text, b.text):
        return a.text
    if a.literal or b.literal:
        return None  # a literal's only name was just tried against the other's glob
    return common_match(a, b)


class TooManyComparisons(Exception):
    """The patterns share prefixes and suffixes so widely that the check would not stay within its budget; ``found``
    holds the clashes found before it stopped."""

    def __init__(self, message: str, found: list[Clash]):
        super().__init__(message)
        self.found = found


@dataclass(frozen=True)
class Clash:
    later: int  # index of the entry claiming a name that
    earlier: int  # an earlier entry of another owner also claims
    name: str  # such a name


COMPARISON_BUDGET = 2_000_000  # candidate pairs: about two seconds; a file past it is refused, not checked for ever


def clashes(entries: Sequence[tuple[int, str]], budget: int | None = None) -> list[Clash]:
    """For each entry ``(owner, pattern)`` that claims a name an earlier entry of another owner claims: the earliest
    such entry and a name both claim, in entry order. Entries come in order, grouped by owner (a policy's alarms).
    Raises TooManyComparisons past ``budget`` candidate pairs (COMPARISON_BUDGET by default), so a hostile file
    cannot make the check run on."""
    budget = COMPARISON_BUDGET if budget is None else budget
    index = _Index([Glob.of(text) for _, text in entries])
    found: dict[int, tuple[int, str]] = {}
    for spent, (a, b) in enumerate(index.candidate_pairs(), start=1):
        if spent > budget:
            message = f"more than {budget:,} pairs of alarm patterns share a prefix and a suffix"
            raise TooManyComparisons(message, _listed(found))
        later, earlier = max(a, b), min(a, b)
        if entries[later][0] == entries[earlier][0] or found.get(later, (later, ""))[0] <= earlier:
            continue
        name = shared_claim(index.globs[earlier], index.globs[later])
        if name is not None:
            found[later] = (earlier, name)
    return _listed(found)


def _listed(found: dict[int, tuple[int, str]]) -> list[Clash]:
    return [Clash(later, earlier, name) for later, (earlier, name) in sorted(found.items())]


class _Index:
    """The entries by text, and by literal prefix and reversed literal suffix, to find the comparable ones."""

    def __init__(self, globs: list[Glob]):
        self.globs = globs
        self.wild = [k for k, g in enumerate(globs) if not g.literal]
        self.by_text: dict[str, list[int]] = {}
        for k, g in enumerate(globs):
            self.by_text.setdefault(g.text, []).append(k)
        self.prefixes = _Keys([g.prefix for g in globs], self.wild)
        self.suffixes = _Keys([g.suffix[::-1] for g in globs], self.wild)

    def candidate_pairs(self) -> Iterator[tuple[int, int]]:
        """Every pair that might clash, at least once: two entries with the same text, or a glob and an entry whose
        prefixes and suffixes are both comparable (enumerated on whichever side lists fewer)."""
        for same in self.by_text.values():
            yield from ((same[0], k) for k in same[1:])
        for g in self.wild:
            first, second = sorted((self.prefixes, self.suffixes), key=lambda keys: keys.count(g))
            yield from ((g, k) for k in first.comparable_to(g) if k != g and second.comparable(g, k))


class _Keys:
    """One key per entry (a literal prefix, or a reversed literal suffix): two entries can only clash when one's key
    starts with the other's."""

    def __init__(self, keys: list[str], wild: list[int]):
        self.keys = keys
        self.order = sorted(range(len(keys)), key=keys.__getitem__)
        self.sorted_keys = [keys[k] for k in self.order]
        self.wild_by_key: dict[str, list[int]] = {}
        for k in wild:
            self.wild_by_key.setdefault(keys[k], []).append(k)

    def _run(self, g: int) -> tuple[int, int]:
        """Where the keys that start with g's lie in the sorted keys (a contiguous run)."""
        key = self.keys[g]
        after = _successor(key)
        lo = bisect_left(self.sorted_keys, key)
        return lo, len(self.sorted_keys) if after is None else bisect_left(self.sorted_keys, after)

    def _shorter(self, g: int) -> Iterator[list[int]]:
        """Globs whose key is a shorter start of g's: a literal that short cannot carry g's prefix or suffix."""
        key = self.keys[g]
        return (self.wild_by_key.get(key[:n], []) for n in range(len(key)))

    def count(self, g: int) -> int:
        lo, hi = self._run(g)
        return hi - lo + sum(len(found) for found in self._shorter(g))

    def comparable_to(self, g: int) -> Iterator[int]:
        lo, hi = self._run(g)
        yield from self.order[lo:hi]
        for found in self._shorter(g):
            yield from found

    def comparable(self, a: int, b: int) -> bool:
        return self.keys[a].startswith(self.keys[b]) or self.keys[b].startswith(self.keys[a])


def _successor(key: str) -> str | None:
    """The least string greater than every string that starts with ``key`` (None: there is none)."""
    key = key.rstrip(_MAX_CHAR)
    return key[:-1] + chr(ord(key[-1]) + 1) if key else None
