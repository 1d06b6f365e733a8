"""The byte-level BPE encoder: exact against tiktoken, lossless, and fast on long input."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizer_strategies import FRAGMENTS, text

import tokenizers.bpe as bpe_module
from tokenizers import BPETokenizer, DisallowedSpecialTokenError, Tokenizer, TokenizerFileError
from tokenizers.bpe import merge_by_rank, merge_by_rank_heap
from tokenizers.bpe_files import bytes_to_unicode

WITH_FIXTURES = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
"""Hypothesis settings for tests that also take (session-scoped, read-only) fixtures."""

VARIED_TEXTS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading and trailing spaces   ",
    "line one\nline two\r\nline three\n\n\n",
    "tabs\tand\t\ttabs",
    "numbers 1 12 123 1234 12345 3.14159 1,000,000 007",
    "contractions: don't, I'M, you'll, they've, we'd, it's, 'S 'LL",
    "CamelCaseIdentifiers and snake_case_names and SCREAMING_CASE",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
    "naïve café résumé Ångström e\u0301 a\u0308\u0301",
    "中文文本，日本語のテキスト、한국어 텍스트",
    "Русский текст, ελληνικά, עברית, العربية, हिन्दी",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇺🇳🇫🇷",
    "zero\u200bwidth\u200djoiner\ufeffbom\u00a0nbsp\u3000ideographic",
    "symbols ©®™ ±×÷ ∑∫√ €£¥ →⇒ ♠♣",
    "https://example.com/a/b?c=d&e=f#g",
    "end of line.\n/usr/bin/env;\r\n/path//\n\n/",
    '<html><body class="x">text</body></html>',
    "a" * 3000,
    " " * 500 + "x",
    "\n" * 300,
    "ab" * 1000,
    "🙂" * 400,
    "1" * 1000,
]


@pytest.mark.parametrize("name", ["cl100k", "o200k"])
def test_same_ids_as_tiktoken_on_varied_texts(name, request):
    ours, theirs = request.getfixturevalue(name)
    for sample in VARIED_TEXTS:
        assert ours.encode(sample) == theirs.encode(sample), sample[:40]


@pytest.mark.parametrize("name", ["cl100k", "o200k"])
def test_same_ids_as_tiktoken_on_python_docs(name, request, docs_text):
    ours, theirs = request.getfixturevalue(name)
    sample = docs_text[:150_000]
    assert ours.encode_ordinary(sample) == theirs.encode_ordinary(sample)


@pytest.mark.parametrize("name", ["cl100k", "o200k"])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sample=text)
def test_same_ids_as_tiktoken_on_generated_text(name, request, sample):
    ours, theirs = request.getfixturevalue(name)
    assert ours.encode_ordinary(sample) == theirs.encode_ordinary(sample)


def test_special_tokens_behave_as_in_tiktoken(cl100k):
    ours, theirs = cl100k
    sample = "Hello<|endoftext|>world<|fim_prefix|>!"
    with pytest.raises(DisallowedSpecialTokenError, match=r"<\|endoftext\|>"):
        ours.encode(sample)
    with pytest.raises(ValueError):
        theirs.encode(sample)
    assert ours.encode(sample, allowed_special="all") == theirs.encode(
        sample, allowed_special="all"
    )
    assert ours.encode(sample, allowed_special={"<|endoftext|>"}, disallowed_special=()) == (
        theirs.encode(sample, allowed_special={"<|endoftext|>"}, disallowed_special=())
    )
    assert ours.encode(sample, disallowed_special=()) == theirs.encode(
        sample, disallowed_special=()
    )
    assert ours.special_tokens["<|endoftext|>"] == theirs.eot_token == 100257
    assert ours.vocab_size == theirs.n_vocab


def test_lone_surrogates_become_replacement_characters_as_in_tiktoken(cl100k):
    """Unpaired surrogates cannot be UTF-8 encoded; like tiktoken we replace them by U+FFFD."""
    ours, theirs = cl100k
    sample = "a\ud800b \udfff end"
    assert ours.encode(sample) == theirs.encode(sample)
    assert ours.encode(sample) == ours.encode("a\ufffdb \ufffd end")
    assert ours.decode(ours.encode(sample)) == "a\ufffdb \ufffd end"


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sample=text)
def test_round_trip_cl100k(cl100k, sample):
    ours, _ = cl100k
    # generated text can spell "<|endoftext|>", which encode() rightly refuses: as ordinary
    # text it must still round-trip
    assert ours.decode(ours.encode_ordinary(sample)) == sample
    assert ours.decode(ours.encode(sample, disallowed_special=())) == sample


@pytest.mark.parametrize("pattern", ["gpt2", "gpt4", "gpt4o", None])
def test_round_trip_trained_tokenizer_every_pattern(docs_text, pattern):
    tokenizer = BPETokenizer().train(docs_text[:20_000], 400, pattern=pattern)

    @settings(max_examples=60, deadline=None)
    @given(sample=text)
    def check(sample):
        ids = tokenizer.encode(sample)
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        assert tokenizer.decode(ids) == sample

    check()


def test_decode_replaces_invalid_utf8_and_decode_bytes_is_lossless(small_bpe):
    assert small_bpe.decode_bytes(small_bpe.encode("é")) == "é".encode()
    partial = [0xC3]  # a trained tokenizer's ids 0..255 are the bytes: this is half of "é"
    assert small_bpe.decode_bytes(partial) == b"\xc3"
    assert small_bpe.decode(partial) == "\ufffd"
    assert small_bpe.decode(small_bpe.encode("x") + partial) == "x\ufffd"


def test_decode_rejects_ids_outside_the_vocabulary(small_bpe):
    with pytest.raises(ValueError, match=r"token id 1000 at position 1 is outside"):
        small_bpe.decode([65, 1000])
    with pytest.raises(ValueError, match=r"token id -1 at position 0"):
        small_bpe.decode_bytes([-1])


def test_decode_rejects_ids_in_a_gap_of_the_vocabulary(cl100k):
    ours, _ = cl100k
    assert 100256 not in ours.mergeable_ranks.values()
    with pytest.raises(ValueError, match="token id 100256 at position 0 is not in the vocabulary"):
        ours.decode([100256])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(lambda s: "".join(s).encode()))
def test_heap_merge_equals_list_merge(cl100k, data):
    ranks = cl100k[0]._ranks
    assert merge_by_rank_heap(data, ranks) == merge_by_rank(data, ranks)


@settings(max_examples=200, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"b", b"\x00", b"\xff"]), max_size=80).map(b"".join))
def test_heap_merge_equals_list_merge_with_many_ties(data):
    """Runs like "aaa" make equal-rank pairs overlap: only leftmost-first gives "aa" + "a"."""
    ranks = {bytes([b]): b for b in range(256)}
    for k, token in enumerate([b"ab", b"ba", b"aa", b"aab", b"bab", b"aaaa", b"\x00\x00"]):
        ranks[token] = 256 + k
    assert merge_by_rank(b"aaa", ranks) == [b"aa", b"a"]
    assert merge_by_rank_heap(data, ranks) == merge_by_rank(data, ranks)


def test_a_million_repeated_characters_encode_like_tiktoken(cl100k):
    ours, theirs = cl100k
    sample = "a" * 1_000_000
    assert ours.encode(sample) == theirs.encode(sample)


class CountingRanks(dict):
    """A rank table that counts its look-ups: the work a merge does, without a clock."""

    lookups = 0

    def get(self, key, default=None):
        self.lookups += 1
        return super().get(key, default)


@pytest.mark.parametrize("n", [2_000, 20_000])
def test_heap_merge_looks_up_each_new_candidate_once(cl100k, n):
    """n - 1 first pairs, then at most two new candidates per merge: about 3n look-ups and
    as many heap operations, O(n log n) in all, counted rather than timed."""
    ranks = CountingRanks(cl100k[0].mergeable_ranks)
    merge_by_rank_heap(b"a" * n, ranks)
    assert ranks.lookups <= 3 * n


def test_long_pieces_take_the_heap_merge(cl100k, monkeypatch):
    """The list merge rescans every pair after each merge (n^2 on one long pre-token)."""
    ours, theirs = cl100k
    ours = BPETokenizer.from_ranks(ours.mergeable_ranks, pattern="gpt4")

    def list_merge_for_short_pieces_only(data, ranks):
        assert len(data) <= bpe_module.LONG_PIECE, f"a {len(data)}-byte piece took the list merge"
        return merge_by_rank(data, ranks)

    monkeypatch.setattr(bpe_module, "merge_by_rank", list_merge_for_short_pieces_only)
    sample = "b" * 5_000 + " short words"
    assert ours.encode(sample) == theirs.encode(sample)


def test_the_cache_stays_bounded_and_does_not_change_results(monkeypatch, docs_text):
    fresh = BPETokenizer().train(docs_text[:20_000], 400)
    expected = fresh.encode(docs_text[:30_000])
    monkeypatch.setattr(bpe_module, "CACHE_SIZE", 64)
    bounded = BPETokenizer().train(docs_text[:20_000], 400)
    assert bounded.encode(docs_text[:30_000]) == expected
    assert len(bounded._cache) <= 64
    assert bounded.encode(docs_text[:30_000]) == expected


def test_merge_steps_and_token_boundaries(small_bpe):
    steps = small_bpe.merge_steps(" the")
    assert steps[0] == [b" ", b"t", b"h", b"e"]
    assert all(len(later) == len(earlier) - 1 for earlier, later in zip(steps, steps[1:]))
    assert steps[-1] == small_bpe.tokenize(" the")
    shown = small_bpe.show_tokens("Hello the world")
    assert shown.replace("|", "") == "Hello the world"
    assert shown.count("|") == len(small_bpe.encode("Hello the world")) - 1


def test_show_merges_lists_learned_pairs(small_bpe):
    lines = small_bpe.show_merges(limit=3).splitlines()
    assert len(lines) == 3
    a, b = small_bpe.merges[0]
    assert lines[0] == f"256: {bytes([a])!r} + {bytes([b])!r} -> {bytes([a, b])!r}"


def test_merges_recovered_from_tiktoken_ranks_rebuild_each_token(cl100k):
    ours, _ = cl100k
    ranks = ours.mergeable_ranks
    by_id = {rank: token for token, rank in ranks.items()}
    merges = ours.merges
    assert len(merges) == len(ranks) - 256
    multi_byte = sorted(rank for token, rank in ranks.items() if len(token) > 1)
    for rank, (a, b) in list(zip(multi_byte, merges))[:2000]:
        assert by_id[a] + by_id[b] == by_id[rank]
        assert a < rank and b < rank


# ---- loading and saving --------------------------------------------------------------


def write_rank_file(path, ranks, compress):
    lines = b"".join(base64.b64encode(t) + b" " + str(r).encode() + b"\n" for t, r in ranks.items())
    path.write_bytes(gzip.compress(lines) if compress else lines)


@pytest.mark.parametrize("compress", [True, False])
def test_from_tiktoken_reads_plain_and_gzip_rank_files(tmp_path, small_bpe, compress):
    path = tmp_path / "mine.tiktoken"
    write_rank_file(path, small_bpe.mergeable_ranks, compress)
    loaded = BPETokenizer.from_tiktoken(path, pattern="gpt4")
    sample = "Loading a rank file: the same ids."
    assert loaded.encode(sample) == small_bpe.encode(sample)


def test_from_tiktoken_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tiktoken"):
        BPETokenizer.from_tiktoken(tmp_path / "missing.tiktoken", pattern="gpt4")
    with pytest.raises(ValueError, match="cannot tell the split pattern of mine.tiktoken"):
        BPETokenizer.from_tiktoken(tmp_path / "mine.tiktoken")
    bad = tmp_path / "bad.tiktoken"
    bad.write_bytes(b"IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(TokenizerFileError, match="line 2"):
        BPETokenizer.from_tiktoken(bad, pattern="gpt4")
    short = tmp_path / "short.tiktoken"
    write_rank_file(short, {bytes([b]): b for b in range(200)}, compress=False)
    with pytest.raises(TokenizerFileError, match="needs all 256 single bytes"):
        BPETokenizer.from_tiktoken(short, pattern="gpt4")


def test_gpt2_files_round_trip(tmp_path, small_bpe):
    vocab_json, merges_txt = tmp_path / "vocab.json", tmp_path / "merges.txt"
    small_bpe.save_gpt2(vocab_json, merges_txt)
    encoder = json.loads(vocab_json.read_text(encoding="utf-8"))
    assert encoder["Ġ"] == ord(" ")  # GPT-2 writes the space byte as U+0120
    loaded = BPETokenizer.from_gpt2(vocab_json, merges_txt, pattern="gpt4")
    sample = "The same merges give the same ids.\n  Indented line"
    assert loaded.encode(sample) == small_bpe.encode(sample)


def test_from_gpt2_hand_made_files(tmp_path):
    """GPT-2 numbers the 256 byte characters in bytes_to_unicode order, then the merges."""
    chars = list(bytes_to_unicode().values())
    encoder = {c: i for i, c in enumerate(chars)}
    encoder.update({"Ġt": 256, "he": 257, "Ġthe": 258, "<|endoftext|>": 259})
    (tmp_path / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\nĠ t\nh e\nĠt he\n", encoding="utf-8")
    tokenizer = BPETokenizer.from_gpt2(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    byte_id = {b: encoder[c] for b, c in bytes_to_unicode().items()}
    assert tokenizer.encode(" the") == [258]
    assert tokenizer.encode("he the") == [257, 258]
    assert tokenizer.encode(" t!") == [256, byte_id[ord("!")]]
    assert tokenizer.special_tokens == {"<|endoftext|>": 259}
    assert tokenizer.encode("<|endoftext|>", allowed_special="all") == [259]


def test_save_and_load_round_trip(tmp_path, docs_text):
    trained = BPETokenizer().train(docs_text[:20_000], 420, special_tokens=["<|endoftext|>"])
    path = tmp_path / "bpe.json"
    trained.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "BPETokenizer" and len(data["merges"]) == 420 - 256 - 1
    for loaded in (BPETokenizer.load(path), Tokenizer.load(path)):
        assert isinstance(loaded, BPETokenizer)
        assert loaded.merges == trained.merges
        assert loaded.special_tokens == {"<|endoftext|>": 419}
        assert loaded.pattern == trained.pattern
        sample = docs_text[20_000:25_000] + "<|endoftext|>"
        assert loaded.encode(sample, allowed_special="all") == trained.encode(
            sample, allowed_special="all"
        )


def test_save_and_load_a_loaded_vocabulary(tmp_path, small_bpe):
    by_ranks = BPETokenizer.from_ranks(small_bpe.mergeable_ranks, "gpt2", {"<|x|>": 5000})
    path = tmp_path / "ranks.json"
    by_ranks.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.mergeable_ranks == small_bpe.mergeable_ranks
    assert loaded.vocab_size == 5001
    assert loaded.encode("it's <|x|>", allowed_special="all") == by_ranks.encode(
        "it's <|x|>", allowed_special="all"
    )
