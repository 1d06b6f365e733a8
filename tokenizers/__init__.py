"""Tokenizers: text to ids and back.

- ``CharTokenizer``: one id per character.
- ``WordTokenizer``: one id per word or punctuation mark.
- ``BPETokenizer``: byte-level byte-pair encoding (GPT-2, GPT-4, GPT-4o), with a trainer.
- ``WordPieceTokenizer``: BERT's normalization and greedy longest-match-first subwords.

All share ``train(text, vocab_size)``, ``encode``, ``decode``, ``vocab_size``, special tokens
and JSON ``save``/``load`` (``Tokenizer.load(path)`` returns whichever kind the file holds).
``default_corpus()`` is the text the command line and the course train on by default;
``read_text_file(path)`` reads a training file, naming it if it is missing, binary or empty.

The modules, one idea each: ``base`` (the shared interface, files, the default corpus),
``simple`` (characters and words), ``patterns`` (pre-tokenizing regexes and the fast
splitter), ``bpe`` (the encoder), ``bpe_trainer``, ``bpe_files`` (tiktoken and GPT-2 file
formats), ``wordpiece`` (BERT's normalizer, the tokenizer and its trainer), ``__main__``
(``python -m tokenizers``).
"""

from .base import (
    DisallowedSpecialTokenError,
    Tokenizer,
    TokenizerFileError,
    default_corpus,
    read_text_file,
)
from .bpe import BPETokenizer
from .patterns import GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN, PATTERNS
from .simple import CharTokenizer, WordTokenizer
from .wordpiece import WordPieceEncoding, WordPieceTokenizer

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "DisallowedSpecialTokenError",
    "GPT2_PATTERN",
    "GPT4O_PATTERN",
    "GPT4_PATTERN",
    "PATTERNS",
    "Tokenizer",
    "TokenizerFileError",
    "WordPieceEncoding",
    "WordPieceTokenizer",
    "WordTokenizer",
    "default_corpus",
    "read_text_file",
]
