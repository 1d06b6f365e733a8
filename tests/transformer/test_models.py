"""GPT, the BERT-shaped encoder, the encoder-decoder: shapes, gradients, overfitting, bad input."""

import math

import numpy as np
import pytest

from minigrad import functional as F
from minigrad import gradcheck, no_grad, optim
from transformer.models import (
    GPT,
    EncoderConfig,
    EncoderDecoder,
    EncoderDecoderConfig,
    EncoderModel,
    GPTConfig,
    keep_attention_weights,
)

TINY_GPT = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)


def random_ids(shape, high, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape)


def gradcheck_model(model, run):
    """gradcheck of a scalar loss with respect to every parameter of `model` (float64)."""
    return gradcheck(lambda *params: run(), *model.parameters())


def overfit(model, run, steps, lr=3e-3):
    """Train on one fixed batch; return the first and last loss."""
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = run()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


# ------------------------------------------------------------------ GPT
def test_gpt_logits_have_shape_batch_time_vocabulary_and_loss_is_none_without_targets():
    model = GPT(GPTConfig(**TINY_GPT), rng=0)
    logits, loss = model(random_ids((3, 5), 11))
    assert logits.shape == (3, 5, 11) and logits.dtype == np.float32 and loss is None


def test_gpt_is_reproducible_from_its_seed_and_differs_between_seeds():
    a, b, c = (GPT(GPTConfig(**TINY_GPT), rng=seed) for seed in (3, 3, 4))
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert any(not np.array_equal(p.data, r.data) for p, r in zip(a.parameters(), c.parameters()))


def test_gpt_parameter_count_matches_the_formula():
    V, L, C, n = 11, 8, 8, 2
    model = GPT(GPTConfig(**TINY_GPT), rng=0)
    per_block = (3 * C * C + 3 * C) + (C * C + C) + (8 * C * C + 5 * C) + 2 * 2 * C
    expected = V * C + L * C + n * per_block + 2 * C  # tied head: the embedding counts once
    assert model.num_parameters() == expected
    untied = GPT(GPTConfig(**TINY_GPT, tie_weights=False), rng=0)
    assert untied.num_parameters() == expected + V * C


def test_gpt_initial_loss_is_near_log_vocabulary():
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32), rng=0)
    idx = random_ids((8, 16), 64, seed=1)
    _, loss = model(idx, np.roll(idx, -1, axis=1))
    assert abs(loss.item() - math.log(64)) < 0.15


def test_gpt_tied_head_is_the_token_embedding_transposed():
    model = GPT(GPTConfig(**TINY_GPT), rng=0, dtype=np.float64)
    idx = random_ids((2, 4), 11)
    hidden = model.hidden_states(idx).data
    logits, _ = model(idx)
    np.testing.assert_allclose(logits.data, hidden @ model.token_embedding.weight.data.T)


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"norm": "post", "position": "sinusoidal", "tie_weights": False, "bias": False},
        {"position": "rope", "attention": "sliding_window", "attention_window": 2},
        {"n_experts": 3, "top_k": 2, "attention": "strided", "attention_stride": 2},
    ],
    ids=["gpt2", "post-ln-sinusoidal-untied", "rope-sliding", "moe-strided"],
)
def test_gpt_gradcheck(settings):
    model = GPT(GPTConfig(**{**TINY_GPT, **settings}, ffn_hidden=8), rng=1, dtype=np.float64)
    idx, targets = random_ids((2, 4), 11, seed=2), random_ids((2, 4), 11, seed=3)
    assert gradcheck_model(model, lambda: model(idx, targets)[1])


def test_gpt_loss_adds_the_weighted_moe_losses():
    config = GPTConfig(**TINY_GPT, n_experts=3, top_k=1, aux_loss_weight=0.5, z_loss_weight=0.1)
    model = GPT(config, rng=0, dtype=np.float64)
    idx, targets = random_ids((2, 4), 11, seed=2), random_ids((2, 4), 11, seed=3)
    logits, loss = model(idx, targets)
    aux = np.mean([block.aux_loss.item() for block in model.blocks])
    z = np.mean([block.z_loss.item() for block in model.blocks])
    expected = F.cross_entropy(logits, targets).item() + 0.5 * aux + 0.1 * z
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_gpt_targets_of_minus_one_are_left_out_of_the_loss():
    model = GPT(GPTConfig(**TINY_GPT), rng=0, dtype=np.float64)
    idx, targets = random_ids((2, 4), 11, seed=2), random_ids((2, 4), 11, seed=3)
    masked = targets.copy()
    masked[:, :2] = -1
    logits, loss = model(idx, masked)
    expected = F.cross_entropy(logits[:, 2:], targets[:, 2:]).item()
    assert loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("position", ["learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("attention", ["full", "sliding_window", "strided", "fixed"])
def test_gpt_with_a_kv_cache_gives_the_logits_of_a_full_pass(position, attention):
    config = GPTConfig(**TINY_GPT, position=position, attention=attention, attention_window=3,
                       attention_stride=3, attention_summary=1)  # fmt: skip
    model = GPT(config, rng=5, dtype=np.float64)
    idx = random_ids((2, 8), 11, seed=6)
    with no_grad():
        full, _ = model(idx)
        cache = model.new_cache()
        first, _ = model(idx[:, :3], cache=cache)  # a prompt, then one token at a time
        rest = [model(idx[:, t : t + 1], cache=cache)[0].data for t in range(3, 8)]
    np.testing.assert_allclose(np.concatenate([first.data, *rest], axis=1), full.data, atol=1e-12)


def test_gpt_no_position_sees_the_future():
    model = GPT(GPTConfig(**TINY_GPT), rng=0, dtype=np.float64)
    idx = random_ids((1, 8), 11, seed=7)
    changed = idx.copy()
    changed[0, 5:] = (changed[0, 5:] + 1) % 11
    np.testing.assert_array_equal(model(idx)[0].data[:, :5], model(changed)[0].data[:, :5])
    assert not np.allclose(model(idx)[0].data[:, 5:], model(changed)[0].data[:, 5:])


def test_gpt_overfits_a_fixed_batch():
    model = GPT(GPTConfig(vocab_size=16, block_size=12, n_layer=2, n_head=2, n_embd=32), rng=0)
    idx = random_ids((4, 13), 16, seed=8)
    first, last = overfit(model, lambda: model(idx[:, :-1], idx[:, 1:])[1], steps=150)
    assert first > 2.5 and last < 0.05


def test_attention_weights_are_kept_only_when_asked_for():
    model = GPT(GPTConfig(**TINY_GPT), rng=0)
    model(random_ids((2, 5), 11))
    assert all(block.self_attn.last_attention_weights is None for block in model.blocks)
    keep_attention_weights(model)
    model(random_ids((2, 5), 11))
    assert all(b.self_attn.last_attention_weights.shape == (2, 2, 5, 5) for b in model.blocks)


@pytest.mark.parametrize(
    "idx, message",
    [
        (np.array([[1, 11]]), r"token id 11, outside the vocabulary \[0, 11\)"),
        (np.array([[-1, 2]]), r"token id -1, outside the vocabulary"),
        (np.zeros((1, 9), int), r"length 9 is longer than block_size=8"),
        (np.zeros(5, int), r"shape \(B, T\), got \(5,\)"),
        (np.zeros((1, 3)), r"integer token ids"),
    ],
)
def test_gpt_names_bad_input(idx, message):
    model = GPT(GPTConfig(**TINY_GPT), rng=0)
    with pytest.raises(ValueError, match=message):
        model(idx)


def test_gpt_names_bad_targets_and_a_cache_that_runs_past_the_context():
    model = GPT(GPTConfig(**TINY_GPT), rng=0)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 11\)"):
        model(np.zeros((1, 3), int), np.array([[1, 2, 11]]))
    with pytest.raises(ValueError, match=r"targets must be integers of shape \(1, 3\)"):
        model(np.zeros((1, 3), int), np.zeros((1, 4), int))
    cache = model.new_cache()
    with no_grad():
        model(np.zeros((1, 8), int), cache=cache)
        with pytest.raises(ValueError, match="length 9 is longer than block_size=8"):
            model(np.zeros((1, 1), int), cache=cache)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"n_embd": 10, "n_head": 4}, "n_embd=10 must be divisible by n_head=4"),
        ({"position": "alibi"}, "position must be one of"),
        ({"attention": "dense"}, "attention must be one of"),
        ({"vocab_size": 0}, "vocab_size must be a positive integer"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"n_experts": 2, "top_k": 3}, "1 <= top_k <= n_experts"),
        ({"position": "rope", "n_embd": 6, "n_head": 2}, "even head size"),
        ({"activation": "swish"}, "activation must be one of"),
    ],
)
def test_gpt_config_names_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**TINY_GPT, **settings})


def test_config_round_trips_through_a_dict_and_names_unknown_keys():
    config = GPTConfig(**TINY_GPT, n_experts=4, capacity_factor=1.25)
    assert GPTConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="GPTConfig has no setting 'n_embed'"):
        GPTConfig.from_dict({**config.to_dict(), "n_embed": 8})


# ------------------------------------------------------------------ encoder (BERT-shaped)
TINY_ENCODER = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8, n_classes=3)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_encoder_shapes(pooling):
    model = EncoderModel(EncoderConfig(**TINY_ENCODER, pooling=pooling), rng=0)
    ids = random_ids((4, 6), 13)
    assert model.hidden_states(ids).shape == (4, 6, 8)
    assert model.sentence_embedding(ids).shape == (4, 8)
    logits, loss = model(ids)
    assert logits.shape == (4, 3) and loss is None


@pytest.mark.parametrize("norm, pooling", [("post", "cls"), ("pre", "mean")])
def test_encoder_gradcheck(norm, pooling):
    config = EncoderConfig(**TINY_ENCODER, norm=norm, pooling=pooling, dropout=0.0, ffn_hidden=8)
    model = EncoderModel(config, rng=1, dtype=np.float64)
    ids = random_ids((3, 5), 13, seed=2)
    ids[1, 3:] = 0  # padding
    segments = (np.arange(5) >= 2).astype(int)[None].repeat(3, axis=0)
    targets = np.array([0, 2, 1])
    assert gradcheck_model(model, lambda: model(ids, targets, segment_ids=segments)[1])


def test_encoder_ignores_padding_and_sees_both_directions():
    model = EncoderModel(EncoderConfig(**TINY_ENCODER, pooling="mean"), rng=0, dtype=np.float64)
    model.eval()
    ids = np.array([[5, 6, 7, 0, 0]])
    other_padding = np.array([[5, 6, 7, 0, 0, 0, 0]])
    np.testing.assert_allclose(
        model.sentence_embedding(ids).data, model.sentence_embedding(other_padding).data, atol=1e-12
    )
    changed = np.array([[5, 6, 8, 0, 0]])  # the last real token changes the first position
    first = model.hidden_states(ids).data[0, 0]
    assert not np.allclose(first, model.hidden_states(changed).data[0, 0])


def test_encoder_mean_pooling_is_the_mean_over_real_tokens():
    model = EncoderModel(EncoderConfig(**TINY_ENCODER), rng=0, dtype=np.float64).eval()
    ids = np.array([[5, 6, 7, 0], [1, 2, 3, 4]])
    hidden = model.hidden_states(ids).data
    pooled = model.sentence_embedding(ids).data
    np.testing.assert_allclose(pooled[0], hidden[0, :3].mean(axis=0))
    np.testing.assert_allclose(pooled[1], hidden[1].mean(axis=0))


def test_encoder_overfits_a_fixed_batch():
    config = EncoderConfig(**{**TINY_ENCODER, "n_embd": 16}, dropout=0.0)
    model = EncoderModel(config, rng=0)
    ids, targets = random_ids((12, 6), 13, seed=3), random_ids(12, 3, seed=4)
    first, last = overfit(model, lambda: model(ids, targets)[1], steps=150, lr=1e-2)
    assert first > 0.8 and last < 0.05


def test_encoder_names_bad_input():
    model = EncoderModel(EncoderConfig(**TINY_ENCODER), rng=0)
    with pytest.raises(ValueError, match="token id 13, outside the vocabulary"):
        model(np.array([[1, 13]]))
    with pytest.raises(ValueError, match="segment_ids holds token id 2"):
        model(np.array([[1, 2]]), segment_ids=np.array([[0, 2]]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\)"):
        model(np.array([[1, 2]]), np.array([3]))
    headless = EncoderModel(EncoderConfig(**{**TINY_ENCODER, "n_classes": 0}), rng=0)
    with pytest.raises(ValueError, match="no classification head"):
        headless(np.array([[1, 2]]))


# ------------------------------------------------------------------ encoder-decoder
TINY_SEQ2SEQ = dict(vocab_size=12, block_size=8, n_encoder_layer=2, n_decoder_layer=2,
                    n_head=2, n_embd=8)  # fmt: skip


def test_encoder_decoder_shapes():
    model = EncoderDecoder(EncoderDecoderConfig(**TINY_SEQ2SEQ), rng=0)
    src, tgt = random_ids((3, 6), 12), random_ids((3, 4), 12, seed=1)
    assert model.encode(src).shape == (3, 6, 8)
    logits, loss = model(src, tgt)
    assert logits.shape == (3, 4, 12) and loss is None


@pytest.mark.parametrize("norm, position", [("pre", "sinusoidal"), ("post", "learned")])
def test_encoder_decoder_gradcheck(norm, position):
    config = EncoderDecoderConfig(
        **{**TINY_SEQ2SEQ, "n_encoder_layer": 1}, ffn_hidden=4, norm=norm, position=position
    )
    model = EncoderDecoder(config, rng=1, dtype=np.float64)
    src, tgt = random_ids((2, 5), 12, seed=2), random_ids((2, 4), 12, seed=3)
    src[1, 3:] = 0
    targets = random_ids((2, 4), 12, seed=4)
    assert gradcheck_model(model, lambda: model(src, tgt, targets)[1])


def test_encoder_decoder_padding_is_invisible_and_unscored():
    model = EncoderDecoder(EncoderDecoderConfig(**TINY_SEQ2SEQ), rng=0, dtype=np.float64)
    src, tgt = np.array([[5, 6, 7, 0]]), np.array([[1, 5, 6]])
    longer = np.array([[5, 6, 7, 0, 0, 0]])
    np.testing.assert_allclose(model(src, tgt)[0].data, model(longer, tgt)[0].data, atol=1e-12)
    targets = np.array([[7, 2, 0]])
    logits, loss = model(src, tgt, targets)
    assert loss.item() == pytest.approx(F.cross_entropy(logits[:, :2], targets[:, :2]).item())


def test_encoder_decoder_cache_gives_the_logits_of_a_full_pass():
    model = EncoderDecoder(EncoderDecoderConfig(**TINY_SEQ2SEQ), rng=2, dtype=np.float64)
    src, tgt = random_ids((2, 6), 12, seed=5), random_ids((2, 5), 12, seed=6)
    with no_grad():
        memory = model.encode(src)
        full = model.decode(tgt, memory, src).data
        cache = model.new_cache()
        steps = [model.decode(tgt[:, t : t + 1], memory, src, cache).data for t in range(5)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-12)


def test_encoder_decoder_overfits_a_fixed_batch():
    config = EncoderDecoderConfig(**{**TINY_SEQ2SEQ, "n_embd": 32})
    model = EncoderDecoder(config, rng=0)
    src = random_ids((6, 6), 9, seed=7) + 3
    tgt_in = np.concatenate([np.ones((6, 1), int), src[:, ::-1]], axis=1)
    targets = np.concatenate([src[:, ::-1], np.full((6, 1), 2)], axis=1)
    first, last = overfit(model, lambda: model(src, tgt_in, targets)[1], steps=150)
    assert first > 2.0 and last < 0.05


def test_encoder_decoder_config_names_clashing_special_tokens():
    with pytest.raises(ValueError, match="pad_id, bos_id and eos_id must differ"):
        EncoderDecoderConfig(**TINY_SEQ2SEQ, bos_id=0)
    with pytest.raises(ValueError, match=r"eos_id=12 is outside the vocabulary"):
        EncoderDecoderConfig(**TINY_SEQ2SEQ, eos_id=12)


def test_models_take_their_own_config():
    with pytest.raises(TypeError, match="GPT needs a GPTConfig, got EncoderConfig"):
        GPT(EncoderConfig(**TINY_ENCODER))
