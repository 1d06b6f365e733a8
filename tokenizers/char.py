"""The simplest tokenizer: one id per character (Unicode code point).

Every character of the corpus that is frequent enough gets an id; anything else becomes the
unknown token. Whitespace and punctuation are characters like any other, so text made of
known characters decodes exactly to itself. Sequences are long (one id per character),
which is what subword tokenizers such as BPE improve on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from .base import Tokenizer, TokenizerFileError, require
from .vocab_counting import choose_vocabulary


class CharTokenizer(Tokenizer):
    """Characters to ids. Id 0 is the unknown token; characters follow by frequency.

    ``CharTokenizer().train(text)`` learns the vocabulary. ``decode`` writes the unknown id
    as ``unk_token`` (by default ``"<unk>"``).
    """

    def __init__(self, chars: Iterable[str] = (), unk_token: str = "<unk>") -> None:
        super().__init__()
        self.unk_token = unk_token
        self._set_chars(list(chars))

    def _set_chars(self, chars: list[str]) -> None:
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"a character vocabulary holds single characters, got {c!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("the character vocabulary lists a character twice")
        self.chars = chars
        self._id_of = {c: i + 1 for i, c in enumerate(chars)}
        self._text_of = [self.unk_token, *chars]

    def train(
        self,
        text: str,
        min_freq: int = 1,
        max_size: int | None = None,
        special_tokens: Iterable[str] = (),
    ) -> CharTokenizer:
        """Learn the characters of ``text``.

        ``min_freq``: drop characters seen fewer times. ``max_size``: the largest
        ``vocab_size``, counting the unknown and special tokens.
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
        self._set_chars(choose_vocabulary(Counter(text), min_freq, budget))
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
        return [get(c, 0) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        ids = self._check_ids(ids)
        return "".join(self._texts(ids))

    def register_special_tokens(self, tokens: dict[str, int]) -> None:
        for name, idx in tokens.items():
            if isinstance(idx, int) and idx < len(self._text_of):
                raise ValueError(f"special token {name!r} would reuse id {idx} of a character")
        super().register_special_tokens(tokens)

    def _to_dict(self) -> dict[str, Any]:
        return {"unk_token": self.unk_token, "chars": self.chars}

    @classmethod
    def _from_dict(cls, data: dict[str, Any], where: str) -> CharTokenizer:
        try:
            return cls(require(data, "chars", list, where), require(data, "unk_token", str, where))
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None
