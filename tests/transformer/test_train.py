"""The training loop, checkpoints and data: exact resume, atomic saves, Ctrl-C, NaN, batches."""

import json
import math
import os
import signal

import numpy as np
import pytest

from minigrad import serialization
from tokenizers import CharTokenizer
from transformer.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from transformer.data import (
    LanguageModelTask,
    MajorityTask,
    ReversalTask,
    TokenizedCorpus,
    consecutive_windows,
    random_windows,
    read_text_file,
)
from transformer.generation import generate
from transformer.models import (
    GPT,
    EncoderConfig,
    EncoderDecoder,
    EncoderDecoderConfig,
    EncoderModel,
    GPTConfig,
)
from transformer.train import (
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    TrainingInterruptedError,
    parameter_groups,
    read_metrics,
)

TEXT = "the quick brown fox jumps over the lazy dog. " * 60


@pytest.fixture(scope="module")
def corpus():
    tokenizer = CharTokenizer().train(TEXT)
    return tokenizer, TokenizedCorpus.from_text(TEXT, tokenizer)


def small_gpt(vocab_size, seed=0, dropout=0.1):
    config = GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16,
                       dropout=dropout)  # fmt: skip
    return GPT(config, rng=seed)


def trainer(corpus, out_dir=None, steps=12, **settings):
    tokenizer, data = corpus
    config = TrainConfig(steps=steps, batch_size=4, eval_interval=4, eval_batches=2,
                         warmup_steps=2, **settings)  # fmt: skip
    return Trainer(small_gpt(tokenizer.vocab_size), LanguageModelTask(data, 16), config,
                   out_dir, tokenizer, progress=False)  # fmt: skip


def weights(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


# ------------------------------------------------------------------ data
def test_random_windows_pair_each_token_with_the_next():
    ids = np.arange(100)
    inputs, targets = random_windows(ids, 5, 8, np.random.default_rng(0))
    assert inputs.shape == targets.shape == (5, 8)
    np.testing.assert_array_equal(targets, inputs + 1)


def test_consecutive_windows_predict_every_token_once():
    ids = np.arange(23)
    batches = consecutive_windows(ids, block_size=5, batch_size=3)
    targets = np.concatenate([t.ravel() for _, t in batches])
    np.testing.assert_array_equal(targets, np.arange(1, 23))
    assert all(np.array_equal(t, i + 1) for i, t in batches)


def test_tokenized_corpus_splits_text_by_characters(corpus):
    tokenizer, data = corpus
    assert data.train_chars + data.val_chars == len(TEXT)
    assert data.val_chars == len(TEXT) - int(len(TEXT) * 0.9)
    assert tokenizer.decode(data.val.tolist()) == TEXT[data.train_chars :]
    assert data.chars_per_token() == 1.0


def test_bad_text_files_are_named(tmp_path):
    binary, empty = tmp_path / "a.bin", tmp_path / "empty.txt"
    binary.write_bytes(b"\x7fELF\x00\x01")
    empty.write_text("  \n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    for path, message in [(binary, "looks binary"), (empty, "is empty"),
                          (latin, "is not UTF-8"), (tmp_path / "nope.txt", "no such file"),
                          (tmp_path, "is not a file")]:  # fmt: skip
        with pytest.raises(ValueError, match=message) as error:
            read_text_file(path)
        assert str(path) in str(error.value)


def test_reversal_task_batches():
    task = ReversalTask(min_length=2, max_length=4)
    src, tgt_in, targets = task.collate(["123", "45"])
    np.testing.assert_array_equal(src, [[4, 5, 6], [7, 8, 0]])
    np.testing.assert_array_equal(tgt_in, [[1, 6, 5, 4], [1, 8, 7, 0]])
    np.testing.assert_array_equal(targets, [[6, 5, 4, 2], [8, 7, 2, 0]])
    assert task.decode(targets[0].tolist()) == "321"


def test_majority_task_labels_the_strictly_most_frequent_letter():
    task = MajorityTask(n_letters=3)
    ids, labels = task.batch("train", 200, np.random.default_rng(0))
    for row, label in zip(ids, labels):
        counts = np.bincount(row[row >= 2] - 2, minlength=3)
        assert counts.argmax() == label and (counts == counts.max()).sum() == 1
    assert set(np.bincount(labels, minlength=3)) and min(np.bincount(labels)) > 40


# ------------------------------------------------------------------ the loop
def test_weight_decay_applies_to_matrices_only(corpus):
    model = small_gpt(corpus[0].vocab_size)
    decayed, plain = parameter_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_training_lowers_the_loss_and_writes_metrics_checkpoint_and_plot(corpus, tmp_path):
    run = trainer(corpus, tmp_path, steps=40, lr=1e-2)
    last = run.run()
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert all({"step", "loss", "lr", "grad_norm", "tokens_per_sec"} <= set(r) for r in rows)
    assert [r["step"] for r in rows if "val_loss" in r] == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    assert last["val_loss"] < rows[3]["val_loss"] - 0.5
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.step == 40 and checkpoint.tokenizer.vocab_size == corpus[0].vocab_size


def test_resume_reproduces_an_uninterrupted_run_step_for_step(corpus, tmp_path):
    straight = trainer(corpus, tmp_path / "straight")
    straight.run()
    halves = trainer(corpus, tmp_path / "halves", lr_decay_steps=12)  # planned as 12 steps
    halves.run(until=6)
    resumed = Trainer.resume(tmp_path / "halves", lambda ck: LanguageModelTask(corpus[1], 16),
                             steps=12, progress=False)  # fmt: skip
    assert resumed.step == 6
    resumed.run()
    losses = [r["loss"] for r in read_metrics(tmp_path / "straight")]
    assert losses == [r["loss"] for r in read_metrics(tmp_path / "halves")]
    for name, value in weights(straight.model).items():
        np.testing.assert_array_equal(value, weights(resumed.model)[name], err_msg=name)


def test_an_interrupted_save_leaves_the_previous_checkpoint_loadable(corpus, tmp_path, monkeypatch):
    run = trainer(corpus, tmp_path)
    run.run(until=4)
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(serialization.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        run.run(until=8)
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == before
    assert load_checkpoint(tmp_path).step == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


class SignalAtStep:
    """A task that presses Ctrl-C (sends SIGINT) while drawing the batch of step `at`."""

    def __init__(self, task, at):
        self.task, self.at, self.calls = task, at, 0
        self.chars_per_token = task.chars_per_token

    def batch(self, split, batch_size, rng):
        if split == "train":
            self.calls += 1
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGINT)
        return self.task.batch(split, batch_size, rng)

    def loss(self, model, batch):
        return self.task.loss(model, batch)

    def tokens(self, batch):
        return self.task.tokens(batch)


def test_ctrl_c_finishes_the_step_saves_and_stops(corpus, tmp_path):
    run = trainer(corpus, tmp_path)
    run.task = SignalAtStep(run.task, at=3)
    with pytest.raises(TrainingInterruptedError, match="after step 3"):
        run.run()
    assert load_checkpoint(tmp_path).step == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class NaNAfter:
    def __init__(self, task, after):
        self.task, self.after, self.calls = task, after, 0

    def batch(self, split, batch_size, rng):
        return self.task.batch(split, batch_size, rng)

    def loss(self, model, batch):
        loss = self.task.loss(model, batch)
        if model.training:
            self.calls += 1
            if self.calls > self.after:
                return loss * math.nan
        return loss

    def tokens(self, batch):
        return self.task.tokens(batch)


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(corpus, tmp_path):
    run = trainer(corpus, tmp_path)
    run.task = NaNAfter(run.task, after=6)
    saved_at_4 = None
    with pytest.raises(TrainingDivergedError, match="the loss became nan at step 7"):
        run.run()
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.step == 4 and saved_at_4 is None
    assert all(np.isfinite(p.data).all() for p in checkpoint.model.parameters())
    assert [r["step"] for r in read_metrics(tmp_path)] == list(range(1, 7))


def test_checkpoint_round_trips_weights_optimizer_and_generators(corpus, tmp_path):
    run = trainer(corpus, tmp_path)
    run.run(until=4)
    checkpoint = load_checkpoint(tmp_path)
    for name, value in weights(run.model).items():
        np.testing.assert_array_equal(value, weights(checkpoint.model)[name])
    state = run.optimizer.state_dict()["state"]
    for index, saved in checkpoint.optimizer_state["state"].items():
        assert saved["step"] == state[index]["step"] == 4
        np.testing.assert_array_equal(saved["exp_avg_sq"], state[index]["exp_avg_sq"])
    checkpoint.restore_generators()
    dropout_rng = checkpoint.model.dropout.rng
    assert dropout_rng.random() == run.model.dropout.rng.random()


def test_missing_and_corrupted_checkpoints_are_named(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="holds no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_of_changed_weights_is_refused_with_the_key(tmp_path):
    model = small_gpt(10)
    save_checkpoint(tmp_path, model, step=1)
    path = tmp_path / CHECKPOINT_FILE
    arrays, metadata = serialization.load(path)
    arrays["model/ln_final.weight"] = np.ones(3, np.float32)
    serialization.save(arrays, path, config=metadata)
    with pytest.raises(ValueError, match="ln_final.weight"):
        load_checkpoint(tmp_path)


def test_train_config_names_bad_settings():
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match=r"min_lr must lie in \[0, lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)
    assert json.loads(json.dumps(TrainConfig().to_dict())) == TrainConfig().to_dict()


# ------------------------------------------------------------------ the other two models
def test_encoder_decoder_learns_to_reverse_short_digit_strings():
    task = ReversalTask(min_length=2, max_length=4)
    config = EncoderDecoderConfig(vocab_size=task.vocab_size, block_size=8, n_encoder_layer=2,
                                  n_decoder_layer=2, n_head=4, n_embd=64)  # fmt: skip
    model = EncoderDecoder(config, rng=0)
    run = Trainer(
        model,
        task,
        TrainConfig(
            steps=300, batch_size=32, lr=3e-3, warmup_steps=30, eval_interval=300, eval_batches=2
        ),
        progress=False,
    )
    run.run()
    tests = task.examples(100, np.random.default_rng(123))
    answers = generate(model, task.collate(tests)[0], 8, temperature=0)
    correct = sum(task.decode(answer) == digits[::-1] for digits, answer in zip(tests, answers))
    assert correct >= 95, f"{correct}/100 reversed exactly"


def test_encoder_learns_the_majority_task():
    task = MajorityTask(n_letters=3, max_length=10)
    config = EncoderConfig(vocab_size=task.vocab_size, block_size=16, n_layer=2, n_head=2,
                           n_embd=32, n_classes=task.n_classes, dropout=0.0)  # fmt: skip
    model = EncoderModel(config, rng=0)
    Trainer(
        model,
        task,
        TrainConfig(
            steps=300, batch_size=32, lr=3e-3, warmup_steps=30, eval_interval=300, eval_batches=2
        ),
        progress=False,
    ).run()
    ids, labels = task.batch("val", 400, np.random.default_rng(7))
    model.eval()
    accuracy = (model(ids)[0].data.argmax(axis=-1) == labels).mean()
    assert accuracy > 0.85
