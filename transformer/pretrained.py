"""Real checkpoints in and out: Hugging Face's GPT-2 and BERT layouts.

A published checkpoint is a directory: `config.json` (the model's shape, in the publisher's
names), `model.safetensors` (every weight by name) and the tokenizer's files. The project's
models are made of the same parts under other names; `PUBLISHED_NAMES` maps one to the
other, for loading and for exporting alike. Beyond names, three things differ:

- GPT-2 keeps its linear layers as `Conv1D`, whose weight is (in, out): the transpose of
  `Linear`'s (out, in).
- BERT projects q, k and v with three Linears; the project fuses them into one `qkv` whose
  rows are [q | k | v] (so the three matrices are stacked, in that order).
- GPT-2's output head is its token embedding (`lm_head` tied to `wte`): saved once, or
  twice with equal values.

Loading: `load_gpt2(dir)` -> `GPT`; `load_gpt2_tokenizer(dir)` -> `BPETokenizer`;
`load_bert(dir)` -> `SentenceEncoder` (model, WordPiece tokenizer, `embed`, `similarity`).
Exporting: `export_gpt2(model, dir, tokenizer)` writes what
`transformers.GPT2LMHeadModel.from_pretrained(dir)` reads. A bad checkpoint is a
`CheckpointError` that names the file and the setting or tensor.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as safetensors_save

from minigrad import no_grad
from minigrad.nn import Module
from minigrad.serialization import atomic_write_bytes
from tokenizers import BPETokenizer, WordPieceTokenizer
from tokenizers.bpe_files import gpt2_vocabulary, token_to_text
from tokenizers.patterns import GPT2_PATTERN
from transformer.models import GPT, EncoderConfig, EncoderModel, GPTConfig


class CheckpointError(ValueError):
    """Files that do not describe a model this module can build, or a model that the
    published layout cannot hold."""


# ===================================================================== the name table
LAYOUTS = ("gpt2", "bert")

_BERT_QKV = tuple(f"encoder.layer.{{i}}.attention.self.{n}" for n in ("query", "key", "value"))
PUBLISHED_NAMES: dict[str, tuple[str | tuple[str, ...] | None, ...]] = {
    # the project's module    (GPT-2's: GPT2Model,  BERT's: BertModel); {i}: the block number
    "token_embedding":          ("wte",              "embeddings.word_embeddings"),
    "position":                 ("wpe",              "embeddings.position_embeddings"),
    "segment_embedding":        (None,               "embeddings.token_type_embeddings"),
    "ln_embedding":             (None,               "embeddings.LayerNorm"),
    "blocks.{i}.self_attn.qkv": ("h.{i}.attn.c_attn", _BERT_QKV),  # BERT's q, k, v stacked
    "blocks.{i}.self_attn.out": ("h.{i}.attn.c_proj", "encoder.layer.{i}.attention.output.dense"),
    "blocks.{i}.ln_self_attn":  ("h.{i}.ln_1",   "encoder.layer.{i}.attention.output.LayerNorm"),
    "blocks.{i}.ffn.up":        ("h.{i}.mlp.c_fc",   "encoder.layer.{i}.intermediate.dense"),
    "blocks.{i}.ffn.down":      ("h.{i}.mlp.c_proj", "encoder.layer.{i}.output.dense"),
    "blocks.{i}.ln_ffn":        ("h.{i}.ln_2",       "encoder.layer.{i}.output.LayerNorm"),
    "ln_final":                 ("ln_f",             None),
    "lm_head":                  ("lm_head",          None),  # only when not tied
}  # fmt: skip
"""Where each of the project's modules keeps its weights in each published layout (None:
the layout has no such part). A name gets `.weight` or `.bias` appended; a tuple is several
published tensors stacked into one of the project's."""

GPT2_CONV1D = {"blocks.{i}.self_attn.qkv", "blocks.{i}.self_attn.out", "blocks.{i}.ffn.up",
               "blocks.{i}.ffn.down"}  # fmt: skip
"""GPT-2's Conv1D layers: their weights are stored (in, out), transposed from Linear's."""

BASE_MODEL_PREFIX = {"gpt2": "transformer.", "bert": "bert."}
"""A model with a task head (GPT2LMHeadModel, BertForMaskedLM) saves its base model here."""

IGNORED = {
    "gpt2": re.compile(r"h\.\d+\.attn\.(bias|masked_bias)"),  # the causal mask, as buffers
    "bert": re.compile(r"embeddings\.(position_ids|token_type_ids)|pooler\..*"),
}
"""Tensors of a base model that are not weights of the project's model: read and dropped."""

HF_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",  # GPT-2's name for the tanh approximation
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",  # exact, with erf (BERT)
    "relu": "relu",
}
"""Hugging Face's activation names (`activation_function`, `hidden_act`) -> the project's."""

_BLOCK_NUMBER = re.compile(r"^blocks\.(\d+)\.")


def published_names(key: str, layout: str) -> tuple[tuple[str, ...], bool]:
    """The published tensors that make the project's parameter `key`, and whether they are
    stored transposed: "blocks.3.ffn.up.weight" -> (("h.3.mlp.c_fc.weight",), True)."""
    module, param = key.rsplit(".", 1)
    block = _BLOCK_NUMBER.match(module)
    row = _BLOCK_NUMBER.sub("blocks.{i}.", module)
    names = PUBLISHED_NAMES.get(row, (None,) * len(LAYOUTS))[LAYOUTS.index(layout)]
    if names is None:
        raise CheckpointError(f"the project's '{key}' has no counterpart in the {layout} layout")
    names = (names,) if isinstance(names, str) else names
    i = block.group(1) if block else ""
    transposed = layout == "gpt2" and row in GPT2_CONV1D and param == "weight"
    return tuple(f"{name.format(i=i)}.{param}" for name in names), transposed


# ===================================================================== reading files
def _require_file(directory: Path, name: str) -> Path:
    path = directory / name
    if not path.is_file():
        if not directory.is_dir():
            raise FileNotFoundError(f"checkpoint directory not found: {directory}")
        raise FileNotFoundError(f"{directory} has no {name}")
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or an error that names the file."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} should hold a JSON object, not {type(value).__name__}")
    return value


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor in a safetensors file by name. bfloat16 is refused: NumPy has no such type."""
    tensors = {}
    try:
        with safe_open(path, framework="np") as file:
            for name in file.keys():
                if file.get_slice(name).get_dtype() == "BF16":
                    raise CheckpointError(
                        f"{path}: tensor '{name}' is bfloat16, which NumPy cannot hold; "
                        "save the model in float32 (model.float().save_pretrained(...))"
                    )
                tensors[name] = file.get_tensor(name)
    except SafetensorError as error:
        raise CheckpointError(f"{path} is not a valid safetensors file: {error}") from None
    return tensors


def _base_model(tensors: dict[str, np.ndarray], layout: str) -> dict[str, np.ndarray]:
    """The base model's tensors, with the task head's prefix taken off if the file has one
    (the head's own tensors are left out, except GPT-2's lm_head, which the caller checks)."""
    prefix = BASE_MODEL_PREFIX[layout]
    if not any(name.startswith(prefix) for name in tensors):
        return dict(tensors)
    base = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
    if layout == "gpt2" and "lm_head.weight" in tensors:
        base["lm_head.weight"] = tensors["lm_head.weight"]
    return base


def _take(tensors: dict[str, np.ndarray], name: str, file: Path) -> np.ndarray:
    """Remove and return the float tensor `name` (older BERT files call a LayerNorm's weight
    and bias gamma and beta)."""
    old_name = re.sub(r"LayerNorm\.weight$", "LayerNorm.gamma", name)
    old_name = re.sub(r"LayerNorm\.bias$", "LayerNorm.beta", old_name)
    if name not in tensors and old_name in tensors:
        name = old_name
    if name not in tensors:
        raise CheckpointError(f"{file} has no tensor '{name}'")
    value = tensors.pop(name)
    if value.dtype.kind != "f":
        raise CheckpointError(f"{file}: tensor '{name}' has dtype {value.dtype}, not a float type")
    return value


def load_published_weights(
    model: Module, tensors: dict[str, np.ndarray], layout: str, file: Path
) -> None:
    """Fill every parameter of `model` from the published `tensors` (a dict it empties as it
    reads): the right names, shapes (from config.json) and orientation, in the model's dtype."""
    state = {}
    for key, current in model.state_dict().items():
        names, transposed = published_names(key, layout)
        part = (current.shape[0] // len(names), *current.shape[1:])  # q, k, v stack on axis 0
        expected = part[::-1] if transposed else part
        parts = []
        for name in names:
            value = _take(tensors, name, file)
            if value.shape != expected:
                raise CheckpointError(
                    f"{file}: tensor '{name}' has shape {value.shape}, but config.json makes "
                    f"it {expected}"
                )
            parts.append(value.T if transposed else value)
        state[key] = np.concatenate(parts).astype(current.dtype)  # (out, in), rows [q | k | v]
    model.load_state_dict(state)


def _check_nothing_left(tensors: dict[str, np.ndarray], layout: str, file: Path) -> None:
    unread = sorted(name for name in tensors if not IGNORED[layout].fullmatch(name))
    if unread:
        shown = ", ".join(map(repr, unread[:5])) + (" ..." if len(unread) > 5 else "")
        raise CheckpointError(
            f"{file} has {len(unread)} tensors that config.json gives no place to: {shown}"
        )


def _check_model_type(config: dict[str, Any], expected: str, file: Path) -> None:
    found = config.get("model_type")
    if found != expected:
        raise CheckpointError(
            f"{file}: model_type is {found!r}, but this loader reads '{expected}' checkpoints"
        )


def _activation(config: dict[str, Any], name: str, default: str, file: Path) -> str:
    value = config.get(name, default)
    if value not in HF_ACTIVATIONS:
        raise CheckpointError(
            f"{file}: {name}={value!r} is not supported (one of {sorted(HF_ACTIVATIONS)})"
        )
    return HF_ACTIVATIONS[value]


def _make_config(kind: type, values: dict[str, Any], file: Path) -> Any:
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{file}: {error}") from None


# ===================================================================== GPT-2
def gpt_config_from_gpt2(config: dict[str, Any], file: Path = Path("config.json")) -> GPTConfig:
    """The GPTConfig of a GPT-2 config.json (GPT2Config's defaults for what it leaves out)."""
    _check_model_type(config, "gpt2", file)
    for name, supported in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("add_cross_attention", False),
    ):
        if config.get(name, supported) != supported:
            raise CheckpointError(
                f"{file}: {name}={config[name]!r} is not supported (the project's GPT "
                f"attention needs {name}={supported})"
            )
    values = {
        "vocab_size": config.get("vocab_size", 50257),
        "block_size": config.get("n_positions", 1024),
        "n_layer": config.get("n_layer", 12),
        "n_head": config.get("n_head", 12),
        "n_embd": config.get("n_embd", 768),
        "ffn_hidden": config.get("n_inner", None),
        "dropout": config.get("resid_pdrop", 0.1),
        "activation": _activation(config, "activation_function", "gelu_new", file),
        "layer_norm_eps": config.get("layer_norm_epsilon", 1e-5),
        "tie_weights": config.get("tie_word_embeddings", True),
    }
    return _make_config(GPTConfig, values, file)


def load_gpt2(path: str | os.PathLike, dtype: Any = np.float32) -> GPT:
    """A Hugging Face GPT-2 directory (config.json + model.safetensors) as the project's GPT,
    in eval mode: `logits, _ = load_gpt2(dir)(ids)` gives GPT2LMHeadModel's logits."""
    directory = Path(path)
    config_file = _require_file(directory, "config.json")
    weights_file = _require_file(directory, "model.safetensors")
    config = gpt_config_from_gpt2(read_json(config_file), config_file)
    tensors = _base_model(read_safetensors(weights_file), "gpt2")
    model = GPT(config, rng=0, dtype=dtype)
    load_published_weights(model, tensors, "gpt2", weights_file)
    if config.tie_weights and "lm_head.weight" in tensors:
        head = tensors.pop("lm_head.weight")
        if head.shape != model.token_embedding.weight.shape or not np.array_equal(
            head, model.token_embedding.weight.data
        ):
            raise CheckpointError(
                f"{weights_file}: lm_head.weight differs from wte.weight, but {config_file} "
                "ties them (tie_word_embeddings is true)"
            )
    _check_nothing_left(tensors, "gpt2", weights_file)
    return model.eval()


def load_gpt2_tokenizer(path: str | os.PathLike) -> BPETokenizer:
    """The byte-level BPE tokenizer of a GPT-2 directory: vocab.json + merges.txt, or the
    vocabulary and merges inside tokenizer.json. The split pattern is the one tokenizer.json
    names (as `export_gpt2` writes it), else GPT-2's."""
    directory = Path(path)
    hf_file = directory / "tokenizer.json"
    hf = read_json(hf_file) if hf_file.is_file() else {}
    pattern = _split_pattern(hf.get("pre_tokenizer")) or GPT2_PATTERN
    try:
        if (directory / "vocab.json").is_file():
            merges = _require_file(directory, "merges.txt")
            return BPETokenizer.from_gpt2(directory / "vocab.json", merges, pattern=pattern)
        if not hf:
            _require_file(directory, "vocab.json")
        model = hf.get("model") or {}
        if model.get("type") != "BPE":
            raise CheckpointError(f"{hf_file}: the model is not a BPE tokenizer")
        merges = [m.split(" ") if isinstance(m, str) else m for m in model.get("merges", [])]
        vocab, specials = gpt2_vocabulary(model.get("vocab", {}), merges, str(hf_file))
        specials.update({t["content"]: t["id"] for t in hf.get("added_tokens", [])})
        ranks = {token: idx for idx, token in vocab.items()}
        return BPETokenizer.from_ranks(ranks, pattern, specials)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError) as error:  # TokenizerFileError is a ValueError
        raise CheckpointError(f"{directory}: cannot read the GPT-2 tokenizer: {error}") from None


def _split_pattern(pre_tokenizer: Any) -> str | None:
    """The regex of a `Split` pre-tokenizer in tokenizer.json (also inside a `Sequence`)."""
    if not isinstance(pre_tokenizer, dict):
        return None
    if pre_tokenizer.get("type") == "Sequence":
        patterns = map(_split_pattern, pre_tokenizer.get("pretokenizers", []))
        return next((p for p in patterns if p), None)
    if pre_tokenizer.get("type") == "Split":
        return (pre_tokenizer.get("pattern") or {}).get("Regex")
    return None


EXPORTABLE = {"position": "learned", "norm": "pre", "attention": "full", "n_experts": 0,
              "bias": True}  # fmt: skip
"""The GPTConfig settings GPT-2's architecture fixes."""

END_OF_TEXT = "<|endoftext|>"


def gpt2_config(config: GPTConfig, end_of_text: int | None = None) -> dict[str, Any]:
    """The config.json of a GPT-2 with this shape (GPT2Config's names), or an error naming
    the setting GPT-2 does not have."""
    for name, value in EXPORTABLE.items():
        if getattr(config, name) != value:
            raise CheckpointError(
                f"cannot export as GPT-2: the model has {name}={getattr(config, name)!r}, "
                f"GPT-2 only {name}={value!r}"
            )
    activation = next(hf for hf, ours in HF_ACTIVATIONS.items() if ours == config.activation)
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.ffn_hidden,
        "activation_function": activation,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": config.layer_norm_eps,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": config.tie_weights,
        "bos_token_id": end_of_text,
        "eos_token_id": end_of_text,
        "use_cache": True,
    }


TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json")  # fmt: skip


def export_gpt2(
    model: GPT, directory: str | os.PathLike, tokenizer: BPETokenizer | None = None
) -> Path:
    """Write `model` (and its byte-level BPE `tokenizer`) as a Hugging Face GPT-2 directory:
    config.json, model.safetensors and, with a tokenizer, vocab.json, merges.txt,
    tokenizer.json and tokenizer_config.json. Each file is written atomically; tokenizer files
    left by an earlier export are removed when no tokenizer is given. Returns the directory."""
    if not isinstance(model, GPT):
        raise TypeError(f"export_gpt2 needs a GPT, got {type(model).__name__}")
    if tokenizer is not None and not isinstance(tokenizer, BPETokenizer):
        raise TypeError(
            "GPT-2's tokenizer files hold a byte-level BPETokenizer, "
            f"got {type(tokenizer).__name__}"
        )
    if tokenizer is not None and tokenizer.vocab_size > model.config.vocab_size:
        raise CheckpointError(
            f"the tokenizer has {tokenizer.vocab_size} tokens, more than the model's "
            f"vocab_size={model.config.vocab_size}"
        )
    end_of_text = None if tokenizer is None else tokenizer.special_tokens.get(END_OF_TEXT)
    config = gpt2_config(model.config, end_of_text)
    tensors = {}
    for key, value in model.state_dict().items():
        (name,), transposed = published_names(key, "gpt2")
        prefix = "" if name.startswith("lm_head.") else BASE_MODEL_PREFIX["gpt2"]
        tensors[prefix + name] = np.ascontiguousarray(value.T if transposed else value)
    settings = {} if tokenizer is None else hf_tokenizer_files(tokenizer, model.config.block_size)
    directory = Path(directory)  # everything is checked: now write, config.json last
    atomic_write_bytes(
        directory / "model.safetensors", safetensors_save(tensors, metadata={"format": "pt"})
    )
    if tokenizer is None:
        for name in TOKENIZER_FILES:
            (directory / name).unlink(missing_ok=True)
    else:
        tokenizer.save_gpt2(directory / "vocab.json", directory / "merges.txt")
    for name, value in settings.items():
        _write_json(directory / name, value)
    _write_json(directory / "config.json", config)
    return directory


def _write_json(path: Path, value: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode())


def hf_tokenizer_files(tokenizer: BPETokenizer, max_length: int) -> dict[str, dict[str, Any]]:
    """The JSON files Hugging Face's AutoTokenizer reads beside GPT-2's vocab.json and
    merges.txt: tokenizer.json carries the tokenizer's own split pattern, so that the ids are
    the same whatever the pattern; tokenizer_config.json and special_tokens_map.json."""
    vocab = {token_to_text(token): idx for token, idx in tokenizer.mergeable_ranks.items()}
    vocab.update(tokenizer.special_tokens)
    merges = [
        [token_to_text(tokenizer.token_bytes(left)), token_to_text(tokenizer.token_bytes(right))]
        for left, right in tokenizer.merges
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": False}  # fmt: skip
    splits = []
    if tokenizer.pattern is not None:
        splits.append({"type": "Split", "pattern": {"Regex": tokenizer.pattern},
                       "behavior": "Isolated", "invert": False})  # fmt: skip
    added = [
        {"id": idx, "content": name, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for name, idx in sorted(tokenizer.special_tokens.items(), key=lambda item: item[1])
    ]  # fmt: skip
    hf_tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [*splits, byte_level]},
        "post_processor": None,
        "decoder": {**byte_level, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": True,  # a piece that is a whole token is that token (tiktoken)
            "vocab": vocab, "merges": merges,
        },
    }  # fmt: skip
    specials = {}
    if END_OF_TEXT in tokenizer.special_tokens:
        specials = {"bos_token": END_OF_TEXT, "eos_token": END_OF_TEXT, "unk_token": END_OF_TEXT}
    gpt2_split = tokenizer.pattern == GPT2_PATTERN
    settings = {
        "tokenizer_class": "GPT2Tokenizer" if gpt2_split else "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    return {
        "tokenizer.json": hf_tokenizer,
        "tokenizer_config.json": settings,
        "special_tokens_map.json": specials,
    }


# ===================================================================== BERT
def encoder_config_from_bert(
    config: dict[str, Any], file: Path = Path("config.json")
) -> EncoderConfig:
    """The EncoderConfig of a BERT config.json (BertConfig's defaults for what it leaves out)."""
    _check_model_type(config, "bert", file)
    for name, supported in (("position_embedding_type", "absolute"), ("is_decoder", False)):
        if config.get(name, supported) != supported:
            raise CheckpointError(
                f"{file}: {name}={config[name]!r} is not supported (only {supported!r})"
            )
    values = {
        "vocab_size": config.get("vocab_size", 30522),
        "block_size": config.get("max_position_embeddings", 512),
        "n_layer": config.get("num_hidden_layers", 12),
        "n_head": config.get("num_attention_heads", 12),
        "n_embd": config.get("hidden_size", 768),
        "ffn_hidden": config.get("intermediate_size", 3072),
        "dropout": config.get("hidden_dropout_prob", 0.1),
        "activation": _activation(config, "hidden_act", "gelu", file),
        "type_vocab_size": config.get("type_vocab_size", 2),
        "pad_id": config.get("pad_token_id", 0),
        "layer_norm_eps": config.get("layer_norm_eps", 1e-12),
        "norm": "post",
        "pooling": "mean",
    }
    return _make_config(EncoderConfig, values, file)


def _token_name(settings: dict[str, Any], name: str, default: str) -> str:
    """A special token's text from tokenizer_config.json (older files store an object)."""
    value = settings.get(name) or default
    return value.get("content", default) if isinstance(value, dict) else value


def load_wordpiece(path: str | os.PathLike) -> WordPieceTokenizer:
    """BERT's tokenizer from tokenizer_config.json and vocab.txt (or, where a newer
    `save_pretrained` wrote no vocab.txt, the vocabulary inside tokenizer.json)."""
    directory = Path(path)
    settings_file = _require_file(directory, "tokenizer_config.json")
    settings = read_json(settings_file)
    hf_file = directory / "tokenizer.json"
    hf = read_json(hf_file) if hf_file.is_file() else {}
    normalizer = hf.get("normalizer") or {}
    if not settings.get("tokenize_chinese_chars", normalizer.get("handle_chinese_chars", True)):
        raise CheckpointError(
            f"{settings_file}: tokenize_chinese_chars=false is not supported (the project's "
            "WordPiece always splits CJK ideographs)"
        )
    options = {
        "lowercase": settings.get("do_lower_case", normalizer.get("lowercase", True)),
        "strip_accents": settings.get("strip_accents", normalizer.get("strip_accents")),
        "unk_token": _token_name(settings, "unk_token", "[UNK]"),
        "cls_token": _token_name(settings, "cls_token", "[CLS]"),
        "sep_token": _token_name(settings, "sep_token", "[SEP]"),
    }
    try:
        if (directory / "vocab.txt").is_file() or not hf:
            vocab_file = _require_file(directory, "vocab.txt")
            tokenizer = WordPieceTokenizer.from_vocab(vocab_file, **options)
        else:
            model = hf.get("model") or {}
            if model.get("type") != "WordPiece":
                raise CheckpointError(f"{hf_file}: the model is not a WordPiece tokenizer")
            tokenizer = WordPieceTokenizer(
                model["vocab"],
                continuing_prefix=model.get("continuing_subword_prefix", "##"),
                max_input_chars_per_word=model.get("max_input_chars_per_word", 100),
                **options,
            )
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError) as error:  # TokenizerFileError is a ValueError
        raise CheckpointError(
            f"{directory}: cannot read the WordPiece tokenizer: {error}"
        ) from None
    missing = [t for t in (tokenizer.cls_token, tokenizer.sep_token) if t not in tokenizer.vocab]
    if missing:
        raise CheckpointError(f"{directory}: the vocabulary has no {' or '.join(missing)}")
    return tokenizer


@dataclass
class SentenceEncoder:
    """A BERT-shaped encoder with its tokenizer, turning sentences into unit vectors
    (sentence-transformers' recipe: mean of the last hidden states over the real tokens, then
    L2 normalization), so that the dot product of two embeddings is their cosine similarity.

    `max_length` counts [CLS] and [SEP]; longer inputs are cut, as the reference does.
    """

    model: EncoderModel
    tokenizer: WordPieceTokenizer
    max_length: int
    pad_id: int

    def token_ids(self, sentence: str) -> list[int]:
        """[CLS] sentence [SEP], the sentence cut to fit max_length. Text that spells a special
        token ("[SEP]") is that token, as in Hugging Face's tokenizer."""
        ids = self.tokenizer.encode(sentence, add_special_tokens=False, allowed_special="all")
        cls, sep = (
            self.tokenizer.vocab[self.tokenizer.cls_token],
            self.tokenizer.vocab[self.tokenizer.sep_token],
        )
        return [cls, *ids[: self.max_length - 2], sep]

    def pad(self, rows: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ids as one batch: ids (N, T) padded with pad_id, and real (N, T), True at
        the rows' own tokens."""
        lengths = np.array([len(row) for row in rows])
        ids = np.full((len(rows), lengths.max()), self.pad_id, dtype=np.int64)  # (N, T)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids, np.arange(ids.shape[1]) < lengths[:, None]  # (N, T), (N, T)

    def embed(self, sentences: str | Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length embeddings (N, C) of N sentences, `batch_size` at a time (sorted by
        length, so that a batch pads little; the order of the result is that of the input)."""
        sentences = [sentences] if isinstance(sentences, str) else list(sentences)
        if not all(isinstance(s, str) for s in sentences):
            raise TypeError("embed needs a sentence (str) or a list of sentences")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        rows = [self.token_ids(s) for s in sentences]
        order = np.argsort([-len(row) for row in rows], kind="stable")
        out = np.zeros(
            (len(rows), self.model.config.n_embd), self.model.token_embedding.weight.dtype
        )
        with no_grad():
            for start in range(0, len(rows), batch_size):
                chosen = order[start : start + batch_size]
                ids, real = self.pad([rows[i] for i in chosen])
                pooled = self.model.sentence_embedding(ids, attention_mask=real).data  # (b, C)
                norms = np.linalg.norm(pooled, axis=-1, keepdims=True)
                out[chosen] = pooled / np.maximum(norms, 1e-12)  # as torch's F.normalize
        return out  # (N, C)

    def similarity(self, sentences: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """The cosine similarity of every pair of sentences: (N, N), 1 on the diagonal."""
        embeddings = self.embed(sentences, batch_size)
        return embeddings @ embeddings.T


def load_bert(path: str | os.PathLike, dtype: Any = np.float32) -> SentenceEncoder:
    """A Hugging Face BERT or sentence-transformers directory (config.json, model.safetensors,
    tokenizer_config.json, vocab.txt or tokenizer.json) as a SentenceEncoder in eval mode."""
    directory = Path(path)
    config_file = _require_file(directory, "config.json")
    weights_file = _require_file(directory, "model.safetensors")
    hf_config = read_json(config_file)
    config = encoder_config_from_bert(hf_config, config_file)
    tokenizer = load_wordpiece(directory)
    if tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"{directory}: the tokenizer has {tokenizer.vocab_size} tokens, more than "
            f"config.json's vocab_size={config.vocab_size}"
        )
    pooling_file = directory / "1_Pooling" / "config.json"
    if pooling_file.is_file() and not read_json(pooling_file).get("pooling_mode_mean_tokens"):
        raise CheckpointError(f"{pooling_file}: only mean pooling is supported")
    tensors = _base_model(read_safetensors(weights_file), "bert")
    model = EncoderModel(config, rng=0, dtype=dtype)
    load_published_weights(model, tensors, "bert", weights_file)
    _check_nothing_left(tensors, "bert", weights_file)
    max_length = config.block_size
    sentence_config = directory / "sentence_bert_config.json"
    if sentence_config.is_file():
        max_length = min(max_length, read_json(sentence_config).get("max_seq_length", max_length))
    return SentenceEncoder(model.eval(), tokenizer, max_length, config.pad_id)
