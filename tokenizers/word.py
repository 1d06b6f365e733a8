"""A word-level tokenizer: one id per word, the way early neural language models worked.

Text is cut into words (runs of letters, digits and underscores, ``\\w+``) and punctuation
marks (each non-space, non-word character is a token of its own: ``"don't!"`` becomes
``don ' t !``). Whitespace only separates tokens and is dropped, so ``decode`` joins tokens
with single spaces: the exact spacing is lost. Words outside the vocabulary become the
unknown token. These two losses (spacing and rare words) are why subword tokenizers exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import regex

from .base import Tokenizer, TokenizerFileError, require
from .vocab_counting import choose_vocabulary

WORD_PATTERN = r"\w+|[^\w\s]"


class WordTokenizer(Tokenizer):
    """Words and punctuation marks to ids. Id 0 is the unknown token.

    ``lowercase=True`` folds case before splitting, so "The" and "the" share an id.
    """

    def __init__(
        self, words: Iterable[str] = (), unk_token: str = "<unk>", lowercase: bool = False
    ) -> None:
        super().__init__()
        self.unk_token = unk_token
        self.lowercase = lowercase
        self._split = regex.compile(WORD_PATTERN).findall
        self._set_words(list(words))

    def _set_words(self, words: list[str]) -> None:
        for w in words:
            if not isinstance(w, str) or self.split(w) != [w]:
                raise ValueError(f"{w!r} is not a single word or punctuation mark")
        if len(set(words)) != len(words):
            raise ValueError("the word vocabulary lists a word twice")
        self.words = words
        self._id_of = {w: i + 1 for i, w in enumerate(words)}
        self._text_of = [self.unk_token, *words]

    def split(self, text: str) -> list[str]:
        """The words and punctuation marks of ``text``, whitespace dropped."""
        return self._split(text.lower() if self.lowercase else text)

    def train(
        self,
        text: str,
        min_freq: int = 1,
        max_size: int | None = None,
        special_tokens: Iterable[str] = (),
    ) -> WordTokenizer:
        """Learn the words of ``text``: the most frequent first, at least ``min_freq`` times.

        ``max_size`` is the largest ``vocab_size``, counting the unknown and special tokens.
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        budget = None
        if max_size is not None:
            budget = max_size - 1 - len(special_tokens)
            if budget < 0:
                raise ValueError(
                    f"max_size={max_size} leaves no room for the unknown token "
                    f"and {len(special_tokens)} special tokens"
                )
        self.special_tokens = {}
        self._special_pattern = None
        self._set_words(choose_vocabulary(Counter(self.split(text)), min_freq, budget))
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
        return [get(w, 0) for w in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Tokens joined by single spaces (the original spacing is not kept)."""
        return " ".join(self._texts(self._check_ids(ids)))

    def register_special_tokens(self, tokens: dict[str, int]) -> None:
        for name, idx in tokens.items():
            if isinstance(idx, int) and idx < len(self._text_of):
                raise ValueError(f"special token {name!r} would reuse id {idx} of a word")
        super().register_special_tokens(tokens)

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
