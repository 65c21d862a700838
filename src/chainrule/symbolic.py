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
numpy array of them), so neither the rules nor the helpers change.

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
from .rules import _LN2, _TWO_OVER_SQRT_PI

#: Ops whose rule SymPy cannot run, and why (their rules choose by comparing numbers).
UNSUPPORTED: dict[str, str] = {
    "relu": "its rule selects by the sign of the output, which a symbol does not have",
    "abs": "its rule multiplies by sign(x), read from the number",
    "clip": "its rule selects by comparing x with the bounds, a number comparison",
    "maximum": "its rule selects the larger operand by comparing numbers",
    "minimum": "its rule selects the smaller operand by comparing numbers",
    "max": "its rule finds the maximum (and ties) by comparing numbers",
}

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


class Sym(Node):
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

    def log_softmax(self, axis: int) -> Sym:
        return self - self.exp().sum(axis=axis, keepdims=True).log()

    def _scatter(self, shape: tuple[int, ...], index: Any) -> Sym:
        out = np.zeros(shape, dtype=object)
        np.add.at(out, index, self.data)
        return Sym(out)


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
    # The Euclidean norm; its rule's choice at a zero norm (gradient 0) compares
    # the norm with 0, which a symbolic norm is not: the formula holds where
    # the norm is nonzero, the only points where it has a derivative.
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
    """

    verdicts: dict[str, str]
    details: dict[str, str] = field(default_factory=dict)

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
        """
        sp = _sympy()
        rng = random.Random(seed)
        verdicts: dict[str, str] = {}
        details: dict[str, str] = {}
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
            elif _is_zero(sp, grad - reference):
                verdicts[name] = "proved"
                details[name] = (
                    "proved (the rule table's gradient minus sympy.diff simplifies to 0)"
                )
            else:
                verdicts[name] = "numeric"
                details[name] = (
                    f"not proved (simplify could not decide); equal at {POINTS} random points "
                    f"within relative tolerance {TOLERANCE:g} (largest difference {worst:.1e})"
                )
        return Check(verdicts, details)

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
