"""Attention masks against small hand-drawn pictures (row = query, column = key, 1 = may attend)."""

import numpy as np
import pytest

from transformer.attention import (
    causal_mask,
    fixed_mask,
    padding_mask,
    sliding_window_mask,
    strided_mask,
)


def picture(rows):
    return np.array([[c == "1" for c in row.split()] for row in rows])


def test_causal_mask_hides_the_future():
    expected = picture(["1 0 0 0",
                        "1 1 0 0",
                        "1 1 1 0",
                        "1 1 1 1"])  # fmt: skip
    np.testing.assert_array_equal(causal_mask(4), expected)
    assert causal_mask(4).dtype == bool


def test_causal_mask_with_cached_keys_places_queries_at_the_end():
    # 2 new queries after 3 cached positions: they sit at positions 3 and 4
    expected = picture(["1 1 1 1 0",
                        "1 1 1 1 1"])  # fmt: skip
    np.testing.assert_array_equal(causal_mask(2, 5), expected)


def test_sliding_window_mask_sees_itself_and_window_minus_one_before():
    expected = picture(["1 0 0 0 0",
                        "1 1 0 0 0",
                        "1 1 1 0 0",
                        "0 1 1 1 0",
                        "0 0 1 1 1"])  # fmt: skip
    np.testing.assert_array_equal(sliding_window_mask(5, 3), expected)
    np.testing.assert_array_equal(sliding_window_mask(4, 1), np.eye(4, dtype=bool))
    np.testing.assert_array_equal(sliding_window_mask(4, 9), causal_mask(4))


def test_strided_mask_is_a_local_window_plus_every_stride_th_key():
    expected = picture(["1 0 0 0 0 0 0 0",
                        "1 1 0 0 0 0 0 0",
                        "1 1 1 0 0 0 0 0",
                        "1 1 1 1 0 0 0 0",
                        "0 1 1 1 1 0 0 0",
                        "0 0 1 1 1 1 0 0",
                        "1 0 0 1 1 1 1 0",
                        "0 1 0 0 1 1 1 1"])  # fmt: skip
    np.testing.assert_array_equal(strided_mask(8, 3), expected)


def test_fixed_mask_is_the_own_block_plus_the_last_c_of_each_block():
    expected_c1 = picture(["1 0 0 0 0 0",
                           "1 1 0 0 0 0",
                           "1 1 1 0 0 0",
                           "0 0 1 1 0 0",
                           "0 0 1 1 1 0",
                           "0 0 1 1 1 1"])  # fmt: skip
    np.testing.assert_array_equal(fixed_mask(6, 3, 1), expected_c1)
    expected_c2 = picture(["1 0 0 0 0 0 0 0",
                           "1 1 0 0 0 0 0 0",
                           "1 1 1 0 0 0 0 0",
                           "1 1 1 1 0 0 0 0",
                           "0 0 1 1 1 0 0 0",
                           "0 0 1 1 1 1 0 0",
                           "0 0 1 1 1 1 1 0",
                           "0 0 1 1 1 1 1 1"])  # fmt: skip
    np.testing.assert_array_equal(fixed_mask(8, 4, 2), expected_c2)
    # c = stride: every earlier key is a summary key, so the pattern is plain causal
    np.testing.assert_array_equal(fixed_mask(7, 3, 3), causal_mask(7))


# The rules in words, one entry at a time: query i may attend to key j iff ...
def causal(i, j, cached=0):
    return j <= i + cached  # (with `cached` keys before the first query)


def sliding_window(i, j, window):
    return i - window < j <= i


def strided(i, j, stride):
    return j <= i and (i - j < stride or (i - j) % stride == 0)


def fixed(i, j, stride, c):
    return j <= i and (i // stride == j // stride or j % stride >= stride - c)


def by_definition(rule, T, T_k=None, **settings):
    """A mask built from `rule` with Python loops, entry by entry."""
    keys = range(T if T_k is None else T_k)
    return np.array([[rule(i, j, **settings) for j in keys] for i in range(T)], dtype=bool)


@pytest.mark.parametrize("T", [1, 2, 7, 12])
def test_masks_equal_their_rules_entry_by_entry(T):
    for cached in range(4):  # the T queries are the last T of T + cached positions
        expected = by_definition(causal, T, T + cached, cached=cached)
        np.testing.assert_array_equal(causal_mask(T, T + cached), expected)
    for window in (1, 2, 3, 5, 20):
        expected = by_definition(sliding_window, T, window=window)
        np.testing.assert_array_equal(sliding_window_mask(T, window), expected)
    for stride in (1, 2, 3, 4):
        expected = by_definition(strided, T, stride=stride)
        np.testing.assert_array_equal(strided_mask(T, stride), expected)
        for c in range(1, stride + 1):
            expected = by_definition(fixed, T, stride=stride, c=c)
            np.testing.assert_array_equal(fixed_mask(T, stride, c), expected)


def test_each_query_sees_as_many_keys_as_its_pattern_allows():
    i = np.arange(10)  # query positions
    np.testing.assert_array_equal(causal_mask(10).sum(1), i + 1)
    np.testing.assert_array_equal(sliding_window_mask(10, 4).sum(1), np.minimum(i + 1, 4))
    # strided, stride 3: the last 3 positions, plus those 3, 6, 9, ... further back
    np.testing.assert_array_equal(strided_mask(10, 3).sum(1), np.minimum(i + 1, 3) + i // 3)
    # fixed, stride 4, c 1: the own block so far, plus the last position of each earlier block
    np.testing.assert_array_equal(fixed_mask(10, 4, 1).sum(1), i % 4 + 1 + i // 4)


@pytest.mark.parametrize(
    "mask",
    [sliding_window_mask(9, 3), strided_mask(9, 2), strided_mask(9, 4), fixed_mask(9, 3, 1)],
)
def test_sparse_masks_are_causal_and_always_see_the_diagonal(mask):
    assert not np.any(mask & ~causal_mask(9))
    assert np.all(np.diag(mask))


def test_padding_mask_from_lengths_and_from_ids_agree():
    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]])
    from_ids = padding_mask(ids, pad_id=0)
    from_lengths = padding_mask(np.array([3, 2]), T=4)
    assert from_ids.shape == (2, 1, 1, 4)
    expected = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(from_ids[:, 0, 0], expected)
    np.testing.assert_array_equal(from_lengths, from_ids)
    assert padding_mask(np.array([1, 3])).shape == (2, 1, 1, 3)  # T = longest length


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: causal_mask(0), r"T must be an integer >= 1, got 0"),
        (lambda: causal_mask(3, 2), r"T_k must be an integer >= 3, got 2"),
        (lambda: sliding_window_mask(4, 0), r"window must be an integer >= 1, got 0"),
        (lambda: strided_mask(4, 0), r"stride must be an integer >= 1, got 0"),
        (lambda: fixed_mask(6, 3, 4), r"1 <= c <= stride, got c=4, stride=3"),
        (lambda: fixed_mask(6, 3, 0), r"1 <= c <= stride, got c=0, stride=3"),
        (lambda: padding_mask(np.array([1, 5]), T=4), r"lengths \[1, 5\] .* T=4"),
        (lambda: padding_mask(np.zeros((2, 3), int)), r"shape \(B,\), got shape \(2, 3\)"),
        (lambda: padding_mask(np.zeros(3, int), pad_id=0), r"shape \(B, T\), got \(3,\)"),
    ],
)
def test_bad_mask_arguments_raise_value_errors_naming_the_values(call, message):
    with pytest.raises(ValueError, match=message):
        call()
