"""The derivative table: every differentiable operation and its local derivatives.

Each :class:`Op` names an operation and gives, for each input, a
vector-Jacobian product (VJP): a function ``vjp(g, out, ctx, *inputs)`` that
turns the gradient ``g`` of the objective with respect to the op's output into
the gradient with respect to that input.  ``out`` is the op's result,
``inputs`` are its operands and ``ctx`` holds whatever else the rule needs:
the op's other arguments (an axis, a shape, an index, a mask) and, for a few
ops, arrays saved by the forward pass (cross_entropy's probabilities).

The rules are written only with arithmetic and the small helpers below
(``exp``, ``log``, ``sum``, ``reshape``, ...), which work on three kinds of
operand: Python floats (for Value), numpy arrays (for Tensor), and graph nodes.
During an ordinary backward pass the engine calls them with raw floats and
arrays, so they cost no more than hand-written numpy.  With
``create_graph=True`` it calls them with the nodes themselves, so the same
rule records the graph of the gradient, which can be differentiated again.

Each op also carries ``formulas``: the local derivative of its output with
respect to each input, in words a student can read next to the maths.  The
explanations and pictures read them from here; nowhere else in chainrule are
derivatives written down.

Broadcasting is handled once, by the engine: when a rule returns a gradient
whose shape differs from its input's (because the input was broadcast), the
engine applies :func:`unbroadcast`, which sums over the broadcast axes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .engine import Node
from .numerics import float_exp, float_log, float_pow, float_sigmoid, quiet, unbroadcast
from .ops import OPS as OPS  # (the table registers itself there; importable from here too)
from .ops import Op

# ---------------------------------------------------------------------------
# Helpers that work on floats, numpy arrays and graph nodes alike.  Rules use
# these so that one rule serves both plain backward and create_graph.
# ---------------------------------------------------------------------------


def shape_of(x: Any) -> tuple[int, ...]:
    """Shape of an array or node; () for a Python number."""
    return getattr(x, "shape", ())


def raw(x: Any) -> Any:
    """The plain data behind a node (used for masks, which have no gradient)."""
    return x.data if isinstance(x, Node) else x


# Node, typed as Any: these helpers call Tensor methods on the nodes they get,
# which the type checker cannot see through a test against the base class.
_AnyNode: Any = Node


def exp(x: Any) -> Any:
    if isinstance(x, _AnyNode):
        return x.exp()
    if isinstance(x, float):
        return float_exp(x)
    return np.exp(x)


def sigmoid(x: Any) -> Any:
    """The logistic function 1/(1+e^-x), without overflow for any x."""
    if isinstance(x, _AnyNode):
        return x.sigmoid()
    if isinstance(x, float):
        return float_sigmoid(x)
    return np.exp(-np.logaddexp(0.0, -x))


def power(x: Any, e: Any) -> Any:
    """``x ** e``; for Python floats, inf or nan where IEEE 754 gives them."""
    if isinstance(x, float) and not isinstance(e, _AnyNode):
        return float_pow(x, e)
    return x**e


def log(x: Any) -> Any:
    if isinstance(x, _AnyNode):
        return x.log()
    if isinstance(x, (float, int)):
        return float_log(x)
    return np.log(x)


def log_softmax(x: Any, axis: int) -> Any:
    """``x - logsumexp(x)`` along ``axis``, without overflow, and silent about log(0)."""
    if isinstance(x, _AnyNode):
        return x.log_softmax(axis=axis)
    z = x - safe_max(x, (axis,))
    with quiet():
        return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def safe_max(x: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    """Max over ``axes`` (kept), with infinities replaced by 0 so ``x - m`` stays finite."""
    try:
        m = x.max(axis=axes, keepdims=True)
    except ValueError:  # an axis of size 0 has no max; any m leaves x - m empty, so take 0
        reduced = range(x.ndim) if axes is None else [a % x.ndim for a in axes]
        kept = tuple(1 if i in reduced else n for i, n in enumerate(x.shape))
        return np.zeros(kept, dtype=x.dtype)
    if np.isfinite(m).all():  # the usual case: nothing to replace
        return m
    return np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)


def sign(x: Any) -> Any:
    """Sign of x as plain data: a mask, never differentiated."""
    x = raw(x)
    if isinstance(x, float):
        return (x > 0) - (x < 0)
    return np.sign(x)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    if isinstance(x, _AnyNode):
        return x.sum(axis=axis, keepdims=keepdims)
    return np.asarray(x).sum(axis=axis, keepdims=keepdims)


def reshape(x: Any, shape: tuple[int, ...]) -> Any:
    if isinstance(x, _AnyNode):
        return x.reshape(shape)
    return np.asarray(x).reshape(shape)


def transpose(x: Any, axes: tuple[int, ...] | None) -> Any:
    if isinstance(x, _AnyNode):
        return x.transpose(axes)
    return np.asarray(x).transpose(axes)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    if isinstance(x, _AnyNode):
        return x.broadcast_to(shape)
    # A fresh array rather than np.broadcast_to's read-only view: it is several
    # times faster on small arrays, and gradients may later be added in place.
    x = np.asarray(x)
    out = np.empty(shape, dtype=x.dtype)
    out[...] = x
    return out


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` holds, else ``b``, for floats, arrays and nodes alike.

    Rules use it to hand a gradient to some elements and exactly 0 to the
    others.  It is a selection, not a product with a 0/1 mask: ``g * 0`` is nan
    where ``g`` is infinite, and an input that took no part must still get 0
    (PyTorch's masked rules select too).  ``cond`` is plain data: a mask has no
    gradient.
    """
    cond = raw(cond)
    node = a if isinstance(a, _AnyNode) else b if isinstance(b, _AnyNode) else None
    if node is None:
        if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
            return np.where(cond, a, b)
        return a if cond else b  # Python floats, for Value
    if isinstance(node.data, np.ndarray):  # Tensor nodes: Tensor.where records the choice
        return a.where(cond, b) if node is a else b.where(np.logical_not(cond), a)
    picked = a if cond else b  # Value nodes
    return picked if isinstance(picked, _AnyNode) else type(node)._wrap_grad(picked)


def take(x: Any, index: Any) -> Any:
    """``x[index]``."""
    return x[index]


def scatter(g: Any, shape: tuple[int, ...], index: Any) -> Any:
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeated indices add up)."""
    if isinstance(g, _AnyNode):
        return g._scatter(shape, index)
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return out


def expand_reduced(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Broadcast the gradient of a reduction back over the reduced axes."""
    if axis is None and isinstance(g, (np.ndarray, np.generic)):  # raw, all axes reduced
        out = np.empty(shape, dtype=g.dtype)
        out[...] = g
        return out
    if not keepdims and axis is not None:
        axes = axis if isinstance(axis, tuple) else (axis,)
        kept = list(shape_of(g))
        for a in sorted(ax % len(shape) for ax in axes):
            kept.insert(a, 1)
        g = reshape(g, tuple(kept))
    elif not keepdims and isinstance(g, _AnyNode):
        g = reshape(g, (1,) * len(shape))
    # (A raw 0-d gradient of a full reduction broadcasts as it is.)
    return broadcast_to(g, shape)


def _count(shape: tuple[int, ...], axis: Any) -> int:
    """How many elements a reduction over ``axis`` adds together."""
    if axis is None:
        return math.prod(shape)
    axes = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(shape[a] for a in axes)


def _mT(x: Any) -> Any:
    """Swap the last two axes."""
    if isinstance(x, np.ndarray):
        return x.swapaxes(-1, -2)
    n = len(shape_of(x))
    axes = tuple(range(n - 2)) + (n - 1, n - 2)
    return transpose(x, axes)


def _matmul_vjp_a(g: Any, out: Any, ctx: Any, a: Any, b: Any) -> Any:
    if b.__class__ is np.ndarray and b.ndim == 2 and a.ndim == 2:  # the usual case, raw
        return g @ b.T
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 1:  # (..., k) @ (k,) -> (...): the gradient is g[..., None] * b
        return reshape(g, shape_of(g) + (1,)) * b
    if len(sa) == 1:  # (k,) @ (..., k, n) -> (..., n): treat a as a (1, k) row
        gs = shape_of(g)
        ga = reshape(g, gs[:-1] + (1, gs[-1])) @ _mT(b)
        return reshape(unbroadcast(ga, (1, sa[0])), sa)
    return g @ _mT(b)


def _matmul_vjp_b(g: Any, out: Any, ctx: Any, a: Any, b: Any) -> Any:
    if a.__class__ is np.ndarray and a.ndim == 2 and b.ndim == 2:  # the usual case, raw
        return a.T @ g
    sa, sb = shape_of(a), shape_of(b)
    if len(sb) == 1:
        if len(sa) == 1:  # a dot product
            return g * a
        if len(sa) == 2:  # (m, k) @ (k,) -> (m,): the gradient is g @ a
            return g @ a
        # (..., m, k) @ (k,) -> (..., m): sum over rows of g[..., None] * a
        return unbroadcast(reshape(g, shape_of(g) + (1,)) * a, sb)
    if len(sa) == 1:  # (k,) @ (..., k, n): the outer product a[:, None] * g[..., None, :]
        gs = shape_of(g)
        return reshape(a, (sa[0], 1)) * reshape(g, gs[:-1] + (1, gs[-1]))
    return _mT(a) @ g


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes ``perm``."""
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _max_vjp(g: Any, out: Any, ctx: Any, a: Any) -> Any:
    axis, keepdims = ctx
    shape = shape_of(a)
    x, top = raw(a), raw(out)
    m = np.asarray(expand_reduced(top, shape, axis, keepdims))
    hit = x == m
    if np.isnan(top).any():  # a NaN maximum came from the NaN entries: they take the gradient
        hit |= np.isnan(x) & np.isnan(m)
    share = hit / np.sum(hit, axis=axis, keepdims=True)  # ties split the gradient evenly
    return where(hit, expand_reduced(g, shape, axis, keepdims) * share, 0.0)


def _concat_vjp(i: int, g: Any, out: Any, ctx: Any, *inputs: Any) -> Any:
    axis, bounds = ctx
    index = (slice(None),) * axis + (slice(bounds[i], bounds[i + 1]),)
    return g[index]


def _stack_vjp(i: int, g: Any, out: Any, ctx: Any, *inputs: Any) -> Any:
    axis = ctx
    return g[(slice(None),) * axis + (i,)]


def _tie_vjp(g: Any, a: Any, b: Any, loses: Any) -> Any:
    """The gradient of maximum/minimum for ``a``: all of ``g`` where ``a`` wins, half on a tie.

    Where ``a`` loses it is 0 by selection, even for an infinite ``g``; where a
    comparison fails (NaN) both inputs get ``g``.  This is PyTorch's rule.
    """
    a, b = raw(a), raw(b)
    return where(loses(a, b), 0.0, g * (1.0 - 0.5 * (a == b)))


# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------

ADD = Op(
    "add",
    "a + b",
    (lambda g, out, ctx, a, b: g, lambda g, out, ctx, a, b: g),
    ("1", "1"),
    "Sum: d(a+b)/da = 1, d(a+b)/db = 1; the gradient passes through unchanged.",
    elementwise=True,
)
SUB = Op(
    "sub",
    "a - b",
    (lambda g, out, ctx, a, b: g, lambda g, out, ctx, a, b: -g),
    ("1", "-1"),
    "Difference: d(a-b)/da = 1, d(a-b)/db = -1.",
    elementwise=True,
)
MUL = Op(
    "mul",
    "a * b",
    (lambda g, out, ctx, a, b: g * b, lambda g, out, ctx, a, b: g * a),
    ("b", "a"),
    "Product: d(ab)/da = b, d(ab)/db = a; each input's gradient is scaled by the other.",
    elementwise=True,
)
DIV = Op(
    "div",
    "a / b",
    (lambda g, out, ctx, a, b: g / b, lambda g, out, ctx, a, b: -g * out / b),
    ("1/b", "-a/b^2"),
    "Quotient: d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -(a/b)/b.",
    elementwise=True,
)
NEG = Op(
    "neg",
    "-a",
    (lambda g, out, ctx, a: -g,),
    ("-1",),
    "Negation: d(-a)/da = -1.",
    elementwise=True,
)


def _pow_vjp_base(g: Any, out: Any, ctx: Any, a: Any, b: Any) -> Any:
    # a**0 = 1 is constant in a, where the formula's 0 * a**-1 would be nan at a = 0.
    exponent = raw(b)
    if not isinstance(exponent, np.ndarray):
        if exponent == 0:
            return g * 0.0 * out
    elif (exponent == 0).any():
        return where(exponent == 0, 0.0, g * b * power(a, b - 1))
    return g * b * power(a, b - 1)


def _pow_vjp_exponent(g: Any, out: Any, ctx: Any, a: Any, b: Any) -> Any:
    # 0 ** b is 0 for every b > 0, so its slope in b is 0 (as in PyTorch), where
    # the formula would give ln(0) * 0 = nan.  A base of 0 is replaced by 1 in the log.
    base = raw(a)
    if isinstance(base, np.ndarray):
        if (base == 0).any():
            a = where(base == 0, 1.0, a)
    elif base == 0:
        return g * 0.0 * out
    return g * log(a) * out


POW = Op(
    "pow",
    "a ** b",
    (_pow_vjp_base, _pow_vjp_exponent),
    ("b*a^(b-1)", "ln(a)*a^b"),
    "Power: d(a^b)/da = b a^(b-1), d(a^b)/db = ln(a) a^b.",
    elementwise=True,
)
EXP = Op(
    "exp",
    "exp(x)",
    (lambda g, out, ctx, a: g * out,),
    ("exp(x)",),
    "Exponential: d exp(x)/dx = exp(x), the output itself.",
    elementwise=True,
)
LOG = Op(
    "log",
    "log(x)",
    (lambda g, out, ctx, a: g / a,),
    ("1/x",),
    "Natural logarithm: d ln(x)/dx = 1/x.",
    elementwise=True,
)
TANH = Op(
    "tanh",
    "tanh(x)",
    (lambda g, out, ctx, a: g * (1 - out * out),),
    ("1-t^2",),
    "Hyperbolic tangent: with t = tanh(x), dt/dx = 1 - t^2.",
    elementwise=True,
)
SIGMOID = Op(
    "sigmoid",
    "1/(1+exp(-x))",
    (lambda g, out, ctx, a: g * out * (1 - out),),
    ("s(1-s)",),
    "Logistic function: with s = 1/(1+e^-x), ds/dx = s(1-s).",
    elementwise=True,
)
RELU = Op(
    "relu",
    "max(x, 0)",
    # Selected by the output, as PyTorch does: relu(nan) = nan passes g on.
    (lambda g, out, ctx, a: where(raw(out) <= 0, 0.0, g),),
    ("1 if x>0 else 0",),
    "Rectifier: d relu(x)/dx = 1 for x > 0, else 0 (0 at x = 0, as PyTorch).",
    elementwise=True,
)
SOFTPLUS = Op(
    "softplus",
    "log(1+exp(x))",
    # The slope is taken from x, not from the output: sigmoid(x) = 1 - e^-out
    # would lose every digit for x far below 0, where out is tiny.
    (lambda g, out, ctx, a: g * sigmoid(a),),
    ("sigmoid(x)",),
    "Softplus: d log(1+e^x)/dx = e^x/(1+e^x) = sigmoid(x), smooth at every order.",
    elementwise=True,
)
ABS = Op(
    "abs",
    "|x|",
    (lambda g, out, ctx, a: g * sign(a),),
    ("sign(x)",),
    "Absolute value: d|x|/dx = sign(x) (0 at x = 0, as PyTorch).",
    elementwise=True,
)
SQRT = Op(
    "sqrt",
    "sqrt(x)",
    (lambda g, out, ctx, a: g / (2 * out),),
    ("1/(2 sqrt(x))",),
    "Square root: d sqrt(x)/dx = 1/(2 sqrt(x)).",
    elementwise=True,
)
CLIP = Op(
    "clip",
    "clip(x, lo, hi)",
    (lambda g, out, ctx, a: where((raw(a) >= ctx[0]) & (raw(a) <= ctx[1]), g, 0.0),),
    ("1 if lo<=x<=hi else 0",),
    "Clipping: d clip(x)/dx = 1 inside [lo, hi], 0 where x was clipped.",
    elementwise=True,
)
MAXIMUM = Op(
    "maximum",
    "maximum(a, b)",
    (
        lambda g, out, ctx, a, b: _tie_vjp(g, a, b, np.less),
        lambda g, out, ctx, a, b: _tie_vjp(g, b, a, np.less),
    ),
    ("1 if a>b, 1/2 if a=b, else 0", "1 if b>a, 1/2 if a=b, else 0"),
    "Elementwise maximum: the gradient goes to the larger input; ties split it in half.",
    elementwise=True,
)
MINIMUM = Op(
    "minimum",
    "minimum(a, b)",
    (
        lambda g, out, ctx, a, b: _tie_vjp(g, a, b, np.greater),
        lambda g, out, ctx, a, b: _tie_vjp(g, b, a, np.greater),
    ),
    ("1 if a<b, 1/2 if a=b, else 0", "1 if b<a, 1/2 if a=b, else 0"),
    "Elementwise minimum: the gradient goes to the smaller input; ties split it in half.",
    elementwise=True,
)
WHERE = Op(
    "where",
    "where(cond, a, b)",
    (
        lambda g, out, ctx, a, b: where(ctx, g, 0.0),
        lambda g, out, ctx, a, b: where(ctx, 0.0, g),
    ),
    ("1 where cond else 0", "0 where cond else 1"),
    "Selection: each output element comes from a (cond true) or b, and so does its gradient.",
    elementwise=True,
)
ASTYPE = Op(
    "astype",
    "x as dtype",
    (lambda g, out, ctx, a: g,),
    ("1",),
    "Change of float precision: the identity; the engine casts the gradient back.",
    elementwise=True,
)
MATMUL = Op(
    "matmul",
    "a @ b",
    (_matmul_vjp_a, _matmul_vjp_b),
    ("b^T (row of b)", "a^T (column of a)"),
    "Matrix product C = AB: dL/dA = dL/dC B^T, dL/dB = A^T dL/dC (batched and 1-D as numpy).",
)
SUM = Op(
    "sum",
    "sum(x, axis)",
    (lambda g, out, ctx, a: expand_reduced(g, shape_of(a), *ctx),),
    ("1",),
    "Sum over axes: every summed element has derivative 1, so g is copied back over them.",
)
MEAN = Op(
    "mean",
    "mean(x, axis)",
    (
        lambda g, out, ctx, a: (
            # (a mean of no numbers has an empty input, whose gradient any scale keeps empty)
            expand_reduced(g, shape_of(a), *ctx) * (1.0 / (_count(shape_of(a), ctx[0]) or 1))
        ),
    ),
    ("1/n",),
    "Mean over n elements: each has derivative 1/n.",
)
MAX = Op(
    "max",
    "max(x, axis)",
    (_max_vjp,),
    ("1 for the maximum (shared if tied), else 0",),
    "Maximum over axes: the gradient goes to the largest element; ties share it evenly.",
)
RESHAPE = Op(
    "reshape",
    "reshape(x, shape)",
    (lambda g, out, ctx, a: reshape(g, shape_of(a)),),
    ("1",),
    "Reshape: the same numbers in another shape; the gradient is reshaped back.",
)
TRANSPOSE = Op(
    "transpose",
    "transpose(x, axes)",
    (lambda g, out, ctx, a: transpose(g, _inverse(ctx)),),
    ("1",),
    "Permutation of axes: the gradient is permuted back with the inverse permutation.",
)
BROADCAST_TO = Op(
    "broadcast_to",
    "broadcast_to(x, shape)",
    (lambda g, out, ctx, a: unbroadcast(g, shape_of(a)),),
    ("1",),
    "Broadcast copies: the gradients of all copies of an element add up.",
)
GETITEM = Op(
    "getitem",
    "x[index]",
    (lambda g, out, ctx, a: scatter(g, shape_of(a), ctx),),
    ("1 at the selected positions",),
    "Indexing: the gradient is scattered back to the selected positions; "
    "a position selected twice receives both gradients.",
)
SCATTER = Op(
    "scatter",
    "zeros.at[index].add(x)",
    (lambda g, out, ctx, a: take(g, ctx[1]),),
    ("1 at the scattered positions",),
    "Scatter-add into zeros (the gradient of indexing): its own gradient is indexing.",
)


def _setitem_vjp_base(g: Any, out: Any, ctx: Any, base: Any, value: Any) -> Any:
    kept = np.ones(shape_of(g), dtype=bool)
    kept[ctx] = False  # the written elements no longer depend on the old ones
    return where(kept, g, 0.0)


SETITEM = Op(
    "setitem",
    "x[index] := v",
    (_setitem_vjp_base, lambda g, out, ctx, base, value: take(g, ctx)),
    ("1 outside the index, 0 inside", "1 at the index"),
    "Assignment into part of a tensor (``x[index] = v``, ``copy_``, ``fill_``): the written "
    "elements take their gradient from v (summed where v was broadcast), the others from x.",
    operands=("x", "v"),
)
CONCATENATE = Op(
    "concatenate",
    "concatenate(xs, axis)",
    None,
    ("1 on the input's slice",),
    "Concatenation: each input receives the slice of the gradient where it was placed.",
    nvjp=_concat_vjp,
)
STACK = Op(
    "stack",
    "stack(xs, axis)",
    None,
    ("1 on the input's slice",),
    "Stacking: each input receives its own slice of the gradient along the new axis.",
    nvjp=_stack_vjp,
)
LOGSUMEXP = Op(
    "logsumexp",
    "log(sum(exp(x), axis))",
    (
        lambda g, out, ctx, a: (
            expand_reduced(g, shape_of(a), *ctx) * exp(a - expand_reduced(out, shape_of(a), *ctx))
        ),
    ),
    ("softmax(x)",),
    "log-sum-exp: d/dx_i log(sum_j e^x_j) = e^x_i / sum_j e^x_j = softmax(x)_i.",
)
SOFTMAX = Op(
    "softmax",
    "softmax(x, axis)",
    (lambda g, out, ctx, a: out * (g - sum(g * out, axis=ctx, keepdims=True)),),
    ("s_i (delta_ij - s_j)",),
    "Softmax s = e^x / sum e^x: ds_i/dx_j = s_i (delta_ij - s_j).",
)
LOG_SOFTMAX = Op(
    "log_softmax",
    "x - logsumexp(x, axis)",
    (lambda g, out, ctx, a: g - exp(out) * sum(g, axis=ctx, keepdims=True),),
    ("delta_ij - softmax(x)_j",),
    "Log-softmax y = x - logsumexp(x): dy_i/dx_j = delta_ij - softmax(x)_j.",
)


def _cross_entropy_vjp(g: Any, out: Any, ctx: Any, a: Any) -> Any:
    axis, probs, onehot, coef, per_sample = ctx
    if isinstance(a, _AnyNode):  # create_graph: softmax as a function of the logits
        probs = exp(log_softmax(a, axis))
    if per_sample:  # reduction 'none': one incoming gradient per sample
        g = reshape(g, shape_of(coef))
    return g * coef * (probs - onehot)


CROSS_ENTROPY = Op(
    "cross_entropy",
    "-w[y] log softmax(x)[y]",
    (_cross_entropy_vjp,),
    ("w[y] (softmax(x) - onehot(y))",),
    "Softmax cross-entropy of logits x against class y, weighted by w[y]: its derivative "
    "with respect to x is w[y] (softmax(x) - onehot(y)), divided by the total weight for "
    "'mean'.",
)
