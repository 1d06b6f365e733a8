"""The regular expressions that cut text into pre-tokens before BPE runs, and a fast splitter.

BPE never merges across a pre-token boundary, so the split pattern decides what a token
can be: with GPT-2's pattern " dog" and "dog." can never become one token. The patterns
below are quoted exactly from tiktoken (``tiktoken_ext/openai_public.py``). They use
possessive quantifiers (``++``) and Unicode classes (``\\p{L}``), which the standard ``re``
module cannot run, so they are compiled with the third-party ``regex`` package.

Splitting is a large part of encoding time, so ``Splitter`` (at the end of this module)
runs an equivalent pattern with the faster standard ``re`` whenever that gives exactly the
same pieces; ``regex.findall`` with the pattern itself is the plain form it must agree with.
"""

from __future__ import annotations

import re
from functools import cache

import regex

GPT2_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
"""GPT-2 / r50k_base: contractions, optional space + letters, digits, symbols, spaces."""

GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
"""GPT-4 / cl100k_base: case-insensitive contractions, numbers in groups of at most 3 digits,
newlines kept apart from other whitespace."""

GPT4O_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
"""GPT-4o / o200k_base: words split at case changes (CamelCase -> Camel, Case), marks kept
with their letters, contractions glued to the word before them."""

PATTERNS: dict[str, str] = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "gpt4o": GPT4O_PATTERN}


def resolve_pattern(pattern: str | None) -> str | None:
    """Return the regex for a pattern name (``gpt2``, ``gpt4``, ``gpt4o``) or a custom regex.

    ``None`` means no pre-tokenization: the whole text is one sequence of bytes.
    A custom regex is compiled once here so that a typo fails now, not at encode time.
    """
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a name, a regex string or None, not {type(pattern)}")
    if pattern in PATTERNS:
        return PATTERNS[pattern]
    if pattern == "":
        raise ValueError(
            f"pattern must not be empty; use None for raw bytes or one of {list(PATTERNS)}"
        )
    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(
            f"pattern {pattern!r} is neither a known name {list(PATTERNS)} nor a valid regex: {exc}"
        ) from None
    return pattern


def pattern_name(pattern: str | None) -> str | None:
    """The short name of a known pattern, or None for a custom regex (or no pattern)."""
    for name, known in PATTERNS.items():
        if pattern == known:
            return name
    return None


# ---- splitting 2-3x faster with the standard re module, exactly when that is safe ----
#
# The GPT-2 and GPT-4 split patterns need Unicode classes (``\p{L}`` letters, ``\p{N}``
# numbers) that only the ``regex`` package knows. Python's ``re`` is faster but has other
# classes: ``[^\W\d_]`` (word characters that are not digits or ``_``) for letters, ``\d``
# for numbers, and its own ``\s``. They agree on almost every character, but not all:
# ``²`` is a number to ``regex`` and a "letter" to ``re``; ``\x1c`` is a space only to ``re``.
#
# The patterns are built from these classes, literal ASCII characters and anchors, and both
# engines give alternatives, possessive quantifiers and lookaheads the same meaning. So if
# every character of a text is classified alike by both, the two patterns split the text
# identically. ``Splitter`` checks exactly that (the distinct characters, remembered between
# calls) and uses ``re`` when it holds, ``regex`` otherwise. GPT-4o's pattern needs classes
# ``re`` lacks (upper/lower case letters, marks), so they are listed out character by
# character for the first 12288 code points (Latin, Greek, Cyrillic, ..., Indic scripts).

Classes = list[tuple[re.Pattern, regex.Pattern]]

UNICODE_CLASSES: Classes = [
    (re.compile(r"[^\W\d_]"), regex.compile(r"\p{L}")),
    (re.compile(r"\d"), regex.compile(r"\p{N}")),
    (re.compile(r"\s"), regex.compile(r"\s")),
    (re.compile(r"(?i:[sdmtlvre])"), regex.compile(r"(?i:[sdmtlvre])")),  # case folding
]
"""The classes of the GPT-2 and GPT-4 patterns: ``re``'s own, beside ``regex``'s."""

RE_EQUIVALENTS = {
    GPT2_PATTERN: (
        r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]++| ?\d++| ?(?:[^\s\w]|_)++|\s++$|\s+(?!\S)|\s"""
    ),
    GPT4_PATTERN: (
        r"""'(?i:[sdmt]|ll|ve|re)|(?:[^\r\n\w]|_)?+[^\W\d_]++|\d{1,3}+"""
        r"""| ?(?:[^\s\w]|_)++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
}
"""The GPT-2 and GPT-4 patterns with ``re``'s classes in place of ``regex``'s."""

NON_ASCII = re.compile(r"[^\x00-\x7f]")


def listed_class(slow: str, below: int = 0x3000) -> str:
    """The characters below ``below`` that ``regex`` puts in class ``slow``, as ranges for
    a ``re`` character set (``re`` has no Unicode category classes such as ``\\p{Lu}``)."""
    members = regex.compile(slow)
    ranges: list[list[int]] = []
    for cp in range(below):
        if members.match(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return "".join(
        re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges
    )


@cache
def gpt4o_equivalent() -> tuple[str, Classes]:
    """The GPT-4o pattern for ``re``, with its classes listed for the first 12288 code points.

    Characters beyond that range that belong to a class simply make ``can_use_re`` fail.
    """
    upper, lower = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
    up, low = listed_class(upper), listed_class(lower)
    letter, number = listed_class(r"\p{L}"), listed_class(r"\p{N}")
    suffix = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    pattern = "|".join(
        [
            rf"[^\r\n{letter}{number}]?[{up}]*[{low}]+{suffix}",
            rf"[^\r\n{letter}{number}]?[{up}]+[{low}]*{suffix}",
            rf"[{number}]{{1,3}}",
            rf" ?[^\s{letter}{number}]+[\r\n/]*",
            r"\s*[\r\n]+",
            r"\s+(?!\S)",
            r"\s+",
        ]
    )
    classes = [
        (re.compile(f"[{up}]"), regex.compile(upper)),
        (re.compile(f"[{low}]"), regex.compile(lower)),
        (re.compile(f"[{letter}]"), regex.compile(r"\p{L}")),
        (re.compile(f"[{number}]"), regex.compile(r"\p{N}")),
        (re.compile(r"\s"), regex.compile(r"\s")),
        (re.compile(r"(?i:[stremvld])"), regex.compile(r"(?i:[stremvld])")),
    ]
    return pattern, classes


def classified_alike(char: str, classes: Classes = UNICODE_CLASSES) -> bool:
    """Do ``re`` and ``regex`` put ``char`` in the same classes?"""
    return all(bool(fast.match(char)) == bool(slow.match(char)) for fast, slow in classes)


class Splitter:
    """``regex.findall`` for a split pattern, through ``re`` whenever that gives the same result."""

    def __init__(self, pattern: str) -> None:
        self.slow = regex.compile(pattern).findall
        self.fast = None
        self._classes = UNICODE_CLASSES
        if pattern in RE_EQUIVALENTS or pattern == GPT4O_PATTERN:
            try:
                if pattern == GPT4O_PATTERN:
                    equivalent, self._classes = gpt4o_equivalent()
                else:
                    equivalent = RE_EQUIVALENTS[pattern]
                self.fast = re.compile(equivalent).findall
            except re.error:  # possessive quantifiers need Python 3.11
                pass
        differing_ascii = "".join(
            chr(c) for c in range(128) if not classified_alike(chr(c), self._classes)
        )
        self._differing_ascii = re.compile(
            f"[{re.escape(differing_ascii)}]" if differing_ascii else r"(?!)"
        )  # (?!) never matches
        self._alike: dict[str, bool] = {}

    def can_use_re(self, text: str) -> bool:
        if self.fast is None or self._differing_ascii.search(text):
            return False
        if text.isascii():
            return True
        alike = self._alike
        for char in set(NON_ASCII.findall(text)):
            if char not in alike:
                if len(alike) > 100_000:
                    alike.clear()
                alike[char] = classified_alike(char, self._classes)
            if not alike[char]:
                return False
        return True

    def __call__(self, text: str) -> list[str]:
        return self.fast(text) if self.can_use_re(text) else self.slow(text)
