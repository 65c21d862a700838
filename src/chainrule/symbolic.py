"""The gradient as a formula: the rule table run on SymPy expressions, and proved.

:func:`symbolic` turns a graph into SymPy: each leaf becomes a symbol named
after it (one per element for a Tensor; an unnamed constant stays a number),
the forward pass becomes an expression, and the gradient comes from running
**the same rule table** that ``backward()`` runs (:mod:`chainrule.rules`),
op by op, on SymPy expressions instead of numbers, not from ``sympy.diff``.
:meth:`Symbolic.check` then differentiates the forward expression with
``sympy.diff`` and proves the two equal: their difference simplifies to 0;
where simplification cannot decide, it compares them at random points near
the graph's own values and says so, with the tolerance.

The rules are written with small helpers (``exp``, ``log``, ``sum``,
``where``...) that take floats, arrays and graph nodes; an expression enters
them as a :class:`Sym`, a graph node whose data is a SymPy expression (or a
numpy array of them), so the rules do not change.  The rules that choose by
comparing numbers (``relu``, ``abs``, ``clip``, ``maximum``, ``minimum``,
``max``) take every mask from ``rules.compare`` or ``rules.sign`` and select
with ``rules.where``; given a :class:`Sym` these build SymPy conditions
(``x <= 0``), ``sign(x)`` and ``Piecewise`` formulas, and the forward of those
ops is ``Max``, ``Min`` and ``Abs``.

SymPy is an optional extra: ``pip install 'chainrule[symbolic]'`` (the
examples of ``docs/derive.md`` run with it)::

    x = cr.Value(0.5, name="x")
    s = cr.symbolic((x * x).sigmoid())
    s.expression      # 1/(1 + exp(-x**2))
    s.gradients["x"]  # 2*x*(1 - 1/(1 + exp(-x**2)))/(1 + exp(-x**2))
    print(s.check())  # x: proved (the rule table's gradient minus sympy.diff simplifies to 0)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import Node, iter_graph
from .naming import graph_names
from .numerics import unbroadcast
from .rules import _LN2, _TWO_OVER_SQRT_PI, SymbolicNode

#: Ops whose rule SymPy cannot run, and why (none at present: the rules that
#: choose by comparing numbers take their masks from ``rules.compare`` and
#: ``rules.sign`` and select with ``rules.where``, which build SymPy conditions
#: and ``Piecewise`` formulas for expressions).
UNSUPPORTED: dict[str, str] = {}

#: Relative tolerance of the comparison at random points, when a proof is not found.
TOLERANCE = 1e-9
#: How many random points that comparison uses.
POINTS = 5


def _sympy() -> Any:
    try:
        import sympy
    except ImportError:
        raise ImportError(
            "chainrule.symbolic needs SymPy, an optional extra: pip install 'chainrule[symbolic]'"
        ) from None
    return sympy


# ---------------------------------------------------------------------------
# The adapter: a SymPy expression dressed as a graph node.
# ---------------------------------------------------------------------------


def _map(fn: Callable[[Any], Any], data: Any) -> Any:
    """``fn`` on every element of an object array, or on one expression."""
    if isinstance(data, np.ndarray):
        out = np.empty(data.shape, dtype=object)
        for k, v in np.ndenumerate(data):
            out[k] = fn(v)
        return out
    return fn(data)


def _unwrap(x: Any) -> Any:
    """An operand as SymPy takes it; a Python float a rule multiplies by becomes exact."""
    if isinstance(x, Sym):
        return x.data
    if isinstance(x, float):
        return _constant(x)
    return x


def _constant(x: float) -> Any:
    """A rule's float constant as an exact SymPy number.

    The constants the rule table computes once (ln 2, 2/sqrt(pi)) become the
    numbers they stand for, so a gradient using them can be proved equal to
    ``sympy.diff``; any other float becomes the decimal it prints as.
    """
    sp = _sympy()
    if x == _LN2:
        return sp.log(2)
    if x == _TWO_OVER_SQRT_PI:
        return 2 / sp.sqrt(sp.pi)
    return _number(x)


class Sym(SymbolicNode):
    """A SymPy expression (or an object array of them) that the rules take as a node.

    It has what the rules and their helpers ask of a node: arithmetic, the
    functions (``exp``, ``log``, ``sigmoid``, ...), reductions and shapes.
    Nothing is recorded: it is a value, not a graph.
    """

    __slots__ = ()

    def __init__(self, data: Any) -> None:
        self.data = data
        self.requires_grad = False
        self.name = None
        self._op = None
        self._parents = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.data)) if isinstance(self.data, np.ndarray) else ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def _wrap_grad(cls, g: Any) -> Sym:
        return g if isinstance(g, Sym) else Sym(g)

    def __repr__(self) -> str:
        return f"Sym({self.data!r})"

    # arithmetic (reflected forms too: numbers and arrays meet expressions)
    def __add__(self, o: Any) -> Sym:
        return Sym(self.data + _unwrap(o))

    def __radd__(self, o: Any) -> Sym:
        return Sym(_unwrap(o) + self.data)

    def __sub__(self, o: Any) -> Sym:
        return Sym(self.data - _unwrap(o))

    def __rsub__(self, o: Any) -> Sym:
        return Sym(_unwrap(o) - self.data)

    def __mul__(self, o: Any) -> Sym:
        return Sym(self.data * _unwrap(o))

    def __rmul__(self, o: Any) -> Sym:
        return Sym(_unwrap(o) * self.data)

    def __truediv__(self, o: Any) -> Sym:
        return Sym(self.data / _unwrap(o))

    def __rtruediv__(self, o: Any) -> Sym:
        return Sym(_unwrap(o) / self.data)

    def __pow__(self, o: Any) -> Sym:
        return Sym(self.data ** _unwrap(o))

    def __rpow__(self, o: Any) -> Sym:
        return Sym(_unwrap(o) ** self.data)

    def __matmul__(self, o: Any) -> Sym:
        return Sym(np.matmul(self.data, _unwrap(o)))

    def __rmatmul__(self, o: Any) -> Sym:
        return Sym(np.matmul(_unwrap(o), self.data))

    def __neg__(self) -> Sym:
        return Sym(-self.data)

    def __getitem__(self, index: Any) -> Sym:
        return Sym(np.asarray(self.data, dtype=object)[index])

    # functions
    def exp(self) -> Sym:
        return Sym(_map(_sympy().exp, self.data))

    def log(self) -> Sym:
        return Sym(_map(_sympy().log, self.data))

    def tanh(self) -> Sym:
        return Sym(_map(_sympy().tanh, self.data))

    def sqrt(self) -> Sym:
        return Sym(_map(_sympy().sqrt, self.data))

    def sigmoid(self) -> Sym:
        sp = _sympy()
        return Sym(_map(lambda v: 1 / (1 + sp.exp(-v)), self.data))

    def sin(self) -> Sym:
        return Sym(_map(_sympy().sin, self.data))

    def cos(self) -> Sym:
        return Sym(_map(_sympy().cos, self.data))

    def erf(self) -> Sym:
        return Sym(_map(_sympy().erf, self.data))

    def astype(self, dtype: Any) -> Sym:
        return self

    # reductions and shapes, on object arrays
    def sum(self, axis: Any = None, keepdims: bool = False) -> Sym:
        if not isinstance(self.data, np.ndarray):
            return self
        out = np.sum(self.data, axis=axis, keepdims=keepdims)
        return Sym(out if isinstance(out, np.ndarray) and out.ndim else _scalar(out))

    def prod(self, axis: Any = None, keepdims: bool = False) -> Sym:
        if not isinstance(self.data, np.ndarray):
            return self
        out = np.prod(self.data, axis=axis, keepdims=keepdims)
        return Sym(out if isinstance(out, np.ndarray) and out.ndim else _scalar(out))

    def cumsum(self, axis: int) -> Sym:
        return Sym(np.cumsum(np.asarray(self.data, dtype=object), axis=axis))

    def reshape(self, shape: Any) -> Sym:
        return Sym(np.reshape(np.asarray(self.data, dtype=object), shape))

    def transpose(self, axes: Any = None) -> Sym:
        return Sym(np.transpose(self.data, axes))

    def broadcast_to(self, shape: Any) -> Sym:
        return Sym(np.array(np.broadcast_to(np.asarray(self.data, dtype=object), shape)))

    def where(self, cond: Any, other: Any) -> Sym:
        return Sym(np.where(cond, self.data, _unwrap(other)))

    # masks and selections (rules.compare, rules.sign, rules.where): conditions and cases
    @classmethod
    def _mask(cls, kind: str, a: Any, b: Any) -> Sym:
        relation = getattr(_sympy(), _RELATIONS[kind])
        return Sym(_map_broadcast(relation, _unwrap(a), _unwrap(b)))

    def _sign(self) -> Sym:
        return Sym(_map(_sympy().sign, self.data))

    @classmethod
    def _select(cls, cond: Any, a: Any, b: Any) -> Sym:
        piecewise = _sympy().Piecewise
        return Sym(
            _map_broadcast(
                lambda c, u, v: piecewise((u, c), (v, True)), _unwrap(cond), _unwrap(a), _unwrap(b)
            )
        )

    def log_softmax(self, axis: int) -> Sym:
        return self - self.exp().sum(axis=axis, keepdims=True).log()

    def _scatter(self, shape: tuple[int, ...], index: Any) -> Sym:
        out = np.zeros(shape, dtype=object)
        np.add.at(out, index, self.data)
        return Sym(out)


#: The SymPy condition for each kind of :func:`chainrule.rules.compare`.
_RELATIONS = {
    "<": "Lt",
    "<=": "Le",
    ">": "Gt",
    ">=": "Ge",
    "==": "Eq",
    "!=": "Ne",
    "&": "And",
    "|": "Or",
}


def _element(x: Any) -> Any:
    """One element as SymPy takes it: a bool as SymPy's true or false, a number exact."""
    sp = _sympy()
    if x is True or x is np.True_:
        return sp.true
    if x is False or x is np.False_:
        return sp.false
    return x if isinstance(x, sp.Basic) else _number(x)


def _map_broadcast(fn: Callable[..., Any], *operands: Any) -> Any:
    """``fn`` on the elements of its operands, broadcast (an object array, or one expression)."""
    if not any(isinstance(x, np.ndarray) for x in operands):
        return fn(*map(_element, operands))
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=object) for x in operands))
    out = np.empty(arrays[0].shape, dtype=object)
    for k in np.ndindex(out.shape):
        out[k] = fn(*(_element(x[k]) for x in arrays))
    return out


def _expr(sp: Any, x: Any) -> Any:
    """A SymPy expression: plain numbers (a rule's 0.0 where it selects) become exact ones."""
    return x if isinstance(x, sp.Basic) else _number(x)


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, np.ndarray) else x


def _number(x: Any) -> Any:
    """A constant as an exact SymPy number: the decimal it prints as (0.01 is 1/100)."""
    sp = _sympy()
    if isinstance(x, np.ndarray):
        return _map(_number, x.astype(object) if x.dtype != object else x)
    if isinstance(x, (bool, np.bool_)):
        return sp.Integer(int(x))
    if isinstance(x, (int, np.integer)):
        return sp.Integer(int(x))
    f = float(x)
    if math.isnan(f):
        return sp.nan
    if math.isinf(f):
        return sp.oo if f > 0 else -sp.oo
    return sp.Rational(repr(f))


# ---------------------------------------------------------------------------
# Forward: what each op computes, on expressions.
# ---------------------------------------------------------------------------


def _logsumexp(n: Node, a: Sym) -> Sym:
    axis, keep = n._ctx
    return a.exp().sum(axis=axis, keepdims=keep).log()


def _softmax(n: Node, a: Sym) -> Sym:
    e = a.exp()
    return e / e.sum(axis=n._ctx, keepdims=True)


def _cross_entropy(n: Node, a: Sym) -> Sym:
    axis, _probs, onehot, coef, per_sample = n._ctx
    losses = -(a.log_softmax(axis) * _number(onehot)) * _number(np.asarray(coef))
    return losses.sum(axis=axis if per_sample else None)


def _setitem(n: Node, base: Sym, value: Sym) -> Sym:
    out = np.array(np.asarray(base.data, dtype=object))
    out[n._ctx] = value.data
    return Sym(out)


def _concatenate(n: Node, *xs: Sym) -> Sym:
    return Sym(np.concatenate([np.asarray(x.data, dtype=object) for x in xs], axis=n._ctx[0]))


def _stack(n: Node, *xs: Sym) -> Sym:
    return Sym(np.stack([np.asarray(x.data, dtype=object) for x in xs], axis=n._ctx))


def _mean(n: Node, a: Sym) -> Sym:
    axis, keep = n._ctx
    count = (
        np.size(a.data)
        if axis is None
        else np.size(a.data) // np.size(np.sum(np.asarray(a.data, dtype=object), axis=axis))
    )
    return a.sum(axis=axis, keepdims=keep) / count


def _clip(n: Node, a: Sym) -> Sym:
    sp = _sympy()
    lo, hi = n._ctx
    return Sym(_map_broadcast(lambda v, low, high: sp.Min(sp.Max(v, low), high), a.data, lo, hi))


def _max(n: Node, a: Sym) -> Sym:
    """The largest element over the axes, as ``Max(...)`` of the elements."""
    axis, keep = n._ctx
    data = np.asarray(a.data, dtype=object)
    axes = range(data.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    reduced = sorted({ax % data.ndim for ax in axes}, reverse=True)
    largest = np.frompyfunc(_sympy().Max, 2, 1)
    for ax in reduced:  # (one axis at a time: SymPy's Max is not a numpy reduction)
        data = largest.reduce(data, axis=ax, keepdims=True)
    if not keep:
        data = data.reshape([k for i, k in enumerate(data.shape) if i not in reduced])
    return Sym(data if data.ndim else data.item())


#: How each op computes its output from its operands, on expressions (forward only).
FORWARD: dict[str, Callable[..., Sym]] = {
    "add": lambda n, a, b: a + b,
    "sub": lambda n, a, b: a - b,
    "mul": lambda n, a, b: a * b,
    "div": lambda n, a, b: a / b,
    "pow": lambda n, a, b: a**b,
    "neg": lambda n, a: -a,
    "exp": lambda n, a: a.exp(),
    "log": lambda n, a: a.log(),
    "tanh": lambda n, a: a.tanh(),
    "sigmoid": lambda n, a: a.sigmoid(),
    "softplus": lambda n, a: (a.exp() + 1).log(),
    "sqrt": lambda n, a: a.sqrt(),
    "erf": lambda n, a: a.erf(),
    "sin": lambda n, a: a.sin(),
    "cos": lambda n, a: a.cos(),
    "exp2": lambda n, a: 2**a,
    "log2": lambda n, a: a.log() / _sympy().log(2),
    "log1p": lambda n, a: (a + 1).log(),
    "expm1": lambda n, a: a.exp() - 1,
    "clone": lambda n, a: a,
    "cumsum": lambda n, a: a.cumsum(n._ctx),
    "prod": lambda n, a: a.prod(*n._ctx),
    # Ops with kinks: SymPy's Max, Min and Abs (the rules' masks become conditions).
    "relu": lambda n, a: Sym(_map(lambda v: _sympy().Max(v, 0), a.data)),
    "abs": lambda n, a: Sym(_map(_sympy().Abs, a.data)),
    "clip": _clip,
    "maximum": lambda n, a, b: Sym(_map_broadcast(_sympy().Max, a.data, b.data)),
    "minimum": lambda n, a, b: Sym(_map_broadcast(_sympy().Min, a.data, b.data)),
    "max": _max,
    # The Euclidean norm; its rule's choice at a zero norm (gradient 0) is a
    # case Eq(norm, 0) of the gradient, a kink that check() sets aside.
    "norm": lambda n, a: (a * a).sum(*n._ctx).sqrt(),
    "where": lambda n, a, b: Sym(np.where(n._ctx, a.data, b.data)),
    "astype": lambda n, a: a,
    "matmul": lambda n, a, b: a @ b,
    "sum": lambda n, a: a.sum(*n._ctx),
    "mean": _mean,
    "reshape": lambda n, a: a.reshape(np.shape(n.data)),
    "transpose": lambda n, a: a.transpose(n._ctx),
    "broadcast_to": lambda n, a: a.broadcast_to(np.shape(n.data)),
    "getitem": lambda n, a: a[n._ctx],
    "scatter": lambda n, a: a._scatter(*n._ctx),
    "setitem": _setitem,
    "concatenate": _concatenate,
    "stack": _stack,
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": lambda n, a: a.log_softmax(n._ctx),
    "cross_entropy": _cross_entropy,
}


# ---------------------------------------------------------------------------
# The result.
# ---------------------------------------------------------------------------


@dataclass
class Check:
    """The result of :meth:`Symbolic.check`: one verdict per wanted symbol.

    Attributes:
        verdicts: symbol name → ``"proved"``, ``"numeric"`` (equal at the random
            points, within :data:`TOLERANCE`, not proved) or ``"differ"``.
        ok: True when no verdict is ``"differ"``.
        kinks: symbol name → the kinks (``"x = 0"``) a "proved" verdict holds
            away from, for gradients of ops with kinks (``relu``, ``abs``,
            ``maximum``...; see :func:`_proved_by_cases`); absent when the
            proof holds everywhere.
    """

    verdicts: dict[str, str]
    details: dict[str, str] = field(default_factory=dict)
    kinks: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v != "differ" for v in self.verdicts.values())

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return "\n".join(f"{k}: {self.details[k]}" for k in self.verdicts)


@dataclass
class Symbolic:
    """The result of :func:`symbolic`.

    Attributes:
        expression: the forward pass, a SymPy expression of the leaves' symbols.
        symbols: every leaf symbol by name.
        gradients: the gradient with respect to each wanted symbol, by name,
            from the rule table run on expressions.
        values: the graph's own number for each symbol (the random points of
            :meth:`check` are taken near them).
        output: the output's name.
    """

    expression: Any
    symbols: dict[str, Any]
    gradients: dict[str, Any]
    values: dict[str, float]
    output: str

    def check(self, seed: int = 0) -> Check:
        """Compare each gradient with ``sympy.diff`` of :attr:`expression`.

        Both sides are first evaluated at :data:`POINTS` random points (each
        symbol moved by up to 10% of its value from the graph's number, so logs
        and roots stay in their domain); if they are further apart than
        :data:`TOLERANCE`, relative, the verdict is "differ" at once, without
        asking SymPy to simplify a difference that is not 0 (which can take
        without bound on a large expression).  Where they agree, the difference
        is simplified: 0 is a proof ("proved"); otherwise the verdict is
        "numeric", and says that only the points vouch for it.

        A gradient of an op with a kink (``relu``, ``clip``, ``maximum``, ``max``,
        a norm's 0, ...) is proved on every side of its kinks, one smooth case
        at a time, not on them, where the rule table's convention (relu'(0) = 0,
        a tie of maximum split in half, clip passing the gradient at its bounds)
        need not be sympy's value; :attr:`Check.kinks` and the detail name them.
        """
        sp = _sympy()
        rng = random.Random(seed)
        verdicts: dict[str, str] = {}
        details: dict[str, str] = {}
        kinked: dict[str, list[str]] = {}
        for name, grad in self.gradients.items():
            sym = self.symbols[name]
            reference = sp.diff(self.expression, sym)
            worst = 0.0
            for _ in range(POINTS):
                point = {
                    s: sp.Float(v * (1 + rng.uniform(-0.1, 0.1)) + rng.uniform(-1e-3, 1e-3))
                    for s, v in ((self.symbols[k], val) for k, val in self.values.items())
                }
                a = complex(sp.N(grad.subs(point), 30))
                b = complex(sp.N(reference.subs(point), 30))
                worst = max(worst, abs(a - b) / max(1.0, abs(b)))
            if not worst <= TOLERANCE:  # (a nan difference differs too)
                verdicts[name] = "differ"
                details[name] = (
                    f"DIFFER: at random points the rule table's gradient and sympy.diff are "
                    f"{worst:.1e} apart (tolerance {TOLERANCE:g})"
                )
            elif (kinks := _proved_by_cases(sp, grad - reference, point)) is not None:
                verdicts[name] = "proved"
                if kinks:
                    kinked[name] = kinks
                    details[name] = (
                        f"proved away from the kinks {', '.join(kinks)} (on every side of "
                        "them the rule table's gradient minus sympy.diff simplifies to 0; "
                        "on a kink the rule table's convention need not be sympy's)"
                    )
                else:
                    details[name] = (
                        "proved (the rule table's gradient minus sympy.diff simplifies to 0)"
                    )
            else:
                verdicts[name] = "numeric"
                details[name] = (
                    "not proved (neither simplify nor a split at the kinks decided); equal at "
                    f"{POINTS} random points "
                    f"within relative tolerance {TOLERANCE:g} (largest difference {worst:.1e})"
                )
        return Check(verdicts, details, kinked)

    def latex(self) -> str:
        """The forward expression and each gradient, as the body of a LaTeX ``align*``."""
        sp = _sympy()
        names = {s: _tex_symbol(k) for k, s in self.symbols.items()}
        rows = [f"{_tex_symbol(self.output)} &= {sp.latex(self.expression, symbol_names=names)}"]
        for k, g in self.gradients.items():
            top, bottom = _tex_symbol(self.output), names[self.symbols[k]]
            rows.append(
                f"\\frac{{\\partial {top}}}{{\\partial {bottom}}} &= "
                + sp.latex(g, symbol_names=names)
            )
        return " \\\\\n".join(rows)


#: At most this many combinations of sides of the kinks are tried (else "numeric").
MAX_REGIONS = 1024


class _NoCases(Exception):
    """The difference cannot be split into smooth cases (too many, or a kink is 0 at a point)."""


def _proved_by_cases(sp: Any, d: Any, point: dict[Any, Any]) -> list[str] | None:
    """Whether ``d`` is 0, proved; the kinks set aside for that (``[]``: none), or None.

    ``d`` may have kinks: ``Abs``, ``sign``, ``Heaviside``, ``Max``, ``Min``,
    conditions and ``Piecewise`` (``sympy.diff`` of ``Max(x, 0)`` is
    ``Heaviside(x)``; the rule table's gradient is ``Piecewise((0, Max(0, x) <=
    0), (1, True))``).  Each kink is an expression ``k`` whose sign decides a
    case (``x`` there, ``a - b`` for ``Max(a, b)``).  Away from ``k = 0`` its
    side is ``k > 0`` or ``k < 0``, and on each side the case is a smooth
    expression; so ``d`` is split, innermost kink first, into one smooth
    expression per combination of sides, and each must be proved 0 by
    :func:`_is_zero`.  An equality ``Eq(a, b)`` is false away from ``a - b = 0``.
    That proves ``d = 0`` everywhere except on the kinks themselves, where the
    rule table's convention (relu'(0) = 0, a tie of maximum split in half)
    need not be sympy's (``Heaviside(0) = 1/2``).  The kinks are sets of no
    volume: each is a formula of the symbols that is not 0 at ``point``.
    """
    if d == 0:
        return []
    if not _kinked(sp, d):
        return [] if _is_zero(sp, d) else None
    kinks: dict[Any, None] = {}
    try:
        cases = list(_cases(sp, d, {}, kinks, point, [MAX_REGIONS]))
    except _NoCases:
        return None
    if not all(_is_zero(sp, case) for case in cases):
        return None
    return [f"{k} = 0" for k in sorted(kinks, key=sp.default_sort_key)]


def _kinked(sp: Any, e: Any) -> bool:
    """Whether ``e`` has a kink (an atom :func:`_proved_by_cases` splits on) with a symbol."""
    return any(_is_kink(sp, a) for a in sp.preorder_traversal(e))


def _is_kink(sp: Any, a: Any) -> bool:
    kinds = (
        sp.Abs,
        sp.sign,
        sp.Heaviside,
        sp.Max,
        sp.Min,
        sp.Piecewise,
        sp.core.relational.Relational,
    )
    return isinstance(a, kinds) and bool(a.free_symbols)


def _cases(
    sp: Any,
    e: Any,
    sides: dict[Any, int],
    kinks: dict[Any, None],
    point: dict[Any, Any],
    budget: list[int],
) -> Iterable[Any]:
    """The smooth cases of ``e``, one per combination of sides of its kinks (see above).

    ``budget`` counts down the combinations tried; past :data:`MAX_REGIONS`
    the split is given up.
    """
    atom = next((a for a in sp.postorder_traversal(e) if _is_kink(sp, a)), None)
    if atom is None:
        yield e
        return
    if isinstance(atom, sp.Piecewise):  # (its conditions are decided first: still symbolic)
        raise _NoCases
    if isinstance(atom, (sp.Max, sp.Min)):
        pairs = [(u, v) for i, u in enumerate(atom.args) for v in atom.args[i + 1 :]]
        differences = [u - v for u, v in pairs]
    else:
        lhs, rhs = (
            (atom.lhs, atom.rhs)
            if isinstance(atom, sp.core.relational.Relational)
            else (atom.args[0], 0)
        )
        differences = [lhs - rhs]
    known: list[int] = []
    for k in differences:
        key, flip = _kink_key(sp, k)
        if key == 0:  # (Eq(a, a) after an inner case: no kink)
            known.append(0)
            continue
        if key not in kinks:
            value = complex(sp.N(key.subs(point), 30))
            if not abs(value) > 1e-20:  # a kink must be a set of no volume
                raise _NoCases
            kinks[key] = None
        if isinstance(atom, (sp.Equality, sp.Unequality)):
            known.append(flip)  # (the side is not needed)
            continue
        if key not in sides:  # not decided yet: both sides
            budget[0] -= 1
            if budget[0] < 0:
                raise _NoCases
            for side in (1, -1):
                yield from _cases(sp, e, {**sides, key: side}, kinks, point, budget)
            return
        known.append(sides[key] * flip)
    value = _on_side(sp, atom, known)
    if value is None:  # sides that contradict each other (a > b > c > a): no region
        return
    yield from _cases(sp, e.xreplace({atom: value}), sides, kinks, point, budget)


def _kink_key(sp: Any, k: Any) -> tuple[Any, int]:
    """The kink ``k = 0`` written one way for ``c k`` (any number ``c``), and the sign of ``c``.

    (SymPy writes ``2*x <= 0`` as ``x <= 0``: both are the kink ``x = 0``.)
    """
    k = sp.expand(k)
    if k == 0:
        return k, 0
    content, k = k.as_content_primitive()
    flip = 1 if content > 0 else -1
    if k.could_extract_minus_sign():
        k, flip = sp.expand(-k), -flip
    return k, flip


def _on_side(sp: Any, atom: Any, signs: list[int]) -> Any:
    """What a kinked atom is where its differences have the signs ``signs`` (0: identical)."""
    if isinstance(atom, sp.Equality):
        return sp.true if signs[0] == 0 else sp.false
    if isinstance(atom, sp.Unequality):
        return sp.false if signs[0] == 0 else sp.true
    if isinstance(atom, sp.core.relational.Relational):
        s = signs[0]
        op = atom.rel_op
        if s == 0:
            return sp.true if op in ("<=", ">=") else sp.false
        return sp.true if (s < 0) == (op in ("<", "<=")) else sp.false
    if isinstance(atom, sp.Abs):
        return atom.args[0] * signs[0]
    if isinstance(atom, sp.sign):
        return sp.Integer(signs[0])
    if isinstance(atom, sp.Heaviside):
        return sp.Integer(1 if signs[0] > 0 else 0) if signs[0] else atom.func(0)
    # Max or Min: the argument ahead of every other (signs of u - v for each pair)
    bigger = 1 if isinstance(atom, sp.Max) else -1
    n = len(atom.args)
    beats: dict[int, set[int]] = {i: set() for i in range(n)}
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for (i, j), s in zip(pairs, signs):
        if s * bigger >= 0:
            beats[i].add(j)
        if s * bigger <= 0:
            beats[j].add(i)
    for i in range(n):
        if len(beats[i]) == n - 1:
            return atom.args[i]
    return None


def _is_zero(sp: Any, d: Any) -> bool:
    """Whether ``d`` is 0 for every value of its symbols, when that can be shown.

    First, quickly: with each outermost function call (``exp(...)``, ``log(...)``)
    taken as a symbol of its own, ``d`` cancels to 0 as a rational function;
    an identity for independent symbols holds for any values they take, the
    calls' included.  Otherwise ``sympy.simplify`` decides.
    """
    if d == 0:
        return True
    calls = {f: sp.Dummy() for f in d.atoms(sp.Function)}
    try:
        rational = sp.together(d.xreplace(calls))
        if sp.expand(sp.numer(rational)) == 0 or sp.cancel(rational) == 0:
            return True
    except (sp.PolynomialError, TypeError, ValueError):
        pass
    return bool(sp.simplify(d) == 0)


def _tex_symbol(name: str) -> str:
    from .derive import _tex_name

    base, _, index = name.partition("[")
    tex = _tex_name(base)
    return tex + "_{[" + index.rstrip("]") + "]}" if index else tex


def symbolic(output: Node, wrt: Node | Iterable[Node] | None = None) -> Symbolic:
    """The graph of ``output`` as SymPy expressions, its gradient from the rule table.

    Args:
        output: a Value, or a Tensor with one element.
        wrt: the leaves whose gradients are wanted (a node or a list); default
            every leaf that requires grad.

    Returns:
        A :class:`Symbolic`: :attr:`~Symbolic.expression`,
        :attr:`~Symbolic.gradients` (one per element of a Tensor leaf, named
        ``W[0, 1]``), :meth:`~Symbolic.check` and :meth:`~Symbolic.latex`.

    The backward pass is the engine's, written out on expressions: from
    ``1`` at the output, each node hands each operand ``vjp_i(g)`` from the
    rule table, summed back over broadcast axes, and the shares meeting at a
    node add up.

    Raises:
        ImportError: without SymPy (``pip install 'chainrule[symbolic]'``).
        ValueError: for an op whose rule SymPy cannot run (:data:`UNSUPPORTED`).
    """
    sp = _sympy()
    if not isinstance(output, Node):
        raise TypeError(f"symbolic: output must be a Value or Tensor, got {type(output).__name__}")
    if not output.requires_grad:
        raise ValueError(
            "symbolic: the output does not require grad, so there is nothing to derive"
        )
    if np.size(output.data) != 1:
        raise ValueError(
            f"symbolic: the output has shape {np.shape(output.data)}; a single number is needed "
            "(reduce it first, e.g. with .sum())"
        )
    order = iter_graph([output])
    names = graph_names(order)
    for n in order:
        if n._op is not None and n._op.name not in FORWARD:
            why = UNSUPPORTED.get(n._op.name, "there is no symbolic forward for it")
            raise ValueError(
                f"symbolic: the graph uses {n._op.name}, which SymPy cannot run: {why}"
            )
    if wrt is None:
        wanted = [n for n in order if n._op is None and n.requires_grad]
    else:
        wanted = [wrt] if isinstance(wrt, Node) else list(wrt)
        for k, w in enumerate(wanted):
            if not isinstance(w, Node) or w._op is not None or not w.requires_grad:
                raise ValueError(
                    f"symbolic: wrt[{k}] must be a leaf of the graph that requires grad"
                )

    symbols: dict[str, Any] = {}
    values: dict[str, float] = {}
    value: dict[int, Sym] = {}
    leaf_names: dict[int, Any] = {}
    for n in order:
        if n._op is not None:
            args = [value[id(p)] if isinstance(p, Node) else Sym(_number(p)) for p in n._parents]
            value[id(n)] = FORWARD[n._op.name](n, *args)
            continue
        if not (n.requires_grad or n.name):  # an unnamed constant: its number
            value[id(n)] = Sym(_number(n.data))
            continue
        base = (n.name or names[id(n)]).replace("#", "")
        if isinstance(n.data, np.ndarray) and n.data.ndim:
            arr = np.empty(n.data.shape, dtype=object)
            for idx, v in np.ndenumerate(n.data):
                key = f"{base}[{', '.join(map(str, idx))}]"
                arr[idx] = symbols[key] = sp.Symbol(key, real=True)
                values[key] = float(v)
            value[id(n)] = Sym(arr)
            leaf_names[id(n)] = arr
        else:
            s = symbols[base] = sp.Symbol(base, real=True)
            values[base] = float(np.asarray(n.data))
            value[id(n)] = Sym(s)
            leaf_names[id(n)] = s

    # The backward pass: the rule table on expressions, in the engine's order.
    out_sym = value[id(output)]
    seed: Any = sp.Integer(1)
    if isinstance(out_sym.data, np.ndarray):
        seed = np.full(out_sym.data.shape, sp.Integer(1), dtype=object)
    grads: dict[int, Sym] = {id(output): Sym(seed)}
    for n in reversed(order):
        g = grads.get(id(n))
        if g is None or n._op is None:
            continue
        args = [value[id(p)] if isinstance(p, Node) else Sym(_number(p)) for p in n._parents]
        for i, p in enumerate(n._parents):
            if not (isinstance(p, Node) and p.requires_grad):
                continue
            share = n._op.vjps[i](g, value[id(n)], n._ctx, *args)
            share = share if isinstance(share, Sym) else Sym(share)
            if isinstance(p.data, np.ndarray):
                target = np.shape(p.data)
                if share.shape != target:
                    share = Sym(unbroadcast(np.asarray(share.data, dtype=object), target))
            earlier = grads.get(id(p))
            grads[id(p)] = share if earlier is None else earlier + share

    expression = _expr(sp, np.asarray(out_sym.data, dtype=object).reshape(-1)[0])
    gradients: dict[str, Any] = {}
    for w in wanted:
        g = grads.get(id(w))
        sym = leaf_names.get(id(w))
        if isinstance(sym, np.ndarray):
            data = None if g is None else np.asarray(g.data, dtype=object)
            for idx, s in np.ndenumerate(sym):
                gradients[str(s)] = _expr(sp, 0 if data is None else data[idx])
        elif sym is not None:
            gradients[str(sym)] = _expr(sp, 0 if g is None else _scalar(g.data))
    out_name = output.name or names[id(output)]
    return Symbolic(expression, symbols, gradients, values, out_name)
