"""Tokenizers: text to ids and back.

- ``CharTokenizer``: one id per character.
- ``WordTokenizer``: one id per word or punctuation mark.
- ``BPETokenizer``: byte-level byte-pair encoding (GPT-2, GPT-4, GPT-4o), with a trainer.
- ``WordPieceTokenizer``: BERT's normalization and greedy longest-match-first subwords.

All share ``encode``, ``decode``, ``vocab_size``, special tokens and JSON ``save``/``load``
(``Tokenizer.load(path)`` returns whichever kind the file holds).
"""

from .base import DisallowedSpecialTokenError, Tokenizer, TokenizerFileError
from .bpe import BPETokenizer
from .char import CharTokenizer
from .corpus import default_corpus
from .patterns import GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN, PATTERNS
from .word import WordTokenizer
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
]
