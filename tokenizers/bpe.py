"""Byte-level byte-pair encoding (BPE), the tokenizer of GPT-2, GPT-4 and GPT-4o.

Text is first cut into pre-tokens by a regex (see ``patterns.py``); each pre-token is turned
into UTF-8 bytes, and adjacent parts are merged while some pair of neighbours concatenates
to a token of the vocabulary. The pair whose concatenation has the lowest rank (the token
learned earliest) merges first, the leftmost one on ties. This is tiktoken's algorithm, so a
tokenizer loaded from tiktoken's rank files gives the same ids as tiktoken, byte for byte.

Because any byte is a token of its own, every string can be encoded: there is no unknown
token. Read top to bottom: ``merge_by_rank`` is the inner loop (with ``merge_by_rank_heap``,
the same result in O(n log n) for very long pre-tokens), then ``BPETokenizer``. Training is
in ``bpe_trainer.py``, the published file formats in ``bpe_files.py``.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, islice
from pathlib import Path
from typing import Any

from .base import (
    Tokenizer,
    TokenizerFileError,
    require,
    special_tokens_pattern,
    unique_special_tokens,
)
from .bpe_files import TIKTOKEN_ENCODINGS, read_gpt2_files, read_tiktoken_ranks, write_gpt2_files
from .bpe_trainer import Pair, train_merges
from .patterns import Splitter, pattern_name, resolve_pattern

LONG_PIECE = 256
"""Pre-tokens of more bytes than this use the heap merge (O(n log n)) instead of the list."""

CACHE_SIZE = 1 << 18
"""Pre-tokens remembered with their ids (the distinct pre-tokens of 12 MB of Python code fit
four times over, in about 40 MB); when full, the older half is forgotten."""

MAX_CACHED_CHARS = 256
"""Longer pre-tokens are rare, so they are not worth a place in the cache."""


def replace_lone_surrogates(text: str) -> str:
    """Replace unpaired surrogates (which UTF-8 cannot encode) by U+FFFD, as tiktoken does.

    Like tiktoken, a surrogate *pair* written as two code points becomes the character it
    stands for.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


NO_MERGE = 1 << 62
"""A rank larger than any real one: 'these two parts do not form a token'."""


def merge_by_rank(data: bytes, ranks: Mapping[bytes, int]) -> list[bytes]:
    """Split ``data`` into tokens: repeatedly merge the adjacent pair of lowest rank.

    Suited to short pre-tokens: each step finds the minimum of the pair ranks (leftmost on
    ties, as ``list.index`` returns the first) and recomputes only the two neighbours.
    """
    get = ranks.get
    parts = [data[i : i + 1] for i in range(len(data))]
    pair_ranks = [get(data[i : i + 2], NO_MERGE) for i in range(len(data) - 1)]
    while pair_ranks:
        best = min(pair_ranks)
        if best == NO_MERGE:
            break
        i = pair_ranks.index(best)
        parts[i] += parts.pop(i + 1)
        del pair_ranks[i]
        if i < len(pair_ranks):
            pair_ranks[i] = get(parts[i] + parts[i + 1], NO_MERGE)
        if i > 0:
            pair_ranks[i - 1] = get(parts[i - 1] + parts[i], NO_MERGE)
    return parts


def merge_by_rank_heap(data: bytes, ranks: Mapping[bytes, int]) -> list[bytes]:
    """The same result as ``merge_by_rank`` in O(n log n), for very long pre-tokens.

    Parts form a linked list (``next_start``/``prev_start``, a part is named by the index of
    its first byte) and candidate merges wait in a heap ordered by (rank, start): lowest rank
    first, leftmost on ties. An entry is stale once either of its parts has changed, which
    shows as a different span; stale entries are skipped when popped.
    """
    n = len(data)
    get = ranks.get
    next_start = list(range(1, n + 1))
    prev_start = list(range(-1, n - 1))
    alive = bytearray(b"\x01") * n
    heap = []
    for i in range(n - 1):
        rank = get(data[i : i + 2])
        if rank is not None:
            heap.append((rank, i, i + 2))
    heapq.heapify(heap)
    while heap:
        _, start, end = heapq.heappop(heap)
        if not alive[start]:
            continue
        right = next_start[start]
        if right >= n or next_start[right] != end:
            continue
        alive[right] = 0
        next_start[start] = end
        if end < n:
            prev_start[end] = start
            rank = get(data[start : next_start[end]])
            if rank is not None:
                heapq.heappush(heap, (rank, start, next_start[end]))
        left = prev_start[start]
        if left >= 0:
            rank = get(data[left:end])
            if rank is not None:
                heapq.heappush(heap, (rank, left, end))
    parts = []
    i = 0
    while i < n:
        parts.append(data[i : next_start[i]])
        i = next_start[i]
    return parts


class RanksBelow(Mapping[bytes, int]):
    """A view of a rank table that hides every token ranked at or after ``limit``."""

    def __init__(self, ranks: Mapping[bytes, int], limit: int) -> None:
        self._ranks, self._limit = ranks, limit

    def get(self, key: bytes, default: Any = None) -> Any:
        rank = self._ranks.get(key)
        return rank if rank is not None and rank < self._limit else default

    def __getitem__(self, key: bytes) -> int:
        rank = self.get(key)
        if rank is None:
            raise KeyError(key)
        return rank

    def __iter__(self) -> Iterator[bytes]:
        return (k for k, r in self._ranks.items() if r < self._limit)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class BPETokenizer(Tokenizer):
    """Byte-level BPE: train merges on a corpus, or load GPT-2/GPT-4/GPT-4o vocabularies.

    Parameters
    ----------
    pattern:
        ``"gpt2"``, ``"gpt4"`` (cl100k_base), ``"gpt4o"`` (o200k_base), a custom regex, or
        ``None`` to encode the raw bytes without pre-tokenization.

    A new tokenizer knows only the 256 single bytes (ids 0..255); ``train`` adds merges.
    """

    def __init__(self, pattern: str | None = "gpt4") -> None:
        super().__init__()
        self._set_pattern(pattern)
        self._set_vocab({i: bytes([i]) for i in range(256)}, merges=[])

    # ---- state ------------------------------------------------------------------------

    def _set_pattern(self, pattern: str | None) -> None:
        self.pattern = resolve_pattern(pattern)
        self._split = Splitter(self.pattern) if self.pattern is not None else None

    def _set_vocab(self, vocab: Mapping[int, bytes], merges: list[Pair] | None) -> None:
        """Install ``{id: token bytes}``; ``merges`` are known for trained tokenizers."""
        ranks: dict[bytes, int] = {}
        for idx in sorted(vocab):  # two ids may spell the same bytes: the first one wins
            ranks.setdefault(vocab[idx], idx)
        missing = [b for b in range(256) if bytes([b]) not in ranks]
        if missing:
            raise ValueError(
                f"a byte-level vocabulary needs all 256 single bytes; missing {len(missing)}, "
                f"e.g. byte {missing[0]}"
            )
        self._vocab: dict[int, bytes] = dict(vocab)
        self._ranks = ranks
        self._merges = merges
        self._cache: dict[str, tuple[int, ...]] = {}
        self._decoder: dict[int, bytes] = dict(self._vocab)
        self._size = max(self._vocab) + 1

    def register_special_tokens(self, tokens: dict[str, int]) -> None:
        for name, idx in tokens.items():
            if idx in self._vocab:
                raise ValueError(
                    f"special token {name!r} would reuse id {idx} of an ordinary token"
                )
        super().register_special_tokens(tokens)
        self._decoder = dict(self._vocab)
        self._decoder.update(
            {idx: name.encode("utf-8") for name, idx in self.special_tokens.items()}
        )
        self._size = max([max(self._vocab), *self.special_tokens.values()]) + 1

    @property
    def vocab_size(self) -> int:
        return self._size

    @property
    def mergeable_ranks(self) -> dict[bytes, int]:
        """``{token bytes: rank}``, the rank doubling as the id (tiktoken's term)."""
        return dict(self._ranks)

    @property
    def merges(self) -> list[Pair]:
        """The merges as ``(left id, right id)`` in the order they were learned.

        For a loaded vocabulary they are recovered: each token's bytes are merged using
        only the tokens ranked before it, which leaves the two parts it was made from.
        """
        if self._merges is None:
            self._merges = self._recover_merges()
        return list(self._merges)

    def _recover_merges(self) -> list[Pair]:
        merges = []
        for token, rank in sorted(self._ranks.items(), key=lambda item: item[1]):
            if len(token) == 1:
                continue
            parts = merge_by_rank(token, RanksBelow(self._ranks, rank))
            if len(parts) != 2:
                raise ValueError(f"token {token!r} (rank {rank}) is not a merge of two tokens")
            merges.append((self._ranks[parts[0]], self._ranks[parts[1]]))
        return merges

    # ---- training ---------------------------------------------------------------------

    def train(
        self,
        text: str,
        vocab_size: int,
        *,
        pattern: str | None = "gpt4",
        special_tokens: Iterable[str] = (),
        verbose: bool = False,
    ) -> BPETokenizer:
        """Learn merges from ``text`` until the vocabulary has ``vocab_size`` ids.

        ``vocab_size`` counts the 256 byte tokens, the merges and the special tokens, which
        take the last ids. Special tokens' text is cut out of the corpus, never learned.
        Training stops early if the corpus has nothing left to merge.
        """
        special_tokens = unique_special_tokens(special_tokens)
        if not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
            specials = (
                f" plus {len(special_tokens)} for the special tokens" if special_tokens else ""
            )
            raise ValueError(
                f"vocab_size={vocab_size!r} is too small: byte-level BPE needs at least "
                f"{256 + len(special_tokens)} ids, 256 for the single bytes{specials}"
            )
        if not isinstance(text, str):
            raise TypeError(f"train expects the corpus as a str, got {type(text).__name__}")
        self._set_pattern(pattern)
        self.special_tokens = {}
        self._special_pattern = None
        word_counts = self.count_words(text, special_tokens)
        vocab = {i: bytes([i]) for i in range(256)}

        def report(pair: Pair, new_id: int, count: int) -> None:
            a, b = vocab[pair[0]], vocab[pair[1]]
            vocab[new_id] = a + b
            print(f"merge {new_id - 255}: {a!r} + {b!r} -> {a + b!r} (id {new_id}, {count}x)")

        num_merges = vocab_size - 256 - len(special_tokens)
        merges = train_merges(word_counts, num_merges, on_merge=report if verbose else None)
        for new_id, (a, b) in enumerate(merges, start=256):
            vocab[new_id] = vocab[a] + vocab[b]
        self._set_vocab(vocab, merges)
        self.add_special_tokens(special_tokens)
        return self

    def count_words(self, text: str, special_tokens: Iterable[str] = ()) -> dict[bytes, int]:
        """Count the distinct pre-tokens of ``text`` (as UTF-8 bytes), skipping special tokens.

        This is all the trainer sees of the corpus: memory grows with the number of
        distinct pre-tokens, not with the length of the text.
        """
        text = replace_lone_surrogates(text)
        names = list(special_tokens)
        chunks = special_tokens_pattern(names).split(text) if names else [text]
        counts: Counter[str] = Counter()
        for chunk in chunks:
            if self._split is None:
                if chunk:
                    counts[chunk] += 1
            else:
                self._split.count(chunk, counts)
        return {word.encode("utf-8"): count for word, count in counts.items()}

    # ---- encoding and decoding -------------------------------------------------------

    def _encode_ordinary(self, text: str) -> list[int]:
        text = replace_lone_surrogates(text)
        if self._split is None:
            return list(self._encode_piece(text)) if text else []
        pieces = self._split(text)
        try:  # usually every pre-token was seen before
            return [*chain.from_iterable(map(self._cache.__getitem__, pieces))]
        except KeyError:
            ids_of = self._encode_pieces(set(pieces))
            return [*chain.from_iterable(map(ids_of.__getitem__, pieces))]

    def _encode_pieces(self, pieces: set[str]) -> dict[str, tuple[int, ...]]:
        """The ids of each distinct pre-token: from the cache, or encoded and then cached."""
        cache = self._cache
        new = list(pieces.difference(cache))
        ids_of = {piece: cache[piece] for piece in pieces.difference(new)}
        # most new pre-tokens are one token: look them all up whole at once, in C
        whole = list(map(self._ranks.get, map(str.encode, new)))
        encoded = dict(zip(new, zip(whole)))  # zip(whole) makes the 1-tuples (rank,)
        for piece, rank in zip(new, whole):
            if rank is None:
                encoded[piece] = self._encode_piece(piece)
        ids_of.update(encoded)
        if max(map(len, new), default=0) > MAX_CACHED_CHARS:
            encoded = {p: ids for p, ids in encoded.items() if len(p) <= MAX_CACHED_CHARS}
        cache.update(encoded)
        if len(cache) > CACHE_SIZE:  # forget the older entries, keep the recent half
            for old in list(islice(cache, len(cache) - CACHE_SIZE // 2)):
                del cache[old]
        return ids_of

    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        """Encode one pre-token: a whole-token lookup first, merging only if that fails."""
        data = piece.encode("utf-8")
        rank = self._ranks.get(data)
        if rank is not None:
            return (rank,)
        merge = merge_by_rank if len(data) <= LONG_PIECE else merge_by_rank_heap
        return tuple(map(self._ranks.__getitem__, merge(data, self._ranks)))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes the ids stand for (lossless, even mid-character)."""
        ids = list(ids)
        try:
            return b"".join([self._decoder[idx] for idx in ids])
        except (KeyError, TypeError):
            ids = self._check_ids(ids)
            for position, idx in enumerate(ids):
                if idx not in self._decoder:
                    raise ValueError(
                        f"token id {idx} at position {position} is not in the vocabulary "
                        f"(this vocabulary has no token with that id)"
                    ) from None
            return b"".join([self._decoder[idx] for idx in ids])

    def decode(self, ids: Iterable[int]) -> str:
        """Decode to text; invalid UTF-8 (e.g. half a character) becomes U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # ---- seeing what happens (for notebooks) -------------------------------------------

    def token_bytes(self, idx: int) -> bytes:
        """The bytes of one token id."""
        return self.decode_bytes([idx])

    def id_to_token(self, idx: int) -> str:
        """One token as text; bytes that are not whole UTF-8 characters show as ``\\xNN``."""
        return self.token_bytes(idx).decode("utf-8", errors="backslashreplace")

    def tokenize(self, text: str, **encode_kwargs: Any) -> list[bytes]:
        """The tokens of ``text`` as byte strings, in order."""
        return [self._decoder[idx] for idx in self.encode(text, **encode_kwargs)]

    def show_tokens(self, text: str, separator: str = "|", **encode_kwargs: Any) -> str:
        """Text with ``separator`` at each token boundary; partial characters show as U+FFFD."""
        pieces = self.tokenize(text, **encode_kwargs)
        return separator.join(p.decode("utf-8", errors="replace") for p in pieces)

    def merge_steps(self, piece: str) -> list[list[bytes]]:
        """Every stage of merging one pre-token, from single bytes to its final tokens."""
        data = replace_lone_surrogates(piece).encode("utf-8")
        parts = [data[i : i + 1] for i in range(len(data))]
        steps = [list(parts)]
        while len(parts) > 1:
            candidates = [
                (self._ranks.get(parts[i] + parts[i + 1], NO_MERGE), i)
                for i in range(len(parts) - 1)
            ]
            rank, i = min(candidates)
            if rank == NO_MERGE:
                break
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
            steps.append(list(parts))
        return steps

    def show_merges(self, limit: int | None = 20, start: int = 0) -> str:
        """The learned merges as lines like ``256: b't' + b'h' -> b'th'``."""
        lines = []
        stop = None if limit is None else start + limit
        for a, b in islice(self.merges, start, stop):
            left, right = self._vocab[a], self._vocab[b]
            new_id = self._ranks[left + right]
            lines.append(f"{new_id}: {left!r} + {right!r} -> {left + right!r}")
        return "\n".join(lines)

    # ---- loading published vocabularies ------------------------------------------------

    @classmethod
    def from_ranks(
        cls,
        mergeable_ranks: Mapping[bytes, int],
        pattern: str | None,
        special_tokens: Mapping[str, int] | None = None,
    ) -> BPETokenizer:
        """Build from ``{token bytes: rank}`` as tiktoken does; the rank is the token id."""
        tokenizer = cls(pattern)
        vocab: dict[int, bytes] = {}
        for token, rank in mergeable_ranks.items():
            if rank in vocab:
                raise ValueError(f"rank {rank} is given to both {vocab[rank]!r} and {token!r}")
            vocab[rank] = bytes(token)
        tokenizer._set_vocab(vocab, merges=None)
        if special_tokens:
            tokenizer.register_special_tokens(dict(special_tokens))
        return tokenizer

    @classmethod
    def from_tiktoken(
        cls,
        path: str | os.PathLike,
        pattern: str | None = "auto",
        special_tokens: Mapping[str, int] | None = None,
    ) -> BPETokenizer:
        """Load a tiktoken rank file: one ``base64(token) rank`` per line, gzip accepted.

        With ``pattern="auto"`` the split pattern (and, unless given, the special tokens) of
        a known encoding is chosen from the file name, e.g. ``cl100k_base.tiktoken.gz``.
        """
        path = Path(path)
        encoding = path.name.split(".")[0]
        if pattern == "auto":
            if encoding not in TIKTOKEN_ENCODINGS:
                raise ValueError(
                    f"cannot tell the split pattern of {path.name}; pass pattern='gpt2', "
                    f"'gpt4', 'gpt4o' or a regex (known files: {sorted(TIKTOKEN_ENCODINGS)})"
                )
            pattern, known_specials = TIKTOKEN_ENCODINGS[encoding]
            if special_tokens is None:
                special_tokens = known_specials
        ranks = read_tiktoken_ranks(path)
        try:
            return cls.from_ranks(ranks, pattern, special_tokens)
        except ValueError as exc:
            raise TokenizerFileError(f"{path}: {exc}") from None

    @classmethod
    def from_gpt2(
        cls,
        vocab_json: str | os.PathLike,
        merges_txt: str | os.PathLike,
        pattern: str | None = "gpt2",
    ) -> BPETokenizer:
        """Load GPT-2's ``encoder.json``/``vocab.json`` and ``vocab.bpe``/``merges.txt``.

        Entries that are neither bytes nor merges (``<|endoftext|>``) become special tokens;
        see ``bpe_files.read_gpt2_files`` for the format.
        """
        vocab, specials = read_gpt2_files(vocab_json, merges_txt)
        tokenizer = cls(pattern)
        try:
            tokenizer._set_vocab(vocab, merges=None)
            tokenizer.register_special_tokens(specials)
        except ValueError as exc:
            raise TokenizerFileError(f"{vocab_json}: {exc}") from None
        return tokenizer

    def save_gpt2(self, vocab_json: str | os.PathLike, merges_txt: str | os.PathLike) -> None:
        """Write the vocabulary and merges in GPT-2's file format (see ``from_gpt2``)."""
        write_gpt2_files(vocab_json, merges_txt, self._vocab, self.merges, self.special_tokens)

    # ---- files ------------------------------------------------------------------------

    def _to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"pattern": self.pattern, "pattern_name": pattern_name(self.pattern)}
        if self._merges is not None and all(self._vocab[i] == bytes([i]) for i in range(256)):
            data["merges"] = [list(pair) for pair in self._merges]
        else:
            data["ranks"] = [
                [base64.b64encode(token).decode("ascii"), idx]
                for idx, token in sorted(self._vocab.items())
            ]
        return data

    @classmethod
    def _from_dict(cls, data: dict[str, Any], where: str) -> BPETokenizer:
        pattern = data.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise TokenizerFileError(f"{where}: field 'pattern' should be a string or null")
        try:
            tokenizer = cls(pattern)
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None
        if "merges" in data:
            merges = require(data, "merges", list, where)
            vocab = {i: bytes([i]) for i in range(256)}
            pairs = []
            for k, pair in enumerate(merges):
                if (
                    not isinstance(pair, list)
                    or len(pair) != 2
                    or not all(isinstance(i, int) and i in vocab for i in pair)
                ):
                    raise TokenizerFileError(
                        f"{where}: merge {k} should be two ids of earlier tokens, got {pair!r}"
                    )
                vocab[256 + k] = vocab[pair[0]] + vocab[pair[1]]
                pairs.append((pair[0], pair[1]))
            tokenizer._set_vocab(vocab, pairs)
            return tokenizer
        entries = require(data, "ranks", list, where)
        vocab = {}
        for k, entry in enumerate(entries):
            try:
                token, idx = entry
                if not isinstance(idx, int) or idx < 0 or idx in vocab:
                    raise ValueError
                vocab[idx] = base64.b64decode(token, validate=True)
            except (TypeError, ValueError, binascii.Error):
                raise TokenizerFileError(
                    f"{where}: ranks entry {k} should be [base64 token, new id >= 0], got {entry!r}"
                ) from None
        try:
            tokenizer._set_vocab(vocab, merges=None)
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None
        return tokenizer
