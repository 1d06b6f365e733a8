"""Compare every minigrad op, fused function, layer and optimizer with PyTorch, in float64.

    PYTHONPATH=/path/to/repo /path/to/venv-with-torch/bin/python scripts/compare_with_torch.py

Each case runs the same function in both frameworks on the same random float64 inputs
(with broadcasting where the op allows it), back-propagates the same random output
gradient, and prints the largest relative error of the forward value and of the input
gradients, each error being max|minigrad - torch| / max|torch| over one tensor. It also
runs the case in float32 and checks that the output and every gradient stay float32.
Layers with weights (RNN, LSTM, GRU, Conv1d) load minigrad's weights into torch's layer
through `load_state_dict` (strict, so the names and shapes must be PyTorch's), and compare
the gradients of the weights too. Optimizers take a few steps on the same parameters and
gradients.

The exit status is 1 if any error exceeds TOLERANCE (or a case fails to run), else 0.
This is a developer tool: the project never imports torch, and this script needs it.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad import functional as F
from minigrad import optim

TOLERANCE = 1e-8
torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(0)
results: list[tuple[str, float, str]] = []  # (name, max relative error, problem or "")


def randn(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def positive(*shape: int, low: float = 0.5, high: float = 2.0) -> np.ndarray:
    return rng.uniform(low, high, shape)


def away_from_zero(*shape: int) -> np.ndarray:
    """Values with |x| >= 0.1, so kinks (relu, abs) are not hit by rounding."""
    x = randn(*shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)


def relative_error(mine: np.ndarray, ref: np.ndarray) -> float:
    """max|mine - ref| / max(max|ref|, max|mine|) over one tensor: 0 where both are exactly
    equal, 1 where torch gives all zeros and minigrad does not. Non-finite entries (inf, NaN)
    must sit in the same places with the same values (NaN equals NaN here)."""
    mine, ref = np.asarray(mine, np.float64), np.asarray(ref, np.float64)
    if mine.shape != ref.shape:
        raise AssertionError(f"shape {mine.shape} != torch's {ref.shape}")
    finite = np.isfinite(ref)
    if not np.array_equal(np.isfinite(mine), finite) or not np.array_equal(
        mine[~finite], ref[~finite], equal_nan=True
    ):
        return float("inf")
    diff = np.abs(mine[finite] - ref[finite])
    if diff.size == 0 or diff.max() == 0:
        return 0.0
    return float(diff.max() / max(np.abs(ref[finite]).max(), np.abs(mine[finite]).max()))


def _outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _backward_mg(outs, grads):
    if len(outs) == 1:
        outs[0].backward(grads[0])
        return
    total = None
    for o, g in zip(outs, grads):
        term = (o * g).sum()
        total = term if total is None else total + term
    total.backward()


def case(name: str, mg_fn: Callable, torch_fn: Callable, *arrays: np.ndarray) -> None:
    """Run `mg_fn(*tensors)` and `torch_fn(*tensors)` on the float inputs `arrays`; compare
    the outputs and the gradients of every input, then check dtypes in float32."""
    try:
        xs = [mg.Tensor(a, requires_grad=True) for a in arrays]
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        outs, touts = _outputs(mg_fn(*xs)), _outputs(torch_fn(*ts))
        grads = [rng.standard_normal(o.shape) for o in outs]
        errors = [relative_error(o.data, t.detach().numpy()) for o, t in zip(outs, touts)]
        if len(outs) != len(touts):
            raise AssertionError(f"{len(outs)} outputs, torch {len(touts)}")
        _backward_mg(outs, grads)
        torch.autograd.backward(touts, [torch.tensor(g) for g in grads])
        for x, t in zip(xs, ts):
            mine = np.zeros(x.shape) if x.grad is None else x.grad
            theirs = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
            errors.append(relative_error(mine, theirs))
        problem = _float32_problem(mg_fn, arrays)
        err = max(errors)
        results.append((name, err, problem))
        forward, backward = max(errors[: len(outs)]), max(errors[len(outs) :], default=0.0)
        status = "FAIL" if err > TOLERANCE or problem else "ok"
        print(f"{status:4} {name:<44} forward {forward:9.2e}  grad {backward:9.2e}  {problem}")
    except Exception as error:  # report and go on: one broken op should not hide the rest
        results.append((name, float("inf"), f"{type(error).__name__}: {error}"))
        print(f"FAIL {name:<44} {type(error).__name__}: {error}")
        traceback.print_exc(limit=3, file=sys.stdout)


def _float32_problem(mg_fn: Callable, arrays: tuple[np.ndarray, ...]) -> str:
    """'' if the op keeps float32 inputs float32 in its output and in the gradients its
    backward returns. The inputs pass through `x * 1` with retain_grad, so each gradient is
    seen as the op returned it (a leaf's .grad would be cast to the leaf's dtype)."""
    leaves = [mg.Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    xs = [leaf * 1 for leaf in leaves]
    for x in xs:
        x.retain_grad()
    outs = _outputs(mg_fn(*xs))
    bad = [f"output {o.dtype}" for o in outs if o.dtype != np.float32]
    _backward_mg(outs, [np.ones(o.shape, np.float32) for o in outs])
    bad += [
        f"grad {i} {x.grad.dtype}"
        for i, x in enumerate(xs)
        if x.grad is not None and x.grad.dtype != np.float32
    ]
    return "float32 -> " + ", ".join(bad) if bad else ""


# --------------------------------------------------------------------- cases
def arithmetic_cases() -> None:
    a, b = randn(3, 1, 4), randn(2, 4)
    case("add (3,1,4) + (2,4)", lambda x, y: x + y, lambda x, y: x + y, a, b)
    case("sub (3,1,4) - (2,4)", lambda x, y: x - y, lambda x, y: x - y, a, b)
    case("mul (3,1,4) * (2,4)", lambda x, y: x * y, lambda x, y: x * y, a, b)
    case("div (3,1,4) / (2,4)", lambda x, y: x / y, lambda x, y: x / y, a, positive(2, 4))
    case("add scalar: 2.5 + x", lambda x: 2.5 + x, lambda x: 2.5 + x, a)
    case("sub scalar: x - 2, 3 - x", lambda x: (x - 2, 3 - x), lambda x: (x - 2, 3 - x), a)
    case("mul scalar: x * 1.5, -2 * x", lambda x: (x * 1.5, -2 * x), lambda x: (x * 1.5, -2 * x), a)
    case(
        "div scalar: x / 4, 2 / x",
        lambda x: (x / 4, 2 / x),
        lambda x: (x / 4, 2 / x),
        positive(3, 4),
    )
    case("neg", lambda x: -x, lambda x: -x, a)
    for c in (2, 3, 1, 0.5, -1, -2.0, 2.5, 0):
        case(
            f"pow scalar exponent: x ** {c}",
            lambda x, c=c: x**c,
            lambda x, c=c: x**c,
            positive(3, 4),
        )
    with_zero = np.array([0.0, 1.5, -2.0, 0.7])
    for c in (0, 1, 2, 3):
        case(
            f"pow scalar exponent at x = 0: x ** {c}",
            lambda x, c=c: x**c,
            lambda x, c=c: x**c,
            with_zero,
        )
    case(
        "pow tensor ** tensor (3,1,4) ** (2,4)",
        lambda x, y: x**y,
        lambda x, y: x**y,
        positive(3, 1, 4),
        randn(2, 4),
    )
    case(
        "pow tensor ** tensor at x = 0, y = 0",
        lambda x, y: x**y,
        lambda x, y: x**y,
        np.array([0.0, 0.0, 0.0, 2.0, 0.5]),
        np.array([0.0, 1.0, 2.5, 0.0, -1.5]),
    )
    y = np.array([2.0, 0.5, 0.0, -1.0])  # d(x**y)/dy at x = 0 is -inf where y < 0
    for x in (np.array(0.0), np.array([0.0, 0.0, 0.0, 1.5])):
        case(
            f"pow x ** y, x = {x.tolist()}, y = {y.tolist()}",
            lambda x, y: x**y,
            lambda x, y: x**y,
            x,
            y,
        )
    case("pow 0.0 ** y, y = [2, 0.5, 0, -1]", lambda y: 0.0**y, lambda y: 0.0**y, y)
    for c in (0.5, -1, -2, 1.5):
        case(
            f"pow scalar exponent at x = 0: x ** {c}",
            lambda x, c=c: x**c,
            lambda x, c=c: x**c,
            np.array([0.0, 1.5, 2.0, 0.7]),
        )
    for c in (-1, -2, 3):
        case(
            f"pow negative base: x ** {c}",
            lambda x, c=c: x**c,
            lambda x, c=c: x**c,
            -positive(3, 4),
        )
    case("pow scalar base: 2.0 ** x", lambda x: 2.0**x, lambda x: 2.0**x, randn(3, 4))
    case(
        "pow numpy-array exponent: x ** array",
        lambda x: x ** np.array([1.5, 2.0, 3.0], x.dtype),
        lambda x: x ** torch.tensor([1.5, 2.0, 3.0]),
        positive(2, 3),
    )


def matmul_cases() -> None:
    shapes = [
        ((4,), (4,)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
        ((3, 4), (4, 5)),
        ((2, 1, 3, 4), (5, 4, 6)),
        ((2, 3, 4), (4,)),
        ((4,), (2, 4, 3)),
        ((2, 3, 4), (4, 5)),
    ]
    for sx, sy in shapes:
        case(f"matmul {sx} @ {sy}", lambda x, y: x @ y, lambda x, y: x @ y, randn(*sx), randn(*sy))

    const = randn(3, 4)
    case(
        "matmul numpy array @ tensor (__rmatmul__)",
        lambda y: const.astype(y.dtype) @ y,
        lambda y: torch.tensor(const) @ y,
        randn(4, 2),
    )


def reduction_cases() -> None:
    x = randn(3, 4, 5)
    for axis in (None, 0, -1, (0, 2), (1,), np.int64(1), [0, 2]):
        for keepdims in (False, True):
            dim = tuple(range(3)) if axis is None else axis
            tag = f"axis={axis!r}, keepdims={keepdims}"
            case(
                f"sum {tag}",
                lambda x, a=axis, k=keepdims: x.sum(axis=a, keepdims=k),
                lambda x, d=dim, k=keepdims: x.sum(dim=d, keepdim=k),
                x,
            )
            case(
                f"mean {tag}",
                lambda x, a=axis, k=keepdims: x.mean(axis=a, keepdims=k),
                lambda x, d=dim, k=keepdims: x.mean(dim=d, keepdim=k),
                x,
            )
            case(
                f"max {tag}",
                lambda x, a=axis, k=keepdims: x.max(axis=a, keepdims=k),
                lambda x, d=dim, k=keepdims: x.amax(dim=d, keepdim=k),
                x,
            )
            case(
                f"min {tag}",
                lambda x, a=axis, k=keepdims: x.min(axis=a, keepdims=k),
                lambda x, d=dim, k=keepdims: x.amin(dim=d, keepdim=k),
                x,
            )
            for ddof in (0, 1):
                case(
                    f"var ddof={ddof} {tag}",
                    lambda x, a=axis, k=keepdims, q=ddof: x.var(axis=a, keepdims=k, ddof=q),
                    lambda x, d=dim, k=keepdims, q=ddof: x.var(dim=d, keepdim=k, correction=q),
                    x,
                )
    ties = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    case(
        "max with ties (gradient shared equally, as torch.amax)",
        lambda x: x.max(axis=1),
        lambda x: x.amax(dim=1),
        ties,
    )
    case("min with ties", lambda x: x.min(), lambda x: x.amin(), ties)


def elementwise_cases() -> None:
    x = randn(3, 4)
    case("exp", lambda x: x.exp(), torch.exp, x)
    case("log", lambda x: x.log(), torch.log, positive(3, 4))
    case("sqrt", lambda x: x.sqrt(), torch.sqrt, positive(3, 4))
    case("tanh", lambda x: x.tanh(), torch.tanh, x)
    case(
        "sigmoid (incl. |x| = 40)",
        lambda x: x.sigmoid(),
        torch.sigmoid,
        np.concatenate([x.ravel(), [40.0, -40.0, 0.0]]),
    )
    case("relu", lambda x: x.relu(), torch.relu, away_from_zero(3, 4))
    case("F.relu", F.relu, TF.relu, away_from_zero(3, 4))
    case("abs", lambda x: x.abs(), torch.abs, away_from_zero(3, 4))
    case(
        "F.sigmoid, F.tanh",
        lambda x: (F.sigmoid(x), F.tanh(x)),
        lambda x: (torch.sigmoid(x), torch.tanh(x)),
        x,
    )


def shape_cases() -> None:
    x = randn(2, 3, 4)
    case("reshape (2,3,4) -> (4, 6)", lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6), x)
    case("reshape -> (-1,) tuple", lambda x: x.reshape((-1,)), lambda x: x.reshape(-1), x)
    case("transpose (2, 0, 1)", lambda x: x.transpose(2, 0, 1), lambda x: x.permute(2, 0, 1), x)
    case("transpose () reverses", lambda x: x.transpose(), lambda x: x.permute(2, 1, 0), x)
    for shape in ((2, 3, 4), (1, 2, 3)):
        for axes in ((-1, 0, 1), (0, -1, -2)):
            case(
                f"transpose {axes} on {shape}",
                lambda x, a=axes: x.transpose(*a),
                lambda x, a=axes: x.permute(*a),
                randn(*shape),
            )
    case(
        "transpose([-1, 0, 1]) list",
        lambda x: x.transpose([-1, 0, 1]),
        lambda x: x.permute(-1, 0, 1),
        x,
    )
    case("swapaxes(-1, 0)", lambda x: x.swapaxes(-1, 0), lambda x: x.transpose(-1, 0), x)
    case(".T 3-D", lambda x: x.T, lambda x: x.permute(2, 1, 0), x)
    case(".T 2-D", lambda x: x.T, lambda x: x.T, randn(3, 5))
    case("swapaxes(0, 2)", lambda x: x.swapaxes(0, 2), lambda x: x.transpose(0, 2), x)
    case("getitem slices x[1:, ::2, :3]", lambda x: x[1:, ::2, :3], lambda x: x[1:, ::2, :3], x)
    case("getitem int x[1]", lambda x: x[1], lambda x: x[1], x)
    case("getitem x[..., None, 2]", lambda x: x[..., None, 2], lambda x: x[..., None, 2], x)
    idx = np.array([2, 0, 2, 2])
    case(
        "getitem int array with repeats x[[2,0,2,2]]",
        lambda x: x[idx],
        lambda x: x[torch.tensor(idx)],
        randn(3, 4),
    )
    rows, cols = np.array([0, 1, 0]), np.array([3, 3, 3])
    case(
        "getitem x[rows, cols] (repeated element)",
        lambda x: x[rows, cols],
        lambda x: x[torch.tensor(rows), torch.tensor(cols)],
        randn(3, 4),
    )
    case(
        "getitem x[:, [1, 1, 0]]", lambda x: x[:, [1, 1, 0]], lambda x: x[:, [1, 1, 0]], randn(3, 4)
    )
    mask = randn(3, 4) > 0
    case("getitem boolean mask", lambda x: x[mask], lambda x: x[torch.tensor(mask)], randn(3, 4))
    case(
        "getitem Tensor index",
        lambda x: x[mg.Tensor(idx)],
        lambda x: x[torch.tensor(idx)],
        randn(3, 4),
    )
    case(
        "concatenate axis=1",
        lambda a, b: mg.concatenate([a, b], axis=1),
        lambda a, b: torch.cat([a, b], dim=1),
        randn(2, 3, 4),
        randn(2, 1, 4),
    )
    case(
        "concatenate axis=-1, 3 inputs",
        lambda a, b, c: mg.concatenate([a, b, c], axis=-1),
        lambda a, b, c: torch.cat([a, b, c], dim=-1),
        randn(2, 3),
        randn(2, 1),
        randn(2, 2),
    )
    case(
        "stack axis=0",
        lambda a, b: mg.stack([a, b]),
        lambda a, b: torch.stack([a, b]),
        randn(3, 4),
        randn(3, 4),
    )
    case(
        "stack axis=-1",
        lambda a, b: mg.stack([a, b], axis=-1),
        lambda a, b: torch.stack([a, b], dim=-1),
        randn(3, 4),
        randn(3, 4),
    )
    case(
        "split 3 sections axis=1",
        lambda x: mg.split(x, 3, axis=1),
        lambda x: torch.split(x, 2, dim=1),
        randn(2, 6, 3),
    )
    case(
        "split at [1, 4] axis=-1",
        lambda x: mg.split(x, [1, 4], axis=-1),
        lambda x: torch.tensor_split(x, [1, 4], dim=-1),
        randn(2, 6),
    )
    case(
        "astype(float32) (float32 values, float64 gradient)",
        lambda x: x.astype(np.float32) * 2,
        lambda x: x.float() * 2,
        randn(3, 2),
    )


def selection_cases() -> None:
    x = randn(2, 3, 4)
    mask = np.triu(np.ones((3, 4), bool), 1)
    case(
        "masked_fill -inf (broadcast mask)",
        lambda x: x.masked_fill(mask, -np.inf),
        lambda x: x.masked_fill(torch.tensor(mask), -np.inf),
        x,
    )
    case(
        "masked_fill 0.5",
        lambda x: x.masked_fill(mask, 0.5),
        lambda x: x.masked_fill(torch.tensor(mask), 0.5),
        x,
    )
    cond = randn(3, 1) > 0
    case(
        "where(cond (3,1), x (3,4), y (4,))",
        lambda a, b: mg.where(cond, a, b),
        lambda a, b: torch.where(torch.tensor(cond), a, b),
        randn(3, 4),
        randn(4),
    )
    case(
        "where(cond, x, 0.0)",
        lambda a: mg.where(cond, a, 0.0),
        lambda a: torch.where(torch.tensor(cond), a, 0.0),
        randn(3, 4),
    )
    case(
        "where(cond, 1.5, y)",
        lambda b: mg.where(cond, 1.5, b),
        lambda b: torch.where(torch.tensor(cond), 1.5, b),
        randn(3, 4),
    )


def softmax_cases(tag: str, x: np.ndarray, axis: int) -> None:
    """softmax and log_softmax of x along `axis`."""
    case(f"softmax {tag}", lambda x: F.softmax(x, axis=axis), lambda x: torch.softmax(x, axis), x)
    case(
        f"log_softmax {tag}",
        lambda x: F.log_softmax(x, axis=axis),
        lambda x: torch.log_softmax(x, axis),
        x,
    )


def fused_cases() -> None:
    x = randn(2, 3, 5)
    for axis in (-1, 1, 0):
        softmax_cases(f"axis={axis}", x, axis)
        for keepdims in (False, True):
            case(
                f"logsumexp axis={axis} keepdims={keepdims}",
                lambda x, a=axis, k=keepdims: F.logsumexp(x, axis=a, keepdims=k),
                lambda x, a=axis, k=keepdims: torch.logsumexp(x, dim=a, keepdim=k),
                x,
            )
    causal = np.triu(np.ones((3, 5), bool), 1)
    case(
        "softmax after masked_fill -inf",
        lambda x: F.softmax(x.masked_fill(causal, -np.inf)),
        lambda x: torch.softmax(x.masked_fill(torch.tensor(causal), -np.inf), dim=-1),
        x,
    )
    case(
        "log_softmax of large logits (1e3 scale)",
        lambda x: F.log_softmax(x * 1000),
        lambda x: torch.log_softmax(x * 1000, dim=-1),
        x,
    )
    targets = rng.integers(0, 5, (2, 3))
    case(
        "cross_entropy (2,3,5)",
        lambda x: F.cross_entropy(x, targets),
        lambda x: TF.cross_entropy(x.reshape(-1, 5), torch.tensor(targets).reshape(-1)),
        x,
    )
    padded = targets.copy()
    padded[0, 1] = padded[1, 2] = -1
    case(
        "cross_entropy ignore_index=-1",
        lambda x: F.cross_entropy(x, padded, ignore_index=-1),
        lambda x: TF.cross_entropy(
            x.reshape(-1, 5), torch.tensor(padded).reshape(-1), ignore_index=-1
        ),
        x,
    )
    case(
        "cross_entropy 2-D (N, C), large logits",
        lambda x: F.cross_entropy(x * 100, targets[0]),
        lambda x: TF.cross_entropy(x * 100, torch.tensor(targets[0])),
        randn(3, 5),
    )
    wide = randn(4, 7) * 3
    for approximate in ("tanh", "none"):
        case(
            f"gelu approximate={approximate}",
            lambda x, a=approximate: F.gelu(x, a),
            lambda x, a=approximate: TF.gelu(x, approximate=a),
            np.concatenate([wide.ravel(), [0.0, 0.3, -0.47, 0.5, 4.5, -6.0, 9.0]]),
        )
    p = 0.3
    keep = np.random.default_rng(5).random((4, 6)) >= p
    case(
        "dropout p=0.3 (reference from the same mask)",
        lambda x: F.dropout(x, p, rng=np.random.default_rng(5)),
        lambda x: x * torch.tensor(keep) / (1 - p),
        randn(4, 6),
    )
    case(
        "dropout training=False is the identity",
        lambda x: F.dropout(x, p, training=False) * 1,
        lambda x: x * 1,
        randn(4, 6),
    )
    case(
        "layer_norm weight+bias (2,3,8)",
        lambda x, w, b: F.layer_norm(x, w, b),
        lambda x, w, b: TF.layer_norm(x, (8,), w, b),
        randn(2, 3, 8) * 3 + 1,
        randn(8),
        randn(8),
    )
    case(
        "layer_norm weight only, eps=1e-3",
        lambda x, w: F.layer_norm(x, w, eps=1e-3),
        lambda x, w: TF.layer_norm(x, (8,), w, None, eps=1e-3),
        randn(5, 8),
        randn(8),
    )
    case(
        "layer_norm no affine",
        lambda x: F.layer_norm(x),
        lambda x: TF.layer_norm(x, (8,)),
        randn(5, 8),
    )
    case(
        "linear with bias (2,3,4) -> 5", F.linear, TF.linear, randn(2, 3, 4), randn(5, 4), randn(5)
    )
    case("linear no bias (4,) -> 5", F.linear, TF.linear, randn(4), randn(5, 4))
    ids = np.array([[1, 3, 1], [0, 3, 3]])
    case(
        "embedding ids (2,3) with repeats",
        lambda w: F.embedding(ids, w),
        lambda w: TF.embedding(torch.tensor(ids), w),
        randn(5, 4),
    )

    for axis, dim in ((None, (0, 1, 2)), ((0, 2), (0, 2))):
        for scale in (1, 1000):  # 1000: exp overflows unshifted, so the row max is taken
            for keepdims in (False, True):
                case(
                    f"logsumexp axis={axis} keepdims={keepdims}, x * {scale}",
                    lambda x, a=axis, k=keepdims, s=scale: F.logsumexp(x * s, axis=a, keepdims=k),
                    lambda x, d=dim, k=keepdims, s=scale: torch.logsumexp(x * s, dim=d, keepdim=k),
                    x,
                )
    for logits in ([[20.0, 0.0, 0.0]], [[300.0, 280.0, 250.0]]):  # log p(class 0) ~ -4e-9
        z = np.array(logits)
        case(
            f"log_softmax, [:, 0], cross_entropy of {logits}",
            lambda x: _confident(F.log_softmax(x), F.cross_entropy(x, [0])),
            lambda x: _confident(torch.log_softmax(x, -1), TF.cross_entropy(x, torch.tensor([0]))),
            z,
        )
    case(
        "log_softmax, softmax size-1 class axis (3,1)",
        lambda x: (F.log_softmax(x), F.softmax(x)),
        lambda x: (torch.log_softmax(x, -1), torch.softmax(x, -1)),
        randn(3, 1),
    )
    case(
        "cross_entropy C=1 (loss 0)",
        lambda x: F.cross_entropy(x, np.zeros(3, int)),
        lambda x: TF.cross_entropy(x, torch.zeros(3, dtype=torch.long)),
        randn(3, 1),
    )
    inf, nan = np.inf, np.nan
    # a row with NaN is NaN throughout in both; a row holding +inf is a documented difference
    # (softmax NaN there and 0 elsewhere; torch: NaN throughout), held by the project's tests
    special = np.array([[nan, 1, 2], [-inf, 1, 2], [0.5, -1, 2], [1, nan, nan]])
    for axis, z in ((-1, special), (0, special.T)):
        softmax_cases(f"rows with NaN, -inf, axis={axis}", z, axis)
    case(
        "logsumexp rows with NaN, all -inf, some -inf",
        F.logsumexp,
        lambda x: torch.logsumexp(x, dim=-1),
        np.array([[nan, 1, 2], [-inf, -inf, -inf], [-inf, 1, 2], [0.5, -1, 2]]),
    )
    case(
        "logsumexp rows with +inf (torch: +inf)",
        F.logsumexp,
        lambda x: torch.logsumexp(x, dim=-1),
        np.array([[1, inf, 0], [inf, inf, 0], [-inf, inf, 0], [0.5, -1, 2]]),
    )
    masked = np.zeros((3, 5), bool)
    masked[1] = masked[2, 3:] = True
    case(
        "log_softmax after masked_fill -inf, a fully masked row (NaN, as torch)",
        lambda x: F.log_softmax(x.masked_fill(masked, -np.inf)),
        lambda x: torch.log_softmax(x.masked_fill(torch.tensor(masked), -np.inf), dim=-1),
        randn(3, 5),
    )
    case(
        "cross_entropy every target ignored (documented 0; torch sum)",
        lambda x: F.cross_entropy(x, np.full(3, -1), ignore_index=-1),
        lambda x: TF.cross_entropy(x, torch.full((3,), -1), ignore_index=-1, reduction="sum"),
        randn(3, 5),
    )
    case(
        "cross_entropy 1-D logits (C,), 0-d target",
        lambda x: F.cross_entropy(x, np.array(2)),
        lambda x: TF.cross_entropy(x, torch.tensor(2)),
        randn(5),
    )
    case(
        "cross_entropy int32 targets as a Tensor",
        lambda x: F.cross_entropy(x, mg.Tensor(targets[0].astype(np.int32))),
        lambda x: TF.cross_entropy(x, torch.tensor(targets[0])),
        randn(3, 5),
    )
    case(  # d/dx and d/dw are 0, which torch computes as noise of 1e-14: + x * w adds a scale
        "layer_norm C=1 weight+bias, + x * w",
        lambda x, w, b: F.layer_norm(x, w, b) + x * w,
        lambda x, w, b: TF.layer_norm(x, (1,), w, b) + x * w,
        randn(4, 1),
        randn(1),
        randn(1),
    )
    case("layer_norm 1-D input (8,)", F.layer_norm, lambda x: TF.layer_norm(x, (8,)), randn(8))
    case(
        "embedding 0-d id, Tensor ids",
        lambda w: (F.embedding(np.array(3), w), F.embedding(mg.Tensor(ids), w)),
        lambda w: (TF.embedding(torch.tensor(3), w), TF.embedding(torch.tensor(ids), w)),
        randn(5, 4),
    )
    case("dropout p=0 is the identity", lambda x: F.dropout(x, 0.0) * 1, lambda x: x * 1, randn(4))


def dtype_cases() -> None:
    """Integer operands and NumPy scalars must not widen a float32 tensor (PyTorch's rule):
    the float32 run of each case flags an output or a gradient that became float64."""
    x = positive(3, 4)
    ints, bools = np.arange(4), randn(4) > 0
    case(
        "x * np.arange(4), np.arange(4) * x",
        lambda x: (x * ints, ints * x),
        lambda x: (x * torch.tensor(ints), torch.tensor(ints) * x),
        x,
    )
    case(
        "x + np.arange(4), np.arange(4) - x, np.arange(4) / x",
        lambda x: (x + ints, ints - x, ints / x),
        lambda x: (x + torch.tensor(ints), torch.tensor(ints) - x, torch.tensor(ints) / x),
        x,
    )
    case(
        "x * Tensor(int64 array)",
        lambda x: x * mg.Tensor(ints),
        lambda x: x * torch.tensor(ints),
        x,
    )
    case(
        "x * Tensor(np.array(3)) (0-d int)",
        lambda x: x * mg.Tensor(np.array(3)),
        lambda x: x * torch.tensor(3),
        x,
    )
    case(
        "x * Tensor(np.array(2.0)) (0-d float64)",
        lambda x: x * mg.Tensor(np.array(2.0)),
        lambda x: x * torch.tensor(2.0),
        x,
    )
    case("x * bool array", lambda x: x * bools, lambda x: x * torch.tensor(bools), x)
    case(
        "x ** int array",
        lambda x: x ** np.array([1, 2, 3, 0]),
        lambda x: x ** torch.tensor([1, 2, 3, 0]),
        x,
    )
    for label, s in (
        ("np.float64(2.5)", np.float64(2.5)),
        ("np.int64(3)", np.int64(3)),
        ("np.sqrt(8.0)", np.sqrt(8.0)),
        ("np.array(2.0) (0-d)", np.array(2.0)),
        ("np.array(3) (0-d int)", np.array(3)),
    ):
        case(
            f"{label} on either side of + - * / **",
            lambda x, s=s: _both_sides(x, s),
            lambda x, s=s: _both_sides(x, s.item()),
            x,
        )
    cond = randn(3, 1) > 0
    case(
        "where(cond, x, np.float64(0.5)), masked_fill(np.float64)",
        lambda x: (mg.where(cond, x, np.float64(0.5)), x.masked_fill(cond, np.float64(2))),
        lambda x: (torch.where(torch.tensor(cond), x, 0.5), x.masked_fill(torch.tensor(cond), 2)),
        x,
    )


def _confident(log_p, loss):
    """(log_p, log_p[:, 0], loss) for rows confident in class 0: log p0 ~ -4e-9 and the loss
    ~ 4e-9 are outputs of their own, so their relative error is their own, not one against
    the row's large values. The gradient is checked through all three: that of log p0 or of
    the loss alone is onehot - p, whose 1 - p0 ~ 4e-9 is a cancellation both libraries round
    to ~4e-8 of exact; they then disagree by over 1e-8 for about half of the upstream grads."""
    return log_p, log_p[:, 0], loss


def _both_sides(x, s):
    return x + s, s + x, x - s, s - x, x * s, s * x, x / s, s / x, x**s, s**x


def edge_shape_cases() -> None:
    """0-d tensors, size-1 axes and empty axes, wherever both libraries allow them."""
    s, t = np.array(0.7), np.array(1.3)

    def unary(x):  # the same method names in both libraries
        names = ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "__neg__")
        return tuple(getattr(x, name)() for name in names)

    case("0-d: exp log sqrt tanh sigmoid relu abs neg", unary, unary, s)
    case(
        "0-d with 0-d: + - * / **",
        lambda a, b: (a + b, a - b, a * b, a / b, a**b),
        lambda a, b: (a + b, a - b, a * b, a / b, a**b),
        s,
        t,
    )
    case(
        "0-d with (3,): a * b + b / a",
        lambda a, b: a * b + b / a,
        lambda a, b: a * b + b / a,
        s,
        randn(3),
    )
    case(
        "0-d: sum mean max min var",
        lambda x: (x.sum(), x.mean(), x.max(), x.min(), x.var()),
        lambda x: (x.sum(), x.mean(), x.amax(), x.amin(), x.var(correction=0)),
        s,
    )
    case(
        "0-d: sum keepdims, reshape(1, 1), x[None], x[...], .T",
        lambda x: (x.sum(keepdims=True), x.reshape(1, 1), x[None], x[...], x.T),
        lambda x: (x.sum(dim=(), keepdim=True), x.reshape(1, 1), x[None], x[...], x.permute(())),
        s,
    )
    case("(1, 1) -> reshape(())", lambda x: x.reshape(()), lambda x: x.reshape(()), randn(1, 1))
    case(
        "stack of 0-d tensors",
        lambda a, b: mg.stack([a, b, a]),
        lambda a, b: torch.stack([a, b, a]),
        s,
        t,
    )
    case(
        "where(0-d cond, 0-d x, (3,) y)",
        lambda a, b: mg.where(np.array(True), a, b),
        lambda a, b: torch.where(torch.tensor(True), a, b),
        s,
        randn(3),
    )
    case(
        "0-d masked_fill",
        lambda x: x.masked_fill(True, 2.0),
        lambda x: x.masked_fill(torch.tensor(True), 2.0),
        s,
    )
    for approximate in ("none", "tanh"):
        case(
            f"0-d gelu approximate={approximate}",
            lambda x, a=approximate: F.gelu(x, a),
            lambda x, a=approximate: TF.gelu(x, approximate=a),
            s,
        )
    x = randn(3, 1, 4)
    for name, f, tf in (
        ("sum", lambda x: x.sum(axis=1), lambda x: x.sum(dim=1)),
        ("mean", lambda x: x.mean(axis=1), lambda x: x.mean(dim=1)),
        ("max", lambda x: x.max(axis=1), lambda x: x.amax(dim=1)),
        ("var", lambda x: x.var(axis=1), lambda x: x.var(dim=1, correction=0)),
        ("logsumexp", lambda x: F.logsumexp(x, axis=1), lambda x: torch.logsumexp(x, dim=1)),
        ("softmax", lambda x: F.softmax(x, axis=1), lambda x: torch.softmax(x, dim=1)),
    ):
        case(f"{name} over a size-1 axis (3,1,4) axis=1", f, tf, x)
    case("matmul (3,1) @ (1,4)", lambda a, b: a @ b, lambda a, b: a @ b, randn(3, 1), randn(1, 4))
    case("matmul (1,) @ (1,)", lambda a, b: a @ b, lambda a, b: a @ b, randn(1), randn(1))
    case("linear 1 -> 1", F.linear, TF.linear, randn(4, 1), randn(1, 1), randn(1))
    case(
        "split into size-1 pieces",
        lambda x: mg.split(x, 3),
        lambda x: torch.split(x, 1),
        randn(3, 2),
    )
    case("mul (1,1) * (3,4)", lambda a, b: a * b, lambda a, b: a * b, randn(1, 1), randn(3, 4))

    e = randn(2, 0, 3)
    case("add (0,3) + (3,)", lambda a, b: a + b, lambda a, b: a + b, randn(0, 3), randn(3))
    case(
        "sum of (2,0,3): axis=1, all, keepdims",
        lambda x: (x.sum(axis=1), x.sum(), x.sum(axis=(0, 1), keepdims=True)),
        lambda x: (x.sum(dim=1), x.sum(), x.sum(dim=(0, 1), keepdim=True)),
        e,
    )
    case(
        "reductions over a non-empty axis of (2,0,3)",
        lambda x: (x.max(axis=2), x.mean(axis=0)),
        lambda x: (x.amax(dim=2), x.mean(dim=0)),
        e,
    )
    case(
        "var axis=-1 of (2,0,3)", lambda x: x.var(axis=-1), lambda x: x.var(dim=-1, correction=0), e
    )
    case("matmul (3,0) @ (0,4)", lambda a, b: a @ b, lambda a, b: a @ b, randn(3, 0), randn(0, 4))
    case("matmul (0,3) @ (3,2)", lambda a, b: a @ b, lambda a, b: a @ b, randn(0, 3), randn(3, 2))
    case(
        "concatenate with an empty piece",
        lambda a, b: mg.concatenate([a, b], axis=1),
        lambda a, b: torch.cat([a, b], dim=1),
        randn(2, 0),
        randn(2, 3),
    )
    case(
        "split at [2, 2] (an empty piece)",
        lambda x: mg.split(x, [2, 2], axis=1),
        lambda x: torch.tensor_split(x, [2, 2], dim=1),
        randn(2, 5),
    )
    case(
        "stack of (0,3)",
        lambda a, b: mg.stack([a, b], 1),
        lambda a, b: torch.stack([a, b], 1),
        randn(0, 3),
        randn(0, 3),
    )
    none = np.zeros(0, int)
    case(
        "getitem x[1:1], x[empty int array]",
        lambda x: (x[1:1], x[none]),
        lambda x: (x[1:1], x[torch.tensor(none)]),
        randn(3, 4),
    )
    case(
        "softmax, log_softmax, logsumexp of (0,5)",
        lambda x: (F.softmax(x), F.log_softmax(x), F.logsumexp(x)),
        lambda x: (torch.softmax(x, -1), torch.log_softmax(x, -1), torch.logsumexp(x, -1)),
        randn(0, 5),
    )
    case(
        "layer_norm, linear, gelu of (0,4)",
        lambda x, w, b, m: (F.layer_norm(x, w, b), F.linear(x, m, b), F.gelu(x)),
        lambda x, w, b, m: (TF.layer_norm(x, (4,), w, b), TF.linear(x, m, b), TF.gelu(x)),
        randn(0, 4),
        randn(4),
        randn(4),
        randn(4, 4),
    )
    case(
        "embedding of empty ids",
        lambda w: F.embedding(none, w),
        lambda w: TF.embedding(torch.tensor(none), w),
        randn(5, 3),
    )
    case(
        "cross_entropy of 0 rows (documented 0; torch sum)",
        lambda x: F.cross_entropy(x, none),
        lambda x: TF.cross_entropy(x, torch.tensor(none), reduction="sum"),
        randn(0, 5),
    )


def noncontiguous_cases() -> None:
    """Inputs that reach the op as a transposed or strided view, not a contiguous array."""
    x = randn(5, 3)
    case("matmul x.T @ y", lambda x, y: x.T @ y, lambda x, y: x.T @ y, x, randn(5, 4))
    case(
        "matmul batched a @ b.swapaxes(-1, -2)",
        lambda a, b: a @ b.swapaxes(-1, -2),
        lambda a, b: a @ b.transpose(-1, -2),
        randn(2, 3, 4),
        randn(2, 5, 4),
    )
    for name, f, tf in (
        ("softmax", F.softmax, lambda x: torch.softmax(x, -1)),
        ("softmax axis=0", lambda x: F.softmax(x, 0), lambda x: torch.softmax(x, 0)),
        ("log_softmax", F.log_softmax, lambda x: torch.log_softmax(x, -1)),
        ("logsumexp", F.logsumexp, lambda x: torch.logsumexp(x, -1)),
        ("gelu", F.gelu, TF.gelu),
        ("layer_norm", F.layer_norm, lambda x: TF.layer_norm(x, (5,))),
        (
            "sum, max, var axis=-1",
            lambda x: (x.sum(-1), x.max(-1), x.var(-1)),
            lambda x: (x.sum(-1), x.amax(-1), x.var(-1, correction=0)),
        ),
        ("reshape(-1)", lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
        ("x[[2, 0, 2]]", lambda x: x[[2, 0, 2]], lambda x: x[[2, 0, 2]]),
    ):
        case(f"{name} of a transposed view", lambda x, f=f: f(x.T), lambda x, f=tf: f(x.T), x)
    case(
        "cross_entropy of a transposed view",
        lambda x: F.cross_entropy(x.T, [0, 4, 1]),
        lambda x: TF.cross_entropy(x.T, torch.tensor([0, 4, 1])),
        x,
    )
    case(
        "layer_norm weight+bias of a transposed view",
        lambda x, w, b: F.layer_norm(x.T, w, b),
        lambda x, w, b: TF.layer_norm(x.T, (5,), w, b),
        x,
        randn(5),
        randn(5),
    )
    case(
        "linear(x.T, w.T, b)",
        lambda x, w, b: F.linear(x.T, w.T, b),
        lambda x, w, b: TF.linear(x.T, w.T, b),
        randn(4, 2),
        randn(4, 6),
        randn(6),
    )
    case(
        "embedding with a transposed weight",
        lambda w: F.embedding([[1, 3, 1]], w.T),
        lambda w: TF.embedding(torch.tensor([[1, 3, 1]]), w.T),
        randn(4, 5),
    )
    cond = randn(3, 5) > 0
    case(
        "where, masked_fill of transposed views",
        lambda x, y: (mg.where(cond, x.T, y.T), x.T.masked_fill(cond, 0.5)),
        lambda x, y: (
            torch.where(torch.tensor(cond), x.T, y.T),
            x.T.masked_fill(torch.tensor(cond), 0.5),
        ),
        x,
        randn(5, 3),
    )
    case(
        "concatenate, stack of transposed views",
        lambda a, b: (mg.concatenate([a.T, b.T]), mg.stack([a.T, b.T], -1)),
        lambda a, b: (torch.cat([a.T, b.T]), torch.stack([a.T, b.T], -1)),
        x,
        randn(5, 3),
    )
    case(
        "softmax of a strided slice x[::2, ::-1]",
        lambda x: F.softmax(x[::2, ::-1]),
        lambda x: torch.softmax(x[::2].flip(1), -1),
        randn(6, 5),
    )


def reuse_cases() -> None:
    """One tensor used more than once in a graph: the gradients of all its uses add up."""
    x, w = randn(3, 4), randn(4)
    cond = randn(3, 4) > 0
    for name, f, tf in (
        ("x * x + x", lambda x: x * x + x, lambda x: x * x + x),
        ("x @ x.T", lambda x: x @ x.T, lambda x: x @ x.T),
        ("x - x.mean(0)", lambda x: x - x.mean(0), lambda x: x - x.mean(0)),
        (
            "x - x.max(1, keepdims)",
            lambda x: x - x.max(1, keepdims=True),
            lambda x: x - x.amax(1, keepdim=True),
        ),
        (
            "(x - mean) / sqrt(var)",
            lambda x: (x - x.mean()) / x.var().sqrt(),
            lambda x: (x - x.mean()) / x.var(correction=0).sqrt(),
        ),
        ("x.sum() * x", lambda x: x.sum() * x, lambda x: x.sum() * x),
        (
            "entropy: sum(softmax * log_softmax)",
            lambda x: (F.softmax(x) * F.log_softmax(x)).sum(-1),
            lambda x: (torch.softmax(x, -1) * torch.log_softmax(x, -1)).sum(-1),
        ),
        (
            "softmax and log_softmax outputs",
            lambda x: (F.softmax(x), F.log_softmax(x)),
            lambda x: (torch.softmax(x, -1), torch.log_softmax(x, -1)),
        ),
        (
            "x[[2, 0, 2]] + x[::-1]",
            lambda x: x[[2, 0, 2]] + x[::-1],
            lambda x: x[[2, 0, 2]] + x.flip(0),
        ),
        (
            "concatenate([x, x, x.T.T])",
            lambda x: mg.concatenate([x, x, x.T.T]),
            lambda x: torch.cat([x, x, x.T.T]),
        ),
        ("stack([x, 2 * x])", lambda x: mg.stack([x, 2 * x]), lambda x: torch.stack([x, 2 * x])),
        (
            "where(cond, x, -x)",
            lambda x: mg.where(cond, x, -x),
            lambda x: torch.where(torch.tensor(cond), x, -x),
        ),
        (
            "x.masked_fill(cond, 0) * x",
            lambda x: x.masked_fill(cond, 0.0) * x,
            lambda x: x.masked_fill(torch.tensor(cond), 0.0) * x,
        ),
        (
            "split: a * b + a",
            lambda x: (lambda a, b: a * b + a)(*mg.split(x, 2, axis=1)),
            lambda x: (lambda a, b: a * b + a)(*torch.split(x, 2, dim=1)),
        ),
        ("x * x.detach()", lambda x: x * x.detach(), lambda x: x * x.detach()),
        (
            "e = exp(x); e * e.sum(0)",
            lambda x: (lambda e: e * e.sum(0))(x.exp()),
            lambda x: (lambda e: e * e.sum(0))(x.exp()),
        ),
        ("|x| ** x", lambda x: x.abs() ** x, lambda x: x.abs() ** x),
        (
            "cross_entropy(x) + logsumexp(x).mean()",
            lambda x: F.cross_entropy(x, [1, 0, 3]) + F.logsumexp(x).mean(),
            lambda x: TF.cross_entropy(x, torch.tensor([1, 0, 3])) + torch.logsumexp(x, -1).mean(),
        ),
        ("gelu(x) * x.tanh()", lambda x: F.gelu(x) * x.tanh(), lambda x: TF.gelu(x) * x.tanh()),
        ("outputs x.exp() and x.sum()", lambda x: (x.exp(), x.sum()), lambda x: (x.exp(), x.sum())),
    ):
        case(f"reuse: {name}", f, tf, x)
    case(
        "reuse: layer_norm(x, w, w)",
        lambda x, w: F.layer_norm(x, w, w),
        lambda x, w: TF.layer_norm(x, (4,), w, w),
        x,
        w,
    )
    case(
        "reuse: linear(x, x, x[0])",
        lambda x: F.linear(x, x, x[0]),
        lambda x: TF.linear(x, x, x[0]),
        randn(4, 4),
    )
    case(
        "reuse: embedding(ids, w) @ w.T",
        lambda w: F.embedding([0, 2, 0], w) @ w.T,
        lambda w: TF.embedding(torch.tensor([0, 2, 0]), w) @ w.T,
        randn(3, 4),
    )

    def chain(x):  # 30 steps, each reading x again
        y = x
        for _ in range(30):
            y = (y * 0.9 + x).tanh()
        return y

    case("reuse: 30-step chain, x read at every step", chain, chain, x)


# --------------------------------------------------------------------- optimizers
def optimizer_case(name: str, make_mg: Callable, make_torch: Callable, steps: int = 4) -> None:
    try:
        shapes = [(3, 4), (4,), (2, 1, 3)]
        start = [randn(*s) for s in shapes]
        grads = [[randn(*s) for s in shapes] for _ in range(steps)]
        ps = [mg.Tensor(a.copy(), requires_grad=True) for a in start]
        ts = [torch.tensor(a.copy(), requires_grad=True) for a in start]
        opt, topt = make_mg(ps), make_torch(ts)
        err = 0.0
        for step_grads in grads:
            for p, t, g in zip(ps, ts, step_grads):
                p.grad, t.grad = g.copy(), torch.tensor(g)
            opt.step()
            topt.step()
            err = max([err] + [relative_error(p.data, t.detach().numpy()) for p, t in zip(ps, ts)])
        ps32 = [mg.Tensor(a.astype(np.float32), requires_grad=True) for a in start]
        opt32 = make_mg(ps32)
        for step_grads in grads[:2]:
            for p, g in zip(ps32, step_grads):
                p.grad = g.astype(np.float32)
            opt32.step()
        bad = [str(p.dtype) for p in ps32 if p.dtype != np.float32]
        bad += [
            f"{k} {v.dtype}"
            for s in opt32.state.values()
            for k, v in s.items()
            if isinstance(v, np.ndarray) and v.dtype != np.float32
        ]
        problem = "float32 -> " + ", ".join(bad) if bad else ""
        results.append((name, err, problem))
        status = "FAIL" if err > TOLERANCE or problem else "ok"
        print(f"{status:4} {name:<44} params after {steps} steps {err:9.2e}  {problem}")
    except Exception as error:
        results.append((name, float("inf"), f"{type(error).__name__}: {error}"))
        print(f"FAIL {name:<44} {type(error).__name__}: {error}")
        traceback.print_exc(limit=3, file=sys.stdout)


def optimizer_cases() -> None:
    for kw in (
        dict(momentum=0.9),
        dict(momentum=0.9, nesterov=True),
        dict(momentum=0.9, weight_decay=0.1),
        dict(momentum=0.8, dampening=0.3),
        dict(momentum=0.9, nesterov=True, weight_decay=0.05),
        dict(),
    ):
        optimizer_case(
            f"SGD lr=0.1 {kw}",
            lambda ps, kw=kw: optim.SGD(ps, lr=0.1, **kw),
            lambda ts, kw=kw: torch.optim.SGD(ts, lr=0.1, **kw),
        )
    for kw in (dict(), dict(weight_decay=0.1), dict(betas=(0.8, 0.99), eps=1e-6)):
        optimizer_case(
            f"Adam lr=0.01 {kw}",
            lambda ps, kw=kw: optim.Adam(ps, lr=0.01, **kw),
            lambda ts, kw=kw: torch.optim.Adam(ts, lr=0.01, **kw),
        )
    for kw in (dict(), dict(weight_decay=0.1), dict(weight_decay=0.0)):
        optimizer_case(
            f"AdamW lr=0.01 {kw}",
            lambda ps, kw=kw: optim.AdamW(ps, lr=0.01, **kw),
            lambda ts, kw=kw: torch.optim.AdamW(ts, lr=0.01, **kw),
        )
    optimizer_case(
        "Adam param groups (lr per group)",
        lambda ps: optim.Adam([{"params": ps[:1], "lr": 0.1}, {"params": ps[1:]}], lr=0.01),
        lambda ts: torch.optim.Adam([{"params": ts[:1], "lr": 0.1}, {"params": ts[1:]}], lr=0.01),
    )


def erf_case() -> None:
    """functional.erf (not a Function: GELU's helper) against torch.erf, values only."""
    name = "functional.erf on [-10, 10], its interval edges"
    edges = [0.0, -0.0, 0.46875, -0.46875, 0.46876, 4.0, -4.0, 4.0001, 5.9, 26.0, -27.0]
    edges += [1e300, -np.inf, np.inf]
    x = np.concatenate([np.linspace(-10, 10, 20001), edges])
    err = relative_error(F.erf(x), torch.erf(torch.tensor(x)).numpy())
    with np.errstate(over="ignore"):  # 1e300 becomes inf in float32
        x32 = x.astype(np.float32)
    problem = "" if F.erf(x32).dtype == np.float32 else "float32 -> float64"
    err32 = relative_error(F.erf(x32), torch.erf(torch.tensor(x32, dtype=torch.float64)).numpy())
    problem += "" if err32 < 1e-6 else f"float32 error {err32:.1e}"
    results.append((name, err, problem))
    status = "FAIL" if err > TOLERANCE or problem else "ok"
    print(f"{status:4} {name:<44} forward {err:9.2e}  (float32 {err32:.1e})  {problem}")


def clip_cases() -> None:
    for max_norm in (0.5, 100.0):
        name = f"clip_grad_norm max_norm={max_norm}"
        grads = [randn(3, 4), randn(5)]
        ps = [mg.Tensor(np.zeros(g.shape), requires_grad=True) for g in grads]
        ts = [torch.zeros(g.shape, requires_grad=True) for g in grads]
        for p, t, g in zip(ps, ts, grads):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        norm = optim.clip_grad_norm(ps, max_norm)
        tnorm = torch.nn.utils.clip_grad_norm_(ts, max_norm)
        err = max(
            [relative_error(norm, tnorm.numpy())]
            + [relative_error(p.grad, t.grad.numpy()) for p, t in zip(ps, ts)]
        )
        ps32 = [mg.Tensor(np.zeros(g.shape, np.float32), requires_grad=True) for g in grads]
        for p, g in zip(ps32, grads):
            p.grad = g.astype(np.float32)
        optim.clip_grad_norm(ps32, max_norm)
        bad = [str(p.grad.dtype) for p in ps32 if p.grad.dtype != np.float32]
        problem = "float32 -> " + ", ".join(bad) if bad else ""
        results.append((name, err, problem))
        status = "FAIL" if err > TOLERANCE or problem else "ok"
        print(f"{status:4} {name:<44} norm and grads {err:9.2e}  {problem}")


# --------------------------------------------------------------------- layers with weights
def _flat(result):
    """A layer's result as a list of tensors: (output, h_n) and (output, (h_n, c_n)) too."""
    if not isinstance(result, tuple):
        return [result]
    output, final = result
    return [output, *final] if isinstance(final, tuple) else [output, final]


def layer_case(
    name: str, make_mg: Callable, make_torch: Callable, call: Callable, *arrays: np.ndarray
) -> None:
    """`call(layer, *tensors)` on a minigrad layer and on torch's with the same weights,
    moved from minigrad's state dict into torch's layer by `load_state_dict`; compares the
    outputs and the gradients of every input and every weight (matched by name)."""
    try:
        layer, tlayer = make_mg(np.float64), make_torch()
        state = {k: torch.tensor(v) for k, v in layer.state_dict().items()}
        tlayer.load_state_dict(state)  # strict: every name and shape is PyTorch's
        xs = [mg.Tensor(a, requires_grad=True) for a in arrays]
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        outs, touts = _flat(call(layer, *xs)), _flat(call(tlayer, *ts))
        if len(outs) != len(touts):
            raise AssertionError(f"{len(outs)} outputs, torch {len(touts)}")
        grads = [rng.standard_normal(o.shape) for o in outs]
        forward = max(relative_error(o.data, t.detach().numpy()) for o, t in zip(outs, touts))
        _backward_mg(outs, grads)
        torch.autograd.backward(touts, [torch.tensor(g) for g in grads])
        tparams = dict(tlayer.named_parameters())
        pairs = [(x.grad, t.grad) for x, t in zip(xs, ts)]
        pairs += [(p.grad, tparams[n].grad) for n, p in layer.named_parameters()]
        backward = max(relative_error(mine, theirs.numpy()) for mine, theirs in pairs)
        xs32 = [mg.Tensor(a.astype(np.float32), requires_grad=True) * 1 for a in arrays]
        for x in xs32:  # as in _float32_problem: see each gradient as the layer returned it
            x.retain_grad()
        outs32 = _flat(call(make_mg(np.float32), *xs32))
        _backward_mg(outs32, [np.ones(o.shape, np.float32) for o in outs32])
        bad = [f"output {o.dtype}" for o in outs32 if o.dtype != np.float32]
        bad += [
            f"grad {i} {x.grad.dtype}" for i, x in enumerate(xs32) if x.grad.dtype != np.float32
        ]
        problem = "float32 -> " + ", ".join(bad) if bad else ""
        err = max(forward, backward)
        results.append((name, err, problem))
        status = "FAIL" if err > TOLERANCE or problem else "ok"
        print(f"{status:4} {name:<44} forward {forward:9.2e}  grad {backward:9.2e}  {problem}")
    except Exception as error:
        results.append((name, float("inf"), f"{type(error).__name__}: {error}"))
        print(f"FAIL {name:<44} {type(error).__name__}: {error}")
        traceback.print_exc(limit=3, file=sys.stdout)


def recurrent_cases() -> None:
    """RNN, LSTM and GRU with one and two layers, with and without an initial state, batch
    first or not; T = 7 steps of B = 3 sequences, input_size 4, hidden_size 5."""
    T, B, n_in, H = 7, 3, 4, 5
    for kind, settings, with_state in [
        ("RNN", {}, False),
        ("RNN", {"nonlinearity": "relu", "num_layers": 2}, True),
        ("RNN", {"batch_first": True, "bias": False}, True),
        ("LSTM", {}, False),
        ("LSTM", {"num_layers": 2}, True),
        ("LSTM", {"num_layers": 2, "batch_first": True, "bias": False}, False),
        ("GRU", {}, True),
        ("GRU", {"num_layers": 2, "batch_first": True}, True),
        ("GRU", {"num_layers": 2, "bias": False}, False),
    ]:
        layers = settings.get("num_layers", 1)
        x = randn(B, T, n_in) if settings.get("batch_first") else randn(T, B, n_in)
        states = [randn(layers, B, H) for _ in range(2 if kind == "LSTM" else 1)]
        name = f"nn.{kind}" + (f" {settings}" if settings else "")
        name += " + state" if with_state else ""

        def make_mg(dtype, kind=kind, settings=settings):
            return getattr(mg.nn, kind)(n_in, H, **settings, rng=0, dtype=dtype)

        def make_torch(kind=kind, settings=settings):
            return getattr(torch.nn, kind)(n_in, H, **settings)

        if not with_state:
            layer_case(name, make_mg, make_torch, lambda layer, x: layer(x), x)
        elif kind == "LSTM":
            layer_case(
                name, make_mg, make_torch, lambda layer, x, h, c: layer(x, (h, c)), x, *states
            )
        else:
            layer_case(name, make_mg, make_torch, lambda layer, x, h: layer(x, h), x, *states)


def convolution_cases() -> None:
    """Conv1d on (B, C_in, L) = (2, 4, 13) with stride, padding, dilation and groups; the
    causal layer against torch's Conv1d on an input padded on the left by hand."""
    x = randn(2, 4, 13)
    for settings in [
        {},
        {"stride": 2, "padding": 1},
        {"dilation": 3, "padding": 2},
        {"groups": 2, "bias": False},
        {"groups": 4, "stride": 3},
        {"stride": 2, "padding": 3, "dilation": 2, "groups": 2},
    ]:

        def make_mg(dtype, settings=settings):
            return mg.nn.Conv1d(4, 8, 3, **settings, rng=0, dtype=dtype)

        def make_torch(settings=settings):
            return torch.nn.Conv1d(4, 8, 3, **settings)

        layer_case(f"nn.Conv1d {settings}", make_mg, make_torch, lambda c, x: c(x), x)
    left = 2 * (3 - 1)  # dilation * (kernel_size - 1)

    def causal(layer, x):
        return layer(x) if isinstance(layer, mg.nn.Module) else layer(TF.pad(x, (left, 0)))

    layer_case(
        "nn.Conv1d causal, dilation 2",
        lambda dtype: mg.nn.Conv1d(4, 8, 3, dilation=2, causal=True, rng=0, dtype=dtype),
        lambda: torch.nn.Conv1d(4, 8, 3, dilation=2),
        causal,
        x,
    )


def large_cases() -> None:
    """Shapes of 32768 elements, past the size where sums go to BLAS and outer products to
    a matrix product, and logits that take each branch of exp_and_sum."""
    x = randn(4, 32, 256)
    for axis in (-1, 1):
        case(
            f"softmax (4,32,256) axis={axis}",
            lambda x, a=axis: F.softmax(x, axis=a),
            lambda x, a=axis: torch.softmax(x, dim=a),
            x,
        )
    for scale, shift, what in ((1, 0, "exp unshifted"), (500, 0, "row max: too large"),
                               (1, -800, "row max: rows underflow")):  # fmt: skip
        case(
            f"log_softmax (4,32,256), {what}",
            lambda x, s=scale, c=shift: F.log_softmax(x * s + c),
            lambda x, s=scale, c=shift: torch.log_softmax(x * s + c, dim=-1),
            x,
        )
        case(
            f"logsumexp (4,32,256), {what}",
            lambda x, s=scale, c=shift: F.logsumexp(x * s + c),
            lambda x, s=scale, c=shift: torch.logsumexp(x * s + c, dim=-1),
            x,
        )
        targets = rng.integers(0, 256, (4, 32))
        targets[0, :5] = -1
        case(
            f"cross_entropy (4,32,256) ignore_index, {what}",
            lambda x, s=scale, c=shift, t=targets: F.cross_entropy(x * s + c, t, ignore_index=-1),
            lambda x, s=scale, c=shift, t=targets: TF.cross_entropy(
                (x * s + c).reshape(-1, 256), torch.tensor(t).reshape(-1), ignore_index=-1
            ),
            x,
        )
    rows_masked = np.zeros((4, 32, 256), bool)
    rows_masked[1, 3] = rows_masked[2, :, 100:] = True
    case(
        "softmax (4,32,256), -inf entries and a fully masked row",
        lambda x: F.softmax(x.masked_fill(rows_masked, -np.inf)),
        lambda x: torch.nan_to_num(
            torch.softmax(x.masked_fill(torch.tensor(rows_masked), -np.inf), dim=-1)
        ),
        x,
    )
    case(
        "gelu tanh (4,32,256)",
        lambda x: F.gelu(x * 3, "tanh"),
        lambda x: TF.gelu(x * 3, approximate="tanh"),
        x,
    )
    for name, params in (("weight+bias", (randn(256), randn(256))), ("weight", (randn(256),)),
                         ("no affine", ())):  # fmt: skip
        case(
            f"layer_norm {name} (4,32,256)",
            lambda x, *p: F.layer_norm(x, *p),
            lambda x, *p: TF.layer_norm(x, (256,), *p),
            x * 3 + 1,
            *params,
        )
    case("sum (4,32,256)", lambda x: x.sum(), lambda x: x.sum(), x)
    case("sum axis=-1 (4,32,256)", lambda x: x.sum(axis=-1), lambda x: x.sum(-1), x)
    case(
        "sum axis=-1 keepdims (4,32,256)",
        lambda x: x.sum(axis=-1, keepdims=True),
        lambda x: x.sum(-1, keepdim=True),
        x,
    )
    case("(softmax * c).sum() (4,32,256)", lambda x: (F.softmax(x) * x).sum(),
         lambda x: (torch.softmax(x, -1) * x).sum(), x)  # fmt: skip
    xt = randn(256, 32, 4)  # .transpose(2, 1, 0) is a (4, 32, 256) view, not contiguous

    def mg_softmaxes(x, scale):
        v = x.transpose(2, 1, 0) * scale
        return F.softmax(v), F.log_softmax(v), F.logsumexp(v)

    def torch_softmaxes(x, scale):
        v = x.permute(2, 1, 0) * scale
        return v.softmax(-1), v.log_softmax(-1), v.logsumexp(-1)

    for scale, what in ((1, "exp unshifted"), (500, "row max")):
        case(
            f"softmax, log_softmax, logsumexp of a transposed view, {what}",
            lambda x, s=scale: mg_softmaxes(x, s),
            lambda x, s=scale: torch_softmaxes(x, s),
            xt,
        )
    t = rng.integers(0, 256, (4, 32))
    case(
        "cross_entropy (4,32,256) of a transposed view",
        lambda x: F.cross_entropy(x.transpose(2, 1, 0), t),
        lambda x: TF.cross_entropy(
            x.permute(2, 1, 0).reshape(-1, 256), torch.tensor(t).reshape(-1)
        ),
        xt,
    )
    case(
        "layer_norm weight+bias (4,32,256) of a transposed view",
        lambda x, w, b: F.layer_norm(x.transpose(2, 1, 0), w, b),
        lambda x, w, b: TF.layer_norm(x.permute(2, 1, 0), (256,), w, b),
        xt,
        randn(256),
        randn(256),
    )
    case(
        "sum all, sum axis=-1 of a transposed (4,32,256) view",
        lambda x: (x.transpose(2, 1, 0).sum(), x.transpose(2, 1, 0).sum(axis=-1)),
        lambda x: (x.permute(2, 1, 0).sum(), x.permute(2, 1, 0).sum(-1)),
        xt,
    )
    case(
        "gelu tanh of a transposed (4,32,256) view",
        lambda x: F.gelu(x.transpose(2, 1, 0), "tanh"),
        lambda x: TF.gelu(x.permute(2, 1, 0), approximate="tanh"),
        xt,
    )


def main() -> int:
    print(
        f"minigrad vs torch {torch.__version__}, numpy {np.__version__}; float64, "
        f"tolerance {TOLERANCE:g} relative (max|a - b| / max|b| per tensor)"
    )
    for group in (
        arithmetic_cases,
        matmul_cases,
        reduction_cases,
        elementwise_cases,
        shape_cases,
        selection_cases,
        dtype_cases,
        fused_cases,
        edge_shape_cases,
        noncontiguous_cases,
        reuse_cases,
        large_cases,
        erf_case,
        optimizer_cases,
        clip_cases,
        recurrent_cases,
        convolution_cases,
    ):
        with np.errstate(divide="ignore", invalid="ignore"):  # cases at 0, inf, NaN on purpose
            group()
    failed = [(n, e, p) for n, e, p in results if e > TOLERANCE or p]
    worst = max(results, key=lambda r: r[1])
    print(
        f"\n{len(results)} cases, {len(failed)} failed; largest error {worst[1]:.2e} ({worst[0]})"
    )
    for name, err, problem in failed:
        print(f"  FAILED {name}: error {err:.2e} {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
