"""Generation: the filters on hand-made distributions, sampling, the KV cache, beam search."""

import math

import numpy as np
import pytest

from transformer.generation import (
    beam_search,
    choose_next,
    filter_top_k,
    filter_top_p,
    generate,
    next_token_probabilities,
)
from transformer.models import GPT, EncoderDecoder, EncoderDecoderConfig, GPTConfig


def gpt(seed=0, **settings):
    config = GPTConfig(**{"vocab_size": 13, "block_size": 8, "n_layer": 2, "n_head": 2,
                          "n_embd": 16, **settings})  # fmt: skip
    return GPT(config, rng=seed, dtype=np.float64)


def seq2seq(seed=0):
    config = EncoderDecoderConfig(vocab_size=12, block_size=6, n_encoder_layer=1,
                                  n_decoder_layer=2, n_head=2, n_embd=16)  # fmt: skip
    return EncoderDecoder(config, rng=seed, dtype=np.float64)


# ------------------------------------------------------------------ filters
def test_top_k_keeps_the_k_largest_logits():
    logits = np.array([[1.0, 5.0, 3.0, 2.0], [0.0, -1.0, 4.0, 4.0]])
    kept = np.isfinite(filter_top_k(logits, 2))
    np.testing.assert_array_equal(kept, [[False, True, True, False], [False, False, True, True]])
    np.testing.assert_array_equal(filter_top_k(logits, 4), logits)


def test_top_k_keeps_ties_with_the_kth():
    kept = np.isfinite(filter_top_k(np.array([3.0, 1.0, 3.0, 3.0]), 2))
    np.testing.assert_array_equal(kept, [True, False, True, True])


@pytest.mark.parametrize(
    "p, kept",
    [(0.4, [1, 0, 0, 0]), (0.75, [1, 1, 0, 0]), (0.85, [1, 1, 1, 0]), (0.99, [1, 1, 1, 1])],
)
def test_top_p_keeps_the_smallest_set_reaching_p_including_the_token_that_crosses_it(p, kept):
    probs = np.array([0.15, 0.5, 0.05, 0.3])  # sorted: 0.5, 0.3, 0.15, 0.05
    order = [1, 3, 0, 2]
    result = np.isfinite(filter_top_p(np.log(probs), p))
    np.testing.assert_array_equal(result[order], np.array(kept, dtype=bool))


def test_top_p_of_one_keeps_everything_and_rows_are_independent():
    logits = np.log(np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33]]))
    assert np.isfinite(filter_top_p(logits, 1.0)).all()
    np.testing.assert_array_equal(
        np.isfinite(filter_top_p(logits, 0.5)), [[True, False, False], [True, True, False]]
    )


def test_temperature_sharpens_and_flattens():
    logits = np.array([[2.0, 1.0, 0.0]])
    base = next_token_probabilities(logits)
    cold = next_token_probabilities(logits, temperature=0.5)
    hot = next_token_probabilities(logits, temperature=10.0)
    assert cold[0, 0] > base[0, 0] > hot[0, 0] > 1 / 3
    np.testing.assert_allclose(cold, next_token_probabilities(2 * logits))


def test_sampling_follows_the_filtered_distribution():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]])).repeat(20000, axis=0)
    draws = choose_next(logits, np.random.default_rng(0), top_k=2)
    counts = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(counts, [0.625, 0.375, 0, 0], atol=0.01)
    draws = choose_next(logits, np.random.default_rng(1), top_p=0.85)
    counts = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(counts, np.array([0.5, 0.3, 0.15, 0]) / 0.95, atol=0.01)


def test_temperature_zero_is_greedy():
    logits = np.array([[0.1, 2.0, 1.9], [3.0, 0.0, 0.0]])
    np.testing.assert_array_equal(choose_next(logits, np.random.default_rng(0), 0.0), [1, 0])


# ------------------------------------------------------------------ the loop over a model
@pytest.mark.parametrize("settings", [{"temperature": 0.0}, {"num_beams": 3}])
@pytest.mark.parametrize("position", ["learned", "rope"])
def test_cache_and_no_cache_write_the_same_tokens(settings, position):
    model = gpt(position=position)
    prompt = [3, 1, 4]
    with_cache = generate(model, prompt, 12, **settings)  # runs past block_size=8
    without = generate(model, prompt, 12, use_cache=False, **settings)
    assert with_cache == without and len(with_cache) == 12


def test_sampling_with_cache_equals_without_for_the_same_seed():
    model = gpt(seed=1)
    a = generate(model, [[1, 2], [3, 4]], 10, temperature=1.5, top_k=5, rng=7)
    b = generate(model, [[1, 2], [3, 4]], 10, temperature=1.5, top_k=5, rng=7, use_cache=False)
    assert a == b and len(a) == 2 and all(len(row) == 10 for row in a)
    assert a != generate(model, [[1, 2], [3, 4]], 10, temperature=1.5, top_k=5, rng=8)


def test_beam_search_with_one_beam_is_greedy():
    for seed in range(3):
        model = gpt(seed=seed)
        prompt = [seed + 1, 2]
        greedy = generate(model, prompt, 10, temperature=0, eos_id=5)
        assert beam_search_of(model, prompt, 10, num_beams=1, eos_id=5) == greedy


def beam_search_of(model, prompt, max_new_tokens, num_beams, eos_id):
    from transformer.generation import GPTDecoder

    decoder = GPTDecoder(model, np.array([prompt]))
    return beam_search(decoder, max_new_tokens, num_beams, 1.0, eos_id)


class TableDecoder:
    """A hand-made model: the next-token distribution depends on the tokens written so far."""

    def __init__(self, table):
        self.table, self.ids = table, [[]]

    def logits(self):
        return np.log(np.array([self.table[tuple(row)] for row in self.ids]))

    def append(self, tokens):
        self.ids = [row + [int(t)] for row, t in zip(self.ids, tokens)]

    def select(self, rows):
        self.ids = [list(self.ids[r]) for r in rows]

    room = math.inf


def test_beam_search_finds_the_likelier_sequence_that_greedy_misses():
    # tokens: 0 = A, 1 = B, 2 = end. Greedy takes A (0.6), then ends at 0.6 * 0.4 = 0.24;
    # B (0.4) then end (0.9) has probability 0.36.
    table = {(): [0.6, 0.4, 1e-9], (0,): [0.3, 0.3, 0.4], (1,): [0.05, 0.05, 0.9]}
    assert beam_search(TableDecoder(table), 5, 1, 0.0, eos_id=2) == [0]
    assert beam_search(TableDecoder(table), 5, 2, 0.0, eos_id=2) == [1]


def test_generation_stops_at_the_end_token_without_returning_it():
    model = gpt(seed=2)
    free = generate(model, [1, 2, 3], 6, temperature=0)
    eos = free[2]
    stopped = generate(model, [1, 2, 3], 6, temperature=0, eos_id=eos)
    assert stopped == free[: free.index(eos)]


def test_a_prompt_longer_than_the_context_keeps_its_last_block_size_tokens():
    model = gpt()
    long_prompt = list(range(1, 12))
    with pytest.warns(UserWarning, match="more than the context"):
        out = generate(model, long_prompt, 4, temperature=0)
    assert out == generate(model, long_prompt[-8:], 4, temperature=0)


def test_generation_restores_training_mode():
    model = gpt()
    model.train()
    generate(model, [1], 2)
    assert model.training


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"temperature": -1.0}, "temperature must be >= 0"),
        ({"top_p": 2.0}, r"top_p must be in \(0, 1\]"),
        ({"top_k": 0}, "top_k must be a positive integer"),
        ({"num_beams": 0}, "num_beams must be a positive integer"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        generate(gpt(), [1, 2], 3, **settings)


def test_bad_prompts_are_named():
    with pytest.raises(ValueError, match="prompt holds token id 13"):
        generate(gpt(), [1, 13], 3)
    with pytest.raises(ValueError, match="beam search takes one prompt at a time"):
        generate(gpt(), [[1], [2]], 3, num_beams=2)
    with pytest.raises(ValueError, match="the prompt is empty"):
        generate(gpt(), [], 3)


# ------------------------------------------------------------------ encoder-decoder
@pytest.mark.parametrize("settings", [{"temperature": 0.0}, {"num_beams": 3}])
def test_encoder_decoder_generates_the_same_with_and_without_cache(settings):
    model = seq2seq()
    source = [[5, 6, 7, 8]]
    a = generate(model, source, 10, eos_id=-1, **settings)  # an end that never comes
    b = generate(model, source, 10, eos_id=-1, use_cache=False, **settings)
    assert a == b and len(a[0]) == 6  # as many as the decoder's block_size allows


def test_encoder_decoder_stops_at_its_eos_id():
    model = seq2seq(seed=3)
    free = generate(model, [5, 6, 7], 6, temperature=3.0, rng=0, eos_id=-1)
    eos = free[2]
    model.config.eos_id = eos
    assert generate(model, [5, 6, 7], 6, temperature=3.0, rng=0) == free[: free.index(eos)]
