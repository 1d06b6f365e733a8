"""WordPiece, BERT's tokenizer: normalize, split into words, then greedy longest-match-first.

Read top to bottom, in the order text goes through it:

1. normalize (as BERT, and Hugging Face's ``BertNormalizer``): drop NUL, U+FFFD and
   control/format characters and turn every whitespace into " "; put spaces around each CJK
   ideograph, so Chinese text splits into characters; for uncased models, strip accents
   (decompose with NFD, drop non-spacing marks), then lowercase one character at a time;
2. split words (``BertPreTokenizer``): on whitespace, and every punctuation character is a
   word of its own;
3. cut each word from the left into the longest piece found in the vocabulary; pieces after
   the first are looked up with the ``##`` prefix, which marks "continues the previous
   piece": ``"unaffable"`` -> ``un ##aff ##able``. If some part of a word matches nothing,
   the whole word becomes ``[UNK]``, as does any word longer than
   ``max_input_chars_per_word`` (100) characters;
4. training (at the end): BPE-like merges chosen by likelihood, not by frequency.

Character classes come from Python's ``unicodedata``. Hugging Face's Rust code uses tables of
another Unicode version, so the two can disagree on characters that were added to Unicode
recently (a few hundred rare code points); everything else matches character for character.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .base import Tokenizer, TokenizerFileError, require, unique_special_tokens, write_text_atomic
from .bpe_trainer import merge_pair

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# ---- 1. normalize, 2. split words ---------------------------------------------------------

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
    """Step 1, all of it. ``strip_accents_text=None`` means: strip accents when lowercasing."""
    text = space_cjk(clean_text(text))
    if lowercase_text if strip_accents_text is None else strip_accents_text:
        text = strip_accents(text)
    if lowercase_text:
        text = lowercase(text)
    return text


def split_words(text: str) -> list[str]:
    """Step 2: words separated by whitespace, each punctuation character a word of its own."""
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


# ---- 3. greedy longest-match-first -------------------------------------------------------

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
        *,
        min_freq: int = 1,
        special_tokens: Sequence[str] = BERT_SPECIAL_TOKENS,
    ) -> WordPieceTokenizer:
        """Learn a vocabulary of ``vocab_size`` tokens from ``text`` (``train_wordpiece_vocab``).

        ``special_tokens`` take the first ids, as in BERT's vocabularies; they must include
        the unknown token.
        """
        special_tokens = unique_special_tokens(special_tokens)
        if self.unk_token not in special_tokens:
            raise ValueError(f"special_tokens must include the unknown token {self.unk_token!r}")
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


# ---- 4. learning a vocabulary: merges chosen by likelihood --------------------------------
#
# Words start as characters, every character after the first marked with ``##``
# (``"hug"`` -> ``h ##u ##g``). Each step merges the adjacent pair with the highest score
#
#     score(a, b) = count(a b) / (count(a) * count(b))
#
# which prefers pairs whose parts rarely occur apart: merging them loses little. (BPE would
# merge the most frequent pair, even if its parts are common everywhere.) Ties go to the more
# frequent pair, then to the smaller pair of strings. This small trainer re-counts all pairs
# after every merge: clear, but meant for corpora of up to a few hundred thousand words.


def initial_pieces(word: str, prefix: str = "##") -> list[str]:
    """``"hug"`` -> ``["h", "##u", "##g"]``."""
    return [word[0]] + [prefix + char for char in word[1:]]


def join_pieces(left: str, right: str, prefix: str = "##") -> str:
    """``("h", "##u")`` -> ``"hu"``; ``("##u", "##g")`` -> ``"##ug"``."""
    return left + (right[len(prefix) :] if right.startswith(prefix) else right)


def train_wordpiece_vocab(
    words: Iterable[str],
    vocab_size: int,
    min_freq: int = 1,
    special_tokens: Sequence[str] = BERT_SPECIAL_TOKENS,
    continuing_prefix: str = "##",
) -> list[str]:
    """The vocabulary in id order: special tokens, the alphabet, then the merged pieces.

    ``words`` are already normalized and split (``normalize``, ``split_words``). Pairs seen
    fewer than ``min_freq`` times are never merged; training stops early when no pair is left.
    """
    word_counts = Counter(w for w in words if w)
    splits = {word: initial_pieces(word, continuing_prefix) for word in word_counts}
    alphabet = sorted({piece for pieces in splits.values() for piece in pieces})
    vocab = list(dict.fromkeys(special_tokens))
    vocab += [piece for piece in alphabet if piece not in vocab]
    if not isinstance(vocab_size, int) or vocab_size < len(vocab):
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the corpus needs {len(alphabet)} single "
            f"characters plus {len(special_tokens)} special tokens"
        )
    known = set(vocab)
    while len(vocab) < vocab_size:
        piece_counts: Counter[str] = Counter()
        pair_counts: Counter[tuple[str, str]] = Counter()
        for word, pieces in splits.items():
            count = word_counts[word]
            for piece in pieces:
                piece_counts[piece] += count
            for pair in zip(pieces, pieces[1:]):
                pair_counts[pair] += count
        candidates = [pair for pair, n in pair_counts.items() if n >= min_freq]
        if not candidates:
            break

        _, (left, right) = min(
            (merge_key(pair, pair_counts[pair], piece_counts), pair) for pair in candidates
        )
        merged = join_pieces(left, right, continuing_prefix)
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        for word, pieces in splits.items():
            if len(pieces) > 1:
                splits[word] = merge_pair(pieces, (left, right), merged)
    return vocab


def merge_key(pair: tuple[str, str], count: int, piece_counts: Counter[str]) -> tuple:
    """Sort key, smallest first: highest score, then highest count, then the smaller pair."""
    return (-count / (piece_counts[pair[0]] * piece_counts[pair[1]]), -count, pair)
