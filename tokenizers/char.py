"""The simplest tokenizer: one id per character (Unicode code point).

Every character of the corpus that is frequent enough gets an id; anything else becomes the
unknown token. Whitespace and punctuation are characters like any other, so text made of
known characters decodes exactly to itself. Sequences are long (one id per character),
which is what subword tokenizers such as BPE improve on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import TokenizerFileError, require
from .vocabulary import VocabularyTokenizer


class CharTokenizer(VocabularyTokenizer):
    """Characters to ids. Id 0 is the unknown token; characters follow by frequency.

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
