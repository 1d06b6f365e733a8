"""The ``re`` shortcut for pre-tokenizing gives exactly the ``regex`` result, or is not used."""

from __future__ import annotations

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer_strategies import text

from tokenizers.patterns import (
    GPT2_PATTERN,
    GPT4_PATTERN,
    GPT4O_CASED_PATTERN,
    GPT4O_PATTERN,
    UNCASED,
    Splitter,
    bmp_characters,
    chunks,
)

# characters that re and regex classify differently with their own classes (the listed
# classes make them agree), characters they agree on, and characters beyond the plane
TRICKY = ["²", "½", "Ⅻ", "٣", "一", "ſ", "K", "\x1c", "\x1f", "\x85", "\xa0", "\u3000", "é", "_"]
TRICKY += ["É", "ß", "ǅ", "ʰ", "\u0301", "ﬁ", "Σ", "İ", "가", "/", "CamelCase", "'LL", "!\n/"]
TRICKY += ["\U0001d400", "\U0001d7ce", "\U0001f600", "\U00020000"]


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN])
def test_the_shortcut_is_used_for_text_within_the_basic_multilingual_plane(pattern):
    splitter = Splitter(pattern)
    assert splitter.can_use_re("Plain ASCII, and naïve café text: 123 + 4567\r\n")
    assert splitter.can_use_re("x² a\x1cb 漢字 CamelCase ÉCOLE Straße, don'T ſ")
    assert splitter.can_use_re("emoji are in no class: \U0001f600")
    assert not splitter.can_use_re("a math letter \U0001d400 is a letter to regex")


def test_no_shortcut_for_other_patterns():
    assert not Splitter(r"\p{L}+|\s+").can_use_re("plain text")


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN])
def test_same_pre_tokens_as_regex_around_every_character(pattern):
    """Each character of the plane between letters, digits, spaces and contractions."""
    probes = "".join(f"{c}'S{c}a{c}A {c}1{c}\n" for c in bmp_characters())
    assert Splitter(pattern).fast(probes) == regex.findall(pattern, probes)


tricky_text = st.lists(st.sampled_from([*TRICKY, " ", "ab", "'S", "1", "\n"])).map("".join)


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN])
@settings(max_examples=300, deadline=None)
@given(sample=st.one_of(text, tricky_text))
def test_same_pre_tokens_as_regex(pattern, sample):
    splitter = Splitter(pattern)
    expected = regex.findall(pattern, sample)
    assert splitter(sample) == expected
    if splitter.can_use_re(sample):
        assert splitter.fast(sample) == expected


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN])
def test_same_pre_tokens_as_regex_on_the_docs(pattern, docs_text):
    splitter = Splitter(pattern)
    assert splitter.can_use_re(docs_text)
    assert splitter.fast(docs_text) == regex.findall(pattern, docs_text)


line_ends = st.lists(st.sampled_from(["a\n", "é\n\n", "a \n", "b.\n", "x'\n", "\n", " \n  "]))


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN])
@settings(max_examples=300, deadline=None)
@given(sample=st.lists(st.one_of(text, tricky_text, line_ends.map("".join))).map("".join))
def test_cutting_before_a_newline_after_a_letter_keeps_the_pre_tokens(pattern, sample):
    pieces = [piece for chunk in chunks(sample, size=3) for piece in regex.findall(pattern, chunk)]
    assert pieces == regex.findall(pattern, sample)
    assert "".join(chunks(sample, size=3)) == sample


cased_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Lm", "Lo", "Mn", "Mc", "Me"))),
    tricky_text,
).filter(lambda t: not regex.search(UNCASED, t))  # regex may know newer characters


@settings(max_examples=500, deadline=None)
@given(sample=cased_text)
def test_the_cased_gpt4o_pattern_gives_the_same_pre_tokens_on_cased_text(sample):
    assert regex.findall(GPT4O_CASED_PATTERN, sample) == regex.findall(GPT4O_PATTERN, sample)


def test_the_cased_gpt4o_pattern_is_used_only_on_cased_text():
    splitter = Splitter(GPT4O_PATTERN)
    assert splitter("CamelCase ÉCOLE ß") == splitter.fast_cased("CamelCase ÉCOLE ß")
    assert regex.findall(GPT4O_CASED_PATTERN, "e\u0301x 漢字") != regex.findall(
        GPT4O_PATTERN, "e\u0301x 漢字"
    )  # a mark: the cased pattern would be wrong here, and it is not used
    assert splitter("e\u0301x 漢字") == regex.findall(GPT4O_PATTERN, "e\u0301x 漢字")
