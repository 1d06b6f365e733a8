"""Data parallelism: processes sharing a batch give the gradient of the whole batch."""

import multiprocessing
import os
import signal

import numpy as np
import pytest
from cli_helpers import bad, run

from tokenizers import CharTokenizer
from transformer.checkpoint import load_checkpoint
from transformer.data import LanguageModelTask, ReversalTask, TokenizedCorpus
from transformer.models import GPT, GPTConfig
from transformer.parallel import DataParallel, default_processes, split_rows
from transformer.train import TrainConfig, Trainer, read_metrics

TEXT = "the quick brown fox jumps over the lazy dog. " * 60


@pytest.fixture(scope="module")
def corpus():
    tokenizer = CharTokenizer().train(TEXT)
    return tokenizer, TokenizedCorpus.from_text(TEXT, tokenizer)


def small_gpt(vocab_size, **settings):
    config = GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16,
                       **settings)  # fmt: skip
    return GPT(config, rng=0)


def language_model_loss(model, rows):
    return model(*rows)[1]


def test_split_rows_cuts_every_array_alike_and_leaves_out_empty_shares():
    ids, targets = np.arange(10).reshape(5, 2), np.arange(10, 20).reshape(5, 2)
    shares = split_rows((ids, targets), 2)
    assert [len(ids) for ids, _ in shares] == [2, 3]
    np.testing.assert_array_equal(np.concatenate([t for _, t in shares]), targets)
    assert [len(ids) for ids, _ in split_rows((ids, targets), 8)] == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("processes, rows", [(2, 6), (2, 5), (3, 7)])
def test_the_loss_and_gradient_are_those_of_the_whole_batch(corpus, processes, rows):
    tokenizer, data = corpus
    batch = LanguageModelTask(data, 16).batch("train", rows, np.random.default_rng(0))
    alone, shared = small_gpt(tokenizer.vocab_size), small_gpt(tokenizer.vocab_size)
    loss = language_model_loss(alone, batch)
    loss.backward()
    for p in shared.parameters():
        p.grad = np.ones_like(p.data)  # added to, as backward adds to what is there
    with DataParallel(shared, language_model_loss, processes) as parallel:
        assert parallel.loss_and_grad(batch) == pytest.approx(loss.item(), rel=1e-6)
        assert len(parallel.workers) == processes - 1
    for (name, a), b in zip(alone.named_parameters(), shared.parameters()):
        np.testing.assert_allclose(b.grad, 1 + a.grad, rtol=1e-5, atol=1e-7, err_msg=name)


def test_the_workers_see_every_update_of_the_weights(corpus):
    tokenizer, data = corpus
    task = LanguageModelTask(data, 16)
    batch = task.batch("train", 4, np.random.default_rng(1))
    alone, shared = small_gpt(tokenizer.vocab_size), small_gpt(tokenizer.vocab_size)
    with DataParallel(shared, language_model_loss, 2) as parallel:
        parallel.loss_and_grad(batch)  # the worker is forked with the weights of now
        for a, b in zip(alone.parameters(), shared.parameters()):
            a.data -= 0.1 * a.data
            b.data -= 0.1 * b.data  # in place, as AdamW writes
            b.grad = None
        assert parallel.loss_and_grad(batch) == pytest.approx(
            language_model_loss(alone, batch).item(), rel=1e-6
        )


def test_an_evaluation_shared_among_processes_gives_the_batch_loss(corpus):
    tokenizer, data = corpus
    batch = LanguageModelTask(data, 16).batch("val", 5, np.random.default_rng(2))
    alone, shared = small_gpt(tokenizer.vocab_size, dropout=0.0), small_gpt(tokenizer.vocab_size)
    expected = language_model_loss(alone.eval(), batch).item()
    with DataParallel(shared.eval(), language_model_loss, 2) as parallel:
        assert parallel.loss(batch) == pytest.approx(expected, rel=1e-6)
        assert all(p.grad is None for p in shared.parameters())


def test_a_trainer_with_two_processes_follows_the_single_process_run(corpus, tmp_path):
    tokenizer, data = corpus
    runs = {}
    for processes in (1, 2):
        config = TrainConfig(steps=8, batch_size=4, eval_interval=4, eval_batches=2,
                             warmup_steps=2, processes=processes)  # fmt: skip
        trainer = Trainer(small_gpt(tokenizer.vocab_size), LanguageModelTask(data, 16), config,
                          tmp_path / str(processes), progress=False)  # fmt: skip
        trainer.run()
        runs[processes] = trainer
        assert multiprocessing.active_children() == []  # the run stopped its workers
    np.testing.assert_allclose([r["loss"] for r in runs[2].history],
                               [r["loss"] for r in runs[1].history], rtol=1e-5)  # fmt: skip
    for a, b in zip(runs[1].model.parameters(), runs[2].model.parameters()):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-4, atol=1e-6)
    assert load_checkpoint(tmp_path / "2").training["train_config"]["processes"] == 2


def test_a_resumed_two_process_run_equals_the_uninterrupted_one(corpus, tmp_path):
    tokenizer, data = corpus

    def trainer(out, **settings):
        config = TrainConfig(steps=8, batch_size=4, eval_interval=4, eval_batches=2,
                             warmup_steps=2, processes=2, **settings)  # fmt: skip
        return Trainer(small_gpt(tokenizer.vocab_size), LanguageModelTask(data, 16), config,
                       tmp_path / out, progress=False)  # fmt: skip

    straight = trainer("straight")
    straight.run()
    trainer("halves", lr_decay_steps=8).run(until=4)
    resumed = Trainer.resume(tmp_path / "halves", lambda ck: LanguageModelTask(data, 16),
                             steps=8, progress=False)  # fmt: skip
    assert resumed.config.processes == 2
    resumed.run()
    losses = [r["loss"] for r in read_metrics(tmp_path / "straight")]
    assert losses == [r["loss"] for r in read_metrics(tmp_path / "halves")]
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "settings, message",
    [({"dropout": 0.1}, "dropout"), ({"n_experts": 2}, "mixture of experts")],
)
def test_models_whose_shares_would_differ_from_the_batch_are_refused(corpus, settings, message):
    model = small_gpt(corpus[0].vocab_size, **settings)
    with pytest.raises(ValueError, match=message):
        DataParallel(model, language_model_loss, 2)
    assert default_processes(model.config, batch_size=16) == 1


def test_a_task_whose_rows_weigh_differently_is_refused(corpus):
    config = TrainConfig(steps=2, batch_size=4, processes=2)
    with pytest.raises(ValueError, match="rows count equally.*ReversalTask"):
        Trainer(small_gpt(corpus[0].vocab_size), ReversalTask(), config, progress=False)
    with pytest.raises(ValueError, match="processes must be an integer >= 2"):
        DataParallel(small_gpt(corpus[0].vocab_size), language_model_loss, 1)


def test_a_failing_worker_is_named_and_the_next_step_still_works(corpus):
    tokenizer, data = corpus
    batch = LanguageModelTask(data, 16).batch("train", 5, np.random.default_rng(0))
    parent = os.getpid()

    def loss_failing_in_the_worker_on_three_rows(model, rows):
        if os.getpid() != parent and len(rows[0]) == 3:
            raise ArithmeticError("planted")
        return language_model_loss(model, rows)

    model = small_gpt(tokenizer.vocab_size)
    with DataParallel(model, loss_failing_in_the_worker_on_three_rows, 2) as parallel:
        with pytest.raises(RuntimeError, match="worker failed: ArithmeticError.*planted"):
            parallel.loss_and_grad(batch)  # rows 0-1 here, 2-4 in the worker
        for p in model.parameters():
            p.grad = None
        four_rows = tuple(a[:4] for a in batch)  # two rows each
        assert np.isfinite(parallel.loss_and_grad(four_rows))


def test_a_worker_that_dies_is_reported_and_the_rest_stopped(corpus):
    tokenizer, data = corpus
    batch = LanguageModelTask(data, 16).batch("train", 4, np.random.default_rng(0))
    parallel = DataParallel(small_gpt(tokenizer.vocab_size), language_model_loss, 3)
    parallel.loss_and_grad(batch)
    os.kill(parallel.workers[0][0].pid, signal.SIGKILL)
    parallel.workers[0][0].join()
    with pytest.raises(RuntimeError, match=r"worker \(pid \d+\) stopped, exit code -9"):
        parallel.loss_and_grad(batch)
    assert parallel.workers == [] and multiprocessing.active_children() == []


def test_the_command_line_shares_the_batch_when_it_can(tmp_path, capsys):
    code, out, err = run(["train", "--preset", "tiny", "--out", str(tmp_path / "run"),
                          "--no-progress", "--processes", "2"], capsys)  # fmt: skip
    assert code == 0, err
    assert load_checkpoint(tmp_path / "run").training["train_config"]["processes"] == 2
    code, out, err = run(["train", "--preset", "tiny", "--out", str(tmp_path / "auto"),
                          "--no-progress", "--steps", "2"], capsys)  # fmt: skip
    assert code == 0, err
    chosen = load_checkpoint(tmp_path / "auto").training["train_config"]["processes"]
    assert chosen == default_processes(GPTConfig(), batch_size=8) >= 1


def test_the_command_line_refuses_processes_the_model_cannot_share(tmp_path, capsys):
    bad(["train", "--preset", "tiny", "--out", str(tmp_path / "run"), "--dropout", "0.1",
         "--processes", "2"], capsys, "--processes 2: dropout > 0")  # fmt: skip
    bad(["train", "--preset", "moe", "--out", str(tmp_path / "run"), "--processes", "2"],
        capsys, "--processes 2: a mixture of experts")  # fmt: skip
    bad(["finetune", "--checkpoint", str(tmp_path), "--task", "classify", "--out",
         str(tmp_path / "tuned"), "--processes", "2"],
        capsys, "fine-tuning runs in one process")  # fmt: skip
