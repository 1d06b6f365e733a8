"""Random expression graphs: gradients match finite differences, and float32 stays float32.

A graph is a small program over leaves n0, n1, ...: each line makes one node from earlier
nodes, and a node may feed several later ones. Hypothesis draws a seed for the leaves and
one for each line; a line's op and arguments come from its seed, knowing the values of its
inputs, which are first moved into the op's domain: bounded for every op, positive for log,
sqrt, pow and division, away from 0 for abs and relu, and max or min only without near-ties.
A failing example prints as the program, ready to paste.
"""

import itertools
import math
import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import Tensor, gradcheck
from minigrad import functional as F

SCALARS = ["2", "0.5", "-1.5", "np.float64(0.5)", "np.int64(2)", "np.float32(1.5)",
           "np.array(0.25)"]  # fmt: skip
EXPONENTS = ["2", "3", "0.5", "-1", "1.5", "np.float64(-0.5)", "np.int64(2)"]
SMOOTH = ["-{}", "{}.exp()", "{}.tanh()", "{}.sigmoid()", "F.gelu({})",
          'F.gelu({}, approximate="tanh")', "2.0 ** {}", "np.float64(0.5) ** {}"]  # fmt: skip
SHAPES = [s for rank in range(4) for s in itertools.product(range(1, 5), repeat=rank)]
NAMESPACE = {"np": np, "mg": mg, "F": F}


def literal(a):
    return f"np.array({np.asarray(a).tolist()})"


def fits(fn, *shapes):
    """Whether `fn` takes arrays of these shapes (they broadcast, or their inner sizes match)."""
    try:
        fn(*map(np.zeros, shapes))
        return True
    except ValueError:
        return False


def leaf_values(shapes, seed):
    """Standard-normal values pushed to |x| >= 0.1."""
    rng = np.random.default_rng(seed)
    return [v + np.where(v < 0, -0.1, 0.1) for v in map(rng.standard_normal, shapes)]


class Graph:
    """The program drawn so far and the float64 value of each node (rank <= 3, dims 1-4)."""

    def __init__(self, seed, leaves):
        self.seed, self.leaves = seed, leaves
        self.values = {f"n{i}": v for i, v in enumerate(leaves)}
        self.lines = []

    def add(self, expr):
        name = f"n{len(self.values)}"
        nodes = {k: Tensor(v) for k, v in self.values.items()}
        self.values[name] = eval(expr, NAMESPACE, nodes).data
        self.lines.append(f"    {name} = {expr}")
        return name

    def source(self):
        """`def graph(leaves): ...` returning the nodes that feed no other node."""
        used = set(re.findall(r"\bn\d+\b", "\n".join(s.split(" = ", 1)[1] for s in self.lines)))
        names = list(self.values)
        sinks = [n for n in names[len(self.leaves) :] if n not in used]
        header = f"def graph({', '.join(names[: len(self.leaves)])}):"
        return "\n".join([header, *self.lines, f"    return [{', '.join(sinks)}]"])

    def function(self):
        namespace = dict(NAMESPACE)
        exec(self.source(), namespace)
        return namespace["graph"]

    def __repr__(self):
        shapes = [v.shape for v in self.leaves]
        return f"# leaves: leaf_values({shapes}, seed={self.seed})\n{self.source()}"

    def bounded_nodes(self):
        return {n: v for n, v in self.values.items() if np.abs(v).max() <= 4}

    def bounded(self, x):
        return x if x in self.bounded_nodes() else self.add(f"{x}.tanh() * 3")

    def positive(self, x):
        v = self.values[x]
        return x if v.min() >= 0.2 and v.max() <= 4 else self.add(f"{x}.sigmoid() + 0.5")

    def off_kink(self, x):
        for shift in (0, 0.3, -0.3, 0.7, -0.7):
            if np.abs(self.values[x] + shift).min() >= 0.05:
                return self.add(f"{x} + {shift}") if shift else x
        return self.positive(x)


def pick(rng, options):
    return options[rng.integers(len(options))]


def signed(rng, axis, ndim):
    return pick(rng, [axis, axis - ndim])


def broadcast_variant(rng, shape):
    """`shape` without some leading axes and with some axes of size 1."""
    return tuple(pick(rng, [n, n, 1]) for n in shape[rng.integers(len(shape) + 1) :])


def axis_argument(rng, ndim):
    """None, an axis (maybe negative) or a tuple of distinct axes."""
    axes = tuple(signed(rng, int(a), ndim) for a in rng.permutation(ndim)[: rng.integers(ndim + 1)])
    return pick(rng, [None, axes[0], axes]) if axes else None


def without(shape, axis):
    return shape[:axis] + shape[axis + 1 :]


def partner(rng, g, accepts):
    """A bounded node whose shape `accepts`, or None."""
    names = [n for n, v in g.bounded_nodes().items() if accepts(v.shape)]
    return pick(rng, names) if names else None


def smooth(rng, g, x):
    return pick(rng, SMOOTH).format(x)


def positive_domain(rng, g, x):
    form = pick(rng, ["{}.log()", "{}.sqrt()", "{} ** {}", "{1} / {0}"])
    return form.format(g.positive(x), pick(rng, EXPONENTS))


def kinked(rng, g, x):
    return f"{g.off_kink(x)}.{pick(rng, ['abs', 'relu'])}()"


def arithmetic(rng, g, x):
    op = pick(rng, ["+", "-", "*", "/", "**"])
    if rng.random() < 0.5:  # a Python or NumPy scalar on either side (never the base of **)
        s = pick(rng, SCALARS)
        if op == "**" or rng.random() < 0.5:
            return f"{g.positive(x) if op == '**' else x} {op} {s}"
        return f"{s} {op} {g.positive(x) if op == '/' else x}"
    y = partner(rng, g, lambda s: fits(np.add, s, g.values[x].shape))
    return f"{g.positive(x) if op == '**' else x} {op} {g.positive(y) if op == '/' else y}"


def reduction(rng, g, x):
    v, axis, keepdims = g.values[x], axis_argument(rng, g.values[x].ndim), rng.random() < 0.5
    name = pick(rng, ["sum", "mean", "var", "max", "min"])
    w = -v if name == "min" else v
    if name in ("max", "min") and ((w >= w.max(axis, keepdims=True) - 0.01).sum(axis) > 1).any():
        return None
    ddof = ", ddof=1" if name == "var" and v.size > v.sum(axis).size and rng.random() < 0.5 else ""
    return f"{x}.{name}(axis={axis}, keepdims={keepdims}{ddof})"


def reshape(rng, g, x):
    shape = list(pick(rng, [s for s in SHAPES if math.prod(s) == g.values[x].size]))
    if shape and rng.random() < 0.5:
        shape[rng.integers(len(shape))] = -1
    return f"{x}.reshape({tuple(shape)})"


def permute(rng, g, x):
    ndim = g.values[x].ndim
    axes = tuple(signed(rng, int(a), ndim) for a in rng.permutation(ndim))
    forms = [f"{x}.transpose{axes}", f"{x}.transpose({axes})", f"{x}.T"]
    if ndim:
        a, b = (signed(rng, int(rng.integers(ndim)), ndim) for _ in range(2))
        forms.append(f"{x}.swapaxes({a}, {b})")
    return pick(rng, forms)


def index(rng, g, x):
    """Ints, non-empty slices (steps 1, 2, -1) and at most one integer array with repeats
    (an array, a list or a tuple), over the first or (after ...) the last axes."""
    shape = g.values[x].shape
    k, ellipsis, array_at = rng.integers(1, len(shape) + 1), rng.random() < 0.5, rng.integers(-1, 2)
    parts = ["..."] if ellipsis else []
    for i, n in enumerate(shape[-k:] if ellipsis else shape[:k]):
        start, stop = sorted(int(a) for a in rng.choice(n + 1, 2, replace=False))
        ids = [int(j) for j in rng.integers(-n, n, rng.integers(1, 5))]
        before_start = start - 1 if start else ""
        ranges = [str(ids[0]), f"{start}:{stop}", f"{start}::2", f"{stop - 1}:{before_start}:-1"]
        arrays = [literal(ids), str(ids), str(tuple(ids))]
        parts.append(pick(rng, arrays if i == array_at else ranges))
    return f"{x}[{', '.join(parts)},]"


def join(rng, g, x):
    """stack with nodes of the same shape, concatenate with one that fits, or split: a piece
    of an even split, or all pieces joined in reverse order."""
    shape, kind = g.values[x].shape, pick(rng, ["stack", "concatenate", "split"])
    if not shape or kind == "stack":
        same = [n for n, v in g.bounded_nodes().items() if v.shape == shape]
        xs = ", ".join([x, *(pick(rng, same) for _ in range(rng.integers(3)))])
        axis = rng.integers(-len(shape) - 1, len(shape) + 1)
        return f"mg.stack([{xs}], axis={axis})" if len(shape) < 3 else None
    axis = int(rng.integers(len(shape)))
    a, n, others = signed(rng, axis, len(shape)), shape[axis], without(shape, axis)
    if kind == "concatenate":
        joins = lambda s: len(s) == len(shape) and without(s, axis) == others and s[axis] + n <= 4  # noqa: E731
        y = partner(rng, g, joins)
        return None if y is None else f"mg.concatenate([{x}, {y}], axis={a})"
    if n == 1:
        return None
    if n % 2 == 0 and rng.random() < 0.5:
        return f"mg.split({x}, 2, axis={a})[{rng.integers(2)}]"
    return f"mg.concatenate(mg.split({x}, [{rng.integers(1, n)}], axis={a})[::-1], axis={a})"


def select(rng, g, x):
    shape = g.values[x].shape
    if rng.random() < 0.5:
        mask = rng.random(broadcast_variant(rng, shape)) < 0.5
        return f"{x}.masked_fill({literal(mask)}, {pick(rng, SCALARS)})"
    y = partner(rng, g, lambda s: fits(np.add, s, shape))
    condition = literal(rng.random(np.broadcast_shapes(shape, g.values[y].shape)) < 0.5)
    x, y = pick(rng, [(x, y), (y, x), (x, pick(rng, SCALARS)), (pick(rng, SCALARS), x)])
    return f"mg.where({condition}, {x}, {y})"


def matmul(rng, g, x):
    shape, nodes = g.values[x].shape, g.bounded_nodes()
    pairs = [(x, y) for y, v in nodes.items() if fits(np.matmul, shape, v.shape)]
    pairs += [(y, x) for y, v in nodes.items() if fits(np.matmul, v.shape, shape)]
    if len(shape) >= 2:
        pairs.append((x, f"{x}.swapaxes(-1, -2)"))
    return "{} @ {}".format(*pick(rng, pairs))


def fused(rng, g, x):
    ndim = g.values[x].ndim
    axis = signed(rng, int(rng.integers(max(ndim, 1))), max(ndim, 1))
    forms = ["F.softmax({}, axis={})", "F.log_softmax({}, axis={})"]
    forms += ["F.logsumexp({}, axis={}, keepdims={})"] if ndim else []
    return pick(rng, forms).format(x, axis, rng.random() < 0.5)


def layer_norm(rng, g, x):
    """layer_norm(x, [weight, [bias]]) where no row is nearly constant (var >= 0.05)."""
    v = g.values[x]
    c = v.shape[-1]
    if c > 1 and v.var(axis=-1).min() < 0.05:
        return None
    rows = [n for n, w in g.bounded_nodes().items() if w.shape == (c,)]
    rows += [f"{x}.reshape(-1, {c})[{i}]" for i in range(v.size // c)]
    return f"F.layer_norm({', '.join([x, *(pick(rng, rows) for _ in range(rng.integers(3)))])})"


def linear(rng, g, x):
    c = g.values[x].shape[-1]
    weights = [n for n, w in g.bounded_nodes().items() if w.ndim == 2 and w.shape[1] == c]
    w = pick(rng, [*weights, f"{x}.reshape(-1, {c})[:3]"])
    return f"F.linear({x}, {w}{pick(rng, ['', f', {w}[:, 0]', f', {w}.sum(axis=1)'])})"


def cross_entropy(rng, g, x):
    """Random targets; an ignored class (padding or a real one) is used at least once."""
    shape = g.values[x].shape
    targets = rng.integers(0, shape[-1], shape[:-1])
    ignore = pick(rng, [None, -100, int(targets.flat[0])])
    if ignore == -100:
        targets[rng.random(targets.shape) < 0.5] = targets.flat[0] = -100
    return f"F.cross_entropy({x}, {literal(targets)}, ignore_index={ignore})"


LEAST_RANK = {arithmetic: 0, smooth: 0, positive_domain: 0, kinked: 0, reduction: 0,
              reshape: 0, permute: 0, index: 1, join: 0, select: 0, matmul: 1, fused: 0,
              layer_norm: 1, linear: 1, cross_entropy: 1}  # fmt: skip


def pick_input(rng, g):
    """A node for the next op: the two newest and those with more axes are more likely."""
    names, values = list(g.values), list(g.values.values())
    weights = [(1 + v.ndim) ** 2 * (4 if i >= len(names) - 2 else 1) for i, v in enumerate(values)]
    return names[rng.choice(len(names), p=np.divide(weights, sum(weights)))]


@st.composite
def graphs(draw):
    """One to three leaves of broadcastable shapes, then three to eight lines."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    base = pick(rng, [s for s in SHAPES if s and max(s) <= 3])
    shapes = [base, *(broadcast_variant(rng, base) for _ in range(draw(st.integers(0, 2))))]
    g = Graph(seed, leaf_values(shapes, seed))
    line_seeds = draw(st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=8))
    for line, line_seed in enumerate(line_seeds):
        rng, expr = np.random.default_rng([seed, line, line_seed]), None
        while expr is None:
            x = pick_input(rng, g)
            op = pick(rng, [op for op, rank in LEAST_RANK.items() if g.values[x].ndim >= rank])
            expr = op(rng, g, g.bounded(x))
        g.add(expr)
    return g


RANDOM_GRAPHS = settings(
    max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@RANDOM_GRAPHS
@given(graphs())
def test_random_graph_gradients_match_finite_differences(graph):
    leaves = [Tensor(v, requires_grad=True) for v in graph.leaves]
    assert gradcheck(graph.function(), *leaves)


@RANDOM_GRAPHS
@given(graphs())
def test_random_graph_keeps_float32_in_every_value_and_gradient(graph):
    leaves = [Tensor(v.astype(np.float32), requires_grad=True) for v in graph.leaves]
    loss = sum(out.sum() for out in graph.function()(*leaves))
    nodes = mg.tensor._topological_order(loss)  # every intermediate, to see its gradient too
    for node in nodes:
        node.retain_grad()
    loss.backward()
    for t in (*leaves, *nodes):
        assert t.dtype == np.float32
        assert t.grad is None or t.grad.dtype == np.float32
