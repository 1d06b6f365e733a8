"""The regular expressions that cut text into pre-tokens before BPE runs, and a fast splitter.

BPE never merges across a pre-token boundary, so the split pattern decides what a token
can be: with GPT-2's pattern " dog" and "dog." can never become one token. The patterns
below are quoted exactly from tiktoken (``tiktoken_ext/openai_public.py``). They use
Unicode classes (``\\p{L}``), which the standard ``re`` module does not know, and possessive
quantifiers (``++``), which it runs only from Python 3.11, so they are compiled with the
third-party ``regex`` package.

Splitting is a large part of encoding time, so ``Splitter`` (at the end of this module)
runs an equivalent pattern with the faster standard ``re`` whenever that gives exactly the
same pieces; ``regex.findall`` with the pattern itself is the plain form it must agree with.
``chunks`` cuts a large text where every built-in pattern splits anyway, so that training
never holds all of its pre-tokens at once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
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


# ---- splitting 1.5-2x faster with the standard re module, exactly ------------------------
#
# The split patterns are written with Unicode classes (``\p{L}`` letters, ``\p{N}`` numbers,
# ``\p{Lu}`` upper case, ...) that only the ``regex`` package knows, and ``re``'s ``\s``
# differs from ``regex``'s on four control characters (``\x1c``-``\x1f``). Python's ``re`` is
# faster, fastest when a class is a plain set of characters (one table lookup) rather than a
# Unicode category. So ``re_equivalent`` rewrites a pattern with each class listed out, as
# ``regex`` defines it, character by character over the Basic Multilingual Plane (U+0000 to
# U+FFFF, every script in everyday use). Everything else in the patterns (literals, anchors,
# lookaheads, possessive quantifiers, case-insensitive contractions) means the same in both
# engines, so on text within that plane the two patterns are one pattern. A character beyond
# it (emoji, math letters, rare scripts) is in no listed class, so ``Splitter`` uses ``re``
# only when every such character of a text is in no class for ``regex`` either. For GPT-4o
# there is one more step: on text whose letters all have a case, a simpler pattern that
# gives the same pre-tokens.

GPT4O_CASED_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?+(?=\p{L})[\p{Lu}\p{Lt}]*+\p{Ll}*+(?:'(?i:s|t|re|ve|m|ll|d)|)""",
        r"""\p{N}{1,3}+""",
        r""" ?+[^\s\p{L}\p{N}]++[\r\n/]*+""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
"""GPT-4o's pattern for text in which every letter has a case: no marks and no letters of
the other kinds (categories Lm and Lo: CJK, Arabic, Hebrew, ...). Upper and lower case no
longer overlap there, so the first two alternatives ("upper* lower+", else "upper+ lower*",
after an optional non-letter) become one that never backtracks: "a letter follows; upper*
lower*". Nor do the next two need to give anything back. The same pre-tokens on such text,
found about 25% faster."""

UNCASED = r"[\p{Lm}\p{Lo}\p{M}]"
"""What ``GPT4O_CASED_PATTERN`` must not meet."""

CLASS_TOKEN = re.compile(r"\\p\{\w+\}|\\s|\\S|\\.|\[\^?|\]")
"""What ``re_equivalent`` looks at in a pattern: classes, other escapes, set brackets."""

BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")


@cache
def bmp_characters() -> str:
    """Every code point U+0000..U+FFFF except the surrogates, which text never holds here."""
    return "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))


@cache
def listed_class(slow: str) -> str:
    """The characters of the BMP that ``regex`` puts in class ``slow`` (e.g. ``\\p{L}``),
    as ranges to go inside a ``re`` character set."""
    ranges: list[list[int]] = []
    for cp in map(ord, regex.findall(slow, bmp_characters())):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(
        re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges
    )


def re_equivalent(pattern: str) -> tuple[str, list[str]]:
    """``pattern`` with each class (``\\p{..}``, ``\\s``, ``\\S``) listed out for ``re``, and
    the classes it replaced."""
    classes: list[str] = []
    in_set = False

    def rewrite(match: re.Match) -> str:
        nonlocal in_set
        token = match.group()
        if token.startswith("["):
            in_set = True
        elif token == "]":
            in_set = False
        elif token in (r"\s", r"\S") or token.startswith(r"\p"):
            negated = token == r"\S"
            if negated and in_set:
                raise ValueError(r"\S inside a set has no listed form")
            slow = r"\s" if negated else token
            classes.append(slow)
            listed = listed_class(slow)
            return listed if in_set else ("[^" if negated else "[") + listed + "]"
        return token

    return CLASS_TOKEN.sub(rewrite, pattern), classes


class Splitter:
    """``regex.findall`` for a split pattern, through ``re`` whenever that gives the same result.

    Only the built-in patterns get the ``re`` form: a custom regex may use syntax that the
    two engines read differently.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.slow = regex.compile(pattern).findall
        self.fast = self.fast_cased = None
        if pattern in PATTERNS.values():
            equivalent, classes = re_equivalent(pattern)
            try:
                self.fast = re.compile(equivalent).findall
            except re.error:  # possessive quantifiers need Python 3.11
                return
            self._in_some_class = regex.compile("|".join(dict.fromkeys(classes))).search
            unusual = BEYOND_BMP.pattern
            if pattern == GPT4O_PATTERN:
                self.fast_cased = re.compile(re_equivalent(GPT4O_CASED_PATTERN)[0]).findall
                unusual = unusual[:-1] + re_equivalent(UNCASED)[0][1:]  # one set of both
            self._unusual = re.compile(unusual).search

    def can_use_re(self, text: str) -> bool:
        if self.fast is None:
            return False
        if text.isascii():
            return True
        beyond = BEYOND_BMP.findall(text)
        return not beyond or not self._in_some_class("".join(beyond))

    def __call__(self, text: str) -> list[str]:
        if self.fast is None:
            return self.slow(text)
        if text.isascii() or not self._unusual(text):  # the usual case, checked in one scan
            return (self.fast_cased or self.fast)(text)
        return self.fast(text) if self.can_use_re(text) else self.slow(text)

    def count(self, text: str, counts: Counter[str]) -> None:
        """Add how often each pre-token occurs in ``text`` to ``counts``, splitting the text a
        megabyte at a time (see ``chunks``): its pre-tokens are never all in memory at once."""
        for chunk in chunks(text) if self.pattern in PATTERNS.values() else [text]:
            counts.update(self(chunk))


CHUNK_CHARS = 1 << 20


def chunks(text: str, size: int = CHUNK_CHARS) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, each cut just before a newline that
    follows a letter.

    The built-in patterns split such a text at that place too: a pre-token that holds a
    letter holds no newline (it is letters, perhaps with one other character before them
    and a contraction after, or a contraction alone), and the patterns look neither behind
    a position nor, at the end of a chunk, past a letter. So the pre-tokens of the chunks
    are the pre-tokens of the text.
    """
    start = 0
    while len(text) - start > size:
        cut = text.find("\n", start + size)
        while cut != -1 and not text[cut - 1].isalpha():
            cut = text.find("\n", cut + 1)
        if cut == -1:
            break
        yield text[start:cut]
        start = cut
    yield text[start:]
