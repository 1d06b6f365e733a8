"""The incremental BPE trainer: hand-worked merges, determinism, and agreement with re-scanning."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenizers import BPETokenizer, bpe_trainer
from tokenizers.bpe_trainer import merge_pair, train_merges


def rescan_reference(word_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """Re-count every pair from scratch before each merge; highest count, then smallest pair."""
    words = {bytes(w): list(w) for w in word_counts}
    merges = []
    for new_id in range(256, 256 + num_merges):
        counts: dict[tuple[int, int], int] = {}
        for key, symbols in words.items():
            for i in range(len(symbols) - 1):
                pair = (symbols[i], symbols[i + 1])
                counts[pair] = counts.get(pair, 0) + word_counts[key]
        if not counts:
            break
        top = max(counts.values())
        best = min(pair for pair, n in counts.items() if n == top)
        merges.append(best)
        for key, symbols in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            words[key] = out
    return merges


def test_hand_worked_example():
    """The classic "aaabdaaabac", one word (no pattern), worked out by hand:

    1. pairs aa:4 ab:2 bd:1 da:1 ba:1 ac:1 -> merge (a, a) = 256:  Z a b d Z a b a c
    2. (256, a):2 and (a, b):2 tie; the smaller pair (97, 98) wins -> 257: Z Y d Z Y a c
    3. (256, 257):2 is the only pair seen twice -> 258:                   X d X a c
    4. all pairs seen once: (X,d) (d,X) (X,a) (a,c); smallest is (97, 99) -> 259: X d X W
    5. (258,100) (100,258) (258,259): smallest is (100, 258) -> 260:        X V W
    """
    tokenizer = BPETokenizer().train("aaabdaaabac", 256 + 5, pattern=None)
    a, b, c, d = 97, 98, 99, 100
    assert tokenizer.merges == [(a, a), (a, b), (256, 257), (a, c), (d, 258)]
    assert [tokenizer.token_bytes(i) for i in range(256, 261)] == [
        b"aa",
        b"ab",
        b"aaab",
        b"ac",
        b"daaab",
    ]
    assert tokenizer.encode("aaabdaaabac") == [258, 260, 259]  # aaab daaab ac


def test_verbose_training_prints_each_merge(capsys):
    BPETokenizer().train("aaabdaaabac", 256 + 2, pattern=None, verbose=True)
    assert capsys.readouterr().out.splitlines() == [
        "merge 1: b'a' + b'a' -> b'aa' (id 256, 4x)",
        "merge 2: b'a' + b'b' -> b'ab' (id 257, 2x)",
    ]


def test_word_counts_weight_the_pairs():
    # "ab" occurs 3 times, "bc" twice: (a, b) comes first although "bc" sorts later
    assert train_merges({b"bc": 2, b"ab": 3}, 5) == [(97, 98), (98, 99)]


def test_training_stops_when_nothing_is_left_to_merge():
    tokenizer = BPETokenizer().train("ab ab ab", 1000, pattern="gpt2")
    # pre-tokens "ab" and " ab": merges (a,b) then (' ', ab); then every word is one token
    assert tokenizer.merges == [(97, 98), (32, 256)]
    assert tokenizer.vocab_size == 258


def test_merge_pair_does_not_overlap():
    assert merge_pair([7, 7, 7], (7, 7), 9) == [9, 7]
    assert merge_pair([7, 7, 7, 7], (7, 7), 9) == [9, 9]
    assert merge_pair([1, 2, 3, 1, 2], (1, 2), 9) == [9, 3, 9]


def test_same_text_same_merges(docs_text):
    first = BPETokenizer().train(docs_text[:50_000], 700)
    second = BPETokenizer().train(docs_text[:50_000], 700)
    assert first.merges == second.merges


def test_merges_do_not_depend_on_the_order_words_were_seen(docs_text):
    counts = BPETokenizer().count_words(docs_text[:50_000])
    items = list(counts.items())
    random.Random(0).shuffle(items)
    assert train_merges(dict(items), 400) == train_merges(counts, 400)


def test_incremental_trainer_equals_rescanning_on_real_text(docs_text):
    counts = BPETokenizer().count_words(docs_text[:40_000])
    assert train_merges(counts, 300) == rescan_reference(counts, 300)


words = st.dictionaries(
    st.text("abc ", min_size=1, max_size=12).map(str.encode), st.integers(1, 5), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(word_counts=words, num_merges=st.integers(0, 25))
def test_incremental_trainer_equals_rescanning(word_counts, num_merges):
    """Small alphabets make many ties and runs like "aaaa", where overlaps matter."""
    assert train_merges(word_counts, num_merges) == rescan_reference(word_counts, num_merges)


def test_counts_are_python_ints_that_do_not_overflow():
    huge = 2**70
    assert train_merges({b"ab": huge, b"cd": huge - 1}, 2) == [(97, 98), (99, 100)]


def test_more_ids_than_characters_is_an_error(monkeypatch):
    monkeypatch.setattr(bpe_trainer, "MAX_TOKENS", 258)
    assert train_merges({b"abc": 1}, 2) == [(97, 98), (256, 99)]
    with pytest.raises(ValueError, match="cannot learn more than 2 merges"):
        train_merges({b"abcd": 1}, 3)


def test_memory_follows_distinct_words_not_text_length():
    n = 20_000
    counts = BPETokenizer().count_words("the cat sat on the mat " * n)
    assert counts == {
        b"the": 1,
        b" the": 2 * n - 1,
        b" cat": n,
        b" sat": n,
        b" on": n,
        b" mat": n,
        b" ": 1,
    }  # the final space is a pre-token of its own (\s++$)


def test_special_tokens_take_the_last_ids_and_are_not_learned():
    text = "hello<|endoftext|>hello<|endoftext|>hello"
    tokenizer = BPETokenizer().train(text, 300, special_tokens=["<|endoftext|>"])
    assert tokenizer.special_tokens == {"<|endoftext|>": tokenizer.vocab_size - 1}
    learned = {tokenizer.token_bytes(i) for i in range(256, tokenizer.vocab_size - 1)}
    assert not any(b"<|" in token or b"|>" in token for token in learned)
    assert (
        tokenizer.encode("hello<|endoftext|>", allowed_special="all")[-1]
        == (tokenizer.special_tokens["<|endoftext|>"])
    )


@pytest.mark.parametrize("vocab_size", [0, 100, 255])
def test_vocab_size_below_256_is_an_error(vocab_size):
    with pytest.raises(ValueError, match=f"vocab_size={vocab_size} is too small.*256"):
        BPETokenizer().train("some text", vocab_size)


def test_vocab_size_must_leave_room_for_special_tokens():
    with pytest.raises(ValueError, match="plus 1 for the special tokens"):
        BPETokenizer().train("some text", 256, special_tokens=["<|endoftext|>"])


def test_unknown_pattern_name_is_an_error():
    with pytest.raises(ValueError, match="neither a known name"):
        BPETokenizer().train("some text", 300, pattern="gpt5(")


def test_custom_pattern_limits_what_a_token_can_span():
    tokenizer = BPETokenizer().train("ab cd ab cd ab cd", 300, pattern=r"\S+|\s+")
    assert all(
        b" " not in tokenizer.token_bytes(i) or tokenizer.token_bytes(i).isspace()
        for i in range(256, tokenizer.vocab_size)
    )
    assert tokenizer.decode(tokenizer.encode("ab cd  ab")) == "ab cd  ab"
