"""WordPiece: each BERT normalization rule, ## splitting, special tokens, training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenizers import Tokenizer, TokenizerFileError, WordPieceTokenizer
from tokenizers.wordpiece import (
    clean_text,
    lowercase,
    normalize,
    space_cjk,
    split_words,
    strip_accents,
    train_wordpiece_vocab,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make(pieces: list[str], **kwargs) -> WordPieceTokenizer:
    return WordPieceTokenizer(SPECIALS + pieces, **kwargs)


# ---- normalization, one rule at a time ----------------------------------------------------


def test_clean_text_drops_control_and_format_characters():
    # NUL, U+FFFD, BEL (Cc), zero-width space and soft hyphen (Cf) carry no text
    assert clean_text("a\x00b\ufffdc\x07d\u200be\u00adf") == "abcdef"


def test_clean_text_turns_every_whitespace_into_a_space():
    assert clean_text("a\tb\nc\r\nd\u3000e\u00a0f") == "a b c  d e f"


def test_cjk_characters_get_spaces_around_them_but_kana_and_hangul_do_not():
    assert space_cjk("ab我们cd") == "ab 我  们 cd"
    assert space_cjk("カタカナ한국") == "カタカナ한국"


def test_strip_accents_decomposes_and_drops_marks():
    assert strip_accents("Héllo Ñandú Ångström") == "Hello Nandu Angstrom"
    assert strip_accents("e\u0301") == "e"


def test_lowercase_is_per_character():
    # per character, a final capital sigma becomes σ (str.lower on the word would give ς)
    assert lowercase("ΟΔΟΣ") == "οδοσ"
    assert "ΟΔΟΣ".lower() == "οδος"


def test_normalize_cased_keeps_case_and_accents():
    assert normalize("Héllo Wörld", lowercase_text=False) == "Héllo Wörld"
    assert normalize("Héllo Wörld") == "hello world"
    assert normalize("Héllo", lowercase_text=True, strip_accents_text=False) == "héllo"


def test_split_on_whitespace_and_every_punctuation_character():
    assert split_words("don't stop-now $5, ok?!") == [
        "don", "'", "t", "stop", "-", "now", "$", "5", ",", "ok", "?", "!"
    ]  # fmt: skip
    assert split_words("  ¿qué?  ") == ["¿", "qué", "?"]


# ---- greedy longest-match-first -----------------------------------------------------------


def test_continuation_pieces():
    tokenizer = make(["un", "##aff", "##able", "aff"])
    assert tokenizer.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert tokenizer.tokenize("affable") == ["aff", "##able"]


def test_longest_match_wins_even_if_a_shorter_one_would_work():
    tokenizer = make(["un", "una", "##ffable", "##aff", "##able"])
    assert tokenizer.tokenize("unaffable") == ["una", "##ffable"]


def test_a_word_with_an_unmatchable_part_is_one_unk():
    tokenizer = make(["un", "##aff"])
    assert tokenizer.tokenize("unaffx unknown un") == ["[UNK]", "[UNK]", "un"]


def test_words_longer_than_100_characters_are_unk():
    tokenizer = make(["a", "##a"])
    assert tokenizer.tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert tokenizer.tokenize("a" * 101) == ["[UNK]"]


def test_the_length_limit_counts_characters_even_for_a_whole_word_in_the_vocabulary(tmp_path):
    """A second, independent check of max_input_chars_per_word: a custom limit, words that are
    one vocabulary entry each, characters of two UTF-8 bytes, and the limit kept by save/load."""
    tokenizer = make(["chat", "chats", "été", "étés"], lowercase=False, max_input_chars_per_word=4)
    assert tokenizer.tokenize("chat chats été étés") == ["chat", "[UNK]", "été", "étés"]
    tokenizer.save(tmp_path / "wp.json")
    loaded = Tokenizer.load(tmp_path / "wp.json")
    assert loaded.encode("chats étés") == tokenizer.encode("chats étés")
    assert loaded.encode("chats", add_special_tokens=False) == [loaded.vocab["[UNK]"]]


def test_cls_sep_and_pairs_with_token_types():
    tokenizer = make(["hello", "world", "?", "yes"])
    v = tokenizer.vocab
    assert tokenizer.encode("Hello world") == [v["[CLS]"], v["hello"], v["world"], v["[SEP]"]]
    assert tokenizer.encode("Hello world", add_special_tokens=False) == [v["hello"], v["world"]]
    pair = tokenizer.encode_pair("hello?", "yes")
    assert pair.tokens == ["[CLS]", "hello", "?", "[SEP]", "yes", "[SEP]"]
    assert pair.token_type_ids == [0, 0, 0, 0, 1, 1]
    assert pair.ids == [v[t] for t in pair.tokens]


def test_special_token_text_follows_the_shared_rule():
    tokenizer = make(["a"])
    with pytest.raises(ValueError, match=r"special token '\[SEP\]'"):
        tokenizer.encode("a [SEP] a")
    ids = tokenizer.encode("a [SEP] a", allowed_special="all", add_special_tokens=False)
    assert ids == [tokenizer.vocab[t] for t in ["a", "[SEP]", "a"]]


def test_decode_joins_continuations_and_skips_specials():
    tokenizer = make(["un", "##aff", "##able", "cat", ".", "is"])
    ids = tokenizer.encode("The cat is unaffable.")
    assert tokenizer.decode(ids) == "cat is unaffable."  # [UNK] is special too, as in HF
    assert tokenizer.decode(ids, skip_special_tokens=False).startswith("[CLS] [UNK] cat")
    with pytest.raises(ValueError, match="token id 99 at position 0"):
        tokenizer.decode([99])


def test_save_load_and_vocab_txt_round_trip(tmp_path):
    tokenizer = make(["hello", "##s", "world"], lowercase=False)
    tokenizer.save(tmp_path / "wp.json")
    loaded = Tokenizer.load(tmp_path / "wp.json")
    assert loaded.encode("hellos World") == tokenizer.encode("hellos World")
    assert loaded.lowercase is False
    tokenizer.save_vocab(tmp_path / "vocab.txt")
    again = WordPieceTokenizer.from_vocab(tmp_path / "vocab.txt", lowercase=False)
    assert again.vocab == tokenizer.vocab


def test_vocab_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        WordPieceTokenizer.from_vocab(tmp_path / "vocab.txt")
    (tmp_path / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"no unknown token '\[UNK\]'"):
        WordPieceTokenizer.from_vocab(tmp_path / "vocab.txt")


# ---- a real vocabulary: bert-base-uncased's vocab.txt (as all-MiniLM-L6-v2 ships it) -------

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def minilm() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab(DATA / "bert-base-uncased-vocab.txt", lowercase=True)


def test_same_ids_as_berts_own_tokenizer(minilm):
    """Reference ids from Hugging Face's BERT tokenizer (scripts/make_wordpiece_fixture.py).
    Hugging Face treats "[CLS]" in the text as the special token; here that is opt-in."""
    reference = json.loads((DATA / "wordpiece_reference.json").read_text(encoding="utf-8"))
    for case in reference["cases"]:
        assert minilm.encode(case["text"], allowed_special="all") == case["ids"], case["text"]
    for pair in reference["pairs"]:
        encoding = minilm.encode_pair(pair["a"], pair["b"])
        assert encoding.ids == pair["ids"] and encoding.token_type_ids == pair["token_type_ids"]


def test_real_bert_vocabulary(minilm):
    assert minilm.vocab_size == 30522
    assert minilm.encode("Hello world") == [101, 7592, 2088, 102]  # well-known BERT ids
    tokens = minilm.tokenize("Héllo, WORLD! Tokenization 我爱")
    assert tokens == ["hello", ",", "world", "!", "token", "##ization", "我", "[UNK]"]
    assert minilm.encode("Tokenization", add_special_tokens=False) == [
        minilm.vocab["token"], minilm.vocab["##ization"]
    ]  # fmt: skip


# ---- training -------------------------------------------------------------------------------


def test_trainer_hand_worked_example():
    """Words (Hugging Face course): hug x10, pug x5, pun x12, bun x4, hugs x5.

    Alphabet: b h p ##g ##n ##s ##u. Scores count(ab) / (count(a) count(b)):
    (##g, ##s) = 5 / (20 * 5) = 1/20 is the highest, so "##gs" is learned first.
    Then (h,##u) 15/(15*36), (p,##u) 17/(17*36), (##u,##g) 15/(36*15), ... all equal 1/36;
    the tie goes to the most frequent pair, (p, ##u) seen 17 times: "pu".
    """
    words = ["hug"] * 10 + ["pug"] * 5 + ["pun"] * 12 + ["bun"] * 4 + ["hugs"] * 5
    vocab = train_wordpiece_vocab(words, vocab_size=5 + 7 + 2)
    assert vocab[:5] == SPECIALS
    assert vocab[5:12] == ["##g", "##n", "##s", "##u", "b", "h", "p"]
    assert vocab[12:] == ["##gs", "pu"]


def test_trained_tokenizer_encodes_its_corpus_without_unknowns(docs_text):
    tokenizer = WordPieceTokenizer().train(docs_text[:10_000], vocab_size=300)
    assert tokenizer.vocab_size == 300
    ids = tokenizer.encode(docs_text[:2_000], add_special_tokens=False, disallowed_special=())
    assert tokenizer.vocab["[UNK]"] not in ids
    words = split_words(normalize(docs_text[:2_000]))
    assert tokenizer.decode(ids).replace(" ", "") == "".join(words)


def test_trainer_vocab_too_small():
    with pytest.raises(ValueError, match="vocab_size=6 is too small"):
        train_wordpiece_vocab(["abc"], vocab_size=6)
