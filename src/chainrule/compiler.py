"""``chainrule.compile``: a recorded graph, forward and backward, as straight-line Python.

``compile(fn)`` returns a callable.  Called with pytrees (dicts, lists,
tuples) of floats, numpy arrays, Values or Tensors, it runs ``fn`` once on
*tracing* leaves (each float a :class:`~chainrule.Value`, each float array a
:class:`~chainrule.Tensor`, all requiring grad), walks the graph the outputs
were recorded from with the engine's one traversal
(:func:`~chainrule.engine.toposort`), and writes it out as a Python function,
one line per operation: Python float arithmetic and ``math`` functions for
Values, numpy calls for Tensors.  That source is compiled and called; later
calls with the same *signature* (the pytrees' structure, each leaf's kind,
shape and dtype, and the values of the other arguments) reuse it.

Gradients taken while tracing, with :func:`chainrule.grad`, ``backward()`` or
the transforms of :mod:`chainrule.func`, are recorded as graph nodes (as
``create_graph=True`` records them), so a function returning a loss and its
gradient compiles to one program holding both passes; each backward line ends
with the rule-table formula it comes from.

>>> import chainrule as cr
>>> f = cr.compile(lambda x, y: (x * y + x).tanh())
>>> round(f(0.5, 2.0), 6)
0.905148
>>> print(f.source)
def program(x, y):
    t1 = tanh(x * y + x)
    return t1,
<BLANKLINE>

What cannot be traced is refused rather than frozen: turning a traced value
into a Python bool, float, int or index (``if loss > 0``, ``float(x)``,
``x.item()``) raises :class:`TraceError`, as does changing a traced argument
in place.  Reading ``.data`` of a traced node cannot be seen, and gives the
numbers of the trace: don't.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import linecache
import math
import os
import re
import sys
import warnings
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import rules as R
from .engine import Node, init_node, toposort
from .func import Spec, tree_flatten, tree_unflatten
from .modes import STATE, enable_grad, tick
from .numerics import float_pow, restore, silence
from .ops import OPS, Op
from .tensor import Tensor, _logsumexp, _sigmoid, _softmax
from .tensor import where as _tensor_where
from .value import Value

__all__ = ["Compiled", "Program", "TraceError", "compile"]

_HERE = os.path.dirname(os.path.abspath(__file__))


class TraceError(RuntimeError):
    """Something a traced function did cannot be written into a compiled program.

    Raised while :func:`compile` traces: a traced value turned into a Python
    bool, number or index (the program would freeze the branch or the number
    taken at tracing time), an in-place change of a traced argument, or a
    transform that tracing does not follow.
    """


# ---------------------------------------------------------------------------
# Expressions: source text and how tightly it binds.
# ---------------------------------------------------------------------------


class _E(NamedTuple):
    """A piece of Python source and its precedence (higher binds tighter)."""

    text: str
    prec: int


ATOM, POW, UNARY, MUL, ADD, AND, OR, CMP, COND = 100, 15, 14, 13, 12, 9, 8, 7, 1


def _p(e: _E, least: int) -> str:
    """``e``'s text, in parentheses when it binds less tightly than ``least``."""
    return e.text if e.prec >= least else f"({e.text})"


def _bin(sym: str, prec: int) -> Callable[..., _E]:
    """A left-associative binary operator: ``a <sym> b``."""
    return lambda c, n, a: _E(f"{_p(a[0], prec)} {sym} {_p(a[1], prec + 1)}", prec)


def _call(fmt: str) -> Callable[..., _E]:
    """A call whose operands fill ``{0}``, ``{1}``, ...; the node's ctx is ``{ctx}``."""
    return lambda c, n, a: _E(fmt.format(*[x.text for x in a], ctx=n._ctx), ATOM)


def _is_one(x: Any) -> bool:
    """Whether ``x`` is the constant 1 (a number, or a constant Value holding it)."""
    if isinstance(x, Value) and x._op is None and not x.requires_grad:
        x = x.data
    return (x.__class__ is float or x.__class__ is int) and x == 1


def _mul_float(c: _Emitter, n: Node, a: list[_E]) -> _E:
    # x * 1.0 is x exactly (IEEE 754), and gradients are full of such products
    if _is_one(n._parents[1]):
        return a[0]
    if _is_one(n._parents[0]):
        return a[1]
    return _bin("*", MUL)(c, n, a)


def _ones(x: Any, n: Node, other: Any) -> bool:
    """Whether ``x * other`` is ``other`` exactly: a constant array of ones changing no
    shape or dtype (the seed of a backward pass, broadcast, is one)."""
    if isinstance(x, Tensor) and x._op is None and not x.requires_grad:
        x = x.data
    return (
        isinstance(x, np.ndarray)
        and x.dtype == n.data.dtype
        and np.shape(_raw(other)) == n.data.shape
        and np.asarray(_raw(other)).dtype == n.data.dtype
        and bool((x == 1).all())
    )


def _uniform(x: Any, n: Node, other: Any) -> float | None:
    """The number every element of ``x`` holds, when ``x`` is a constant array that may be
    written as that Python float in ``x <op> other``: the other operand already has the
    result's shape and dtype, so broadcasting the number gives the same elements, and
    numpy computes in that dtype either way (the number is exact in it).

    Gradients are full of such arrays: a scalar seed broadcast to a shape by a sum's rule.
    """
    if isinstance(x, Tensor):
        if x._op is not None or x.requires_grad:
            return None
        x = x.data
    dtype = n.data.dtype
    if not isinstance(x, np.ndarray) or x.size == 0 or x.dtype != dtype or dtype.kind != "f":
        return None
    o = _raw(other)
    if not isinstance(o, np.ndarray) or o.shape != n.data.shape or o.dtype != dtype:
        return None
    first = x.flat[0]
    if first != first:  # nan
        return float(first) if bool(np.isnan(x).all()) else None
    if not bool((x == first).all()):
        return None
    if first == 0 and bool((np.signbit(x) != np.signbit(first)).any()):  # -0.0 and 0.0
        return None
    return float(first)


def _bin_array(sym: str, prec: int) -> Callable[..., _E]:
    """``a <sym> b`` on arrays; a constant array of one number is written as the number."""
    plain = _bin(sym, prec)

    def emit(c: _Emitter, n: Node, a: list[_E]) -> _E:
        p, q = n._parents
        v = _uniform(p, n, q)
        if v is not None:
            a = [c.num(v), a[1]]
        else:
            v = _uniform(q, n, p)
            if v is not None:
                a = [a[0], c.num(v)]
        return plain(c, n, a)

    return emit


def _mul_array(c: _Emitter, n: Node, a: list[_E]) -> _E:
    p, q = n._parents
    if _ones(p, n, q):
        return a[1]
    if _ones(q, n, p):
        return a[0]
    return _bin_array("*", MUL)(c, n, a)


def _pow_float(c: _Emitter, n: Node, a: list[_E]) -> _E:
    b = n._parents[1]
    if _is_one(b):  # x ** 1 is x exactly
        return a[0]
    if isinstance(b, (int, float)) and not isinstance(b, Node) and float(b).is_integer():
        return _E(f"{_p(a[0], POW + 1)} ** {_p(a[1], UNARY)}", POW)  # never complex
    return _E(f"pow_({a[0].text}, {a[1].text})", ATOM)  # a negative base: nan, as Value gives


def _pow_array(c: _Emitter, n: Node, a: list[_E]) -> _E:
    base = _raw(n._parents[0])
    # x ** 1 is x exactly (a square's gradient is full of them)
    same = np.shape(base) == n.data.shape and np.asarray(base).dtype == n.data.dtype
    if same and _is_one(n._parents[1]):
        return a[0]
    return _E(f"{_p(a[0], POW + 1)} ** {_p(a[1], UNARY)}", POW)


def _reduce(fn: str) -> Callable[..., _E]:
    """``np.<fn>(x, axis=..., keepdims=...)`` from a reduction's ctx ``(axes, keepdims)``."""

    def emit(c: _Emitter, n: Node, a: list[_E]) -> _E:
        axes, keep = n._ctx
        extra = [] if axes is None else [f"axis={_axes_text(axes)}"]
        extra += ["keepdims=True"] if keep else []
        return _E(f"{_p(a[0], ATOM)}.{fn}({', '.join(extra)})", ATOM)

    return emit


def _reshape(c: _Emitter, n: Node, a: list[_E]) -> _E:
    shape = n.data.shape
    p = n._parents[0]
    if isinstance(p, Tensor) and p in c.inline and p._op is not None and p._op.name == "sum":
        axes, keep = p._ctx
        if keep:  # a sum that kept its axes, reshaped to drop them: the sum without keepdims
            kept = p.data.shape
            dropped = range(len(kept)) if axes is None else [k % len(kept) for k in axes]
            if tuple(m for k, m in enumerate(kept) if k not in dropped) == shape:
                inner = c.ref(p._parents[0], p)
                extra = "" if axes is None else f"axis={_axes_text(axes)}"
                return _E(f"{_p(inner, ATOM)}.sum({extra})", ATOM)
    return _E(f"{_p(a[0], ATOM)}.reshape({shape!r})", ATOM)


def _transpose(c: _Emitter, n: Node, a: list[_E]) -> _E:
    if n._ctx == (1, 0):  # a matrix's transpose, as written by hand
        return _E(f"{_p(a[0], ATOM)}.T", ATOM)
    return _E(f"{_p(a[0], ATOM)}.transpose({n._ctx!r})", ATOM)


def _axes_text(axes: tuple[int, ...]) -> str:
    """``axis=`` text: one axis as an int, several as a tuple."""
    return repr(int(axes[0])) if len(axes) == 1 else repr(tuple(int(k) for k in axes))


def _norm(c: _Emitter, n: Node, a: list[_E]) -> _E:
    # sqrt(sum(x * x)), as the forward computes it (np.square(x) is x * x exactly)
    inner = _reduce("sum")(c, n, [_E(f"np.square({a[0].text})", ATOM)])
    return _E(f"np.sqrt({inner.text})", ATOM)


def _is_plus_zero(x: Any) -> bool:
    """Whether ``x`` is the constant +0 (a number, or a constant Value holding it)."""
    if isinstance(x, Value) and x._op is None and not x.requires_grad:
        x = x.data
    return (x.__class__ is float or x.__class__ is int) and x == 0 and math.copysign(1, x) > 0


def _where(c: _Emitter, n: Node, a: list[_E]) -> _E:
    mask = c.mask(n._ctx).text
    data = n.data
    if data.dtype in _BITS and data.ndim > 0 and np.shape(_raw(n._ctx)) == data.shape:
        # A rule handing 0 to some elements: a bitwise and, not numpy's slower where
        p, q = n._parents
        if _is_plus_zero(p) and np.shape(_raw(q)) == data.shape:
            return _E(f"zero_where({mask}, {a[1].text})", ATOM)
        if _is_plus_zero(q) and np.shape(_raw(p)) == data.shape:
            return _E(f"zero_unless({mask}, {a[0].text})", ATOM)
    return _E(f"np.where({mask}, {a[0].text}, {a[1].text})", ATOM)


def _where_float(c: _Emitter, n: Node, a: list[_E]) -> _E:
    # (a Value chosen by a traced mask: the rules' where, recorded by the tracer)
    m = c.mask(n._ctx)
    return _E(f"{_p(a[0], COND + 1)} if {_p(m, COND + 1)} else {a[1].text}", COND)


def _both(f: Callable[..., _E]) -> tuple[Callable[..., _E], Callable[..., _E]]:
    return (f, f)


Emit = Callable[..., _E]

#: How each op of the rule table reads as Python: ``(for floats, for arrays)``.
#: Each entry gets the emitter (for constants and names), the node (its ctx,
#: shape and dtype) and its operands' expressions.  None: no Value has that op.
EMITTERS: dict[str, tuple[Emit | None, Emit]] = {
    "add": (_bin("+", ADD), _bin_array("+", ADD)),
    "sub": (_bin("-", ADD), _bin_array("-", ADD)),
    "mul": (_mul_float, _mul_array),
    "div": (_bin("/", MUL), _bin_array("/", MUL)),
    "pow": (_pow_float, _pow_array),
    "neg": _both(lambda c, n, a: _E(f"-{_p(a[0], UNARY)}", UNARY)),
    "exp": (_call("exp({0})"), _call("np.exp({0})")),
    "log": (_call("log({0})"), _call("np.log({0})")),
    "tanh": (_call("tanh({0})"), _call("np.tanh({0})")),
    "sigmoid": (
        lambda c, n, a: _E(f"1.0 / (1.0 + exp(-{_p(a[0], UNARY)}))", MUL),
        _call("sigmoid({0})"),
    ),
    "relu": (_call("max(0.0, {0})"), _call("np.maximum({0}, 0)")),
    "softplus": (_call("softplus({0})"), _call("np.logaddexp(0.0, {0})")),
    "abs": (_call("abs({0})"), _call("np.abs({0})")),
    "sqrt": (_call("sqrt({0})"), _call("np.sqrt({0})")),
    "clip": (
        None,
        lambda c, n, a: _E(
            f"np.clip({a[0].text}, {c.num(n._ctx[0]).text}, {c.num(n._ctx[1]).text})", ATOM
        ),
    ),
    "maximum": (None, _call("np.maximum({0}, {1})")),
    "minimum": (None, _call("np.minimum({0}, {1})")),
    "where": (_where_float, _where),
    "astype": (None, lambda c, n, a: _E(f"{_p(a[0], ATOM)}.astype(np.{n.data.dtype.name})", ATOM)),
    "matmul": (None, _bin("@", MUL)),
    "sum": (None, _reduce("sum")),
    "mean": (None, _reduce("mean")),
    "max": (None, _reduce("max")),
    "reshape": (None, _reshape),
    "transpose": (None, _transpose),
    "broadcast_to": (
        None,
        lambda c, n, a: _E(f"np.broadcast_to({a[0].text}, {n.data.shape!r})", ATOM),
    ),
    "getitem": (None, lambda c, n, a: _E(f"{_p(a[0], ATOM)}[{c.index(n._ctx)}]", ATOM)),
    "scatter": (
        None,
        lambda c, n, a: _E(
            f"scatter({a[0].text}, {n._ctx[0]!r}, np.s_[{c.index(n._ctx[1])}])", ATOM
        ),
    ),
    "setitem": (
        None,
        lambda c, n, a: _E(f"setitem({a[0].text}, np.s_[{c.index(n._ctx)}], {a[1].text})", ATOM),
    ),
    "concatenate": (
        None,
        lambda c, n, a: _E(
            f"np.concatenate([{', '.join(x.text for x in a)}], axis={n._ctx[0]})", ATOM
        ),
    ),
    "stack": (
        None,
        lambda c, n, a: _E(f"np.stack([{', '.join(x.text for x in a)}], axis={n._ctx})", ATOM),
    ),
    "erf": (None, _call("erf({0})")),
    "sin": (None, _call("np.sin({0})")),
    "cos": (None, _call("np.cos({0})")),
    "exp2": (None, _call("np.exp2({0})")),
    "log2": (None, _call("np.log2({0})")),
    "log1p": (None, _call("np.log1p({0})")),
    "expm1": (None, _call("np.expm1({0})")),
    "clone": (None, lambda c, n, a: _E(f"{_p(a[0], ATOM)}.copy()", ATOM)),
    "cumsum": (None, _call("np.cumsum({0}, axis={ctx!r})")),
    "prod": (None, _reduce("prod")),
    "norm": (None, _norm),
    "logsumexp": (None, _call("logsumexp({0}, {ctx[0]!r}, {ctx[1]!r})")),
    "softmax": (None, _call("softmax({0}, {ctx!r})")),
    "log_softmax": (None, _call("log_softmax({0}, {ctx!r})")),
    "cross_entropy": (
        None,
        lambda c, n, a: _E(
            f"cross_entropy({a[0].text}, {n._ctx[0]}, {c.const(n._ctx[2]).text}, "
            f"{c.const(n._ctx[3]).text}, {n._ctx[4]})",
            ATOM,
        ),
    ),
}


# ---------------------------------------------------------------------------
# Masks as nodes.  The rules that choose by the numbers (relu, abs, clip, max,
# maximum, minimum, pow at 0, norm at 0, where) take their masks from
# rules.compare (and rules.sign) and choose with rules.where.  While tracing,
# those helpers ask the tracer (Tracer.mask, Tracer.select), which records the
# mask as a node of the op below and the choice as a where node, so a program
# recomputes both from each call's numbers.  Tensor comparisons written by the
# traced function itself are recorded the same way (Tracer.compare).
# ---------------------------------------------------------------------------


def _no_share(i: int) -> Callable[..., Any]:
    # A step function's derivative is 0 where it has one.  (Masks require grad only so
    # that arithmetic on them is recorded.)  The share is a constant 0, not g * 0, so
    # that an infinite g upstream cannot make it nan, and g is not computed for it.
    def share(g: Any, out: Any, ctx: Any, *inputs: Any) -> Any:
        shape = R.shape_of(inputs[i])
        return np.zeros(shape) if shape else 0.0

    return share


#: A comparison, ``a <ctx> b``, or ``sign(a)`` when ctx is "sign": a mask of the rules'
#: helpers.  It is the compiler's, not the rule table's: it has no derivative to write down.
MASK = Op(
    "compile.mask",
    "a <cmp> b",
    (_no_share(0), _no_share(1)),
    ("", ""),
    "A comparison, or sign(x) (derivative 0).",
    jvps=(_no_share(0), _no_share(1)),
)
del OPS[MASK.name]


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Node) else x


def _traced(x: Any) -> bool:
    return isinstance(x, Node) and (x.requires_grad or x._op is not None)


def _adopt(out: Node, op: Op, parents: tuple[Any, ...], ctx: Any = None) -> None:
    """Make ``out``, computed from traced ``parents`` outside the graph, a node of ``op``.

    It requires grad, so that what is computed from it (``(x > 0) * 2.0``,
    ``x.detach() * y``) is recorded too, instead of kept as this call's numbers;
    ``op`` gives its operands what they are owed (a mask, a detach or an index:
    a constant 0).
    """
    out._op, out._parents, out._ctx = op, parents, ctx
    out.requires_grad = True


def _pseudo(
    like: Node, data: Any, op: Op, parents: tuple[Any, ...], ctx: Any = None, grad: bool = True
) -> Any:
    """A node of ``like``'s kind made by ``op``, recorded even when nothing requires grad.

    It requires grad when an operand was computed from the arguments, so that
    what is computed from it is recorded too; with ``grad`` false (a mask) never.
    """
    node: Any = object.__new__(type(like) if isinstance(like, (Value, Tensor)) else Tensor)
    if isinstance(node, Tensor):
        data = np.asarray(data)
    elif isinstance(data, np.generic):
        data = data.item()
    rg = grad and any(_traced(p) for p in parents)
    init_node(node, data, op, parents, ctx, rg)
    if not node.requires_grad:  # a mask: kept in the graph so the program recomputes it
        node._op, node._parents, node._ctx = op, parents, ctx
    return node


def _like(*xs: Any) -> Node:
    return next(x for x in xs if isinstance(x, Node))


_SIGN = "sign"


def _mask_float(c: _Emitter, n: Node, a: list[_E]) -> _E:
    if n._ctx == _SIGN:
        return _E(f"sign({a[0].text})", ATOM)
    if n._ctx in ("&", "|"):
        word, prec = ("and", 3) if n._ctx == "&" else ("or", 2)
        return _E(f"{_p(a[0], prec + 1)} {word} {_p(a[1], prec + 1)}", prec)
    return _E(f"{_p(a[0], CMP + 1)} {n._ctx} {_p(a[1], CMP + 1)}", CMP)


def _mask_array(c: _Emitter, n: Node, a: list[_E]) -> _E:
    if n._ctx == _SIGN:
        return _E(f"np.sign({a[0].text})", ATOM)
    if n._ctx in ("&", "|"):
        prec = AND if n._ctx == "&" else OR
        return _E(f"{_p(a[0], prec + 1)} {n._ctx} {_p(a[1], prec + 1)}", prec)
    return _E(f"{_p(a[0], CMP + 1)} {n._ctx} {_p(a[1], CMP + 1)}", CMP)


#: ``x.detach()`` of a traced value: the same numbers, recomputed at every call, with no
#: gradient through it (its share is a constant 0).
DETACH = Op(
    "compile.detach", "detach(x)", (_no_share(0),), ("",), "A stop-gradient.", jvps=(_no_share(0),)
)
#: ``x.argmax(...)`` / ``argmin`` of a traced value (ctx: the numpy function's name, the
#: axis, keepdims): an index recomputed at every call, with no derivative.
ARG_INDEX = Op(
    "compile.arg_index", "argmax(x)", (_no_share(0),), ("",), "An index.", jvps=(_no_share(0),)
)
del OPS[DETACH.name], OPS[ARG_INDEX.name]


def _arg_index_array(c: _Emitter, n: Node, a: list[_E]) -> _E:
    name, axis, keep = n._ctx
    return _E(f"np.{name}({a[0].text}, axis={axis!r}, keepdims={keep!r})", ATOM)


_PRIVATE: dict[str, tuple[Emit | None, Emit]] = {
    MASK.name: (_mask_float, _mask_array),
    DETACH.name: _both(lambda c, n, a: a[0]),
    ARG_INDEX.name: (None, _arg_index_array),
}


# ---------------------------------------------------------------------------
# What the generated programs call besides numpy and math.
# ---------------------------------------------------------------------------


def _setitem(old: np.ndarray, index: Any, value: Any) -> np.ndarray:
    out = np.array(old, copy=True)
    out[index] = value
    return out


def _cross_entropy(
    x: np.ndarray, axis: int, onehot: np.ndarray, coef: Any, per_sample: bool
) -> np.ndarray:
    """The loss of :func:`chainrule.nn.functional.cross_entropy` from its logits and targets."""
    picked = onehot * _log_softmax(x, axis) * coef
    return -np.sum(picked, axis=axis) if per_sample else -np.sum(picked)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """:func:`chainrule.rules.log_softmax` on an array, for programs: the same operations,
    without its own silencing of numpy's warnings (a program runs silenced already)."""
    z = x - R.safe_max(x, (axis,))
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


#: The integer type of each float type's width: a float's bits, for the selections below.
_BITS = {
    np.dtype(t): b
    for t, b in ((np.float64, np.int64), (np.float32, np.int32), (np.float16, np.int16))
}


def _zero_where(mask: Any, g: Any) -> Any:
    """``np.where(mask, 0.0, g)``, exactly, several times faster on large arrays.

    Where ``mask`` holds, the float's bits are and-ed with 0 (giving +0.0); elsewhere
    with all ones (giving ``g``'s element, inf and nan included).  numpy's where
    copies element by element; the and runs as one vectorised loop.
    """
    bits = _BITS.get(g.dtype) if g.__class__ is np.ndarray else None
    if (
        bits is None
        or mask.__class__ is not np.ndarray
        or mask.dtype != bool
        or mask.shape != g.shape
    ):
        return np.where(mask, 0.0, g)
    return (g.view(bits) & (mask.view(np.int8) - np.int8(1))).view(g.dtype)


def _zero_unless(mask: Any, g: Any) -> Any:
    """``np.where(mask, g, 0.0)``, exactly, as :func:`_zero_where` computes it."""
    bits = _BITS.get(g.dtype) if g.__class__ is np.ndarray else None
    if (
        bits is None
        or mask.__class__ is not np.ndarray
        or mask.dtype != bool
        or mask.shape != g.shape
    ):
        return np.where(mask, g, 0.0)
    return (g.view(bits) & -mask.view(np.int8)).view(g.dtype)


def _float_softplus(x: float) -> float:
    return float(np.logaddexp(0.0, x))


_COMMON: dict[str, Any] = {
    "np": np,
    "inf": math.inf,
    "nan": math.nan,
    "pow_": float_pow,
    "sign": R.sign,
    "softplus": _float_softplus,
    "sigmoid": _sigmoid,
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "erf": R.erf,
    "scatter": R.scatter,
    "setitem": _setitem,
    "cross_entropy": _cross_entropy,
    "zero_where": _zero_where,
    "zero_unless": _zero_unless,
}
#: Python floats, fast; a float op that raises (1/0, exp overflow, log of 0) reruns the
#: program on numpy float64 scalars, which give IEEE 754's inf and nan as Values do.
_FAST = {"exp": math.exp, "log": math.log, "tanh": math.tanh, "sqrt": math.sqrt}
_CAREFUL = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sqrt": np.sqrt}
_RESERVED = (
    set(keyword.kwlist)
    | set(keyword.softkwlist)
    | set(dir(builtins))
    | set(_COMMON)
    | set(_FAST)
    | {"program"}
)


# ---------------------------------------------------------------------------
# Names.
# ---------------------------------------------------------------------------


def safe_name(text: str) -> str:
    """``text`` as an ASCII identifier: other characters become ``_``; '' if nothing is left.

    >>> safe_name('params["w1"]'), safe_name("net h1"), safe_name("1x"), safe_name("é")
    ('params_w1', 'net_h1', 'v_1x', '')
    """
    chars = [ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in text]
    out = "_".join(part for part in "".join(chars).split("_") if part)
    if out and out[0].isdigit():
        out = "v_" + out
    return out


class _Names:
    """Unique identifiers for one program: user names made safe, else ``t1``, ``t2``, ..."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.counts: dict[str, int] = {}

    def take(self, wanted: str) -> str:
        base = safe_name(wanted)
        if not base:
            return self.numbered()
        name, k = base, 1
        while name in self.used or name in _RESERVED or _is_numbered(name):
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def numbered(self, prefix: str = "t") -> str:
        while True:
            k = self.counts[prefix] = self.counts.get(prefix, 0) + 1
            name = f"{prefix}{k}"
            if name not in self.used:
                self.used.add(name)
                return name


def _is_numbered(name: str) -> bool:
    return len(name) > 1 and name[0] in "tc" and name[1:].isdigit()


# ---------------------------------------------------------------------------
# The tracer: what a trace learns beyond the graph.
# ---------------------------------------------------------------------------


class _Tracer:
    """The state of one trace, reached from the hooks through ``STATE.tracing``."""

    def __init__(self, fn_name: str) -> None:
        self.fn_name = fn_name
        self.inputs: set[int] = set()  # ids of the traced argument nodes
        self.keep: list[Any] = []  # keeps the objects behind the ids alive
        #: A traced comparison's boolean array, by id: (the array, its mask node).
        self.masks: dict[int, tuple[Any, Node]] = {}
        #: Backward edges: (first seq after, seq at the end, op, operand index).
        self.edges: list[tuple[int, int, Op, int]] = []
        self.sums: dict[int, Node] = {}  # seq of a node that adds shares -> the operand
        self.totals: list[dict[Node, Any]] = []  # per pass: operand -> its gradient

    # -- refusals --------------------------------------------------------
    def refuse(self, what: str, node: Any, other: Any = None) -> None:
        if not (_traced(node) or _traced(other)):
            return  # a constant: its number is the same at every call
        kind = type(node).__name__
        raise TraceError(
            f"compile({self.fn_name}): {what} of a traced {kind}{_user_line()}: while "
            "compiling, a value computed from the arguments has no fixed number, so it cannot "
            "steer Python code or become a Python number (the program would keep the branch "
            "or the number of this one call). Ways out: choose elementwise with "
            "chainrule.where(cond, a, b); pass that value as a non-traced argument "
            "(compile(fn, static_argnums=...)); or call the function without chainrule.compile"
        )

    def refuse_change(self, name: str, tensor: Tensor) -> None:
        version = getattr(tensor, "_vc", None)
        holders = [tensor, *(version.others(tensor) if version is not None else ())]
        if any(id(t) in self.inputs for t in holders):
            raise TraceError(
                f"compile({self.fn_name}): {name} changes a traced argument in place"
                f"{_user_line()}; a compiled program never changes its arguments. Compute a "
                "new value instead (for example p = p - lr * g) and return it"
            )
        if _traced(tensor) and not STATE.mode.grad:
            raise TraceError(
                f"compile({self.fn_name}): {name} changes a traced tensor in place under "
                f"no_grad{_user_line()}, which no graph records. Compute a new value instead"
            )

    def refuse_forward_mode(self, name: str) -> None:
        raise TraceError(
            f"compile({self.fn_name}): func.{name} (forward mode) is not traced by compile"
            f"{_user_line()}; use the reverse-mode transforms (grad, value_and_grad, vjp, "
            "jacrev), or call the function without chainrule.compile"
        )

    # -- what the hooks record --------------------------------------------
    def where(self, out: Tensor, cond: Any, a: Any, b: Any) -> None:
        """A where of constants by a traced condition: recorded, so the program recomputes it."""
        m = self.masks.get(id(cond))
        if m is not None and m[0] is cond and not out.requires_grad:
            _adopt(out, R.WHERE, (a, b), cond)

    def detach(self, out: Node, x: Node) -> None:
        """``x.detach()``: recorded, so the program recomputes it (with no gradient)."""
        if _traced(x):
            _adopt(out, DETACH, (x,))

    def arg_index(self, out: Tensor, x: Tensor, name: str, axis: Any, keep: bool) -> None:
        """``x.argmax(...)``/``argmin``: recorded, so the program recomputes the index."""
        if _traced(x):
            _adopt(out, ARG_INDEX, (x,), (name, axis, keep))

    def compare(self, out: Tensor, sym: str, a: Any, b: Any) -> None:
        """``a <sym> b`` written by the traced function: recorded as a mask node."""
        if _traced(a) or _traced(b):
            _adopt(out, MASK, (a, b), sym)
            self.masks[id(out.data)] = (out.data, out)

    def mask(self, kind: str, a: Any, b: Any) -> Any:
        """:func:`chainrule.rules.compare` (or ``sign``, kind "sign") on nodes: a mask node."""
        ad, bd = _raw(a), _raw(b)
        data = R.sign(ad) if kind == _SIGN else R._COMPARE[kind](ad, bd)
        if not (_traced(a) or _traced(b)):  # constants: the same mask at every call
            return data
        parents = (a,) if kind == _SIGN else (a, b)
        node = _pseudo(_like(a, b), data, MASK, parents, kind, grad=kind == _SIGN)
        if isinstance(node, Tensor):
            self.masks[id(node.data)] = (node.data, node)
        return node

    def select(self, cond: Any, a: Any, b: Any) -> Any:
        """:func:`chainrule.rules.where` on nodes: a where node, reading a mask node's numbers."""
        if any(isinstance(x, Tensor) for x in (cond, a, b)):
            return _tensor_where(_raw(cond), a, b)  # (Tensor.where finds the mask by its array)
        c = _raw(cond)
        if not _traced(cond):  # a constant condition
            picked = a if c else b
            return picked if isinstance(picked, Node) else Value._wrap_grad(picked)
        node = _pseudo(cond, float(_raw(a) if c else _raw(b)), R.WHERE, (a, b), cond)
        node.requires_grad = True  # (as Tracer.where: what is computed from it is recorded)
        return node

    def edge_hook(self, roots: Sequence[Node]) -> Callable[..., Any]:
        """The ``on_edge`` of one backward pass: which op and operand made which node."""
        totals: dict[Node, Any] = {r: r for r in roots}  # (a root starts with its seed)
        self.totals.append(totals)
        start = [tick()]

        def on_edge(node: Node, i: int, operand: Node, share: Any) -> None:
            op = node._op
            assert op is not None
            t = tick()
            self.edges.append((start[0], t, op, i))
            start[0] = t + 1
            if operand in totals:  # the engine adds this share to the earlier ones next
                self.sums[t + 1] = operand
                totals[operand] = t + 1
            else:
                totals[operand] = share

        return on_edge


def _user_line() -> str:
    """`` at file:line (code)`` of the innermost frame outside chainrule, if any."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_HERE):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    code = f" ({line})" if line else ""
    return f" at {frame.f_code.co_filename}:{frame.f_lineno}{code}"


# ---------------------------------------------------------------------------
# Emitting a program.
# ---------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INLINE_DEPTH = 24  # deeper expressions get a line of their own (the parser nests)


class _Emitter:
    """Writes the graph from ``outputs`` back as the source of ``def program(...)``."""

    def __init__(self, tracer: _Tracer, params: list[Node], outputs: list[Any]) -> None:
        self.tr = tracer
        self.names = _Names()
        self.globals: dict[str, Any] = {}
        self.const_ids: dict[int, str] = {}
        self.var: dict[Node, str] = {}
        self.params = params
        self.outputs = outputs
        self.floats = False
        self.arrays = False
        self.wrap: list[int] = []

    # -- constants -----------------------------------------------------------
    def num(self, x: Any) -> _E:
        """A Python number as a literal (inf and nan by name)."""
        if isinstance(x, (bool, np.bool_)):
            return _E(repr(bool(x)), ATOM)
        if isinstance(x, int):
            return _E(repr(x), UNARY if x < 0 else ATOM)
        x = float(x)
        if math.isnan(x):
            return _E("nan", ATOM)
        if math.isinf(x):
            return _E("inf" if x > 0 else "-inf", ATOM if x > 0 else UNARY)
        return _E(repr(x), UNARY if math.copysign(1.0, x) < 0 else ATOM)

    def const(self, x: Any, name: str = "") -> _E:
        """An array (or numpy scalar) constant, kept in the program's globals under a name."""
        if isinstance(x, (int, float)) and not isinstance(x, np.generic):
            return self.num(x)
        found = self.const_ids.get(id(x))
        if found is None:
            found = self.names.take(name) if name else self.names.numbered("c")
            value = np.array(x, copy=True) if isinstance(x, np.ndarray) else x
            self.globals[found] = value
            self.const_ids[id(x)] = found
            self.tr.keep.append(x)
        return _E(found, ATOM)

    def mask(self, cond: Any) -> _E:
        """A where condition: the traced comparison it came from, else a constant."""
        if isinstance(cond, Node):  # a Value's mask node
            return self.ref(cond, None)
        m = self.tr.masks.get(id(cond))
        if m is not None and m[0] is cond:
            return self.ref(m[1], None)
        return self.const(cond)

    def index(self, idx: Any) -> str:
        """An index as subscript text: ints, slices, None, ..., constant arrays."""
        parts = idx if isinstance(idx, tuple) else (idx,)
        out = []
        for p in parts:
            if isinstance(p, slice):
                text = ":".join("" if v is None else repr(int(v)) for v in (p.start, p.stop))
                out.append(text + ("" if p.step is None else f":{int(p.step)}"))
            elif p is None or p is Ellipsis:
                out.append("None" if p is None else "...")
            elif isinstance(p, (int, np.integer)):
                out.append(repr(int(p)))
            else:
                arr = np.asarray(p)
                if id(p) in self.tr.masks:
                    raise TraceError(
                        "compile: an index computed from traced values selects a number of "
                        "elements that depends on the data; use chainrule.where to choose "
                        "elementwise instead"
                    )
                out.append(self.const(arr).text)
        if not isinstance(idx, tuple):
            return out[0]
        return ", ".join(out) + ("," if len(out) == 1 else "")

    # -- nodes ---------------------------------------------------------------------
    def ref(self, n: Any, consumer: Node | None) -> _E:
        """The expression for operand ``n``: its name, its inlined expression, or a constant."""
        if not isinstance(n, Node):
            return self.const(n)
        name = self.var.get(n)
        if name is not None:
            return _E(name, ATOM)
        if n in self.inline:
            return self.expr(n)
        if n._op is None:  # a constant leaf (or a leaf that requires grad but was not passed)
            if isinstance(n, Value):
                return self.num(n.data)
            return self.const(n.data, n.name or "")
        raise AssertionError("an operand was not emitted before its use")  # pragma: no cover

    def expr(self, n: Node) -> _E:
        op = n._op
        assert op is not None
        forms = EMITTERS.get(op.name) or _PRIVATE.get(op.name)
        if forms is None:
            raise TraceError(f"compile: the op {op.name!r} has no emitter yet")
        arrays = isinstance(n, Tensor)
        form = forms[1] if arrays else forms[0]
        if form is None:
            raise TraceError(f"compile: the op {op.name!r} has no form for Python floats")
        self.arrays |= arrays
        self.floats |= not arrays
        return form(self, n, [self.ref(p, n) for p in n._parents])

    def _condition(self, n: Node) -> Node | None:
        """The mask node a where node reads (its ctx), if the trace recorded one."""
        if n._op is None or n._op.name != "where":
            return None
        cond = n._ctx
        if isinstance(cond, Node):
            return cond
        m = self.tr.masks.get(id(cond))
        return m[1] if m is not None and m[0] is cond else None

    def emit(self) -> str:
        tr = self.tr
        roots = [o for o in self.outputs if isinstance(o, Node)]
        order = toposort(roots, everything=True)
        while True:  # where conditions from traced comparisons: their graphs come first
            extra = [m for m in map(self._condition, order) if m is not None]
            grown = toposort(extra + roots, everything=True)
            done = len(grown) == len(order)
            order = grown
            if done:
                break
        present = {id(n) for n in order}
        uses: dict[Node, int] = {}
        consumer: dict[Node, Node] = {}
        for n in order:
            for p in n._parents if n._op is not None else ():
                if isinstance(p, Node):
                    uses[p] = uses.get(p, 0) + 1
                    consumer[p] = n
            m = self._condition(n)
            if m is not None:
                uses[m] = uses.get(m, 0) + 2  # (a name of its own: it is read by position)
        for o in roots:
            uses[o] = uses.get(o, 0) + 2
        # Gradient names: the total gradient of a named operand is d_<name>.
        grad_of: dict[Node, Node] = {}
        by_seq = {n._seq: n for n in order}
        for totals in tr.totals:
            for operand, total in totals.items():
                node = by_seq.get(total) if isinstance(total, int) else total
                if isinstance(node, Node) and id(node) in present and node is not operand:
                    grad_of.setdefault(node, operand)
        ends = [e[1] for e in tr.edges]

        def region(n: Node) -> Any:
            if n._seq in tr.sums:
                return ("sum", id(tr.sums[n._seq]))
            k = bisect_right(ends, n._seq)
            if k < len(ends) and tr.edges[k][0] <= n._seq:
                return k
            return None

        self.regions = {n: region(n) for n in order if n._op is not None}
        params = {p: k for k, p in enumerate(self.params)}
        self.inline: set[Node] = set()
        depth: dict[Node, int] = {}
        for n in order:
            if n._op is None or n in params:
                continue
            d = 1 + max(
                (depth.get(p, 0) for p in n._parents if isinstance(p, Node) and p in self.inline),
                default=0,
            )
            c = consumer.get(n)
            if (
                uses.get(n, 0) == 1
                and not n.name
                and n not in grad_of
                and c is not None
                and d < _INLINE_DEPTH
                and (self.regions[n] == self.regions.get(c) or c._seq in tr.sums)
            ):
                self.inline.add(n)
                depth[n] = d
        # Parameters: the traced arguments the outputs depend on, in argument order.
        used_params = [p for p in self.params if id(p) in present]
        for p in used_params:
            self.var[p] = self.names.take(p.name or "x")
        lines: list[str] = []
        for n in order:
            if n in params or n in self.inline:
                continue
            if n._op is None:
                if isinstance(n, Value) and n.name:  # a named constant reads as in the maths
                    name = self.var[n] = self.names.take(n.name)
                    lines.append(f"    {name} = {self.num(n.data).text}")
                continue
            e = self.expr(n)
            if n.name:
                name = self.names.take(n.name)
            elif n in grad_of and grad_of[n].name:
                name = self.names.take("d_" + (grad_of[n].name or ""))
            elif e.text in self.names.used:  # the op was the identity here (x * 1.0): an alias
                self.var[n] = e.text
                continue
            else:
                name = self.names.numbered()
            text = e.text
            self.var[n] = name
            lines.append(f"    {name} = {text}{self.comment(n)}")
        outs = [self.ref(o, None).text for o in self.outputs]
        # An output the program does not own (an argument or a constant it returns as it
        # is, after x * 1 or x ** 1 became x, or a second output that is another's array)
        # is copied by the caller, as eager autodiff would give a new array.
        fresh = {line.split(" = ", 1)[0].strip() for line in lines}
        owner: dict[str, Any] = {}
        self.shared = [
            text not in fresh or owner.setdefault(text, o) is not o
            for o, text in zip(self.outputs, outs)
        ]
        ret = outs[0] + "," if len(outs) == 1 else ", ".join(outs)
        args = ", ".join(self.var[p] for p in used_params)
        self.used = [params[p] for p in used_params]
        source = (
            f"def program({args}):\n"
            + "".join(line + "\n" for line in lines)
            + (f"    return {ret}\n")
        )
        # (constants an op's emitter looked at but did not write, such as a broadcast seed
        # written as its number, are not kept)
        words = set(_WORD.findall(source))
        self.globals = {k: v for k, v in self.globals.items() if k in words}
        return source

    def comment(self, n: Node) -> str:
        """The rule-table formulas behind a backward line, as a trailing comment."""
        seen: list[str] = []
        stack = [n]
        while stack:
            m = stack.pop()
            r = self.regions.get(m)
            if isinstance(r, int):
                _, _, op, i = self.tr.edges[r]
                text = f"{op.name}: {op.formula(i)}" if op.formulas[0] else ""
                if text and text not in seen:
                    seen.append(text)
            stack.extend(p for p in m._parents if isinstance(p, Node) and p in self.inline)
        return f"  # {'; '.join(seen)}" if seen else ""


# ---------------------------------------------------------------------------
# Programs and the compiled callable.
# ---------------------------------------------------------------------------


class Program:
    """One compiled program: its signature, its source, and the function made from it.

    ``source`` is the text of ``def program(...)``; ``globals`` the names it
    reads besides its arguments (numpy, math functions, constant arrays).
    """

    def __init__(
        self,
        signature: Any,
        source: str,
        glob: dict[str, Any],
        used: list[int],
        out_spec: Spec,
        out_kinds: list[str],
        floats: bool,
        arrays: bool,
        filename: str,
        wrap: list[int],
        n_leaves: int,
    ) -> None:
        self.signature = signature
        self.wrap = wrap
        self.source = source
        self.globals = glob
        self.used = used
        self.out_spec = out_spec
        self.out_kinds = out_kinds
        self.floats = floats
        self.arrays = arrays
        code = builtins.compile(source, filename, "exec")
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        fast = {**_COMMON, **_FAST, **glob}
        exec(code, fast)
        self.fn: Callable[..., tuple[Any, ...]] = fast["program"]
        # (the fast program's float outputs are Python floats already; the careful one's are not)
        self.build = _builder(out_spec, [k if k != "f" else "" for k in out_kinds])
        self.careful = self.fn
        self.build_careful = self.build
        if floats:  # only float operations raise, and only they take the careful way
            careful = {**_COMMON, **_CAREFUL, **glob}
            exec(code, careful)
            self.careful = careful["program"]
            self.build_careful = _builder(out_spec, out_kinds)
        self.identity = used == list(range(n_leaves)) and not wrap
        #: The quick way in: a call with this signature, checked and run in one function
        #: (it returns _MISS for a call with another signature); None when there is none.
        self.entry = _entry(self)

    def __call__(self, leaves: list[Any]) -> Any:
        """Run the program on the leaves of the arguments, in order; the output pytree."""
        args = leaves if self.identity else [leaves[k] for k in self.used]
        for j in self.wrap:
            args[j] = np.asarray(args[j], dtype=np.float64)
        if not self.arrays:  # Python floats only
            try:
                return self.build(self.fn(*args))
            except (ArithmeticError, ValueError):
                return self._careful(args)
        token = silence()
        try:
            try:
                outs = self.fn(*args)
            except (ArithmeticError, ValueError):
                if not self.floats:
                    raise
                return self._careful(args)
        finally:
            restore(token)
        return self.build(outs)

    def _rerun(self, leaves: list[Any]) -> Any:
        """The careful program on a call's leaves (for :func:`_entry`, whose fast one raised)."""
        args = [leaves[k] for k in self.used]
        for j in self.wrap:
            args[j] = np.asarray(args[j], dtype=np.float64)
        return self._careful(args)

    def _careful(self, args: list[Any]) -> Any:
        """The program on numpy float64 scalars: IEEE 754's inf and nan where floats raise."""
        with np.errstate(all="ignore"):
            outs = self.careful(*[np.float64(a) if isinstance(a, float) else a for a in args])
        return self.build_careful(outs)

    def __repr__(self) -> str:
        return f"Program(signature={self.signature!r})"


_BUILD_NAMES: dict[str, Any] = {"float": float, "asarray": np.asarray, "array": np.array}


def _build_text(spec: Spec, kinds: list[str], const: Callable[[Any], str]) -> str:
    """An expression putting a program's outputs ``o`` into ``spec``'s pytree."""
    count = iter(range(len(kinds)))
    convert = {"f": "float", "a": "asarray", "copy": "array", "": ""}

    def text(s: Spec) -> str:
        if s[0] == "leaf":
            i = next(count)
            return f"{convert[kinds[i]]}(o[{i}])"
        if s[0] == "dict":
            return f"dict(zip({const(tuple(s[1]))}, ({''.join(text(c) + ', ' for c in s[2])})))"
        inner = "".join(text(c) + ", " for c in s[1])
        return f"[{inner}]" if s[0] == "list" else f"({inner})"

    return text(spec)


def _builder(spec: Spec, kinds: list[str]) -> Callable[[Sequence[Any]], Any]:
    """A function putting a program's outputs into ``spec``'s pytree (written once, not walked)."""
    keys = dict(_BUILD_NAMES)

    def const(x: Any) -> str:
        name = f"k{len(keys)}"
        keys[name] = x
        return name

    exec(f"def build(o):\n    return {_build_text(spec, kinds, const)}\n", keys)
    built: Callable[[Sequence[Any]], Any] = keys["build"]
    return built


#: What an entry returns for a call whose signature is not its program's.
_MISS: Any = object()


def _entry(program: Program) -> Callable[..., Any] | None:
    """A function of the arguments that runs ``program`` when the call has its signature.

    The guard is what :func:`_walk` computes, written out for one signature: a
    chain of class, length, shape and dtype tests, without building the
    signature and hashing it.  Anything it does not recognise (an int for a
    float, a Value, a dtype object that is not numpy's own) returns ``_MISS``,
    and the call takes the general way.  When the tests pass, the program's
    arguments are picked from the leaves, numpy's warnings are turned off
    around an array program, and the outputs are put into their pytree, all
    in the one function (what :meth:`Program.__call__` does in several).
    None when the signature holds arguments passed by value or keywords
    (their values would have to be compared).
    """
    signature = program.signature
    tests: list[str] = []
    leaves: list[str] = []
    consts: dict[str, Any] = {
        "ndarray": np.ndarray,
        "program": program.fn,
        "careful": program._rerun,
        "silence": silence,
        "restore": restore,
        "float64": np.float64,
        "MISS": _MISS,
        **_BUILD_NAMES,
    }

    def const(x: Any) -> str:
        name = f"k{len(consts)}"
        consts[name] = x
        return name

    def part(sig: Any, expr: str) -> bool:
        kind = sig[0]
        if kind == "f":
            tests.append(f"{expr}.__class__ is float")
            leaves.append(expr)
        elif kind == "a":
            tests.append(f"{expr}.__class__ is ndarray")
            tests.append(f"{expr}.dtype is {const(sig[2])}")
            tests.append(f"{expr}.shape == {sig[1]!r}")
            leaves.append(expr)
        elif kind in ("list", "tuple"):
            tests.append(f"{expr}.__class__ is {kind}")
            tests.append(f"len({expr}) == {len(sig[1])}")
            if sig[1] and all(s == _F for s in sig[1]):  # numbers: unpacked at once
                tests.extend(f"{expr}[{i}].__class__ is float" for i in range(len(sig[1])))
                leaves.append(f"*{expr}")
            else:
                return all(part(s, f"{expr}[{i}]") for i, s in enumerate(sig[1]))
        elif kind == "dict":
            tests.append(f"{expr}.__class__ is dict")
            keys = const(tuple(sig[1]))
            tests.append(f"tuple({expr}) == {keys}")
            return all(part(s, f"{expr}[{keys}[{i}]]") for i, s in enumerate(sig[2]))
        else:  # integer arrays and arguments by value: compared by value, the general way
            return False
        return True

    names = [f"a{i}" for i in range(len(signature))]
    if not all(isinstance(p, tuple) and p and isinstance(p[0], str) for p in signature):
        return None  # (keywords)
    if not all(part(p, n) for p, n in zip(signature, names)):
        return None
    test = " and ".join(tests) or "True"
    if program.identity:
        args = "*l"
    else:
        picked = [f"l[{k}]" for k in program.used]
        for j in program.wrap:  # a number that ran as a 0-d array is passed as one
            picked[j] = f"asarray({picked[j]}, dtype=float64)"
        args = ", ".join(picked)
    kinds = [k if k != "f" else "" for k in program.out_kinds]
    build = _build_text(program.out_spec, kinds, const)
    # (only float operations raise, and the careful program gives IEEE 754's inf and nan)
    failed = "return careful(l)" if program.floats else "raise"
    if program.arrays:
        run = (
            "        t = silence()\n"
            "        try:\n"
            f"            o = program({args})\n"
            "        except (ArithmeticError, ValueError):\n"
            f"            {failed}\n"
            "        finally:\n"
            "            restore(t)\n"
        )
    else:
        run = (
            "        try:\n"
            f"            o = program({args})\n"
            "        except (ArithmeticError, ValueError):\n"
            f"            {failed}\n"
        )
    source = (
        f"def entry({', '.join(names)}):\n"
        f"    if {test}:\n"
        f"        l = [{', '.join(leaves)}]\n"
        f"{run}"
        f"        return {build}\n"
        "    return MISS\n"
    )
    exec(source, consts)
    made: Callable[..., Any] = consts["entry"]
    return made


class _NotNumeric(Exception):
    """A pytree holds a leaf that is not a number: the argument is passed by value."""


_F = ("f",)


_FLOAT = frozenset([float])
_FLOAT_DTYPES = frozenset(np.dtype(t) for t in (np.float64, np.float32, np.float16))


def _paths(tree: Any, path: str, out: list[str]) -> None:
    """The path of every leaf of ``tree`` (a traced argument), as :func:`_walk` visits them."""
    if tree.__class__ is dict:
        for k, v in tree.items():
            _paths(v, f"{path}_{k}", out)
    elif tree.__class__ is list or tree.__class__ is tuple:
        for i, v in enumerate(tree):
            _paths(v, f"{path}_{i}", out)
    else:
        out.append(path)


def _walk(tree: Any, leaves: list[Any]) -> Any:
    """The signature of ``tree``, appending its leaves (floats and arrays) to ``leaves``."""
    cls = tree.__class__
    if cls is float:
        leaves.append(tree)
        return _F
    if cls is np.ndarray:
        dtype = tree.dtype
        if dtype in _FLOAT_DTYPES:
            leaves.append(tree)
            return ("a", tree.shape, dtype)
    if cls is dict:
        return ("dict", tuple(tree), tuple([_walk(v, leaves) for v in tree.values()]))
    if cls is list or cls is tuple:
        if _FLOAT.issuperset(map(type, tree)):  # the quick way for numbers
            leaves.extend(tree)
            return ("list" if cls is list else "tuple", (_F,) * len(tree))
        return ("list" if cls is list else "tuple", tuple([_walk(v, leaves) for v in tree]))
    if isinstance(tree, Node):
        tree = tree.data
    if isinstance(tree, (bool, np.bool_)) or not isinstance(
        tree, (int, float, np.ndarray, np.generic)
    ):
        raise _NotNumeric
    if isinstance(tree, (int, float)) and not isinstance(tree, np.generic):
        leaves.append(float(tree))
        return _F
    arr = np.asarray(tree)
    kind = arr.dtype.kind
    if kind == "f":
        leaves.append(arr)
        return ("a", arr.shape, arr.dtype)
    if kind in "iub":  # integers (class labels, indices): part of the signature by value
        leaves.append(arr)
        return ("c", arr.shape, arr.dtype.str, arr.tobytes())
    raise _NotNumeric


def _spec(sig: Any) -> Spec:
    """The :func:`chainrule.func.tree_unflatten` spec of a signature from :func:`_walk`."""
    if sig[0] == "dict":
        return ("dict", list(sig[1]), [_spec(s) for s in sig[2]])
    if sig[0] in ("list", "tuple"):
        return (sig[0], [_spec(s) for s in sig[1]])
    return ("leaf",)


def _kinds(sig: Any, out: list[str]) -> None:
    if sig[0] == "dict":
        for s in sig[2]:
            _kinds(s, out)
    elif sig[0] in ("list", "tuple"):
        for s in sig[1]:
            _kinds(s, out)
    else:
        out.append(sig[0])


class Compiled:
    """What :func:`compile` returns: call it like ``fn``.

    Attributes:
        source: the source of the program the last call ran.
        programs: every cached program (:class:`Program`: ``signature``, ``source``).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        static_argnums: int | Sequence[int] = (),
        cache_size: int = 64,
        warn_after: int = 8,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"compile: expected a function, got {type(fn).__name__}")
        self.fn = fn
        self.static = {static_argnums} if isinstance(static_argnums, int) else set(static_argnums)
        self.cache_size = int(cache_size)
        if self.cache_size < 1:
            raise ValueError(f"compile: cache_size must be at least 1, got {cache_size}")
        self.warn_after = warn_after
        self._cache: OrderedDict[Any, Program] = OrderedDict()
        self._last: Program | None = None
        self._last_key: Any = None
        #: How many arguments the last program takes and its entry (see :func:`_entry`), as
        #: one tuple, so a call on another thread never pairs one's count with another.
        self._quick: tuple[int, Callable[..., Any]] | None = None
        self._changes: dict[int, int] = {}
        self._warned = False
        self.name = getattr(fn, "__name__", "fn")
        try:
            sig = inspect.signature(fn)
            self._argnames = [
                p.name
                for p in sig.parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            self._argnames = []

    @property
    def source(self) -> str:
        """The source of the program the last call ran."""
        if self._last is None:
            raise RuntimeError("compile: no program yet; call the compiled function first")
        return self._last.source

    @property
    def programs(self) -> list[Program]:
        """Every cached program, least recently used first."""
        return list(self._cache.values())

    def _argname(self, i: int) -> str:
        return self._argnames[i] if i < len(self._argnames) else f"arg{i}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if STATE.tracing is not None:  # inside another trace: part of that program
            return self.fn(*args, **kwargs)
        quick = self._quick
        if quick is not None and len(args) == quick[0] and not kwargs:
            out = quick[1](*args)  # the quick way: a call with the last call's signature
            if out is not _MISS:
                return out
        leaves: list[Any] = []
        signature: Any = None
        if not self.static and not kwargs:  # the usual call: every argument a pytree of numbers
            try:
                signature = tuple([_walk(a, leaves) for a in args])
            except _NotNumeric:
                leaves = []
        if signature is None:
            signature = self._signature(args, kwargs, leaves)
        program = self._cache.get(signature)
        if program is None:
            program = self._trace(args, kwargs, signature, leaves)
        elif self._last is not program:
            self._cache.move_to_end(signature)
        if self._last is not program:
            self._last = program
            entry = program.entry
            self._quick = None if entry is None else (len(args), entry)
        return program(leaves)

    def _signature(self, args: tuple[Any, ...], kwargs: dict[str, Any], leaves: list[Any]) -> Any:
        """The signature of a call with arguments passed by value (and their leaves)."""
        key: list[Any] = []
        static = self.static
        for i, a in enumerate(args):
            if a.__class__ is float:
                leaves.append(a)
                key.append(_F)
                continue
            if i in static:
                key.append(("static", _hashable(a, self._argname(i))))
                continue
            n = len(leaves)
            try:
                key.append(_walk(a, leaves))
            except _NotNumeric:
                del leaves[n:]
                key.append(("static", _hashable(a, self._argname(i))))
        if kwargs:
            key.append(
                tuple(sorted((k, _hashable(v, k)) for k, v in kwargs.items()))  # by value
            )
        return tuple(key)

    def _trace(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        signature: tuple[Any, ...],
        leaves: list[Any],
    ) -> Program:
        self._note_retrace(signature, len(args))
        paths: list[str] = []
        for i, part in enumerate(signature[: len(args)]):
            if part[0] != "static":
                _paths(args[i], self._argname(i), paths)
        tracer = _Tracer(self.name)
        nodes: list[Node] = []
        k = 0
        kinds = [kind for part in signature if part[0] != "static" for kind in _leaf_kinds(part)]
        arrays = any(kind != "f" for kind in kinds)  # numbers then meet arrays as 0-d arrays
        traced_args = list(args)
        for i, part in enumerate(signature[: len(args)]):
            if part[0] == "static":
                continue
            sub = []
            for kind in _leaf_kinds(part):
                x = leaves[k]
                node: Any
                if kind == "f" and not arrays:
                    node = Value(x, name=safe_name(paths[k]))
                elif kind == "f":
                    node = Tensor(np.float64(x), requires_grad=True, name=safe_name(paths[k]))
                elif kind == "a":
                    node = Tensor(x, requires_grad=True, name=safe_name(paths[k]))
                else:
                    node = x  # an integer array: a constant of this program
                if isinstance(node, Node):
                    tracer.inputs.add(id(node))
                    tracer.keep.append(node)
                nodes.append(node)
                sub.append(node)
                k += 1
            traced_args[i] = tree_unflatten(_spec(part), sub)
        previous = STATE.tracing
        STATE.tracing = tracer
        try:
            with enable_grad():
                result = self.fn(*traced_args, **kwargs)
        finally:
            STATE.tracing = previous
        outs, out_spec = tree_flatten(result, f"compile({self.name}) (output)")
        out_kinds = []
        for o in outs:
            if isinstance(o, (Value, int, float)):
                out_kinds.append("f")
            else:
                out_kinds.append("copy" if id(o) in tracer.inputs else "a")
        params = [n if isinstance(n, Node) else Tensor(0.0) for n in nodes]
        emitter = _Emitter(tracer, params, outs)
        source = emitter.emit()
        out_kinds = [
            "copy" if kind == "a" and shared else kind
            for kind, shared in zip(out_kinds, emitter.shared)
        ]
        filename = f"<chainrule.compile {self.name} #{len(self._cache) + 1}>"
        if arrays:  # a number that ran as a 0-d array is passed as one
            emitter.wrap = [j for j, k in enumerate(emitter.used) if kinds[k] == "f"]
        program = Program(
            signature,
            source,
            emitter.globals,
            emitter.used,
            out_spec,
            out_kinds,
            emitter.floats,
            emitter.arrays,
            filename,
            emitter.wrap,
            len(leaves),
        )
        self._cache[signature] = program
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return program

    def _note_retrace(self, signature: tuple[Any, ...], nargs: int) -> None:
        """Count the traces each argument's signature caused; warn once if one keeps changing."""
        last = self._last_key
        self._last_key = signature
        if last is None or self._warned:
            return
        for i in range(max(len(last), len(signature))):
            if i >= len(last) or i >= len(signature) or last[i] != signature[i]:
                self._changes[i] = self._changes.get(i, 0) + 1
                if self._changes[i] >= self.warn_after:
                    self._warned = True
                    what = self._argname(i) if i < nargs else "keywords"
                    warnings.warn(
                        f"compile({self.name}): the argument {what!r} has changed signature "
                        f"(structure, shape, dtype, or value of a non-traced argument) "
                        f"{self._changes[i]} times, and each new signature traces and "
                        "compiles a new program; keep its shapes fixed, or pass numbers "
                        "that change as traced floats or arrays rather than by value",
                        stacklevel=3,
                    )
                    return


def _leaf_kinds(part: Any) -> list[str]:
    out: list[str] = []
    _kinds(part, out)
    return out


def _hashable(x: Any, name: str) -> Any:
    try:
        hash(x)
    except TypeError:
        raise TypeError(
            f"compile: the argument {name!r} is a {type(x).__name__}, which is neither a pytree "
            "of numbers (dicts, lists, tuples of floats and arrays) nor hashable, so it can be "
            "neither traced nor told apart by value"
        ) from None
    return x


def compile(  # noqa: A001
    fn: Callable[..., Any],
    *,
    static_argnums: int | Sequence[int] = (),
    cache_size: int = 64,
) -> Compiled:
    """Compile ``fn`` into straight-line Python, traced once per signature of its arguments.

    Args:
        fn: takes positional pytrees of floats, numpy arrays, Values or Tensors
            (and other arguments, passed by value) and returns a pytree of them.
        static_argnums: positional arguments passed by value, not traced
            (numbers that steer Python code, such as a count of steps).
        cache_size: how many programs are kept (least recently used goes first).

    Returns:
        A :class:`Compiled` callable; its ``source`` shows the last program run.
    """
    return Compiled(fn, static_argnums=static_argnums, cache_size=cache_size)
