"""``python -m tokenizers``: train, encode, decode, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tokenizers", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_train_encode_decode(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text("low lower lowest newer wider " * 50, encoding="utf-8")
    out = tmp_path / "tok.json"
    trained = run("train", "--data", str(data), "--vocab-size", "270", "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    assert "vocab_size=270" in trained.stdout and out.exists()

    encoded = run("encode", "--tokenizer", str(out), "--json", "lowest newer")
    assert encoded.returncode == 0, encoded.stderr
    result = json.loads(encoded.stdout)
    assert "".join(result["pieces"]) == "lowest newer"
    assert len(result["ids"]) < len("lowest newer")

    decoded = run("decode", "--tokenizer", str(out), *map(str, result["ids"]))
    assert decoded.returncode == 0 and decoded.stdout == "lowest newer\n"


def test_errors_are_one_clear_line(tmp_path):
    missing = run("encode", "--tokenizer", str(tmp_path / "none.json"), "x")
    assert missing.returncode == 1 and "tokenizer file not found" in missing.stderr
    data = tmp_path / "corpus.txt"
    data.write_text("abc", encoding="utf-8")
    small = run("train", "--data", str(data), "--vocab-size", "100", "--out", str(tmp_path / "t"))
    assert small.returncode == 1 and "vocab_size=100 is too small" in small.stderr
