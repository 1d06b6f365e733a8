"""Command line: train a tokenizer, encode text with it, decode ids.

    python -m tokenizers train --data FILE --vocab-size 4096 --out tok.json
    python -m tokenizers encode --tokenizer tok.json "Hello world"
    python -m tokenizers decode --tokenizer tok.json 9906 1917

Without ``--data`` the trainer uses Python's reference documentation (``default_corpus``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .base import Tokenizer, default_corpus
from .bpe import BPETokenizer
from .simple import CharTokenizer, WordTokenizer
from .wordpiece import WordPieceTokenizer

KINDS = ("bpe", "char", "word", "wordpiece")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tokenizers", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="learn a vocabulary from text files")
    train.add_argument(
        "--data", nargs="+", type=Path, help="UTF-8 text files (default: Python docs)"
    )
    train.add_argument("--vocab-size", type=int, required=True)
    train.add_argument("--out", type=Path, required=True, help="where to write the JSON file")
    train.add_argument("--kind", choices=KINDS, default="bpe")
    train.add_argument(
        "--pattern",
        default="gpt4",
        help="BPE split pattern: gpt2, gpt4, gpt4o, a regex, or 'none' for bytes",
    )
    train.add_argument("--special-token", action="append", default=[], dest="special_tokens")
    train.add_argument("--min-freq", type=int, default=1, help="char/word/wordpiece only")
    train.add_argument("--verbose", action="store_true", help="print each BPE merge")

    encode = commands.add_parser("encode", help="text to ids and the pieces they stand for")
    encode.add_argument("--tokenizer", type=Path, required=True)
    encode.add_argument("text", nargs="?", help="the text (default: read standard input)")
    encode.add_argument(
        "--allow-special",
        action="store_true",
        help="encode special tokens found in the text as their ids",
    )
    encode.add_argument("--json", action="store_true", help="print one JSON object")

    decode = commands.add_parser("decode", help="ids back to text")
    decode.add_argument("--tokenizer", type=Path, required=True)
    decode.add_argument("ids", nargs="*", help="ids (default: read them from standard input)")
    return parser


def read_corpus(paths: list[Path] | None) -> str:
    if not paths:
        return default_corpus()
    texts = []
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"training data not found: {path}")
        texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def train(args: argparse.Namespace) -> None:
    text = read_corpus(args.data)
    start = time.perf_counter()
    tokenizer: Tokenizer
    if args.kind == "bpe":
        pattern = None if args.pattern.lower() == "none" else args.pattern
        tokenizer = BPETokenizer().train(
            text,
            args.vocab_size,
            pattern=pattern,
            special_tokens=args.special_tokens,
            verbose=args.verbose,
        )
    elif args.kind == "wordpiece":
        tokenizer = WordPieceTokenizer().train(text, args.vocab_size, min_freq=args.min_freq)
    else:
        cls = CharTokenizer if args.kind == "char" else WordTokenizer
        tokenizer = cls().train(
            text,
            args.vocab_size,
            min_freq=args.min_freq,
            special_tokens=args.special_tokens,
        )
    seconds = time.perf_counter() - start
    tokenizer.save(args.out)
    print(
        f"trained {args.kind} on {len(text):,} characters in {seconds:.2f} s: "
        f"vocab_size={tokenizer.vocab_size}, saved to {args.out}"
    )


def encode(args: argparse.Namespace) -> None:
    tokenizer = Tokenizer.load(args.tokenizer)
    text = args.text if args.text is not None else sys.stdin.read()
    ids = tokenizer.encode(text, allowed_special="all" if args.allow_special else ())
    pieces = [tokenizer.id_to_token(i) for i in ids]
    if args.json:
        print(json.dumps({"ids": ids, "pieces": pieces}, ensure_ascii=False))
    else:
        print(" ".join(map(str, ids)))
        print(" ".join(repr(p) for p in pieces))


def decode(args: argparse.Namespace) -> None:
    tokenizer = Tokenizer.load(args.tokenizer)
    words = args.ids if args.ids else sys.stdin.read().split()
    try:
        ids = [int(w) for w in words]
    except ValueError:
        raise ValueError(f"ids must be integers, got {words!r}") from None
    print(tokenizer.decode(ids))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": train, "encode": encode, "decode": decode}[args.command](args)
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
