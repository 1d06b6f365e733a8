"""Choosing a vocabulary from counts: the shared rule of the character and word tokenizers.

Keep the items seen at least ``min_freq`` times, the most frequent first (ties in sorted
order, so the result never depends on the order of the corpus), and stop at ``max_size``.
"""

from __future__ import annotations

from collections import Counter


def choose_vocabulary(counts: Counter[str], min_freq: int, max_items: int | None) -> list[str]:
    """The items to keep, most frequent first, at most ``max_items`` of them."""
    if not isinstance(min_freq, int) or min_freq < 1:
        raise ValueError(f"min_freq must be an int >= 1, got {min_freq!r}")
    ranked = sorted(
        (item for item, n in counts.items() if n >= min_freq),
        key=lambda item: (-counts[item], item),
    )
    return ranked if max_items is None else ranked[:max_items]
