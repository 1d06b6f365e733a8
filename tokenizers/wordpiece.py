"""WordPiece, BERT's tokenizer: normalize, split into words, then greedy longest-match-first.

Each word is cut from the left into the longest piece found in the vocabulary; pieces after
the first are looked up with the ``##`` prefix, which marks "continues the previous piece":
``"unaffable"`` -> ``un ##aff ##able``. If some part of a word matches nothing, the whole
word becomes ``[UNK]``, as does any word longer than 100 characters. Normalization and
word splitting are in ``bert_normalizer.py``; training in ``wordpiece_trainer.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .base import Tokenizer, TokenizerFileError, require, write_text_atomic
from .bert_normalizer import normalize, split_words
from .wordpiece_trainer import train_wordpiece_vocab

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass
class WordPieceEncoding:
    """The ids of one or two texts, with the segment (token type) of each id: 0 or 1."""

    ids: list[int]
    token_type_ids: list[int]
    tokens: list[str]


class WordPieceTokenizer(Tokenizer):
    """BERT's tokenizer over a vocabulary listed in id order (as in ``vocab.txt``).

    Parameters
    ----------
    vocab:
        Tokens in id order, or a ``{token: id}`` mapping. Continuation pieces start ``##``.
    lowercase:
        Uncased models (``bert-base-uncased``, MiniLM): lowercase, and strip accents unless
        ``strip_accents`` says otherwise.
    """

    def __init__(
        self,
        vocab: Sequence[str] | Mapping[str, int] = BERT_SPECIAL_TOKENS,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        unk_token: str = "[UNK]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        max_input_chars_per_word: int = 100,
        continuing_prefix: str = "##",
    ) -> None:
        super().__init__()
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.continuing_prefix = continuing_prefix
        self._set_vocab(vocab)

    def _set_vocab(self, vocab: Sequence[str] | Mapping[str, int]) -> None:
        if isinstance(vocab, Mapping):
            token_ids = dict(vocab)
        else:
            token_ids = {}
            for idx, token in enumerate(vocab):
                token_ids.setdefault(token, idx)
        if self.unk_token not in token_ids:
            raise ValueError(f"the vocabulary has no unknown token {self.unk_token!r}")
        bad = [
            (t, i)
            for t, i in token_ids.items()
            if not isinstance(t, str) or not isinstance(i, int) or isinstance(i, bool) or i < 0
        ]
        if bad:
            raise ValueError(f"vocabulary entries must be str -> int >= 0, got {bad[0]!r}")
        self.vocab: dict[str, int] = token_ids
        self._id_to_token = {idx: token for token, idx in token_ids.items()}
        self._cache: dict[str, list[int]] = {}
        named = (*BERT_SPECIAL_TOKENS, self.unk_token, self.cls_token, self.sep_token)
        self.special_tokens = {}
        self._special_pattern = None
        self.register_special_tokens({t: token_ids[t] for t in named if t in token_ids})

    def train(
        self,
        text: str,
        vocab_size: int,
        min_freq: int = 1,
        special_tokens: Sequence[str] = BERT_SPECIAL_TOKENS,
    ) -> WordPieceTokenizer:
        """Learn a vocabulary of ``vocab_size`` tokens from ``text`` (see ``wordpiece_trainer``).

        ``special_tokens`` take the first ids, as in BERT's vocabularies.
        """
        self._set_vocab(
            train_wordpiece_vocab(
                split_words(self.normalize(text)),
                vocab_size,
                min_freq=min_freq,
                special_tokens=special_tokens,
                continuing_prefix=self.continuing_prefix,
            )
        )
        return self

    @classmethod
    def from_vocab(cls, path: str | os.PathLike, lowercase: bool = True, **kwargs: Any):
        """Load BERT's ``vocab.txt``: one token per line, the line number is the id."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"WordPiece vocabulary not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise TokenizerFileError(f"{path} is not a UTF-8 vocab.txt: {exc}") from None
        tokens = [line.rstrip("\r") for line in text.split("\n")]
        if tokens and tokens[-1] == "":
            tokens.pop()
        try:
            return cls(tokens, lowercase=lowercase, **kwargs)
        except ValueError as exc:
            raise TokenizerFileError(f"{path}: {exc}") from None

    def save_vocab(self, path: str | os.PathLike) -> None:
        """Write ``vocab.txt`` (token per line in id order), readable by ``from_vocab``."""
        tokens = [self._id_to_token.get(i, f"[unused_{i}]") for i in range(self.vocab_size)]
        write_text_atomic(path, "\n".join(tokens) + "\n")

    def id_to_token(self, idx: int) -> str:
        """The vocabulary entry of ``idx``, ``##`` included."""
        return self._id_to_token[self._check_ids([idx])[0]]

    @property
    def vocab_size(self) -> int:
        return max(self._id_to_token) + 1

    # ---- encoding ---------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        return normalize(text, self.lowercase, self.strip_accents)

    def word_pieces(self, word: str) -> list[str]:
        """Greedy longest-match-first: ``"unaffable"`` -> ``["un", "##aff", "##able"]``."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else self.continuing_prefix + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of ``text`` (no ``[CLS]``/``[SEP]``)."""
        return [p for word in split_words(self.normalize(text)) for p in self.word_pieces(word)]

    def _encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = []
        cache = self._cache
        for word in split_words(self.normalize(text)):
            word_ids = cache.get(word)
            if word_ids is None:
                word_ids = [self.vocab[p] for p in self.word_pieces(word)]
                if len(cache) >= 65536:
                    cache.clear()
                cache[word] = word_ids
            ids += word_ids
        return ids

    def encode(
        self,
        text: str,
        *,
        add_special_tokens: bool = True,
        allowed_special: Iterable[str] | Literal["all"] = (),
        disallowed_special: Iterable[str] | Literal["all"] = "all",
    ) -> list[int]:
        """Ids of ``text``, as ``[CLS] ... [SEP]`` when ``add_special_tokens`` (the default).

        Special tokens in the text follow the shared rule (an error unless allowed).
        """
        ids = super().encode(
            text, allowed_special=allowed_special, disallowed_special=disallowed_special
        )
        if add_special_tokens:
            ids = [self._special_id(self.cls_token), *ids, self._special_id(self.sep_token)]
        return ids

    def encode_pair(
        self, text: str, text_pair: str, add_special_tokens: bool = True, **encode_kwargs: Any
    ) -> WordPieceEncoding:
        """``[CLS] A [SEP] B [SEP]``: token type 0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``."""
        a = self.encode(text, add_special_tokens=False, **encode_kwargs)
        b = self.encode(text_pair, add_special_tokens=False, **encode_kwargs)
        if add_special_tokens:
            cls, sep = self._special_id(self.cls_token), self._special_id(self.sep_token)
            a, b = [cls, *a, sep], [*b, sep]
        ids = a + b
        tokens = [self._id_to_token[i] for i in ids]
        return WordPieceEncoding(ids, [0] * len(a) + [1] * len(b), tokens)

    def _special_id(self, token: str) -> int:
        if token not in self.vocab:
            raise ValueError(f"the vocabulary has no {token!r}, needed by add_special_tokens=True")
        return self.vocab[token]

    # ---- decoding ---------------------------------------------------------------------

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Join the pieces: ``##`` pieces glue to the one before, others get a space.

        Normalization cannot be undone (case, accents, spacing), so this is not the
        original text; like Hugging Face it removes the space before ``. , ! ?`` and in
        contractions.
        """
        ids = self._check_ids(ids)
        specials = set(self.special_tokens.values())
        words: list[str] = []
        for position, idx in enumerate(ids):
            if idx not in self._id_to_token:
                raise ValueError(f"token id {idx} at position {position} is not in the vocabulary")
            if skip_special_tokens and idx in specials:
                continue
            token = self._id_to_token[idx]
            if token.startswith(self.continuing_prefix) and words:
                words[-1] += token[len(self.continuing_prefix) :]
            else:
                words.append(token)
        text = " ".join(words)
        for before, after in CLEANUP:
            text = text.replace(before, after)
        return text

    # ---- files ------------------------------------------------------------------------

    def _to_dict(self) -> dict[str, Any]:
        return {
            "vocab": self.vocab,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "unk_token": self.unk_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "continuing_prefix": self.continuing_prefix,
        }

    @classmethod
    def _from_dict(cls, data: dict[str, Any], where: str) -> WordPieceTokenizer:
        vocab = require(data, "vocab", dict, where)
        if not all(isinstance(i, int) for i in vocab.values()):
            raise TokenizerFileError(f"{where}: field 'vocab' must map tokens to int ids")
        strip = data.get("strip_accents")
        if strip is not None and not isinstance(strip, bool):
            raise TokenizerFileError(f"{where}: field 'strip_accents' should be true/false/null")
        try:
            return cls(
                vocab,
                lowercase=require(data, "lowercase", bool, where),
                strip_accents=strip,
                unk_token=require(data, "unk_token", str, where),
                cls_token=require(data, "cls_token", str, where),
                sep_token=require(data, "sep_token", str, where),
                max_input_chars_per_word=require(data, "max_input_chars_per_word", int, where),
                continuing_prefix=require(data, "continuing_prefix", str, where),
            )
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None


CLEANUP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)
"""Hugging Face's ``clean_up_tokenization``: spaces that BERT's splitting put in, removed."""
