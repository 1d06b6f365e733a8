"""Reading and writing published BPE vocabularies: tiktoken rank files and GPT-2's files.

- tiktoken: one line per token, ``base64(token bytes) rank``; the rank is also the id.
- GPT-2 (and Hugging Face's GPT-2 style ``vocab.json`` + ``merges.txt``): a JSON map from
  token to id and the merges in order, one ``left right`` pair per line.

GPT-2's files are text, yet its tokens are byte strings that may contain spaces, newlines
or half a UTF-8 character. So each byte is written as one printable Unicode character
(``bytes_to_unicode``): printable Latin-1 bytes stand for themselves and the others
(control bytes, space, ...) are shifted to U+0100 and up. A space becomes "Ġ" (U+0120),
which is why GPT-2 tokens look like "Ġthe".
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from .base import TokenizerFileError, write_json_atomic, write_text_atomic

# ---- GPT-2's byte-to-character map -----------------------------------------------------


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """The map byte value -> character used in GPT-2's vocabulary files."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse map: character in a GPT-2 vocabulary file -> byte value."""
    return {char: b for b, char in bytes_to_unicode().items()}


def token_to_text(token: bytes) -> str:
    """Write a token's bytes the way GPT-2's files do (``b" the"`` -> ``"Ġthe"``)."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def text_to_token(text: str) -> bytes:
    """Read a token written the GPT-2 way back into bytes; unknown characters are an error."""
    table = unicode_to_bytes()
    try:
        return bytes(table[char] for char in text)
    except KeyError as exc:
        raise ValueError(
            f"{text!r} is not a GPT-2 byte-encoded token: {exc.args[0]!r} "
            f"is not one of the 256 byte characters"
        ) from None


# ---- tiktoken rank files ----------------------------------------------------------------

TIKTOKEN_ENCODINGS: dict[str, tuple[str, dict[str, int]]] = {
    "cl100k_base": (
        "gpt4",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": ("gpt4o", {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
    "r50k_base": ("gpt2", {"<|endoftext|>": 50256}),
    "p50k_base": ("gpt2", {"<|endoftext|>": 50256}),
}
"""Split pattern and special tokens of tiktoken's encodings, recognised by file name."""


def read_tiktoken_ranks(path: str | os.PathLike) -> dict[bytes, int]:
    """``{token bytes: rank}`` from a tiktoken rank file (plain or gzip-compressed)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tiktoken rank file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # the gzip magic number
        raw = gzip.decompress(raw)
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError
            ranks[base64.b64decode(fields[0], validate=True)] = int(fields[1])
        except (ValueError, binascii.Error):
            raise TokenizerFileError(
                f"{path}, line {number}: expected 'base64-token rank', got {line[:60]!r}"
            ) from None
    return ranks


# ---- GPT-2's vocab.json and merges.txt ---------------------------------------------------


def read_gpt2_files(
    vocab_json: str | os.PathLike, merges_txt: str | os.PathLike
) -> tuple[dict[int, bytes], dict[str, int]]:
    """``({id: token bytes}, {special token: id})`` from GPT-2's two files (see
    ``gpt2_vocabulary``)."""
    for p in (vocab_json, merges_txt):
        if not Path(p).exists():
            raise FileNotFoundError(f"GPT-2 tokenizer file not found: {p}")
    try:
        encoder = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerFileError(f"{vocab_json} is not valid JSON: {exc}") from None
    merges = []
    lines = Path(merges_txt).read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#version"):
            continue
        fields = line.split(" ")
        if len(fields) != 2:
            raise TokenizerFileError(f"{merges_txt}, line {number}: expected two tokens: {line!r}")
        merges.append(fields)
    return gpt2_vocabulary(encoder, merges, str(vocab_json), str(merges_txt))


def gpt2_vocabulary(
    encoder: Any,
    merges: Sequence[Sequence[str]],
    vocab_source: str = "vocab.json",
    merges_source: str = "merges.txt",
) -> tuple[dict[int, bytes], dict[str, int]]:
    """``({id: token bytes}, {special token: id})`` from GPT-2's token-to-id map and its
    merges, each a pair of byte-encoded token texts (as in merges.txt or tokenizer.json).

    Entries that are neither a single byte nor made by a merge (``<|endoftext|>``) are
    special tokens. Encoding merges by rank, so the ids must follow the order of the merges,
    as they do in GPT-2's files; files where they do not are refused. The sources name the
    files in error messages.
    """
    if not isinstance(encoder, dict):
        raise TokenizerFileError(f"{vocab_source} must map token strings to ids")
    merged_texts = []
    for number, pair in enumerate(merges, start=1):
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(part, str) for part in pair)
        ):
            raise TokenizerFileError(f"{merges_source}: merge {number} is not two tokens: {pair!r}")
        merged_texts.append(pair[0] + pair[1])

    byte_texts = {token_to_text(bytes([b])) for b in range(256)}
    made_by_merges = set(merged_texts)
    vocab: dict[int, bytes] = {}
    specials: dict[str, int] = {}
    for text, idx in encoder.items():
        if not isinstance(idx, int):
            raise TokenizerFileError(f"{vocab_source}: id of {text!r} is not an int: {idx!r}")
        if text in byte_texts or text in made_by_merges:
            vocab[idx] = text_to_token(text)
        else:
            specials[text] = idx
    previous = -1
    for number, text in enumerate(merged_texts, start=1):
        if text not in encoder:
            raise TokenizerFileError(
                f"{merges_source}: merge {number} makes {text!r}, which is not in {vocab_source}"
            )
        if encoder[text] <= previous:
            raise TokenizerFileError(
                f"{vocab_source}: ids do not follow the order of the merges (merge {number}, "
                f"{text!r}); only GPT-2 style files, where they do, can be merged by rank"
            )
        previous = encoder[text]
    return vocab, specials


def write_gpt2_files(
    vocab_json: str | os.PathLike,
    merges_txt: str | os.PathLike,
    vocab: Mapping[int, bytes],
    merges: Sequence[tuple[int, int]],
    special_tokens: Mapping[str, int],
) -> None:
    """Write ``vocab.json`` and ``merges.txt`` the way GPT-2's files are written."""
    encoder = {token_to_text(token): idx for idx, token in sorted(vocab.items())}
    encoder.update(special_tokens)
    write_json_atomic(vocab_json, encoder)
    lines = ["#version: 0.2"]
    lines += [f"{token_to_text(vocab[a])} {token_to_text(vocab[b])}" for a, b in merges]
    write_text_atomic(merges_txt, "\n".join(lines) + "\n")
