"""python -m transformer: train, resume, sample, eval; and bad input answered in one line."""

import json
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import bad, run

from transformer.__main__ import main
from transformer.checkpoint import CHECKPOINT_FILE, load_checkpoint
from transformer.train import read_metrics

FAST = ["--preset", "tiny", "--no-progress", "--max-new-tokens", "20"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", *FAST, "--steps", "8", "--eval-interval", "4", "--out", str(out)]) == 0
    return out


def test_train_writes_checkpoint_tokenizer_metrics_and_plot_and_prints_a_sample(trained, capsys):
    assert {p.name for p in trained.iterdir()} >= {
        CHECKPOINT_FILE,
        "tokenizer.json",
        "metrics.jsonl",
        "loss.png",
    }
    rows = read_metrics(trained)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all(isinstance(r["loss"], float) for r in rows)
    lines = (trained / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line)["step"] == i + 1 for i, line in enumerate(lines))


def test_train_output_ends_with_a_sample_and_the_plot_path(tmp_path, capsys):
    status, out, _ = run(["train", *FAST, "--steps", "3", "--out", str(tmp_path / "r")], capsys)
    assert status == 0
    assert "--- sample ---\nThe " in out
    assert out.rstrip().endswith(f"loss curve: {tmp_path / 'r' / 'loss.png'}")
    assert "validation loss" in out and "per character" in out


def test_resume_continues_a_run_to_the_same_losses_and_weights(tmp_path, capsys):
    straight, halves = str(tmp_path / "straight"), str(tmp_path / "halves")
    common = [*FAST, "--eval-interval", "3", "--dropout", "0.1"]
    assert run(["train", *common, "--steps", "12", "--out", straight], capsys)[0] == 0
    assert run(["train", *common, "--steps", "6", "--lr-decay-steps", "12", "--out", halves],
               capsys)[0] == 0  # fmt: skip
    status, out, _ = run(["train", "--out", halves, "--resume", "--steps", "12",
                          "--no-progress", "--max-new-tokens", "5"], capsys)  # fmt: skip
    assert status == 0 and "resuming" in out
    assert [r["loss"] for r in read_metrics(straight)] == [r["loss"] for r in read_metrics(halves)]
    a, b = load_checkpoint(straight).model, load_checkpoint(halves).model
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_init_from_starts_a_new_run_from_the_weights(trained, tmp_path, capsys):
    text = tmp_path / "other.txt"
    text.write_text("a different text, to fine-tune on. " * 200)
    out = tmp_path / "finetuned"
    status, stdout, _ = run(["train", *FAST, "--init-from", str(trained), "--data", str(text),
                             "--steps", "4", "--out", str(out)], capsys)  # fmt: skip
    assert status == 0 and "starting from gpt" in stdout
    assert load_checkpoint(out).step == 4  # a fresh step counter
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "options",
    [
        ["--temperature", "0"],
        ["--top-k", "5"],
        ["--top-p", "0.9"],
        ["--num-beams", "3"],
        ["--no-cache", "--temperature", "0"],
    ],  # fmt: skip
)
def test_sample_with_each_strategy(trained, capsys, options):
    status, out, _ = run(["sample", "--checkpoint", str(trained), "--prompt", "Th",
                          "--max-new-tokens", "12", *options], capsys)  # fmt: skip
    assert status == 0 and out.startswith("\n--- sample ---\nTh")


def test_greedy_sampling_is_the_same_with_and_without_the_cache(trained, capsys):
    argv = ["sample", "--checkpoint", str(trained), "--max-new-tokens", "40", "--temperature", "0"]
    assert run(argv, capsys)[1] == run([*argv, "--no-cache"], capsys)[1]


def test_eval_prints_loss_and_perplexity(trained, capsys):
    status, out, _ = run(["eval", "--checkpoint", str(trained)], capsys)
    assert status == 0
    loss = float(out.split("validation loss ")[1].split()[0])
    perplexity = float(out.split("perplexity ")[1].split()[0])
    assert perplexity == pytest.approx(np.exp(loss), rel=1e-3)
    assert "46,504 tokens predicted" in out  # the whole validation split of the corpus


# ------------------------------------------------------------------ bad input
def argparse_error(argv, capsys, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
        (["train", "--stpes", "5"], "unrecognized arguments: --stpes 5"),
        (["train", "--steps", "0"], "argument --steps: must be a positive integer, got 0"),
        (["train", "--steps", "ten"], "argument --steps: must be a positive integer, got 'ten'"),
        (["train", "--dropout", "1"], "argument --dropout: must be a probability in [0, 1)"),
        (["sample", "--checkpoint", "x", "--temperature", "-1"],
         "argument --temperature: must be a number >= 0, got -1"),
        (["sample", "--checkpoint", "x", "--top-p", "2"],
         "argument --top-p: must be a probability in (0, 1], got 2"),
        (["sample"], "one of the arguments --checkpoint --hf is required"),
        ([], "the following arguments are required: command"),
    ],
)  # fmt: skip
def test_argument_errors_are_one_line(argv, message, capsys):
    argparse_error(argv, capsys, message)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--n-embd", "10", "--n-head", "4"], "n_embd=10 must be divisible by n_head=4"),
        (["--resume"], "holds no run to continue"),
        (["--min-lr", "1"], "min_lr must lie in [0, lr="),
        (["--tokenizer", "bpe", "--vocab-size", "100"], "too small for byte-level BPE"),
        (["--init-from", "nowhere"], "no checkpoint directory at nowhere"),
    ],
)
def test_bad_training_settings_fail_before_any_work(extra, message, capsys, tmp_path):
    out = tmp_path / "run"
    bad(["train", *FAST, "--out", str(out), *extra], capsys, message)
    assert not out.exists()


def test_bad_data_files_are_named(tmp_path, capsys):
    binary = tmp_path / "ls"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" * 8)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    bad(["train", *FAST, "--data", str(binary), "--out", str(tmp_path / "a")], capsys,
        f"{binary} looks binary", status=1)  # fmt: skip
    bad(["train", *FAST, "--data", str(empty), "--out", str(tmp_path / "b")], capsys,
        f"{empty} is empty", status=1)  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_existing_run_is_not_overwritten_and_resume_needs_a_later_step(trained, capsys):
    bad(["train", *FAST, "--out", str(trained)], capsys, "already holds a run: continue it with")
    bad(["train", "--out", str(trained), "--resume", "--steps", "8"], capsys,
        "is at step 8 already")  # fmt: skip
    bad(["train", "--out", str(trained), "--resume", "--n-layer", "2"], capsys,
        "it takes --steps but not --n-layer")  # fmt: skip
    before = read_metrics(trained)
    assert len(before) == 8


def test_missing_and_corrupted_checkpoints_are_named(tmp_path, capsys):
    bad(["sample", "--checkpoint", str(tmp_path / "none")], capsys, "no checkpoint directory")
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"garbage")
    bad(["eval", "--checkpoint", str(tmp_path)], capsys, "is not a readable checkpoint")


def test_an_out_path_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    bad(["train", *FAST, "--out", str(target)], capsys, "is a file, not a directory")


def test_the_command_line_never_shows_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "transformer", "train", "--steps", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "python -m transformer train: error: argument --steps: must be a positive integer, got 0"
    )


def test_help_explains_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # unwrapped
    for flag in ("--preset", "--steps", "--lr", "--n-layer", "--resume", "--init-from",
                 "--top-p", "--temperature"):  # fmt: skip
        assert flag in out
    assert "optimizer steps (with --resume: the step to reach) (default 2500)" in out
    assert "tiny: a few seconds" in out and "--no-bias" in out


# ------------------------------------------------------------------ Hugging Face layouts
FIXTURES = __import__("pathlib").Path(__file__).parents[1] / "fixtures"


def test_export_then_sample_from_the_exported_directory(tmp_path, capsys):
    run_dir, exported = tmp_path / "bpe", tmp_path / "exported"
    assert main(["train", *FAST, "--tokenizer", "bpe", "--vocab-size", "300", "--steps", "2",
                 "--out", str(run_dir)]) == 0  # fmt: skip
    status, out, _ = run(["export", "--checkpoint", str(run_dir), "--out", str(exported)], capsys)
    assert status == 0 and "in the GPT-2 layout" in out
    assert {"config.json", "model.safetensors", "vocab.json", "merges.txt"} <= {
        p.name for p in exported.iterdir()
    }
    argv = ["sample", "--prompt", "The ", "--max-new-tokens", "8", "--temperature", "0"]
    from_hf = run([*argv, "--hf", str(exported)], capsys)[1]
    assert from_hf == run([*argv, "--checkpoint", str(run_dir)], capsys)[1]


def test_export_of_a_character_model_says_the_tokenizer_stays_behind(trained, tmp_path, capsys):
    status, out, _ = run(["export", "--checkpoint", str(trained), "--out", str(tmp_path)], capsys)
    assert status == 0 and "CharTokenizer has no GPT-2 file format" in out


def test_embed_prints_embeddings_or_the_similarity_matrix(capsys):
    model = str(FIXTURES / "bert_tiny")
    status, out, _ = run(["embed", "--model", model, "a cat", "a dog", "the stadium"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [r["sentence"] for r in rows] == ["a cat", "a dog", "the stadium"]
    assert all(abs(np.linalg.norm(r["embedding"]) - 1) < 1e-4 for r in rows)
    status, out, _ = run(["embed", "--model", model, "--similarity", "a cat", "a dog"], capsys)
    matrix = np.array([line.split()[:2] for line in out.splitlines()], dtype=float)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-4)
    assert matrix[0, 1] == matrix[1, 0]


def test_bad_hugging_face_directories_are_named(tmp_path, capsys):
    bad(["embed", "--model", str(tmp_path), "x"], capsys, f"{tmp_path} has no config.json", 1)
    bad(["sample", "--hf", str(tmp_path)], capsys, "has no config.json", status=1)
    argparse_error(["sample", "--hf", "a", "--checkpoint", "b"], capsys,
                   "argument --checkpoint: not allowed with argument --hf")  # fmt: skip


def test_init_from_refuses_settings_that_would_change_the_model(trained, tmp_path, capsys):
    bad(
        [
            "train",
            *FAST,
            "--init-from",
            str(trained),
            "--n-layer",
            "3",
            "--tokenizer",
            "bpe",
            "--out",
            str(tmp_path / "x"),
        ],
        capsys,
        "--init-from keeps the checkpoint's model and tokenizer; drop --tokenizer, --n-layer",
    )
    bad(["train", "--out", str(trained), "--resume", "--steps", "9", "--lr", "0.1"], capsys,
        "it takes --steps but not --lr")  # fmt: skip


def test_a_diverging_run_stops_with_one_line_and_keeps_no_bad_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    bad(["train", *FAST, "--lr", "1e30", "--warmup-steps", "0", "--out", str(out)], capsys,
        "the loss became nan at step 2; stopped (no checkpoint was saved", status=1)  # fmt: skip
    assert not (out / CHECKPOINT_FILE).exists()
