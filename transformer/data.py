"""Data: text in, batches of token ids out; and the toy tasks of the other two models.

Read top to bottom:

1. Corpora: the embedded default (Python's reference documentation, in every CPython), or
   any UTF-8 text file; a binary or empty file is refused with its name.
2. Tokenizing: a character or byte-level BPE tokenizer from `tokenizers`, trained on the
   corpus; the text split into a training and a validation part.
3. Batches for a language model: B random windows of T + 1 tokens; the input is the first
   T, the target the last T (each position's next token), so one window teaches T
   predictions at once.
4. Toy tasks generated in code: reversing digit strings (for the encoder-decoder) and
   naming the most frequent letter of a string (for the encoder's classifier).

A task (`LanguageModelTask`, `ReversalTask`, `MajorityTask`) gives the trainer what it
needs: `batch(split, batch_size, rng)`, `loss(model, batch)` and `tokens(batch)`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import Tensor
from tokenizers import BPETokenizer, CharTokenizer, Tokenizer, default_corpus, read_text_file

TOKENIZERS = ("char", "bpe")


# ===================================================================== 1. corpora
def load_corpus(path: str | Path | None = None) -> str:
    """The text at `path`, or the embedded default corpus (about 465 KB) when None."""
    return default_corpus() if path is None else read_text_file(path)


# ===================================================================== 2. tokenizing
def train_tokenizer(text: str, kind: str = "char", vocab_size: int | None = None) -> Tokenizer:
    """A tokenizer learned from `text`: "char" (one id per character; `vocab_size` caps it)
    or "bpe" (byte-level BPE with GPT-4's split pattern, `vocab_size` ids, 512 by default)."""
    if kind == "char":
        return CharTokenizer().train(text, vocab_size)
    if kind == "bpe":
        return BPETokenizer().train(text, 512 if vocab_size is None else vocab_size)
    raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {kind!r}")


@dataclass
class TokenizedCorpus:
    """A corpus as ids: `train` and `val` (1-D int arrays) and how many characters of text
    each split holds (a loss per token times tokens / characters is the loss per character,
    comparable between tokenizers)."""

    train: np.ndarray
    val: np.ndarray
    train_chars: int
    val_chars: int

    @classmethod
    def from_text(
        cls, text: str, tokenizer: Tokenizer, val_fraction: float = 0.1
    ) -> TokenizedCorpus:
        """Split `text` at 1 - val_fraction of its characters and encode both parts."""
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        cut = int(len(text) * (1 - val_fraction))
        train_text, val_text = text[:cut], text[cut:]
        train = np.array(tokenizer.encode_ordinary(train_text), dtype=np.int64)
        val = np.array(tokenizer.encode_ordinary(val_text), dtype=np.int64)
        return cls(train, val, len(train_text), len(val_text))

    def chars_per_token(self, split: str = "val") -> float:
        ids, chars = (
            (self.val, self.val_chars) if split == "val" else (self.train, self.train_chars)
        )
        return chars / max(len(ids), 1)


# ===================================================================== 3. language-model batches
def random_windows(
    ids: np.ndarray, batch_size: int, block_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """B windows at random starts: inputs (B, T) and targets (B, T), targets[t] = ids[t + 1]."""
    starts = rng.integers(0, len(ids) - block_size, batch_size)  # (B,)
    windows = ids[starts[:, None] + np.arange(block_size + 1)]  # (B, T + 1)
    return windows[:, :-1], windows[:, 1:]


def consecutive_windows(
    ids: np.ndarray, block_size: int, batch_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every token of `ids` predicted once: non-overlapping windows (B, T), the last one
    shorter, grouped in batches. The evaluation of a whole split."""
    n = (len(ids) - 1) // block_size
    inputs = ids[: n * block_size].reshape(n, block_size)  # (n, T)
    targets = ids[1 : n * block_size + 1].reshape(n, block_size)
    batches = [
        (inputs[i : i + batch_size], targets[i : i + batch_size]) for i in range(0, n, batch_size)
    ]
    rest = len(ids) - 1 - n * block_size
    if rest:
        batches.append((ids[None, n * block_size : -1], ids[None, n * block_size + 1 :]))
    return batches


class LanguageModelTask:
    """Next-token prediction on a tokenized corpus, for a GPT (or any model called as
    `logits, loss = model(idx, targets)`)."""

    equal_rows = True  # every window has block_size targets: a share of the rows is that
    # share of the loss, so processes can share a batch (transformer/parallel.py)

    def __init__(self, corpus: TokenizedCorpus, block_size: int) -> None:
        for split in ("train", "val"):
            if len(getattr(corpus, split)) < block_size + 2:
                raise ValueError(
                    f"the {split} split has {len(getattr(corpus, split))} tokens, too few for "
                    f"one window of block_size={block_size}; give more text or a smaller block"
                )
        self.corpus, self.block_size = corpus, block_size
        self.chars_per_token = corpus.chars_per_token("val")  # for the loss per character

    def batch(self, split: str, batch_size: int, rng: np.random.Generator) -> tuple:
        ids = self.corpus.train if split == "train" else self.corpus.val
        return random_windows(ids, batch_size, self.block_size, rng)

    def loss(self, model: Any, batch: tuple) -> Tensor:
        inputs, targets = batch
        return model(inputs, targets)[1]

    def tokens(self, batch: tuple) -> int:
        return batch[0].size


# ===================================================================== 4. toy tasks
DIGITS = string.digits


class ReversalTask:
    """Reverse a string of digits: "4071" -> "1704", for the encoder-decoder.

    Vocabulary: 0 pad, 1 start (bos), 2 end (eos), then the digits 0-9 as ids 3-12. The
    decoder reads [bos, y_1, ..., y_n] and must predict [y_1, ..., y_n, eos]; the source and
    the target are padded to the longest in the batch. Lengths are drawn from
    [min_length, max_length]; the validation split uses its own generator, so it holds
    strings the training batches may also contain (there are only so many).
    """

    pad_id, bos_id, eos_id = 0, 1, 2
    vocab_size = 3 + len(DIGITS)

    def __init__(self, min_length: int = 2, max_length: int = 8) -> None:
        if not 1 <= min_length <= max_length:
            raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
        self.min_length, self.max_length = min_length, max_length

    def encode(self, digits: str) -> list[int]:
        if not digits or any(c not in DIGITS for c in digits):
            raise ValueError(f"the reversal task reads digit strings, got {digits!r}")
        return [3 + int(c) for c in digits]

    def decode(self, ids: list[int]) -> str:
        return "".join(DIGITS[i - 3] for i in ids if 3 <= i < self.vocab_size)

    def examples(self, n: int, rng: np.random.Generator) -> list[str]:
        lengths = rng.integers(self.min_length, self.max_length + 1, n)
        return ["".join(rng.choice(list(DIGITS), length)) for length in lengths]

    def collate(self, sources: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded (src (B, S), decoder input (B, S + 1), targets (B, S + 1))."""
        B, S = len(sources), max(len(s) for s in sources)
        src = np.full((B, S), self.pad_id)
        tgt_in = np.full((B, S + 1), self.pad_id)
        targets = np.full((B, S + 1), self.pad_id)
        for b, digits in enumerate(sources):
            ids = self.encode(digits)
            answer = ids[::-1]
            src[b, : len(ids)] = ids
            tgt_in[b, : len(ids) + 1] = [self.bos_id, *answer]
            targets[b, : len(ids) + 1] = [*answer, self.eos_id]
        return src, tgt_in, targets

    def batch(self, split: str, batch_size: int, rng: np.random.Generator) -> tuple:
        return self.collate(self.examples(batch_size, rng))

    def loss(self, model: Any, batch: tuple) -> Tensor:
        src, tgt_in, targets = batch
        return model(src, tgt_in, targets)[1]

    def tokens(self, batch: tuple) -> int:
        return int((batch[0] != self.pad_id).sum() + (batch[2] != self.pad_id).sum())


class MajorityTask:
    """Name the most frequent letter of a string such as "abacdaab" (-> a), for the encoder.

    Vocabulary: 0 pad, 1 [CLS], then the letters. Strings are drawn at random until one
    letter is strictly the most frequent (so the classes are balanced); the encoder must
    count over the whole sequence, which attention does in one step.
    """

    pad_id, cls_id = 0, 1

    def __init__(self, n_letters: int = 4, min_length: int = 6, max_length: int = 16) -> None:
        if not 2 <= n_letters <= 26 or not 3 <= min_length <= max_length:
            raise ValueError("need 2 <= n_letters <= 26 and 3 <= min_length <= max_length")
        self.letters = string.ascii_lowercase[:n_letters]
        self.min_length, self.max_length = min_length, max_length
        self.vocab_size = 2 + n_letters
        self.n_classes = n_letters

    def example(self, rng: np.random.Generator) -> tuple[str, int]:
        """A random string with one most frequent letter, and that letter's class."""
        while True:
            length = rng.integers(self.min_length, self.max_length + 1)
            letters = rng.integers(self.n_classes, size=length)
            counts = np.bincount(letters, minlength=self.n_classes)
            if (counts == counts.max()).sum() == 1:
                return "".join(self.letters[i] for i in letters), int(counts.argmax())

    def encode(self, text: str) -> list[int]:
        return [self.cls_id, *(2 + self.letters.index(c) for c in text)]

    def batch(self, split: str, batch_size: int, rng: np.random.Generator) -> tuple:
        texts, labels = zip(*(self.example(rng) for _ in range(batch_size)))
        T = 1 + max(len(t) for t in texts)
        ids = np.full((batch_size, T), self.pad_id)
        for b, text in enumerate(texts):
            ids[b, : 1 + len(text)] = self.encode(text)
        return ids, np.array(labels)

    def loss(self, model: Any, batch: tuple) -> Tensor:
        ids, labels = batch
        return model(ids, labels)[1]

    def tokens(self, batch: tuple) -> int:
        return int((batch[0] != self.pad_id).sum())
