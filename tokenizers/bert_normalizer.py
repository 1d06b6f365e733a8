"""BERT's text clean-up and word splitting, the steps before WordPiece.

In order, as in BERT (and Hugging Face's ``BertNormalizer`` + ``BertPreTokenizer``):

1. clean: drop NUL, U+FFFD and control/format characters; every whitespace becomes " ";
2. CJK: put spaces around each CJK ideograph, so Chinese text splits into characters;
3. uncased models: strip accents (decompose with NFD, drop non-spacing marks), then
   lowercase one character at a time;
4. split on whitespace, and make every punctuation character a word of its own.

Character classes come from Python's ``unicodedata``. Hugging Face's Rust code uses tables of
another Unicode version, so the two can disagree on characters that were added to Unicode
recently (a few hundred rare code points); everything else matches character for character.
"""

from __future__ import annotations

import unicodedata

CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
"""The "CJK Unified Ideographs" blocks BERT treats as words of their own (not kana/hangul).

Hugging Face's tokenizer (the reference here) starts the fifth range at U+2B920, where
Google's original code has U+2B820; we follow Hugging Face.
"""


def is_control(char: str) -> bool:
    """Control, format or private-use; tab, newline and CR count as whitespace."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf", "Co")


def is_whitespace(char: str) -> bool:
    return char.isspace()


def is_punctuation(char: str) -> bool:
    """Unicode punctuation (P*), plus every ASCII symbol such as ``$ + < = > ^ ` | ~``."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def clean_text(text: str) -> str:
    """Drop characters that carry no text and turn all whitespace into plain spaces."""
    out = []
    for char in text:
        if char == "\0" or char == "\ufffd" or is_control(char):
            continue
        out.append(" " if is_whitespace(char) else char)
    return "".join(out)


def space_cjk(text: str) -> str:
    """Surround each CJK ideograph with spaces: ``"我爱"`` -> ``" 我  爱 "``."""
    return "".join(f" {char} " if is_cjk(char) else char for char in text)


def strip_accents(text: str) -> str:
    """``"Héllo"`` -> ``"Hello"``: decompose (NFD) and drop the non-spacing marks."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def lowercase(text: str) -> str:
    """Lowercase character by character (so a final Σ becomes σ, not ς, as in BERT)."""
    return "".join(char.lower() for char in text)


def normalize(
    text: str, lowercase_text: bool = True, strip_accents_text: bool | None = None
) -> str:
    """Steps 1-3. ``strip_accents_text=None`` means: strip accents when lowercasing."""
    text = space_cjk(clean_text(text))
    if lowercase_text if strip_accents_text is None else strip_accents_text:
        text = strip_accents(text)
    if lowercase_text:
        text = lowercase(text)
    return text


def split_words(text: str) -> list[str]:
    """Step 4: words separated by whitespace, each punctuation character a word of its own."""
    words: list[str] = []
    current: list[str] = []
    for char in text:
        if is_whitespace(char) or is_punctuation(char):
            if current:
                words.append("".join(current))
                current = []
            if not is_whitespace(char):
                words.append(char)
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words
