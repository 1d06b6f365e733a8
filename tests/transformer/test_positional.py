"""Positional encodings: the published formulas, RoPE's relative-position property, gradients."""

import math

import numpy as np
import pytest

from minigrad import Tensor, gradcheck, random_tensors
from transformer.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    rotary_angles,
    sinusoidal_encoding,
)


# ------------------------------------------------------------------ sinusoidal
def test_sinusoidal_table_is_sin_on_even_and_cos_on_odd_dimensions():
    d = 6
    table = sinusoidal_encoding(5, d, dtype=np.float64)
    for pos in range(5):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-15)
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-15)
    np.testing.assert_array_equal(table[0], [0, 1, 0, 1, 0, 1])


def test_sinusoidal_table_with_an_offset_continues_the_sequence_and_handles_odd_widths():
    np.testing.assert_allclose(
        sinusoidal_encoding(4, 7, offset=3), sinusoidal_encoding(7, 7)[3:], rtol=1e-6
    )
    assert sinusoidal_encoding(3, 7).shape == (3, 7)
    assert sinusoidal_encoding(3, 8).dtype == np.float32


def test_sinusoidal_table_by_hand_and_by_its_relative_position_property():
    # d_model = 4, base 10000: the pairs turn at 1 and 1 / 10000^(2/4) = 1/100 per position
    table = sinusoidal_encoding(50, 4, dtype=np.float64)
    for pos in (1, 7, 49):
        expected = [math.sin(pos), math.cos(pos), math.sin(pos / 100), math.cos(pos / 100)]
        np.testing.assert_allclose(table[pos], expected, atol=1e-15)
    # each pair is a point on the unit circle, and PE[p] . PE[q] depends on p - q only
    table = sinusoidal_encoding(40, 16, base=50.0, dtype=np.float64)
    np.testing.assert_allclose((table**2).sum(-1), 8.0)
    gram = table @ table.T
    for shift in (1, 5, 17):
        np.testing.assert_allclose(np.diagonal(gram, shift), gram[0, shift], atol=1e-12)


def test_sinusoidal_module_adds_the_table_and_passes_gradcheck():
    pe = SinusoidalPositionalEncoding(8)
    (x,) = random_tensors((2, 5, 8), seed=40)
    np.testing.assert_allclose(
        pe(x, offset=2).data, x.data + sinusoidal_encoding(5, 8, offset=2, dtype=np.float64)
    )
    assert gradcheck(lambda x: pe(x), x)


# ------------------------------------------------------------------ learned
def test_learned_positional_embedding_adds_its_rows_and_passes_gradcheck():
    pe = LearnedPositionalEmbedding(6, 4, rng=0, dtype=np.float64)
    (x,) = random_tensors((2, 3, 4), seed=41)
    np.testing.assert_allclose(pe(x, offset=2).data, x.data + pe.weight.data[2:5])
    assert gradcheck(lambda x, w: pe(x, offset=1), x, pe.weight)


def test_a_sequence_longer_than_the_learned_table_is_a_value_error_naming_the_sizes():
    pe = LearnedPositionalEmbedding(4, 2)
    with pytest.raises(ValueError, match=r"T=5.*max_len=4"):
        pe(Tensor(np.zeros((1, 5, 2), np.float32)))
    with pytest.raises(ValueError, match=r"positions 3\.\.4 .*offset=3.*max_len=4"):
        pe(Tensor(np.zeros((1, 2, 2), np.float32)), offset=3)


# ------------------------------------------------------------------ rotary
@pytest.mark.parametrize("interleaved", [False, True], ids=["half", "interleaved"])
def test_rotated_q_dot_k_depends_only_on_the_distance_between_positions(interleaved):
    rng = np.random.default_rng(42)
    q, k = rng.standard_normal(8), rng.standard_normal(8)
    T = 7
    rq = apply_rotary(Tensor(np.tile(q, (T, 1))), interleaved=interleaved).data  # q at every pos
    rk = apply_rotary(Tensor(np.tile(k, (T, 1))), interleaved=interleaved).data
    scores = rq @ rk.T  # scores[m, n] = rot(q, m) . rot(k, n)
    for m in range(T):
        for n in range(T):
            expected = scores[m - n, 0] if m >= n else scores[0, n - m]
            assert scores[m, n] == pytest.approx(expected, abs=1e-12)
    assert scores[3, 3] == pytest.approx(q @ k, abs=1e-12)  # same position: no rotation left
    assert not np.allclose(scores[1, 0], scores[0, 1])  # but the direction matters


def test_interleaved_rotation_of_the_first_pair_is_a_2d_rotation_by_position_times_one():
    x = np.zeros((4, 4))
    x[:, 0], x[:, 1] = 2.0, 1.0  # the pair (a, b) = (2, 1) at positions 0..3, theta_0 = 1
    out = apply_rotary(Tensor(x), interleaved=True).data
    for pos in range(4):
        c, s = math.cos(pos), math.sin(pos)
        np.testing.assert_allclose(out[pos, :2], [2 * c - 1 * s, 1 * c + 2 * s], atol=1e-15)
    np.testing.assert_allclose(out[:, 2:], 0)


@pytest.mark.parametrize("interleaved", [False, True], ids=["half", "interleaved"])
def test_every_pair_turns_by_pos_times_base_to_the_minus_2i_over_d(interleaved):
    d, base, offset, T = 8, 100.0, 3, 6
    pairs = [(2 * i, 2 * i + 1) if interleaved else (i, i + d // 2) for i in range(d // 2)]
    x = np.zeros((T, d))
    for a, _ in pairs:
        x[:, a] = 1.0  # each pair starts at (1, 0): its image is (cos t, sin t)
    out = apply_rotary(Tensor(x), offset=offset, base=base, interleaved=interleaved).data
    for i, (a, b) in enumerate(pairs):
        for t in range(T):
            angle = (offset + t) * base ** (-2 * i / d)
            assert out[t, a] == pytest.approx(math.cos(angle), abs=1e-14)
            assert out[t, b] == pytest.approx(math.sin(angle), abs=1e-14)
    expected = [[(offset + t) * base ** (-2 * i / d) for i in range(d // 2)] for t in range(T)]
    np.testing.assert_allclose(rotary_angles(T, d, base, offset), expected, rtol=1e-15)


def test_the_two_conventions_differ_only_by_which_dimensions_are_paired():
    (x,) = random_tensors((2, 5, 8), seed=43, requires_grad=False)
    pairs_adjacent = np.array([0, 4, 1, 5, 2, 6, 3, 7])  # (i, i + d/2) -> neighbours
    half = apply_rotary(x).data
    interleaved = apply_rotary(Tensor(x.data[..., pairs_adjacent]), interleaved=True).data
    np.testing.assert_allclose(interleaved, half[..., pairs_adjacent], atol=1e-14)


@pytest.mark.parametrize("interleaved", [False, True], ids=["half", "interleaved"])
def test_rotary_keeps_norms_continues_with_an_offset_and_passes_gradcheck(interleaved):
    rope = RotaryEmbedding(4, interleaved=interleaved)
    (x,) = random_tensors((2, 2, 5, 4), seed=44)
    out = rope(x)
    np.testing.assert_allclose(np.linalg.norm(out.data, axis=-1), np.linalg.norm(x.data, axis=-1))
    np.testing.assert_allclose(rope(x[:, :, 2:], offset=2).data, out.data[:, :, 2:], atol=1e-14)
    assert gradcheck(lambda x: rope(x), x)


def test_rotary_keeps_float32_and_rejects_odd_head_sizes():
    x = Tensor(np.ones((1, 3, 4), np.float32))
    assert RotaryEmbedding(4)(x).dtype == np.float32
    with pytest.raises(ValueError, match="even head size, got d_head=5"):
        RotaryEmbedding(5)
