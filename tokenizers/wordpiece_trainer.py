"""Learning a WordPiece vocabulary: BPE-like merges chosen by likelihood, not by frequency.

Words start as characters, every character after the first marked with ``##``
(``"hug"`` -> ``h ##u ##g``). Each step merges the adjacent pair with the highest score

    score(a, b) = count(a b) / (count(a) * count(b))

which prefers pairs whose parts rarely occur apart: merging them loses little. (BPE would
merge the most frequent pair, even if its parts are common everywhere.) Ties go to the more
frequent pair, then to the smaller pair of strings. This small trainer re-counts all pairs
after every merge: clear, but meant for corpora of up to a few hundred thousand words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence


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
    special_tokens: Sequence[str] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),
    continuing_prefix: str = "##",
) -> list[str]:
    """The vocabulary in id order: special tokens, the alphabet, then the merged pieces.

    ``words`` are already normalized and split (``bert_normalizer``). Pairs seen fewer than
    ``min_freq`` times are never merged; training stops early when no pair is left.
    """
    word_counts = Counter(w for w in words if w)
    splits = {word: initial_pieces(word, continuing_prefix) for word in word_counts}
    alphabet = sorted({piece for pieces in splits.values() for piece in pieces})
    vocab = list(dict.fromkeys(special_tokens))
    vocab += [piece for piece in alphabet if piece not in vocab]
    if vocab_size < len(vocab):
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
                splits[word] = merge_pieces(pieces, left, right, merged)
    return vocab


def merge_key(pair: tuple[str, str], count: int, piece_counts: Counter[str]) -> tuple:
    """Sort key, smallest first: highest score, then highest count, then the smaller pair."""
    return (-count / (piece_counts[pair[0]] * piece_counts[pair[1]]), -count, pair)


def merge_pieces(pieces: list[str], left: str, right: str, merged: str) -> list[str]:
    """Replace each adjacent ``left, right`` (left to right, no overlaps) by ``merged``."""
    out = []
    i = 0
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] == left and pieces[i + 1] == right:
            out.append(merged)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out
