"""The shared interface: special tokens as tiktoken treats them, and safe JSON files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad
import tokenizers.base as base
from tokenizers import (
    BPETokenizer,
    CharTokenizer,
    DisallowedSpecialTokenError,
    Tokenizer,
    TokenizerFileError,
    WordTokenizer,
)


@pytest.fixture
def char_with_specials() -> CharTokenizer:
    return CharTokenizer().train("abc <>|", special_tokens=["<|a|>", "<|ab|>"])


def test_special_token_text_is_an_error_by_default_naming_the_token(char_with_specials):
    with pytest.raises(DisallowedSpecialTokenError, match=r"'<\|ab\|>' at index 2"):
        char_with_specials.encode("ab<|ab|>c")


def test_allowed_special_tokens_become_their_ids(char_with_specials):
    ids = char_with_specials.encode("a<|ab|>b<|a|>", allowed_special="all")
    specials = char_with_specials.special_tokens
    assert ids == [
        char_with_specials.encode("a")[0],
        specials["<|ab|>"],
        char_with_specials.encode("b")[0],
        specials["<|a|>"],
    ]


def test_only_the_allowed_ones_are_let_through(char_with_specials):
    with pytest.raises(DisallowedSpecialTokenError, match=r"<\|a\|>"):
        char_with_specials.encode("<|ab|><|a|>", allowed_special={"<|ab|>"})
    ids = char_with_specials.encode(
        "<|ab|><|a|>", allowed_special={"<|ab|>"}, disallowed_special=()
    )
    assert ids[0] == char_with_specials.special_tokens["<|ab|>"]
    assert len(ids) == 1 + len("<|a|>")


def test_disallowed_special_empty_encodes_special_text_as_ordinary_text(char_with_specials):
    assert char_with_specials.encode("<|a|>", disallowed_special=()) == (
        char_with_specials.encode_ordinary("<|a|>")
    )
    assert len(char_with_specials.encode_ordinary("<|a|>")) == 5


@pytest.mark.parametrize(
    "names", [["<|end|>", "<|end|>2"], ["<|end|>2", "<|end|>"]], ids=["short first", "long first"]
)
def test_a_special_token_that_extends_another_is_matched_whole(names):
    """Where one special token is a prefix of another, the longest one found wins."""
    tokenizer = CharTokenizer().train("ab2", special_tokens=names)
    short, long = tokenizer.special_tokens["<|end|>"], tokenizer.special_tokens["<|end|>2"]
    a, b, two = tokenizer.encode("ab2")
    assert tokenizer.encode("a<|end|>2b<|end|>a", allowed_special="all") == [a, long, b, short, a]
    with pytest.raises(DisallowedSpecialTokenError, match=r"'<\|end\|>2' at index 1"):
        tokenizer.encode("a<|end|>2", allowed_special={"<|end|>"})


@pytest.mark.parametrize(
    "names", [["<|end|>", "<|end|>2"], ["<|end|>2", "<|end|>"]], ids=["short first", "long first"]
)
def test_bpe_training_cuts_out_the_longest_special_token(names):
    """ "2" after "<|end|>" belongs to the special token, so it never reaches the counts."""
    counts = BPETokenizer().count_words("x<|end|>2y<|end|>z", special_tokens=names)
    assert counts == {b"x": 1, b"y": 1, b"z": 1}


def test_allowed_special_must_name_registered_tokens(char_with_specials):
    with pytest.raises(ValueError, match="unregistered special tokens"):
        char_with_specials.encode("x", allowed_special={"<|nope|>"})


def test_special_ids_decode_to_their_names(char_with_specials):
    ids = char_with_specials.encode("a<|a|>", allowed_special="all")
    assert char_with_specials.decode(ids) == "a<|a|>"


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "tok.json"
    CharTokenizer().train("old").save(path)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(base.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        CharTokenizer().train("something new").save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["tok.json"]  # no temporary file left behind


# ---- the project's one rule for writing files, shared with minigrad's weights -------------


def save_tokenizer(path, version=1):
    CharTokenizer().train(f"version {version} of a tokenizer").save(path)


def save_weights(path, version=1):
    minigrad.save({"w": np.full(3, version, dtype=np.float32)}, path)


WRITERS = {"tokenizer": save_tokenizer, "weights": save_weights}


@pytest.fixture
def umask():
    """Set the process's umask for one test (it is process-wide), then restore it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002], ids=oct)
def test_tokenizer_and_weight_files_get_the_same_mode(tmp_path, umask, mask):
    umask(mask)
    save_tokenizer(tmp_path / "tok.json")
    save_weights(tmp_path / "w.safetensors")
    modes = {name: stat.S_IMODE(os.stat(tmp_path / name).st_mode) for name in os.listdir(tmp_path)}
    assert modes == {"tok.json": 0o666 & ~mask, "w.safetensors": 0o666 & ~mask}


@pytest.mark.parametrize("kind", WRITERS)
def test_a_replaced_file_keeps_its_mode(tmp_path, umask, kind):
    umask(0o022)
    path = tmp_path / "file"
    WRITERS[kind](path)
    os.chmod(path, 0o640)
    WRITERS[kind](path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize("failing", ["replace", "fsync"])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_crash_mid_write_leaves_the_old_file(tmp_path, monkeypatch, kind, failing, error):
    """The rename fails, or the process stops while the data is being flushed to disk."""
    path = tmp_path / "file"
    WRITERS[kind](path, version=1)
    before = path.read_bytes()

    def crash(*args):
        raise error

    with monkeypatch.context() as patched:
        patched.setattr(os, failing, crash)
        with pytest.raises(type(error)):
            WRITERS[kind](path, version=2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["file"]  # no temporary file left behind
    WRITERS[kind](path, version=2)
    assert path.read_bytes() != before  # without the crash, version 2 replaces it


def test_missing_parent_directories_are_created(tmp_path):
    save_tokenizer(tmp_path / "new" / "dirs" / "tok.json")
    assert Tokenizer.load(tmp_path / "new" / "dirs" / "tok.json").vocab_size > 1


def test_a_path_that_cannot_be_a_file_is_named(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"{tmp_path} is a directory; give a file name"):
        save_tokenizer(tmp_path)
    (tmp_path / "plain").write_text("not a directory", encoding="utf-8")
    with pytest.raises(NotADirectoryError, match="plain is a file, not a directory"):
        save_tokenizer(tmp_path / "plain" / "tok.json")
    assert os.listdir(tmp_path) == ["plain"]


def test_the_package_stands_alone():
    """tokenizers keeps its own writer so that it never imports minigrad (or numpy)."""
    code = "import sys, tokenizers; print(sorted({'minigrad', 'numpy'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True, text=True
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_saved_file_is_plain_json(tmp_path):
    path = tmp_path / "tok.json"
    WordTokenizer().train("plain json, no pickle").save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "WordTokenizer" and data["format_version"] == 1
    assert data["words"][:2] == [",", "json"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer file not found: .*nope.json"):
        Tokenizer.load(tmp_path / "nope.json")


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not a valid JSON tokenizer file"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"format_version": 1}', "missing field 'type'"),
        ('{"type": "Nope", "format_version": 1}', "unknown tokenizer type 'Nope'"),
        ('{"type": "BPETokenizer", "format_version": 99}', "format_version 99 is not supported"),
        (
            '{"type": "BPETokenizer", "format_version": 1, "pattern": "gpt4", "merges": [[1]],'
            ' "special_tokens": {}}',
            "merge 0 should be two ids of earlier tokens",
        ),
        (
            '{"type": "BPETokenizer", "format_version": 1, "pattern": "gpt4",'
            ' "merges": [[1, 999]], "special_tokens": {}}',
            "merge 0 should be two ids of earlier tokens",
        ),
        (
            '{"type": "BPETokenizer", "format_version": 1, "pattern": "gpt4",'
            ' "ranks": [["!!", 0]], "special_tokens": {}}',
            "ranks entry 0 should be",
        ),
        (
            '{"type": "BPETokenizer", "format_version": 1, "pattern": "gpt4",'
            ' "ranks": [["YQ==", 0], ["Yg==", 0]], "special_tokens": {}}',
            "ranks entry 1 should be",
        ),
        (
            '{"type": "CharTokenizer", "format_version": 1, "chars": "abc",'
            ' "unk_token": "<unk>", "special_tokens": {}}',
            "field 'chars' should be list, found str",
        ),
        (
            '{"type": "CharTokenizer", "format_version": 1, "chars": ["ab"],'
            ' "unk_token": "<unk>", "special_tokens": {}}',
            "not a single character",
        ),
        (
            '{"type": "WordTokenizer", "format_version": 1, "words": ["a"],'
            ' "unk_token": "<unk>", "lowercase": false}',
            "missing field 'special_tokens'",
        ),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=message):
        Tokenizer.load(path)


def test_loading_the_wrong_class_is_an_error(tmp_path):
    path = tmp_path / "char.json"
    CharTokenizer().train("abc").save(path)
    with pytest.raises(TokenizerFileError, match="holds a CharTokenizer, not a BPETokenizer"):
        BPETokenizer.load(path)


def test_two_special_tokens_cannot_share_an_id():
    tokenizer = CharTokenizer().train("abc", special_tokens=["<a>"])
    with pytest.raises(ValueError, match="'<a>' and '<b>' both want id 4"):
        tokenizer.register_special_tokens({"<b>": 4})


def test_bpe_pieces_show_partial_characters_as_escapes():
    tokenizer = BPETokenizer()  # no merges: one token per byte
    pieces = [tokenizer.id_to_token(i) for i in tokenizer.encode("a😀")]
    assert pieces == ["a", "\\xf0", "\\x9f", "\\x98", "\\x80"]
