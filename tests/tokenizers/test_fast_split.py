"""The ``re`` shortcut for pre-tokenizing gives exactly the ``regex`` result, or is not used."""

from __future__ import annotations

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer_strategies import text

from tokenizers.patterns import GPT2_PATTERN, GPT4_PATTERN, GPT4O_PATTERN, Splitter

# characters the two engines classify differently, and some they agree on
TRICKY = ["²", "½", "Ⅻ", "٣", "一", "ſ", "K", "\x1c", "\x1f", "\x85", "\xa0", "\u3000", "é", "_"]
TRICKY += ["É", "ß", "ǅ", "ʰ", "\u0301", "ﬁ", "Σ", "İ", "가", "/", "CamelCase", "'LL", "!\n/"]


@pytest.mark.parametrize("pattern", [GPT2_PATTERN, GPT4_PATTERN])
def test_the_shortcut_is_used_for_ordinary_text(pattern):
    splitter = Splitter(pattern)
    assert splitter.can_use_re("Plain ASCII, and naïve café text: 123 + 4567\r\n")
    assert not splitter.can_use_re("x² ")  # '²' is a number to regex, a letter to re
    assert not splitter.can_use_re("a\x1cb")  # '\x1c' is whitespace only to re


def test_gpt4o_shortcut_lists_classes_for_the_first_code_points():
    splitter = Splitter(GPT4O_PATTERN)
    assert splitter.can_use_re("CamelCase naïve ÉCOLE Straße, don'T\r\n")
    assert not splitter.can_use_re("漢字")  # beyond the listed code points


def test_no_shortcut_for_other_patterns():
    assert not Splitter(r"\p{L}+|\s+").can_use_re("plain text")


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
