"""The regular expressions that cut text into pre-tokens before BPE runs.

BPE never merges across a pre-token boundary, so the split pattern decides what a token
can be: with GPT-2's pattern " dog" and "dog." can never become one token. The patterns
below are quoted exactly from tiktoken (``tiktoken_ext/openai_public.py``). They use
possessive quantifiers (``++``) and Unicode classes (``\\p{L}``), which the standard ``re``
module cannot run, so they are compiled with the third-party ``regex`` package.
"""

from __future__ import annotations

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
