"""Export project GPTs as GPT-2 and check that Hugging Face reads them as they are here.

Run from the repository root with the project's environment; the Hugging Face side runs in
a separate one that has torch and transformers (the project never imports them):

    python scripts/compare_gpt2_export.py --torch-python /path/to/torch-venv/bin/python

For a few shapes (GPT-2's own: tanh GELU, tied head; ReLU with an untied head and a narrow
FFN; the exact GELU), it trains a small GPT for a few steps on Python's documentation with a
BPE tokenizer trained on the same text (GPT-2's or GPT-4's split pattern), exports it with
`export_gpt2`, and then, in the torch environment, loads the directory with
`GPT2LMHeadModel.from_pretrained` and `AutoTokenizer.from_pretrained`. It prints, per model,
whether the token ids agree on varied texts and the largest logit difference.

The same file is the Hugging Face side: `python compare_gpt2_export.py hf DIR...` (run by
the torch interpreter; it never imports the project).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "def f(x):\n    return x ** 2  # squares\n\n\n",
    "Héllo wörld, naïve café — 12345 + 678 = 13023!",
    "我爱北京天安门 and emoji 🙂👍🏽",
    "  leading spaces, trailing spaces   ",
    "it's don't we'll THEY'RE I'M",
]

SHAPES = {
    "gpt2_tanh_tied": dict(activation="gelu_tanh", tie_weights=True, pattern="gpt2"),
    "relu_untied_ffn48": dict(activation="relu", tie_weights=False, ffn_hidden=48, pattern="gpt4"),
    "gelu_exact_tied": dict(activation="gelu", tie_weights=True, pattern="gpt4"),
}


def project_side(out: Path, steps: int) -> dict:
    """Train, export and run each shape here; write ids and logits next to each export."""
    import pydoc_data.topics

    import numpy as np
    from safetensors.numpy import save_file

    from minigrad import no_grad, optim
    from tokenizers import BPETokenizer
    from transformer.models import GPT, GPTConfig
    from transformer.pretrained import export_gpt2

    text = "\n".join(pydoc_data.topics.topics[name] for name in sorted(pydoc_data.topics.topics))
    text = text[:200_000]
    summary = {}
    for seed, (name, shape) in enumerate(SHAPES.items()):
        shape = dict(shape)
        tokenizer = BPETokenizer().train(
            text, vocab_size=384, pattern=shape.pop("pattern"), special_tokens=["<|endoftext|>"]
        )
        config = GPTConfig(
            vocab_size=tokenizer.vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=32,
            **shape,
        )  # fmt: skip
        model = GPT(config, rng=seed)
        data = np.array(tokenizer.encode(text[:50_000]))
        rng = np.random.default_rng(seed)
        opt = optim.AdamW(model.parameters(), lr=3e-3)
        for _ in range(steps):
            starts = rng.integers(0, len(data) - 65, 8)
            batch = np.stack([data[s : s + 65] for s in starts])
            _, loss = model(batch[:, :-1], batch[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        directory = export_gpt2(model, out / name, tokenizer)
        ids = [tokenizer.encode(t, allowed_special="all") for t in TEXTS]
        arrays = {}
        with no_grad():
            for k, row in enumerate(ids):
                arrays[f"logits_{k}"] = model(np.array([row]))[0].data[0]
        save_file(arrays, directory.parent / f"{name}.project.safetensors")
        summary[name] = {"loss": float(loss.data), "ids": ids}
    (out / "project.json").write_text(json.dumps(summary))
    return summary


def hf_side(directories: list[str]) -> None:
    """Load each export with transformers; write beside it the logits for the project's ids
    (so that the models are compared on the same input) and the ids of its own tokenizer."""
    import torch
    from safetensors.numpy import save_file
    from transformers import AutoTokenizer, GPT2LMHeadModel

    for directory in map(Path, directories):
        model = GPT2LMHeadModel.from_pretrained(directory).eval()
        tokenizer = AutoTokenizer.from_pretrained(directory)
        ids = [tokenizer(t)["input_ids"] for t in TEXTS]
        project_ids = json.loads((directory.parent / "project.json").read_text())
        arrays = {}
        with torch.no_grad():
            for k, row in enumerate(project_ids[directory.name]["ids"]):
                arrays[f"logits_{k}"] = model(torch.tensor([row])).logits[0].numpy()
        save_file(arrays, directory.parent / f"{directory.name}.hf.safetensors")
        (directory.parent / f"{directory.name}.hf.json").write_text(
            json.dumps({"ids": ids, "tokenizer": type(tokenizer).__name__})
        )


def main() -> None:
    if sys.argv[1:2] == ["hf"]:
        hf_side(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", required=True, help="python of the torch venv")
    parser.add_argument("--steps", type=int, default=30, help="training steps per model")
    args = parser.parse_args()

    import numpy as np
    from safetensors.numpy import load_file

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary = project_side(out, args.steps)
        dirs = [str(out / name) for name in SHAPES]
        # without PYTHONPATH: the project's `tokenizers` would hide Hugging Face's there
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([args.torch_python, __file__, "hf", *dirs], check=True, env=env)
        for name in SHAPES:
            ours = load_file(out / f"{name}.project.safetensors")
            theirs = load_file(out / f"{name}.hf.safetensors")
            hf = json.loads((out / f"{name}.hf.json").read_text())
            same_ids = hf["ids"] == summary[name]["ids"]
            diff = max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours)
            print(
                f"{name}: loss after {args.steps} steps {summary[name]['loss']:.3f}; "
                f"{hf['tokenizer']} ids {'agree' if same_ids else 'DIFFER'} on "
                f"{len(TEXTS)} texts; max |logit difference| {diff:.2e}"
            )


if __name__ == "__main__":
    main()
