"""The autograd engine: a `Tensor` that remembers the `Function` that made it.

Every operation is a `Function` with a `forward` (NumPy arrays in, an array out) and a
`backward` (the gradient of the output in, one gradient per input out). Calling
`Function.apply` runs the forward and, when any input requires a gradient, records the
call as a node of the graph. `Tensor.backward` walks those nodes from the output back to
the leaves in reverse topological order, applying the chain rule at each one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

_grad_enabled = True


@contextmanager
def no_grad() -> Iterator[None]:
    """Run the enclosed code without recording a graph (evaluation, optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of `shape` broadcasts to `target` as it is, without growing it."""
    extra = len(target) - len(shape)
    return extra >= 0 and all(n in (1, m) for n, m in zip(shape, target[extra:]))


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` back to `shape`: the backward of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along its size-1 axes, so
    the gradient of each copy flows back to the one original value and is summed. A
    gradient whose shape `shape` does not broadcast to is a ValueError, not a reshape.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if grad.shape[extra:] == shape:  # only new leading axes (a bias): one sum, no reshape
        return grad.sum(axis=tuple(range(extra)))
    if not broadcasts_to(shape, grad.shape):
        raise ValueError(f"a gradient of shape {grad.shape} does not sum back to shape {shape}")
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    return grad.sum(axis=axes).reshape(shape)


class Function:
    """One differentiable operation; an instance is the node that records one call.

    Subclasses write `forward(ctx, *arrays, **options) -> array` and
    `backward(ctx, grad) -> gradient or tuple of gradients` (one per array input, None
    where no gradient is needed), both as static methods taking the node as `ctx`.
    """

    __slots__ = ("parents", "saved", "needs_input_grad", "released", "__dict__")

    def save_for_backward(self, *arrays: Any) -> None:
        self.saved = arrays

    @classmethod
    def apply(cls, *inputs: Tensor, **options: Any) -> Tensor:
        ctx = cls.__new__(cls)
        ctx.needs_input_grad = tuple([t.requires_grad for t in inputs])
        requires_grad = _grad_enabled and any(ctx.needs_input_grad)
        out = cls.forward(ctx, *[t.data for t in inputs], **options)
        if not requires_grad:
            return Tensor._wrap(out, False, None)
        ctx.parents = inputs
        ctx.released = False
        return Tensor._wrap(out, True, ctx)

    @staticmethod
    def forward(ctx: Function, *arrays: np.ndarray, **options: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Function, grad: np.ndarray) -> Any:
        raise NotImplementedError

    def input_grads(self, grad: np.ndarray, release: bool) -> list[tuple[Tensor, np.ndarray]]:
        """Run this node's backward: (input, its gradient, in its own shape) for each input
        that needs one; with `release`, then drop the saved arrays and the inputs, so the
        graph is freed as the walk passes. A wrong number or shape of gradients is a bug."""
        if self.released:
            raise RuntimeError(
                "backward through a graph a second time, but its saved values were "
                "already freed; call backward(retain_graph=True) the first time"
            )
        grads = type(self).backward(self, grad)
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(self.parents):
            raise RuntimeError(
                f"{type(self).__name__}.backward returned {len(grads)} gradients "
                f"for {len(self.parents)} inputs"
            )
        pairs = []
        for parent, needs, g in zip(self.parents, self.needs_input_grad, grads):
            if needs and g is not None:
                shape = parent.data.shape
                pairs.append((parent, g if g.shape == shape else self._unbroadcast(g, shape)))
        if release:
            self.saved, self.parents, self.released = None, (), True
        return pairs

    def _unbroadcast(self, grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        try:
            return unbroadcast(grad, shape)
        except ValueError as error:  # a bug in that backward, not a broadcast
            raise RuntimeError(f"{type(self).__name__}.backward: {error}") from error


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    `data` is the NumPy array, `grad` its gradient after `backward()` (None before),
    and `requires_grad` marks the leaves whose gradient we want (parameters).
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_retain_grad", "__weakref__")
    __array_priority__ = 1000  # numpy_array + tensor defers to Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        elif isinstance(data, (list, tuple)):  # a list of 0-d tensors, say [loss1, loss2]
            data = [_array(d) for d in data]
        data = np.asarray(data, dtype=dtype)
        if requires_grad and not np.issubdtype(data.dtype, np.floating):
            raise ValueError(
                f"only floating-point tensors can require gradients, got dtype {data.dtype}"
            )
        self.data = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._ctx: Function | None = None
        self._retain_grad = False

    @classmethod
    def _wrap(cls, data: np.ndarray, requires_grad: bool, ctx: Function | None) -> Tensor:
        """Make a result tensor without the checks of `__init__` (the engine's fast path)."""
        t = object.__new__(Tensor)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t._retain_grad = False
        return t

    # ---------------------------------------------------------------- basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The sub-tensors along the first axis, each a differentiable `self[i]`."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The data for NumPy functions (`np.asarray(t)`); NumPy's result has no graph."""
        if copy:
            return np.array(self.data, dtype=dtype)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .data.any() or .data.all()"
            )
        return bool(self.data)

    def __invert__(self) -> Tensor:
        """Logical not of a boolean mask (a constant: no gradient flows through masks)."""
        if self.data.dtype != bool:
            raise TypeError(f"~ needs a boolean tensor, got dtype {self.dtype}")
        return Tensor(~self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, prefix="Tensor(")
        return f"Tensor({body}, dtype={self.data.dtype}{grad})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same values, cut off from the graph (no gradient flows through)."""
        return Tensor._wrap(self.data, False, None)

    def astype(self, dtype: Any) -> Tensor:
        """A copy in another dtype; the gradient flows back only through a float dtype
        (rounding to integers is flat almost everywhere, so it is a constant)."""
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":
            return Tensor._wrap(self.data.astype(dtype), False, None)
        return ops.Cast.apply(self, dtype=dtype)

    def retain_grad(self) -> None:
        """Keep this intermediate tensor's gradient in `.grad` after backward."""
        self._retain_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    # ---------------------------------------------------------------- backward
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into the `.grad` of every leaf that requires it.

        Nodes are visited in reverse topological order, so a node's gradient is complete
        (summed over all its consumers) before it is passed on. Unless `retain_graph`,
        each node drops its saved arrays once used, so the graph can be walked only once.
        """
        grad = self._output_grad(grad)  # d(self)/d(self): 1 for a scalar
        if self._ctx is None:  # a leaf: nothing to walk
            _accumulate_leaf(self, grad)
            return
        grads = {id(self): grad}  # the gradient of each node whose consumers are done so far
        order = _topological_order(self)
        while order:
            node = order.pop()  # popped, so its array is freed as soon as its consumers are
            g = grads.pop(id(node), None)
            if g is None:  # no consumer passed a gradient back to this node
                continue
            input_grads = node._ctx.input_grads(g, release=not retain_graph)  # the chain rule
            if node._retain_grad:  # a copy: g may be shared with other nodes, or read-only
                node.grad = np.array(g) if node.grad is None else node.grad + g
            for parent, parent_grad in input_grads:
                if parent._ctx is None:
                    _accumulate_leaf(parent, parent_grad)
                else:
                    key = id(parent)
                    grads[key] = grads[key] + parent_grad if key in grads else parent_grad

    def _output_grad(self, grad: Any) -> np.ndarray:
        """The gradient that `backward` starts from: `grad`, or 1 for a one-element tensor."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient argument needs a scalar, got shape "
                    f"{self.shape}; pass grad= with the same shape"
                )
            one = np.array(1, self.dtype)  # np.ones is 4x slower here
            return one if self.data.ndim == 0 else one.reshape(self.shape)
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"gradient shape {grad.shape} != tensor shape {self.shape}")
        return grad

    # ---------------------------------------------------------------- arithmetic
    def _operands(self, other: Any) -> tuple[Tensor, Tensor]:
        """`self` and `other` as the two tensors of a binary operation, in PyTorch's dtypes.

        NumPy would widen a float32 tensor to float64 when it meets a NumPy float64 scalar
        (`np.sqrt(d_k)` is one), a 0-d float64 array or an int64 array. Here, as in PyTorch,
        a scalar never widens a tensor: a number of any origin, and a 0-d float meeting a
        float with axes, take the tensor's dtype; and an integer or boolean operand takes the
        float operand's dtype. A cast tensor's gradient is cast back to its own dtype.
        """
        if not isinstance(other, Tensor):
            value = _python_scalar(other)
            if value is not None:  # NumPy's rule for a Python number is PyTorch's rule
                dtype = np.result_type(self.data.dtype, value)
                return self, Tensor._wrap(np.asarray(value, dtype), False, None)
            other = Tensor._wrap(np.asarray(other), False, None)
        if self.data.dtype is other.data.dtype:
            return self, other
        dtype = _kept_float_dtype(self.data, other.data)
        if dtype is None:
            return self, other
        a, b = (t if t.data.dtype == dtype else t.astype(dtype) for t in (self, other))
        return a, b

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(*self._operands(other))

    def __radd__(self, other: Any) -> Tensor:
        return ops.Add.apply(*self._operands(other)[::-1])

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(*self._operands(other))

    def __rsub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(*self._operands(other)[::-1])

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(*self._operands(other))

    def __rmul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(*self._operands(other)[::-1])

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(*self._operands(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(*self._operands(other)[::-1])

    def __pow__(self, exponent: Any) -> Tensor:
        value = _python_scalar(exponent)  # None for a tensor
        if isinstance(value, (int, float)):
            return ops.PowScalar.apply(self, exponent=value)
        return ops.Pow.apply(*self._operands(exponent))

    def __rpow__(self, base: Any) -> Tensor:
        return ops.Pow.apply(*self._operands(base)[::-1])

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(*self._operands(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(*self._operands(other)[::-1])

    # comparisons give constant boolean tensors (masks, accuracy); no gradient flows
    def __lt__(self, other: Any) -> Tensor:
        return Tensor(self.data < _array(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self.data <= _array(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self.data > _array(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self.data >= _array(other))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self.data == _array(other))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return Tensor(self.data != _array(other))

    __hash__ = object.__hash__

    # ---------------------------------------------------------------- reductions
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=_axis_argument(axis), keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.Mean.apply(self, axis=_axis_argument(axis), keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=_axis_argument(axis), keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return -ops.Max.apply(-self, axis=_axis_argument(axis), keepdims=keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return ops.Var.apply(self, axis=_axis_argument(axis), keepdims=keepdims, ddof=ddof)

    def argmax(self, axis: int | None = None) -> np.ndarray:
        return self.data.argmax(axis=axis)

    # ---------------------------------------------------------------- elementwise
    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.ReLU.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Transpose.apply(self, axes=axes or None)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return ops.Transpose.apply(self, axes=tuple(axes))

    @property
    def T(self) -> Tensor:
        return ops.Transpose.apply(self, axes=None)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=_plain_index(index))

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        return ops.MaskedFill.apply(self, mask=_array(mask), value=value)


def _array(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _axis_argument(axis: Any) -> Any:
    """An axis argument as NumPy takes it: None, an int, or a tuple of ints (not a list)."""
    if axis is None or isinstance(axis, int):
        return axis
    if isinstance(axis, np.integer):
        return int(axis)
    return tuple(int(a) for a in axis)


def _kept_float_dtype(x: np.ndarray, y: np.ndarray) -> np.dtype | None:
    """The dtype of `x op y` where PyTorch keeps a float dtype that NumPy would widen: the
    float operand's when the other is an integer or boolean, the one with axes when the
    other float is 0-d. None where NumPy's promotion is PyTorch's."""
    x_float, y_float = x.dtype.kind == "f", y.dtype.kind == "f"
    if x_float and y_float:
        if (x.ndim == 0) == (y.ndim == 0):
            return None
        return x.dtype if y.ndim == 0 else y.dtype
    if x_float and y.dtype.kind in "biu":
        return x.dtype
    if y_float and x.dtype.kind in "biu":
        return y.dtype
    return None


def _python_scalar(x: Any) -> bool | int | float | complex | None:
    """x as a Python number if it is one value (a Python or NumPy number, a 0-d array);
    None for anything else. Python numbers are "weak" in NumPy's promotion: they adapt to
    the array they meet, where NumPy's own scalars and 0-d arrays would widen it."""
    if isinstance(x, (np.generic, np.ndarray)):  # before float: np.float64 is a float too
        return x.item() if x.ndim == 0 and x.dtype.kind in "biufc" else None
    return x if isinstance(x, (bool, int, float, complex)) else None


def _plain_index(index: Any) -> Any:
    """Replace Tensors inside an index by their arrays, so NumPy can use it."""
    if isinstance(index, (tuple, list)):
        return type(index)(_array(i) for i in index)
    return _array(index)


def _accumulate_leaf(leaf: Tensor, grad: np.ndarray) -> None:
    """`leaf.grad += grad`, on a private copy the first time (grads may share memory)."""
    if leaf.grad is None:
        leaf.grad = np.array(grad, dtype=leaf.data.dtype)  # an array even from a NumPy scalar
    else:
        leaf.grad += grad


def _topological_order(root: Tensor) -> list[Tensor]:
    """Non-leaf tensors of the graph under `root`, each after the tensors it was made from
    (so `root` comes last and popping from the end walks the graph from the output back).

    An iterative depth-first search (a stack instead of recursion, so a chain of any
    length works): a node is emitted after all its inputs.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._ctx.parents:
            if parent._ctx is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


from minigrad import ops  # noqa: E402  (ops builds on Function and Tensor above)
