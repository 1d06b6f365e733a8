"""The simplest tokenizers: one id per character, or one id per word.

Both keep a fixed list of units learned by counting. Id 0 is the unknown token and the
units follow, most frequent first; training keeps the units seen at least ``min_freq`` times
(ties in sorted order, so the result never depends on the order of the corpus) until the
vocabulary has ``vocab_size`` ids. ``CharTokenizer`` and ``WordTokenizer`` differ only in how
they cut text into units, and in what that costs:

- characters: every text made of known characters decodes exactly to itself, but sequences
  are long (one id per character);
- words: sequences are short, but the exact spacing is lost and every word missing from
  the vocabulary becomes the unknown token.

Subword tokenizers (BPE, WordPiece) sit between the two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import regex

from .base import Tokenizer, TokenizerFileError, require, unique_special_tokens

WORD_PATTERN = r"\w+|[^\w\s]"
"""A word is a run of letters, digits and underscores; any other non-space character is a
token of its own (``"don't!"`` -> ``don ' t !``); whitespace only separates."""


def choose_vocabulary(counts: Counter[str], min_freq: int, max_items: int | None) -> list[str]:
    """The items to keep, most frequent first, at most ``max_items`` of them."""
    if not isinstance(min_freq, int) or min_freq < 1:
        raise ValueError(f"min_freq must be an int >= 1, got {min_freq!r}")
    ranked = sorted(
        (item for item, n in counts.items() if n >= min_freq),
        key=lambda item: (-counts[item], item),
    )
    return ranked if max_items is None else ranked[:max_items]


class VocabularyTokenizer(Tokenizer):
    """Units to ids through a list; anything outside it is the unknown token, id 0."""

    unit = "unit"
    """What one token is, for messages ("character", "word")."""
    separator = ""
    """What ``decode`` puts between tokens."""

    def __init__(self, units: Iterable[str] = (), unk_token: str = "<unk>") -> None:
        super().__init__()
        self.unk_token = unk_token
        self._set_vocabulary(list(units))

    def units(self, text: str) -> list[str]:
        """Cut ``text`` into the units this tokenizer counts."""
        raise NotImplementedError

    def _set_vocabulary(self, units: list[str]) -> None:
        for u in units:
            if not isinstance(u, str) or self.units(u) != [u]:
                raise ValueError(f"{u!r} is not a single {self.unit}")
        if len(set(units)) != len(units):
            raise ValueError(f"the vocabulary lists a {self.unit} twice")
        self.vocabulary = units
        self._id_of = {u: i + 1 for i, u in enumerate(units)}
        self._text_of = [self.unk_token, *units]

    def train(
        self,
        text: str,
        vocab_size: int | None = None,
        *,
        min_freq: int = 1,
        special_tokens: Iterable[str] = (),
    ) -> VocabularyTokenizer:
        """Learn the units of ``text``: the most frequent first, seen at least ``min_freq`` times.

        ``vocab_size`` is the largest number of ids, counting the unknown and the special
        tokens (``None``: every unit seen often enough).
        """
        special_tokens = unique_special_tokens(special_tokens)
        budget = None
        if vocab_size is not None:
            if not isinstance(vocab_size, int) or vocab_size < 1 + len(special_tokens):
                raise ValueError(
                    f"vocab_size={vocab_size!r} leaves no room for the unknown token "
                    f"and {len(special_tokens)} special tokens"
                )
            budget = vocab_size - 1 - len(special_tokens)
        self.special_tokens = {}
        self._special_pattern = None
        self._set_vocabulary(choose_vocabulary(Counter(self.units(text)), min_freq, budget))
        self.add_special_tokens(special_tokens)
        return self

    @property
    def vocab_size(self) -> int:
        return max(len(self._text_of), max(self.special_tokens.values(), default=-1) + 1)

    @property
    def unk_id(self) -> int:
        return 0

    def _encode_ordinary(self, text: str) -> list[int]:
        get = self._id_of.get
        return [get(u, 0) for u in self.units(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.separator.join(self._texts(self._check_ids(ids)))

    def register_special_tokens(self, tokens: dict[str, int]) -> None:
        for name, idx in tokens.items():
            if isinstance(idx, int) and idx < len(self._text_of):
                raise ValueError(f"special token {name!r} would reuse id {idx} of a {self.unit}")
        super().register_special_tokens(tokens)


class CharTokenizer(VocabularyTokenizer):
    """Characters (Unicode code points) to ids. Id 0 is the unknown token.

    ``CharTokenizer().train(text)`` learns the vocabulary. ``decode`` writes the unknown id
    as ``unk_token`` (by default ``"<unk>"``).
    """

    unit = "character"

    def __init__(self, chars: Iterable[str] = (), unk_token: str = "<unk>") -> None:
        super().__init__(chars, unk_token)

    @property
    def chars(self) -> list[str]:
        return self.vocabulary

    def units(self, text: str) -> list[str]:
        return list(text)

    def _to_dict(self) -> dict[str, Any]:
        return {"unk_token": self.unk_token, "chars": self.chars}

    @classmethod
    def _from_dict(cls, data: dict[str, Any], where: str) -> CharTokenizer:
        try:
            return cls(require(data, "chars", list, where), require(data, "unk_token", str, where))
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None


class WordTokenizer(VocabularyTokenizer):
    """Words and punctuation marks (``WORD_PATTERN``) to ids. Id 0 is the unknown token.

    ``lowercase=True`` folds case before splitting, so "The" and "the" share an id.
    ``decode`` joins tokens by single spaces (the original spacing is not kept).
    """

    unit = "word"
    separator = " "

    def __init__(
        self, words: Iterable[str] = (), unk_token: str = "<unk>", lowercase: bool = False
    ) -> None:
        self.lowercase = lowercase
        self._split = regex.compile(WORD_PATTERN).findall
        super().__init__(words, unk_token)

    @property
    def words(self) -> list[str]:
        return self.vocabulary

    def split(self, text: str) -> list[str]:
        """The words and punctuation marks of ``text``, whitespace dropped."""
        return self._split(text.lower() if self.lowercase else text)

    units = split

    def _to_dict(self) -> dict[str, Any]:
        return {"unk_token": self.unk_token, "lowercase": self.lowercase, "words": self.words}

    @classmethod
    def _from_dict(cls, data: dict[str, Any], where: str) -> WordTokenizer:
        try:
            return cls(
                require(data, "words", list, where),
                require(data, "unk_token", str, where),
                require(data, "lowercase", bool, where),
            )
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None
