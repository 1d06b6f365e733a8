"""Learning byte-pair merges from word counts, incrementally.

BPE training repeats one step: find the most frequent adjacent pair of tokens and merge it
into a new token. Two observations make it fast:

1. A corpus repeats its words. Count each distinct pre-token ("word") once and weight its
   pairs by how often it occurs, so the work grows with the number of distinct words,
   not with the length of the text.
2. A merge changes only the words that contain the merged pair. Keep an index from each
   pair to the words that contain it and update the pair counts of those words only,
   instead of re-counting everything after every merge.

The most frequent pair comes from a priority queue (a heap) whose entries may be stale:
a popped entry whose count no longer matches the current count is pushed back with the
current count. Counts only ever fall, except for pairs that contain the newest token,
which are pushed when they are created, so the first up-to-date entry popped is the best.

Tie rule: the pair with the highest count wins; among equal counts, the smallest pair of
ids ``(left, right)`` wins. The result is therefore fully determined by the word counts.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

Pair = tuple[int, int]
T = TypeVar("T")

MAX_TOKENS = 0x110000
"""Ids are kept as characters while training, so there can be at most as many as code points."""


def count_pairs(words: Sequence[Sequence[int]], counts: Sequence[int]) -> dict[Pair, int]:
    """How often each adjacent pair occurs, each word's pairs weighted by its count."""
    pair_counts: dict[Pair, int] = defaultdict(int)
    for word, count in zip(words, counts):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += count
    return dict(pair_counts)


def merge_pair(word: Sequence[T], pair: tuple[T, T], new_id: T) -> list[T]:
    """Replace every occurrence of ``pair`` in ``word``, scanning left to right, by ``new_id``.

    Occurrences do not overlap: ``merge_pair([7, 7, 7], (7, 7), 9) == [9, 7]``. The parts
    may be ids or strings (WordPiece's trainer merges pieces of text with it).
    """
    left, right = pair
    out = []
    i, n = 0, len(word)
    while i < n:
        if word[i] == left and i + 1 < n and word[i + 1] == right:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def best_pair(pair_counts: Mapping[Pair, int]) -> Pair:
    """The pair the tie rule picks: highest count, then the smallest ``(left, right)``."""
    return min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))


def train_merges(
    word_counts: Mapping[bytes, int],
    num_merges: int,
    on_merge: Callable[[Pair, int, int], None] | None = None,
) -> list[Pair]:
    """Learn up to ``num_merges`` merges from ``{word bytes: count}``.

    Tokens 0..255 are the single bytes; merge ``k`` creates token ``256 + k``. Training
    stops early when no word has two tokens left to merge. ``on_merge(pair, new_id, count)``
    is called after each merge (for progress output).

    A word is kept as a ``str`` with one character per token, ``chr(id)``, and a pair as
    the two characters: then "does this word still hold the pair?" is ``pair in word`` and
    merging it everywhere in the word is ``word.replace(pair, new)``, both done in C, and
    comparing pairs as strings orders them as ``(left, right)`` does.
    """
    words = [word.decode("latin-1") for word in word_counts]  # byte b -> chr(b)
    counts = list(word_counts.values())
    pair_counts: dict[str, int] = defaultdict(int)
    words_with: dict[str, list[int]] = defaultdict(list)  # may repeat or be out of date
    for index, (word, count) in enumerate(zip(words, counts)):
        for pair in map(str.__add__, word, word[1:]):
            pair_counts[pair] += count
            words_with[pair].append(index)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    while len(merges) < num_merges and heap:
        negative_count, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -negative_count:  # stale entry: the pair lost occurrences since
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        if 256 + len(merges) == MAX_TOKENS:
            raise ValueError(
                f"cannot learn more than {MAX_TOKENS - 256} merges: training keeps each id "
                f"as a character, and there are {MAX_TOKENS} of them"
            )
        left, right = pair
        new = chr(256 + len(merges))
        created: dict[str, int] = defaultdict(int)  # pairs with the new token, new counts
        for index in words_with.pop(pair):
            word = words[index]
            if pair not in word:  # merged already (a repeated index) or changed since
                continue
            weight = counts[index]
            words[index] = merged = word.replace(pair, new)
            # each occurrence changes only the pairs beside it: (x, left) becomes (x, new)
            # and (right, y) becomes (new, y); between two occurrences (right, left)
            # becomes (new, new), counted once, on the left side of the second
            i, last = merged.find(new), len(merged) - 1
            while i >= 0:
                if i > 0:
                    x = merged[i - 1]
                    pair_counts[(right if x == new else x) + left] -= weight
                    p = x + new
                    created[p] += weight
                    words_with[p].append(index)
                if i < last and merged[i + 1] != new:
                    y = merged[i + 1]
                    pair_counts[right + y] -= weight
                    p = new + y
                    created[p] += weight
                    words_with[p].append(index)
                i = merged.find(new, i + 1)
        del pair_counts[pair]
        pair_counts.update(created)
        for new_pair, new_count in created.items():
            heapq.heappush(heap, (-new_count, new_pair))
        merges.append((ord(left), ord(right)))
        if on_merge is not None:
            on_merge(merges[-1], ord(new), count)
    return merges


def train_merges_naive(word_counts: Mapping[bytes, int], num_merges: int) -> list[Pair]:
    """The obvious algorithm: re-count every pair of every word before each merge.

    Same result as ``train_merges``, kept as the slow reference the benchmark compares to.
    """
    words = [list(word) for word in word_counts]
    counts = list(word_counts.values())
    merges: list[Pair] = []
    for new_id in range(256, 256 + num_merges):
        pair_counts = count_pairs(words, counts)
        if not pair_counts:
            break
        pair = best_pair(pair_counts)
        merges.append(pair)
        words = [merge_pair(word, pair, new_id) for word in words]
    return merges
