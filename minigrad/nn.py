"""Neural-network building blocks in PyTorch's shape of use.

A `Module` owns `Parameter`s and sub-modules, found by assigning them as attributes;
`parameters()` walks that tree, `state_dict()` names every array in it, and
`model(x)` calls `forward(x)`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from minigrad import functional as F
from minigrad.tensor import Tensor

RngLike = np.random.Generator | int | None


def make_rng(rng: RngLike) -> np.random.Generator:
    """A generator from a seed or a generator; None means seed 0, so runs are reproducible.
    Pass one generator to every layer of a model so each draws different weights."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module: it requires grad by default.
    It holds its own copy of `data`, since optimizers update it in place."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(np.array(data.data if isinstance(data, Tensor) else data), requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model: registers parameters, buffers and sub-modules."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array: np.ndarray, persistent: bool = True) -> None:
        """A non-learnable array that belongs to the module (a mask, a table of angles);
        persistent buffers are saved in the state dict."""
        self.__setattr__(name, array)
        self._buffers[name] = array
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- the module tree
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules comes once."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def _named_arrays(self) -> Iterator[tuple[str, Module, str, str]]:
        """(key, owner, attribute, kind) for every parameter and persistent buffer."""
        for prefix, module in self.named_modules():
            for name in module._parameters:
                yield (f"{prefix}.{name}" if prefix else name), module, name, "parameter"
            for name in module._buffers:
                if name not in module._non_persistent:
                    yield (f"{prefix}.{name}" if prefix else name), module, name, "buffer"

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and persistent buffer by dotted name (tied weights under each name)."""
        state = {}
        for key, module, name, kind in self._named_arrays():
            value = getattr(module, name)
            state[key] = value.data if kind == "parameter" else np.asarray(value)
        return state

    def load_state_dict(
        self, state: dict[str, Any], strict: bool = True
    ) -> tuple[list[str], list[str]]:
        """Copy arrays into the parameters and buffers, in place, in each one's dtype.

        Shapes must match. With `strict`, missing and unexpected keys are an error; either
        way they are returned as (missing, unexpected).
        """
        targets = {key: (module, name, kind) for key, module, name, kind in self._named_arrays()}
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        for key, (module, name, kind) in targets.items():
            if key not in state:
                continue
            value = np.asarray(state[key].data if isinstance(state[key], Tensor) else state[key])
            current = getattr(module, name)
            current_array = current.data if kind == "parameter" else current
            if value.shape != current_array.shape:
                raise ValueError(
                    f"load_state_dict: '{key}' has shape {value.shape} in the state dict "
                    f"but {current_array.shape} in the model"
                )
            current_array[...] = value
        return missing, unexpected

    def to(self, dtype: Any) -> Module:
        """Convert every floating parameter and buffer to `dtype` (float64 for gradient checks)."""
        dtype = np.dtype(dtype)
        for module in self.modules():
            for p in module._parameters.values():
                p.data = p.data.astype(dtype)
                p.grad = None
            for name, buffer in list(module._buffers.items()):
                if np.asarray(buffer).dtype.kind == "f":
                    module.register_buffer(
                        name, np.asarray(buffer).astype(dtype), name not in module._non_persistent
                    )
        return self

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); `eval()` turns it off. Applies to every sub-module."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ---------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Linear(Module):
    """y = x W^T + b.  x (..., in_features) -> y (..., out_features).

    W (out_features, in_features) and b start uniform in +-1/sqrt(in_features), as in
    PyTorch, so the output's scale does not grow with the width of the input.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        rng = make_rng(rng)
        bound = 1 / math.sqrt(in_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(
            rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype)
        )
        self.bias = (
            Parameter(rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}) got input of shape {x.shape} "
                f"(weight shape {self.weight.shape})"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of `num_embeddings` vectors of size `embedding_dim`: ids (...) -> (..., dim).
    Rows start standard normal, as in PyTorch."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, rng: RngLike = None, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        rng = make_rng(rng)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalize the last axis (size `dim`) to mean 0, variance 1; then scale and shift.
    x (..., dim) -> (..., dim). Weight starts at 1, bias at 0."""

    def __init__(
        self, dim: int, eps: float = 1e-5, bias: bool = True, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim, dtype=dtype))
        self.bias = Parameter(np.zeros(dim, dtype=dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm({self.dim}) got input of shape {x.shape}")
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p));
    the identity in eval mode. Draws from its own generator, made from `rng`."""

    def __init__(self, p: float = 0.5, rng: RngLike = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = make_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain list would hide them)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after another: Sequential(a, b, c)(x) = c(b(a(x)))."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x: Any) -> Any:
        for module in self:
            x = module(x)
        return x
