"""The README's main job: a short run learns far better than chance and prints a sample."""

import math
import re

import minigrad
from minigrad import demo


def test_short_demo_run_learns_and_samples(tmp_path, capsys):
    weights = tmp_path / "char_mlp.safetensors"
    demo.main(["--steps", "300", "--hidden", "64", "--sample-length", "40", "--save", str(weights)])
    out = capsys.readouterr().out
    vocab_size = int(re.search(r"vocabulary of (\d+)", out).group(1))
    val_loss = float(re.search(r"validation loss ([\d.]+)", out).group(1))
    assert val_loss < 0.6 * math.log(vocab_size)  # chance is log(vocab_size) nats per char
    sample = out.split("sample:\n", 1)[1]
    assert sample.startswith("The ") and len(sample.rstrip("\n")) >= 40
    state, config = minigrad.load(weights)
    assert config["context"] == 16 and "embed.weight" in state
