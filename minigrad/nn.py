"""Neural-network building blocks in PyTorch's shape of use.

A `Module` owns `Parameter`s and sub-modules, found by assigning them as attributes;
`parameters()` walks that tree, `state_dict()` names every array in it, and
`model(x)` calls `forward(x)`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from minigrad import _checks
from minigrad import functional as F
from minigrad.tensor import Tensor

RngLike = np.random.Generator | int | None


def make_rng(rng: RngLike) -> np.random.Generator:
    """A generator from a seed or a generator; None means seed 0, so runs are reproducible.
    Pass one generator to every layer of a model so each draws different weights."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _type_name(value: Any) -> str:
    """'int', 'numpy.ndarray': the type of `value` as an error message names it."""
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


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
        self._check_assignment(name, value)
        registry = self._registry_for(name, value)
        for other in (self._parameters, self._modules, self._buffers):
            if other is not registry:
                other.pop(name, None)
        if registry is not None:
            registry[name] = value  # a name already there keeps its place in the state dict
        object.__setattr__(self, name, value)

    def _registry_for(self, name: str, value: Any) -> dict[str, Any] | None:
        """Where an assigned value is registered: a Parameter or a Module by its type, a new
        value of a buffer stays a buffer; anything else is a plain attribute (None)."""
        if isinstance(value, Parameter):
            return self._parameters
        if isinstance(value, Module):
            return self._modules
        if name in self._buffers and value is not None:
            return self._buffers
        return None

    def _check_assignment(self, name: str, value: Any) -> None:
        """A registered parameter, sub-module or buffer may only be replaced by its own kind
        (or by None, which unregisters it), as in PyTorch: a wrong value would silently drop it."""
        if value is None or isinstance(value, Parameter):
            return
        if name in self._parameters:
            kind, expected = "parameter", "nn.Parameter or None"
        elif name in self._modules and not isinstance(value, Module):
            kind, expected = "child module", "nn.Module or None"
        elif name in self._buffers and not isinstance(value, (Module, np.ndarray)):
            kind, expected = "buffer", "np.ndarray or None"
        else:
            return
        raise TypeError(
            f"cannot assign '{_type_name(value)}' as {kind} '{name}' ({expected} expected)"
        )

    def __delattr__(self, name: str) -> None:
        """`del module.name` unregisters a parameter, sub-module or buffer too."""
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

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
    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) pairs, this module first. A module reachable under two names
        comes once, under the first, unless `remove_duplicate` is False (the state dict's walk)."""
        seen: set[int] = set()

        def walk(prefix: str, module: Module) -> Iterator[tuple[str, Module]]:
            if remove_duplicate and id(module) in seen:
                return
            seen.add(id(module))
            yield prefix, module
            for name, child in module._modules.items():
                yield from walk(f"{prefix}.{name}" if prefix else name, child)

        yield from walk(prefix, self)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        """The direct sub-modules; one assigned under two names comes once."""
        yield from {id(m): m for m in self._modules.values()}.values()

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
        """(key, owner, attribute, kind) for every parameter and persistent buffer, under
        every name it is reachable by (a shared module is saved, and loaded, under each)."""
        for prefix, module in self.named_modules(remove_duplicate=False):
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
        way they are returned as (missing, unexpected). Everything is checked before anything
        is copied, so on an error the model is unchanged and the message lists every problem.
        """
        targets = {}
        for key, module, name, kind in self._named_arrays():
            current = getattr(module, name)
            targets[key] = current.data if kind == "parameter" else current
        values = {k: np.asarray(v.data if isinstance(v, Tensor) else v) for k, v in state.items()}
        missing = [k for k in targets if k not in values]
        unexpected = [k for k in values if k not in targets]
        problems = [f"missing keys {missing}"] if strict and missing else []
        problems += [f"unexpected keys {unexpected}"] if strict and unexpected else []
        problems += [
            f"'{key}' has shape {values[key].shape} in the state dict but {target.shape} "
            "in the model"
            for key, target in targets.items()
            if key in values and values[key].shape != target.shape
        ]
        if problems:
            raise ValueError("load_state_dict: " + "; ".join(problems))
        for key, target in targets.items():
            if key in values:
                target[...] = values[key]
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
        message = "Linear({}, {}) got input of shape {} (weight shape {})"
        fits = x.shape[-1:] == (self.in_features,)
        _checks.require(
            fits, message, self.in_features, self.out_features, x.shape, self.weight.shape
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
    x (..., dim) -> (..., dim). Weight starts at 1, bias at 0. `dim` may also be given as
    PyTorch's normalized_shape, a one-axis shape such as (dim,)."""

    def __init__(
        self,
        dim: int | tuple[int] | list[int],
        eps: float = 1e-5,
        bias: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if isinstance(dim, (tuple, list)):  # PyTorch's normalized_shape
            message = "LayerNorm normalizes the last axis: normalized_shape {} must have one axis"
            _checks.require(len(dim) == 1, message, tuple(dim))
            (dim,) = dim
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim, dtype=dtype))
        self.bias = Parameter(np.zeros(dim, dtype=dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        _checks.require(
            x.shape[-1:] == (self.dim,), "LayerNorm({}) got input of shape {}", self.dim, x.shape
        )
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p));
    the identity in eval mode. Draws from its own generator, made from `rng`."""

    def __init__(self, p: float = 0.5, rng: RngLike = None) -> None:
        super().__init__()
        _checks.probability(p, "Dropout probability")
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


def _require_module(value: Any) -> Module:
    """`value` itself, if it is a Module: containers hold modules only."""
    if not isinstance(value, Module):
        raise TypeError(f"{_type_name(value)} is not a Module subclass")
    return value


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain list would hide them).
    Their keys are '0', '1', ..., so the state dict names '0.weight', '1.weight', ..."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        key = str(len(self._modules))
        if key in self._modules:
            raise ValueError(
                f"{type(self).__name__}.append: key {key!r} is already taken "
                f"(keys {list(self._modules)})"
            )
        setattr(self, key, _require_module(module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert before position `index`, as list.insert does; the later modules move up a key."""
        keys = list(self._modules)
        if keys != [str(i) for i in range(len(keys))]:
            raise ValueError(
                f"{type(self).__name__}.insert needs the keys '0', '1', ..., not {keys}"
            )
        modules = list(self)
        modules.insert(index, _require_module(module))
        for position, each in enumerate(modules):
            setattr(self, str(position), each)

    def __getitem__(self, index: int | slice) -> Module:
        if isinstance(index, slice):
            return ModuleList(list(self)[index])
        return list(self._modules.values())[index]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[index]
        setattr(self, key, _require_module(module))

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after another: Sequential(a, b, c)(x) = c(b(a(x))).
    Sequential(OrderedDict(name=module, ...)) registers them under those names."""

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            super().__init__()
            for name, module in modules[0].items():
                self._add_named(name, module)
        else:
            super().__init__(modules)

    def _add_named(self, name: str, module: Module) -> None:
        """Register `module` under `name`, which must be new and dot-free: a name like 'forward'
        would hide a method, and a dot would break the dotted state-dict keys."""
        if not isinstance(name, str) or not name or "." in name or hasattr(self, name):
            raise ValueError(
                f"Sequential: cannot name a module {name!r} (a name must be a non-empty string "
                "without dots that is not already an attribute)"
            )
        setattr(self, name, _require_module(module))

    def __getitem__(self, index: int | slice) -> Module:
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return super().__getitem__(index)

    def forward(self, x: Any) -> Any:
        for module in self:
            x = module(x)
        return x


# The recurrent and convolutional layers live in modules of their own, built on Module above.
from minigrad.convolution import Conv1d  # noqa: E402, F401
from minigrad.recurrent import GRU, LSTM, RNN  # noqa: E402, F401
