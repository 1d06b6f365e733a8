"""Checkpoints: a model and everything needed to continue training it, in one atomic file.

A checkpoint is a directory:

    checkpoint.safetensors   the weights ("model/..."), the optimizer's moment arrays
                             ("optimizer/<i>/<name>"), and in the metadata a JSON object: the
                             model's kind and config, the step, the optimizer's scalars and
                             hyper-parameters, the schedule, every random generator's state
                             and the training settings
    tokenizer.json           the tokenizer, written once when the run starts

The one file is written atomically (a temporary file, flushed, renamed over the old one), so
a crash during a save leaves the previous checkpoint whole: the weights, the optimizer and
the step always belong together. Nothing is pickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import load, save
from minigrad.nn import Module
from minigrad.optim import Optimizer
from tokenizers import Tokenizer
from transformer.baselines import (
    ConvConfig,
    ConvLanguageModel,
    GRULanguageModel,
    LSTMLanguageModel,
    RecurrentConfig,
    RNNLanguageModel,
)
from transformer.finetune import GPTClassifier, GPTClassifierConfig, InstructGPT, InstructGPTConfig
from transformer.models import (
    GPT,
    EncoderConfig,
    EncoderDecoder,
    EncoderDecoderConfig,
    EncoderModel,
    GPTConfig,
)

CHECKPOINT_FILE = "checkpoint.safetensors"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "numpy-llm-workshop checkpoint"
FORMAT_VERSION = 1

MODEL_KINDS: dict[str, tuple[type, type]] = {
    "gpt": (GPTConfig, GPT),
    "encoder": (EncoderConfig, EncoderModel),
    "encoder_decoder": (EncoderDecoderConfig, EncoderDecoder),
    "rnn": (RecurrentConfig, RNNLanguageModel),
    "lstm": (RecurrentConfig, LSTMLanguageModel),
    "gru": (RecurrentConfig, GRULanguageModel),
    "cnn": (ConvConfig, ConvLanguageModel),
    "gpt_classifier": (GPTClassifierConfig, GPTClassifier),  # LoRA adapters saved unmerged
    "gpt_instruct": (InstructGPTConfig, InstructGPT),
}


def model_kind(model: Module) -> str:
    """The name a checkpoint stores for `model`'s class ("gpt", "encoder", ...)."""
    for kind, (_, model_class) in MODEL_KINDS.items():
        if type(model) is model_class:
            return kind
    raise TypeError(f"cannot checkpoint a {type(model).__name__}: not one of the project's models")


def build_model(kind: str, config: dict[str, Any], rng: Any = None) -> Module:
    """A fresh model of `kind` from its config as a dict (as a checkpoint stores it)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}")
    config_class, model_class = MODEL_KINDS[kind]
    return model_class(config_class.from_dict(config), rng=rng)


def generators_of(model: Module) -> list[np.random.Generator]:
    """The distinct random generators the model's layers draw from (dropout), in module
    order: their states are part of an exact resume."""
    found: dict[int, np.random.Generator] = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, np.random.Generator):
                found.setdefault(id(value), value)
    return list(found.values())


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns: the model (in eval mode), its tokenizer (None if the
    directory has none), the step, and what a resumed run needs in `training`."""

    model: Module
    kind: str
    tokenizer: Tokenizer | None
    step: int
    path: Path
    training: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None

    def restore_generators(self) -> None:
        """Put the model's dropout generators back in the state they had when saved."""
        states = self.training.get("model_generators", [])
        generators = generators_of(self.model)
        if len(states) != len(generators):
            raise ValueError(
                f"{self.path}: {len(states)} saved generator states for a model with "
                f"{len(generators)} generators"
            )
        for generator, state in zip(generators, states):
            generator.bit_generator.state = state


def checkpoint_path(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_FILE


def save_checkpoint(
    directory: str | Path,
    model: Module,
    step: int,
    optimizer: Optimizer | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write `directory`/checkpoint.safetensors atomically; returns its path.

    `training` is any JSON-able dict (schedule, data generator, settings); the model's
    generator states are added to it.
    """
    arrays = {f"model/{name}": value for name, value in model.state_dict().items()}
    optimizer_meta = None
    if optimizer is not None:
        saved = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, state in saved["state"].items():
            for name, value in state.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optimizer/{index}/{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = value
        optimizer_meta = {"param_groups": saved["param_groups"], "scalars": scalars}
    training = dict(training or {})
    training["model_generators"] = [g.bit_generator.state for g in generators_of(model)]
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": model_kind(model),
        "model_config": model.config.to_dict(),
        "step": int(step),
        "optimizer": optimizer_meta,
        "training": training,
    }
    path = checkpoint_path(directory)
    save(arrays, path, config=metadata)
    return path


def save_tokenizer(directory: str | Path, tokenizer: Tokenizer) -> None:
    """Write the run's tokenizer beside its checkpoint (atomically, as JSON)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    tokenizer.save(Path(directory) / TOKENIZER_FILE)


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read a checkpoint directory; a missing, corrupted or foreign file is a ValueError
    that names it."""
    directory = Path(directory)
    path = checkpoint_path(directory)
    if not directory.is_dir():
        raise ValueError(f"no checkpoint directory at {directory}")
    if not path.is_file():
        raise ValueError(f"{directory} holds no checkpoint (expected {path.name} in it)")
    try:
        arrays, metadata = load(path)
    except ValueError as error:
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not a checkpoint of this project")
    kind, step = metadata.get("kind"), metadata.get("step")
    try:
        model = build_model(kind, metadata["model_config"])
        weights = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
        model.load_state_dict(weights)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: the model does not load: {error}") from None
    model.eval()
    tokenizer = None
    if (directory / TOKENIZER_FILE).is_file():
        tokenizer = Tokenizer.load(directory / TOKENIZER_FILE)
    optimizer_state = None
    if metadata.get("optimizer") is not None:
        optimizer_state = _optimizer_state(metadata["optimizer"], arrays)
    return Checkpoint(model, kind, tokenizer, int(step), path,
                      metadata.get("training") or {}, optimizer_state)  # fmt: skip


def _optimizer_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The optimizer's `state_dict()` again, from the metadata and the "optimizer/" arrays."""
    state: dict[int, dict[str, Any]] = {}
    for index, scalars in meta["scalars"].items():
        state.setdefault(int(index), {}).update(scalars)
    for key, value in arrays.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in meta["param_groups"]]
    return {"param_groups": groups, "state": state}


def describe(checkpoint: Checkpoint) -> str:
    """One line for people: kind, size, step, where."""
    return (
        f"{checkpoint.kind} with {checkpoint.model.num_parameters():,} parameters at step "
        f"{checkpoint.step} ({checkpoint.path.parent})"
    )
