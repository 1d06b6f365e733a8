"""python -m transformer: train a GPT on a CPU, sample from it, evaluate it, fine-tune it.

    python -m transformer train                          # the default preset, 2 minutes on 2 cores
    python -m transformer train --preset tiny --out runs/tiny
    python -m transformer train --model lstm --hidden-size 256 --out runs/lstm
    python -m transformer train --out runs/default --resume --steps 4000
    python -m transformer train --init-from runs/default --data my.txt --out runs/mine
    python -m transformer sample --checkpoint runs/default --prompt "The " --top-p 0.9
    python -m transformer eval --checkpoint runs/default
    python -m transformer export --checkpoint runs/default --out exported   # Hugging Face GPT-2
    python -m transformer sample --hf exported --prompt "The "
    python -m transformer embed --model all-MiniLM-L6-v2 --similarity "A cat." "A dog."
    python -m transformer finetune --checkpoint runs/default --task instruct --out runs/instruct

--model rnn, lstm, gru or cnn trains a model from before transformers (transformer.baselines)
instead of the GPT, with the same data, recipe, checkpoints, sampling and evaluation.
Every argument is checked before any work starts; a problem is one line on stderr and a
non-zero exit status.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import no_grad
from minigrad.functional import softmax_array
from minigrad.nn import Module
from tokenizers import BPETokenizer
from transformer.baselines import ConvConfig, RecurrentConfig
from transformer.checkpoint import (
    CHECKPOINT_FILE,
    MODEL_KINDS,
    Checkpoint,
    describe,
    load_checkpoint,
)
from transformer.data import (
    TOKENIZERS,
    LanguageModelTask,
    TokenizedCorpus,
    consecutive_windows,
    load_corpus,
    read_text_file,
    train_tokenizer,
)
from transformer.feedforward import ACTIVATIONS
from transformer.finetune import (
    LORA_TARGETS,
    POOLINGS,
    TASKS,
    GPTClassifierConfig,
    InstructGPTConfig,
    InstructionTask,
    LoRAConfig,
    SectionTask,
    describe_trainable,
    format_prompt,
    respond,
    save_adapters,
    start_finetuning,
    task_for,
)
from transformer.generation import LANGUAGE_MODELS as LANGUAGE_MODEL_CLASSES
from transformer.generation import generate
from transformer.models import ATTENTION_PATTERNS, NORMS, POSITIONS, GPTConfig
from transformer.parallel import cannot_share, default_processes
from transformer.pretrained import export_gpt2, load_bert, load_gpt2, load_gpt2_tokenizer
from transformer.train import (
    PLOT_FILE,
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    TrainingInterruptedError,
)

PROG = "python -m transformer"
FINETUNED_KINDS = ("gpt_classifier", "gpt_instruct")  # made by `finetune`
# the checkpoint kinds that continue a text: gpt, rnn, lstm, gru, cnn
LANGUAGE_MODELS = tuple(kind for kind, (_, model) in MODEL_KINDS.items()
                        if issubclass(model, LANGUAGE_MODEL_CLASSES)
                        and kind not in FINETUNED_KINDS)  # fmt: skip


class UsageError(Exception):
    """Bad input found before any work: printed as one line, exit status 2."""


class RunError(Exception):
    """Work that started and stopped on a problem it names: one line, exit status 1."""


# ===================================================================== presets
# Each preset names a model (GPTConfig settings), a training recipe (TrainConfig settings)
# and a tokenizer; any flag overrides one setting.
_DEFAULT_MODEL = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0}
_DEFAULT_TRAINING = {"steps": 2500, "batch_size": 16, "lr": 2e-3, "warmup_steps": 100,
                     "eval_interval": 250, "eval_batches": 40}  # fmt: skip
PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "help": "a 0.8M-parameter character GPT on the embedded corpus, about 2 minutes on 2 cores",
        "model": _DEFAULT_MODEL,
        "training": _DEFAULT_TRAINING,
        "tokenizer": "char",
    },
    "tiny": {
        "help": "a few seconds: for tests and demos",
        "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32},
        "training": {
            "steps": 60,
            "batch_size": 8,
            "lr": 3e-3,
            "warmup_steps": 10,
            "eval_interval": 30,
            "eval_batches": 4,
        },  # fmt: skip
        "tokenizer": "char",
    },
    "moe": {
        "help": "the default with a mixture of 4 experts (top-2) in place of each FFN",
        "model": {**_DEFAULT_MODEL, "n_experts": 4, "top_k": 2, "ffn_hidden": 256},
        "training": {**_DEFAULT_TRAINING, "steps": 1500},
        "tokenizer": "char",
    },
    "rope": {
        "help": "the default with rotary position embeddings (RoPE) instead of learned ones",
        "model": {**_DEFAULT_MODEL, "position": "rope"},
        "training": _DEFAULT_TRAINING,
        "tokenizer": "char",
    },
    "sparse": {
        "help": "the default with strided sparse attention (Child et al. 2019, stride 8)",
        "model": {**_DEFAULT_MODEL, "attention": "strided", "attention_stride": 8},
        "training": _DEFAULT_TRAINING,
        "tokenizer": "char",
    },
    "bpe": {
        "help": "the default on a 512-token byte-level BPE vocabulary",
        "model": _DEFAULT_MODEL,
        "training": _DEFAULT_TRAINING,
        "tokenizer": "bpe",
        "vocab_size": 512,
    },
}


# ===================================================================== argument types
def _number(kind: type, test: Any, wanted: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < math.inf, "a positive number")
non_negative_float = _number(float, lambda v: 0 <= v < math.inf, "a number >= 0")
dropout_rate = _number(float, lambda v: 0 <= v < 1, "a probability in [0, 1)")
nucleus_mass = _number(float, lambda v: 0 < v <= 1, "a probability in (0, 1]")


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


# flag -> (model config field, type, help). Their defaults come from the preset.
MODEL_FLAGS = {
    "--block-size": ("block_size", positive_int, "longest context, in tokens"),
    "--n-layer": ("n_layer", positive_int, "transformer, convolution or recurrent layers"),
    "--n-head": ("n_head", positive_int, "attention heads per block"),
    "--n-embd": ("n_embd", positive_int, "channels (d_model); divisible by --n-head"),
    "--hidden-size": (
        "hidden_size",
        positive_int,
        f"rnn, lstm, gru: the state's width (default {RecurrentConfig.hidden_size})",
    ),
    "--kernel-size": (
        "kernel_size",
        positive_int,
        f"cnn: taps of each convolution (default {ConvConfig.kernel_size})",
    ),
    "--dilation-base": (
        "dilation_base",
        positive_int,
        f"cnn: layer l's dilation is this ** l (default {ConvConfig.dilation_base})",
    ),
    "--ffn-hidden": ("ffn_hidden", positive_int, "FFN width (None: 4 x n_embd)"),
    "--dropout": ("dropout", dropout_rate, "dropout probability"),
    "--activation": ("activation", ACTIVATIONS, "FFN activation"),
    "--position": ("position", POSITIONS, "positional encoding"),
    "--attention": ("attention", ATTENTION_PATTERNS, "attention pattern (all causal)"),
    "--attention-window": ("attention_window", positive_int, "sliding_window: keys seen"),
    "--attention-stride": ("attention_stride", positive_int, "strided / fixed: the stride"),
    "--attention-summary": ("attention_summary", positive_int, "fixed: summary positions"),
    "--n-experts": ("n_experts", non_negative_int, "experts per MoE layer (0: plain FFN)"),
    "--moe-top-k": ("top_k", positive_int, "experts per token"),
    "--capacity-factor": (
        "capacity_factor",
        positive_float,
        "how many tokens an expert may take (None: all)",
    ),
    "--aux-loss-weight": ("aux_loss_weight", non_negative_float, "MoE load-balancing loss"),
    "--z-loss-weight": ("z_loss_weight", non_negative_float, "MoE router z-loss"),
    "--norm": ("norm", NORMS, "layer norm before (pre) or after (post) each sublayer"),
    "--layer-norm-eps": ("layer_norm_eps", positive_float, "the layer norms' epsilon"),
    "--bias": ("bias", bool, "biases in the linear layers (--no-bias: none)"),
    "--tie-weights": ("tie_weights", bool, "LM head shares the token embedding"),
}
# flag -> (TrainConfig field, type, help)
TRAIN_FLAGS = {
    "--steps": ("steps", positive_int, "optimizer steps (with --resume: the step to reach)"),
    "--batch-size": ("batch_size", positive_int, "sequences per step"),
    "--lr": ("lr", positive_float, "peak learning rate"),
    "--min-lr": ("min_lr", non_negative_float, "learning rate at the end (None: lr / 10)"),
    "--warmup-steps": ("warmup_steps", non_negative_int, "linear warmup steps"),
    "--lr-decay-steps": ("lr_decay_steps", positive_int, "cosine length (None: --steps)"),
    "--weight-decay": ("weight_decay", non_negative_float, "AdamW decay of the matrices"),
    "--beta1": ("beta1", dropout_rate, "AdamW's first-moment decay"),
    "--beta2": ("beta2", dropout_rate, "AdamW's second-moment decay"),
    "--grad-clip": ("grad_clip", non_negative_float, "max gradient norm (0: off)"),
    "--eval-interval": ("eval_interval", positive_int, "steps between evaluations and saves"),
    "--eval-batches": ("eval_batches", positive_int, "validation batches per evaluation"),
    "--seed": ("seed", non_negative_int, "seed of the weights and the batches"),
    "--processes": ("processes", positive_int, "processes sharing each batch (data parallelism)"),
}


def _add_settings(parser: argparse.ArgumentParser, flags: dict, defaults: dict, title: str) -> None:
    """One flag per setting, stored as "<title>.<field>"; None when not given."""
    group = parser.add_argument_group(title)
    for flag, (field, kind, text) in flags.items():
        shown = f"{text} (default {defaults[field]})" if field in defaults else text
        options = {"dest": f"{title}.{field}", "help": shown}
        if isinstance(kind, tuple):
            group.add_argument(flag, choices=kind, **options)
        elif kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        else:
            group.add_argument(flag, type=kind, metavar=field.upper(), **options)


def _add_sampling(parser: argparse.ArgumentParser, length: int) -> None:
    group = parser.add_argument_group("sampling")
    group.add_argument("--max-new-tokens", type=non_negative_int, default=length,
                       help=f"tokens to write (default {length})")  # fmt: skip
    group.add_argument("--temperature", type=non_negative_float, default=0.8,
                       help="< 1 sharper, > 1 flatter, 0 greedy (default 0.8)")  # fmt: skip
    group.add_argument("--top-k", type=positive_int, help="sample from the k likeliest tokens")
    group.add_argument(
        "--top-p",
        type=nucleus_mass,
        help="sample from the smallest set of tokens holding this probability",
    )
    group.add_argument(
        "--num-beams",
        type=positive_int,
        default=1,
        help="beam search with this many beams (default 1: no beam search)",
    )
    group.add_argument(
        "--length-penalty",
        type=float,
        default=1.0,
        help="beam search: score / length ** this (default 1.0)",
    )
    group.add_argument("--sample-seed", type=non_negative_int, default=0,
                       help="seed of the sampling (default 0)")  # fmt: skip
    group.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute the whole context for every token (slower; same tokens)",
    )


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="\n".join(__doc__.splitlines()[2:14]))  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser(
        "train", help="train a GPT or, with --model, an RNN, LSTM, GRU or CNN (default: the "
        "'default' preset on the embedded corpus)",
        description="Train a GPT. A preset sets the model, the recipe and the tokenizer; "
        "each flag below overrides one setting (the defaults shown are the default preset's).",
    )  # fmt: skip
    train.add_argument(
        "--model",
        choices=LANGUAGE_MODELS,
        help="gpt (default), or a model from before transformers: rnn, lstm, gru, cnn (the "
        "preset's block size, layers, width and dropout carry over)",
    )
    train.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="; ".join(f"{k}: {v['help']}" for k, v in PRESETS.items()),
    )
    train.add_argument("--out", type=Path,
                       help="run directory: checkpoint, tokenizer, metrics.jsonl, loss.png "
                       "(default runs/<preset>)")  # fmt: skip
    train.add_argument("--resume", action="store_true",
                       help="continue the run saved in --out (to --steps)")  # fmt: skip
    train.add_argument(
        "--init-from",
        type=Path,
        metavar="DIR",
        help="start from this checkpoint's weights and tokenizer, with a fresh "
        "optimizer and step counter (fine-tuning on other text)",
    )
    train.add_argument(
        "--data", type=Path, help="a UTF-8 text file (default: Python's reference documentation)"
    )
    train.add_argument("--tokenizer", choices=TOKENIZERS,
                       help="char or byte-level bpe (default: the preset's)")  # fmt: skip
    train.add_argument(
        "--vocab-size",
        type=positive_int,
        help="tokenizer size (bpe: default 512; char: every character)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    model_defaults = {**GPTConfig().to_dict(), **PRESETS["default"]["model"]}
    _add_settings(train, MODEL_FLAGS, model_defaults, "model")
    train_defaults = {**TrainConfig().to_dict(), **_DEFAULT_TRAINING,
                      "processes": "on Linux one per core, at most 8, if the model has no "
                      "dropout and no experts; else 1"}  # fmt: skip
    _add_settings(train, TRAIN_FLAGS, train_defaults, "training")
    _add_sampling(train, length=300)

    sample = commands.add_parser("sample", help="write text with a trained model")
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, metavar="DIR", help="a run of this project")
    source.add_argument("--hf", type=Path, metavar="DIR",
                        help="a Hugging Face GPT-2 directory (config.json, model.safetensors, "
                        "vocab.json + merges.txt or tokenizer.json)")  # fmt: skip
    sample.add_argument("--prompt", default="The ", help="text to continue (default 'The ')")
    sample.add_argument("--num-samples", type=positive_int, default=1, help="default 1")
    sample.add_argument("--input", help="instruction-tuned models: the template's Input field")
    _add_sampling(sample, length=300)

    evaluate = commands.add_parser("eval", help="validation loss and perplexity of a model")
    evaluate.add_argument("--checkpoint", type=Path, required=True, metavar="DIR")
    evaluate.add_argument(
        "--data", type=Path, help="text to evaluate on, whole (default: the run's validation split)"
    )
    evaluate.add_argument("--batch-size", type=positive_int, default=32, help="default 32")

    export = commands.add_parser("export", help="write a GPT in Hugging Face's GPT-2 layout")
    export.add_argument("--checkpoint", type=Path, required=True, metavar="DIR")
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="HF_DIR",
        help="directory for config.json, model.safetensors and the tokenizer",
    )

    embed = commands.add_parser("embed", help="sentence embeddings from a BERT-shaped model")
    embed.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="DIR",
        help="a Hugging Face BERT / sentence-transformers directory",
    )
    embed.add_argument("sentences", nargs="+", help="the sentences")
    embed.add_argument(
        "--similarity",
        action="store_true",
        help="print the cosine similarity of every pair instead",
    )
    _add_finetune_parser(commands)
    return parser


# ===================================================================== train
def given(args: argparse.Namespace, flags: dict, title: str) -> dict[str, Any]:
    """The settings of the `title` group of `flags` that were given on the command line."""
    values = {field: getattr(args, f"{title}.{field}") for field, *_ in flags.values()}
    return {field: value for field, value in values.items() if value is not None}


def _flags_given(args: argparse.Namespace, *names: str) -> list[str]:
    """Which of the flags `names` (model and training flags included) were given."""
    table = {flag: f"{title}.{field}" for title, flags in (("model", MODEL_FLAGS),
             ("training", TRAIN_FLAGS)) for flag, (field, *_) in flags.items()}  # fmt: skip
    return [n for n in names if getattr(args, table.get(n, n[2:].replace("-", "_"))) not in
            (None, False)]  # fmt: skip


def _checked(make: Any, **settings: Any) -> Any:
    """A config from settings; its ValueError becomes a usage error."""
    try:
        return make(**settings)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _checkpoint(directory: Path) -> Checkpoint:
    try:
        return load_checkpoint(directory)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _plan_resume(
    args: argparse.Namespace, out: Path, fixed: list[str], kinds: tuple[str, ...], what: str
) -> dict[str, Any]:
    """Check a --resume of the run in `out`: no setting but --steps may be given (`fixed`
    lists the others given), the run must be a `what` run of one of `kinds` with its
    training state, and the step to reach must lie ahead of it."""
    fixed = fixed + _flags_given(args, *(flag for flag in TRAIN_FLAGS if flag != "--steps"))
    if fixed:
        raise UsageError(
            f"--resume continues the run in {out} as it was saved; it takes --steps but "
            f"not {', '.join(fixed)}"
        )
    if not (out / CHECKPOINT_FILE).is_file():
        raise UsageError(f"--resume: {out} holds no run to continue (no {CHECKPOINT_FILE})")
    checkpoint = _checkpoint(out)
    if checkpoint.kind not in kinds or "train_config" not in checkpoint.training:
        raise UsageError(f"{out} holds no {what} run to continue")
    steps = given(args, TRAIN_FLAGS, "training").get(
        "steps", checkpoint.training["train_config"]["steps"]
    )
    if steps <= checkpoint.step:
        raise UsageError(
            f"the run in {out} is at step {checkpoint.step} already; give --steps above it"
        )
    return {"resume": True, "out": out, "steps": steps, "checkpoint": checkpoint}


def plan_training(args: argparse.Namespace) -> dict[str, Any]:
    """Check every argument of `train` and decide what to do, before any work."""
    preset = PRESETS[args.preset]
    out = args.out or Path("runs") / args.preset
    model_settings = given(args, MODEL_FLAGS, "model")
    train_settings = given(args, TRAIN_FLAGS, "training")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    if args.resume:
        fixed = _flags_given(args, "--init-from", "--data", "--tokenizer", "--vocab-size",
                             "--model", *MODEL_FLAGS)  # fmt: skip
        return _plan_resume(args, out, fixed, LANGUAGE_MODELS, "training")

    if (out / CHECKPOINT_FILE).exists():
        raise UsageError(
            f"{out} already holds a run: continue it with --resume, or choose another --out"
        )
    kind = args.model or "gpt"
    model_config = None if args.init_from else _model_config(kind, preset["model"], model_settings)
    train_config = _checked(TrainConfig, **{**preset["training"], **train_settings})
    fixed = _flags_given(args, "--model", "--tokenizer", "--vocab-size", *MODEL_FLAGS)
    if args.init_from and fixed:
        raise UsageError(
            f"--init-from keeps the checkpoint's model and tokenizer; drop {', '.join(fixed)}"
        )
    text = load_corpus(args.data)  # a bad file is a ValueError naming it
    if args.init_from:
        checkpoint = _checkpoint(args.init_from)
        if checkpoint.kind not in LANGUAGE_MODELS or checkpoint.tokenizer is None:
            raise UsageError(f"{args.init_from} does not hold a language model with its tokenizer")
        train_config = _with_processes(train_config, checkpoint.model.config, train_settings)
        return {"resume": False, "out": out, "text": text, "train_config": train_config,
                "checkpoint": checkpoint}  # fmt: skip
    train_config = _with_processes(train_config, model_config, train_settings)
    tokenizer = args.tokenizer or preset["tokenizer"]
    vocab_size = args.vocab_size or preset.get("vocab_size")
    if tokenizer == "bpe" and vocab_size is not None and vocab_size < 256:
        raise UsageError(f"--vocab-size {vocab_size} is too small for byte-level BPE (256 or more)")
    return {"resume": False, "out": out, "text": text, "train_config": train_config,
            "kind": kind, "model_config": model_config, "tokenizer": tokenizer,
            "vocab_size": vocab_size,
            "data": None if args.data is None else str(args.data)}  # fmt: skip


def _with_processes(train_config: TrainConfig, model_config: Any, given: dict) -> TrainConfig:
    """The training config with its number of processes: as given, if the model allows
    that many, or else the default for the model and the machine."""
    if "processes" not in given:
        processes = default_processes(model_config, train_config.batch_size)
        return dataclasses.replace(train_config, processes=processes)
    reason = cannot_share(model_config, train_config.processes)
    if reason:
        raise UsageError(f"--processes {train_config.processes}: {reason}")
    return train_config


def _model_config(kind: str, preset: dict[str, Any], given: dict[str, Any]) -> Any:
    """The config of a `kind` model from the preset's settings that it has and the flags
    given; a flag it has no setting for is a usage error."""
    config_class = MODEL_KINDS[kind][0]
    fields = {f.name for f in dataclasses.fields(config_class)}
    foreign = [flag for flag, (field, *_) in MODEL_FLAGS.items() if field in given
               and field not in fields]  # fmt: skip
    if foreign:
        own = [flag for flag, (field, *_) in MODEL_FLAGS.items() if field in fields]
        raise UsageError(
            f"{', '.join(foreign)}: not a setting of --model {kind} (its settings: "
            f"{', '.join(own)})"
        )
    settings = {k: v for k, v in {**preset, **given}.items() if k in fields}
    return _checked(config_class, vocab_size=256, **settings)  # the vocabulary's size comes later


def language_model_task(text: str, tokenizer: Any, block_size: int) -> LanguageModelTask:
    return LanguageModelTask(TokenizedCorpus.from_text(text, tokenizer), block_size)


def train_command(args: argparse.Namespace) -> None:
    plan = plan_training(args)
    _keep_freed_memory()
    progress = not args.no_progress
    if plan["resume"]:
        checkpoint = plan["checkpoint"]
        data = checkpoint.training.get("run_info", {}).get("data")
        text = load_corpus(data)
        trainer = Trainer.resume(
            plan["out"],
            lambda ck: language_model_task(text, ck.tokenizer, ck.model.config.block_size),
            steps=plan["steps"],
            progress=progress,
            checkpoint=checkpoint,
        )
        print(f"resuming {describe(checkpoint)} to step {plan['steps']}")
    else:
        text, out = plan["text"], plan["out"]
        if "checkpoint" in plan:  # --init-from
            source = plan["checkpoint"]
            model, tokenizer = source.model, source.tokenizer
            print(f"starting from {describe(source)}")
        else:
            tokenizer = train_tokenizer(text, plan["tokenizer"], plan["vocab_size"])
            config = dataclasses.replace(plan["model_config"], vocab_size=tokenizer.vocab_size)
            model = MODEL_KINDS[plan["kind"]][1](config, rng=plan["train_config"].seed)
        task = language_model_task(text, tokenizer, model.config.block_size)
        corpus = task.corpus
        print(f"corpus: {len(text):,} characters, {type(tokenizer).__name__} of "
              f"{tokenizer.vocab_size} tokens; {len(corpus.train):,} training and "
              f"{len(corpus.val):,} validation tokens")  # fmt: skip
        print(f"model: {type(model).__name__} with {model.num_parameters():,} parameters "
              f"({_shape(model.config)})")  # fmt: skip
        trainer = Trainer(model, task, plan["train_config"], out, tokenizer, progress,
                          run_info={"data": plan.get("data")})  # fmt: skip
    cfg = trainer.config
    sharing = f", {cfg.processes} processes sharing each batch" if cfg.processes > 1 else ""
    print(f"training {cfg.steps - trainer.step} steps of {cfg.batch_size} x "
          f"{trainer.model.config.block_size} tokens into {trainer.out_dir}{sharing}")  # fmt: skip
    row = run_trainer(trainer, "train")
    val = row.get("val_loss")
    per_char = row.get("val_loss_per_char")
    print(f"step {trainer.step}: validation loss {val:.4f} nats per token"
          + (f", {per_char:.4f} per character" if per_char is not None else ""))  # fmt: skip
    write_samples(trainer.model, trainer.tokenizer, "The ", args, 1)
    print(f"\ncheckpoint: {trainer.out_dir}\nloss curve: {trainer.out_dir / PLOT_FILE}")


def run_trainer(trainer: Trainer, command: str) -> dict[str, Any]:
    """trainer.run(), with Ctrl-C (saved: how to continue) and divergence told in words."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is named below
            return trainer.run()
    except TrainingInterruptedError:
        print(f"\ninterrupted: step {trainer.step} is saved in {trainer.out_dir}; continue with\n"
              f"  {PROG} {command} --out {trainer.out_dir} --resume "
              f"--steps {trainer.config.steps}")  # fmt: skip
        raise SystemExit(130) from None
    except TrainingDivergedError as error:
        kept = trainer.last_saved_step
        where = f"the checkpoint of step {kept} is kept" if kept else "no checkpoint was saved"
        raise RunError(
            f"{error}; stopped ({where} in {trainer.out_dir}); try a lower --lr"
        ) from None


def _shape(config: Any) -> str:
    if not isinstance(config, GPTConfig):
        return ", ".join(f"{k} {v}" for k, v in config.to_dict().items() if k != "vocab_size")
    parts = [f"{config.n_layer} layers", f"{config.n_head} heads", f"n_embd {config.n_embd}",
             f"context {config.block_size}", f"{config.position} positions"]  # fmt: skip
    if config.attention != "full":
        parts.append(f"{config.attention} attention")
    if config.n_experts:
        parts.append(f"{config.n_experts} experts, top-{config.top_k}")
    return ", ".join(parts)


def _keep_freed_memory() -> None:
    """Training allocates the same large temporaries every step: keeping freed memory in
    the process saves page faults (see minigrad.memory)."""
    from minigrad import memory

    memory.keep_freed_memory()


# ===================================================================== sample and eval
def write_samples(
    model: Module, tokenizer: Any, prompt: str, args: argparse.Namespace, n: int
) -> None:
    ids = tokenizer.encode(prompt)
    for i in range(n):
        new = generate(
            model, ids, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
            top_p=args.top_p, num_beams=args.num_beams, length_penalty=args.length_penalty,
            rng=args.sample_seed + i, use_cache=not args.no_cache,
        )  # fmt: skip
        header = f"sample {i + 1}" if n > 1 else "sample"
        print(f"\n--- {header} ---\n{prompt}{tokenizer.decode(new)}")


def _language_model_checkpoint(directory: Path, checkpoint: Checkpoint | None = None) -> Checkpoint:
    checkpoint = checkpoint or _checkpoint(directory)
    if checkpoint.kind not in LANGUAGE_MODELS:
        raise UsageError(f"{directory} holds a {checkpoint.kind} model, not a language model")
    return _with_tokenizer(checkpoint)


def _with_tokenizer(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint, if it has the tokenizer that turns text into its tokens."""
    if checkpoint.tokenizer is None:
        directory = checkpoint.path.parent
        raise UsageError(f"{directory} has no tokenizer.json: cannot turn text into tokens")
    return checkpoint


def sample_command(args: argparse.Namespace) -> None:
    if not args.prompt:
        raise UsageError("--prompt is empty: give the model some text to continue")
    checkpoint = None if args.hf is not None else _checkpoint(args.checkpoint)
    if checkpoint is not None and checkpoint.kind in FINETUNED_KINDS:
        return sample_finetuned(checkpoint, args)
    if args.input is not None:
        raise UsageError("--input is for instruction-tuned models (finetune --task instruct)")
    if args.hf is not None:
        model, tokenizer = load_gpt2(args.hf), load_gpt2_tokenizer(args.hf)
    else:
        checkpoint = _language_model_checkpoint(args.checkpoint, checkpoint)
        model, tokenizer = checkpoint.model, checkpoint.tokenizer
    write_samples(model, tokenizer, args.prompt, args, args.num_samples)


def export_command(args: argparse.Namespace) -> None:
    checkpoint = _language_model_checkpoint(args.checkpoint)
    if checkpoint.kind != "gpt":
        raise UsageError(
            f"{args.checkpoint} holds a {checkpoint.kind}: only a GPT has a GPT-2 layout"
        )
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a directory")
    tokenizer = checkpoint.tokenizer if isinstance(checkpoint.tokenizer, BPETokenizer) else None
    export_gpt2(checkpoint.model, args.out, tokenizer)
    print(f"wrote {describe(checkpoint)} to {args.out} in the GPT-2 layout")
    if tokenizer is None:
        print(
            f"its {type(checkpoint.tokenizer).__name__} has no GPT-2 file format: only the "
            "model was exported (train with --tokenizer bpe to export the tokenizer too)"
        )


def embed_command(args: argparse.Namespace) -> None:
    encoder = load_bert(args.model)
    if args.similarity:
        matrix = encoder.similarity(args.sentences)
        for i, row in enumerate(matrix):
            print(" ".join(f"{value:7.4f}" for value in row) + f"  {args.sentences[i]}")
    else:
        for sentence, vector in zip(args.sentences, encoder.embed(args.sentences)):
            print(
                json.dumps(
                    {"sentence": sentence, "embedding": [round(float(v), 6) for v in vector]}
                )
            )


def eval_command(args: argparse.Namespace) -> None:
    checkpoint = _checkpoint(args.checkpoint)
    if checkpoint.kind in FINETUNED_KINDS:
        return eval_finetuned(checkpoint, args)
    checkpoint = _language_model_checkpoint(args.checkpoint, checkpoint)
    if args.data is not None:
        text = read_text_file(args.data)
        ids = np.array(checkpoint.tokenizer.encode_ordinary(text))
        chars, what = len(text), str(args.data)
    else:
        data = checkpoint.training.get("run_info", {}).get("data")
        corpus = TokenizedCorpus.from_text(load_corpus(data), checkpoint.tokenizer)
        ids, chars, what = corpus.val, corpus.val_chars, "the validation split"
    if len(ids) < 2:
        raise UsageError(f"{what} holds fewer than two tokens: nothing to predict")
    model = checkpoint.model
    total, count = 0.0, 0
    with no_grad():
        for inputs, targets in consecutive_windows(ids, model.config.block_size, args.batch_size):
            total += model(inputs, targets)[1].item() * targets.size
            count += targets.size
    loss = total / count
    print(f"{describe(checkpoint)}")
    print(f"{what}: {count:,} tokens predicted (all but the first), {chars:,} characters")
    print(f"validation loss {loss:.4f} nats per token, {total / chars:.4f} per character; "
          f"perplexity {math.exp(loss):.2f}")  # fmt: skip


# ===================================================================== finetune
# Each task's training recipe (LoRA's adapters start at zero and take a larger lr); any
# training flag overrides one setting.
FINETUNE_TRAINING: dict[str, dict[str, Any]] = {
    "classify": {"steps": 300, "batch_size": 32, "lr": 1e-3, "lora_lr": 5e-3,
                 "warmup_steps": 30, "weight_decay": 0.0, "eval_interval": 100,
                 "eval_batches": 8},
    "instruct": {"steps": 300, "batch_size": 8, "lr": 1e-3, "lora_lr": 5e-3,
                 "warmup_steps": 30, "weight_decay": 0.0, "eval_interval": 100,
                 "eval_batches": 8},
}  # fmt: skip
FINETUNE_CHOICES = (
    "--checkpoint",
    "--task",
    "--pooling",
    "--trainable-blocks",
    "--lora-rank",
    "--lora-alpha",
    "--lora-targets",
)  # what makes a run; --resume keeps its own
ADAPTERS_FILE = "adapters.safetensors"


def _add_finetune_parser(commands: Any) -> None:
    finetune = commands.add_parser(
        "finetune", help="fine-tune a trained GPT: a classifier or an instruction follower",
        description="Fine-tune a GPT trained with `train`: --task classify learns which part "
        "of Python's documentation a passage comes from (against a bag-of-words baseline); "
        "--task instruct learns to answer instructions and stop. The data is made from the "
        "embedded corpus. Full fine-tuning by default; --lora-rank trains low-rank adapters.",
        epilog="default recipes (training flags override them): " + "; ".join(
            f"{task}: " + ", ".join(f"{k} {v}" for k, v in recipe.items())
            for task, recipe in FINETUNE_TRAINING.items()),
    )  # fmt: skip
    finetune.add_argument("--checkpoint", type=Path, metavar="DIR",
                          help="the pretrained GPT (a `train` run)")  # fmt: skip
    finetune.add_argument("--task", choices=TASKS, help="classify or instruct")
    finetune.add_argument("--out", type=Path, required=True, help="the fine-tuning run directory")
    finetune.add_argument("--resume", action="store_true",
                          help="continue the run saved in --out (to --steps)")  # fmt: skip
    finetune.add_argument("--trainable-blocks", type=non_negative_int, metavar="N",
                          help="train only the last N blocks and the final norm (0: only the "
                          "head / new token; with --lora-rank: adapt only the last N blocks); "
                          "default: every weight")  # fmt: skip
    finetune.add_argument("--pooling", choices=POOLINGS,
                          help="classify: the mean of the hidden states (default) or the last "
                          "real token's")  # fmt: skip
    lora = finetune.add_argument_group("LoRA")
    lora.add_argument("--lora-rank", type=positive_int, metavar="R",
                      help="train rank-R adapters instead of the weights")  # fmt: skip
    lora.add_argument(
        "--lora-alpha",
        type=positive_float,
        help="the adapters' scale alpha (update (alpha / R) B A; default 2 R)",
    )
    lora.add_argument(
        "--lora-targets",
        metavar="NAMES",
        help=f"comma-separated layers to adapt (default {','.join(LORA_TARGETS)})",
    )
    finetune.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_settings(finetune, TRAIN_FLAGS, {}, "training")  # defaults: FINETUNE_TRAINING


def plan_finetuning(args: argparse.Namespace) -> dict[str, Any]:
    """Check every argument of `finetune` and decide what to do, before any work."""
    out = args.out
    training = given(args, TRAIN_FLAGS, "training")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    if args.resume:
        fixed = _flags_given(args, *FINETUNE_CHOICES)
        return _plan_resume(args, out, fixed, FINETUNED_KINDS, "fine-tuning")

    for flag in ("--checkpoint", "--task"):
        if not _flags_given(args, flag):
            raise UsageError(f"{flag} is required (or --resume, to continue a run)")
    if (out / CHECKPOINT_FILE).exists():
        raise UsageError(
            f"{out} already holds a run: continue it with --resume, or choose another --out"
        )
    if args.pooling and args.task != "classify":
        raise UsageError("--pooling is for --task classify")
    if args.lora_rank is None and (args.lora_alpha or args.lora_targets):
        raise UsageError("--lora-alpha and --lora-targets need --lora-rank")
    if training.get("processes", 1) > 1:
        raise UsageError("--processes: fine-tuning runs in one process (its examples do not "
                         "weigh equally in the loss, as data parallelism needs)")  # fmt: skip
    recipe = dict(FINETUNE_TRAINING[args.task])
    lora_lr = recipe.pop("lora_lr")
    recipe["lr"] = lora_lr if args.lora_rank else recipe["lr"]
    train_config = _checked(TrainConfig, **{**recipe, **training})
    checkpoint = _checkpoint(args.checkpoint)
    if checkpoint.kind != "gpt":
        raise UsageError(f"{args.checkpoint} holds a {checkpoint.kind} model; finetune starts "
                         f"from a GPT trained with `{PROG} train`")  # fmt: skip
    _with_tokenizer(checkpoint)
    settings: dict[str, Any] = {"trainable_blocks": args.trainable_blocks, "lora": None}
    if args.lora_rank is not None:
        targets = LORA_TARGETS if args.lora_targets is None else args.lora_targets.split(",")
        settings["lora"] = _checked(LoRAConfig, rank=args.lora_rank, targets=tuple(targets),
                                    alpha=args.lora_alpha or 2.0 * args.lora_rank)  # fmt: skip
    if args.pooling:
        settings["pooling"] = args.pooling
    config = GPTClassifierConfig if args.task == "classify" else InstructGPTConfig
    _checked(config, **checkpoint.model.config.to_dict(), **settings)  # rank, blocks: checked
    return {"resume": False, "out": out, "task": args.task, "train_config": train_config,
            "checkpoint": checkpoint, "settings": settings}  # fmt: skip


def finetune_command(args: argparse.Namespace) -> None:
    plan = plan_finetuning(args)
    _keep_freed_memory()
    progress = not args.no_progress
    if plan["resume"]:
        trainer = Trainer.resume(plan["out"], lambda ck: task_for(ck.model, ck.tokenizer),
                                 steps=plan["steps"], progress=progress,
                                 checkpoint=plan["checkpoint"])  # fmt: skip
        print(f"resuming {describe(plan['checkpoint'])} to step {plan['steps']}")
        before = None
    else:
        source, config = plan["checkpoint"], plan["train_config"]
        model, tokenizer = start_finetuning(source.model, source.tokenizer, plan["task"],
                                            rng=config.seed, **plan["settings"])  # fmt: skip
        task = task_for(model, tokenizer)
        print(f"starting from {describe(source)}")
        print(
            f"{type(model).__name__}: {describe_trainable(model)}"
            + (f" (LoRA rank {model.config.lora.rank})" if model.config.lora else "")
        )
        before = _instruct_measures(model, tokenizer, task) if plan["task"] == "instruct" else None
        trainer = Trainer(
            model,
            task,
            config,
            plan["out"],
            tokenizer,
            progress,
            run_info={"task": plan["task"], "pretrained": str(source.path.parent)},
        )
    cfg = trainer.config
    print(f"fine-tuning {cfg.steps - trainer.step} steps of {cfg.batch_size} examples into "
          f"{trainer.out_dir}")  # fmt: skip
    row = run_trainer(trainer, "finetune")
    print(f"step {trainer.step}: validation loss {row['val_loss']:.4f}")
    report_finetuned(trainer.model, trainer.tokenizer, trainer.task, before)
    if trainer.model.config.lora is not None:
        save_adapters(trainer.model, trainer.out_dir / ADAPTERS_FILE)
        print(f"adapters alone: {trainer.out_dir / ADAPTERS_FILE}")
    print(f"\ncheckpoint: {trainer.out_dir}\nloss curve: {trainer.out_dir / PLOT_FILE}")


def _instruct_measures(model: Any, tokenizer: Any, task: InstructionTask) -> dict[str, Any]:
    """Held-out response loss, end-token probability, and a sampled response to the
    held-out instruction with the shortest answer (temperature 0.7, a fixed seed)."""
    pair = min(task.pairs["val"], key=lambda p: len(p.response))
    response = respond(model, tokenizer, model.end_id(tokenizer), pair.instruction, pair.input,
                       temperature=0.7, rng=0)  # fmt: skip
    return {"loss": task.response_loss(model), "end": task.end_probability(model), "pair": pair,
            "response": response}  # fmt: skip


def report_finetuned(model: Any, tokenizer: Any, task: Any, before: Any = None) -> None:
    """Held-out results: accuracy against the baselines, or response loss and a response."""
    if isinstance(task, SectionTask):
        n = len(task.balanced("val"))
        print(
            f"held-out accuracy {task.accuracy(model):.1%} on {n} passages "
            f"({n // task.n_classes} per section: {', '.join(task.labels)}); chance "
            f"{1 / task.n_classes:.1%}, bag-of-words baseline {task.baseline_accuracy():.1%}"
        )
        return
    after = _instruct_measures(model, tokenizer, task)
    was = (lambda key, form: f" (before: {before[key]:{form}})") if before else (lambda *_: "")
    print(f"held-out response loss {after['loss']:.4f} nats per token{was('loss', '.4f')}, on "
          f"{len(task.pairs['val'])} pairs of topics not trained on")  # fmt: skip
    print(f"probability of the end token where a response is over {after['end']:.3f}"
          f"{was('end', '.4f')}")  # fmt: skip
    pair = after["pair"]
    prompt = format_prompt(pair.instruction, pair.input)
    if before:
        print(f"\n--- before (sampled, temperature 0.7) ---\n{prompt}{before['response']}")
    print(
        f"\n--- {'after' if before else 'response'} (sampled, temperature 0.7) ---\n"
        f"{prompt}{after['response']}\n(the documentation says: {pair.response})"
    )


def sample_finetuned(checkpoint: Checkpoint, args: argparse.Namespace) -> None:
    """A classifier labels the prompt; an instruction model answers it in the template."""
    model, tokenizer = checkpoint.model, _with_tokenizer(checkpoint).tokenizer
    if checkpoint.kind == "gpt_classifier":
        if args.input is not None:
            raise UsageError("--input is for instruction-tuned models; this is a classifier")
        ids = tokenizer.encode_ordinary(args.prompt)[-model.config.block_size :]
        with no_grad():
            probs = softmax_array(model(np.array([ids]))[0].data[0])
        print(f"{args.checkpoint} is a classifier: it labels text (the section of Python's "
              f"documentation it reads like) instead of writing it")  # fmt: skip
        for label, p in sorted(zip(model.config.labels, probs), key=lambda lp: -lp[1]):
            print(f"{p:7.1%}  {label}")
        return
    end_id = model.end_id(tokenizer)
    for i in range(args.num_samples):
        response = respond(
            model, tokenizer, end_id, args.prompt, args.input or "", args.max_new_tokens,
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            num_beams=args.num_beams, length_penalty=args.length_penalty,
            rng=args.sample_seed + i, use_cache=not args.no_cache,
        )  # fmt: skip
        header = f"response {i + 1}" if args.num_samples > 1 else "response"
        print(f"\n--- {header} ---\n{format_prompt(args.prompt, args.input or '')}{response}")


def eval_finetuned(checkpoint: Checkpoint, args: argparse.Namespace) -> None:
    if args.data is not None:
        raise UsageError("--data is for language models; a fine-tuned model is evaluated on "
                         "its task's held-out examples")  # fmt: skip
    _with_tokenizer(checkpoint)
    print(describe(checkpoint))
    report_finetuned(checkpoint.model, checkpoint.tokenizer,
                     task_for(checkpoint.model, checkpoint.tokenizer))  # fmt: skip


# ===================================================================== main
COMMANDS = {"train": train_command, "sample": sample_command, "eval": eval_command,
            "export": export_command, "embed": embed_command,
            "finetune": finetune_command}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except UsageError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RunError, ValueError, OSError) as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
