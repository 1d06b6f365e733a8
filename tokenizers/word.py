"""A word-level tokenizer: one id per word, the way early neural language models worked.

Text is cut into words (runs of letters, digits and underscores, ``\\w+``) and punctuation
marks (each non-space, non-word character is a token of its own: ``"don't!"`` becomes
``don ' t !``). Whitespace only separates tokens and is dropped, so ``decode`` joins tokens
with single spaces: the exact spacing is lost. Words outside the vocabulary become the
unknown token. These two losses (spacing and rare words) are why subword tokenizers exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import regex

from .base import TokenizerFileError, require
from .vocabulary import VocabularyTokenizer

WORD_PATTERN = r"\w+|[^\w\s]"


class WordTokenizer(VocabularyTokenizer):
    """Words and punctuation marks to ids. Id 0 is the unknown token.

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
