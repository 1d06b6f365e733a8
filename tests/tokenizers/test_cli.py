"""``python -m tokenizers``: train, encode, decode; bad input fails fast, on one line.

Each probe runs the command as a user would, in a subprocess. A failure must exit non-zero
with one line on standard error naming the problem, no traceback, and nothing trained:
no merge printed by ``--verbose`` and no tokenizer file written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tokenizers", *args],
        cwd=REPO, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("low lower lowest newer wider\n" * 50, encoding="utf-8")
    return path


def test_train_encode_decode(tmp_path, data):
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


def assert_fails_plainly(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert result.stdout == ""


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


TRAIN_PROBES = {
    "binary data": (lambda d: ["--data", str(write(d / "a.out", b"\x7fELF\x02\x00\xd0"))],
                    ["a.out", "binary"]),
    "not UTF-8": (lambda d: ["--data", str(write(d / "latin1.txt", "café".encode("latin-1")))],
                  ["latin1.txt", "not UTF-8", "byte 3"]),
    "empty data": (lambda d: ["--data", str(write(d / "empty.txt", b""))], ["empty.txt", "empty"]),
    "blank data": (lambda d: ["--data", str(write(d / "blank.txt", b" \n\n"))],
                   ["blank.txt", "empty"]),
    "missing data": (lambda d: ["--data", str(d / "nope.txt")], ["nope.txt", "no such file"]),
    "data is a directory": (lambda d: ["--data", str(d)], ["scratch", "not a file"]),
    "out is a directory": (lambda d: ["--out", str(d)], ["scratch", "is a directory"]),
    "out under a file": (lambda d: ["--out", str(write(d / "f", b"x") / "tok.json")],
                         ["is a file, not a directory"]),
    "vocab size too small": (lambda d: ["--vocab-size", "255"], ["vocab_size=255", "256"]),
    "vocab size zero": (lambda d: ["--vocab-size", "0"], ["--vocab-size", "at least 1"]),
    "vocab size not a number": (lambda d: ["--vocab-size", "4k"], ["--vocab-size", "'4k'"]),
    "unknown kind": (lambda d: ["--kind", "unigram"], ["--kind", "'unigram'"]),
    "bad pattern": (lambda d: ["--pattern", "gpt5("], ["gpt5(", "nor a valid regex"]),
    "pattern for char": (lambda d: ["--kind", "char", "--pattern", "gpt2"],
                         ["--pattern", "bpe only"]),
    "min-freq for bpe": (lambda d: ["--min-freq", "2"], ["--min-freq", "not bpe"]),
    "empty special token": (lambda d: ["--special-token", ""], ["special token", "non-empty"]),
}  # fmt: skip
"""Each probe's arguments (given a scratch directory), overriding a valid command, and the
words its error must contain."""


@pytest.mark.parametrize("probe", TRAIN_PROBES)
def test_bad_train_arguments_fail_at_once_on_one_line(tmp_path, probe):
    make_args, words = TRAIN_PROBES[probe]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    valid = {"--vocab-size": "300", "--out": str(tmp_path / "tok.json")}
    args = make_args(scratch)
    for flag, value in valid.items():
        if flag not in args:
            args += [flag, value]
    if "--kind" not in args:
        args.append("--verbose")  # so that any merge learned before failing would show
    assert_fails_plainly(run("train", *args), *words)
    assert not (tmp_path / "tok.json").exists()


def test_bad_encode_and_decode_arguments(tmp_path, data):
    tok = tmp_path / "tok.json"
    assert (
        run("train", "--data", str(data), "--vocab-size", "260", "--out", str(tok)).returncode == 0
    )
    assert_fails_plainly(run("encode", "--tokenizer", str(tmp_path), "x"), "is a directory")
    assert_fails_plainly(run("encode", "--tokenizer", str(data), "x"), "not a valid JSON")
    assert_fails_plainly(run("decode", "--tokenizer", str(tok), "1", "x2"), "'x2' is not an id")
    assert_fails_plainly(run("decode", "--tokenizer", str(tok), "260"), "token id 260")


def test_an_unreachable_vocab_size_warns_with_the_size_reached(tmp_path, data):
    out = tmp_path / "tok.json"
    result = run("train", "--data", str(data), "--vocab-size", "10000000", "--out", str(out))
    reached = Tokenizer.load(out).vocab_size
    assert result.returncode == 0 and reached < 300
    assert result.stderr.splitlines() == [
        f"warning: the data ran out at vocab_size={reached}, short of --vocab-size 10000000: "
        "no pair of tokens is left to merge"
    ]


def test_missing_output_directories_are_created(tmp_path, data):
    out = tmp_path / "new" / "dir" / "tok.json"
    result = run(
        "train", "--data", str(data), "--kind", "char", "--vocab-size", "5", "--out", str(out)
    )
    assert result.returncode == 0 and result.stderr == ""
    assert Tokenizer.load(out).vocab_size == 5


def test_a_reader_that_stops_early_ends_quietly_and_the_file_is_saved(tmp_path):
    """``train --verbose | head -1``: after the first line nobody reads; the merges that
    follow (several pipe buffers of them) are dropped, training finishes and saves."""
    out = tmp_path / "tok.json"
    command = [sys.executable, "-m", "tokenizers", "train", "--vocab-size", "3000", "--verbose"]
    process = subprocess.Popen(
        [*command, "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = process.stdout.readline()
    process.stdout.close()  # what head does after its line
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0, stderr
    assert first.startswith("merge 1: ") and stderr == ""
    assert Tokenizer.load(out).vocab_size == 3000


def test_pieces_are_shown_as_a_person_reads_them(tmp_path, data):
    tok = tmp_path / "bytes.json"
    assert (
        run("train", "--data", str(data), "--vocab-size", "256", "--out", str(tok)).returncode == 0
    )
    result = run("encode", "--tokenizer", str(tok), stdin="é a\n")
    ids, pieces = result.stdout.splitlines()
    assert ids == "195 169 32 97 10"
    assert pieces == r"'\xc3' '\xa9' ' ' 'a' '\n'"  # one backslash each, as typed


def test_help_explains_every_flag_and_shows_the_defaults():
    result = run("train", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag in ["--data", "--vocab-size", "--out", "--kind", "--pattern", "--special-token",
                 "--min-freq", "--verbose"]:  # fmt: skip
        assert text.count(flag) >= 2, flag  # in the usage line and explained below it
    for default in ["(default: bpe)", "(default: gpt4)", "(default: 1)", "reference documentation"]:
        assert default in text
