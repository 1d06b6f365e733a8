"""Character and word tokenizers: vocabulary rules, unknown token, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from tokenizer_strategies import text

from tokenizers import CharTokenizer, Tokenizer, WordTokenizer


@settings(max_examples=200, deadline=None)
@given(sample=text)
def test_char_round_trip_on_text_it_was_trained_on(sample):
    tokenizer = CharTokenizer().train(sample)
    assert tokenizer.decode(tokenizer.encode(sample)) == sample
    assert len(tokenizer.encode(sample)) == len(sample)


def test_char_vocabulary_is_ordered_by_frequency_then_code_point():
    tokenizer = CharTokenizer().train("banana bread")
    # a:4 n:2 b:2 (then ties by code point: ' ' d e r)
    assert tokenizer.chars == ["a", "b", "n", " ", "d", "e", "r"]
    assert tokenizer.encode("ban") == [2, 1, 3]


def test_char_unknown_characters_become_id_0():
    tokenizer = CharTokenizer().train("abc")
    assert tokenizer.encode("abz") == [tokenizer.encode("a")[0], tokenizer.encode("b")[0], 0]
    assert tokenizer.decode(tokenizer.encode("abz")) == "ab<unk>"


def test_char_min_freq_and_vocab_size():
    tokenizer = CharTokenizer().train("aaabbc", min_freq=2)
    assert tokenizer.chars == ["a", "b"]
    tokenizer = CharTokenizer().train("aaabbc", vocab_size=2)
    assert tokenizer.chars == ["a"] and tokenizer.vocab_size == 2
    with pytest.raises(ValueError, match="min_freq"):
        CharTokenizer().train("abc", min_freq=0)
    with pytest.raises(ValueError, match="vocab_size=1 leaves no room"):
        CharTokenizer().train("abc", vocab_size=1, special_tokens=["<eos>"])


def test_word_splitting_rules():
    tokenizer = WordTokenizer()
    assert tokenizer.split("Hello,  world!\nIt's 3.14") == [
        "Hello",
        ",",
        "world",
        "!",
        "It",
        "'",
        "s",
        "3",
        ".",
        "14",
    ]


def test_word_unknown_lowercase_and_lossy_decode():
    tokenizer = WordTokenizer(lowercase=True).train("The cat sat. the cat ran!")
    ids = tokenizer.encode("THE   dog sat!")
    assert ids[1] == tokenizer.unk_id == 0
    assert tokenizer.decode(ids) == "the <unk> sat !"


def test_word_vocabulary_by_frequency_with_limits():
    tokenizer = WordTokenizer().train("b a b c b a", min_freq=2)
    assert tokenizer.words == ["b", "a"]
    tokenizer = WordTokenizer().train("b a b c b a", vocab_size=3)
    assert tokenizer.words == ["b", "a"] and tokenizer.vocab_size == 3


@pytest.mark.parametrize("cls", [CharTokenizer, WordTokenizer])
def test_save_load_round_trip_with_special_tokens(tmp_path, cls):
    tokenizer = cls().train("one two three two one", special_tokens=["<eos>"])
    path = tmp_path / "tok.json"
    tokenizer.save(path)
    loaded = Tokenizer.load(path)
    assert type(loaded) is cls
    sample = "two one<eos>"
    assert loaded.encode(sample, allowed_special="all") == tokenizer.encode(
        sample, allowed_special="all"
    )
    assert loaded.encode(sample, allowed_special="all")[-1] == tokenizer.vocab_size - 1
    assert loaded.decode(loaded.encode(sample, allowed_special="all")) == tokenizer.decode(
        tokenizer.encode(sample, allowed_special="all")
    )


@pytest.mark.parametrize("cls", [CharTokenizer, WordTokenizer])
def test_decode_ids_outside_vocabulary(cls):
    tokenizer = cls().train("a b c")
    with pytest.raises(ValueError, match=f"token id {tokenizer.vocab_size} at position 0"):
        tokenizer.decode([tokenizer.vocab_size])
