"""Hypothesis strategies for text that stresses tokenizers."""

from __future__ import annotations

from hypothesis import strategies as st

FRAGMENTS = [
    " ", "  ", "    ", "\t", "\n", "\r\n", "\n\n", "\r", " \n ",
    "the", " the", "The", "HELLO", "CamelCase", "don't", "I'M", " you'll", "'s", "'ve",
    "1", "12", "123", "1234567", "3.14", "1,000", "-42",
    "!", "?!", "...", "--", ";\n/", "\r\n/", "==>", "(x)", "{}", "<|endoftext|", "#!/", "//",
    "é", "e\u0301", "a\u0308\u0301", "ñ", "ß", "İ", "Σ",
    "你好", "世界", "日本語", "한국어", "Привет", "مرحبا", "שלום", "हिन्दी",
    "😀", "👍🏽", "👨‍👩‍👧", "🇺🇳", "\u200d", "\ufeff", "\u00a0", "\u3000",
]  # fmt: skip

# No lone surrogates (Cs), and no code points unassigned in this Python's Unicode database
# (Cn): the `regex` module and tiktoken's Rust engine each carry their own, newer Unicode
# tables, and they classify characters assigned since differently (regex reads U+3D000 as a
# letter, tiktoken as unassigned), so no encoder built on `regex` can match tiktoken there.
any_char = st.characters(blacklist_categories=("Cs", "Cn"))

text = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(any_char, max_size=6)), max_size=24
).map("".join)
"""Valid Unicode text (no lone surrogates) mixing tricky fragments and arbitrary characters."""
