"""Tokenizers over a fixed list of units (characters or words), learned by counting.

Id 0 is the unknown token and the units follow, most frequent first. Training keeps the
units seen at least ``min_freq`` times (ties in sorted order, so the result never depends
on the order of the corpus) and stops at ``max_size``. What a unit is, is the subclass's
choice: ``CharTokenizer`` and ``WordTokenizer`` differ only in how they cut text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .base import Tokenizer


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
        min_freq: int = 1,
        max_size: int | None = None,
        special_tokens: Iterable[str] = (),
    ) -> VocabularyTokenizer:
        """Learn the units of ``text``: the most frequent first, at least ``min_freq`` times.

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
