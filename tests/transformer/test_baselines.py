"""The models before transformers: RNN, LSTM, GRU and causal CNN language models.

Shapes, float64 gradient checks, overfitting a fixed batch, causality and the receptive
field, checkpoints, generation with and without the recurrent state, bad input.
"""

import math

import numpy as np
import pytest
from cli_helpers import run

from minigrad import gradcheck, no_grad, optim
from transformer.__main__ import main
from transformer.baselines import (
    ConvConfig,
    ConvLanguageModel,
    GRULanguageModel,
    LSTMLanguageModel,
    RecurrentConfig,
    RNNLanguageModel,
)
from transformer.checkpoint import load_checkpoint, model_kind, save_checkpoint
from transformer.generation import generate
from transformer.models import GPTConfig
from transformer.train import read_metrics

TINY_RECURRENT = dict(vocab_size=7, block_size=6, n_embd=3, hidden_size=4, n_layer=2)
TINY_CONV = dict(vocab_size=7, block_size=6, n_embd=4, n_layer=2, kernel_size=2)
RECURRENT = {"rnn": RNNLanguageModel, "lstm": LSTMLanguageModel, "gru": GRULanguageModel}
KINDS = [*RECURRENT, "cnn"]


def build(kind, seed=0, dtype=np.float32, **settings):
    if kind == "cnn":
        return ConvLanguageModel(ConvConfig(**{**TINY_CONV, **settings}), rng=seed, dtype=dtype)
    config = RecurrentConfig(**{**TINY_RECURRENT, **settings})
    return RECURRENT[kind](config, rng=seed, dtype=dtype)


def random_ids(shape, high, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape)


@pytest.mark.parametrize("kind", KINDS)
def test_logits_have_shape_batch_time_vocabulary_and_loss_is_none_without_targets(kind):
    model = build(kind)
    logits, loss = model(random_ids((3, 5), 7))
    assert logits.shape == (3, 5, 7) and logits.dtype == np.float32 and loss is None
    logits, loss = model(random_ids((2, 9), 7), random_ids((2, 9), 7, seed=1))
    assert logits.shape == (2, 9, 7) and loss.shape == ()  # longer than block_size: any length
    assert build(kind, dtype=np.float64)(random_ids((1, 2), 7))[0].dtype == np.float64


@pytest.mark.parametrize("kind", KINDS)
def test_weights_are_reproducible_from_the_seed_and_differ_between_seeds(kind):
    a, b, c = build(kind, seed=3), build(kind, seed=3), build(kind, seed=4)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert any(not np.array_equal(p.data, r.data) for p, r in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("kind", KINDS)
def test_initial_loss_is_near_log_vocabulary(kind):
    model = build(kind, vocab_size=40, n_embd=16, **({} if kind == "cnn" else {"hidden_size": 16}))
    idx = random_ids((8, 12), 40, seed=1)
    _, loss = model(idx, np.roll(idx, -1, axis=1))
    assert abs(loss.item() - math.log(40)) < 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    model = build(kind, seed=1, dtype=np.float64)
    idx, targets = random_ids((2, 4), 7, seed=2), random_ids((2, 4), 7, seed=3)
    targets[0, 1] = -1  # ignored positions are part of the check too
    assert gradcheck(lambda *params: model(idx, targets)[1], *model.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_targets_of_minus_one_are_left_out_of_the_loss(kind):
    model = build(kind, dtype=np.float64)
    idx, targets = random_ids((2, 5), 7, seed=2), random_ids((2, 5), 7, seed=3)
    masked = targets.copy()
    masked[:, :2] = -1
    _, full = model(idx, targets)
    logits, loss = model(idx, masked)
    log_probs = logits.data - np.log(np.exp(logits.data).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs[:, 2:], targets[:, 2:, None], axis=-1)
    assert loss.item() == pytest.approx(-picked.mean(), rel=1e-12)
    assert loss.item() != pytest.approx(full.item())


@pytest.mark.parametrize("kind", KINDS)
def test_no_position_sees_the_future(kind):
    model = build(kind, dtype=np.float64)
    idx = random_ids((1, 8), 7, seed=7)
    changed = idx.copy()
    changed[0, 5:] = (changed[0, 5:] + 1) % 7
    before, after = model(idx)[0].data, model(changed)[0].data
    np.testing.assert_array_equal(before[:, :5], after[:, :5])
    assert not np.allclose(before[:, 5:], after[:, 5:])


@pytest.mark.parametrize("kind", KINDS)
def test_overfits_a_fixed_batch(kind):
    wide = {"n_embd": 32, "n_layer": 1} if kind != "cnn" else {"n_embd": 32, "n_layer": 3}
    extra = {"hidden_size": 64} if kind != "cnn" else {"kernel_size": 3}
    model = build(kind, vocab_size=12, **wide, **extra)
    idx = random_ids((4, 9), 12, seed=8)  # random tokens: only memorising lowers the loss
    opt = optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(120):
        _, loss = model(idx[:, :-1], idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 2.0 and losses[-1] < 0.1, (losses[0], losses[-1])


@pytest.mark.parametrize("kind", RECURRENT)
def test_feeding_a_text_in_pieces_with_the_state_carried_gives_the_whole_pass(kind):
    model = build(kind, dtype=np.float64)
    idx = random_ids((2, 7), 7, seed=4)
    with no_grad():
        whole, _ = model.hidden_states(idx)
        first, state = model.hidden_states(idx[:, :3])
        rest, _ = model.hidden_states(idx[:, 3:], state)
    np.testing.assert_allclose(np.concatenate([first.data, rest.data], 1), whole.data, atol=1e-12)


@pytest.mark.parametrize(
    "kernel_size, n_layer, base, field", [(2, 3, 1, 4), (3, 3, 1, 7), (3, 3, 2, 15), (2, 4, 2, 16)]
)
def test_the_receptive_field_is_what_reaches_the_last_output(kernel_size, n_layer, base, field):
    config = ConvConfig(vocab_size=5, block_size=8, n_embd=4, n_layer=n_layer,
                        kernel_size=kernel_size, dilation_base=base)  # fmt: skip
    assert config.receptive_field == field
    model = ConvLanguageModel(config, rng=0, dtype=np.float64)
    T = field + 6
    idx = random_ids((1, T), 5, seed=1)
    last = model(idx)[0].data[0, -1]
    reaches = []
    for s in range(T):
        changed = idx.copy()
        changed[0, s] = (changed[0, s] + 1) % 5
        reaches.append(not np.array_equal(model(changed)[0].data[0, -1], last))
    assert reaches == [False] * (T - field) + [True] * field


def test_a_dilation_base_above_the_kernel_size_leaves_holes_in_the_receptive_field():
    """K = 2, dilations 1, 3, 9: each block shifts by 0 or its dilation, so the offsets that
    reach the last output are the sums of distinct powers of 3 (base-3 digits 0 or 1)."""
    config = ConvConfig(vocab_size=5, n_embd=4, n_layer=3, kernel_size=2, dilation_base=3)
    model = ConvLanguageModel(config, rng=0, dtype=np.float64)
    T = config.receptive_field  # 14: offsets 0..13
    idx = random_ids((1, T), 5, seed=1)
    last = model(idx)[0].data[0, -1]
    reached = set()
    for offset in range(T):
        changed = idx.copy()
        changed[0, T - 1 - offset] = (changed[0, T - 1 - offset] + 1) % 5
        if not np.array_equal(model(changed)[0].data[0, -1], last):
            reached.add(offset)
    assert reached == {a + 3 * b + 9 * c for a in (0, 1) for b in (0, 1) for c in (0, 1)}


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip(kind, tmp_path):
    model = build(kind, seed=5, dropout=0.1)
    save_checkpoint(tmp_path, model, step=3)
    loaded = load_checkpoint(tmp_path)
    assert loaded.kind == model_kind(model) == kind and type(loaded.model) is type(model)
    assert loaded.model.config == model.config and loaded.step == 3
    for (name, p), q in zip(model.named_parameters(), loaded.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    idx = random_ids((2, 5), 7)
    model.eval()
    np.testing.assert_array_equal(model(idx)[0].data, loaded.model(idx)[0].data)


# ------------------------------------------------------------------ generation
@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("length", [3, 15])  # within block_size, then far past it
def test_generation_with_the_state_writes_the_tokens_of_recomputing_the_window(kind, length):
    model = build(kind, dtype=np.float64)
    prompt = random_ids((2, 2), 7, seed=3)
    with_state = generate(model, prompt, length, temperature=0)
    without = generate(model, prompt, length, temperature=0, use_cache=False)
    assert with_state == without and all(len(row) == length for row in with_state)
    beams = [generate(model, prompt[0], 5, num_beams=3, use_cache=c) for c in (True, False)]
    assert beams[0] == beams[1]


def test_generation_of_a_recurrent_model_follows_its_greedy_logits():
    model = build("lstm", dtype=np.float64)
    prompt = [1, 2]
    written = generate(model, prompt, 4, temperature=0)
    ids = list(prompt)
    for token in written:
        ids.append(int(model(np.array([ids[-6:]]))[0].data[0, -1].argmax()))
        assert ids[-1] == token


def test_the_cnn_writes_from_its_receptive_field_as_from_the_whole_window():
    model = build("cnn", dtype=np.float64, block_size=12)  # receptive field 4
    ids = random_ids((1, 12), 7, seed=2)
    window = model(ids)[0].data[0, -1]
    cropped = model(ids[:, -model.config.receptive_field :])[0].data[0, -1]
    np.testing.assert_allclose(cropped, window, atol=1e-12)
    written = generate(model, ids[0], 6, temperature=0)
    for token in written:
        assert model(ids[:, -12:])[0].data[0, -1].argmax() == token
        ids = np.append(ids, [[token]], axis=1)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_named(kind):
    model = build(kind)
    with pytest.raises(ValueError, match=r"token id 7, outside the vocabulary \[0, 7\)"):
        model(np.array([[1, 7]]))
    with pytest.raises(ValueError, match=r"shape \(B, T\), got \(5,\)"):
        model(np.zeros(5, int))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 7\)"):
        model(np.zeros((1, 3), int), np.array([[1, 2, 7]]))
    with pytest.raises(ValueError, match="is empty"):
        model(np.zeros((1, 0), int))
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(model, [], 3)


@pytest.mark.parametrize(
    "make, settings, message",
    [
        (RecurrentConfig, {"hidden_size": 0}, "hidden_size must be a positive integer"),
        (RecurrentConfig, {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        (RecurrentConfig, {"kernel_size": 3}, "RecurrentConfig has no setting 'kernel_size'"),
        (ConvConfig, {"kernel_size": 0}, "kernel_size must be a positive integer"),
        (ConvConfig, {"dilation_base": 1.5}, "dilation_base must be a positive integer"),
        (ConvConfig, {"hidden_size": 8}, "ConvConfig has no setting 'hidden_size'"),
    ],
)
def test_configs_name_bad_settings(make, settings, message):
    with pytest.raises(ValueError, match=message):
        make.from_dict(settings)


def test_models_take_their_own_config():
    with pytest.raises(TypeError, match="LSTMLanguageModel needs a RecurrentConfig, got Conv"):
        LSTMLanguageModel(ConvConfig())
    with pytest.raises(TypeError, match="ConvLanguageModel needs a ConvConfig, got GPTConfig"):
        ConvLanguageModel(GPTConfig())


# ------------------------------------------------------------------ command line
FAST = ["--preset", "tiny", "--no-progress", "--max-new-tokens", "12"]
TINY_LSTM = ["--model", "lstm", "--hidden-size", "16"]


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lstm"
    argv = ["train", *FAST, *TINY_LSTM, "--steps", "4", "--eval-interval", "2", "--out", str(out)]
    assert main(argv) == 0
    return out


def test_train_an_lstm_from_the_command_line(lstm_run):
    checkpoint = load_checkpoint(lstm_run)
    assert checkpoint.kind == "lstm" and checkpoint.step == 4
    assert checkpoint.model.config.hidden_size == 16 and checkpoint.model.config.block_size == 32
    assert [row["step"] for row in read_metrics(lstm_run)] == [1, 2, 3, 4]


def test_sample_from_an_lstm_with_and_without_its_state(lstm_run, capsys):
    argv = ["sample", "--checkpoint", str(lstm_run), "--prompt", "Th", "--max-new-tokens", "40",
            "--temperature", "0"]  # fmt: skip
    status, out, _ = run(argv, capsys)
    assert status == 0 and out.startswith("\n--- sample ---\nTh") and len(out) > 40
    assert run([*argv, "--no-cache"], capsys)[1] == out


def test_eval_an_lstm(lstm_run, capsys):
    status, out, _ = run(["eval", "--checkpoint", str(lstm_run), "--batch-size", "512"], capsys)
    assert status == 0 and out.startswith("lstm with")
    loss = float(out.split("validation loss ")[1].split()[0])
    assert float(out.split("perplexity ")[1].split()[0]) == pytest.approx(np.exp(loss), rel=1e-3)
    assert "46,504 tokens predicted" in out


def test_an_lstm_run_resumes_to_the_losses_and_weights_of_an_uninterrupted_one(tmp_path, capsys):
    straight, halves = str(tmp_path / "straight"), str(tmp_path / "halves")
    common = [*FAST, *TINY_LSTM, "--n-layer", "2", "--dropout", "0.1", "--eval-interval", "2",
              "--warmup-steps", "1"]  # fmt: skip
    assert run(["train", *common, "--steps", "4", "--out", straight], capsys)[0] == 0
    assert run(["train", *common, "--steps", "2", "--lr-decay-steps", "4", "--out", halves],
               capsys)[0] == 0  # fmt: skip
    resume = ["train", "--out", halves, "--resume", "--steps", "4", "--no-progress"]
    assert run([*resume, "--max-new-tokens", "1"], capsys)[0] == 0
    assert [r["loss"] for r in read_metrics(straight)] == [r["loss"] for r in read_metrics(halves)]
    a, b = load_checkpoint(straight).model, load_checkpoint(halves).model
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "lstm", "--n-head", "2"], "--n-head: not a setting of --model lstm (its "
         "settings: --block-size, --n-layer, --n-embd, --hidden-size, --dropout)"),
        (["--model", "cnn", "--hidden-size", "8"], "--hidden-size: not a setting of --model cnn"),
        (["--model", "rnn", "--kernel-size", "3", "--position", "rope"],
         "--kernel-size, --position: not a setting of --model rnn"),
        (["--dilation-base", "2"], "--dilation-base: not a setting of --model gpt"),
        (["--model", "gru", "--dropout", "0.5", "--hidden-size", "8", "--resume"],
         "it takes --steps but not --model, --hidden-size, --dropout"),
        (["--model", "lstm", "--init-from", "nowhere"], "--init-from keeps the checkpoint's "
         "model and tokenizer; drop --model"),
    ],
)  # fmt: skip
def test_flags_that_do_not_apply_to_the_model_are_refused_in_one_line(extra, message, tmp_path,
                                                                      capsys):  # fmt: skip
    out = tmp_path / "run"
    status, stdout, err = run(["train", *FAST, "--out", str(out), *extra], capsys)
    assert status == 2 and message in err and not stdout
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_an_unknown_model_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "transformer-xl"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --model: invalid choice: 'transformer-xl'" in err
    assert len(err.strip().splitlines()) == 1


def test_help_names_the_models_and_their_flags_with_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--model {gpt,rnn,lstm,gru,cnn}" in out
    assert "the state's width (default 128)" in out
    assert "taps of each convolution (default 3)" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "train --model lstm" in capsys.readouterr().out
