"""Fine-tuning: a pretrained GPT becomes a classifier or an instruction follower.

A base model predicts the next token. Fine-tuning keeps what it learned and trains it a
little further on a narrower goal. Read top to bottom:

1. What trains. Every parameter has `requires_grad`; a frozen one gets no gradient and the
   optimizer skips it. `trainable_blocks` picks the part of a pretrained body that learns:
   all of it (None), its last n blocks and final layer norm (n), or none (0).
2. LoRA. Instead of changing a weight W (out, in), learn a low-rank change to it:
   y = x W^T + b + (alpha / r) x A^T B^T, with A (r, in) random and B (out, r) zero, so
   training starts from the base model exactly and only r (in + out) numbers per layer
   learn. `merge()` folds (alpha / r) B A into W; adapters are saved on their own.
3. Classification. `GPTClassifier` puts a head on a GPT's hidden state at the last real
   token (or on their mean over the padding mask); `encoder_classifier` does the same for
   the BERT-shaped encoder ([CLS] or mean pooling). The task, `SectionTask`, is made in code
   from the embedded corpus: which part of Python's documentation a passage comes from.
   `BagOfWords`, a logistic regression on word counts, is the baseline to beat.
4. Instruction tuning. Pairs (instruction, input, response) written in a small template;
   the loss counts the response tokens only (the prompt's targets are -1, the
   cross-entropy's ignore_index); every response ends with an end token, which generation
   stops at. A character tokenizer has no such token: `InstructGPT` adds one to the
   tokenizer and one row to the embedding (section 4 explains why that row must train).

Both fine-tuned models have config dataclasses (fields of GPTConfig plus their own), so a
checkpoint stores them like any model; LoRA models are saved with their adapters unmerged,
so a run resumes exactly and `merge_lora` stays a choice made at the end.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import Tensor, concatenate, load, no_grad, save
from minigrad import functional as F
from minigrad.nn import Embedding, Linear, Module, Parameter, RngLike, make_rng
from minigrad.optim import Adam
from tokenizers import Tokenizer
from transformer.generation import generate
from transformer.models import (
    GPT,
    IGNORE_INDEX,
    EncoderModel,
    GPTConfig,
    _Config,
    check_ids,
    check_targets,
    mean_pool,
)

LORA_TARGETS = ("qkv", "out", "up", "down")  # attention in / out, FFN up / down
POOLINGS = ("last", "mean")
END_TOKEN = "<|endoftext|>"


# ===================================================================== 1. what trains
def trainable_parameters(model: Module) -> int:
    """How many numbers the optimizer will change: the parameters with requires_grad."""
    return sum(p.size for p in model.parameters() if p.requires_grad)


def describe_trainable(model: Module) -> str:
    """'12,288 of 812,000 parameters train (1.5%)'."""
    trained, total = trainable_parameters(model), model.num_parameters()
    return f"{trained:,} of {total:,} parameters train ({100 * trained / total:.1f}%)"


def freeze(body: Module, trainable_blocks: int | None) -> None:
    """Set which weights of a pretrained `body` (a GPT or encoder, with `blocks`) train:
    None: every one; n: the last n blocks and the final layer norm; 0: none of them."""
    n_blocks = len(body.blocks)
    if trainable_blocks is not None and not 0 <= trainable_blocks <= n_blocks:
        raise ValueError(f"trainable_blocks must be in [0, {n_blocks}], got {trainable_blocks}")
    for p in body.parameters():
        p.requires_grad = trainable_blocks is None
    if trainable_blocks:
        last = [*list(body.blocks)[n_blocks - trainable_blocks :], getattr(body, "ln_final", None)]
        for module in filter(None, last):
            for p in module.parameters():
                p.requires_grad = True


# ===================================================================== 2. LoRA
@dataclass
class LoRAConfig(_Config):
    """Low-rank adapters (Hu et al. 2021): the rank r, the scale alpha (the update is
    (alpha / r) B A, so changing r keeps its size) and which Linear layers get one, by name:
    "qkv" and "out" in attention, "up" and "down" in the FFN."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = LORA_TARGETS

    def __post_init__(self) -> None:
        self._positive("rank")
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha < math.inf):
            raise ValueError(f"lora alpha must be a positive number, got {self.alpha!r}")
        self.targets = tuple(self.targets)
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if not self.targets or unknown or len(set(self.targets)) < len(self.targets):
            raise ValueError(
                f"lora targets must be distinct names from {', '.join(LORA_TARGETS)}, got "
                f"{','.join(self.targets) or 'none'}"
            )


class LoRALinear(Linear):
    """A Linear with a low-rank adapter:  y = x W^T + b + (alpha / r) (x A^T) B^T.

    x (..., in) -> (..., out). W (out, in) and b are the base layer's own parameters (shared,
    frozen); A (r, in) starts uniform in +-1/sqrt(in), B (out, r) at zero, so at first the
    layer is exactly the base layer, and only B gets a gradient at the first step: with
    g = dL/dy and s = alpha / r, dL/dB = s g^T (x A^T) and dL/dA = s (g B)^T x, which is 0
    while B is (the engine derives both). Only A and B train.
    """

    def __init__(self, base: Linear, rank: int, alpha: float, rng: RngLike = None) -> None:
        Module.__init__(self)  # not Linear.__init__: the weights are the base layer's
        width = min(base.in_features, base.out_features)
        if not 1 <= rank <= width:
            raise ValueError(
                f"LoRA rank {rank} does not fit a Linear({base.in_features}, "
                f"{base.out_features}): B A has rank at most {width}"
            )
        rng = make_rng(rng)
        dtype = base.weight.dtype
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        for p in (self.weight, self.bias):
            if p is not None:
                p.requires_grad = False
        bound = 1 / math.sqrt(self.in_features)
        self.lora_A = Parameter(rng.uniform(-bound, bound, (rank, self.in_features)).astype(dtype))
        self.lora_B = Parameter(np.zeros((self.out_features, rank), dtype=dtype))
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank

    def forward(self, x: Tensor) -> Tensor:
        low_rank = F.linear(F.linear(x, self.lora_A), self.lora_B)  # (..., r) -> (..., out)
        return super().forward(x) + low_rank * self.scale

    def merge(self) -> Linear:
        """The plain Linear with weight W + (alpha / r) B A: the same outputs, one matmul."""
        dtype = self.weight.dtype
        merged = Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        dtype=dtype)  # fmt: skip
        update = self.lora_B.data @ self.lora_A.data  # (out, in), rank r
        merged.weight.data[...] = self.weight.data + self.scale * update
        if self.bias is not None:
            merged.bias.data[...] = self.bias.data
        return merged

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha}"


def _named_linears(modules: Iterable[tuple[str, Module]], targets: Sequence[str]) -> list:
    """(qualified name, parent, attribute) of every Linear child named one of `targets`."""
    found = []
    for prefix, parent in modules:
        for name, child in parent._modules.items():
            if name in targets and type(child) is Linear:
                found.append((f"{prefix}.{name}" if prefix else name, parent, name))
    return found


def apply_lora(
    model: Module, config: LoRAConfig, rng: RngLike = None, blocks: Sequence[Module] | None = None
) -> list[str]:
    """Replace the target Linears of `model` (inside `blocks` only, if given) by LoRALinear
    layers, in place; returns their names. Checks every layer before changing any."""
    rng = make_rng(rng)
    if blocks is None:
        walked = list(model.named_modules())
    else:
        names = {id(m): n for n, m in model.named_modules()}
        walked = [(f"{names[id(b)]}.{n}" if n else names[id(b)], m)
                  for b in blocks for n, m in b.named_modules()]  # fmt: skip
    found = _named_linears(walked, config.targets)
    missing = [t for t in config.targets if not any(attr == t for _, _, attr in found)]
    if missing:
        raise ValueError(
            f"the model has no Linear layer named {', '.join(map(repr, missing))} to adapt "
            f"(a mixture of experts has no 'up' / 'down' Linear)"
        )
    for name, parent, attr in found:
        layer = getattr(parent, attr)
        if config.rank > min(layer.in_features, layer.out_features):
            raise ValueError(
                f"LoRA rank {config.rank} is larger than the width of {name}, a "
                f"Linear({layer.in_features}, {layer.out_features})"
            )
    for _, parent, attr in found:
        setattr(parent, attr, LoRALinear(getattr(parent, attr), config.rank, config.alpha, rng))
    return [name for name, _, _ in found]


def merge_lora(model: Module) -> Module:
    """Replace every LoRALinear of `model` by its merged Linear, in place, and drop the
    LoRA setting from the model's config; returns the model (now a plain one)."""
    for _, parent in list(model.named_modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merge())
    if dataclasses.is_dataclass(getattr(model, "config", None)) and hasattr(model.config, "lora"):
        model.config = dataclasses.replace(model.config, lora=None)
    return model


ADAPTERS_FORMAT = "numpy-llm-workshop adapters"


def adapter_parameters(model: Module) -> dict[str, Parameter]:
    """What fine-tuning with LoRA changes: the A and B matrices, and every other parameter
    that trains beside them (a new head, new token rows), by name."""
    lora = [n for n, _ in model.named_parameters() if n.rsplit(".", 1)[-1] in ("lora_A", "lora_B")]
    if not lora:
        raise ValueError(f"this {type(model).__name__} has no LoRA adapters")
    return {n: p for n, p in model.named_parameters() if p.requires_grad or n in lora}


def save_adapters(model: Module, path: str | Path) -> None:
    """Write the adapters (see `adapter_parameters`) as safetensors, atomically; with the
    base model they give the fine-tuned one, in a small fraction of its size."""
    lora = getattr(model.config, "lora", None)
    config = {"format": ADAPTERS_FORMAT, "lora": None if lora is None else lora.to_dict()}
    save(adapter_parameters(model), path, config=config)


def load_adapters(model: Module, path: str | Path) -> None:
    """Copy adapters saved by `save_adapters` into `model`, which must have the same
    adapters (names and shapes); a mismatch is a ValueError naming the file."""
    arrays, config = load(path)
    if config.get("format") != ADAPTERS_FORMAT:
        raise ValueError(f"{path} is not an adapters file of this project")
    expected = adapter_parameters(model)
    if set(arrays) != set(expected):
        absent, foreign = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
        raise ValueError(f"{path} does not fit this model: missing {absent}, unexpected {foreign}")
    for name, p in expected.items():
        if arrays[name].shape != p.shape:
            raise ValueError(f"{path}: '{name}' has shape {arrays[name].shape}, not {p.shape}")
    for name, p in expected.items():
        p.data[...] = arrays[name]


# ===================================================================== fine-tuned configs
@dataclass
class FineTunedGPTConfig(GPTConfig):
    """A GPT's config and how it is fine-tuned: `trainable_blocks` (see `freeze`) and
    `lora` (None: the chosen weights themselves train; a LoRAConfig: only adapters on the
    chosen blocks train). The model rebuilt from its config has the same parameters frozen,
    so a saved run resumes as it was."""

    trainable_blocks: int | None = None
    lora: LoRAConfig | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.lora, dict):
            self.lora = LoRAConfig.from_dict(self.lora)
        n = self.trainable_blocks
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or
                              not 0 <= n <= self.n_layer):  # fmt: skip
            raise ValueError(f"trainable_blocks must be in [0, n_layer={self.n_layer}], got {n!r}")
        if self.lora is not None:
            self._check_lora()

    def _check_lora(self) -> None:
        if self.trainable_blocks == 0:
            raise ValueError("LoRA with trainable_blocks=0 adapts no block")
        if self.n_experts and {"up", "down"} & set(self.lora.targets):
            raise ValueError("a mixture of experts has no 'up' / 'down' Linear: adapt qkv, out")
        hidden = self.ffn_hidden or 4 * self.n_embd
        shapes = {"qkv": (self.n_embd, 3 * self.n_embd), "out": (self.n_embd, self.n_embd),
                  "up": (self.n_embd, hidden), "down": (hidden, self.n_embd)}  # fmt: skip
        for target in self.lora.targets:
            n_in, n_out = shapes[target]
            if self.lora.rank > min(n_in, n_out):
                raise ValueError(
                    f"LoRA rank {self.lora.rank} is larger than the width of the '{target}' "
                    f"layers, Linear({n_in}, {n_out}): B A has rank at most {min(n_in, n_out)}"
                )

    def base(self, **changes: Any) -> GPTConfig:
        """The pretrained GPT's own config (with `changes`)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(GPTConfig)}
        return GPTConfig(**{**values, **changes})


def _prepare_body(body: GPT, config: FineTunedGPTConfig, rng: np.random.Generator) -> None:
    """Freeze the pretrained body as the config says and add its adapters."""
    n = config.trainable_blocks
    if config.lora is None:
        freeze(body, n)
        return
    freeze(body, 0)
    blocks = list(body.blocks)
    apply_lora(body, config.lora, rng, blocks=blocks[len(blocks) - (n or len(blocks)) :])


def _load_pretrained(model: Module, state: dict[str, np.ndarray], new: Iterable[str]) -> None:
    """Load a pretrained state dict into `model`; only the parameters named in `new` (or
    LoRA's) may be missing from it."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed = set(new)
    missing = [k for k in missing if k not in allowed and not k.endswith(("lora_A", "lora_B"))]
    if missing or unexpected:
        raise ValueError(f"the pretrained weights do not fit: missing {missing}, "
                         f"unexpected {unexpected}")  # fmt: skip


# ===================================================================== 3. classification
@dataclass
class GPTClassifierConfig(FineTunedGPTConfig):
    """A GPT with a classification head: `n_classes` outputs (named by `labels`), read
    from the mean of the hidden states of the real tokens ("mean", which measured better on
    SectionTask) or from the last real token's ("last")."""

    n_classes: int = 2
    pooling: str = "mean"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("n_classes")
        self._one_of("pooling", POOLINGS)
        self.labels = tuple(self.labels)
        if self.labels and len(self.labels) != self.n_classes:
            raise ValueError(f"{len(self.labels)} labels for n_classes={self.n_classes}")


def last_positions(real: np.ndarray) -> np.ndarray:
    """The index of each row's last real token, for right padding (real (B, T) bool: True
    on a prefix of each row), which a causal model's real tokens never see."""
    lengths = real.sum(axis=1)  # (B,)
    if (lengths == 0).any() or (real != (np.arange(real.shape[1]) < lengths[:, None])).any():
        raise ValueError("attention_mask must mark a non-empty prefix of each row as real "
                         "(right padding)")  # fmt: skip
    return lengths - 1


class GPTClassifier(Module):
    """ids (B, T) -> class logits (B, n_classes):  GPT hidden states -> pooling -> head.

    `gpt` is the whole pretrained GPT (its LM head included, so how much language modelling
    it forgets can be measured); `head` is Linear(C, n_classes). With "last" pooling the
    head reads the last real token's state: in a causal model only that position has seen
    the whole text. `logits, loss = model(ids, targets, attention_mask=mask)`.
    """

    def __init__(
        self, config: GPTClassifierConfig, rng: RngLike = None, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        if not isinstance(config, GPTClassifierConfig):
            raise TypeError(f"GPTClassifier needs a GPTClassifierConfig, got {type(config)}")
        rng = make_rng(rng)
        self.config = config
        self.gpt = GPT(config.base(), rng=rng, dtype=dtype)
        self.head = Linear(config.n_embd, config.n_classes, rng=rng, dtype=dtype)
        self.head.weight.data[...] = rng.normal(0.0, 0.02, self.head.weight.shape)
        self.head.bias.data[...] = 0
        _prepare_body(self.gpt, config, rng)

    @classmethod
    def from_gpt(cls, gpt: GPT, n_classes: int, rng: RngLike = None, **settings: Any) -> Any:
        """A classifier on a pretrained GPT's weights, with a new head; `settings` are the
        config's (pooling, labels, trainable_blocks, lora)."""
        config = GPTClassifierConfig(**gpt.config.to_dict(), n_classes=n_classes, **settings)
        model = cls(config, rng=rng, dtype=gpt.token_embedding.weight.dtype)
        _load_pretrained(model.gpt, gpt.state_dict(), new=())
        return model

    def forward(
        self, ids: Any, targets: Any = None, attention_mask: Any = None
    ) -> tuple[Tensor, Tensor | None]:
        ids = check_ids(ids, self.config.vocab_size)
        if attention_mask is None:
            real = np.ones(ids.shape, dtype=bool)
        else:
            real = np.asarray(attention_mask).astype(bool)
            if real.shape != ids.shape:
                raise ValueError(f"attention_mask must have the ids' shape {ids.shape}, "
                                 f"got {real.shape}")  # fmt: skip
        hidden = self.gpt.hidden_states(ids)  # (B, T, C)
        if self.config.pooling == "last":
            pooled = hidden[np.arange(len(ids)), last_positions(real)]  # (B, C)
        else:
            pooled = mean_pool(hidden, real)  # (B, C)
        logits = self.head(pooled)  # (B, n_classes)
        if targets is None:
            return logits, None
        targets = check_targets(targets, (len(ids),), self.config.n_classes)
        return logits, F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)


def encoder_classifier(
    encoder: EncoderModel, n_classes: int, pooling: str = "cls",
    trainable_blocks: int | None = None, rng: RngLike = None,
) -> EncoderModel:  # fmt: skip
    """The encoder with a new classification head of `n_classes` on [CLS] or on the mean
    of the real tokens (its own weights copied), its body frozen as `freeze` says."""
    rng = make_rng(rng)
    config = dataclasses.replace(encoder.config, n_classes=n_classes, pooling=pooling)
    model = EncoderModel(config, rng=rng, dtype=encoder.token_embedding.weight.dtype)
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("classifier.")}
    _load_pretrained(model, state, new=("classifier.weight", "classifier.bias"))
    freeze(model, trainable_blocks)
    for p in model.classifier.parameters():
        p.requires_grad = True
    return model


# ---------------------------------------------------------------- the task: which section?
# The chapter of Python's documentation each help topic comes from (the Language Reference's
# statements, expressions and data model chapters, and the Library's "Built-in Types").
# Topics of other chapters (lexical analysis, execution model, pdb, format strings) are left
# out; a topic a Python version lacks is skipped.
SECTIONS: dict[str, tuple[str, ...]] = {
    "statements": (
        "assert", "assignment", "augassign", "break", "continue", "del", "global", "import",
        "nonlocal", "pass", "raise", "return", "yield", "compound", "if", "else", "while",
        "for", "try", "with", "function", "class", "async",
    ),
    "expressions": (
        "atom-identifiers", "atom-literals", "attribute-references", "await", "binary",
        "bitwise", "booleans", "calls", "comparisons", "conversions", "dict", "exprlists",
        "in", "lambda", "lists", "operator-summary", "power", "shifting", "slicings",
        "subscriptions", "unary",
    ),
    "data model": (
        "objects", "types", "specialnames", "customization", "attribute-access",
        "callable-types", "numeric-types", "sequence-types", "context-managers",
    ),
    "built-in types": (
        "truth", "typesseq", "typesseq-mutable", "string-methods", "typesmapping",
        "typesmethods", "typesmodules", "typesfunctions", "bltin-code-objects",
        "bltin-type-objects", "bltin-null-object", "bltin-ellipsis-object", "specialattrs",
    ),
}  # fmt: skip


def documentation_topics() -> dict[str, str]:
    """Python's help topics, topic -> text: the pieces the default corpus is joined from."""
    from pydoc_data.topics import topics

    return dict(topics)


def paragraphs(text: str) -> list[str]:
    """The blank-line separated paragraphs of a topic, without titles and their underlines."""
    found = []
    for block in text.split("\n\n"):
        lines = [line for line in block.strip("\n").split("\n") if line.strip()]
        if lines and not re.fullmatch(r"[*=\-~^]+", lines[-1].strip()):
            found.append("\n".join(lines))
    return found


def cut(text: str, max_chars: int, min_chars: int) -> list[str]:
    """`text` in consecutive pieces of at most `max_chars`, cut at spaces where possible;
    pieces shorter than `min_chars` are dropped."""
    pieces = []
    while text:
        piece = text[:max_chars]
        if len(text) > max_chars and " " in piece[min_chars:]:
            piece = piece[: piece.rindex(" ")]
        text = text[len(piece) :].lstrip()
        if len(piece.strip()) >= min_chars:
            pieces.append(piece.strip())
    return pieces


def section_examples(
    max_chars: int, val_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[tuple[str, int]]]:
    """(passage, section) pairs for "train" and "val": the paragraphs of the topics of
    SECTIONS, cut in passages of at most `max_chars`. Whole paragraphs go to one split; a
    passage is kept once (in "val" if it is there at all), and one found under two sections
    is dropped, so no text is in both splits or has two answers."""
    topics = documentation_topics()
    section_of: dict[str, int] = {}
    for label, names in enumerate(SECTIONS.values()):
        for name in names:
            for paragraph in paragraphs(topics.get(name, "")):
                section_of.setdefault(paragraph, label)
    kept = list(section_of.items())
    order = np.random.default_rng(seed).permutation(len(kept))
    n_val = int(round(len(kept) * val_fraction))
    passages: dict[str, dict[str, int]] = {}
    labels: dict[str, set[int]] = {}
    for split, index in (("val", order[:n_val]), ("train", order[n_val:])):
        passages[split] = {}
        for i in sorted(index):
            paragraph, label = kept[i]
            for piece in cut(paragraph, max_chars, max_chars // 4):
                labels.setdefault(piece, set()).add(label)
                if piece not in passages["val"]:
                    passages[split].setdefault(piece, label)
    return {
        split: [(piece, label) for piece, label in found.items() if len(labels[piece]) == 1]
        for split, found in passages.items()
    }


def pad_right(rows: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ids as one (B, T) array padded at the end, and the mask (B, T), True = real."""
    T = max(len(r) for r in rows)
    ids = np.full((len(rows), T), pad_id, dtype=np.int64)
    real = np.zeros((len(rows), T), dtype=bool)
    for b, row in enumerate(rows):
        ids[b, : len(row)], real[b, : len(row)] = row, True
    return ids, real


class SectionTask:
    """Which part of Python's documentation a passage comes from: statements, expressions,
    the data model or the built-in types (`SECTIONS`), from passages of at most
    `block_size` tokens (the [CLS] token `cls_id` first, for an encoder).

    Training batches draw the class first, then a passage, so the classes are balanced;
    `accuracy` is measured on an equal number of held-out passages per class, so chance is
    1 / n_classes. A batch is (ids (B, T) right-padded, mask (B, T), labels (B,)).
    """

    labels = tuple(SECTIONS)
    n_classes = len(SECTIONS)

    def __init__(
        self, tokenizer: Tokenizer, block_size: int, cls_id: int | None = None, seed: int = 0
    ) -> None:
        self.tokenizer, self.cls_id = tokenizer, cls_id
        room = block_size - (cls_id is not None)
        if room < 8:
            raise ValueError(f"block_size={block_size} is too short for a passage")
        self.texts, self.ids, self.targets = {}, {}, {}
        for split, examples in section_examples(room, seed=seed).items():
            self.texts[split] = [text for text, _ in examples]
            self.ids[split] = [self.encode(text)[:block_size] for text in self.texts[split]]
            self.targets[split] = np.array([label for _, label in examples])
        self.by_class = {
            split: [np.flatnonzero(self.targets[split] == k) for k in range(self.n_classes)]
            for split in self.ids
        }

    def encode(self, text: str) -> list[int]:
        prefix = [] if self.cls_id is None else [self.cls_id]
        return prefix + self.tokenizer.encode_ordinary(text)

    def collate(self, split: str, index: Sequence[int]) -> tuple:
        ids, real = pad_right([self.ids[split][i] for i in index])
        return ids, real, self.targets[split][np.asarray(index, dtype=np.int64)]

    def batch(self, split: str, batch_size: int, rng: np.random.Generator) -> tuple:
        classes = rng.integers(self.n_classes, size=batch_size)
        index = [rng.choice(self.by_class[split][k]) for k in classes]
        return self.collate(split, index)

    def loss(self, model: Any, batch: tuple) -> Tensor:
        ids, real, labels = batch
        return model(ids, labels, attention_mask=real)[1]

    def tokens(self, batch: tuple) -> int:
        return int(batch[1].sum())

    def balanced(self, split: str = "val") -> np.ndarray:
        """The same number of passages of each class (the rarest class's count)."""
        n = min(len(members) for members in self.by_class[split])
        return np.concatenate([members[:n] for members in self.by_class[split]])

    def predict(self, model: Module, split: str = "val", batch_size: int = 64) -> np.ndarray:
        """The predicted class of every passage of `balanced(split)`."""
        was_training = model.training
        model.eval()
        index, predicted = self.balanced(split), []
        with no_grad():
            for start in range(0, len(index), batch_size):
                ids, real, _ = self.collate(split, index[start : start + batch_size])
                predicted.append(model(ids, attention_mask=real)[0].data.argmax(axis=-1))
        model.train(was_training)
        return np.concatenate(predicted)

    def accuracy(self, model: Module, split: str = "val") -> float:
        truth = self.targets[split][self.balanced(split)]
        return float((self.predict(model, split) == truth).mean())

    def baseline_accuracy(self, split: str = "val") -> float:
        """The accuracy of a bag-of-words logistic regression trained on the training split."""
        baseline = BagOfWords(self.n_classes).fit(self.texts["train"], self.targets["train"])
        index = self.balanced(split)
        predicted = baseline.predict([self.texts[split][i] for i in index])
        return float((predicted == self.targets[split][index]).mean())


class BagOfWords:
    """Multinomial logistic regression on word counts, the baseline a fine-tuned model must
    beat: a text is the counts of its lower-cased words (order forgotten), scaled to unit
    length; p = softmax(x W + b). Trained by full-batch gradient descent on the mean
    cross-entropy plus (l2 / 2) |W|^2, whose gradient is X^T (P - Y) / n + l2 W.

    X is sparse (a passage has a few dozen distinct words of thousands), so it is kept as
    (row, column, value) triples and the two products are sums over them (`_rows_times`,
    `_transpose_times`): the same numbers as the dense X @ W and X^T @ G.
    """

    def __init__(
        self, n_classes: int, l2: float = 1e-4, lr: float = 0.05, steps: int = 200
    ) -> None:
        self.n_classes, self.l2, self.lr, self.steps = n_classes, l2, lr, steps

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """X as (rows, columns, values, n_rows): unit-length word counts."""
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            counts = Counter(w for w in re.findall(r"\w+", text.lower()) if w in self.vocabulary)
            norm = math.sqrt(sum(n * n for n in counts.values())) or 1.0
            for word, n in counts.items():
                rows.append(i), cols.append(self.vocabulary[word]), vals.append(n / norm)
        return (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(vals),
                len(texts))  # fmt: skip

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> BagOfWords:
        """Each class weighs the same in the loss, however many passages it has; Adam
        takes the steps (plain gradient descent needs thousands here)."""
        words = sorted({w for text in texts for w in re.findall(r"\w+", text.lower())})
        self.vocabulary = {w: i for i, w in enumerate(words)}
        x, y = self.features(texts), np.eye(self.n_classes)[labels]  # X (n, V), Y (n, K)
        weight = 1 / (self.n_classes * y.sum(axis=0)[labels])[:, None]  # (n, 1), sums to 1
        self.W = Parameter(np.zeros((len(words), self.n_classes)))
        self.b = Parameter(np.zeros(self.n_classes))
        adam = Adam([self.W, self.b], lr=self.lr)
        for _ in range(self.steps):
            p = F.softmax_array(_rows_times(x, self.W.data) + self.b.data)  # (n, K)
            g = (p - y) * weight  # (n, K): d(weighted mean cross-entropy) / d(logits)
            self.W.grad = _transpose_times(x, g, len(words)) + self.l2 * self.W.data
            self.b.grad = g.sum(axis=0)
            adam.step()
        return self

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return (_rows_times(self.features(texts), self.W.data) + self.b.data).argmax(axis=-1)


def _rows_times(x: tuple, W: np.ndarray) -> np.ndarray:
    """X @ W for X given as (rows, columns, values, n_rows):  (n, V) @ (V, K) -> (n, K)."""
    rows, cols, vals, n = x
    return np.stack([np.bincount(rows, vals * W[cols, k], n) for k in range(W.shape[1])], 1)


def _transpose_times(x: tuple, G: np.ndarray, n_columns: int) -> np.ndarray:
    """X^T @ G:  (V, n) @ (n, K) -> (V, K)."""
    rows, cols, vals, _ = x
    return np.stack([np.bincount(cols, vals * G[rows, k], n_columns) for k in range(G.shape[1])], 1)


# ===================================================================== 4. instruction tuning
# An end token. A character tokenizer trained on the corpus has none, and every character
# it knows occurs in ordinary text, so a character cannot mark "the answer is over". We add
# a special token to the tokenizer (its next id) and a row to the token embedding, which the
# tied LM head reuses as the new token's output vector. The row starts at the mean of the
# others (the new token starts with an average logit) and must train, even with LoRA: with
# a frozen mean row its logit h . mean(e_i) is the mean of the other logits and can never be
# the largest, so greedy decoding would never stop.
class AddedTokenEmbedding(Module):
    """The pretrained table (V, C) and `n_added` new rows (n_added, C), trained on their
    own: the model sees their concatenation (V + n_added, C) as its `weight`."""

    def __init__(self, base: Embedding, n_added: int) -> None:
        super().__init__()
        self.base = base
        self.added = Parameter(np.zeros((n_added, base.embedding_dim), base.weight.dtype))
        self.reset_added()

    def reset_added(self) -> None:
        """Every new row to the mean of the pretrained rows."""
        self.added.data[...] = self.base.weight.data.mean(axis=0)

    @property
    def weight(self) -> Tensor:
        return concatenate([self.base.weight, self.added], axis=0)  # (V + n_added, C)

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight)  # (..., C)


@dataclass
class InstructGPTConfig(FineTunedGPTConfig):
    """A GPT that answers instructions: `vocab_size` counts the `added_tokens` rows appended
    to the pretrained vocabulary; `end_token` names the token a response ends with."""

    end_token: str = END_TOKEN
    added_tokens: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.added_tokens < self.vocab_size:
            raise ValueError(f"added_tokens must be in [0, vocab_size), got {self.added_tokens}")
        if self.added_tokens and not self.tie_weights:
            raise ValueError("adding a token needs the tied LM head (tie_weights=True)")


class InstructGPT(GPT):
    """A GPT whose vocabulary has an end token, fine-tuned on instruction / response pairs.
    It is a GPT in every way (`generate` works as for any GPT); only the token embedding
    (an AddedTokenEmbedding when a token was added) and what trains differ."""

    def __init__(
        self, config: InstructGPTConfig, rng: RngLike = None, dtype: Any = np.float32
    ) -> None:
        if not isinstance(config, InstructGPTConfig):
            raise TypeError(f"InstructGPT needs an InstructGPTConfig, got {type(config)}")
        rng = make_rng(rng)
        super().__init__(config.base(vocab_size=config.vocab_size - config.added_tokens),
                         rng=rng, dtype=dtype)  # fmt: skip
        self.config = config
        _prepare_body(self, config, rng)
        if config.added_tokens:
            self.token_embedding = AddedTokenEmbedding(self.token_embedding, config.added_tokens)

    @classmethod
    def from_gpt(
        cls, gpt: GPT, tokenizer: Tokenizer, rng: RngLike = None, **settings: Any
    ) -> tuple[InstructGPT, Tokenizer]:
        """The instruction model on a pretrained GPT's weights and a copy of its tokenizer
        that has the end token (added, with an embedding row, if it had none)."""
        tokenizer = copy.deepcopy(tokenizer)
        end_token = settings.pop("end_token", END_TOKEN)
        V = gpt.config.vocab_size
        if tokenizer.vocab_size != V:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens, the GPT {V}")
        tokenizer.add_special_tokens([end_token])  # a no-op if it has it
        added = tokenizer.vocab_size - V
        config = InstructGPTConfig(**{**gpt.config.to_dict(), "vocab_size": V + added},
                                   end_token=end_token, added_tokens=added, **settings)  # fmt: skip
        model = cls(config, rng=rng, dtype=gpt.token_embedding.weight.dtype)
        state = gpt.state_dict()
        if added:
            state["token_embedding.base.weight"] = state.pop("token_embedding.weight")
        _load_pretrained(model, state, new=("token_embedding.added",))
        if added:
            model.token_embedding.reset_added()
        return model, tokenizer

    def end_id(self, tokenizer: Tokenizer) -> int:
        if self.config.end_token not in tokenizer.special_tokens:
            raise ValueError(f"the tokenizer lacks the end token {self.config.end_token!r}")
        return tokenizer.special_tokens[self.config.end_token]


# ---------------------------------------------------------------- the template and the pairs
@dataclass
class InstructionPair:
    instruction: str
    input: str
    response: str
    topic: str


def format_prompt(instruction: str, input: str = "") -> str:
    """The template (Alpaca's fields, short headers for a small context): the model learns
    to write the response after "Response: " and then the end token."""
    fields = f"Instruction: {instruction}\n" + (f"Input: {input}\n" if input else "")
    return fields + "Response: "


def first_sentence(text: str, max_chars: int) -> str | None:
    """The first sentence of a topic's first prose paragraph (not a title, grammar rule,
    code or version note), if it has at most `max_chars` characters."""
    for paragraph in paragraphs(text):
        if paragraph[0].isspace() or paragraph.startswith(("object.", "New in", "Changed in")):
            continue
        prose = " ".join(paragraph.split())
        end = re.search(r"(?<!e\.g)(?<!i\.e)[.:](\s|$)", prose)
        sentence = prose[: end.start()] + "." if end else prose
        return sentence if len(sentence) <= max_chars else None
    return None


def instruction_pairs(max_response_chars: int = 160) -> list[InstructionPair]:
    """Pairs made from Python's help topics: "Explain this topic." with a topic's title as
    input, and "What does this keyword do?" for the statements named by a keyword; the
    response is the topic's first sentence (pairs with a longer one are left out)."""
    pairs, seen = [], set()
    for topic, text in documentation_topics().items():
        title = text.split("\n", 1)[0].strip()
        sentence = first_sentence(text, max_response_chars)
        if sentence is None or title in seen:
            continue
        seen.add(title)
        pairs.append(InstructionPair("Explain this topic.", title, sentence, topic))
        keyword = re.fullmatch(r'The "(\w+)" statement', title)
        if keyword:
            pairs.append(InstructionPair("What does this keyword do?", keyword[1], sentence, topic))
    return pairs


def window(ids: np.ndarray, n_prompt: int, block_size: int, end: int) -> tuple:
    """The row that predicts tokens up to position `end` of a prompt + response sequence:
    inputs ids[start:end], targets ids[start + 1 : end + 1] with start = max(0, end - T).

    Targets that are prompt tokens are -1 (ignored by the loss), so only the response (and
    its end token) is learned. The token at `end` is predicted from exactly the context
    generation gives it: the last T tokens before it.
    """
    start = max(0, end - block_size)
    targets = ids[start + 1 : end + 1].copy()
    targets[: max(n_prompt - start - 1, 0)] = IGNORE_INDEX
    return ids[start:end], targets


class InstructionTask:
    """Instruction tuning on `instruction_pairs`, held out by topic (`val_fraction` of the
    topics, with all their pairs).

    A pair longer than the context (block_size T) is learned as pretraining learns text: each
    time it is drawn, a window of T tokens ending at a random response position. That last
    target then sees what generation will show it (its T predecessors), and the others see
    less; over many draws every response token is seen both ways. A batch is one window per
    drawn pair, right-padded: (inputs (B, T), targets (B, T), real (B, T)), padding's
    targets -1; the loss is the mean over the response tokens in it.
    """

    def __init__(
        self, tokenizer: Tokenizer, end_id: int, block_size: int, seed: int = 0,
        val_fraction: float = 0.1,
    ) -> None:  # fmt: skip
        if block_size < 2:
            raise ValueError(f"block_size={block_size} is too short")
        self.tokenizer, self.end_id, self.block_size = tokenizer, end_id, block_size
        all_pairs = instruction_pairs()
        topics = sorted({p.topic for p in all_pairs})
        order = np.random.default_rng(seed).permutation(len(topics))
        held_out = {topics[i] for i in order[: max(1, round(len(topics) * val_fraction))]}
        self.pairs = {
            "train": [p for p in all_pairs if p.topic not in held_out],
            "val": [p for p in all_pairs if p.topic in held_out],
        }
        self.sequences = {split: [self.encode(p) for p in pairs]
                          for split, pairs in self.pairs.items()}  # fmt: skip

    def encode(self, pair: InstructionPair) -> tuple[np.ndarray, int]:
        """The pair's ids (prompt, response, end token) and the prompt's length."""
        prompt = self.tokenizer.encode_ordinary(format_prompt(pair.instruction, pair.input))
        response = self.tokenizer.encode_ordinary(pair.response) + [self.end_id]
        return np.array(prompt + response, dtype=np.int64), len(prompt)

    def batch(self, split: str, batch_size: int, rng: np.random.Generator) -> tuple:
        rows = []
        for i in rng.integers(len(self.sequences[split]), size=batch_size):
            ids, n_prompt = self.sequences[split][i]
            last = len(ids) - 1
            end = last if last <= self.block_size else rng.integers(
                max(self.block_size, n_prompt), last + 1)  # fmt: skip
            rows.append(window(ids, n_prompt, self.block_size, int(end)))
        return collate_rows(rows)

    def loss(self, model: Any, batch: tuple) -> Tensor:
        inputs, targets, _ = batch
        return model(inputs, targets)[1]

    def tokens(self, batch: tuple) -> int:
        return int(batch[2].sum())

    def generation_rows(self, split: str) -> list[tuple]:
        return [row for ids, n in self.sequences[split]
                for row in generation_rows(ids, n, self.block_size)]  # fmt: skip

    def response_loss(self, model: Module, split: str = "val", batch_size: int = 64) -> float:
        """The mean cross-entropy over every response token of the split's pairs, each
        predicted as generation predicts it (see `generation_rows`)."""
        was_training = model.training
        model.eval()
        rows, total, count = self.generation_rows(split), 0.0, 0
        with no_grad():
            for start in range(0, len(rows), batch_size):
                inputs, targets, _ = collate_rows(rows[start : start + batch_size])
                n = int((targets != IGNORE_INDEX).sum())
                total += model(inputs, targets)[1].item() * n
                count += n
        model.train(was_training)
        return total / count

    def end_probability(self, model: Module, split: str = "val") -> float:
        """The mean probability the model gives the end token where a response is over
        (after its last character, seeing what generation would)."""
        rows = [window(ids, n, self.block_size, len(ids) - 1) for ids, n in self.sequences[split]]
        inputs, _, real = collate_rows(rows)
        was_training = model.training
        model.eval()
        with no_grad():
            logits = model(inputs)[0].data[np.arange(len(rows)), real.sum(axis=1) - 1]  # (R, V)
        model.train(was_training)
        return float(F.softmax_array(logits.astype(np.float64))[:, self.end_id].mean())


def generation_rows(ids: np.ndarray, n_prompt: int, block_size: int) -> list[tuple]:
    """Rows that score every response token once, from exactly the context generation gives
    it: one row from the start (the tokens within the first T), then one row per later
    token, scoring only its last target."""
    first = min(len(ids) - 1, block_size)
    rows = [window(ids, n_prompt, block_size, first)]
    for end in range(max(first + 1, n_prompt), len(ids)):
        inputs, targets = window(ids, n_prompt, block_size, end)
        targets[:-1] = IGNORE_INDEX
        rows.append((inputs, targets))
    return [(x, t) for x, t in rows if (t != IGNORE_INDEX).any()]


def response_log_probability(
    model: GPT, tokenizer: Tokenizer, end_id: int, prompt: str, response: str
) -> float:
    """log p(response, end token | prompt): the sum of the log-probabilities of its tokens,
    each predicted as generation predicts it. What preference tuning (DPO) compares."""
    prompt_ids = tokenizer.encode_ordinary(prompt)
    ids = np.array(prompt_ids + tokenizer.encode_ordinary(response) + [end_id])
    inputs, targets, _ = collate_rows(
        generation_rows(ids, len(prompt_ids), model.config.block_size)
    )
    was_training = model.training
    model.eval()
    with no_grad():
        loss = model(inputs, targets)[1].item()  # the mean over the scored tokens
    model.train(was_training)
    return -loss * int((targets != IGNORE_INDEX).sum())


def collate_rows(rows: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets) rows as (inputs (R, T), targets (R, T), real (R, T)), right-padded;
    padding's targets are -1."""
    inputs, real = pad_right([r[0] for r in rows])
    targets = np.full(inputs.shape, IGNORE_INDEX, dtype=np.int64)
    for b, (_, t) in enumerate(rows):
        targets[b, : len(t)] = t
    return inputs, targets, real


def respond(
    model: GPT, tokenizer: Tokenizer, end_id: int, instruction: str, input: str = "",
    max_new_tokens: int = 160, **sampling: Any,
) -> str:  # fmt: skip
    """The model's response to an instruction: the prompt in the template, generation up to
    the end token (greedy unless `sampling` says otherwise)."""
    ids = tokenizer.encode_ordinary(format_prompt(instruction, input))
    sampling.setdefault("temperature", 0.0)
    with warnings.catch_warnings():  # a prompt longer than the context: the window slides
        warnings.simplefilter("ignore", UserWarning)
        new = generate(model, ids, max_new_tokens, eos_id=end_id, **sampling)
    return tokenizer.decode(new)


# ===================================================================== the two tasks by name
TASKS = ("classify", "instruct")


def start_finetuning(
    gpt: GPT, tokenizer: Tokenizer, task: str, rng: RngLike = None, **settings: Any
) -> tuple[Module, Tokenizer]:
    """The model (and tokenizer) to fine-tune a pretrained GPT for `task`: "classify" (a
    GPTClassifier for SectionTask) or "instruct" (an InstructGPT); `settings` are the
    config's (trainable_blocks, lora, pooling)."""
    if task == "classify":
        model = GPTClassifier.from_gpt(gpt, SectionTask.n_classes, rng=rng,
                                       labels=SectionTask.labels, **settings)  # fmt: skip
        return model, tokenizer
    if task == "instruct":
        return InstructGPT.from_gpt(gpt, tokenizer, rng=rng, **settings)
    raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def task_for(model: Module, tokenizer: Tokenizer) -> SectionTask | InstructionTask:
    """The data a fine-tuned model is trained and evaluated on."""
    if isinstance(model, GPTClassifier):
        return SectionTask(tokenizer, model.config.block_size)
    if isinstance(model, InstructGPT):
        return InstructionTask(tokenizer, model.end_id(tokenizer), model.config.block_size)
    raise TypeError(f"no fine-tuning task for a {type(model).__name__}")
