"""Command line: train a tokenizer, encode text with it, decode ids.

    python -m tokenizers train --data FILE --vocab-size 4096 --out tok.json
    python -m tokenizers encode --tokenizer tok.json "Hello world"
    python -m tokenizers decode --tokenizer tok.json 9906 1917

Every argument is checked before any work starts. A problem is one line on standard error
naming it, with exit status 1 (2 for a malformed command line), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .base import (
    Tokenizer,
    check_can_write,
    default_corpus,
    read_text_file,
    unique_special_tokens,
)
from .bpe import BPETokenizer
from .patterns import resolve_pattern
from .simple import CharTokenizer, WordTokenizer
from .wordpiece import BERT_SPECIAL_TOKENS, WordPieceTokenizer

KINDS: dict[str, type[Tokenizer]] = {
    "bpe": BPETokenizer,
    "char": CharTokenizer,
    "word": WordTokenizer,
    "wordpiece": WordPieceTokenizer,
}

NOTHING_LEFT = {
    "bpe": "no pair of tokens is left to merge",
    "char": "every character seen --min-freq times has an id",
    "word": "every word seen --min-freq times has an id",
    "wordpiece": "no pair seen --min-freq times is left to merge",
}
"""Why training can stop short of --vocab-size, for the warning that says so."""


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (argparse's own prints the whole usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole_number(text: str) -> int:
    """An argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m tokenizers",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="learn a vocabulary from text and save the tokenizer as JSON",
        description="Learn a vocabulary from text and save the tokenizer as JSON.",
    )
    train.add_argument(
        "--data",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="UTF-8 text files to learn from, joined by newlines (default: Python's "
        "reference documentation, about 465 KB, which every Python installation carries)",
    )
    train.add_argument(
        "--vocab-size",
        type=whole_number,
        required=True,
        metavar="N",
        help="number of ids, special tokens included; bpe needs at least 256 (one per byte). "
        "If the data runs out of things to learn first, a warning gives the size reached",
    )
    train.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="the JSON file to write; missing directories are created, and an existing "
        "file is replaced whole (never left half-written)",
    )
    train.add_argument(
        "--kind",
        choices=KINDS,
        default="bpe",
        help="bpe: byte-level BPE as in GPT-2/GPT-4; char: one id per character; word: one "
        "id per word or punctuation mark; wordpiece: BERT's subwords (default: %(default)s)",
    )
    train.add_argument(
        "--pattern",
        help="bpe only: how text is cut into pre-tokens before merging: gpt2, gpt4, gpt4o, a "
        "regex, or none for raw bytes (default: gpt4)",
    )
    train.add_argument(
        "--special-token",
        action="append",
        default=[],
        dest="special_tokens",
        metavar="TEXT",
        help="a special token such as '<|endoftext|>': it gets its own id and its text is "
        "never learned from the data; repeat for more (wordpiece always has BERT's "
        f"{' '.join(BERT_SPECIAL_TOKENS)})",
    )
    train.add_argument(
        "--min-freq",
        type=whole_number,
        metavar="N",
        help="char, word, wordpiece only: learn only characters, words (or, for wordpiece, "
        "pairs to merge) seen at least N times (default: 1)",
    )
    train.add_argument(
        "--verbose",
        action="store_true",
        help="bpe only: print each merge as it is learned on standard output. If the reader "
        "stops early (e.g. '| head'), the rest is not printed but training finishes and "
        "the file is saved",
    )

    encode = commands.add_parser(
        "encode",
        help="text to ids, and the piece of text each id stands for",
        description="Print the ids of a text on one line and, on the next, the piece of "
        "text each id stands for ('\\n' is a newline, \\xNN a byte that is only part of a "
        "character).",
    )
    encode.add_argument(
        "--tokenizer", type=Path, required=True, metavar="FILE", help="a file written by train"
    )
    encode.add_argument("text", nargs="?", help="the text (default: read standard input)")
    encode.add_argument(
        "--allow-special",
        action="store_true",
        help="encode special tokens found in the text as their ids (default: their text is "
        "an error, so that input cannot inject them)",
    )
    encode.add_argument(
        "--json", action="store_true", help='print one JSON object {"ids": [...], "pieces": [...]}'
    )

    decode = commands.add_parser("decode", help="ids back to text", description="Ids to text.")
    decode.add_argument(
        "--tokenizer", type=Path, required=True, metavar="FILE", help="a file written by train"
    )
    decode.add_argument(
        "ids", nargs="*", help="the ids (default: read them from standard input, spaced)"
    )
    return parser


# ---- train --------------------------------------------------------------------------------


def check_train_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """Every check that needs no data, so that a mistake fails in a fraction of a second.
    Returns the keyword arguments for the tokenizer's ``train``."""
    settings: dict[str, Any] = {}
    if args.kind == "bpe":
        if args.min_freq is not None:
            raise ValueError("--min-freq applies to --kind char, word or wordpiece, not bpe")
        pattern = "gpt4" if args.pattern is None else args.pattern
        settings["pattern"] = None if pattern.lower() == "none" else resolve_pattern(pattern)
        settings["verbose"] = args.verbose
    else:
        for flag, given in (("--pattern", args.pattern is not None), ("--verbose", args.verbose)):
            if given:
                raise ValueError(f"{flag} applies to --kind bpe only, not {args.kind}")
        settings["min_freq"] = args.min_freq or 1
    settings["special_tokens"] = unique_special_tokens(args.special_tokens)
    if args.kind == "wordpiece":
        settings["special_tokens"] = [*BERT_SPECIAL_TOKENS, *settings["special_tokens"]]
    check_can_write(args.out)
    return settings


def train(args: argparse.Namespace) -> None:
    settings = check_train_arguments(args)
    if args.data:
        text = "\n".join(read_text_file(path) for path in args.data)
        source = ", ".join(map(str, args.data))
    else:
        text, source = default_corpus(), "Python's reference documentation"
    start = time.perf_counter()
    tokenizer = KINDS[args.kind]().train(text, args.vocab_size, **settings)
    seconds = time.perf_counter() - start
    if tokenizer.vocab_size < args.vocab_size:
        print(
            f"warning: the data ran out at vocab_size={tokenizer.vocab_size}, short of "
            f"--vocab-size {args.vocab_size}: {NOTHING_LEFT[args.kind]}",
            file=sys.stderr,
        )
    tokenizer.save(args.out)
    print(
        f"trained {args.kind} on {len(text):,} characters ({source}) in {seconds:.2f} s: "
        f"vocab_size={tokenizer.vocab_size}, saved to {args.out}"
    )


# ---- encode, decode -----------------------------------------------------------------------


def readable(piece: str) -> str:
    """A piece between quotes, as a person reads it: ``' the'``, ``'\\n'`` for a newline,
    ``'\\xc3'`` for a byte that is only part of a character (one backslash, where
    ``repr`` would show two)."""
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in piece) + "'"


def encode(args: argparse.Namespace) -> None:
    tokenizer = Tokenizer.load(args.tokenizer)
    text = args.text if args.text is not None else sys.stdin.read()
    ids = tokenizer.encode(text, allowed_special="all" if args.allow_special else ())
    pieces = [tokenizer.id_to_token(i) for i in ids]
    if args.json:
        print(json.dumps({"ids": ids, "pieces": pieces}, ensure_ascii=False))
    else:
        print(" ".join(map(str, ids)))
        print(" ".join(map(readable, pieces)))


def decode(args: argparse.Namespace) -> None:
    tokenizer = Tokenizer.load(args.tokenizer)
    words = args.ids if args.ids else sys.stdin.read().split()
    for word in words:
        if not (word.isascii() and word.isdigit()):
            raise ValueError(f"{word!r} is not an id: ids are whole numbers such as 9906")
    print(tokenizer.decode(int(word) for word in words))


# ---- running a command ----------------------------------------------------------------------


class QuietWhenClosed:
    """Standard output that, once its reader has gone (``... | head``), drops what is left
    instead of raising BrokenPipeError in the middle of the work."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self.discard_the_rest()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.discard_the_rest()

    def discard_the_rest(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"train": train, "encode": encode, "decode": decode}[args.command]
    stdout, sys.stdout = sys.stdout, QuietWhenClosed(sys.stdout)
    try:
        command(args)
        sys.stdout.flush()
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {args.command} did not finish", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
