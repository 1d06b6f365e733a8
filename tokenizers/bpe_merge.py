"""Applying learned merges to one pre-token: the inner loop of BPE encoding.

Given the rank of every token (the order it was learned in), a pre-token's bytes start as
single-byte parts; the adjacent pair whose concatenation has the lowest rank merges first,
the leftmost one on ties, until no adjacent pair forms a token. This is tiktoken's rule.
Two implementations give the same result: a list scan for short pre-tokens and a heap for
long ones, so that a million repeated characters take seconds, not hours.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from typing import Any

NO_MERGE = 1 << 62
"""A rank larger than any real one: 'these two parts do not form a token'."""


def merge_by_rank(data: bytes, ranks: Mapping[bytes, int]) -> list[bytes]:
    """Split ``data`` into tokens: repeatedly merge the adjacent pair of lowest rank.

    Suited to short pre-tokens: each step finds the minimum of the pair ranks (leftmost on
    ties, as ``list.index`` returns the first) and recomputes only the two neighbours.
    """
    get = ranks.get
    parts = [data[i : i + 1] for i in range(len(data))]
    pair_ranks = [get(data[i : i + 2], NO_MERGE) for i in range(len(data) - 1)]
    while pair_ranks:
        best = min(pair_ranks)
        if best == NO_MERGE:
            break
        i = pair_ranks.index(best)
        parts[i] += parts.pop(i + 1)
        del pair_ranks[i]
        if i < len(pair_ranks):
            pair_ranks[i] = get(parts[i] + parts[i + 1], NO_MERGE)
        if i > 0:
            pair_ranks[i - 1] = get(parts[i - 1] + parts[i], NO_MERGE)
    return parts


def merge_by_rank_heap(data: bytes, ranks: Mapping[bytes, int]) -> list[bytes]:
    """The same result as ``merge_by_rank`` in O(n log n), for very long pre-tokens.

    Parts form a linked list (``next_start``/``prev_start``, a part is named by the index of
    its first byte) and candidate merges wait in a heap ordered by (rank, start): lowest rank
    first, leftmost on ties. An entry is stale once either of its parts has changed, which
    shows as a different span; stale entries are skipped when popped.
    """
    n = len(data)
    get = ranks.get
    next_start = list(range(1, n + 1))
    prev_start = list(range(-1, n - 1))
    alive = bytearray(b"\x01") * n
    heap = []
    for i in range(n - 1):
        rank = get(data[i : i + 2])
        if rank is not None:
            heap.append((rank, i, i + 2))
    heapq.heapify(heap)
    while heap:
        _, start, end = heapq.heappop(heap)
        if not alive[start]:
            continue
        right = next_start[start]
        if right >= n or next_start[right] != end:
            continue
        alive[right] = 0
        next_start[start] = end
        if end < n:
            prev_start[end] = start
            rank = get(data[start : next_start[end]])
            if rank is not None:
                heapq.heappush(heap, (rank, start, next_start[end]))
        left = prev_start[start]
        if left >= 0:
            rank = get(data[left:end])
            if rank is not None:
                heapq.heappush(heap, (rank, left, end))
    parts = []
    i = 0
    while i < n:
        parts.append(data[i : next_start[i]])
        i = next_start[i]
    return parts


class RanksBelow(Mapping[bytes, int]):
    """A view of a rank table that hides every token ranked at or after ``limit``."""

    def __init__(self, ranks: Mapping[bytes, int], limit: int) -> None:
        self._ranks, self._limit = ranks, limit

    def get(self, key: bytes, default: Any = None) -> Any:
        rank = self._ranks.get(key)
        return rank if rank is not None and rank < self._limit else default

    def __getitem__(self, key: bytes) -> int:
        rank = self.get(key)
        if rank is None:
            raise KeyError(key)
        return rank

    def __iter__(self) -> Iterator[bytes]:
        return (k for k, r in self._ranks.items() if r < self._limit)

    def __len__(self) -> int:
        return sum(1 for _ in self)
